"""Maven versions, ordered as Maven's ``ComparableVersion`` (maven-artifact 3.8, Debian's maven) orders them.

Written here because no maintained Python library follows ComparableVersion exactly; the tests run
the real class from Debian's maven-artifact jar. The rules, in short:

* The lower-cased string is split into items at ``.`` and ``-`` and at every switch between digits and
  letters. A ``-`` or a digit/letter switch opens a nested list, so ``1-1`` is ``[1, [1]]``.
* Numbers compare numerically (leading zeros ignored); words compare as qualifiers:
  ``alpha < beta < milestone < rc = cr < snapshot < "" = ga = final = release < sp``, then any other
  word, alphabetically after all of those. ``a``/``b``/``m`` directly followed by a digit mean
  alpha/beta/milestone.
* A number is newer than a list, which is newer than a word (``1.1 > 1-1 > 1-sp``... for equal
  prefixes), and a missing item counts as "null": ``0``, ``""``, an empty list.
* Maven 3.8.7 also puts a word that ends the string (``1.foo.bar`` is ``[1, foo, [bar]]``) and a word
  followed by digits (``1.x1`` is ``[1, [x, [1]]]``) in their own nested list when the current list is
  not empty.
* Trailing nulls are dropped from every list (``1.0.0 == 1``, ``1.0-final == 1``, ``1.0-alpha == 1-alpha``).

Any non-empty string is a Maven version; only the empty string is rejected.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Union

from moat.vulndb.versions.base import VersionError

SCHEME = "Maven"
_QUALIFIERS = ("alpha", "beta", "milestone", "rc", "snapshot", "", "sp")
_ALIASES = {"ga": "", "final": "", "release": "", "cr": "rc"}
_RELEASE_INDEX = "5"


class _Word:
    """A qualifier, stored as the string ComparableVersion compares (known ones as their index)."""

    __slots__ = ("comparable", "null")

    def __init__(self, text: str, followed_by_digit: bool) -> None:
        if followed_by_digit and len(text) == 1:
            text = {"a": "alpha", "b": "beta", "m": "milestone"}.get(text, text)
        text = _ALIASES.get(text, text)
        self.null = text == ""
        self.comparable = str(_QUALIFIERS.index(text)) if text in _QUALIFIERS else f"{len(_QUALIFIERS)}-{text}"


Item = Union[int, _Word, "list[Item]"]


def _is_null(item: Item) -> bool:
    if isinstance(item, int):
        return item == 0
    if isinstance(item, _Word):
        return item.null
    return not item


def _normalize(items: list[Item]) -> None:
    # Drop null items from the end, looking through (but keeping) non-null nested lists.
    for i in range(len(items) - 1, -1, -1):
        if _is_null(items[i]):
            del items[i]
        elif not isinstance(items[i], list):
            break


def _cmp_str(a: str, b: str) -> int:
    return (a > b) - (a < b)


def _cmp(a: Item, b: Item | None) -> int:
    """ComparableVersion's Item.compareTo, with None for a missing item."""
    if isinstance(a, int):
        if b is None:
            return 0 if a == 0 else 1
        if isinstance(b, int):
            return (a > b) - (a < b)
        return 1  # a number is newer than a word or a list
    if isinstance(a, _Word):
        if b is None:
            return _cmp_str(a.comparable, _RELEASE_INDEX)
        if isinstance(b, _Word):
            return _cmp_str(a.comparable, b.comparable)
        return -1  # a word is older than a number or a list
    if b is None:
        # A list against nothing: its first item that is not itself "nothing" decides.
        return next((result for item in a if (result := _cmp(item, None))), 0)
    if isinstance(b, int):
        return -1
    if isinstance(b, _Word):
        return 1
    for i in range(max(len(a), len(b))):
        # The shorter list's missing item is None: compare the other way round and flip the sign.
        result = -_cmp(b[i], None) if i >= len(a) else _cmp(a[i], b[i] if i < len(b) else None)
        if result:
            return result
    return 0


def _item(digits: bool, text: str) -> Item:
    return int(text) if digits else _Word(text, False)


@lru_cache(maxsize=65536)
def parse(version: str) -> list[Item]:
    """The normalized item list; raises VersionError only for the empty string."""
    if not version:
        raise VersionError(SCHEME, version, "empty version")
    text = version.lower()
    root: list[Item] = []
    current = root
    stack = [root]
    digits = False
    start = 0
    for i, char in enumerate(text):
        if char in ".-":
            current.append(0 if i == start else _item(digits, text[start:i]))
            start = i + 1
            if char == "-":
                nested: list[Item] = []
                current.append(nested)
                current = nested
                stack.append(nested)
        elif char.isdigit() and char.isascii():
            if not digits and i > start:
                if current:  # "1.x1" is [1, [x, [1]]]: a word followed by a number starts its own list
                    nested = []
                    current.append(nested)
                    current = nested
                    stack.append(nested)
                current.append(_Word(text[start:i], True))
                start = i
                nested = []
                current.append(nested)
                current = nested
                stack.append(nested)
            digits = True
        else:
            if digits and i > start:
                current.append(_item(True, text[start:i]))
                start = i
                nested = []
                current.append(nested)
                current = nested
                stack.append(nested)
            digits = False
    if len(text) > start:
        if not digits and current:  # a trailing ".X" counts as "-X" for any word X
            nested = []
            current.append(nested)
            current = nested
            stack.append(nested)
        current.append(_item(digits, text[start:]))
    for items in reversed(stack):
        _normalize(items)
    return root


def compare(a: str, b: str) -> int:
    """-1, 0 or 1 as ``new ComparableVersion(a).compareTo(new ComparableVersion(b))``."""
    result = _cmp(parse(a), parse(b))
    return (result > 0) - (result < 0)
