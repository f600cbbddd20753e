"""Debian's own security data as advisory records: the security tracker's JSON and the DSA/DLA lists.

Two feeds, because they answer different questions. The tracker JSON
(https://security-tracker.debian.org/tracker/data/json) says, for every CVE and every source
package, what the state is in each release today: fixed in a version, still open, never affected,
left unfixed on purpose. The DSA and DLA lists (``data/DSA/list`` and ``data/DLA/list`` in the
security-tracker repository) are the announcements: which advisory fixed which CVEs in which
source package version, and when. Both name *source* packages; the matcher maps binary packages to
their source before looking up ``Debian:<version>`` rows.

Advisory ids: a DSA/DLA keeps its own id (``DSA-5380-1``) with its CVEs as aliases. A tracker
entry is stored as ``DEBIAN-CVE-…`` (OSV's naming for the same data) with the CVE as alias, not as
the bare CVE id: the store keys advisories by id and replaces them whole, so a bare ``CVE-…`` id
would let the Alpine or Ubuntu record of the same CVE silently delete Debian's rows (and the other
way round). The matcher reports the CVE anyway, because the record aliases one.

Versions are recorded as the feed writes them; ordering is the dpkg comparator's job at match time.
Only clearly broken version strings are skipped (and counted), so one bad line costs one row, not
the feed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from moat.errors import MoatError, ParseError
from moat.vulndb.store import AdvisoryRecord, AffectedRecord

SOURCE_TRACKER = "debian-tracker"
SOURCE_DSA = "debian-dsa"
SOURCE_DLA = "debian-dla"
TRACKER_ID_PREFIX = "DEBIAN-"

RELEASES: dict[str, str] = {
    "hamm": "2.0",
    "slink": "2.1",
    "potato": "2.2",
    "woody": "3.0",
    "sarge": "3.1",
    "etch": "4.0",
    "lenny": "5.0",
    "squeeze": "6.0",
    "wheezy": "7",
    "jessie": "8",
    "stretch": "9",
    "buster": "10",
    "bullseye": "11",
    "bookworm": "12",
    "trixie": "13",
    "forky": "14",
    "duke": "15",
}
"""Codename → the version number images carry in ``/etc/os-release`` (``VERSION_ID``), and OSV's
``Debian:<n>`` ecosystem suffix (``Debian:3.1``, ``Debian:5.0``, ``Debian:7`` …)."""

UNVERSIONED = frozenset({"sid", "unstable", "experimental"})
"""Codenames deliberately not stored: they have no version number an image could be matched on.
Rows for them are counted in :attr:`FeedStats.ignored`, not as skips."""

MAX_TRACKER_BYTES = 512 * 1024 * 1024
MAX_LIST_CHARS = 64 * 1024 * 1024
MAX_WARNINGS = 50

_URGENCY = {"high": "HIGH", "medium": "MEDIUM", "low": "LOW", "unimportant": "LOW"}
_SEVERITY_ORDER = {"": 0, "LOW": 1, "MEDIUM": 2, "HIGH": 3, "CRITICAL": 4}
_DPKG_VERSION = re.compile(r"(?:[0-9]+:)?[0-9][A-Za-z0-9.+~:-]*")
_SOURCE_NAME = re.compile(r"[a-z0-9][a-z0-9.+-]*")
_CVE = re.compile(r"CVE-[0-9]{4}-[0-9]{4,}")
_TRACKER_ID = re.compile(r"(?:CVE-[0-9]{4}-[0-9]{4,}|TEMP-[0-9]{7}-[0-9A-Fa-f]{6})")
_MONTHS = {
    m: i for i, m in enumerate(["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], 1)
}
_HEADER = re.compile(r"\[(\d{1,2}) ([A-Z][a-z]{2}) (\d{4})\] ((DSA|DLA)-\d+(?:-\d+)?)(?:\s+(.*?))?\s*")
_CVES_LINE = re.compile(r"\s+\{([^{}]*)\}\s*")
_RELEASE_LINE = re.compile(r"\s+\[([a-z-]+)\]\s+-\s+(\S+)\s+(\S+)(?:\s+\((.*)\))?\s*")
_MARKERS = {"<not-affected>": "not_affected", "<unfixed>": "affected", "<end-of-life>": "end_of_life"}


@dataclass(slots=True)
class FeedStats:
    """What a feed reader left out, so ``moat db update`` can record and show it.

    ``skipped`` counts broken items (a row, an entry, a line); ``ignored`` counts rows left out on
    purpose (unstable releases). Only the first :data:`MAX_WARNINGS` messages are kept.
    """

    skipped: int = 0
    ignored: int = 0
    warnings: list[str] = field(default_factory=list)

    def skip(self, message: str) -> None:
        self.skipped += 1
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(message)


def is_dpkg_version(text: str) -> bool:
    """Loose sanity check: an optional numeric epoch, then a digit, then dpkg's characters."""
    return _DPKG_VERSION.fullmatch(text) is not None and len(text) <= 256


def ecosystem_of(codename: str) -> str | None:
    """``Debian:<version>`` for a known release codename, else None."""
    version = RELEASES.get(codename)
    return f"Debian:{version}" if version else None


def _fixed_range(version: str) -> list[dict[str, Any]]:
    return [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": version}]}]


def _open_range() -> list[dict[str, Any]]:
    # Every version is affected: stated in the ranges too, so they tell the truth without the status.
    return [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]


def _highest(severities: list[str]) -> str:
    return max(severities, key=lambda s: _SEVERITY_ORDER.get(s, 0), default="")


def _urgency(value: object) -> str:
    if not isinstance(value, str):
        return ""
    return _URGENCY.get(value.strip().rstrip("*").strip().lower(), "")


# --- the tracker JSON ---------------------------------------------------------------------------


def read_tracker_json(
    data: bytes, *, stats: FeedStats | None = None
) -> Iterator[tuple[AdvisoryRecord, list[AffectedRecord]]]:
    """One advisory per CVE (``DEBIAN-CVE-…``) with one row per (source package, release).

    The whole document is parsed before the first record is yielded, because one CVE's rows are
    spread over every source package it touches and the store replaces an advisory whole.
    """
    stats = stats if stats is not None else FeedStats()
    if len(data) > MAX_TRACKER_BYTES:
        raise ParseError(f"Debian tracker JSON: {len(data)} bytes is over the {MAX_TRACKER_BYTES} byte limit")
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise ParseError(f"Debian tracker JSON: not valid JSON ({_one_line(exc)})") from exc
    if not isinstance(document, dict):
        raise ParseError(f"Debian tracker JSON: top level is {type(document).__name__}, expected an object")

    advisories: dict[str, tuple[AdvisoryRecord, list[AffectedRecord]]] = {}
    for package, issues in document.items():
        if not _SOURCE_NAME.fullmatch(package):
            stats.skip(f"Debian tracker: bad source package name {package[:80]!r}")
            continue
        if not isinstance(issues, dict):
            stats.skip(f"Debian tracker: {package}: expected an object of issues")
            continue
        for issue_id, issue in issues.items():
            if not _TRACKER_ID.fullmatch(issue_id):
                stats.skip(f"Debian tracker: {package}: bad issue id {issue_id[:80]!r}")
                continue
            if not isinstance(issue, dict):
                stats.skip(f"Debian tracker: {package} {issue_id}: expected an object")
                continue
            advisory_id = TRACKER_ID_PREFIX + issue_id
            entry = advisories.get(advisory_id)
            if entry is None:
                entry = (_tracker_advisory(advisory_id, issue_id, issue), [])
                advisories[advisory_id] = entry
            else:
                _add_tracker_details(entry[0], issue)
            entry[1].extend(_tracker_rows(advisory_id, package, issue_id, issue, stats))

    for advisory, rows in advisories.values():
        advisory.severity = _highest([row.severity for row in rows])
        advisory.severity_source = "debian" if advisory.severity else ""
        yield advisory, rows


def _tracker_advisory(advisory_id: str, issue_id: str, issue: dict[str, Any]) -> AdvisoryRecord:
    advisory = AdvisoryRecord(
        id=advisory_id,
        source=SOURCE_TRACKER,
        aliases=[issue_id] if issue_id.startswith("CVE-") else [],
        references=[f"https://security-tracker.debian.org/tracker/{issue_id}"],
    )
    _add_tracker_details(advisory, issue)
    return advisory


def _add_tracker_details(advisory: AdvisoryRecord, issue: dict[str, Any]) -> None:
    description = issue.get("description")
    if isinstance(description, str) and description and not advisory.details:
        advisory.details = description[:10_000]
        advisory.summary = description.splitlines()[0][:200] if description.strip() else ""
    bug = issue.get("debianbug")
    if isinstance(bug, int) and not isinstance(bug, bool) and bug > 0:
        url = f"https://bugs.debian.org/{bug}"
        if url not in advisory.references:
            advisory.references.append(url)


def _tracker_rows(
    advisory_id: str, package: str, issue_id: str, issue: dict[str, Any], stats: FeedStats
) -> Iterator[AffectedRecord]:
    releases = issue.get("releases", {})
    if not isinstance(releases, dict):
        stats.skip(f"Debian tracker: {package} {issue_id}: 'releases' is not an object")
        return
    for codename, info in releases.items():
        where = f"Debian tracker: {package} {issue_id} [{codename[:40]}]"
        if codename in UNVERSIONED:
            stats.ignored += 1
            continue
        ecosystem = ecosystem_of(codename)
        if ecosystem is None:
            stats.skip(f"{where}: unknown release")
            continue
        if not isinstance(info, dict):
            stats.skip(f"{where}: expected an object")
            continue
        row = _tracker_row(advisory_id, ecosystem, package, info)
        if isinstance(row, str):
            stats.skip(f"{where}: {row}")
        else:
            yield row


def _tracker_row(advisory_id: str, ecosystem: str, package: str, info: dict[str, Any]) -> AffectedRecord | str:
    """The row for one release, or why there is none."""
    status = info.get("status")
    urgency = info.get("urgency")
    severity = _urgency(urgency)
    row = AffectedRecord(advisory_id=advisory_id, ecosystem=ecosystem, package=package, severity=severity)
    if status == "resolved":
        fixed = info.get("fixed_version")
        if fixed == "0":
            row.status = "not_affected"
            return row
        if not isinstance(fixed, str) or not is_dpkg_version(fixed):
            return f"resolved without a usable fixed_version ({str(fixed)[:60]!r})"
        row.status = "fixed"
        row.ranges = _fixed_range(fixed)
        return row
    if status in ("open", "undetermined"):
        row.ranges = _open_range()
        if isinstance(urgency, str) and urgency.strip().lower() == "end-of-life":
            row.status = "end_of_life"
        elif info.get("nodsa_reason") == "ignored":
            row.status = "will_not_fix"
        else:
            row.status = "affected"
        return row
    return f"unknown status {str(status)[:40]!r}"


# --- the DSA / DLA lists ------------------------------------------------------------------------


@dataclass(slots=True)
class _ListEntry:
    advisory: AdvisoryRecord
    rows: list[AffectedRecord] = field(default_factory=list)


def read_dsa_list(
    text: str, kind: str, *, stats: FeedStats | None = None
) -> Iterator[tuple[AdvisoryRecord, list[AffectedRecord]]]:
    """One advisory per ``[date] DSA-…`` (or DLA) header, rows from its ``[release] - pkg version`` lines.

    Every header yields an advisory, even one without release lines (end-of-life notices, or a
    regression update that names no CVE), so the count of advisories equals the count of headers.
    ``NOTE:`` lines are the security team's comments and are not data.
    """
    if kind not in ("DSA", "DLA"):
        raise MoatError(f"Debian {kind!r} list: kind must be 'DSA' or 'DLA'")
    stats = stats if stats is not None else FeedStats()
    if len(text) > MAX_LIST_CHARS:
        raise ParseError(f"Debian {kind} list: {len(text)} characters is over the {MAX_LIST_CHARS} limit")
    source = SOURCE_DSA if kind == "DSA" else SOURCE_DLA
    current: _ListEntry | None = None
    for number, line in enumerate(text.splitlines(), 1):
        where = f"Debian {kind} list line {number}"
        if not line.strip():
            continue
        header = _HEADER.fullmatch(line)
        if header:
            if current is not None:
                yield _finish(current)
            current = None
            if header.group(5) != kind:
                stats.skip(f"{where}: {header.group(4)} in the {kind} list")
                continue
            current = _ListEntry(_list_advisory(header, source, where, stats))
            continue
        if line.lstrip().startswith("NOTE:"):
            continue
        if current is None:
            stats.skip(f"{where}: not inside an advisory")
            continue
        cves = _CVES_LINE.fullmatch(line)
        if cves:
            for token in cves.group(1).split():
                if not _CVE.fullmatch(token):
                    stats.skip(f"{where}: bad CVE id {token[:40]!r}")
                elif token not in current.advisory.aliases:
                    current.advisory.aliases.append(token)
            continue
        release = _RELEASE_LINE.fullmatch(line)
        if release:
            row = _list_row(current.advisory.id, release, where, stats)
            if row is not None:
                current.rows.append(row)
            continue
        stats.skip(f"{where}: unrecognised line {line.strip()[:60]!r}")
    if current is not None:
        yield _finish(current)


def _list_advisory(header: re.Match[str], source: str, where: str, stats: FeedStats) -> AdvisoryRecord:
    day, month, year = int(header.group(1)), _MONTHS.get(header.group(2)), int(header.group(3))
    published = None
    if month is not None and 1 <= day <= 31:
        published = f"{year:04d}-{month:02d}-{day:02d}T00:00:00Z"
    else:
        stats.skip(f"{where}: bad date, published left empty")
    advisory_id = header.group(4)
    return AdvisoryRecord(
        id=advisory_id,
        source=source,
        summary=(header.group(6) or "")[:200],
        published=published,
        references=[f"https://security-tracker.debian.org/tracker/{advisory_id}"],
    )


def _list_row(advisory_id: str, release: re.Match[str], where: str, stats: FeedStats) -> AffectedRecord | None:
    codename, package, version, note = release.groups()
    if codename in UNVERSIONED:
        stats.ignored += 1
        return None
    ecosystem = ecosystem_of(codename)
    if ecosystem is None:
        stats.skip(f"{where}: unknown release {codename!r}")
        return None
    if not _SOURCE_NAME.fullmatch(package):
        stats.skip(f"{where}: bad source package name {package[:60]!r}")
        return None
    # "(medium)", "(bug #332524; medium)", "(not affected according to DSA)": the urgency is a last word.
    severity = _urgency((note or "").replace(";", " ").split()[-1]) if note and note.split() else ""
    row = AffectedRecord(advisory_id=advisory_id, ecosystem=ecosystem, package=package, severity=severity)
    marker = _MARKERS.get(version)
    if marker is not None:
        row.status = marker
        if marker != "not_affected":
            row.ranges = _open_range()
        return row
    if not is_dpkg_version(version):
        stats.skip(f"{where}: bad version {version[:60]!r}")
        return None
    row.status = "fixed"
    row.ranges = _fixed_range(version)
    return row


def _finish(entry: _ListEntry) -> tuple[AdvisoryRecord, list[AffectedRecord]]:
    entry.advisory.severity = _highest([row.severity for row in entry.rows])
    entry.advisory.severity_source = "debian" if entry.advisory.severity else ""
    return entry.advisory, entry.rows


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__
