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

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cmp_to_key
from typing import Any

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
    ecosystem: str, version: str, ranges: Sequence[dict[str, Any]], listed: Sequence[str] = ()
) -> Verdict | None:
    """A :class:`Verdict` when ``version`` is affected, else None.

    Raises VersionError when the installed version or an event version that decides the answer does
    not parse in the ecosystem's scheme: the caller skips that advisory rather than guess.
    """
    by_list = _in_versions_list(ecosystem, version, listed)
    matched = by_list
    for rng in ranges:
        if matched:
            break
        if not isinstance(rng, dict) or str(rng.get("type", "")).upper() == "GIT":
            continue
        events = _events(rng)
        if events and _in_range(ecosystem, version, events):
            matched = True
    if not matched:
        return None
    return Verdict(_fixes_above(ecosystem, version, ranges), by_versions_list=by_list)


def _events(rng: dict[str, Any]) -> list[tuple[str, str]]:
    """(kind, version) pairs of a range; malformed events are dropped."""
    out: list[tuple[str, str]] = []
    for event in rng.get("events") or ():
        if not isinstance(event, dict):
            continue
        for kind in _EVENT_KINDS:
            value = event.get(kind)
            if isinstance(value, str) and value:
                out.append((kind, value))
                break
    return out


def _in_versions_list(ecosystem: str, version: str, listed: Sequence[str]) -> bool:
    """Exact string equality; for PyPI also PEP 440 equality (``1.0`` lists ``1.0.0``).

    An unparseable listed version cannot equal the installed one, so it is ignored rather than
    failing the whole advisory.
    """
    if not listed:
        return False
    if version in listed:
        return True
    if ecosystem != "PyPI":
        return False
    for item in listed:
        try:
            if versions.compare(ecosystem, version, item) == 0:
                return True
        except VersionError:
            continue
    return False


def _in_range(ecosystem: str, version: str, events: list[tuple[str, str]]) -> bool:
    limits = [value for kind, value in events if kind == "limit"]
    if limits and not any(
        "*" in limit or versions.compare(ecosystem, version, limit) < 0 for limit in limits
    ):
        return False
    applicable: list[tuple[str, str]] = []
    for kind, value in events:
        if kind == "limit":
            continue
        if kind == "introduced" and value == "0":
            applicable.append((kind, value))
            continue
        order = versions.compare(ecosystem, version, value)
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
    return versions.compare(ecosystem, a[1], b[1])


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
                if versions.compare(ecosystem, version, value) < 0:
                    fixes.append(value)
            except VersionError:
                continue
    def order(a: str, b: str) -> int:
        return versions.compare(ecosystem, a, b)

    return sorted(fixes, key=cmp_to_key(order))
