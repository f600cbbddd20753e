"""Debian/Ubuntu versions, ordered as ``dpkg --compare-versions`` orders them (Debian Policy 5.6.12).

Written here rather than taken from a library because the algorithm is short and the corner cases
(``~`` sorting before the end of a string, letters before other punctuation, an empty revision equal
to ``0``, which strings dpkg rejects) are exactly what the tests check against dpkg itself.

A version is ``[epoch:]upstream[-revision]``; the revision is everything after the *last* hyphen.
Upstream and revision are compared by alternating runs of non-digits (character by character, with
``~`` lowest, then the end of the run, then letters, then everything else) and runs of digits
(numerically). Strings that dpkg reports as errors *or* warnings (upstream not starting with a digit,
characters outside ``[A-Za-z0-9.+~-:]``) are invalid here: a vulnerability database should not
silently order versions dpkg itself calls bad syntax.
"""

from __future__ import annotations

import re
from functools import lru_cache
from itertools import zip_longest

from moat.vulndb.versions.base import VersionError, sign

SCHEME = "dpkg"
_INT_MAX = 2**31 - 1
_RUN = re.compile(r"(\D*)(\d*)")
_UPSTREAM_OK = re.compile(r"[0-9][A-Za-z0-9.+~:-]*")
_REVISION_OK = re.compile(r"[A-Za-z0-9.+~]*")

Part = tuple[tuple[int, ...], int]
"""One run of non-digits (as per-character weights plus a terminating 0) and the number after it."""


def _weight(char: str) -> int:
    if char.isascii() and char.isalpha():
        return ord(char)
    if char == "~":
        return -1
    return ord(char) + 256


def _parts(text: str) -> tuple[Part, ...]:
    parts: list[Part] = []
    for letters, digits in _RUN.findall(text):
        if not letters and not digits:
            continue
        parts.append(((*(_weight(c) for c in letters), 0), int(digits) if digits else 0))
    return tuple(parts)


_PAD: Part = ((0,), 0)


def _cmp_parts(a: tuple[Part, ...], b: tuple[Part, ...]) -> int:
    # A string that has ended behaves like an endless run of empty non-digit runs and zeros, which is
    # why "1.0" == "1.0-0" and "1.0~rc1" < "1.0"; zip_longest pads with exactly that.
    for pa, pb in zip_longest(a, b, fillvalue=_PAD):
        if pa != pb:
            return -1 if pa < pb else 1
    return 0


@lru_cache(maxsize=65536)
def parse(version: str) -> tuple[int, tuple[Part, ...], tuple[Part, ...]]:
    """``(epoch, upstream parts, revision parts)``; raises VersionError where dpkg would complain."""
    text = version.strip()
    if not text:
        raise VersionError(SCHEME, version, "version string is empty")
    if any(c.isspace() for c in text):
        raise VersionError(SCHEME, version, "version string has embedded spaces")
    epoch = 0
    if ":" in text:
        head, _, text = text.partition(":")
        if not head:
            raise VersionError(SCHEME, version, "epoch in version is empty")
        if not re.fullmatch(r"\+?[0-9]+", head):
            raise VersionError(SCHEME, version, "epoch in version is not number")
        epoch = int(head)
        if epoch > _INT_MAX:
            raise VersionError(SCHEME, version, "epoch in version is too big")
        if not text:
            raise VersionError(SCHEME, version, "nothing after colon in version number")
    upstream, hyphen, revision = text.rpartition("-")
    if not hyphen:
        upstream, revision = text, ""
    elif not revision:
        raise VersionError(SCHEME, version, "revision number is empty")
    if not upstream:
        raise VersionError(SCHEME, version, "upstream version is empty")
    if not _UPSTREAM_OK.fullmatch(upstream):
        reason = "version number does not start with digit" if not upstream[0].isdigit() else "invalid character"
        raise VersionError(SCHEME, version, reason)
    if not _REVISION_OK.fullmatch(revision):
        raise VersionError(SCHEME, version, "invalid character in revision number")
    return epoch, _parts(upstream), _parts(revision)


def compare(a: str, b: str) -> int:
    """-1, 0 or 1 as ``dpkg --compare-versions a lt/eq/gt b`` would answer."""
    ea, ua, ra = parse(a)
    eb, ub, rb = parse(b)
    if ea != eb:
        return sign(ea - eb)
    return _cmp_parts(ua, ub) or _cmp_parts(ra, rb)
