"""RubyGems versions, ordered as ``Gem::Version#<=>`` (RubyGems 3.3, Debian's ruby 3.1) orders them.

Written here because the rules are short and no Python library follows them: the tests run Ruby.
A version is digits, then ``.``-separated alphanumeric parts, then optionally ``-`` and more parts
(each ``-`` means ``.pre.``, so ``1.0-1`` is the pre-release ``1.0.pre.1``). It is split into runs of
digits (numbers) and letters (strings); trailing zeros are dropped from the numeric head and from the
part after the first string (``1.0.0 == 1``, ``1.0.a == 1.a``). Segments compare pairwise, missing
ones as 0: numbers numerically, strings bytewise, and any string before any number, which is why
``1.0.a < 1.0 < 1.0.1``. Surrounding whitespace is allowed; the empty string (``Gem::Version.new("")``
means ``0``) is rejected here because an empty version in vulnerability data is broken data.
"""

from __future__ import annotations

import re
from functools import lru_cache

from moat.vulndb.versions.base import VersionError

SCHEME = "RubyGems"
_GRAMMAR = re.compile(r"[ \t\r\n\f\v]*([0-9]+(?:\.[0-9a-zA-Z]+)*(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?)[ \t\r\n\f\v]*")
_SEGMENT = re.compile(r"[0-9]+|[a-zA-Z]+")

Segment = int | str


def _drop_trailing_zeros(segments: list[Segment]) -> list[Segment]:
    while segments and segments[-1] == 0:
        segments.pop()
    return segments


@lru_cache(maxsize=65536)
def parse(version: str) -> tuple[Segment, ...]:
    """The canonical segments; raises VersionError for what ``Gem::Version.correct?`` rejects (and "")."""
    match = _GRAMMAR.fullmatch(version)
    if match is None:
        raise VersionError(SCHEME, version, "not a RubyGems version (digits, then .-separated alphanumerics)")
    text = match.group(1).replace("-", ".pre.")
    segments: list[Segment] = [int(s) if s.isdigit() else s for s in _SEGMENT.findall(text)]
    first_string = next((i for i, s in enumerate(segments) if isinstance(s, str)), len(segments))
    head = _drop_trailing_zeros(segments[:first_string])
    tail = _drop_trailing_zeros(segments[first_string:])
    return tuple(head + tail)


def compare(a: str, b: str) -> int:
    """-1, 0 or 1 as ``Gem::Version.new(a) <=> Gem::Version.new(b)``."""
    left, right = parse(a), parse(b)
    for i in range(max(len(left), len(right))):
        x = left[i] if i < len(left) else 0
        y = right[i] if i < len(right) else 0
        if x == y:
            continue
        if isinstance(x, str) != isinstance(y, str):
            return -1 if isinstance(x, str) else 1
        return -1 if x < y else 1  # type: ignore[operator]  # both numbers or both strings here
    return 0
