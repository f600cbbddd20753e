"""OSV range evaluation, checked against independent oracles on real advisory data.

The PyPI oracle is the OSV schema's own pseudocode (sort the events, walk them) written directly on
``packaging.version``; the Debian one asks ``dpkg --compare-versions``; the AlmaLinux one asks rpm's
own ``rpm.vercmp``. None of them goes through Moat's comparator or evaluator.
"""

from __future__ import annotations

import json
import subprocess
import zipfile
from functools import cache
from typing import Any

import pytest
from packaging.version import InvalidVersion, Version

from corpus import SHARED
from moat.match.ranges import evaluate
from moat.vulndb.versions import VersionError

OSV = SHARED / "vulndata" / "osv"


# -- oracles -------------------------------------------------------------------------------------


@cache
def _pep440(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _oracle_pypi(version: str, ranges: list[dict[str, Any]], listed: list[str]) -> bool:
    """The schema's IsVulnerable pseudocode, verbatim, on packaging.version."""
    v = Version(version)
    if version in listed or any(_pep440(x) is not None and _pep440(x) == v for x in listed):
        return True
    for rng in ranges:
        if rng["type"] == "GIT":
            continue
        events = [(kind, value) for event in rng["events"] for kind, value in event.items()]
        limits = [Version(value) for kind, value in events if kind == "limit"]
        if limits and not any(v < limit for limit in limits):
            continue

        def key(event: tuple[str, str]) -> tuple[int, Version]:
            return (0, Version("0")) if event == ("introduced", "0") else (1, Version(event[1]))

        vulnerable = False
        for kind, value in sorted(events, key=key):
            if kind == "introduced" and (value == "0" or v >= Version(value)):
                vulnerable = True
            elif (kind == "fixed" and v >= Version(value)) or (kind == "last_affected" and v > Version(value)):
                vulnerable = False
        if vulnerable:
            return True
    return False


def _dpkg_lt(a: str, b: str) -> bool:
    return subprocess.run(["dpkg", "--compare-versions", a, "lt", b], check=False).returncode == 0


def _rpm_vercmp(a: str, b: str) -> int:
    out = subprocess.run(
        ["rpm", "--eval", f'%{{lua: print(rpm.vercmp("{a}", "{b}"))}}'],
        check=True, capture_output=True, text=True,
    )
    return int(out.stdout.strip())


@cache
def _records(zip_name: str) -> list[dict[str, Any]]:
    with zipfile.ZipFile(OSV / zip_name) as archive:
        return [json.loads(archive.read(name)) for name in archive.namelist()]


# -- every PyPI record against the pseudocode ---------------------------------------------------


def _candidates(entry: dict[str, Any]) -> list[str]:
    """Versions worth asking about: every event boundary, its neighbours, and listed versions."""
    out: list[str] = []
    for rng in entry.get("ranges", []):
        if rng["type"] == "GIT":
            continue
        for event in rng["events"]:
            for value in event.values():
                if value != "0":
                    out += [value, f"{value}.post1", f"{value}rc1"]
    listed = entry.get("versions", [])
    out += listed[:10] + listed[-5:]
    return list(dict.fromkeys(out))


def _all_parse(entry: dict[str, Any]) -> bool:
    return all(
        value == "0" or _pep440(value) is not None
        for rng in entry.get("ranges", [])
        if rng["type"] != "GIT"
        for event in rng["events"]
        for value in event.values()
    )


def test_every_pypi_record_agrees_with_the_schema_pseudocode() -> None:
    checked = affected = 0
    mismatches = []
    for record in _records("PyPI.zip"):
        for entry in record.get("affected", []):
            if not _all_parse(entry):
                continue
            ranges, listed = entry.get("ranges", []), entry.get("versions", [])
            for version in _candidates(entry):
                if _pep440(version) is None:
                    continue
                expected = _oracle_pypi(version, ranges, listed)
                verdict = evaluate("PyPI", version, ranges, listed)
                checked += 1
                affected += expected
                if (verdict is not None) != expected:
                    mismatches.append((record["id"], version, expected))
    assert mismatches == []
    # The data really exercised both answers at scale (not a vacuous loop).
    assert checked > 50_000
    assert 10_000 < affected < checked - 10_000


def test_requests_worked_example_and_upgrade_targets() -> None:
    record = next(r for r in _records("PyPI.zip") if r["id"] == "PYSEC-2023-74")
    (entry,) = record["affected"]
    assert evaluate("PyPI", "2.30.0", entry["ranges"]) is not None
    assert evaluate("PyPI", "2.31.0", entry["ranges"]) is None
    assert evaluate("PyPI", "2.2.1", entry["ranges"]) is None
    verdict = evaluate("PyPI", "2.3.0", entry["ranges"])
    assert verdict is not None and verdict.fixed_versions == ["2.31.0"]


def test_salt_two_branches_offer_every_fix_above_the_version() -> None:
    record = next(r for r in _records("PyPI.zip") if r["id"] == "PYSEC-2020-102")
    (entry,) = record["affected"]
    old = evaluate("PyPI", "2019.2.0", entry["ranges"])
    assert old is not None and old.fixed_versions == ["2019.2.4", "3000.2"]
    new = evaluate("PyPI", "3000.1", entry["ranges"])
    assert new is not None and new.fixed_versions == ["3000.2"]
    assert evaluate("PyPI", "2019.2.4", entry["ranges"]) is None
    assert evaluate("PyPI", "3000.2", entry["ranges"]) is None


# -- semantics the real data has few of ----------------------------------------------------------


def _range(*events: tuple[str, str], kind: str = "ECOSYSTEM") -> list[dict[str, Any]]:
    return [{"type": kind, "events": [{k: v} for k, v in events]}]


def test_last_affected_is_inclusive() -> None:
    ranges = _range(("introduced", "1.0"), ("last_affected", "1.4"))
    assert evaluate("PyPI", "1.4", ranges) is not None
    assert evaluate("PyPI", "1.4.1", ranges) is None
    assert evaluate("PyPI", "0.9", ranges) is None
    verdict = evaluate("PyPI", "1.2", ranges)
    assert verdict is not None and verdict.fixed_versions == []


def test_limit_caps_a_range() -> None:
    ranges = _range(("introduced", "0"), ("limit", "2.0"))
    assert evaluate("PyPI", "1.9", ranges) is not None
    assert evaluate("PyPI", "2.0", ranges) is None
    assert evaluate("PyPI", "3.0", _range(("introduced", "0"), ("limit", "*"))) is not None


def test_unsorted_events_and_an_empty_interval() -> None:
    ranges = _range(("fixed", "3.2.5"), ("introduced", "3.0.0"), ("fixed", "1.0.2"), ("introduced", "1.0.0"))
    assert [evaluate("PyPI", v, ranges) is not None for v in ("0.9", "1.0.1", "2.0", "3.1", "3.2.5")] == [
        False, True, False, True, False
    ]
    # [1.0, 1.0) is empty
    assert evaluate("PyPI", "1.0", _range(("introduced", "1.0"), ("fixed", "1.0"))) is None


def test_git_ranges_are_ignored_but_their_versions_list_counts() -> None:
    git = _range(("introduced", "0"), ("fixed", "a" * 40), kind="GIT")
    assert evaluate("PyPI", "1.0", git) is None
    assert evaluate("PyPI", "1.0", git, ["1.0"]) is not None


def test_versions_list_is_pep440_equal_for_pypi_only() -> None:
    assert evaluate("PyPI", "1.0.0", [], ["1.0"]) is not None
    assert evaluate("PyPI", "1.0.1", [], ["1.0", "not a version!"]) is None
    assert evaluate("Debian:11", "1.0-1", [], ["1.0-1"]) is not None
    assert evaluate("Debian:11", "1.0-01", [], ["1.0-1"]) is None


def test_an_unparseable_event_is_an_error_never_a_match() -> None:
    with pytest.raises(VersionError):
        evaluate("PyPI", "1.0", _range(("introduced", "0"), ("fixed", "not-a-version!")))
    with pytest.raises(VersionError):
        evaluate("PyPI", "garbage version", _range(("introduced", "0"), ("fixed", "2.0")))


# -- distro versions against the distros' own tools ----------------------------------------------

DSA_5343_1 = _range(("introduced", "0"), ("fixed", "1.1.1n-0+deb11u4"))
DSA_5380_1 = _range(("introduced", "0"), ("fixed", "2:1.20.11-1+deb11u6"))


@pytest.mark.parametrize(
    ("ranges", "installed"),
    [
        (DSA_5343_1, "1.1.1n-0+deb11u3"),
        (DSA_5343_1, "1.1.1n-0+deb11u4"),
        (DSA_5343_1, "1.1.1n-0+deb11u5"),
        (DSA_5343_1, "1.1.1k-1+deb11u2"),
        (DSA_5343_1, "1.1.1w-0+deb11u1"),
        (DSA_5343_1, "1.1.1n-0+deb11u4+b1"),
        (DSA_5380_1, "2:1.20.11-1+deb11u5"),
        (DSA_5380_1, "2:1.20.11-1+deb11u6"),
        (DSA_5380_1, "1.20.11-1+deb11u9"),
        (DSA_5380_1, "2:21.1.7-3"),
    ],
)
def test_debian_fixed_versions_agree_with_dpkg(ranges: list[dict[str, Any]], installed: str) -> None:
    fixed = ranges[0]["events"][1]["fixed"]
    assert (evaluate("Debian:11", installed, ranges) is not None) == _dpkg_lt(installed, fixed)


def test_backported_fix_below_upstream_is_not_affected() -> None:
    """1.1.1n-0+deb11u4 carries the CVE-2023-0286 fix upstream shipped in 1.1.1t: by Debian's own
    fixed version it is not affected, although its upstream part is below 1.1.1t."""
    assert _dpkg_lt("1.1.1n", "1.1.1t")
    assert evaluate("Debian:11", "1.1.1n-0+deb11u4", DSA_5343_1) is None


def test_almalinux_records_agree_with_rpm_vercmp() -> None:
    """Installed EVRs one step either side of real ALSA fixed versions (epochs included)."""
    fixes: list[tuple[str, str]] = []
    for record in _records("AlmaLinux-9.zip"):
        for entry in record["affected"]:
            if entry["package"]["name"] in ("openssh", "grub2-common", "glibc", "bind-libs", "systemd"):
                fixes += [(record["id"], e["fixed"]) for r in entry["ranges"] for e in r["events"] if "fixed" in e]
    assert any(":" in fixed for _, fixed in fixes)
    seen = 0
    for advisory_id, fixed in fixes[:60]:
        ranges = _range(("introduced", "0"), ("fixed", fixed))
        epoch, _, evr = fixed.rpartition(":")
        version, _, release = evr.rpartition("-")
        prefix = f"{epoch}:" if epoch else ""
        for installed in (fixed, f"{prefix}{version}-{release}.1", f"{prefix}{version}-{release[:-1]}",
                          f"{prefix}{version}~rc1-{release}"):
            expected = _rpm_vercmp(installed, fixed) < 0
            assert (evaluate("AlmaLinux:9", installed, ranges) is not None) == expected, (advisory_id, installed)
            seen += 1
    assert seen >= 100
