"""RPM versions (AlmaLinux, Rocky, Red Hat, SUSE, ...), ordered as rpm's own ``rpmvercmp`` orders them.

Written here because the rules are rpm's C code, not a grammar: the checks against
``rpm --eval '%{lua: print(rpm.vercmp(a, b))}'`` (rpm 4.18) are what define it. An EVR string is
``[epoch:]version[-release]``: the epoch is the leading digits before a ``:``, the release is what
follows the *last* ``-``. Epochs, versions and releases are each compared with rpmvercmp; a missing
epoch is 0, and a string with a release (even an empty one, ``1.0-``) is newer than the same version
without one (``1.0 < 1.0-0``): that is what rpm 4.18's ``rpmverCmp`` answers.

Validity: rpm.vercmp accepts any non-empty string; Moat also rejects whitespace and control
characters, which rpmbuild never lets into a Version or Release, so they only come from broken data.

rpmvercmp splits a string into runs of ASCII digits and of ASCII letters; everything else separates
runs and is otherwise ignored, except ``~`` (sorts before anything, even the end of the string) and
``^`` (sorts after the end of the string but before anything else). Digits beat letters; numbers
compare numerically; letters compare as byte strings.
"""

from __future__ import annotations

import re
from functools import lru_cache

from moat.vulndb.versions.base import VersionError, sign

SCHEME = "rpm"
_TOKEN = re.compile(r"~|\^|[0-9]+|[A-Za-z]+")
_EPOCH = re.compile(r"([0-9]*):")

Token = str | int
"""A letters run (str), a number (int), or the separators ``~`` / ``^`` (as str)."""


def _tokens(text: str) -> tuple[Token, ...]:
    return tuple(int(t) if t[0].isdigit() else t for t in _TOKEN.findall(text))


def _vercmp(a: tuple[Token, ...], b: tuple[Token, ...]) -> int:
    i = 0
    while True:
        x = a[i] if i < len(a) else None
        y = b[i] if i < len(b) else None
        if x == "~" or y == "~":
            if x != "~":
                return 1
            if y != "~":
                return -1
        elif x == "^" or y == "^":
            if x is None:
                return -1
            if y is None:
                return 1
            if x != "^":
                return 1
            if y != "^":
                return -1
        elif x is None or y is None:
            return 0 if x is y else (-1 if x is None else 1)
        elif isinstance(x, int) != isinstance(y, int):
            # rpm decides by the type of the *first* string's segment: a number beats letters.
            return 1 if isinstance(x, int) else -1
        elif x != y:
            return -1 if x < y else 1  # type: ignore[operator]  # same type here
        i += 1


@lru_cache(maxsize=65536)
def parse(version: str) -> tuple[tuple[Token, ...], tuple[Token, ...], tuple[Token, ...] | None]:
    """``(epoch, version, release)`` token tuples; release is None when the string has none."""
    if not version:
        raise VersionError(SCHEME, version, "version string is empty")
    if any(c.isspace() or not c.isprintable() for c in version):
        raise VersionError(SCHEME, version, "whitespace or control character in version")
    epoch: tuple[Token, ...] = (0,)
    rest = version
    match = _EPOCH.match(version)
    if match:
        epoch = _tokens(match.group(1) or "0")
        rest = version[match.end() :]
    head, hyphen, release = rest.rpartition("-")
    if not hyphen:
        return epoch, _tokens(rest), None
    return epoch, _tokens(head), _tokens(release)


def compare(a: str, b: str) -> int:
    """-1, 0 or 1 as ``rpm.vercmp(a, b)`` answers."""
    if a == b:
        return 0
    ea, va, ra = parse(a)
    eb, vb, rb = parse(b)
    result = _vercmp(ea, eb) or _vercmp(va, vb)
    if result or ra == rb:
        return sign(result)
    if ra is None or rb is None:
        return -1 if ra is None else 1
    return sign(_vercmp(ra, rb))
