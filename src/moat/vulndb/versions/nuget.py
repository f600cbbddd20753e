"""NuGet versions, ordered as NuGet's ``NuGetVersion`` with the default ``VersionComparer``.

Written here from NuGet's documented rules ("Package versioning" in the NuGet docs); no NuGet client
runs on this machine, so the tests are hand-written cases from those docs and the SemVer 2.0 spec.

* ``Major[.Minor[.Patch[.Revision]]][-Label{.Label}][+Metadata]``: one to four numbers, missing
  ones are 0 (``1.0 == 1.0.0 == 1.0.0.0``) and leading zeros are allowed (``1.01 == 1.1``), each a
  32-bit signed integer.
* A version without labels is newer than one with labels. Labels compare one by one: two numeric
  labels numerically, a numeric label before an alphanumeric one, alphanumeric labels
  case-insensitively (``1.0.0-Beta == 1.0.0-beta``); a longer list of equal labels is newer.
* Build metadata never affects the order.
"""

from __future__ import annotations

import re
from functools import lru_cache

from moat.vulndb.versions.base import VersionError

SCHEME = "NuGet"
_IDENT = r"[0-9A-Za-z-]+"
_GRAMMAR = re.compile(rf"([0-9]+(?:\.[0-9]+){{0,3}})(?:-({_IDENT}(?:\.{_IDENT})*))?(?:\+({_IDENT}(?:\.{_IDENT})*))?")
_INT32_MAX = 2**31 - 1

Label = tuple[int, int | str]
Key = tuple[tuple[int, int, int, int], int, tuple[Label, ...]]


@lru_cache(maxsize=65536)
def parse(version: str) -> Key:
    """``((major, minor, patch, revision), 1 for a release else 0, labels)``."""
    match = _GRAMMAR.fullmatch(version.strip())
    if match is None:
        raise VersionError(SCHEME, version, "not Major[.Minor[.Patch[.Revision]]][-label][+metadata]")
    numbers = [int(part) for part in match.group(1).split(".")]
    if max(numbers) > _INT32_MAX:
        raise VersionError(SCHEME, version, "version number larger than a 32-bit integer")
    numbers += [0] * (4 - len(numbers))
    labels = match.group(2)
    parsed = tuple((0, int(p)) if p.isdigit() else (1, p.upper()) for p in labels.split(".")) if labels else ()
    return (numbers[0], numbers[1], numbers[2], numbers[3]), 0 if labels else 1, parsed


def compare(a: str, b: str) -> int:
    """-1, 0 or 1 by NuGet's default version comparison."""
    ka, kb = parse(a), parse(b)
    return (ka > kb) - (ka < kb)
