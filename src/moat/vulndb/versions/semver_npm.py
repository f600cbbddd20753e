"""npm versions, as node-semver's strict ``SemVer`` parses and ``semver.compare`` orders them.

Strict SemVer 2.0 plus what node-semver allows in non-loose mode: surrounding whitespace and one
leading ``v``; at most 256 characters; numbers up to 2**53 - 1 (JavaScript's safe integers).
"""

from __future__ import annotations

import re
from functools import lru_cache

from moat.vulndb.versions.base import VersionError
from moat.vulndb.versions.semver import STRICT, Key, compare_keys, key_from

SCHEME = "npm"
_GRAMMAR = re.compile(r"v?" + STRICT.pattern)
_MAX_LENGTH = 256
_MAX_SAFE_INTEGER = 2**53 - 1


@lru_cache(maxsize=65536)
def parse(version: str) -> Key:
    """The SemVer sort key; raises VersionError for what ``new SemVer(v)`` rejects."""
    if len(version) > _MAX_LENGTH:
        raise VersionError(SCHEME, version[:40] + "...", f"longer than {_MAX_LENGTH} characters")
    key = key_from(SCHEME, version, _GRAMMAR.fullmatch(version.strip()))
    if max(key[:3]) > _MAX_SAFE_INTEGER:
        raise VersionError(SCHEME, version, "number larger than JavaScript's MAX_SAFE_INTEGER")
    return key


def compare(a: str, b: str) -> int:
    """-1, 0 or 1 as ``semver.compare(a, b)`` answers (build metadata ignored)."""
    return compare_keys(parse(a), parse(b))
