"""OSV records → store records, on real advisories from ../shared/vulndata/osv.

Expected values are read off the advisory JSON in the test (or are the publishers' own numbers),
not produced by Moat.
"""

from __future__ import annotations

import copy
import json
import zipfile
from typing import Any

import pytest

from corpus import SHARED
from moat.vulndb.osv import RecordError, normalize_ecosystem, parse_record

OSV = SHARED / "vulndata" / "osv"


def record(zip_name: str, member: str) -> dict[str, Any]:
    with zipfile.ZipFile(OSV / zip_name) as archive:
        data: dict[str, Any] = json.loads(archive.read(member))
    return data


def test_almalinux_related_cves_become_aliases_and_the_summary_word_the_severity() -> None:
    raw = record("AlmaLinux-9.zip", "ALSA-2023:4412.json")
    advisory, rows = parse_record(raw, "osv:AlmaLinux-9")
    assert advisory.id == "ALSA-2023:4412"
    assert advisory.aliases == ["CVE-2023-38408"]  # from "related"
    assert advisory.related == raw["related"]
    assert raw["summary"].startswith("Important:")
    assert (advisory.severity, advisory.severity_source) == ("HIGH", "almalinux")
    assert [r.package for r in rows] == [a["package"]["name"] for a in raw["affected"]]
    openssh = next(r for r in rows if r.package == "openssh")
    assert openssh.ecosystem == "AlmaLinux:9"
    assert openssh.fixed_versions() == ["8.7p1-30.el9_2"]
    assert openssh.status == "fixed"
    assert advisory.references == [ref["url"] for ref in raw["references"]]
    assert advisory.published == raw["published"] and advisory.modified == raw["modified"]


def test_ghsa_log4shell_cvss_and_vendor_severity() -> None:
    raw = record("Maven.zip", "GHSA-jfh8-c2jp-5v3q.json")
    advisory, rows = parse_record(raw, "osv:Maven")
    assert advisory.aliases[0] == "CVE-2021-44228"
    assert (advisory.severity, advisory.severity_source) == ("CRITICAL", "ghsa")
    [cvss] = advisory.cvss
    assert cvss.vector == "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"
    assert (cvss.version, cvss.score, cvss.source) == ("3.1", 10.0, "ghsa")  # NVD's published base score
    core = [r for r in rows if r.package == "org.apache.logging.log4j:log4j-core"]
    assert sorted(v for r in core for v in r.fixed_versions()) == ["2.12.2", "2.15.0", "2.3.1"]  # README's ranges


def test_pypi_withdrawn_record_is_kept_and_flagged() -> None:
    with zipfile.ZipFile(OSV / "PyPI.zip") as archive:
        for name in archive.namelist():
            raw = json.loads(archive.read(name))
            if raw.get("withdrawn"):
                break
    advisory, _ = parse_record(raw, "osv:PyPI")
    assert advisory.withdrawn == raw["withdrawn"]


def test_ubuntu_cve_record_gets_canonicals_id_and_per_release_rows() -> None:
    raw = record("Ubuntu.zip", "CVE-2024-22365.json")
    advisory, rows = parse_record(raw, "osv:Ubuntu")
    assert advisory.id == "UBUNTU-CVE-2024-22365"
    assert advisory.aliases == ["CVE-2024-22365"]
    assert sorted(r.ecosystem for r in rows) == [
        "Ubuntu:14.04",
        "Ubuntu:16.04",
        "Ubuntu:18.04",
        "Ubuntu:20.04",
        "Ubuntu:22.04",
    ]
    assert all(r.advisory_id == advisory.id and r.package == "pam" for r in rows)
    priorities = {a["ecosystem_specific"]["ubuntu_priority"] for a in raw["affected"]}
    assert priorities == {"medium"} and {r.severity for r in rows} == {"MEDIUM"}


def test_ubuntu_usn_takes_its_cve_from_upstream_and_priority_from_cves_map() -> None:
    raw = record("Ubuntu.zip", "USN-6854-1.json")
    advisory, rows = parse_record(raw, "osv:Ubuntu")
    assert advisory.id == "USN-6854-1"
    assert raw["upstream"] == ["UBUNTU-CVE-2022-40735"]
    assert advisory.aliases == ["CVE-2022-40735"]
    [row] = rows
    assert (row.ecosystem, row.package, row.fixed_versions()) == ("Ubuntu:22.04", "openssl", ["3.0.2-0ubuntu1.16"])
    assert row.versions == raw["affected"][0]["versions"]
    assert row.severity == "MEDIUM"
    assert advisory.severity == "MEDIUM"


def test_pro_entries_are_dropped_only_when_a_standard_entry_covers_the_release() -> None:
    raw = record("Ubuntu.zip", "CVE-2024-22365.json")
    duplicate = copy.deepcopy(raw["affected"][-1])  # Ubuntu:22.04:LTS
    duplicate["package"]["ecosystem"] = "Ubuntu:Pro:22.04:LTS"
    duplicate["ranges"][0]["events"][-1] = {"fixed": "9.9"}
    raw["affected"].append(duplicate)
    _, rows = parse_record(raw, "osv:Ubuntu")
    jammy = [r for r in rows if r.ecosystem == "Ubuntu:22.04"]
    assert len(jammy) == 1 and "9.9" not in jammy[0].fixed_versions()


@pytest.mark.parametrize(
    ("name", "stored"),
    [
        ("Ubuntu:22.04:LTS", "Ubuntu:22.04"),
        ("Ubuntu:Pro:18.04:LTS", "Ubuntu:18.04"),
        ("Ubuntu:24.10", "Ubuntu:24.10"),
        ("AlmaLinux:9", "AlmaLinux:9"),
        ("Debian:12", "Debian:12"),
        ("crates.io", "crates.io"),
        ("NotAnEcosystem", None),
        ("pypi", None),  # OSV names are case-sensitive
    ],
)
def test_ecosystem_names(name: str, stored: str | None) -> None:
    assert normalize_ecosystem(name) == stored


def test_no_fixed_event_means_affected() -> None:
    raw = record("crates.io.zip", "RUSTSEC-2023-0034.json")
    raw["affected"][0]["ranges"] = [{"type": "SEMVER", "events": [{"introduced": "0"}, {"last_affected": "0.3.16"}]}]
    _, rows = parse_record(raw, "osv:crates.io")
    assert rows[0].status == "affected" and rows[0].fixed_versions() == []


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r.update(id=12), "id"),
        (lambda r: r.pop("id"), "id"),
        (lambda r: r.update(aliases="CVE-2023-26964"), "aliases"),
        (lambda r: r.update(affected={"package": 1}), "affected"),
        (lambda r: r["affected"][0].update(package="h2"), "package"),
        (lambda r: r["affected"][0]["ranges"][0].update(events=[{"fixed": 3}]), "ranges"),
        (lambda r: r["affected"][0]["ranges"][0].update(events=[{"fixed": "1", "introduced": "0"}]), "ranges"),
        (lambda r: r["affected"][0].update(versions=[1, 2]), "versions"),
        (lambda r: r.update(summary=["x"]), "summary"),
        (lambda r: r.update(references=[{"url": None}]), "references"),
        (lambda r: r.update(severity={"type": "CVSS_V3"}), "severity"),
        (lambda r: r["affected"][0]["package"].update(ecosystem="Nope"), "unknown ecosystem"),
    ],
)
def test_wrong_types_are_refused_with_a_reason(mutate: Any, message: str) -> None:
    raw = record("crates.io.zip", "RUSTSEC-2023-0034.json")
    parse_record(copy.deepcopy(raw), "osv:crates.io")  # the original is fine
    mutate(raw)
    with pytest.raises(RecordError, match=message):
        parse_record(raw, "osv:crates.io")


@pytest.mark.parametrize("value", [None, [], "x", 3])
def test_non_objects_are_refused(value: Any) -> None:
    with pytest.raises(RecordError):
        parse_record(value, "osv:x")


def test_malformed_cvss_vector_keeps_the_vector_without_a_score() -> None:
    raw = record("crates.io.zip", "RUSTSEC-2023-0034.json")
    raw["severity"] = [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:Q/AC:L"}]
    advisory, _ = parse_record(raw, "osv:crates.io")
    assert [(c.vector, c.score) for c in advisory.cvss] == [("CVSS:3.1/AV:Q/AC:L", None)]
