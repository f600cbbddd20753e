"""``moat sbom`` on real images over every transport, checked against the package managers.

The expected package sets come from dpkg-query, rpm, pip and the apk database of the image as umoci
unpacks it (see fixtures/groundtruth.py), never from Moat. Each image is scanned once per transport
into its own fresh cache; the cache tests then scan again on purpose.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from packageurl import PackageURL

from e2e.conftest import ImageCase, MoatRun, Sandbox, make_sandbox
from fixtures import groundtruth

pytestmark = [pytest.mark.images, pytest.mark.xdist_group("images")]

IMAGES = ["debian", "alpine", "centos"]
TRANSPORTS = ["oci-dir", "oci-archive", "docker-archive", "dir"]
KINDS = ["deb", "rpm", "apk", "pypi"]
PURL_NAMESPACE = {"deb": "debian", "apk": "alpine", "rpm": "centos"}


def target_for(case: ImageCase, transport: str) -> str:
    if transport == "dir":
        return f"dir:{case.rootfs}"
    return case.image.target(transport, case.tag)


class Scans:
    """Memoised first scans, one fresh sandbox (and so an empty cache) per image and transport."""

    def __init__(self, factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> None:
        self._factory = factory
        self._request = request
        self._runs: dict[tuple[str, str], MoatRun] = {}

    def case(self, image: str) -> ImageCase:
        case: ImageCase = self._request.getfixturevalue(image)
        return case

    def run(self, image: str, transport: str) -> MoatRun:
        key = (image, transport)
        if key not in self._runs:
            sandbox = make_sandbox(self._factory.mktemp(f"scan-{image}-{transport}"))
            self._runs[key] = sandbox.sbom(target_for(self.case(image), transport))
        return self._runs[key]

    def report(self, image: str, transport: str) -> dict[str, Any]:
        run = self.run(image, transport)
        assert run.returncode == 0, run.explain()
        assert "Traceback" not in run.stderr, run.explain()
        assert run.report is not None, run.explain()
        return run.report


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Scans:
    return Scans(tmp_path_factory, request)


def diff(expected: set[tuple[str, str]], found: set[tuple[str, str]]) -> str:
    return f"missing {sorted(expected - found)[:20]}, unexpected {sorted(found - expected)[:20]}"


# --------------------------------------------------------------------------------------------- inventory


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("image", IMAGES)
def test_package_sets_equal_package_managers(scans: Scans, image: str, transport: str) -> None:
    report = scans.report(image, transport)
    truth = scans.case(image).truth
    assert report["schema"] == "moat.report/v1"
    assert truth.of("deb") or truth.of("rpm") or truth.of("apk"), "ground truth found no OS packages"
    for kind in KINDS:
        expected = truth.of(kind)
        found = groundtruth.report_packages(report, kind)
        assert found == expected, f"{kind}: {diff(expected, found)}"


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("image", IMAGES)
def test_os_detected(scans: Scans, image: str, transport: str) -> None:
    report = scans.report(image, transport)
    case = scans.case(image)
    release = case.truth.os_release
    os_info = report["os"]
    assert os_info is not None
    if image == "debian":
        assert os_info["family"] == "debian"
        assert os_info["name"].split(".")[0] == release["VERSION_ID"] == "12"
        # Layer 2 whited out etc/debian_version; its "12.N" must not be read from the layer below.
        assert os_info["name"] != case.image.facts["deleted_debian_version"]
        assert not (case.rootfs / "etc/debian_version").exists()
    elif image == "alpine":
        assert os_info["family"] == "alpine"
        assert os_info["name"] == release["VERSION_ID"]
        assert os_info["name"].startswith("3.")
    else:
        assert os_info["family"] == "centos"
        # os-release says "7", etc/centos-release "7.5.1804": either is the same release.
        assert os_info["name"] in ("7", "7.5.1804")


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("image", IMAGES)
def test_purls_name_the_package(scans: Scans, image: str, transport: str) -> None:
    """Each OS and pypi package's purl (parsed by packageurl-python) names type, distro, name, version."""
    report = scans.report(image, transport)
    checked = 0
    for package in report["packages"]:
        kind = package["type"]
        if kind not in PURL_NAMESPACE and kind != "pypi":
            continue
        purl = PackageURL.from_string(package["purl"])
        assert purl.type == kind, package
        if kind == "pypi":
            assert purl.namespace is None and purl.name == groundtruth.canonical_pypi(package["name"]), (
                package
            )
            assert purl.version == package["version"], package
        else:
            assert (purl.namespace, purl.name) == (PURL_NAMESPACE[kind], package["name"]), package
            # rpm purls carry the epoch as a qualifier, not in the version.
            epoch, _, plain = package["version"].rpartition(":")
            expected = plain if kind == "rpm" else package["version"]
            assert purl.version == expected, package
            if kind == "rpm" and epoch:
                assert purl.qualifiers.get("epoch") == epoch, package
        checked += 1
    assert checked == sum(len(scans.case(image).truth.of(kind)) for kind in KINDS)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_removed_dpkg_stanza_is_absent(scans: Scans, transport: str) -> None:
    """Layer 2 rewrote var/lib/dpkg/status without one package; the lower layer's copy must not count."""
    facts = scans.case("debian").image.facts
    removed = facts["removed_package"]
    assert facts["removed_version"], "the builder should have found the stanza in layer 1"
    names = {p["name"] for p in scans.report("debian", transport)["packages"] if p["type"] == "deb"}
    assert removed not in names
    assert removed not in {name for name, _ in scans.case("debian").truth.of("deb")}


@pytest.mark.parametrize("transport", ["oci-dir", "oci-archive", "docker-archive"])
def test_layer_attribution(scans: Scans, transport: str) -> None:
    """pip packages come from the pip layer; deb packages from the base layer, since layer 2 only
    removed one stanza and left every other stanza byte for byte as it was."""
    report = scans.report("debian", transport)
    case = scans.case("debian")
    assert [layer["diff_id"] for layer in report["artifact"]["layers"]] == case.diff_ids
    roles = dict(zip(case.image.facts["layer_roles"], case.diff_ids, strict=True))
    pip_site = case.image.facts["pip_site"]
    for package in report["packages"]:
        if package["type"] == "pypi":
            assert package["layer"] == roles["pip"], package
            assert package["found_in"].startswith(pip_site + "/"), package
        elif package["type"] == "deb":
            assert package["layer"] == roles["base"], package
            assert package["found_in"] == "var/lib/dpkg/status", package


@pytest.mark.parametrize("image", IMAGES)
def test_dir_transport_has_no_layers(scans: Scans, image: str) -> None:
    report = scans.report(image, "dir")
    assert report["packages"]
    assert all(package["layer"] is None for package in report["packages"])


def _upstream(debian_version: str) -> str:
    """Upstream part of a Debian version: no epoch, no Debian revision."""
    version = debian_version.split(":", 1)[-1]
    return version.rsplit("-", 1)[0]


@pytest.mark.parametrize("transport", ["oci-dir", "docker-archive"])
def test_binaries_layer_packages(scans: Scans, transport: str) -> None:
    """The jar, gemspec and Go binary that layer 4 copied out of Debian packages.

    Expected versions come from the .deb metadata (dpkg-deb -f): the upstream version of
    libcommons-lang3-java and ruby-rack, and the golang-1.19 that skopeo's Built-Using names.
    """
    report = scans.report("debian", transport)
    facts = scans.case("debian").image.facts
    debs = facts["binary_debs"]
    roles = dict(zip(facts["layer_roles"], scans.case("debian").diff_ids, strict=True))
    purls = {p["purl"].split("?")[0] for p in report["packages"]}
    lang3 = _upstream(debs["libcommons-lang3-java"]["Version"])
    assert f"pkg:maven/org.apache.commons/commons-lang3@{lang3}" in purls
    assert f"pkg:gem/rack@{_upstream(debs['ruby-rack']['Version'])}" in purls
    go_packages = [
        p for p in report["packages"] if p["type"] == "golang" and p["found_in"] == "usr/bin/skopeo"
    ]
    assert go_packages, "no Go build info read from usr/bin/skopeo"
    match = re.search(r"golang-1\.\d+ \(= ([0-9.]+)-", debs["skopeo"]["Built-Using"])
    assert match
    for package in go_packages:
        if package["name"] == "stdlib":
            assert package["version"].removeprefix("go").removeprefix("v") == match.group(1)
    binaries = [p for p in report["packages"] if p["type"] in ("maven", "gem", "golang")]
    assert all(p["layer"] == roles["binaries"] for p in binaries), binaries


def test_zstd_layers(alpine: ImageCase, sandbox: Sandbox) -> None:
    """The same Alpine layer recompressed with zstd by skopeo: same diff id, same packages."""
    layout = alpine.image.root / alpine.image.facts["zstd_layout"]
    run = sandbox.sbom(f"oci-dir:{layout}:alpine")
    assert run.returncode == 0, run.explain()
    assert run.report is not None
    media = [layer.get("media_type", "") for layer in run.report["artifact"]["layers"]]
    assert all("zstd" in m for m in media), media
    assert [layer["diff_id"] for layer in run.report["artifact"]["layers"]] == alpine.diff_ids
    assert groundtruth.report_packages(run.report, "apk") == alpine.truth.of("apk")


# --------------------------------------------------------------------------------------------- layer cache


def _packages(report: dict[str, Any]) -> list[dict[str, Any]]:
    return sorted(report["packages"], key=lambda p: (p["type"], p["name"], p["version"], p["found_in"]))


@pytest.mark.parametrize("image", IMAGES)
def test_second_scan_is_served_from_cache(
    image: str, request: pytest.FixtureRequest, sandbox: Sandbox
) -> None:
    case: ImageCase = request.getfixturevalue(image)
    target = case.image.target("oci-dir", case.tag)
    first = sandbox.sbom(target, report_name="first.json")
    second = sandbox.sbom(target, report_name="second.json")
    assert first.returncode == 0 and second.returncode == 0, first.explain() + second.explain()
    assert first.report is not None and second.report is not None
    assert [layer["cached"] for layer in first.report["artifact"]["layers"]] == [False] * len(case.diff_ids)
    assert [layer["cached"] for layer in second.report["artifact"]["layers"]] == [True] * len(case.diff_ids)
    assert _packages(second.report) == _packages(first.report)
    assert second.report["os"] == first.report["os"]


def test_cache_is_shared_between_transports(debian: ImageCase, sandbox: Sandbox) -> None:
    """Layers are keyed by diff id, so the docker-archive form hits what the OCI layout put there."""
    first = sandbox.sbom(debian.image.target("oci-dir", "full"), report_name="oci.json")
    second = sandbox.sbom(debian.image.target("docker-archive"), report_name="docker.json")
    assert first.returncode == 0 and second.returncode == 0, first.explain() + second.explain()
    assert first.report is not None and second.report is not None
    assert all(layer["cached"] for layer in second.report["artifact"]["layers"])
    assert _packages(second.report) == _packages(first.report)


def test_image_sharing_base_layers_hits_cache(
    debian: ImageCase, debian_base: ImageCase, sandbox: Sandbox
) -> None:
    """Scan the two-layer ``base`` tag, then ``full``: the shared bottom layers come from the cache,
    the two new ones are analysed, and both answers match dpkg-query and pip for their own tag."""
    assert debian.diff_ids[:2] == debian_base.diff_ids
    base = sandbox.sbom(debian_base.image.target("oci-dir", "base"), report_name="base.json")
    full = sandbox.sbom(debian.image.target("oci-dir", "full"), report_name="full.json")
    assert base.returncode == 0 and full.returncode == 0, base.explain() + full.explain()
    assert base.report is not None and full.report is not None
    assert [layer["cached"] for layer in full.report["artifact"]["layers"]] == [True, True, False, False]
    assert groundtruth.report_packages(base.report, "deb") == debian_base.truth.of("deb")
    assert groundtruth.report_packages(base.report, "pypi") == set() == debian_base.truth.of("pypi")
    assert groundtruth.report_packages(full.report, "deb") == debian.truth.of("deb")
    assert groundtruth.report_packages(full.report, "pypi") == debian.truth.of("pypi")


def test_ground_truth_sees_the_whiteout_and_the_edit(debian: ImageCase, debian_base: ImageCase) -> None:
    """The fixture itself: umoci applied layer 2's whiteout, and both tags have the same dpkg state."""
    facts = debian.image.facts
    assert not (debian.rootfs / "etc/debian_version").exists()
    assert (debian.rootfs / "etc/os-release").exists()
    assert debian.truth.of("deb") == debian_base.truth.of("deb")
    assert len(debian.truth.of("pypi")) == len(facts["recipe"]["pip"])
    assert all(
        Path(debian.rootfs, f).exists() or Path(debian.rootfs, f).is_symlink() for f in facts["binary_files"]
    )
