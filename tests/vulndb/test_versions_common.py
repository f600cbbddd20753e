"""Shared helpers for the per-ecosystem comparator tests, and tests of the dispatching API itself.

The helpers gather *real* versions (range events and listed versions from the OSV zips in
``../shared/vulndata``, installed package versions from this machine) and make pairs of them that are
likely to be interesting: versions of the same package, which share prefixes and differ in the
details a comparator gets wrong, plus random pairs across packages.
"""

from __future__ import annotations

import json
import random
import zipfile
from functools import cache

import pytest

from corpus import SHARED
from moat.errors import MoatError, ParseError
from moat.vulndb import versions
from moat.vulndb.versions import VersionError

OSV = SHARED / "vulndata" / "osv"
SEED = 20240603


@cache
def osv_versions(zip_name: str) -> dict[str, tuple[str, ...]]:
    """Every version string an OSV zip mentions, grouped by package (introduced "0" left out)."""
    groups: dict[str, set[str]] = {}
    with zipfile.ZipFile(OSV / zip_name) as archive:
        for name in archive.namelist():
            record = json.loads(archive.read(name))
            for affected in record.get("affected", []):
                package = affected.get("package", {}).get("name", "")
                found = groups.setdefault(package, set())
                found.update(affected.get("versions", []))
                for rng in affected.get("ranges", []):
                    if rng.get("type") == "GIT":
                        continue
                    for event in rng.get("events", []):
                        for key in ("introduced", "fixed", "last_affected"):
                            if key in event and event[key] != "0":
                                found.add(event[key])
    return {package: tuple(sorted(found)) for package, found in sorted(groups.items()) if found}


def pairs_from_groups(groups: dict[str, tuple[str, ...]], count: int, seed: int = SEED) -> list[tuple[str, str]]:
    """``count`` pairs: about three quarters within one package, the rest across packages, plus a few a==a."""
    rng = random.Random(seed)
    names = [name for name, found in groups.items() if found]
    everything = sorted({v for found in groups.values() for v in found})
    out: list[tuple[str, str]] = []
    while len(out) < count:
        roll = rng.random()
        if roll < 0.75:
            found = groups[rng.choice(names)]
            out.append((rng.choice(found), rng.choice(found)))
        elif roll < 0.97:
            out.append((rng.choice(everything), rng.choice(everything)))
        else:
            same = rng.choice(everything)
            out.append((same, same))
    return out


def check_agreement(pairs: list[tuple[str, str]], expected: list[int], ecosystem: str) -> None:
    """Assert Moat's answers equal the oracle's, showing the first few disagreements."""
    assert len(pairs) == len(expected)
    wrong = [
        (a, b, want, got)
        for (a, b), want in zip(pairs, expected, strict=True)
        if (got := versions.compare(ecosystem, a, b)) != want
    ]
    assert not wrong, f"{len(wrong)} of {len(pairs)} disagree with the oracle, e.g. {wrong[:8]}"


# -- the dispatching API ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ecosystem", "scheme"),
    [
        ("Debian:12", "dpkg"),
        ("Ubuntu:22.04:LTS", "dpkg"),
        ("Alpine:v3.19", "apk"),
        ("AlmaLinux:9", "rpm"),
        ("Rocky Linux:9", "rpm"),
        ("Red Hat", "rpm"),
        ("PyPI", "pep440"),
        ("npm", "semver_npm"),
        ("Go", "semver_go"),
        ("crates.io", "semver_cargo"),
        ("Maven", "maven"),
        ("NuGet", "nuget"),
        ("RubyGems", "rubygems"),
        ("Packagist", "composer"),
    ],
)
def test_every_osv_ecosystem_of_the_brief_has_a_comparator(ecosystem: str, scheme: str) -> None:
    assert versions.scheme_of(ecosystem) == scheme
    assert versions.supports(ecosystem)


def test_unknown_ecosystem_is_a_clear_error_not_a_guess() -> None:
    assert not versions.supports("Hackage")
    assert not versions.is_valid("Hackage", "1.0")
    with pytest.raises(VersionError, match="no version comparator"):
        versions.compare("Hackage", "1.0", "2.0")


def test_version_error_is_a_one_line_bad_input_error() -> None:
    with pytest.raises(VersionError) as caught:
        versions.compare("Debian:12", "1.0", "not a version\n")
    assert isinstance(caught.value, ParseError)
    assert isinstance(caught.value, MoatError)
    assert caught.value.exit_code == 2
    assert "\n" not in str(caught.value).strip()
    assert "dpkg" in str(caught.value)


def test_the_part_before_the_colon_decides_the_scheme() -> None:
    # "1.0~rc1" is before "1.0" for dpkg whatever the release; PEP 440 rejects the string.
    assert versions.compare("Debian:11", "1.0~rc1", "1.0") == -1
    assert versions.compare("Debian:12", "1.0~rc1", "1.0") == -1
    assert not versions.is_valid("PyPI", "1.0~rc1")
