"""OS identification: the per-file analyzer and detect_os, against the corpus, this machine, and the
release files real distributions ship.

The literal file contents below are copies of files as the distributions ship them (most from the
test resources of the python-distro project, which collects them from real installations; the
distroless and Wolfi os-release as those images carry them). Expectations follow from the files'
own documented meaning (os-release(5), the ``<distribution> release <version>`` convention), not
from Moat's output.
"""

from __future__ import annotations

import io
import json
import platform
from pathlib import Path

import pytest

from corpus import CORPUS, Case, cases, file_input, known_differences, prefilter_accepts
from moat.errors import ParseError
from moat.inventory.analyzer import FileInput, all_analyzers
from moat.inventory.analyzers.osrelease import (
    ALL_PATHS,
    OSReleaseAnalyzer,
    parse_file,
    parse_key_values,
    parse_os_release,
)
from moat.inventory.osdetect import detect_os
from moat.model import OSInfo

ANALYZER = OSReleaseAnalyzer()
CASES = cases("os-release", "")


def analyze_text(path: str, text: str | bytes) -> OSInfo | None:
    data = text.encode() if isinstance(text, str) else text
    return ANALYZER.analyze(FileInput(path, io.BytesIO(data), len(data))).os


def detect(files: dict[str, str]) -> OSInfo | None:
    """Run the analyzer on each file, then detect_os on what they said, as the engine does."""
    said = {path: info for path, text in files.items() if (info := analyze_text(path, text)) is not None}
    return detect_os(said)


def family_and_name(info: OSInfo | None) -> tuple[str, str] | None:
    return None if info is None else (info.family, info.name)


# --- corpus -------------------------------------------------------------------------------------


def test_corpus_has_all_os_release_cases() -> None:
    assert len(CASES) == 27


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_corpus_case(case: Case) -> None:
    assert prefilter_accepts(ANALYZER, case.input)
    said = ANALYZER.analyze(file_input(case.input_path, case.input)).os
    detected = detect_os({case.input: said} if said is not None else {})
    want = case.expected
    have = {"os": None} if detected is None else {"family": detected.family, "name": detected.name}
    differs = have != want
    if case.name in known_differences("os-release"):
        assert differs, f"{case.name} is listed as a known difference but now passes: remove it"
    else:
        assert not differs, f"{case.name}: want {want}, have {have}"


def test_the_analyzer_is_registered() -> None:
    assert "os-release" in {a.name for a in all_analyzers()}


# --- this machine (Debian 12) -----------------------------------------------------------------------


def test_this_machine() -> None:
    """os-release says "12"; debian_version carries the point release dpkg's base-files installed."""
    facts = platform.freedesktop_os_release()
    assert facts["ID"] == "debian"
    files = {}
    for path in ("etc/os-release", "usr/lib/os-release", "etc/debian_version"):
        real = Path("/") / path
        if real.exists():
            files[path] = real.read_text()
    detected = detect(files)
    assert detected is not None
    point_release = Path("/etc/debian_version").read_text().strip()
    assert (detected.family, detected.name) == ("debian", point_release)
    assert detected.name.startswith(facts["VERSION_ID"] + ".")
    assert detected.pretty_name == facts["PRETTY_NAME"]
    assert not detected.distroless


# --- real files from real distributions --------------------------------------------------------------

CENTOS7_OS_RELEASE = (
    'NAME="CentOS Linux"\nVERSION="7 (Core)"\nID="centos"\nID_LIKE="rhel fedora"\nVERSION_ID="7"\n'
    'PRETTY_NAME="CentOS Linux 7 (Core)"\nANSI_COLOR="0;31"\nCPE_NAME="cpe:/o:centos:centos:7"\n'
    'HOME_URL="https://www.centos.org/"\nBUG_REPORT_URL="https://bugs.centos.org/"\n\n'
    'CENTOS_MANTISBT_PROJECT="CentOS-7"\nCENTOS_MANTISBT_PROJECT_VERSION="7"\n'
    'REDHAT_SUPPORT_PRODUCT="centos"\nREDHAT_SUPPORT_PRODUCT_VERSION="7"\n\n'
)
CENTOS7_RELEASE = "CentOS Linux release 7.1.1503 (Core) \n"
UBUNTU16_OS_RELEASE = (
    'NAME="Ubuntu"\nVERSION="16.04.1 LTS (Xenial Xerus)"\nID=ubuntu\nID_LIKE=debian\n'
    'PRETTY_NAME="Ubuntu 16.04.1 LTS"\nVERSION_ID="16.04"\nHOME_URL="http://www.ubuntu.com/"\n'
    'SUPPORT_URL="http://help.ubuntu.com/"\nBUG_REPORT_URL="http://bugs.launchpad.net/ubuntu/"\n'
    "UBUNTU_CODENAME=xenial\n"
)
UBUNTU16_LSB_RELEASE = (
    'DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=16.04\nDISTRIB_CODENAME=xenial\nDISTRIB_DESCRIPTION="Ubuntu 16.04.1 LTS"\n'
)
DEBIAN_TESTING_OS_RELEASE = (
    'PRETTY_NAME="Debian GNU/Linux bookworm/sid"\nNAME="Debian GNU/Linux"\nVERSION_CODENAME=bookworm\n'
    'ID=debian\nHOME_URL="https://www.debian.org/"\nSUPPORT_URL="https://www.debian.org/support"\n'
    'BUG_REPORT_URL="https://bugs.debian.org/"\n'
)
DEBIAN10_OS_RELEASE = (
    'PRETTY_NAME="Debian GNU/Linux 10 (buster)"\nNAME="Debian GNU/Linux"\nVERSION_ID="10"\n'
    'VERSION="10 (buster)"\nVERSION_CODENAME=buster\nID=debian\nHOME_URL="https://www.debian.org/"\n'
)
DISTROLESS_OS_RELEASE = (
    'PRETTY_NAME="Distroless"\nNAME="Debian GNU/Linux"\nID="debian"\nVERSION_ID="11"\n'
    'VERSION="Debian GNU/Linux 11 (bullseye)"\nHOME_URL="https://github.com/GoogleContainerTools/distroless"\n'
    'SUPPORT_URL="https://github.com/GoogleContainerTools/distroless/blob/master/README.md"\n'
    'BUG_REPORT_URL="https://github.com/GoogleContainerTools/distroless/issues/new"\n'
)
WOLFI_OS_RELEASE = 'ID=wolfi\nNAME="Wolfi"\nPRETTY_NAME="Wolfi"\nVERSION_ID=20230201\nHOME_URL="https://wolfi.dev"\n'
RASPBIAN8_OS_RELEASE = (
    'PRETTY_NAME="Raspbian GNU/Linux 8 (jessie)"\nNAME="Raspbian GNU/Linux"\nVERSION_ID="8"\n'
    'VERSION="8 (jessie)"\nID=raspbian\nID_LIKE=debian\n'
)
AMAZON2016_OS_RELEASE = (
    'NAME="Amazon Linux AMI"\nVERSION="2016.03"\nID="amzn"\nID_LIKE="rhel fedora"\nVERSION_ID="2016.03"\n'
    'PRETTY_NAME="Amazon Linux AMI 2016.03"\nANSI_COLOR="0;33"\nCPE_NAME="cpe:/o:amazon:linux:2016.03:ga"\n'
)
SLES12_SUSE_RELEASE = (
    "SUSE Linux Enterprise Server 12 (s390x)\nVERSION = 12\nPATCHLEVEL = 1\n"
    "# This file is deprecated and will be removed in a future service pack or release.\n"
    "# Please check /etc/os-release for details about this release.\n"
)
ALPINE_OS_RELEASE = (
    'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.19.1\nPRETTY_NAME="Alpine Linux v3.19"\n'
    'HOME_URL="https://alpinelinux.org/"\nBUG_REPORT_URL="https://gitlab.alpinelinux.org/alpine/aports/-/issues"\n'
)


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        pytest.param(
            {
                "etc/os-release": CENTOS7_OS_RELEASE,
                "etc/centos-release": CENTOS7_RELEASE,
                "etc/redhat-release": CENTOS7_RELEASE,
                "etc/system-release": CENTOS7_RELEASE,
            },
            ("centos", "7"),
            id="centos7: os-release beats centos-release",
        ),
        pytest.param(
            {"etc/centos-release": CENTOS7_RELEASE, "etc/redhat-release": CENTOS7_RELEASE},
            ("centos", "7.1.1503"),
            id="centos7 without os-release",
        ),
        pytest.param({"etc/redhat-release": "CentOS release 5.11 (Final)\n"}, ("centos", "5.11"), id="centos5"),
        pytest.param(
            {"etc/redhat-release": "Red Hat Enterprise Linux Server release 7.0 (Maipo)\n"},
            ("redhat", "7.0"),
            id="rhel7",
        ),
        pytest.param(
            # Oracle Linux 7 keeps a redhat-release with RHEL's text; oracle-release must win
            {
                "etc/oracle-release": "Oracle Linux Server release 7.5",
                "etc/redhat-release": "Red Hat Enterprise Linux Server release 7.5 (Maipo)\n",
            },
            ("oracle", "7.5"),
            id="oracle7",
        ),
        pytest.param(
            {
                "etc/rocky-release": "Rocky Linux release 8.4 (Green Obsidian)\n",
                "etc/centos-release": "Rocky Linux release 8.4 (Green Obsidian)\n",
                "etc/redhat-release": "Rocky Linux release 8.4 (Green Obsidian)\n",
            },
            ("rocky", "8.4"),
            id="rocky8",
        ),
        pytest.param(
            {
                "etc/fedora-release": "Fedora release 19 (Schr\u00f6dinger\u2019s Cat)\n",
                "etc/redhat-release": "Fedora release 19 (Schr\u00f6dinger\u2019s Cat)\n",
            },
            ("fedora", "19"),
            id="fedora19",
        ),
        pytest.param(
            {"etc/system-release": "Amazon Linux AMI release 2014.03"}, ("amazon", "2014.03"), id="amazon2014"
        ),
        pytest.param(
            {"etc/os-release": AMAZON2016_OS_RELEASE, "etc/system-release": "Amazon Linux AMI release 2016.03\n"},
            ("amazon", "2016.03"),
            id="amazon2016",
        ),
        pytest.param(
            # ALT Linux ships fedora-release and redhat-release with its own text: it is not Fedora
            {
                "etc/fedora-release": "ALT Server 10.1 (Mendelevium)\n",
                "etc/redhat-release": "ALT Server 10.1 (Mendelevium)\n",
            },
            None,
            id="altlinux is not fedora",
        ),
        pytest.param(
            {"etc/redhat-release": "Mageia release 5 (Official) for x86_64\n"}, None, id="mageia is not redhat"
        ),
        pytest.param({"etc/system-release": "foo bar\n"}, None, id="text of no known distribution"),
        pytest.param({"etc/SuSE-release": SLES12_SUSE_RELEASE}, ("sles", "12.1"), id="sles12 SuSE-release"),
        pytest.param({"etc/SuSE-release": "openSUSE 42.1 (x86_64)"}, ("opensuse-leap", "42.1"), id="opensuse42"),
        pytest.param(
            {"etc/SuSE-release": "openSUSE 13.2 (x86_64)\nVERSION = 13.2\nCODENAME = Harlequin\n"},
            ("opensuse", "13.2"),
            id="opensuse13 predates leap",
        ),
        pytest.param(
            {
                "etc/os-release": UBUNTU16_OS_RELEASE,
                "etc/lsb-release": UBUNTU16_LSB_RELEASE,
                "etc/debian_version": "stretch/sid\n",
            },
            ("ubuntu", "16.04"),
            id="ubuntu16",
        ),
        pytest.param(
            {"etc/lsb-release": UBUNTU16_LSB_RELEASE, "etc/debian_version": "stretch/sid\n"},
            ("ubuntu", "16.04"),
            id="ubuntu16 without os-release: lsb-release beats debian_version",
        ),
        pytest.param(
            {
                "etc/lsb-release": "DISTRIB_ID=LinuxMint\nDISTRIB_RELEASE=17.3\nDISTRIB_CODENAME=rosa\n"
                'DISTRIB_DESCRIPTION="Linux Mint 17.3 Rosa"\n'
            },
            None,
            id="linux mint lsb-release is not ubuntu",
        ),
        pytest.param(
            {"etc/os-release": DEBIAN10_OS_RELEASE, "etc/debian_version": "10.11\n"},
            ("debian", "10.11"),
            id="debian10: point release from debian_version",
        ),
        pytest.param(
            {"usr/lib/os-release": DEBIAN10_OS_RELEASE, "etc/debian_version": "10.11\n"},
            ("debian", "10.11"),
            id="debian10 usr/lib os-release only",
        ),
        pytest.param(
            {"etc/os-release": DEBIAN_TESTING_OS_RELEASE, "etc/debian_version": "bookworm/sid\n"},
            ("debian", "bookworm/sid"),
            id="debian testing has no VERSION_ID",
        ),
        pytest.param({"etc/os-release": DEBIAN_TESTING_OS_RELEASE}, None, id="debian testing without debian_version"),
        pytest.param(
            {"etc/os-release": DEBIAN10_OS_RELEASE, "etc/debian_version": "9.8\n"},
            ("debian", "10"),
            id="a debian_version of another release does not refine",
        ),
        pytest.param(
            {"etc/os-release": RASPBIAN8_OS_RELEASE, "etc/debian_version": "8.0"},
            None,
            id="raspbian is not debian",
        ),
        pytest.param(
            {"etc/os-release": ALPINE_OS_RELEASE, "etc/alpine-release": "3.19.1\n"}, ("alpine", "3.19.1"), id="alpine"
        ),
        pytest.param(
            {"etc/os-release": ALPINE_OS_RELEASE.replace("3.19.1", "3.19"), "etc/alpine-release": "3.19.1\n"},
            ("alpine", "3.19.1"),
            id="alpine-release completes a short VERSION_ID",
        ),
        pytest.param({"etc/alpine-release": "3.20.0_alpha20240329\n"}, ("alpine", "3.20.0_alpha20240329"), id="edge"),
        pytest.param({"etc/os-release": WOLFI_OS_RELEASE}, ("wolfi", "20230201"), id="wolfi"),
        pytest.param(
            {"etc/photon-release": "VMware Photon OS 4.0\nPHOTON_BUILD_NUMBER=1526e30ba\n"},
            ("photon", "4.0"),
            id="photon-release",
        ),
        pytest.param(
            {"etc/mariner-release": "CBL-Mariner 2.0.20220226\nMARINER_BUILD_NUMBER=rolling\n"},
            ("cbl-mariner", "2.0"),
            id="mariner-release",
        ),
        pytest.param(
            {"etc/os-release": 'ID=kali\nVERSION_ID="2017.1"\n', "etc/debian_version": "kali-rolling\n"},
            None,
            id="an unknown os-release is authoritative",
        ),
    ],
)
def test_real_release_files(files: dict[str, str], expected: tuple[str, str] | None) -> None:
    for path in files:
        assert prefilter_accepts(ANALYZER, path), path
    assert family_and_name(detect(files)) == expected


def test_distroless_is_debian_with_the_flag_and_point_release() -> None:
    detected = detect({"etc/os-release": DISTROLESS_OS_RELEASE, "etc/debian_version": "11.6\n"})
    assert detected == OSInfo(family="debian", name="11.6", pretty_name="Distroless", distroless=True)
    plain = detect({"etc/os-release": DEBIAN10_OS_RELEASE})
    assert plain is not None and not plain.distroless


def test_etc_os_release_beats_usr_lib() -> None:
    detected = detect({"usr/lib/os-release": DEBIAN10_OS_RELEASE, "etc/os-release": ALPINE_OS_RELEASE})
    assert family_and_name(detected) == ("alpine", "3.19.1")


def test_detect_os_accepts_leading_slashes_and_nothing() -> None:
    info = parse_file("etc/alpine-release", "3.18.4\n")
    assert info is not None
    assert family_and_name(detect_os({"/etc/alpine-release": info})) == ("alpine", "3.18.4")
    assert detect_os({}) is None


# --- the os-release format ------------------------------------------------------------------------


def test_quoting_escapes_and_comments() -> None:
    values = parse_key_values(
        '# a comment\nNAME="Foo \\"Bar\\" \\$HOME"\nID=\'foo\'\n  VERSION_ID = 1.2 \nBROKEN LINE\nID=second\n'
    )
    assert values == {"NAME": 'Foo "Bar" $HOME', "ID": "foo", "VERSION_ID": "1.2"}


def test_os_release_without_id_says_nothing_and_unknown_id_says_unknown() -> None:
    assert parse_os_release('NAME="Alpine Linux"\nVERSION_ID=3.15.4\n') is None
    unknown = parse_os_release('ID=arch\nPRETTY_NAME="Arch Linux"\n')
    assert unknown == OSInfo(family="", name="", pretty_name="Arch Linux")


# --- hostile input --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(ALL_PATHS))
def test_binary_garbage_is_a_parse_error(path: str) -> None:
    with pytest.raises(ParseError, match="binary content"):
        analyze_text(path, bytes(range(256)) * 4)


def test_oversized_file_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="larger than"):
        analyze_text("etc/os-release", b"ID=debian\n" + b"X=" + b"y" * (1024 * 1024) + b"\n")


@pytest.mark.parametrize(
    ("path", "text", "message"),
    [
        ("etc/debian_version", "\n\n", "empty"),
        ("etc/debian_version", "12.5 but with spaces\n", "not a Debian version"),
        ("etc/alpine-release", "edge!\n", "not an Alpine release"),
        ("etc/photon-release", "Something else 1.0\n", "not a Photon OS release file"),
        ("etc/SuSE-release", "SUSE Linux Enterprise Server (x86_64)\n", "without a VERSION"),
        ("etc/lsb-release", "DISTRIB_ID=Ubuntu\n", "without DISTRIB_RELEASE"),
    ],
)
def test_malformed_release_files(path: str, text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        analyze_text(path, text)


def test_non_utf8_os_release_still_parses() -> None:
    info = analyze_text("etc/os-release", b'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian \xff"\n')
    assert info is not None and (info.family, info.name) == ("debian", "12")


def test_wanted_paths() -> None:
    for path in (
        "etc/os-release",
        "usr/lib/os-release",
        "etc/debian_version",
        "usr/lib/system-release",
        "x86_64-bottlerocket-linux-gnu/sys-root/usr/lib/os-release",
    ):
        assert prefilter_accepts(ANALYZER, path), path
    for path in ("opt/app/etc/os-release", "etc/os-release.bak", "usr/share/doc/debian_version"):
        assert not prefilter_accepts(ANALYZER, path), path


def test_corpus_expected_files_are_the_ones_analyzed() -> None:
    for case in CASES:
        raw = json.loads((case.directory / "expected.json").read_text())
        assert raw["kind"] == "os-release"
        assert (CORPUS / "os-release" / case.name / case.input).is_file()
