"""Packagist (Composer) versions: normalized as composer/semver's ``VersionParser::normalize`` does, then
ordered as Composer orders normalized versions, which is PHP's ``version_compare``.

Written here because both halves are PHP-specific; the tests run Debian's composer/semver 3.3 under
PHP as the oracle. Normalizing turns ``v1.2``, ``1.2.0`` and ``1.2.0.0`` into ``1.2.0.0``, expands
stability suffixes (``b2`` -> ``beta2``, ``p1``/``pl1`` -> ``patch1``, ``rc`` -> ``RC``, ``-stable``
dropped), drops build metadata and ``@stability`` flags and maps numeric dev branches
(``1.x-dev``) to ``1.9999999.9999999.9999999-dev``. ``version_compare`` then orders
``dev < alpha < beta < RC < (number / release) < patch``.

Named dev branches (``dev-main``) have no order in Composer (it only tests them for equality), so
they are rejected here like any other string composer/semver cannot normalize.
"""

from __future__ import annotations

import re
from functools import lru_cache

from moat.vulndb.versions.base import VersionError

SCHEME = "Packagist"
_MODIFIER = r"[._-]?(?:(stable|beta|b|RC|alpha|a|patch|pl|p)((?:[.-]?\d+)*+)?)?([.-]?dev)?"
_CLASSICAL = re.compile(r"v?(\d{1,5})(\.\d++)?(\.\d++)?(\.\d++)?" + _MODIFIER, re.IGNORECASE)
_DATE = re.compile(r"v?(\d{4}(?:[.:-]?\d{2}){1,6}(?:[.:-]?\d{1,3})?)" + _MODIFIER, re.IGNORECASE)
_ALIAS = re.compile(r"([^,\s]++) ++as ++([^,\s]++)")
_FLAG = re.compile(r"@(?:stable|RC|beta|alpha|dev)$", re.IGNORECASE)
_BUILD = re.compile(r"([^,\s+]++)\+[^\s]++")
_DEV = re.compile(r"(.*?)[.-]?dev", re.IGNORECASE | re.DOTALL)
_BRANCH = re.compile(r"v?(\d++)(\.(?:\d++|[xX*]))?(\.(?:\d++|[xX*]))?(\.(?:\d++|[xX*]))?", re.IGNORECASE)
_STABILITY = {"a": "alpha", "b": "beta", "p": "patch", "pl": "patch", "rc": "RC"}
_SPECIAL_FORMS = (("dev", 0), ("alpha", 1), ("a", 1), ("beta", 2), ("b", 2), ("RC", 3), ("rc", 3), ("#", 4),
                  ("pl", 5), ("p", 5))
_PHP_SPACE = " \t\n\r\0\x0b"


def _with_modifier(version: str, match: re.Match[str], index: int) -> str:
    stability, number, dev = match.group(index), match.group(index + 1), match.group(index + 2)
    if stability:
        if stability == "stable":
            return version
        version += "-" + _STABILITY.get(stability.lower(), stability.lower()) + (number or "").lstrip(".-")
    if dev:
        version += "-dev"
    return version


def normalize(version: str) -> str:
    """composer/semver's normalized form; raises VersionError where it throws (and for dev branches)."""
    text = version.strip(_PHP_SPACE)
    if alias := _ALIAS.fullmatch(text):
        text = alias.group(1)
    if flag := _FLAG.search(text):
        text = text[: flag.start()]
    if text in ("master", "trunk", "default") or text[:4].lower() == "dev-":
        raise VersionError(SCHEME, version, "a dev branch has no version order")
    if build := _BUILD.fullmatch(text):
        text = build.group(1)
    if match := _CLASSICAL.fullmatch(text):
        parts = [match.group(1)] + [match.group(i) or ".0" for i in (2, 3, 4)]
        return _with_modifier("".join(parts), match, 5)
    if match := _DATE.fullmatch(text):
        return _with_modifier(re.sub(r"\D", ".", match.group(1)), match, 2)
    if (dev := _DEV.fullmatch(text)) and (branch := _BRANCH.fullmatch(dev.group(1).strip(_PHP_SPACE))):
        pieces = [branch.group(1)] + [branch.group(i) or ".x" for i in (2, 3, 4)]
        return "".join(pieces).replace("*", "x").replace("X", "x").replace("x", "9999999") + "-dev"
    raise VersionError(SCHEME, version, "not a Composer version")


def _canonical(text: str) -> list[str]:
    """PHP's version_compare canonical form, split at dots: separators become dots, and a dot is put
    between every switch from digits to non-digits."""
    out = [text[0]]
    last = text[0]
    for char in text[1:]:
        previous = out[-1]
        last_digit, digit = last.isdigit(), char.isdigit()
        if char in "-_+":
            if previous != ".":
                out.append(".")
        elif last != "." and char != "." and last_digit != digit:
            if previous != ".":
                out.append(".")
            out.append(char)
        elif not (char.isascii() and char.isalnum()):
            if previous != ".":
                out.append(".")
        else:
            out.append(char)
        last = char
    return "".join(out).split(".")


def _special(part: str) -> int:
    return next((order for name, order in _SPECIAL_FORMS if part.startswith(name)), -6)


def _part_cmp(x: str, y: str) -> int:
    if x[:1].isdigit() and y[:1].isdigit():
        a, b = int(x), int(y)
        return (a > b) - (a < b)
    a, b = _special("#" if x[:1].isdigit() else x), _special("#" if y[:1].isdigit() else y)
    return (a > b) - (a < b)


def _php_version_compare(left: list[str], right: list[str]) -> int:
    i = 0
    while True:
        result = _part_cmp(left[i], right[i])
        if result:
            return result
        more_left, more_right = i + 1 < len(left), i + 1 < len(right)
        if more_left and more_right:
            i += 1
            continue
        if more_left:
            rest = left[i + 1 :]
            return 1 if rest[0][:1].isdigit() else _php_version_compare(rest, ["#N", ""])
        if more_right:
            rest = right[i + 1 :]
            return -1 if rest[0][:1].isdigit() else _php_version_compare(["#N", ""], rest)
        return 0


@lru_cache(maxsize=65536)
def parse(version: str) -> list[str]:
    """The canonical parts of the normalized version."""
    return _canonical(normalize(version))


def compare(a: str, b: str) -> int:
    """-1, 0 or 1 as Composer's ``Comparator`` answers for the two normalized versions."""
    return _php_version_compare(parse(a), parse(b))
