"""crates.io versions, with the grammar of Cargo's ``semver`` crate and SemVer 2.0 precedence.

The grammar is strict SemVer 2.0 (no ``v``, no leading zeros, all three numbers). One deliberate
difference from the crate: ``semver::Version``'s ``Ord`` also orders by build metadata, but SemVer
precedence, Cargo's requirement matching and OSV's ``SEMVER`` ranges all ignore it, so here
``1.0.0+a == 1.0.0+b``.
"""

from __future__ import annotations

from functools import lru_cache

from moat.vulndb.versions.semver import STRICT, Key, compare_keys, key_from

SCHEME = "crates.io"


@lru_cache(maxsize=65536)
def parse(version: str) -> Key:
    """The SemVer sort key; raises VersionError for what ``semver::Version::parse`` rejects."""
    return key_from(SCHEME, version, STRICT.fullmatch(version))


def compare(a: str, b: str) -> int:
    """-1, 0 or 1 by SemVer precedence."""
    return compare_keys(parse(a), parse(b))
