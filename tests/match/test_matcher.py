"""The matcher on real advisory data, with every expected finding computed without Moat's matcher.

Stores are built from the real files in ../shared/vulndata (OSV records through the ingest's
parser, Debian rows by hand from the DSA list text). Expected answers come from the raw JSON or
text, evaluated with ``packaging.version`` (PyPI), ``dpkg --compare-versions`` (Debian) and
``rpm.vercmp`` (AlmaLinux).
"""

from __future__ import annotations

import json
import re
import subprocess
import zipfile
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from packaging.version import InvalidVersion, Version

from corpus import SHARED
from moat.match.matcher import match_inventory
from moat.model import CVSS, Artifact, Inventory, OSInfo, Package, Vulnerability
from moat.vulndb.osv import parse_record
from moat.vulndb.store import AdvisoryRecord, AffectedRecord, Store, StoreWriter

VULNDATA = SHARED / "vulndata"
OSV = VULNDATA / "osv"
CVE = re.compile(r"^CVE-\d{4}-\d+$")


# -- building stores -----------------------------------------------------------------------------


@cache
def _records(zip_name: str) -> tuple[dict[str, Any], ...]:
    with zipfile.ZipFile(OSV / zip_name) as archive:
        return tuple(json.loads(archive.read(name)) for name in archive.namelist())


def _about(zip_name: str, names: set[str]) -> list[dict[str, Any]]:
    """The raw records with an affected entry for one of ``names``."""
    return [r for r in _records(zip_name) if any(a["package"]["name"] in names for a in r.get("affected", []))]


def _store(
    path: Path,
    records: Iterable[dict[str, Any]] = (),
    source: str = "osv:test",
    extra: Iterable[tuple[AdvisoryRecord, list[AffectedRecord]]] = (),
    kev: Iterable[str] = (),
    epss: Iterable[tuple[str, float, float]] = (),
) -> Store:
    db = path / "vuln.db"
    with StoreWriter(db) as writer:
        for record in records:
            writer.add_advisory(*parse_record(record, source))
        for advisory, rows in extra:
            writer.add_advisory(advisory, rows)
        for cve in kev:
            writer.add_kev(cve, "", "", "", "")
        writer.add_epss(list(epss))
    return Store(db)


def _inventory(packages: list[Package], os_info: OSInfo | None = None) -> Inventory:
    return Inventory(Artifact("test", "filesystem"), os=os_info, packages=packages)


def _ids(findings: list[Vulnerability]) -> set[str]:
    """Every advisory id a finding stands for (its own and the ones merged into it)."""
    return {f.advisory_id for f in findings} | {a for f in findings for a in f.aliases}


# -- PyPI -----------------------------------------------------------------------------------------


def _pep440(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _pypi_affected(version: str, entry: dict[str, Any]) -> bool:
    """Range by range, pairwise [introduced, fixed) / [introduced, last_affected] on packaging.version."""
    v = Version(version)
    if any(_pep440(x) == v for x in entry.get("versions", [])):
        return True
    for rng in entry.get("ranges", []):
        if rng["type"] == "GIT":
            continue
        events = sorted(
            ((k, val) for e in rng["events"] for k, val in e.items()),
            key=lambda kv: Version("0") if kv[1] == "0" else Version(kv[1]),
        )
        low: Version | None = None
        for kind, value in events:
            bound = Version(value)
            if kind == "introduced":
                low = bound
            elif low is not None and ((kind == "fixed" and low <= v < bound) or
                                      (kind == "last_affected" and low <= v <= bound)):
                return True
            elif kind in ("fixed", "last_affected"):
                low = None
        if low is not None and v >= low:
            return True
    return False


OLD_PYPI = {"flask": "0.12", "jinja2": "2.10", "urllib3": "1.24.1", "requests": "2.19.0", "pyyaml": "5.3"}


def test_old_pypi_versions_get_exactly_the_advisories_whose_ranges_contain_them(tmp_path: Path) -> None:
    records = _about("PyPI.zip", set(OLD_PYPI))
    expected_ids: set[str] = set()
    expected_pairs: set[tuple[str, str]] = set()
    for record in records:
        if record.get("withdrawn"):
            continue
        for entry in record["affected"]:
            name = entry["package"]["name"].lower()
            if name in OLD_PYPI and _pypi_affected(OLD_PYPI[name], entry):
                expected_ids.add(record["id"])
                cves = [a for a in record.get("aliases", []) if CVE.match(a)]
                expected_pairs |= {(name, c) for c in (cves or [record["id"]])}
    # PyPI names as installed metadata spells them; the matcher normalises them (PEP 503).
    spelled = {"flask": "Flask", "jinja2": "Jinja2", "pyyaml": "PyYAML"}
    packages = [Package(spelled.get(n, n), v, "pypi", found_in="app/requirements.txt") for n, v in OLD_PYPI.items()]
    with _store(tmp_path, records, "osv:PyPI") as store:
        found = match_inventory(_inventory(packages), store)
    assert len(expected_ids) >= 25  # these old versions really are vulnerable
    assert _ids(found) & {r["id"] for r in records} == expected_ids
    assert {(f.package_name.lower(), f.id) for f in found} == expected_pairs
    assert len(found) == len(expected_pairs)  # one finding per CVE and package: duplicates merged
    assert all(f.data_source == "osv:PyPI" and f.status in ("fixed", "affected") for f in found)


def test_requests_finding_fields(tmp_path: Path) -> None:
    record = next(r for r in _records("PyPI.zip") if r["id"] == "PYSEC-2023-74")
    package = Package("requests", "2.30.0", "pypi", purl="pkg:pypi/requests@2.30.0", found_in="venv/requests.dist-info",
                      layer="sha256:abc")
    with _store(tmp_path, [record], "osv:PyPI", kev=[], epss=[("CVE-2023-32681", 0.02974, 0.861)]) as store:
        (finding,) = match_inventory(_inventory([package]), store)
    assert finding.id == "CVE-2023-32681"
    assert finding.advisory_id == "PYSEC-2023-74"
    assert "GHSA-j8r2-6x86-q33q" in finding.aliases and "CVE-2023-32681" not in finding.aliases
    assert (finding.package_name, finding.package_version, finding.package_type) == ("requests", "2.30.0", "pypi")
    assert (finding.purl, finding.found_in, finding.layer) == (package.purl, package.found_in, "sha256:abc")
    assert finding.status == "fixed" and finding.fixed_versions == ["2.31.0"]
    assert finding.epss == pytest.approx(0.02974) and finding.epss_percentile == pytest.approx(0.861)
    assert finding.kev is False
    assert finding.title == record.get("summary", "")
    assert finding.description == record["details"].strip()
    assert set(finding.references) == {ref["url"] for ref in record["references"]}
    assert finding.published == record["published"]
    # this PYSEC record has neither a vendor word nor a CVSS vector
    assert "severity" not in record and "database_specific" not in record
    assert (finding.cvss, finding.severity, finding.severity_source) == ([], "UNKNOWN", "")


def _kev_has(cve: str) -> bool:
    data = json.loads((VULNDATA / "enrichment" / "known_exploited_vulnerabilities.json").read_text())
    return any(v["cveID"] == cve for v in data["vulnerabilities"])


def _epss_row(cve: str) -> tuple[str, float, float]:
    year = cve.split("-")[1]
    text = subprocess.run(
        ["tar", "--zstd", "-xOf", str(VULNDATA / "enrichment" / "epss-scores-by-cve-year.tar.zst"), "--wildcards",
         f"*CVE_{year}_EPSS.csv"], check=True, capture_output=True, text=True,
    ).stdout
    line = next(x for x in text.splitlines() if x.startswith(cve + ";"))
    name, score, percentile = line.split(";")
    return name, float(score), float(percentile)


def test_salt_is_flagged_known_exploited_with_its_epss(tmp_path: Path) -> None:
    record = next(r for r in _records("PyPI.zip") if r["id"] == "PYSEC-2020-102")
    assert _kev_has("CVE-2020-11651")
    epss = _epss_row("CVE-2020-11651")
    packages = [Package("salt", "2019.2.0", "pypi"), Package("salt", "2019.2.4", "pypi", found_in="other")]
    with _store(tmp_path, [record], kev=["CVE-2020-11651"], epss=[epss]) as store:
        (finding,) = match_inventory(_inventory(packages), store)
    assert (finding.id, finding.package_version, finding.kev) == ("CVE-2020-11651", "2019.2.0", True)
    assert finding.epss == pytest.approx(0.96614)
    assert finding.fixed_versions == ["2019.2.4", "3000.2"]


def test_same_cve_from_two_advisories_is_one_finding_with_the_best_of_both(tmp_path: Path) -> None:
    pysec = next(r for r in _records("PyPI.zip") if r["id"] == "PYSEC-2023-74")
    ghsa = AdvisoryRecord(
        id="GHSA-j8r2-6x86-q33q", source="osv:ghsa", aliases=["CVE-2023-32681", "PYSEC-2023-74"],
        summary="Unintended leak of Proxy-Authorization header in requests", severity="MEDIUM",
        severity_source="ghsa", references=["https://github.com/psf/requests/pull/6447"],
        cvss=[CVSS("3.1", "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:C/C:H/I:N/A:N", 6.1, "ghsa")],
    )
    row = AffectedRecord(ghsa.id, "PyPI", "requests",
                         [{"type": "ECOSYSTEM", "events": [{"introduced": "2.3.0"}, {"fixed": "2.31.0"}]}],
                         status="fixed")
    packages = [Package("requests", "2.30.0", "pypi", found_in=where) for where in ("a", "b")]
    with _store(tmp_path, [pysec], "osv:PyPI", extra=[(ghsa, [row])]) as store:
        found = match_inventory(_inventory(packages), store)
    # one finding per package instance, not per advisory
    assert [(f.id, f.found_in) for f in found] == [("CVE-2023-32681", "a"), ("CVE-2023-32681", "b")]
    for finding in found:
        assert {finding.advisory_id, *finding.aliases} >= {"PYSEC-2023-74", "GHSA-j8r2-6x86-q33q"}
        assert finding.id not in finding.aliases
        assert (finding.severity, finding.severity_source) == ("MEDIUM", "ghsa")  # vendor beats CVSS
        assert "https://github.com/psf/requests/pull/6447" in finding.references
        assert any("pypa/advisory-database" in r or "requests" in r for r in finding.references if "6447" not in r)


def test_withdrawn_advisories_never_match(tmp_path: Path) -> None:
    record = dict(next(r for r in _records("PyPI.zip") if r["id"] == "PYSEC-2023-74"))
    record["withdrawn"] = "2024-01-01T00:00:00Z"
    with _store(tmp_path, [record]) as store:
        assert match_inventory(_inventory([Package("requests", "2.30.0", "pypi")]), store) == []


# -- Debian: backported fixes ---------------------------------------------------------------------


def _dsa_entry(advisory_id: str) -> tuple[list[str], list[tuple[str, str, str]]]:
    """CVEs and (release, source, fixed) lines of one advisory, read from the raw list text."""
    text = _dsa_text()
    start = text.index(f"] {advisory_id} ")
    block = text[start:].split("\n[", 1)[0]
    cves = re.findall(r"CVE-\d{4}-\d+", block)
    lines = re.findall(r"^\t\[(\w+)\] - (\S+) (\S+)", block, re.M)
    return cves, lines


@cache
def _dsa_text() -> str:
    return subprocess.run(
        ["tar", "--zstd", "-xOf", str(VULNDATA / "raw" / "debian-security-tracker-DSA-DLA-lists-2023-04.tar.zst"),
         "debian-security-tracker/data/DSA/list"], check=True, capture_output=True, text=True,
    ).stdout


def _dpkg_lt(a: str, b: str) -> bool:
    return subprocess.run(["dpkg", "--compare-versions", a, "lt", b], check=False).returncode == 0


def _debian_store(path: Path, *advisory_ids: str, extra: Iterable[tuple[AdvisoryRecord, list[AffectedRecord]]] = ()
                  ) -> Store:
    """Rows built by hand from the DSA list text, as the tracker writes them."""
    releases = {"bullseye": "Debian:11", "buster": "Debian:10"}
    built = []
    for advisory_id in advisory_ids:
        cves, lines = _dsa_entry(advisory_id)
        advisory = AdvisoryRecord(advisory_id, "debian-dsa", aliases=cves, summary=f"{advisory_id} security update")
        rows = [
            AffectedRecord(advisory_id, releases[release], source,
                           [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}], status="fixed")
            for release, source, fixed in lines
        ]
        built.append((advisory, rows))
    return _store(path, extra=[*built, *extra])


def _libssl(source_version: str) -> Package:
    return Package("libssl1.1", source_version, "deb", source_name="openssl", source_version=source_version,
                   found_in="var/lib/dpkg/status")


def test_debian_backported_fix_is_not_a_finding(tmp_path: Path) -> None:
    cves, lines = _dsa_entry("DSA-5343-1")
    assert lines == [("bullseye", "openssl", "1.1.1n-0+deb11u4")]
    assert "CVE-2023-0286" in cves  # fixed upstream only in 1.1.1t
    bullseye = OSInfo("debian", "11.6")
    with _debian_store(tmp_path, "DSA-5343-1") as store:
        patched = match_inventory(_inventory([_libssl("1.1.1n-0+deb11u4")], bullseye), store)
        vulnerable = match_inventory(_inventory([_libssl("1.1.1n-0+deb11u3")], bullseye), store)
    assert _dpkg_lt("1.1.1n", "1.1.1t") and not _dpkg_lt("1.1.1n-0+deb11u4", "1.1.1n-0+deb11u4")
    assert patched == []
    assert sorted(f.id for f in vulnerable) == sorted(cves)
    assert all(f.advisory_id == "DSA-5343-1" and f.fixed_versions == ["1.1.1n-0+deb11u4"] for f in vulnerable)
    assert all(f.package_name == "libssl1.1" and f.status == "fixed" for f in vulnerable)


def test_debian_compares_the_source_version_not_the_binary_one(tmp_path: Path) -> None:
    # a binary whose own version runs ahead of its source's (binNMUs, or a different numbering)
    ahead = Package("libssl1.1", "1.1.1n-0+deb11u9", "deb", source_name="openssl", source_version="1.1.1n-0+deb11u3")
    with _debian_store(tmp_path, "DSA-5343-1") as store:
        found = match_inventory(_inventory([ahead], OSInfo("debian", "11")), store)
    assert found and {f.package_version for f in found} == {"1.1.1n-0+deb11u9"}


def test_os_packages_are_judged_by_their_own_release_only(tmp_path: Path) -> None:
    """Rows for another release, and a language-ecosystem package of the same name, never match a deb."""
    other_release = AdvisoryRecord("DLA-TEST-1", "debian-dla", aliases=["CVE-2099-0001"])
    upstream = AdvisoryRecord("PYSEC-TEST-1", "osv:PyPI", aliases=["CVE-2099-0002"])
    everything = [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]
    extra = [
        (other_release, [AffectedRecord(other_release.id, "Debian:10", "openssl", everything)]),
        (upstream, [AffectedRecord(upstream.id, "PyPI", "openssl", everything)]),
    ]
    with _debian_store(tmp_path, "DSA-5343-1", extra=extra) as store:
        found = match_inventory(_inventory([_libssl("1.1.1n-0+deb11u4")], OSInfo("debian", "11")), store)
        pypi = match_inventory(_inventory([Package("openssl", "1.0", "pypi")], OSInfo("debian", "11")), store)
    assert found == []
    assert [f.id for f in pypi] == ["CVE-2099-0002"]


def test_a_release_without_data_warns_once_and_finds_nothing(tmp_path: Path) -> None:
    packages = [_libssl("1.1.1n-0+deb11u3"), Package("bash", "5.2.15-2", "deb"), Package("urllib3", "1.24.1", "pypi")]
    inventory = _inventory(packages, OSInfo("debian", "12"))
    urllib3 = _about("PyPI.zip", {"urllib3"})
    with _debian_store(tmp_path, "DSA-5343-1") as base:
        base.close()
    with _store(tmp_path / "b", urllib3, extra=[]) as store, Store(tmp_path / "vuln.db") as debian_only:
        found = match_inventory(inventory, store)
        assert all(f.package_type == "pypi" for f in found) and found
        inventory.warnings.clear()
        assert match_inventory(inventory, debian_only) == []
    assert inventory.warnings == ["no vulnerability data for debian 12: 2 OS package(s) not checked"]


def test_real_dsa_list_for_bullseye(tmp_path: Path) -> None:
    """The whole DSA list through the ingest's parser; expectations from the raw text and dpkg."""
    from moat.vulndb.debian import read_dsa_list

    wanted = {"openssl", "xorg-server", "curl", "git", "tiff", "sudo", "nss", "libde265"}
    installed = {  # real bullseye versions that were current at some point
        "openssl": "1.1.1n-0+deb11u3",
        "xorg-server": "2:1.20.11-1+deb11u4",
        "curl": "7.74.0-1.3+deb11u3",
        "git": "1:2.30.2-1",
        "tiff": "4.2.0-1+deb11u1",
        "sudo": "1.9.5p2-3",
        "nss": "2:3.61-1+deb11u2",
        "libde265": "1.0.11-0+deb11u1",
    }
    expected: set[tuple[str, str]] = set()
    text = _dsa_text()
    for block in re.split(r"\n(?=\[)", text):
        cves = re.findall(r"CVE-\d{4}-\d+", block)
        advisory_id = block.split("] ", 1)[1].split(" ", 1)[0] if "] " in block else ""
        for release, source, fixed in re.findall(r"^\t\[(\w+)\] - (\S+) (\S+)", block, re.M):
            if release == "bullseye" and source in wanted and _dpkg_lt(installed[source], fixed):
                expected |= {(source, c) for c in (cves or [advisory_id])}
    packages = [Package(f"bin-{s}", v, "deb", source_name=s, source_version=v) for s, v in installed.items()]
    db = tmp_path / "vuln.db"
    with StoreWriter(db) as writer:
        for advisory, rows in read_dsa_list(text, "DSA"):
            writer.add_advisory(advisory, rows)
    with Store(db) as store:
        found = match_inventory(_inventory(packages, OSInfo("debian", "11.7")), store)
    assert len(expected) > 40
    assert {(f.package_name.removeprefix("bin-"), f.id) for f in found} == expected


# -- AlmaLinux 9 -----------------------------------------------------------------------------------


def _rpm_lt(a: str, b: str) -> bool:
    out = subprocess.run(["rpm", "--eval", f'%{{lua: print(rpm.vercmp("{a}", "{b}"))}}'],
                         check=True, capture_output=True, text=True)
    return int(out.stdout) < 0


def test_almalinux_9_rpms_from_real_alsa_records(tmp_path: Path) -> None:
    installed = {
        "openssh": "8.7p1-29.el9_2",
        "openssh-clients": "8.7p1-29.el9_2",
        "grub2-common": "1:2.06-46.el9.alma",
        "sudo": "1.9.5p2-9.el9",
        "libxml2": "2.9.13-3.el9_2",
    }
    records = [r for r in _about("AlmaLinux-9.zip", set(installed))]
    expected: set[tuple[str, str]] = set()
    for record in records:
        for entry in record["affected"]:
            name = entry["package"]["name"]
            if entry["package"]["ecosystem"] != "AlmaLinux:9" or name not in installed:
                continue
            fixes = [e["fixed"] for r in entry["ranges"] for e in r["events"] if "fixed" in e]
            if any(_rpm_lt(installed[name], fixed) for fixed in fixes):
                cves = [c for c in record.get("related", []) if CVE.match(c)]
                expected |= {(name, c) for c in (cves or [record["id"]])}
    packages = [Package(n, v, "rpm", epoch=int(v.split(":")[0]) if ":" in v else None) for n, v in installed.items()]
    with _store(tmp_path, records, "osv:AlmaLinux") as store:
        found = match_inventory(_inventory(packages, OSInfo("alma", "9.2")), store)
    assert len(expected) > 10
    assert {(f.package_name, f.id) for f in found} == expected
    ssh = next(f for f in found if f.id == "CVE-2023-38408" and f.package_name == "openssh")
    assert ssh.advisory_id == "ALSA-2023:4412"
    assert ssh.fixed_versions == ["8.7p1-30.el9_2"]
    assert (ssh.severity, ssh.severity_source) == ("HIGH", "almalinux")  # "Important: openssh security update"


# -- statuses and bad data -------------------------------------------------------------------------


def test_vendor_statuses_are_kept_and_not_affected_is_dropped(tmp_path: Path) -> None:
    everything = [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]
    advisories = []
    for number, status in enumerate(("affected", "will_not_fix", "end_of_life", "not_affected"), 1):
        advisory = AdvisoryRecord(f"DEBIAN-CVE-2099-000{number}", "debian-tracker", aliases=[f"CVE-2099-000{number}"])
        ranges = [] if status == "end_of_life" else everything  # a status with no ranges at all still counts
        advisories.append((advisory, [AffectedRecord(advisory.id, "Debian:12", "tiff", ranges, status=status)]))
    package = Package("libtiff6", "4.5.0-6", "deb", source_name="tiff", source_version="4.5.0-6")
    with _store(tmp_path, extra=advisories) as store:
        found = match_inventory(_inventory([package], OSInfo("debian", "12")), store)
    assert {f.id: f.status for f in found} == {
        "CVE-2099-0001": "affected", "CVE-2099-0002": "will_not_fix", "CVE-2099-0003": "end_of_life",
    }
    assert all(f.fixed_versions == [] for f in found)


def test_unparseable_versions_are_counted_never_matched(tmp_path: Path) -> None:
    bad_event = AdvisoryRecord("PYSEC-TEST-2", "osv:PyPI", aliases=["CVE-2099-0010"])
    bad_range = [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "not a version"}]}]
    rows = [AffectedRecord(bad_event.id, "PyPI", "demo", bad_range)]
    good = AdvisoryRecord("PYSEC-TEST-3", "osv:PyPI", aliases=["CVE-2099-0011"])
    good_rows = [AffectedRecord(good.id, "PyPI", "demo", [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}])]
    inventory = _inventory([Package("demo", "1.0", "pypi"), Package("demo", "junk!!", "pypi")])
    with _store(tmp_path, extra=[(bad_event, rows), (good, good_rows)]) as store:
        found = match_inventory(inventory, store)
    assert [(f.id, f.package_version) for f in found] == [("CVE-2099-0011", "1.0")]
    assert len(inventory.warnings) == 2
    assert "PyPI advisory match(es) skipped" in inventory.warnings[1] and "PYSEC-TEST-2" in inventory.warnings[1]
    assert "cannot be compared" in inventory.warnings[0] and "junk!!" in inventory.warnings[0]


def test_findings_sort_by_severity_then_id(tmp_path: Path) -> None:
    everything = [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]
    extra = []
    for cve, word, score in (("CVE-2099-0003", "", 9.8), ("CVE-2099-0001", "LOW", None),
                             ("CVE-2099-0002", "", None), ("CVE-2099-0004", "HIGH", None)):
        cvss = [CVSS("3.1", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", score, "nvd")] if score else []
        advisory = AdvisoryRecord(f"GHSA-{cve}", "osv:ghsa", aliases=[cve], severity=word,
                                  severity_source="ghsa" if word else "", cvss=cvss)
        extra.append((advisory, [AffectedRecord(advisory.id, "PyPI", "left-pad", everything)]))
    with _store(tmp_path, extra=extra) as store:
        found = match_inventory(_inventory([Package("left-pad", "1.0.0", "pypi")]), store)
    assert [(f.id, f.severity, f.severity_source) for f in found] == [
        ("CVE-2099-0003", "CRITICAL", "cvss"),
        ("CVE-2099-0004", "HIGH", "ghsa"),
        ("CVE-2099-0001", "LOW", "ghsa"),
        ("CVE-2099-0002", "UNKNOWN", ""),
    ]


# -- Go standard library -----------------------------------------------------------------------------


def _semver_key(text: str) -> tuple[tuple[int, ...], int, tuple[tuple[int, int | str], ...]]:
    """SemVer 2.0 precedence (section 11): release numbers, then any pre-release sorts first."""
    core, _, pre = text.partition("-")
    numbers = tuple(int(x) for x in core.split("."))
    if not pre:
        return numbers, 1, ()
    parts = tuple((0, int(p)) if p.isdigit() else (1, p) for p in pre.split("."))
    return numbers, 0, parts


def test_go_stdlib_of_an_old_toolchain(tmp_path: Path) -> None:
    """A binary built with go1.20.1: stdlib advisories from Go.zip, expectations by plain SemVer order."""
    records = [r for r in _about("Go.zip", {"stdlib"}) if not r.get("withdrawn")]
    installed = _semver_key("1.20.1")
    expected: set[str] = set()
    for record in records:
        for entry in record["affected"]:
            if entry["package"]["name"] != "stdlib":
                continue
            for rng in entry["ranges"]:
                low = None
                for event in rng["events"]:
                    kind, value = next(iter(event.items()))
                    if kind == "introduced":
                        low = (0,) if value == "0" else _semver_key(value)
                    elif kind == "fixed" and low is not None:
                        if (low == (0,) or low <= installed) and installed < _semver_key(value):
                            expected.add(record["id"])
                        low = None
                if low is not None and (low == (0,) or low <= installed):
                    expected.add(record["id"])
    package = Package("stdlib", "v1.20.1", "golang", purl="pkg:golang/stdlib@v1.20.1", found_in="usr/bin/app")
    with _store(tmp_path, records, "osv:Go") as store:
        found = match_inventory(_inventory([package], OSInfo("debian", "12")), store)
    assert len(expected) > 50
    assert {f.advisory_id for f in found} | {a for f in found for a in f.aliases if a.startswith("GO-")} == expected
    http2 = next(f for f in found if f.advisory_id == "GO-2024-2687")
    assert http2.id == "CVE-2023-45288" and http2.fixed_versions[0] == "1.21.9"
