"""The dpkg analyzer against the shared corpus, this machine's own dpkg database, databases written
by the real dpkg, and hostile files."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from corpus import CORPUS, Case, cases, check_case, compare, file_input, prefilter_accepts, run_case
from moat.errors import ParseError
from moat.inventory.analyzer import AnalysisResult, FileInput
from moat.inventory.analyzers import dpkg
from moat.inventory.analyzers.dpkg import DpkgStatusAnalyzer, parse_relations, valid_version

ANALYZER = DpkgStatusAnalyzer()
CASES = cases("packages", "dpkg")
QUERY_FORMAT = "${Package}\t${Version}\t${source:Package}\t${source:Version}\t${Architecture}\t${db:Status-Abbrev}\n"


def analyze_bytes(data: bytes, path: str = "var/lib/dpkg/status") -> AnalysisResult:
    return ANALYZER.analyze(FileInput(path, io.BytesIO(data), len(data)))


def by_case(name: str) -> Case:
    return next(case for case in CASES if case.name == name)


# --- corpus -------------------------------------------------------------------------------------


def test_corpus_has_all_dpkg_cases() -> None:
    assert len(CASES) == 11


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_corpus_case(case: Case) -> None:
    check_case(ANALYZER, case, "dpkg")


def test_trivy_valid_matches_except_pre_depends() -> None:
    """trivy leaves Pre-Depends out of depends_on; everything else must match exactly, and every
    extra dependency Moat reports must be an installed package named in that package's Pre-Depends."""
    case = by_case("trivy-valid")
    outcome = run_case(ANALYZER, case)
    assert isinstance(outcome, AnalysisResult)
    assert compare(case, outcome, fields=("src_name", "src_version", "arch")) == []
    installed = {p.name: p.id for p in outcome.packages}
    for name, provides in _raw_field_per_package(case.input_path, "Provides").items():
        for virtual in re.findall(r"([a-z0-9][a-z0-9+.-]+)(?:\s*\([^)]*\))?", provides):
            installed.setdefault(virtual, installed.get(name, ""))
    pre_depends = _raw_field_per_package(case.input_path, "Pre-Depends")
    extra_seen = 0
    for want in case.expected["packages"]:
        have = next(p for p in outcome.packages if p.name == want["name"])
        trivy_ids = set(want.get("depends_on") or [])
        assert trivy_ids <= set(have.depends_on), have.name
        names = re.findall(r"(?:^|,|\|)\s*([a-z0-9][a-z0-9+.-]+)", pre_depends.get(have.name, ""))
        explained = {installed[n] for n in names if n in installed}
        assert set(have.depends_on) - trivy_ids <= explained, have.name
        extra_seen += len(set(have.depends_on) - trivy_ids)
    assert extra_seen > 0


def _raw_field_per_package(path: Path, field: str) -> dict[str, str]:
    """A field of every installed stanza, read with plain regular expressions."""
    found: dict[str, str] = {}
    for stanza in path.read_text().split("\n\n"):
        if "Status: install ok installed" not in stanza:
            continue
        name = re.search(r"^Package: (\S+)", stanza, re.M)
        value = re.search(rf"^{field}: (.*)$", stanza, re.M)
        if name and value:
            found[name.group(1)] = value.group(1)
    return found


def test_syft_multiple_keeps_every_versioned_package_and_warns_about_the_rest() -> None:
    case = by_case("syft-multiple")
    outcome = run_case(ANALYZER, case)
    assert isinstance(outcome, AnalysisResult)
    want = [p for p in case.expected["packages"] if p.get("version")]
    assert [(p.name, p.version, p.source_name, p.arch) for p in outcome.packages] == [
        (p["name"], p["version"], p.get("src_name", p["name"]), p["arch"]) for p in want
    ]
    assert any("no-version: no Version" in w for w in outcome.warnings)


def test_opkg_licenses_and_type() -> None:
    case = by_case("syft-opkg-status")
    outcome = run_case(ANALYZER, case)
    assert isinstance(outcome, AnalysisResult)
    licenses = [lic for p in outcome.packages for lic in p.licenses]
    assert sorted(licenses) == sorted(case.expected["licenses_union"])
    assert {p.type for p in outcome.packages} == {"opkg"}
    assert {p.found_in for p in outcome.packages} == {case.input}


def test_corrupted_stanzas_are_reported_as_warnings() -> None:
    outcome = run_case(ANALYZER, by_case("trivy-corrupsed"))
    assert isinstance(outcome, AnalysisResult)
    assert len(outcome.warnings) == 2
    assert any("invalid Version '1:5.#'" in w for w in outcome.warnings)
    assert all(w.startswith("var/lib/dpkg/status: ") for w in outcome.warnings)


def test_maintainer_and_found_in() -> None:
    outcome = run_case(ANALYZER, by_case("trivy-third-party"))
    assert isinstance(outcome, AnalysisResult)
    docker = next(p for p in outcome.packages if p.name == "docker-ce")
    assert docker.extra["maintainer"] == "Docker <support@docker.com>"
    assert docker.found_in == "var/lib/dpkg/status"
    assert docker.type == "deb" and docker.purl == ""


def test_status_d_md5sums_available_and_info_files_are_not_wanted() -> None:
    assert prefilter_accepts(ANALYZER, "var/lib/dpkg/status")
    assert prefilter_accepts(ANALYZER, "var/lib/dpkg/status.d/base")
    assert prefilter_accepts(ANALYZER, "var/lib/opkg/status")
    assert prefilter_accepts(ANALYZER, "usr/lib/opkg/status")
    assert not prefilter_accepts(ANALYZER, "var/lib/dpkg/status.d/base.md5sums")
    assert not prefilter_accepts(ANALYZER, "var/lib/dpkg/status-old")
    assert not prefilter_accepts(ANALYZER, "var/lib/dpkg/available")
    assert not prefilter_accepts(ANALYZER, "var/lib/dpkg/info/tar.md5sums")
    assert not prefilter_accepts(ANALYZER, "etc/status")
    assert not prefilter_accepts(ANALYZER, "var/lib/dpkg/status.d/sub/status")
    assert (CORPUS / "packages/dpkg/trivy-md5sums/var/lib/dpkg/info/tar.md5sums").exists()


# --- ground truth: the real dpkg ------------------------------------------------------------------


def dpkg_query(admindir: Path) -> list[tuple[str, str, str, str, str]]:
    """Packages whose files are on disk, as dpkg-query lists them (everything but rc/n states)."""
    out = subprocess.run(
        ["dpkg-query", f"--admindir={admindir}", "-W", f"-f={QUERY_FORMAT}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rows = []
    for line in out.splitlines():
        name, version, src, src_version, arch, abbrev = line.split("\t")
        if abbrev[1] not in "nc":
            rows.append((name, version, src, src_version, arch))
    return rows


def as_rows(result: AnalysisResult) -> list[tuple[str, str, str | None, str | None, str | None]]:
    return [(p.name, p.version, p.source_name, p.source_version, p.arch) for p in result.packages]


def test_this_machines_dpkg_database_matches_dpkg_query() -> None:
    status = Path("/var/lib/dpkg/status")
    truth = dpkg_query(Path("/var/lib/dpkg"))
    assert len(truth) > 50
    result = DpkgStatusAnalyzer().analyze(file_input(status, "var/lib/dpkg/status"))
    assert result.warnings == []
    assert as_rows(result) == truth  # same packages, same fields, same order
    ids = {p.id for p in result.packages}
    assert all(dep in ids for p in result.packages for dep in p.depends_on)
    libc = next(p for p in result.packages if p.name == "libc6")
    assert any(p for p in result.packages if libc.id in p.depends_on and p.name == "coreutils")


def _control(directory: Path, fields: dict[str, str]) -> None:
    (directory / "DEBIAN").mkdir(parents=True)
    text = "".join(f"{key}: {value}\n" for key, value in fields.items())
    (directory / "DEBIAN" / "control").write_text(text + "Description: Moat test package\n Long text.\n .\n More.\n")


def build_deb(work: Path, name: str, version: str, arch: str = "all", **fields: str) -> Path:
    """A real .deb made by dpkg-deb: one data file, optional conffile."""
    src = work / f"src-{name}-{arch}"
    _control(
        src,
        {
            "Package": name,
            "Version": version,
            "Architecture": arch,
            "Maintainer": "Moat Tests <tests@moat.invalid>",
            **{k.replace("_", "-"): v for k, v in fields.items()},
        },
    )
    (src / "usr/share/moat" / name).mkdir(parents=True)
    (src / "usr/share/moat" / name / arch).write_text(name)
    if name == "with-conffile":
        (src / "etc").mkdir()
        (src / "etc/with-conffile.conf").write_text("x=1\n")
        (src / "DEBIAN/conffiles").write_text("/etc/with-conffile.conf\n")
    deb = work / f"{name}_{arch}.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(src), str(deb)], check=True, capture_output=True)
    return deb


@pytest.fixture(scope="module")
def dpkg_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root whose dpkg database the real dpkg wrote, with packages in several states.

    installed (ii), held (hi), unpacked but not configured (iU), removed with conffiles left (rc),
    an epoch, a Source with its own version, Provides, alternatives, Pre-Depends and a multi-arch
    library installed for two architectures.
    """
    if not shutil.which("dpkg") or not shutil.which("dpkg-deb"):
        pytest.fail("dpkg and dpkg-deb are needed (Debian's dpkg package)")
    work = tmp_path_factory.mktemp("dpkg")
    root = work / "root"
    admin = root / "var/lib/dpkg"
    for sub in ("info", "updates", "triggers"):
        (admin / sub).mkdir(parents=True)
    (admin / "status").touch()
    (admin / "available").touch()
    native = subprocess.run(["dpkg", "--print-architecture"], check=True, capture_output=True, text=True)
    arch = native.stdout.strip()
    foreign = "i386" if arch != "i386" else "amd64"
    base = ["dpkg", f"--root={root}", f"--admindir={admin}", "--force-script-chrootless", "--force-not-root"]

    def run(*args: str, stdin: str | None = None) -> None:
        subprocess.run([*base, *args], check=True, capture_output=True, text=True, input=stdin)

    run("--add-architecture", foreign)
    debs = {
        "base": build_deb(work, "base-a", "1:2.0-1", Source="base-src (1:2.0-0.1)"),
        "mta": build_deb(work, "mta-x", "1.0", Provides="mail-transport-agent"),
        "lib": build_deb(work, "libmoat1", "1.2-3", arch, Multi_Arch="same"),
        "lib-foreign": build_deb(work, "libmoat1", "1.2-3", foreign, Multi_Arch="same"),
        "conf": build_deb(work, "with-conffile", "0.1"),
        "app": build_deb(
            work,
            "app",
            "3.1~rc1-2",
            arch,
            Pre_Depends="base-a",
            Depends="libmoat1 (>= 1.0), missing-pkg | mail-transport-agent, mta-x | base-a",
        ),
        "half": build_deb(work, "half", "1.0", Depends="base-a"),
    }
    run("-i", str(debs["base"]), str(debs["mta"]), str(debs["lib"]), str(debs["lib-foreign"]), str(debs["conf"]))
    run("-i", str(debs["app"]))
    run("-r", "with-conffile")
    run("--unpack", str(debs["half"]))
    run("--set-selections", stdin="base-a hold\n")
    return root


def test_database_written_by_dpkg_matches_dpkg_query(dpkg_root: Path) -> None:
    admin = dpkg_root / "var/lib/dpkg"
    status_text = (admin / "status").read_text()
    assert "Status: deinstall ok config-files" in status_text
    assert "Status: hold ok installed" in status_text
    assert "Status: install ok unpacked" in status_text
    result = ANALYZER.analyze(file_input(admin / "status", "var/lib/dpkg/status"))
    assert result.warnings == []
    assert as_rows(result) == dpkg_query(admin)
    names = [p.name for p in result.packages]
    assert "with-conffile" not in names and "half" in names and "base-a" in names
    base = next(p for p in result.packages if p.name == "base-a")
    assert (base.version, base.source_name, base.source_version) == ("1:2.0-1", "base-src", "1:2.0-0.1")


def test_dependencies_resolve_through_provides_alternatives_and_pre_depends(dpkg_root: Path) -> None:
    admin = dpkg_root / "var/lib/dpkg"
    result = ANALYZER.analyze(file_input(admin / "status", "var/lib/dpkg/status"))
    app = next(p for p in result.packages if p.name == "app")
    # base-a via Pre-Depends; libmoat1 once although two architectures are installed; the virtual
    # mail-transport-agent via mta-x; "mta-x | base-a" takes the first installed alternative.
    assert app.depends_on == ["base-a@1:2.0-1", "libmoat1@1.2-3", "mta-x@1.0"]
    half = next(p for p in result.packages if p.name == "half")
    assert half.depends_on == ["base-a@1:2.0-1"]
    assert [p.arch for p in result.packages if p.name == "libmoat1"] == sorted(
        p.arch or "" for p in result.packages if p.name == "libmoat1"
    )


# --- units ----------------------------------------------------------------------------------------


def test_parse_relations() -> None:
    value = "libc6 (>= 2.14), debconf (>= 0.5) | debconf-2.0,\n python3:any, foo [amd64] <!nocheck>"
    assert parse_relations(value) == [["libc6"], ["debconf", "debconf-2.0"], ["python3"], ["foo"]]
    assert parse_relations("") == []


@pytest.mark.parametrize(
    ("version", "ok"),
    [
        ("1:5.1.1-12ubuntu1", True),
        ("5:20.10.7~3-0~debian-buster", True),
        ("1.0", True),
        ("2024.85-r0", True),
        ("1:5.#", False),
        ("a:1.0", False),
        ("1.0-", False),
        ("", False),
        ("1.0-r#1", False),
    ],
)
def test_valid_version(version: str, ok: bool) -> None:
    assert valid_version(version) is ok


# --- hostile input --------------------------------------------------------------------------------

GOOD = b"Package: tar\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.34+dfsg-1\n"


def test_binary_garbage_is_a_parse_error() -> None:
    garbage = bytes(range(256)) * 64
    with pytest.raises(ParseError, match="not a dpkg status file"):
        analyze_bytes(garbage)


def test_random_text_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="not a dpkg status file"):
        analyze_bytes(b"hello: world\nthis is not: a status file\n")


def test_empty_file_has_no_packages() -> None:
    assert analyze_bytes(b"").packages == []
    assert analyze_bytes(b"\n\n").packages == []


def test_a_20_mb_line_is_skipped_in_bounded_chunks(tmp_path: Path) -> None:
    """The line is read a MB at a time and dropped; its stanza is skipped, the next one counts."""
    path = tmp_path / "status"
    with path.open("wb") as out:
        out.write(b"Package: huge\nDescription: ")
        for _ in range(20):
            out.write(b"x" * (1024 * 1024))
        out.write(b"\n\n" + GOOD)
    with path.open("rb") as stream:
        result = ANALYZER.analyze(FileInput("var/lib/dpkg/status", stream, path.stat().st_size))
    assert len(result.packages) == 1
    assert any("longer than" in w for w in result.warnings)


def test_only_a_20_mb_line_is_a_parse_error(tmp_path: Path) -> None:
    path = tmp_path / "status"
    with path.open("wb") as out:
        for _ in range(20):
            out.write(b"\xff" * (1024 * 1024))
    with path.open("rb") as stream, pytest.raises(ParseError, match="longer than"):
        ANALYZER.analyze(FileInput("var/lib/dpkg/status", stream, path.stat().st_size))


def test_a_100_mb_file_is_refused_by_size(tmp_path: Path) -> None:
    path = tmp_path / "status"
    with path.open("wb") as out:
        out.truncate(100 * 1024 * 1024)  # one 100 MB line of NULs, sparse on disk
    with path.open("rb") as stream, pytest.raises(ParseError, match="more than"):
        ANALYZER.analyze(FileInput("var/lib/dpkg/status", stream, path.stat().st_size))
    assert path.stat().st_size > ANALYZER.max_file_size


def test_nul_bytes_spoil_only_their_stanza() -> None:
    data = b"Package: bad\nVersion: 1.0\x00\nStatus: install ok installed\n\n" + GOOD
    result = analyze_bytes(data)
    assert [p.name for p in result.packages] == ["tar"]
    assert any("NUL" in w for w in result.warnings)


def test_non_utf8_maintainer_is_kept_with_replacement() -> None:
    data = GOOD + "Maintainer: Jos\xe9 <j@example.invalid>\n".encode("latin-1")
    (package,) = analyze_bytes(data).packages
    assert package.extra["maintainer"] == "Jos\ufffd <j@example.invalid>"


def test_crlf_line_endings_give_the_same_packages() -> None:
    path = CORPUS / "packages/dpkg/trivy-valid/var/lib/dpkg/status"
    data = path.read_bytes()
    lf = analyze_bytes(data)
    crlf = analyze_bytes(data.replace(b"\n", b"\r\n"))
    assert [p.to_dict() for p in crlf.packages] == [p.to_dict() for p in lf.packages]
    assert len(lf.packages) == 90


def test_multiline_fields_are_folded() -> None:
    data = GOOD + b"Depends: libc6 (>= 2.28),\n libacl1,\n\tlibselinux1\n\n"
    data += b"Package: libc6\nVersion: 2.36-9\nStatus: install ok installed\n\n"
    data += b"Package: libacl1\nVersion: 2.3.1-3\nStatus: install ok installed\n\n"
    tar = next(p for p in analyze_bytes(data).packages if p.name == "tar")
    assert tar.depends_on == ["libacl1@2.3.1-3", "libc6@2.36-9"]


def test_continuation_before_any_field_spoils_the_stanza() -> None:
    result = analyze_bytes(b" leading continuation\nPackage: x\nVersion: 1\n\n" + GOOD)
    assert [p.name for p in result.packages] == ["tar"]
    assert any("continuation line outside a field" in w for w in result.warnings)


def test_unknown_status_and_bad_source_are_skipped_with_warnings() -> None:
    data = b"Package: odd\nVersion: 1.0\nStatus: install ok flying\n\n"
    data += b"Package: badsrc\nVersion: 1.0\nSource: src (1:#)\nStatus: install ok installed\n\n" + GOOD
    result = analyze_bytes(data)
    assert [p.name for p in result.packages] == ["tar"]
    assert len(result.warnings) == 2


def test_too_many_stanzas_stop_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dpkg, "MAX_STANZAS", 3)
    data = b"\n".join(GOOD.replace(b"tar", f"p{i}".encode()) for i in range(10))
    result = analyze_bytes(data)
    assert len(result.packages) == 3
    assert any("more than 3 stanzas" in w for w in result.warnings)


def test_warnings_are_capped() -> None:
    data = b"".join(b"Package: p%d\nStatus: install ok installed\n\n" % i for i in range(50)) + GOOD
    result = analyze_bytes(data)
    assert [p.name for p in result.packages] == ["tar"]
    assert len(result.warnings) == dpkg.MAX_WARNINGS + 1
    assert result.warnings[-1].endswith("30 more stanzas skipped")


def test_a_field_folded_over_many_lines_is_bounded() -> None:
    """Two million continuation lines: joined once (linear), and past MAX_FIELD the stanza is dropped."""
    lines = b" a,\n" * (2 * 1024 * 1024)
    result = analyze_bytes(b"Package: big\nVersion: 1.0\nProvides: x,\n" + lines + b"\n" + GOOD)
    assert [p.name for p in result.packages] == ["tar"]
    assert any("larger than" in w for w in result.warnings)
    folded = b"Package: ok\nVersion: 1.0\nDepends: tar,\n" + b" tar,\n" * 100_000 + b"\n" + GOOD
    ok = next(p for p in analyze_bytes(folded).packages if p.name == "ok")
    assert ok.depends_on == ["tar@1.34+dfsg-1"]


def test_many_providers_of_one_virtual_name_are_bounded() -> None:
    stanza = "Package: p{0}\nVersion: 1.0\nStatus: install ok installed\nProvides: virtual\nDepends: virtual\n\n"
    data = "".join(stanza.format(i) for i in range(500)).encode()
    packages = analyze_bytes(data).packages
    assert len(packages) == 500
    assert max(len(p.depends_on) for p in packages) <= dpkg.MAX_PROVIDERS
    assert all(p.id not in p.depends_on for p in packages)
