"""The local vulnerability database: one SQLite file, OSV-shaped, read by the matcher.

Every feed (OSV exports, the Debian security tracker, Alpine secdb) is turned into the same two
things: an :class:`AdvisoryRecord` (what the advisory says) and its :class:`AffectedRecord` rows
(which package of which ecosystem, which version ranges, what the vendor's status is). Ranges keep
OSV's event form (``introduced`` / ``fixed`` / ``last_affected`` / ``limit``) so one evaluator
serves every feed. Enrichment (CISA KEV, EPSS) is keyed by CVE id.

Ecosystem names are OSV's: ``PyPI``, ``npm``, ``Go``, ``crates.io``, ``Maven``, ``NuGet``,
``RubyGems``, ``Packagist``, and for distributions ``Debian:12``, ``Ubuntu:22.04``,
``Alpine:v3.19``, ``AlmaLinux:9``, ``Rocky Linux:9``. Package names are stored normalised the way
the matcher looks them up (:func:`normalize_package`): PEP 503 for PyPI, ``group:artifact`` for
Maven, source package names for Debian and Alpine, binary names for RPM distributions.

A database is built into a temporary file and renamed into place (:class:`StoreWriter`), so a
failed update never leaves a half-written database where the matcher reads.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from moat.errors import MoatError
from moat.model import CVSS

SCHEMA_VERSION = 1
DB_FILENAME = "vuln.db"

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE sources (
    name TEXT PRIMARY KEY,        -- e.g. osv:PyPI, debian-tracker, alpine-secdb, kev, epss
    location TEXT NOT NULL,       -- path or URL it was read from
    etag TEXT,
    last_modified TEXT,
    fetched_at TEXT NOT NULL,
    records INTEGER NOT NULL,
    skipped INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE advisories (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    aliases TEXT NOT NULL,        -- JSON list
    related TEXT NOT NULL,        -- JSON list (AlmaLinux puts CVEs here)
    summary TEXT NOT NULL,
    details TEXT NOT NULL,
    severity TEXT NOT NULL,       -- vendor severity (CRITICAL/HIGH/MEDIUM/LOW) or ''
    severity_source TEXT NOT NULL,
    cvss TEXT NOT NULL,           -- JSON list of CVSS.to_dict()
    refs TEXT NOT NULL,           -- JSON list of URLs
    published TEXT,
    modified TEXT,
    withdrawn TEXT
);
CREATE TABLE affected (
    advisory_id TEXT NOT NULL,
    ecosystem TEXT NOT NULL,
    package TEXT NOT NULL,
    ranges TEXT NOT NULL,         -- JSON: OSV ranges [{type, events: [{introduced|fixed|last_affected|limit}]}]
    versions TEXT NOT NULL,       -- JSON: explicitly listed affected versions
    status TEXT NOT NULL,         -- fixed | affected | will_not_fix | end_of_life | not_affected
    severity TEXT NOT NULL        -- per-package vendor severity where the feed has one, else ''
);
CREATE INDEX affected_lookup ON affected (ecosystem, package);
CREATE INDEX affected_by_advisory ON affected (advisory_id);
CREATE TABLE aliases (alias TEXT NOT NULL, advisory_id TEXT NOT NULL);
CREATE INDEX aliases_lookup ON aliases (alias);
CREATE INDEX aliases_by_advisory ON aliases (advisory_id);
CREATE TABLE kev (cve TEXT PRIMARY KEY, date_added TEXT, due_date TEXT, ransomware TEXT, name TEXT);
CREATE TABLE epss (cve TEXT PRIMARY KEY, score REAL NOT NULL, percentile REAL NOT NULL);
"""

_PEP503 = re.compile(r"[-_.]+")


def normalize_package(ecosystem: str, name: str) -> str:
    """The form package names are stored and looked up in, per ecosystem."""
    base = ecosystem.split(":", 1)[0]
    if base == "PyPI":
        return _PEP503.sub("-", name).lower()
    if base in ("NuGet", "Packagist"):
        return name.lower()
    return name


@dataclass(slots=True)
class AdvisoryRecord:
    id: str
    source: str
    aliases: list[str] = field(default_factory=list)
    related: list[str] = field(default_factory=list)
    summary: str = ""
    details: str = ""
    severity: str = ""
    severity_source: str = ""
    cvss: list[CVSS] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    published: str | None = None
    modified: str | None = None
    withdrawn: str | None = None


@dataclass(slots=True)
class AffectedRecord:
    advisory_id: str
    ecosystem: str
    package: str
    ranges: list[dict[str, Any]] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)
    status: str = "affected"
    severity: str = ""

    def fixed_versions(self) -> list[str]:
        """Every ``fixed`` event, in the order the ranges list them."""
        return [
            str(event["fixed"])
            for rng in self.ranges
            for event in rng.get("events", [])
            if isinstance(event, dict) and "fixed" in event
        ]


@dataclass(slots=True)
class SourceRecord:
    name: str
    location: str
    records: int
    skipped: int = 0
    etag: str | None = None
    last_modified: str | None = None
    fetched_at: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))


def default_db_path(cache_root: Path) -> Path:
    return cache_root / "db" / DB_FILENAME


class StoreWriter:
    """Builds a new database next to ``path`` and replaces ``path`` only on :meth:`commit`.

    Use as a context manager: leaving the block with an exception discards the new file, so the
    previous database stays intact and usable.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".vuln-", suffix=".db.tmp", dir=path.parent)
        os.close(fd)
        self._tmp = Path(tmp)
        self._db = sqlite3.connect(self._tmp)
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.executescript(SCHEMA)
        self._committed = False

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None and not self._committed:
            self.commit()
        elif not self._committed:
            self.discard()

    def add_advisory(self, advisory: AdvisoryRecord, affected: Iterable[AffectedRecord]) -> None:
        """Insert or replace one advisory and its affected rows.

        The same id can arrive from two exports (AlmaLinux publishes some ALSA records in both its 8
        and 9 zips, each listing its own release): the rows of the ecosystems this record covers are
        replaced, rows of other ecosystems are kept, and the aliases are merged.
        """
        rows = list(affected)
        ecosystems = sorted({row.ecosystem for row in rows})
        if ecosystems:
            marks = ",".join("?" * len(ecosystems))
            self._db.execute(
                f"DELETE FROM affected WHERE advisory_id = ? AND ecosystem IN ({marks})", (advisory.id, *ecosystems)
            )
        known = [r[0] for r in self._db.execute("SELECT alias FROM aliases WHERE advisory_id = ?", (advisory.id,))]
        self._db.execute("DELETE FROM aliases WHERE advisory_id = ?", (advisory.id,))
        advisory.aliases = list(dict.fromkeys([*advisory.aliases, *known]))
        self._db.execute(
            "INSERT OR REPLACE INTO advisories VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                advisory.id,
                advisory.source,
                json.dumps(advisory.aliases),
                json.dumps(advisory.related),
                advisory.summary,
                advisory.details,
                advisory.severity,
                advisory.severity_source,
                json.dumps([c.to_dict() for c in advisory.cvss]),
                json.dumps(advisory.references),
                advisory.published,
                advisory.modified,
                advisory.withdrawn,
            ),
        )
        self._db.executemany(
            "INSERT INTO aliases VALUES (?, ?)", [(alias, advisory.id) for alias in advisory.aliases]
        )
        self._db.executemany(
            "INSERT INTO affected VALUES (?,?,?,?,?,?,?)",
            [
                (
                    advisory.id,
                    row.ecosystem,
                    normalize_package(row.ecosystem, row.package),
                    json.dumps(row.ranges),
                    json.dumps(row.versions),
                    row.status,
                    row.severity,
                )
                for row in rows
            ],
        )

    def add_kev(self, cve: str, date_added: str, due_date: str, ransomware: str, name: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO kev VALUES (?,?,?,?,?)", (cve, date_added, due_date, ransomware, name))

    def add_epss(self, rows: Iterable[tuple[str, float, float]]) -> None:
        self._db.executemany("INSERT OR REPLACE INTO epss VALUES (?,?,?)", rows)

    def add_source(self, source: SourceRecord) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO sources VALUES (?,?,?,?,?,?,?)",
            (
                source.name,
                source.location,
                source.etag,
                source.last_modified,
                source.fetched_at,
                source.records,
                source.skipped,
            ),
        )

    def copy_from(self, previous: Path, keep_sources: Iterable[str]) -> None:
        """Carry over unchanged sources from the previous database (for incremental updates):
        their advisories, affected rows, aliases and source rows. KEV/EPSS are carried when their
        source name ("kev", "epss") is kept."""
        keep = list(keep_sources)
        if not keep or not previous.exists():
            return
        self._db.execute("ATTACH DATABASE ? AS old", (f"file:{previous}?mode=ro",))
        try:
            marks = ",".join("?" * len(keep))
            self._db.execute(f"INSERT INTO advisories SELECT * FROM old.advisories WHERE source IN ({marks})", keep)
            self._db.execute(
                "INSERT INTO affected SELECT a.* FROM old.affected a JOIN old.advisories v ON v.id = a.advisory_id "
                f"WHERE v.source IN ({marks})",
                keep,
            )
            self._db.execute(
                "INSERT INTO aliases SELECT a.* FROM old.aliases a JOIN old.advisories v ON v.id = a.advisory_id "
                f"WHERE v.source IN ({marks})",
                keep,
            )
            self._db.execute(f"INSERT INTO sources SELECT * FROM old.sources WHERE name IN ({marks})", keep)
            if "kev" in keep:
                self._db.execute("INSERT INTO kev SELECT * FROM old.kev")
            if "epss" in keep:
                self._db.execute("INSERT INTO epss SELECT * FROM old.epss")
            self._db.commit()
        finally:
            self._db.execute("DETACH DATABASE old")

    def commit(self) -> None:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self._db.executemany(
            "INSERT OR REPLACE INTO meta VALUES (?, ?)",
            [("schema_version", str(SCHEMA_VERSION)), ("built_at", now)],
        )
        self._db.commit()
        self._db.execute("VACUUM")
        self._db.close()
        os.replace(self._tmp, self.path)
        self._committed = True

    def discard(self) -> None:
        self._db.close()
        self._tmp.unlink(missing_ok=True)
        self._committed = True


class Store:
    """Read access for the matcher and ``moat db status``."""

    def __init__(self, path: Path) -> None:
        if not path.exists():
            raise MoatError(f"no vulnerability database at {path}: run 'moat db update' first")
        self.path = path
        try:
            self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
            version = self.meta().get("schema_version")
        except sqlite3.DatabaseError as exc:
            raise MoatError(f"{path}: not a Moat vulnerability database ({exc})") from exc
        if version != str(SCHEMA_VERSION):
            raise MoatError(
                f"{path}: database schema {version or 'unknown'}, this Moat reads {SCHEMA_VERSION}: "
                "run 'moat db update'"
            )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *args: object) -> None:
        self.close()

    def meta(self) -> dict[str, str]:
        return dict(self._db.execute("SELECT key, value FROM meta").fetchall())

    def affected(self, ecosystem: str, package: str) -> list[AffectedRecord]:
        rows = self._db.execute(
            "SELECT advisory_id, ecosystem, package, ranges, versions, status, severity FROM affected "
            "WHERE ecosystem = ? AND package = ?",
            (ecosystem, normalize_package(ecosystem, package)),
        ).fetchall()
        return [
            AffectedRecord(r[0], r[1], r[2], json.loads(r[3]), json.loads(r[4]), r[5], r[6]) for r in rows
        ]

    def affected_many(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], list[AffectedRecord]]:
        """The affected rows of many (ecosystem, package) pairs in a few queries (the matcher's hot path).

        Keys are returned as given (not normalised), each with its rows, empty when there are none.
        """
        wanted: dict[str, dict[str, list[tuple[str, str]]]] = {}
        for ecosystem, package in keys:
            wanted.setdefault(ecosystem, {}).setdefault(normalize_package(ecosystem, package), []).append(
                (ecosystem, package)
            )
        found: dict[tuple[str, str], list[AffectedRecord]] = {
            key: [] for names in wanted.values() for keys_ in names.values() for key in keys_
        }
        for ecosystem, names in wanted.items():
            listed = list(names)
            for start in range(0, len(listed), _BATCH):
                chunk = listed[start : start + _BATCH]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    "SELECT advisory_id, ecosystem, package, ranges, versions, status, severity FROM affected "
                    f"WHERE ecosystem = ? AND package IN ({marks})",
                    (ecosystem, *chunk),
                )
                for r in rows:
                    record = AffectedRecord(r[0], r[1], r[2], json.loads(r[3]), json.loads(r[4]), r[5], r[6])
                    for key in names[r[2]]:
                        found[key].append(record)
        return found

    def advisories(self, ids: Iterable[str]) -> dict[str, AdvisoryRecord]:
        """Many advisories by id in a few queries; missing ids are absent from the result."""
        listed = list(dict.fromkeys(ids))
        found: dict[str, AdvisoryRecord] = {}
        for start in range(0, len(listed), _BATCH):
            chunk = listed[start : start + _BATCH]
            marks = ",".join("?" * len(chunk))
            for row in self._db.execute(f"SELECT * FROM advisories WHERE id IN ({marks})", chunk):
                found[row[0]] = _advisory_from_row(row)
        return found

    def kev_all(self) -> frozenset[str]:
        """Every CVE in the KEV catalog (about 1,500: cheaper to hold than to query one by one)."""
        return frozenset(r[0] for r in self._db.execute("SELECT cve FROM kev"))

    def epss_many(self, cves: Iterable[str]) -> dict[str, tuple[float, float]]:
        listed = list(dict.fromkeys(cves))
        found: dict[str, tuple[float, float]] = {}
        for start in range(0, len(listed), _BATCH):
            chunk = listed[start : start + _BATCH]
            marks = ",".join("?" * len(chunk))
            for cve, score, percentile in self._db.execute(
                f"SELECT cve, score, percentile FROM epss WHERE cve IN ({marks})", chunk
            ):
                found[cve] = (float(score), float(percentile))
        return found

    def advisory(self, advisory_id: str) -> AdvisoryRecord | None:
        row = self._db.execute("SELECT * FROM advisories WHERE id = ?", (advisory_id,)).fetchone()
        if row is None:
            return None
        return _advisory_from_row(row)

    def advisories_aliasing(self, alias: str) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT advisory_id FROM aliases WHERE alias = ?", (alias,))]

    def kev(self, cve: str) -> bool:
        return self._db.execute("SELECT 1 FROM kev WHERE cve = ?", (cve,)).fetchone() is not None

    def epss(self, cve: str) -> tuple[float, float] | None:
        row = self._db.execute("SELECT score, percentile FROM epss WHERE cve = ?", (cve,)).fetchone()
        return (float(row[0]), float(row[1])) if row else None

    def sources(self) -> list[SourceRecord]:
        return [
            SourceRecord(name=r[0], location=r[1], etag=r[2], last_modified=r[3], fetched_at=r[4], records=r[5],
                         skipped=r[6])
            for r in self._db.execute("SELECT * FROM sources ORDER BY name")
        ]

    def counts_by_ecosystem(self) -> dict[str, int]:
        rows = self._db.execute(
            "SELECT ecosystem, COUNT(DISTINCT advisory_id) FROM affected GROUP BY ecosystem ORDER BY ecosystem"
        )
        return {r[0]: r[1] for r in rows}

    def iter_ecosystems(self) -> Iterator[str]:
        for row in self._db.execute("SELECT DISTINCT ecosystem FROM affected"):
            yield row[0]


_BATCH = 500
"""Parameters per IN (...) query: well under SQLite's limit, large enough to keep round trips few."""


def _advisory_from_row(row: tuple[Any, ...]) -> AdvisoryRecord:
    return AdvisoryRecord(
        id=row[0],
        source=row[1],
        aliases=json.loads(row[2]),
        related=json.loads(row[3]),
        summary=row[4],
        details=row[5],
        severity=row[6],
        severity_source=row[7],
        cvss=[CVSS.from_dict(c) for c in json.loads(row[8])],
        references=json.loads(row[9]),
        published=row[10],
        modified=row[11],
        withdrawn=row[12],
    )
