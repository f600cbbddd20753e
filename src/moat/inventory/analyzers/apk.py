"""Installed Alpine (and Wolfi, Chainguard) packages: apk's database ``lib/apk/db/installed``.

The database is a sequence of records separated by blank lines, each line ``X:value`` with a
one-letter key (P name, V version, A arch, L license, o origin, m maintainer, c commit, C checksum,
D depends, p provides, then the file list: ``F:`` a directory, each ``R:`` a file in it; Z/a/M are
skipped). Of the file list only the paths a language analyzer could read are kept, as owned paths,
so the merged scan can drop the language packages apk installed (see :mod:`moat.inventory.ownership`).
The file is read as bounded lines, so a hostile database costs bounded memory and becomes warnings
or a ParseError.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

from moat.errors import ParseError
from moat.inventory.analyzer import AnalysisResult, Analyzer, FileInput, register
from moat.inventory.ownership import language_readable
from moat.inventory.textdb import bounded_lines, capped_warnings
from moat.model import Package

DB_PATH = "lib/apk/db/installed"

MAX_LINE = 1024 * 1024
MAX_RECORDS = 200_000
MAX_WARNINGS = 20
MAX_PROVIDERS = 16
"""Installed providers of one name taken into account (real systems have one or two); the bound keeps
a hostile database from making every package depend on every other."""
MAX_FILE_SIZE = 64 * 1024 * 1024
"""A database of a thousand packages with their file lists is a few MB."""
KEPT_KEYS = frozenset("PVALomcCDp")
"""Keys stored; of the per-file lines (F, R, Z, a, M, …), by far the bulk, only F and R are read."""

_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_+.-]*")
_VERSION_RE = re.compile(r"[0-9][A-Za-z0-9._+~-]*")
_CONSTRAINT_RE = re.compile(r"[<>=~]")
_LICENSE_OPERATORS = frozenset({"AND", "OR"})


@dataclass(slots=True)
class Record:
    """One package record: kept keys → values (first occurrence wins), and its first line."""

    line: int
    fields: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    owned: list[str] = field(default_factory=list)
    """Installed files a language analyzer could read (relative paths)."""
    directory: str = ""


def iter_records(stream: IO[bytes]) -> Iterator[Record]:
    """Split the database into records; malformed lines mark their record, overlong lines are skipped."""
    current: Record | None = None
    for line_no, text, problem in bounded_lines(stream, MAX_LINE):
        if text is None:
            current = current or Record(line_no)
            current.error = current.error or problem
            continue
        if not text.strip():
            if current is not None:
                yield current
            current = None
            continue
        if current is None:
            current = Record(line_no)
        if len(text) < 2 or text[1] != ":":
            current.error = current.error or f"line {line_no} is not a 'X:value' line"
            continue
        key = text[0]
        if key in KEPT_KEYS and key not in current.fields:
            current.fields[key] = text[2:].strip()
        elif key == "F":
            current.directory = text[2:].strip().strip("/")
        elif key == "R":
            name = text[2:].strip()
            path = f"{current.directory}/{name}" if current.directory else name
            if name and language_readable(path):
                current.owned.append(path)
    if current is not None:
        yield current


def dependency_name(token: str) -> str | None:
    """``so:libc.musl-x86_64.so.1=1`` → ``so:libc.musl-x86_64.so.1``; None for a conflict (``!foo``)."""
    if not token or token.startswith("!"):
        return None
    name = _CONSTRAINT_RE.split(token, maxsplit=1)[0]
    name = name.split("@", 1)[0]  # a repository pin, ``foo@edge``
    return name or None


def split_licenses(value: str) -> list[str]:
    """The license terms of an ``L:`` line, as declared.

    Current Alpine writes SPDX expressions (``MIT AND (Apache-2.0 OR BSD-2-Clause)``), older
    packages a space-separated list (``MIT BSD GPL2+``). Either way the terms are split out with
    the operators and parentheses dropped; ``X WITH exception`` stays one term. Legacy names
    (``GPL2``) are kept as written rather than guessed into SPDX ids.
    """
    tokens = value.replace("(", " ").replace(")", " ").split()
    terms: list[str] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token.upper() in _LICENSE_OPERATORS:
            index += 1
            continue
        if index + 2 < len(tokens) and tokens[index + 1].upper() == "WITH":
            token = f"{token} WITH {tokens[index + 2]}"
            index += 2
        if token not in terms:
            terms.append(token)
        index += 1
    return terms


@dataclass(slots=True)
class _Entry:
    package: Package
    depends: list[str]
    provides: list[str]


def _entry(record: Record, path: str) -> tuple[_Entry | None, str | None]:
    fields = record.fields
    name = fields.get("P", "")
    version = fields.get("V", "")
    if not name:
        return None, "no package name (P:)"
    if not _NAME_RE.fullmatch(name):
        return None, f"invalid package name {name[:80]!r}"
    if not version:
        return None, f"{name}: no version (V:)"
    if not _VERSION_RE.fullmatch(version):
        return None, f"{name}: invalid version {version[:80]!r}"
    extra = {}
    for key, label in (("c", "commit"), ("m", "maintainer"), ("C", "checksum")):
        if fields.get(key):
            extra[label] = fields[key]
    package = Package(
        name=name,
        version=version,
        type="apk",
        licenses=split_licenses(fields.get("L", "")),
        found_in=path,
        # the origin is the aport the subpackage was built from; it has the same pkgver-rN
        source_name=fields.get("o") or name,
        source_version=version,
        arch=fields.get("A") or None,
        extra=extra,
    )
    depends = [n for n in (dependency_name(t) for t in fields.get("D", "").split()) if n]
    provides = [n for n in (dependency_name(t) for t in fields.get("p", "").split()) if n]
    return _Entry(package, depends, provides), None


def resolve_dependencies(entries: list[_Entry]) -> None:
    """Turn each D: name (a package, or a provided ``so:``, ``cmd:``, ``pc:`` or path name) into ids.

    A real package name wins over a provided name; a provided name with several installed providers
    resolves to all of them (apk would have picked one of them, and we cannot tell which).
    """
    by_name = {entry.package.name: entry.package for entry in entries}
    providers: dict[str, list[Package]] = {}
    for entry in entries:
        for provided in entry.provides:
            known = providers.setdefault(provided, [])
            if len(known) < MAX_PROVIDERS:
                known.append(entry.package)
    for entry in entries:
        ids: set[str] = set()
        for dependency in entry.depends:
            own = by_name.get(dependency)
            found = [own] if own is not None else providers.get(dependency, [])
            ids.update(p.id for p in found if p is not entry.package)
        entry.package.depends_on = sorted(ids)


def parse_installed(file: FileInput) -> AnalysisResult:
    """Every package of an apk database, in file order (the order apk installed them)."""
    entries: list[_Entry] = []
    owned: set[str] = set()
    problems: list[str] = []
    records = recognised = 0
    for record in iter_records(file.open()):
        records += 1
        if records > MAX_RECORDS:
            problems.append(f"more than {MAX_RECORDS} records; the rest is ignored")
            break
        if record.error:
            problems.append(f"record at line {record.line} skipped: {record.error}")
            continue
        if "P" in record.fields:
            recognised += 1
        entry, reason = _entry(record, file.path)
        if entry is not None:
            entries.append(entry)
            # only a reported package's files count as owned: its language duplicates are dropped
            # because the apk package stands in for them
            owned.update(record.owned)
        elif reason:
            problems.append(f"record at line {record.line} skipped: {reason}")
    if records and not recognised:
        reason = problems[0].split(": ", 1)[-1] if problems else "no P: line in any record"
        raise ParseError(f"not an apk database: {reason}")
    resolve_dependencies(entries)
    result = AnalysisResult(packages=[entry.package for entry in entries], owned_paths=sorted(owned))
    result.warnings = capped_warnings(file.path, problems, "records", MAX_WARNINGS)
    return result


@register
class ApkInstalledAnalyzer(Analyzer):
    """lib/apk/db/installed."""

    name = "apk"
    version = 2
    max_file_size = MAX_FILE_SIZE
    basenames = frozenset({"installed"})

    def wants(self, path: str, mode: int) -> bool:
        return path == DB_PATH

    def analyze(self, file: FileInput) -> AnalysisResult:
        if file.size > self.max_file_size:
            raise ParseError(f"{file.size} bytes is more than an apk database can be ({self.max_file_size})")
        return parse_installed(file)
