"""``moat image`` on real vulnerable images, against findings computed without Moat.

The images come from :mod:`fixtures.vulnimages`. The expected findings are computed here from the
raw advisory data in ``../shared/vulndata`` (the OSV zips, the Debian security tracker's DSA list,
the Alpine secdb YAML, CISA KEV and FIRST EPSS) with each ecosystem's own version tool: PEP 440 via
``packaging`` for PyPI, a SemVer 2.0 comparison written below for Go (Go's stdlib versions, read
from the binaries by ``go version``), ``dpkg --compare-versions`` for Debian,
``rpm.vercmp`` (rpm's Lua interface) for AlmaLinux and ``apk version -t`` run inside the real
Alpine root filesystem for Alpine. The installed packages come from the package managers
(dpkg-query, rpm, pip, the apk database), never from Moat's inventory.

The finding rules being checked (what a scanner of this kind must do, stated independently of
Moat's code):

- an advisory applies when the installed version falls in one of its ranges (OSV evaluation) or
  its versions list; a DSA line or secdb entry when the installed *source* version is older than the
  fixed one; distro packages are judged by their distro's data only;
- one finding per CVE per package instance: an advisory fixing several CVEs gives one finding per
  CVE (AlmaLinux lists them under ``related``), an advisory without a CVE gives one finding under its
  own id, and two advisories naming the same CVE for the same package give one finding;
- ``fixed_versions`` are the advisories' fixed versions above the installed one, and the status is
  ``fixed`` when there is one.
"""

from __future__ import annotations

import csv
import functools
import io
import itertools
import json
import re
import subprocess
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
import zstandard
from packaging.version import InvalidVersion, Version

import corpus
from e2e.conftest import MOAT_TIMEOUT, ImageCase, Sandbox, make_sandbox, moat_executable
from fixtures import groundtruth, vulnimages
from fixtures.images import BuiltImage

pytestmark = [pytest.mark.images, pytest.mark.xdist_group("images")]

VULNDATA = corpus.SHARED / "vulndata"
CVE = re.compile(r"^CVE-\d{4}-\d{4,}$")

Key = tuple[str, str, str, str]
"""(vulnerability id, package name, installed version, where): ``where`` is the binary for Go
findings (three binaries carry the same stdlib) and empty otherwise."""


# ------------------------------------------------------------------------------------ expectations


@dataclass(slots=True)
class Expected:
    """What one finding must say, gathered from every advisory that names its CVE for its package."""

    advisories: set[str] = field(default_factory=set)
    fixed: set[str] = field(default_factory=set)


@dataclass(slots=True)
class Expectation:
    findings: dict[Key, Expected] = field(default_factory=dict)

    def add(self, ids: list[str], package: str, version: str, where: str, advisory: str, fixed: list[str]) -> None:
        for vuln_id in ids:
            entry = self.findings.setdefault((vuln_id, package, version, where), Expected())
            entry.advisories.add(advisory)
            entry.fixed.update(fixed)

    def all(self) -> set[Key]:
        return set(self.findings)


def finding_ids(record_id: str, *lists: list[str]) -> list[str]:
    """The CVEs an advisory is about (its id, aliases, and for distro errata ``related``), else its id."""
    cves = [name for name in [record_id, *(n for names in lists for n in names)] if CVE.match(name)]
    return list(dict.fromkeys(cves)) or [record_id]


Compare = Callable[[str, str], int]


def osv_affected(version: str, entry: dict[str, Any], compare: Compare) -> tuple[bool, list[str]]:
    """OSV's evaluation (https://ossf.github.io/osv-schema/#evaluation) for one affected entry.

    Per range: events sorted by version (``introduced: "0"`` first, ties kept in listed order);
    walking them, ``introduced <= v`` makes v affected, ``fixed <= v`` or ``last_affected < v``
    makes it not; ``limit`` events bound the range. ``GIT`` ranges need a commit graph and are left
    out. Returns whether ``version`` is affected and the fixed versions above it.
    """
    affected = any(compare(version, listed) == 0 for listed in entry.get("versions") or [])
    fixed_above = []
    for rng in entry.get("ranges") or []:
        if rng.get("type") == "GIT":
            continue
        events = [(kind, value) for event in rng["events"] for kind, value in event.items()]
        fixed_above += [v for kind, v in events if kind == "fixed" and compare(v, version) > 0]
        limits = [v for kind, v in events if kind == "limit"]
        if limits and not any(v == "*" or compare(version, v) < 0 for v in limits):
            continue

        def order(a: tuple[str, str], b: tuple[str, str]) -> int:
            if a[1] == b[1]:
                return 0
            if a == ("introduced", "0"):
                return -1
            if b == ("introduced", "0"):
                return 1
            return compare(a[1], b[1])

        state = False
        for kind, value in sorted((e for e in events if e[0] != "limit"), key=functools.cmp_to_key(order)):
            if kind == "introduced" and (value == "0" or compare(version, value) >= 0):
                state = True
            elif kind in ("fixed", "last_affected"):
                # v at or past a fix is safe; past (not at) a last_affected version is.
                position = compare(version, value)
                if position > 0 or (position == 0 and kind == "fixed"):
                    state = False
        affected = affected or state
    return affected, fixed_above


@contextmanager
def tar_zst(path: Path) -> Iterator[tarfile.TarFile]:
    """A zstd-compressed tar read as a stream (the vulndata raw files and EPSS are shipped so)."""
    with (
        path.open("rb") as raw,
        zstandard.ZstdDecompressor().stream_reader(raw) as stream,
        tarfile.open(fileobj=stream, mode="r|") as tar,
    ):
        yield tar


def zip_records(path: Path) -> Iterator[dict[str, Any]]:
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            if name.endswith(".json"):
                yield json.loads(archive.read(name))


# -- version tools ----------------------------------------------------------------------------------


def pep440_compare(a: str, b: str) -> int:
    va, vb = Version(a), Version(b)
    return (va > vb) - (va < vb)


def semver_compare(a: str, b: str) -> int:
    """SemVer 2.0 precedence (https://semver.org/#spec-item-11), the order Go's vulndb ranges use."""

    def parse(v: str) -> tuple[list[int], list[str] | None]:
        core, _, pre = v.removeprefix("v").split("+", 1)[0].partition("-")
        parts = [int(x) for x in core.split(".")]
        return parts + [0] * (3 - len(parts)), (pre.split(".") if _ else None)

    (ca, pa), (cb, pb) = parse(a), parse(b)
    if ca != cb:
        return -1 if ca < cb else 1
    if pa is None or pb is None:
        return (pa is None) - (pb is None)
    for x, y in zip(pa, pb, strict=False):
        if x == y:
            continue
        if x.isdigit() and y.isdigit():
            return -1 if int(x) < int(y) else 1
        if x.isdigit() != y.isdigit():
            return -1 if x.isdigit() else 1
        return -1 if x < y else 1
    return (len(pa) > len(pb)) - (len(pa) < len(pb))


@functools.cache
def dpkg_compare(a: str, b: str) -> int:
    def holds(op: str) -> bool:
        return subprocess.run(["dpkg", "--compare-versions", a, op, b], check=False).returncode == 0

    return -1 if holds("lt") else (0 if holds("eq") else 1)


@functools.cache
def rpm_compare(a: str, b: str) -> int:
    """rpm's own EVR comparison (``rpm.vercmp`` understands ``epoch:version-release``)."""
    for value in (a, b):
        assert re.fullmatch(r"[\w.:~^+-]+", value), value  # safe inside a Lua string literal
    out = subprocess.run(
        ["rpm", "--eval", f'%{{lua: print(rpm.vercmp("{a}", "{b}"))}}'], capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip())


class ApkCompare:
    """``apk version -t`` inside the real Alpine 3.23 root filesystem (chroot, no network)."""

    def __init__(self, rootfs: Path) -> None:
        self.rootfs = rootfs
        self._seen: dict[tuple[str, str], int] = {}

    def __call__(self, a: str, b: str) -> int:
        if (a, b) not in self._seen:
            self._seen[a, b] = self._run(a, b)
        return self._seen[a, b]

    def _run(self, a: str, b: str) -> int:
        out = subprocess.run(
            ["chroot", str(self.rootfs), "/sbin/apk", "--no-network", "version", "-t", a, b],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return {"<": -1, "=": 0, ">": 1}[out]


# -- installed packages, from the package managers --------------------------------------------------


def go_stdlib(rootfs: Path, binary: str) -> str:
    """The Go release a binary was built with, as ``go version`` reads it (``go1.19.8`` → ``1.19.8``)."""
    out = subprocess.run(["go", "version", str(rootfs / binary)], capture_output=True, text=True, check=True).stdout
    release = out.rsplit(": ", 1)[1].strip()
    assert release.startswith("go"), out
    return release.removeprefix("go")


def dpkg_with_sources(rootfs: Path) -> list[tuple[str, str, str, str]]:
    """(binary, version, source, source version) of every installed package, from dpkg-query."""
    out = subprocess.run(
        [
            "dpkg-query",
            f"--admindir={rootfs / 'var/lib/dpkg'}",
            "-W",
            "-f",
            "${Package}\t${Version}\t${source:Package}\t${source:Version}\n",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [tuple(line.split("\t")) for line in out.splitlines()]  # type: ignore[misc]


def rpm_installed(rootfs: Path) -> list[tuple[str, str]]:
    """(name, [epoch:]version-release) from the image's SQLite rpmdb, read by rpm."""
    out = subprocess.run(
        [
            "rpm",
            "--dbpath",
            str(rootfs / "var/lib/rpm"),
            "--define",
            "_db_backend sqlite",
            "-qa",
            "--qf",
            "%{NAME}\t%|EPOCH?{%{EPOCH}:}|%{VERSION}-%{RELEASE}\n",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [tuple(line.split("\t")) for line in out.splitlines() if line]  # type: ignore[misc]


def apk_installed(rootfs: Path) -> list[tuple[str, str, str]]:
    """(P, V, o) of every stanza of lib/apk/db/installed (apk's own field letters)."""
    found = []
    for stanza in (rootfs / "lib/apk/db/installed").read_text().split("\n\n"):
        fields = {line[0]: line[2:] for line in stanza.splitlines() if len(line) > 2 and line[1] == ":"}
        if "P" in fields:
            found.append((fields["P"], fields["V"], fields.get("o", fields["P"])))
    return found


# -- the feeds ----------------------------------------------------------------------------------------


def expect_pypi(installed: set[tuple[str, str]]) -> Expectation:
    """``installed`` holds (PEP 503 name, version) pairs as pip lists them."""
    wanted = {name: version for name, version in installed}
    out = Expectation()
    for record in zip_records(VULNDATA / "osv" / "PyPI.zip"):
        if record.get("withdrawn"):
            continue
        for entry in record.get("affected", []):
            package = entry.get("package", {})
            name = groundtruth.canonical_pypi(package.get("name", ""))
            if package.get("ecosystem") != "PyPI" or name not in wanted:
                continue
            hit, fixed = osv_affected(wanted[name], entry, _lenient(pep440_compare))
            if hit:
                ids = finding_ids(record["id"], record.get("aliases") or [])
                out.add(ids, name, wanted[name], "", record["id"], fixed)
    return out


def _lenient(compare: Compare) -> Compare:
    """PEP 440 comparison that orders an unparseable advisory version nowhere near a real one.

    None of the advisories for the test packages has one; this only keeps a future data refresh
    from crashing the expectation instead of failing the comparison with Moat.
    """

    def wrapped(a: str, b: str) -> int:
        try:
            return compare(a, b)
        except InvalidVersion:
            return 1 if a != b else 0

    return wrapped


def expect_go_stdlib(binaries: dict[str, str]) -> Expectation:
    """``binaries`` maps each binary path to the Go release it was built with."""
    out = Expectation()
    for record in zip_records(VULNDATA / "osv" / "Go.zip"):
        if record.get("withdrawn"):
            continue
        for entry in record.get("affected", []):
            if entry.get("package", {}).get("name") != "stdlib":
                continue
            for binary, release in binaries.items():
                hit, fixed = osv_affected(release, entry, semver_compare)
                if hit:
                    ids = finding_ids(record["id"], record.get("aliases") or [])
                    out.add(ids, "stdlib", "v" + release, binary, record["id"], fixed)
    return out


@dataclass(frozen=True, slots=True)
class DsaLine:
    advisory: str
    cves: tuple[str, ...]
    release: str
    source: str
    fixed: str


def dsa_lines() -> list[DsaLine]:
    """Every ``[release] - source version`` line of the DSA list, with its advisory and CVEs.

    Lines whose version is a tag (``<not-affected>``, ``<unfixed>``) are left out: none of them is
    for bullseye in this copy of the list.
    """
    archive = VULNDATA / "raw" / "debian-security-tracker-DSA-DLA-lists-2023-04.tar.zst"
    with tar_zst(archive) as tar:
        text = ""
        for member in tar:
            if member.name.endswith("data/DSA/list"):
                text = tar.extractfile(member).read().decode()  # type: ignore[union-attr]
                break
    assert text, "no data/DSA/list in the tracker archive"
    lines = []
    advisory = ""
    cves: tuple[str, ...] = ()
    header = re.compile(r"^\[[^]]+\] (DSA-\d+-\d+) ")
    for raw_line in text.splitlines():
        if (m := header.match(raw_line)) is not None:
            advisory, cves = m.group(1), ()
        elif raw_line.startswith("\t{"):
            cves = tuple(raw_line.strip().strip("{}").split())
        elif (m := re.match(r"^\t\[(\w+)\] - (\S+) ([^<\s]\S*)", raw_line)) is not None and advisory:
            lines.append(DsaLine(advisory, cves, m.group(1), m.group(2), m.group(3)))
    return lines


def expect_debian(packages: list[tuple[str, str, str, str]], release: str) -> Expectation:
    out = Expectation()
    for line in dsa_lines():
        if line.release != release:
            continue
        for binary, version, source, source_version in packages:
            if source == line.source and dpkg_compare(source_version, line.fixed) < 0:
                out.add(finding_ids(line.advisory, list(line.cves)), binary, version, "", line.advisory, [line.fixed])
    return out


def expect_alma(packages: list[tuple[str, str]]) -> Expectation:
    wanted = dict(packages)
    out = Expectation()
    for record in zip_records(VULNDATA / "osv" / "AlmaLinux-9.zip"):
        if record.get("withdrawn"):
            continue
        for entry in record.get("affected", []):
            package = entry.get("package", {})
            if package.get("ecosystem") != "AlmaLinux:9" or package.get("name") not in wanted:
                continue
            version = wanted[package["name"]]
            hit, fixed = osv_affected(version, entry, rpm_compare)
            if hit:
                ids = finding_ids(record["id"], record.get("aliases") or [], record.get("related") or [])
                out.add(ids, package["name"], version, "", record["id"], fixed)
    return out


def alpine_secfixes(branch: str) -> dict[str, dict[str, list[str]]]:
    """origin → {fixed version: [CVE …]} for one secdb branch (main and community)."""
    archive = VULNDATA / "raw" / "alpine-secdb-v3.3-v3.11-legacy.tar.zst"
    found: dict[str, dict[str, list[str]]] = {}
    with tar_zst(archive) as tar:
        for member in tar:
            if re.search(rf"/{re.escape(branch)}/(main|community)\.yaml$", member.name):
                data = yaml.safe_load(tar.extractfile(member).read())  # type: ignore[union-attr]
                for item in data.get("packages") or []:
                    pkg = item["pkg"]
                    for fixed, cves in (pkg.get("secfixes") or {}).items():
                        found.setdefault(pkg["name"], {}).setdefault(str(fixed), []).extend(cves or [])
    assert found, f"no secdb files for {branch}"
    return found


def expect_alpine(packages: list[tuple[str, str, str]], compare: Compare) -> Expectation:
    secfixes = alpine_secfixes("v3.11")
    out = Expectation()
    for name, version, origin in packages:
        for fixed, cves in secfixes.get(origin, {}).items():
            if fixed != "0" and compare(version, fixed) < 0:
                for cve in cves:
                    # secdb entries have no advisory id of their own; OSV names Alpine's records
                    # ALPINE-<CVE> (osv.dev's Alpine ecosystem), the id a finding cites.
                    out.add([cve], name, version, "", f"ALPINE-{cve}", [fixed])
    return out


# -- enrichment ----------------------------------------------------------------------------------------


@functools.cache
def kev_cves() -> frozenset[str]:
    data = json.loads((VULNDATA / "enrichment" / "known_exploited_vulnerabilities.json").read_text())
    return frozenset(item["cveID"] for item in data["vulnerabilities"])


def epss_scores(cves: set[str]) -> dict[str, tuple[float, float]]:
    archive = VULNDATA / "enrichment" / "epss-scores-by-cve-year.tar.zst"
    found = {}
    with tar_zst(archive) as tar:
        for member in tar:
            if not member.isfile() or not member.name.endswith(".csv"):
                continue
            text = tar.extractfile(member).read().decode()  # type: ignore[union-attr]
            for row in csv.reader(io.StringIO(text), delimiter=";"):
                if len(row) >= 3 and row[0] in cves:
                    found[row[0]] = (float(row[1]), float(row[2]))
    return found


# ------------------------------------------------------------------------------------ running moat


def moat(sandbox: Sandbox, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [moat_executable(), *args],
        cwd=sandbox.inputs,
        env=sandbox.env,
        capture_output=True,
        text=True,
        timeout=MOAT_TIMEOUT,
        check=False,
    )


@dataclass(slots=True)
class VulnDb:
    sandbox: Sandbox
    path: Path


@pytest.fixture(scope="module")
def vulndb(tmp_path_factory: pytest.TempPathFactory) -> VulnDb:
    """One database built by ``moat db update --from`` the whole ../shared/vulndata directory."""
    sandbox = make_sandbox(tmp_path_factory.mktemp("vulndb"))
    proc = moat(sandbox, "db", "update", "--from", str(VULNDATA), "--cache-dir", str(sandbox.cache), "--quiet")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    path = sandbox.cache / "db" / "vuln.db"
    assert path.is_file(), f"moat db update wrote no {path}: {proc.stdout[-2000:]}"
    return VulnDb(sandbox, path)


@dataclass(slots=True)
class Scan:
    image: BuiltImage
    rootfs: Path
    report: dict[str, Any]
    diff_ids: list[str]

    def vulns(self, *types: str) -> list[dict[str, Any]]:
        return [v for v in self.report["vulnerabilities"] if not types or v["package"]["type"] in types]


def scan(vulndb: VulnDb, factory: pytest.TempPathFactory, image: BuiltImage) -> Scan:
    tag = image.tag
    rootfs = groundtruth.unpack(image.layout, tag, factory.mktemp(f"{image.name}-rootfs"))
    output = vulndb.sandbox.out / f"{image.name}.json"
    proc = moat(
        vulndb.sandbox,
        "image",
        image.target("oci-dir"),
        "--format",
        "json",
        "-o",
        str(output),
        "--db",
        str(vulndb.path),
        "--cache-dir",
        str(vulndb.sandbox.cache),
        "--quiet",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    report = json.loads(output.read_text())
    return Scan(image, rootfs, report, groundtruth.image_diff_ids(image.layout, tag))


def moat_keys(found: list[dict[str, Any]]) -> set[Key]:
    keys = set()
    for vuln in found:
        package = vuln["package"]
        name = groundtruth.canonical_pypi(package["name"]) if package["type"] == "pypi" else package["name"]
        where = package["found_in"] if package["type"] == "golang" else ""
        keys.add((vuln["id"], name, package["version"], where))
    return keys


def compare_findings(found: list[dict[str, Any]], expected: Expectation) -> None:
    """The same set of (id, package, version), and per finding the advisories, fixes and status."""
    got = moat_keys(found)
    want = expected.all()
    assert got == want, f"missing {sorted(want - got)[:15]}\nunexpected {sorted(got - want)[:15]}"
    assert len(found) == len(got), "one finding per CVE and package instance"
    for vuln in found:
        (key,) = moat_keys([vuln])
        entry = expected.findings[key]
        assert vuln["advisory_id"] in entry.advisories, (key, vuln["advisory_id"], entry.advisories)
        named = {vuln["advisory_id"], *vuln["aliases"]}
        assert entry.advisories <= named, (key, entry.advisories - named)
        assert set(vuln["fixed_versions"]) == entry.fixed, (key, vuln["fixed_versions"], entry.fixed)
        assert vuln["status"] == ("fixed" if entry.fixed else "affected"), (key, vuln["status"])
    kev = kev_cves()
    epss = epss_scores({v["id"] for v in found if CVE.match(v["id"])})
    for vuln in found:
        assert vuln["kev"] == (vuln["id"] in kev), vuln["id"]
        score = epss.get(vuln["id"])
        assert (vuln["epss"], vuln["epss_percentile"]) == (score if score else (None, None)), vuln["id"]


# ------------------------------------------------------------------------------------ the scans


@pytest.fixture(scope="module")
def debian_scan(vulndb: VulnDb, tmp_path_factory: pytest.TempPathFactory) -> Scan:
    return scan(vulndb, tmp_path_factory, vulnimages.vuln_debian_image())


@pytest.fixture(scope="module")
def bullseye_scan(vulndb: VulnDb, tmp_path_factory: pytest.TempPathFactory) -> Scan:
    return scan(vulndb, tmp_path_factory, vulnimages.bullseye_image())


@pytest.fixture(scope="module")
def alma_scan(vulndb: VulnDb, tmp_path_factory: pytest.TempPathFactory) -> Scan:
    return scan(vulndb, tmp_path_factory, vulnimages.alma9_image())


@pytest.fixture(scope="module")
def alpine_scan(vulndb: VulnDb, tmp_path_factory: pytest.TempPathFactory) -> Scan:
    return scan(vulndb, tmp_path_factory, vulnimages.alpine311_image())


@pytest.fixture(scope="module")
def apk_compare(alpine: ImageCase) -> ApkCompare:
    return ApkCompare(alpine.rootfs)


# ------------------------------------------------------------------------------------ tests: PyPI + Go


def test_pypi_findings_equal_the_advisories(debian_scan: Scan) -> None:
    installed = groundtruth.pip_packages(debian_scan.rootfs)
    pinned = {groundtruth.canonical_pypi(r.split("==")[0]): Version(r.split("==")[1]) for r in vulnimages.VULN_PIP}
    assert {name: Version(version) for name, version in installed} == pinned  # django==2.2.0 installs as 2.2
    expected = expect_pypi(installed)
    # The README's worked example, and the size of the answer, so a broken expectation cannot pass.
    assert ("CVE-2023-32681", "requests", "2.19.1", "") in expected.all()
    assert len(expected.all()) > 40
    compare_findings(debian_scan.vulns("pypi"), expected)


def test_pypi_findings_sit_in_the_pip_layer(debian_scan: Scan) -> None:
    pip_layer = debian_scan.diff_ids[2]
    found = debian_scan.vulns("pypi")
    assert found
    assert {v["package"]["layer"] for v in found} == {pip_layer}
    assert all(v["package"]["found_in"].startswith(vulnimages.PIP_SITE + "/") for v in found)


def test_go_stdlib_findings_equal_the_go_vulndb(debian_scan: Scan) -> None:
    binaries = {path: go_stdlib(debian_scan.rootfs, path) for path in vulnimages.GO_DEBS.values()}
    # Debian's packages record the toolchain too: Built-Using names golang-1.19 (= 1.19.8-2).
    assert set(binaries.values()) == {"1.19.8"}
    expected = expect_go_stdlib(binaries)
    assert ("CVE-2023-45288", "stdlib", "v1.19.8", "usr/bin/skopeo") in expected.all()  # GO-2024-2687
    compare_findings(debian_scan.vulns("golang"), expected)
    go_layer = debian_scan.diff_ids[3]
    assert {v["package"]["layer"] for v in debian_scan.vulns("golang")} == {go_layer}


def test_debian_12_packages_are_not_matched_without_bookworm_data(debian_scan: Scan) -> None:
    # The DSA list of April 2023 has no bookworm lines, so no Debian 12 package can be judged: none is
    # reported, and the report says the OS packages went unchecked rather than staying silent.
    assert debian_scan.report["os"]["name"].startswith("12")
    assert debian_scan.vulns("deb") == []
    assert any("debian 12" in w.lower() for w in debian_scan.report["warnings"]), debian_scan.report["warnings"]


# ------------------------------------------------------------------------------------ tests: Debian 11


def test_debian_findings_equal_the_dsa_list(bullseye_scan: Scan) -> None:
    packages = dpkg_with_sources(bullseye_scan.rootfs)
    assert {p[0] for p in packages} == set(vulnimages.BULLSEYE_VERSIONS)
    expected = expect_debian(packages, "bullseye")
    assert ("CVE-2022-37434", "zlib1g", "1:1.2.11.dfsg-2+deb11u1", "") in expected.all()  # DSA-5218-1
    # bsdutils' own version has an epoch its source lacks: only the source version is below the fix.
    assert ("CVE-2021-3995", "bsdutils", "1:2.36.1-8", "") in expected.all()  # DSA-5055-1
    assert not any(k[1] in ("libuuid1", "liblzma5", "base-files") for k in expected.all())
    compare_findings(bullseye_scan.vulns(), expected)


def test_debian_backport_is_not_reported(bullseye_scan: Scan) -> None:
    backport = vulnimages.BACKPORT
    installed = {p[0]: p for p in dpkg_with_sources(bullseye_scan.rootfs)}[backport.package]
    fixed = {line.fixed for line in dsa_lines() if line.advisory == backport.advisory and line.release == "bullseye"}
    assert fixed == {backport.version}
    # The Debian version is at the tracker's fix while its upstream part is older than upstream's fix.
    assert dpkg_compare(installed[3], backport.version) >= 0
    assert dpkg_compare(installed[3].split("-")[0], backport.upstream_fix) < 0
    openssl = [v for v in bullseye_scan.vulns() if v["package"]["name"] == backport.package]
    assert openssl == []
    reported = {v["id"] for v in bullseye_scan.vulns()} | {a for v in bullseye_scan.vulns() for a in v["aliases"]}
    assert not reported & {backport.advisory, *backport.cves}


# ------------------------------------------------------------------------------------ tests: AlmaLinux 9


def test_alma_findings_equal_the_alsa_records(alma_scan: Scan) -> None:
    packages = rpm_installed(alma_scan.rootfs)
    assert {p[0] for p in packages} == {r[0] for r in vulnimages.ALMA_RPMS}
    expected = expect_alma(packages)
    keys = expected.all()
    assert ("CVE-2023-38408", "openssh", "8.7p1-29.el9_2", "") in keys  # ALSA-2023:4412, the README example
    assert ("CVE-2023-38408", "openssh-clients", "8.7p1-30.el9_2", "") not in keys  # exactly at the fix
    assert not any(k[1] in ("zlib", "bash") for k in keys)
    assert any(k[1] == "openssl-libs" for k in keys) and any(k[1] == "tar" for k in keys)  # epochs 1 and 2
    compare_findings(alma_scan.vulns(), expected)


# ------------------------------------------------------------------------------------ tests: Alpine 3.11


def test_alpine_findings_equal_the_secdb(alpine_scan: Scan, apk_compare: ApkCompare) -> None:
    packages = apk_installed(alpine_scan.rootfs)
    assert {p[0] for p in packages} == {p[1] for p in vulnimages.ALPINE_PACKAGES}
    expected = expect_alpine(packages, apk_compare)
    keys = expected.all()
    assert ("CVE-2019-1551", "libssl1.1", "1.1.1d-r2", "") in keys
    assert ("CVE-2019-5747", "ssl_client", "1.30.1-r1", "") in keys  # past the 1.29 branch fix, not 1.30's
    assert not any(k[1] in ("busybox", "musl", "zlib", "ncurses-libs") for k in keys)
    compare_findings(alpine_scan.vulns(), expected)


# ------------------------------------------------------------------------------------ the expectation code


def test_semver_compare_orders_like_semver_org() -> None:
    # The precedence example of https://semver.org/#spec-item-11, and Go's "-0" lowest prerelease.
    chain = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11",
             "1.0.0-rc.1", "1.0.0", "1.19.8", "1.22.0-0", "1.22.0"]
    for low, high in itertools.pairwise(chain):
        assert semver_compare(low, high) == -1 and semver_compare(high, low) == 1, (low, high)
    assert semver_compare("v1.19.8", "1.19.8") == 0


def test_osv_evaluation_follows_the_schema_examples() -> None:
    entry = {"ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.21.9"},
                                                         {"introduced": "1.22.0-0"}, {"fixed": "1.22.2"}]}]}
    assert osv_affected("1.19.8", entry, semver_compare) == (True, ["1.21.9", "1.22.2"])
    assert osv_affected("1.21.9", entry, semver_compare) == (False, ["1.22.2"])
    assert osv_affected("1.22.1", entry, semver_compare) == (True, ["1.22.2"])
    last = {"ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "1.0"}, {"last_affected": "1.5"}]}]}
    assert osv_affected("1.5", last, pep440_compare)[0] and not osv_affected("1.5.1", last, pep440_compare)[0]
    assert osv_affected("2.0", {"versions": ["2.0.0"]}, pep440_compare)[0]


def test_comparison_rejects_a_wrong_report(bullseye_scan: Scan) -> None:
    # The comparison itself must catch the mistakes it exists for: a missed finding, the backport
    # reported after all, and a wrong fixed version.
    expected = expect_debian(dpkg_with_sources(bullseye_scan.rootfs), "bullseye")
    found = bullseye_scan.vulns()
    compare_findings(found, expected)
    backport = vulnimages.BACKPORT
    fake = json.loads(json.dumps(found[0]))
    fake.update(id=backport.cves[0], advisory_id=backport.advisory, fixed_versions=[backport.version])
    fake["package"].update(name=backport.package, version=backport.version)
    wrong_fix = json.loads(json.dumps(found[0]))
    wrong_fix["fixed_versions"] = ["99"]
    for broken in (found[1:], [*found, fake], [wrong_fix, *found[1:]]):
        with pytest.raises(AssertionError):
            compare_findings(broken, expected)
