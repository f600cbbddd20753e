"""Does a version fall in an affected entry's OSV ranges or versions list?

The evaluation follows the OSV schema's pseudocode (https://ossf.github.io/osv-schema/#evaluation):
within a range, events are taken in version order and the last one that applies to ``v`` decides
(``introduced <= v`` → affected, ``fixed <= v`` or ``last_affected < v`` → not); a range only counts
when ``v`` is below one of its ``limit`` events, if it has any. Rather than sorting every range, the
deciding event is found directly as the greatest applicable event: the same answer with one
comparison per event against the installed version. ``GIT`` ranges need the project's commit graph
and are ignored (their ``versions`` list, when present, still matches).

Versions are compared with :mod:`moat.vulndb.versions`, whose per-scheme parsers are cached, so the
installed version is parsed once however many advisories name the package.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from functools import cache, cmp_to_key, lru_cache, partial
from typing import Any, cast

from packaging.version import InvalidVersion, Version

from moat.vulndb import versions
from moat.vulndb.versions import VersionError

__all__ = ["Verdict", "VersionError", "evaluate"]

_EVENT_KINDS = ("introduced", "fixed", "last_affected", "limit")
@dataclass(slots=True)
class Verdict:
    """The answer for an affected version: which fixed versions lie above it (lowest first)."""

    fixed_versions: list[str] = field(default_factory=list)
    by_versions_list: bool = False
    """Matched through the explicit ``versions`` list rather than a range."""


def evaluate(
    ecosystem: str, version: str, ranges: Sequence[dict[str, Any]], listed: Collection[str] = ()
) -> Verdict | None:
    """A :class:`Verdict` when ``version`` is affected, else None.

    ``listed`` is the entry's explicit ``versions`` list; pass it as a set when the same entry is
    evaluated more than once. Raises VersionError when the installed version or an event version
    that decides the answer does not parse in the ecosystem's scheme: the caller skips that advisory
    rather than guess.
    """
    by_list = version in listed
    matched = by_list
    evaluable = False
    for rng in ranges:
        if matched:
            break
        if not isinstance(rng, dict) or str(rng.get("type", "")).upper() == "GIT":
            continue
        events = _events(rng)
        evaluable = evaluable or bool(events)
        if events and _in_range(ecosystem, version, events):
            matched = True
    if not matched and listed and ecosystem == "PyPI":
        by_list = matched = _pep440_listed(version, listed, thorough=not evaluable)
    if not matched:
        return None
    return Verdict(_fixes_above(ecosystem, version, ranges), by_versions_list=by_list)


_PARSED = "_moat_events"
"""Where a range remembers its parsed events: the matcher evaluates each cached row for every
distinct installed version, and re-reading the events dominated that loop."""


def _events(rng: dict[str, Any]) -> list[tuple[str, str]]:
    """(kind, version) pairs of a range; malformed events are dropped."""
    cached = rng.get(_PARSED)
    if cached is not None:
        return cached
    out: list[tuple[str, str]] = []
    for event in rng.get("events") or ():
        if not isinstance(event, dict):
            continue
        for kind in _EVENT_KINDS:
            value = event.get(kind)
            if isinstance(value, str) and value:
                out.append((kind, value))
                break
    rng[_PARSED] = out
    return out


def _pep440_listed(version: str, listed: Collection[str], thorough: bool) -> bool:
    """Whether a PEP 440-equal spelling of ``version`` is listed (``1.0`` lists ``1.0.0``).

    The installed version's canonical spellings (every zero padding of its release) are looked up
    directly. Comparing with each listed item is done only when the entry has no range to evaluate
    (``thorough``), where the list is the only evidence: with ranges, the list osv.dev derives from
    them spells versions as PyPI serves them, canonical in over 98% of the real records, and a
    per-item comparison would cost more than the rest of the match put together.
    An unparseable listed version cannot equal the installed one and is ignored.
    """
    if any(spelling in listed for spelling in _spellings(version)):
        return True
    if not thorough:
        return False
    compare = comparator("PyPI")
    for item in listed:
        try:
            if compare(version, item) == 0:
                return True
        except VersionError:
            continue
    return False


@lru_cache(maxsize=16384)
def _spellings(version: str) -> tuple[str, ...]:
    """Canonical PEP 440 spellings of ``version`` with its release padded to every length up to 4 parts
    beyond its own; empty when it does not parse."""
    try:
        parsed = Version(version)
    except InvalidVersion:
        return ()
    canonical = str(parsed)
    epoch = f"{parsed.epoch}!" if parsed.epoch else ""
    release = list(parsed.release)
    rest = canonical[len(epoch) + len(".".join(map(str, release))):]
    while len(release) > 1 and release[-1] == 0:
        release.pop()
    out = []
    for width in range(len(release), max(len(parsed.release), len(release)) + 3):
        padded = release + [0] * (width - len(release))
        out.append(f"{epoch}{'.'.join(map(str, padded))}{rest}")
    return tuple(out)


@cache
def comparator(ecosystem: str) -> Callable[[str, str], int]:
    """``compare(a, b)`` for one ecosystem, resolved once rather than on every comparison.

    The scheme modules of :mod:`moat.vulndb.versions` each expose ``compare(a, b)``; when one cannot
    be resolved the dispatching ``versions.compare`` is used (and raises its own VersionError).
    """
    name = versions.scheme_of(ecosystem)
    if name is not None:
        try:
            module = importlib.import_module(f"{versions.__name__}.{name}")
        except ModuleNotFoundError:
            module = None
        scheme_compare = getattr(module, "compare", None)
        if callable(scheme_compare):
            return cast(Callable[[str, str], int], scheme_compare)
    return partial(versions.compare, ecosystem)


def _in_range(ecosystem: str, version: str, events: list[tuple[str, str]]) -> bool:
    limits = [value for kind, value in events if kind == "limit"]
    if limits and not any(
        "*" in limit or comparator(ecosystem)(version, limit) < 0 for limit in limits
    ):
        return False
    applicable: list[tuple[str, str]] = []
    for kind, value in events:
        if kind == "limit":
            continue
        if kind == "introduced" and value == "0":
            applicable.append((kind, value))
            continue
        order = comparator(ecosystem)(version, value)
        if (kind == "last_affected" and order > 0) or (kind != "last_affected" and order >= 0):
            applicable.append((kind, value))
    if not applicable:
        return False
    # The last applicable event in version order decides. Events at equal versions keep the order the
    # record lists them in, as the schema's stable sort would: "fixed 2.0.0, introduced 2.0.0" joins
    # two ranges into one (a real PYSEC record writes it so), "introduced 1.0, fixed 1.0" is empty.
    deciding = applicable[0]
    for event in applicable[1:]:
        if _event_order(ecosystem, event, deciding) >= 0:
            deciding = event
    return deciding[0] == "introduced"


def _event_order(ecosystem: str, a: tuple[str, str], b: tuple[str, str]) -> int:
    """Events by version, ``introduced: "0"`` before every other."""
    if a[1] == b[1]:
        return 0
    if a == ("introduced", "0"):
        return -1
    if b == ("introduced", "0"):
        return 1
    return comparator(ecosystem)(a[1], b[1])


def _fixes_above(ecosystem: str, version: str, ranges: Sequence[dict[str, Any]]) -> list[str]:
    """Every ``fixed`` event above the installed version, lowest first: the upgrade targets.

    A fix that does not parse is left out (it cannot be offered as an upgrade anyway).
    """
    fixes: list[str] = []
    for rng in ranges:
        if not isinstance(rng, dict) or str(rng.get("type", "")).upper() == "GIT":
            continue
        for kind, value in _events(rng):
            if kind != "fixed" or value in fixes:
                continue
            try:
                if comparator(ecosystem)(version, value) < 0:
                    fixes.append(value)
            except VersionError:
                continue
    def order(a: str, b: str) -> int:
        return comparator(ecosystem)(a, b)

    return sorted(fixes, key=cmp_to_key(order))
