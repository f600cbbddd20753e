"""Go module versions, as golang.org/x/mod/semver parses and orders them.

Go requires a ``v`` prefix, but OSV's Go ecosystem writes versions without it (``1.2.3``), so both
forms are accepted. x/mod/semver also accepts the shorthands ``v1`` and ``v1.2`` (meaning ``v1.0.0`` and
``v1.2.0``, without pre-release or build). Pseudo-versions (``v0.0.0-20191109021931-daa7c04131f5``)
are ordinary pre-releases and ``+incompatible`` is build metadata, so both order correctly without
special cases. Numbers have no size limit.
"""

from __future__ import annotations

import re
from functools import lru_cache

from moat.vulndb.versions.base import VersionError
from moat.vulndb.versions.semver import NUMBER, STRICT, Key, compare_keys, key_from

SCHEME = "Go"
_SHORT = re.compile(rf"(?P<major>{NUMBER})(?:\.(?P<minor>{NUMBER}))?(?P<patch>)(?P<pre>)")


@lru_cache(maxsize=65536)
def parse(version: str) -> Key:
    """The SemVer sort key of ``version`` (with or without its ``v``)."""
    text = version[1:] if version.startswith("v") else version
    match = STRICT.fullmatch(text) or _SHORT.fullmatch(text)
    if not text:
        raise VersionError(SCHEME, version, "empty version")
    return key_from(SCHEME, version, match)


def compare(a: str, b: str) -> int:
    """-1, 0 or 1 as ``semver.Compare("v"+a, "v"+b)`` answers for valid versions."""
    return compare_keys(parse(a), parse(b))
