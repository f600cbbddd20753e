"""The apk analyzer against the shared corpus (trivy and syft fixtures) and hostile databases."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from corpus import Case, cases, check_case, compare, known_differences, prefilter_accepts, run_case
from moat.errors import ParseError
from moat.inventory.analyzer import AnalysisResult, FileInput
from moat.inventory.analyzers import apk
from moat.inventory.analyzers.apk import ApkInstalledAnalyzer, dependency_name, split_licenses

ANALYZER = ApkInstalledAnalyzer()
CASES = cases("packages", "apk")
OWN_COMPARISON = {"syft-multiple-2"}
"""corpus.compare reads ``match: exact`` with no package list as "no packages"; this case lists only a
package_count and the dependency graph by name, so it is compared here instead."""


def analyze_bytes(data: bytes) -> AnalysisResult:
    return ANALYZER.analyze(FileInput("lib/apk/db/installed", io.BytesIO(data), len(data)))


def by_case(name: str) -> Case:
    return next(case for case in CASES if case.name == name)


def result_of(name: str) -> AnalysisResult:
    outcome = run_case(ANALYZER, by_case(name))
    assert isinstance(outcome, AnalysisResult)
    return outcome


# --- corpus -------------------------------------------------------------------------------------


def test_corpus_has_all_apk_cases() -> None:
    assert len(CASES) == 6


@pytest.mark.parametrize("case", [c for c in CASES if c.name not in OWN_COMPARISON], ids=lambda c: c.name)
def test_corpus_case(case: Case) -> None:
    check_case(ANALYZER, case, "apk")


def test_syft_multiple_2_count_and_dependency_graph() -> None:
    case = by_case("syft-multiple-2")
    assert prefilter_accepts(ANALYZER, case.input)
    packages = result_of("syft-multiple-2").packages
    assert len(packages) == case.expected["package_count"]
    graph = {p.name: sorted(dep.rsplit("@", 1)[0] for dep in p.depends_on) for p in packages}
    want = {name: sorted(deps) for name, deps in case.expected["depends_on_names"].items()}
    assert {name: deps for name, deps in graph.items() if deps} == want


def test_syft_multiple_1_dependency_edges() -> None:
    case = by_case("syft-multiple-1")
    packages = result_of("syft-multiple-1").packages
    by_id = {p.id: p.name for p in packages}
    edges = {(by_id[dep], p.name) for p in packages for dep in p.depends_on}
    assert edges == {(e["from"], e["to"]) for e in case.expected["dependency_of"]}


@pytest.mark.parametrize("name", ["syft-base", "syft-empty-deps-and-provides", "syft-single"])
def test_syft_checksum_and_commit_are_kept(name: str) -> None:
    (want,) = by_case(name).expected["packages"]
    (have,) = result_of(name).packages
    assert have.extra["checksum"] == want["checksum"]
    assert have.extra["commit"] == want["git_commit"]
    assert have.extra["maintainer"]


def test_trivy_apk_installed_matches_except_license_spelling() -> None:
    """trivy rewrites legacy license names (GPL2, zlib …) into SPDX ids; Moat keeps what L: says.

    Everything else must match exactly (order, source, arch, the dependency graph), and every
    package's licenses must be the terms of its own L: line.
    """
    case = by_case("trivy-apk-installed")
    assert "trivy-apk-installed" in known_differences("apk")
    outcome = result_of("trivy-apk-installed")
    assert compare(case, outcome, fields=("src_name", "src_version", "arch", "depends_on")) == []
    declared = _raw_licenses(case.input_path)
    for package in outcome.packages:
        terms = [t for t in re.split(r"[\s()]+", declared[package.name]) if t and t not in ("AND", "OR")]
        assert package.licenses == terms
    mit = next(p for p in outcome.packages if p.name == "musl")
    assert mit.licenses == ["MIT"]
    assert any("invalidPackageWithoutAVersion" in w for w in outcome.warnings)


def _raw_licenses(path: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    name = None
    for line in path.read_text().splitlines():
        if line.startswith("P:"):
            name = line[2:]
        elif line.startswith("L:") and name:
            found[name] = line[2:]
    return found


def test_origin_and_found_in() -> None:
    packages = result_of("trivy-apk-installed").packages
    libssl = next(p for p in packages if p.name == "libssl1.0")
    assert (libssl.source_name, libssl.source_version) == ("openssl", "1.0.2h-r1")
    assert libssl.extra["commit"]
    assert {p.found_in for p in packages} == {"lib/apk/db/installed"}
    assert {p.type for p in packages} == {"apk"} and {p.purl for p in packages} == {""}


def test_only_the_database_is_wanted() -> None:
    assert prefilter_accepts(ANALYZER, "lib/apk/db/installed")
    assert not prefilter_accepts(ANALYZER, "usr/lib/apk/db/installed-old")
    assert not prefilter_accepts(ANALYZER, "var/lib/installed")
    assert not prefilter_accepts(ANALYZER, "lib/apk/db/triggers")


# --- units ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "name"),
    [
        ("so:libc.musl-x86_64.so.1", "so:libc.musl-x86_64.so.1"),
        ("musl>=1.2", "musl"),
        ("busybox=1.36.1-r15", "busybox"),
        ("cmd:sh=1.36.1-r15", "cmd:sh"),
        ("py3-foo~1.2", "py3-foo"),
        ("/bin/sh", "/bin/sh"),
        ("!uclibc-utils", None),
        ("foo@edge", "foo"),
    ],
)
def test_dependency_name(token: str, name: str | None) -> None:
    assert dependency_name(token) == name


@pytest.mark.parametrize(
    ("value", "terms"),
    [
        ("MIT BSD GPL2+", ["MIT", "BSD", "GPL2+"]),
        ("( Apache-2.0 OR MIT ) AND MPL-2.0", ["Apache-2.0", "MIT", "MPL-2.0"]),
        ("MIT AND (Apache-2.0 OR MIT)", ["MIT", "Apache-2.0"]),
        ("GPL-2.0-or-later WITH Classpath-exception-2.0", ["GPL-2.0-or-later WITH Classpath-exception-2.0"]),
        ("", []),
    ],
)
def test_split_licenses(value: str, terms: list[str]) -> None:
    assert split_licenses(value) == terms


# --- dependency resolution on hand-written databases ------------------------------------------------


def record(name: str, version: str, depends: str = "", provides: str = "") -> bytes:
    lines = [f"P:{name}", f"V:{version}", "A:x86_64", f"o:{name}", "L:MIT"]
    if depends:
        lines.append(f"D:{depends}")
    if provides:
        lines.append(f"p:{provides}")
    return ("\n".join(lines) + "\n\n").encode()


def test_conflicts_are_not_dependencies_and_real_names_beat_provides() -> None:
    data = record("app", "1.0-r0", "!old-app libfoo so:libbar.so.1 missing")
    data += record("libfoo", "2.0-r1")
    data += record("fake-foo", "9-r0", provides="libfoo=9")
    data += record("libbar", "3.0-r0", provides="so:libbar.so.1=1")
    data += record("old-app", "0.1-r0")
    app = next(p for p in analyze_bytes(data).packages if p.name == "app")
    assert app.depends_on == ["libbar@3.0-r0", "libfoo@2.0-r1"]


def test_a_provided_name_with_two_providers_resolves_to_both() -> None:
    data = record("app", "1.0-r0", "cmd:sh") + record("bash", "5.2-r0", provides="cmd:sh")
    data += record("busybox", "1.36-r0", provides="cmd:sh=1.36-r0 cmd:busybox")
    app = analyze_bytes(data).packages[0]
    assert app.depends_on == ["bash@5.2-r0", "busybox@1.36-r0"]


def test_self_provided_dependency_is_not_a_self_edge() -> None:
    data = record("libx", "1-r0", "so:libx.so.1", provides="so:libx.so.1=1")
    assert analyze_bytes(data).packages[0].depends_on == []


# --- hostile input --------------------------------------------------------------------------------

GOOD = record("musl", "1.2.4-r2")


def test_binary_garbage_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="not an apk database"):
        analyze_bytes(bytes(range(256)) * 64)


def test_text_that_is_not_a_database_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="not an apk database"):
        analyze_bytes(b"hello world\nthis is text\n")


def test_empty_database_has_no_packages() -> None:
    assert analyze_bytes(b"").packages == []


def test_a_20_mb_line_is_skipped_in_bounded_chunks(tmp_path: Path) -> None:
    """The line is read a MB at a time and dropped; its stanza is skipped, the next one counts."""
    path = tmp_path / "installed"
    with path.open("wb") as out:
        out.write(b"P:huge\nV:1-r0\nT:")
        for _ in range(20):
            out.write(b"x" * (1024 * 1024))
        out.write(b"\n\n" + GOOD)
    with path.open("rb") as stream:
        result = ANALYZER.analyze(FileInput("lib/apk/db/installed", stream, path.stat().st_size))
    assert len(result.packages) == 1
    assert any("longer than" in w for w in result.warnings)


def test_only_a_20_mb_line_is_a_parse_error(tmp_path: Path) -> None:
    path = tmp_path / "installed"
    with path.open("wb") as out:
        for _ in range(20):
            out.write(b"\xff" * (1024 * 1024))
    with path.open("rb") as stream, pytest.raises(ParseError, match="longer than"):
        ANALYZER.analyze(FileInput("lib/apk/db/installed", stream, path.stat().st_size))


def test_a_100_mb_file_is_refused_by_size(tmp_path: Path) -> None:
    path = tmp_path / "installed"
    with path.open("wb") as out:
        out.truncate(100 * 1024 * 1024)  # one 100 MB line of NULs, sparse on disk
    with path.open("rb") as stream, pytest.raises(ParseError, match="more than"):
        ANALYZER.analyze(FileInput("lib/apk/db/installed", stream, path.stat().st_size))
    assert path.stat().st_size > ANALYZER.max_file_size


def test_nul_bytes_spoil_only_their_record() -> None:
    result = analyze_bytes(b"P:bad\nV:1\x00-r0\n\n" + GOOD)
    assert [p.name for p in result.packages] == ["musl"]
    assert any("NUL" in w for w in result.warnings)


def test_non_utf8_and_crlf() -> None:
    data = GOOD.replace(b"L:MIT\n", "m:Timo Ter\xe4s <t@example.invalid>\nL:MIT\n".encode("latin-1"))
    (package,) = analyze_bytes(data.replace(b"\n", b"\r\n")).packages
    assert (package.name, package.version, package.licenses) == ("musl", "1.2.4-r2", ["MIT"])
    assert package.extra["maintainer"] == "Timo Ter\ufffds <t@example.invalid>"


def test_crlf_corpus_database_gives_the_same_packages() -> None:
    data = by_case("trivy-apk-installed").input_path.read_bytes()
    lf = analyze_bytes(data)
    crlf = analyze_bytes(data.replace(b"\n", b"\r\n"))
    assert [p.to_dict() for p in crlf.packages] == [p.to_dict() for p in lf.packages]
    assert len(lf.packages) == 15


def test_malformed_line_and_bad_version_skip_their_records() -> None:
    data = b"P:odd\nV:1.0-r0\nthis line has no key\n\n" + b"P:badver\nV:#1\n\n" + GOOD
    result = analyze_bytes(data)
    assert [p.name for p in result.packages] == ["musl"]
    assert len(result.warnings) == 2


def test_too_many_records_stop_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(apk, "MAX_RECORDS", 4)
    data = b"".join(record(f"p{i}", "1-r0") for i in range(10))
    result = analyze_bytes(data)
    assert len(result.packages) == 4
    assert any("more than 4 records" in w for w in result.warnings)


def test_many_providers_of_one_name_are_bounded() -> None:
    data = b"".join(record(f"p{i}", "1-r0", "so:libshared.so.1", provides="so:libshared.so.1=1") for i in range(500))
    packages = analyze_bytes(data).packages
    assert len(packages) == 500
    assert max(len(p.depends_on) for p in packages) <= apk.MAX_PROVIDERS
    assert all(p.id not in p.depends_on for p in packages)
