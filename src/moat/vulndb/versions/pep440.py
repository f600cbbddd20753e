"""PyPI versions, ordered by PEP 440 through ``packaging.version`` (the library pip itself vendors).

Using pip's own implementation means Moat orders PyPI versions exactly as the installer that chose
them does. Since packaging 22 non-PEP 440 ("legacy") versions are rejected; they are invalid here too.
"""

from __future__ import annotations

from functools import lru_cache

from packaging.version import InvalidVersion, Version

from moat.vulndb.versions.base import VersionError, sign

SCHEME = "pep440"


@lru_cache(maxsize=65536)
def parse(version: str) -> Version:
    """The parsed version; raises VersionError for anything PEP 440 does not accept."""
    try:
        return Version(version)
    except InvalidVersion:
        raise VersionError(SCHEME, version, "not a PEP 440 version") from None


def compare(a: str, b: str) -> int:
    """-1, 0 or 1 in PEP 440 order (``1.0 == 1.0.0``, ``1.0rc1 < 1.0 < 1.0.post1``, local labels last)."""
    va, vb = parse(a), parse(b)
    return sign((va > vb) - (va < vb))
