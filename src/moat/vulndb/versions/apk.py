"""Alpine (and Wolfi) package versions, ordered as apk-tools 3 (``apk version -t``) orders them.

Written here because no Python library follows apk-tools 3; the tests compare against the real
``/sbin/apk`` of an Alpine 3.23 root filesystem. A version is

    digits {.digits} [letter] {_suffix[digits]} [~hash] [-r digits]

with suffixes ``alpha < beta < pre < rc`` (pre-releases, before the bare version) and
``cvs < svn < git < hg < p`` (post-releases), one lower-case letter, a lower-case hex commit hash.
Versions are compared token by token. Equal token kinds compare by value: the first number
numerically, later dotted numbers numerically unless either starts with ``0`` (then as strings, so
``1.05 < 1.5`` and ``1.0 < 1.00``), suffix and revision numbers numerically, hashes as strings.
Where the kinds differ, a pre-release suffix loses to anything; otherwise the kind that comes earlier
in the grammar wins (``1.0.1 > 1.0a > 1.0_p1 > 1.0~ab > 1.0-r0 > 1.0``). apk prints nothing for an
invalid version; here those raise VersionError.
"""

from __future__ import annotations

import re
from functools import lru_cache

from moat.vulndb.versions.base import VersionError

SCHEME = "apk"

INITIAL, DIGIT, LETTER, SUFFIX, SUFFIX_NO, HASH, REVISION, END = range(8)
_SUFFIXES = {"alpha": -4, "beta": -3, "pre": -2, "rc": -1, "cvs": 0, "svn": 1, "git": 2, "hg": 3, "p": 4}
_GRAMMAR = re.compile(
    r"(?P<initial>[0-9]+)(?P<dotted>(?:\.[0-9]+)*)(?P<letter>[a-z])?"
    r"(?P<suffixes>(?:_(?:alpha|beta|pre|rc|cvs|svn|git|hg|p)[0-9]*)*)"
    r"(?:~(?P<hash>[0-9a-f]+))?(?:-r(?P<revision>[0-9]+))?"
)
_SUFFIX = re.compile(r"_(alpha|beta|pre|rc|cvs|svn|git|hg|p)([0-9]*)")

Token = tuple[int, int | str]


@lru_cache(maxsize=65536)
def parse(version: str) -> tuple[Token, ...]:
    """The token sequence ``((kind, value), ..., (END, 0))``; raises VersionError if apk would reject it."""
    match = _GRAMMAR.fullmatch(version)
    if match is None:
        raise VersionError(SCHEME, version, "not digits{.digits}[a-z]{_suffix[N]}[~hash][-rN]")
    tokens: list[Token] = [(INITIAL, int(match["initial"]))]
    tokens += [(DIGIT, part) for part in match["dotted"].split(".")[1:]]
    if match["letter"]:
        tokens.append((LETTER, match["letter"]))
    for name, number in _SUFFIX.findall(match["suffixes"]):
        tokens.append((SUFFIX, _SUFFIXES[name]))
        if number:
            tokens.append((SUFFIX_NO, int(number)))
    if match["hash"]:
        tokens.append((HASH, match["hash"]))
    if match["revision"] is not None:
        tokens.append((REVISION, int(match["revision"])))
    tokens.append((END, 0))
    return tuple(tokens)


def _value_cmp(kind: int, x: int | str, y: int | str) -> int:
    if isinstance(x, int) and isinstance(y, int):
        return (x > y) - (x < y)
    sx, sy = str(x), str(y)
    if kind == DIGIT and sx[0] != "0" and sy[0] != "0":
        return _value_cmp(kind, int(sx), int(sy))  # numbers, unless a leading zero says otherwise
    return (sx > sy) - (sx < sy)


def compare(a: str, b: str) -> int:
    """-1, 0 or 1 as ``apk version -t a b`` prints ``<``, ``=`` or ``>``."""
    ta, tb = parse(a), parse(b)
    for (ka, va), (kb, vb) in zip(ta, tb, strict=False):
        if ka != kb:
            if ka == SUFFIX and isinstance(va, int) and va < 0:
                return -1
            if kb == SUFFIX and isinstance(vb, int) and vb < 0:
                return 1
            return -1 if ka > kb else 1
        if ka == END:
            return 0
        result = _value_cmp(ka, va, vb)
        if result:
            return result
    return 0
