"""Installed Debian packages: the dpkg status database, distroless ``status.d`` and opkg's status file.

All three use the deb822 control-file syntax (``Field: value`` lines, indented continuation lines,
stanzas separated by blank lines). The file is read as a stream of bounded lines, and only the
handful of fields a package needs are kept, so a hostile file (one 100 MB line, binary garbage)
costs bounded memory and turns into a warning or a :class:`ParseError`, never a traceback.

Licenses of deb packages live in ``usr/share/doc/<pkg>/copyright``, a different file; this analyzer
does not read them (only opkg, which records ``License:`` in the status file, gets licenses here).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

from moat.errors import ParseError
from moat.inventory.analyzer import AnalysisResult, Analyzer, FileInput, register
from moat.inventory.textdb import bounded_lines, capped_warnings
from moat.model import Package

STATUS_FILES = frozenset({"var/lib/dpkg/status", "var/lib/opkg/status", "usr/lib/opkg/status"})
OPKG_FILES = frozenset({"var/lib/opkg/status", "usr/lib/opkg/status"})
STATUS_DIR = "var/lib/dpkg/status.d"

MAX_LINE = 1024 * 1024
"""Longest line accepted; real Depends/Provides lines are a few KB."""
MAX_FIELD = 4 * 1024 * 1024
"""Largest kept field value (folded Provides of the biggest packages stay far below)."""
MAX_STANZAS = 200_000
"""More stanzas than any real system has packages; past this the file is treated as hostile."""
MAX_WARNINGS = 20
MAX_PROVIDERS = 16
"""Installed providers of one virtual package taken into account (real systems have one or two); the
bound keeps a hostile database from making every package depend on every other."""
MAX_FILE_SIZE = 64 * 1024 * 1024
"""A status file of several thousand packages is a few MB."""

KEPT_FIELDS = frozenset(
    {
        "package",
        "version",
        "source",
        "architecture",
        "status",
        "depends",
        "pre-depends",
        "provides",
        "maintainer",
        "license",
    }
)
"""Only these are stored; Description, Conffiles and the rest are skipped line by line."""

PRESENT_STATES = frozenset(
    {
        "installed",
        "unpacked",
        "half-configured",
        "half-installed",
        "triggers-awaiting",
        "triggers-pending",
        # opkg's own states for a package whose files are on disk
        "post-inst-failed",
        "removal-failed",
    }
)
"""States in which the package's files are on disk. ``not-installed`` and ``config-files`` (a
removed package whose conffiles remain) are the only absent ones; a package marked for removal
(``deinstall ok installed``) is still there and is reported."""
ABSENT_STATES = frozenset({"not-installed", "config-files"})

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9+._-]*")
_EPOCH_RE = re.compile(r"[0-9]+")
_UPSTREAM_RE = re.compile(r"[A-Za-z0-9.+~:-]+")
_REVISION_RE = re.compile(r"[A-Za-z0-9.+~]+")
_SOURCE_RE = re.compile(r"(\S+)(?:\s+\((\S+)\))?")
_RELATION_NAME_RE = re.compile(r"[^\s(\[<|,]+")


def valid_version(version: str) -> bool:
    """Debian policy 5.6.12: ``[epoch:]upstream[-revision]`` with the characters each part allows.

    dpkg refuses versions with other characters, so a stanza carrying one is corrupt.
    """
    epoch, colon, rest = version.partition(":")
    if not colon:
        epoch, rest = "", version
    elif not _EPOCH_RE.fullmatch(epoch):
        return False
    upstream, dash, revision = rest.rpartition("-")
    if not dash:
        upstream, revision = rest, ""
    elif not _REVISION_RE.fullmatch(revision):
        return False
    return bool(_UPSTREAM_RE.fullmatch(upstream))


@dataclass(slots=True)
class Stanza:
    """One paragraph of a control file: the kept fields (lower-cased names) and where it started."""

    line: int
    parts: dict[str, list[str]] = field(default_factory=dict)
    """Kept field → its lines; joined only when read, so a long folded field costs linear time."""
    sizes: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    """Why the stanza is malformed (its content is then not trusted at all)."""
    seen_field: bool = False

    def get(self, name: str) -> str:
        return "".join(self.parts.get(name, ()))

    def has(self, name: str) -> bool:
        return name in self.parts


def iter_stanzas(stream: IO[bytes]) -> Iterator[Stanza]:
    """Split a deb822 file into stanzas, reading at most ``MAX_LINE`` bytes at a time.

    Lines may end in LF or CRLF; bytes that are not UTF-8 are replaced (old status files carry
    Latin-1 maintainer names). A line with a NUL byte, a line over the limit, or a line that is
    neither a field nor a continuation marks its stanza as malformed.
    """
    current: Stanza | None = None
    last_key: str | None = None
    for line_no, text, problem in bounded_lines(stream, MAX_LINE):
        if text is None:
            current = current or Stanza(line_no)
            current.error = current.error or problem
            continue
        if not text.strip():
            if current is not None:
                yield current
            current, last_key = None, None
            continue
        if current is None:
            current = Stanza(line_no)
        if text[0] in " \t":
            if not current.seen_field:
                current.error = current.error or f"line {line_no}: continuation line outside a field"
            elif last_key is not None:
                _append(current, last_key, "\n" + text.strip(), line_no)
            continue
        if text[0] == "#":
            continue
        key, colon, value = text.partition(":")
        key = key.strip().lower()
        if not colon or not key or " " in key or "\t" in key:
            current.error = current.error or f"line {line_no} is not a 'Field: value' line"
            continue
        current.seen_field = True
        if key in KEPT_FIELDS and key not in current.parts:
            current.parts[key] = []
            current.sizes[key] = 0
            last_key = key
            _append(current, key, value.strip(), line_no)
        else:
            last_key = None
    if current is not None:
        yield current


def _append(stanza: Stanza, key: str, text: str, line_no: int) -> None:
    size = stanza.sizes[key] + len(text)
    if size > MAX_FIELD:
        stanza.error = stanza.error or f"line {line_no}: field {key!r} is larger than {MAX_FIELD} bytes"
        return
    stanza.sizes[key] = size
    stanza.parts[key].append(text)


def parse_relations(value: str) -> list[list[str]]:
    """A Depends-style field as groups of alternative package names.

    ``libc6 (>= 2.14), debconf (>= 0.5) | debconf-2.0, python3:any`` → ``[["libc6"], ["debconf",
    "debconf-2.0"], ["python3"]]``: version constraints, architecture qualifiers and restriction
    lists are dropped (the installed package is what runs, whatever its version).
    """
    groups: list[list[str]] = []
    for group in value.replace("\n", " ").split(","):
        names: list[str] = []
        for alternative in group.split("|"):
            match = _RELATION_NAME_RE.match(alternative.strip())
            if match:
                name = match.group(0).split(":", 1)[0]
                if name:
                    names.append(name)
        if names:
            groups.append(names)
    return groups


def parse_source(value: str, name: str, version: str) -> tuple[str, str] | None:
    """``Source: src`` or ``Source: src (ver)``; the binary's own name and version by default."""
    if not value:
        return name, version
    match = _SOURCE_RE.fullmatch(value.strip())
    if not match or not _NAME_RE.fullmatch(match.group(1)):
        return None
    source_version = match.group(2) or version
    if not valid_version(source_version):
        return None
    return match.group(1), source_version


@dataclass(slots=True)
class _Entry:
    package: Package
    depends: list[list[str]]
    provides: list[str]


def _entry(stanza: Stanza, path: str, opkg: bool) -> tuple[_Entry | None, str | None]:
    """A package from a well-formed stanza, or (None, reason) when it is not an installed package.

    The reason is None for stanzas that are legitimately absent (removed, not installed).
    """
    name = stanza.get("package").strip()
    version = stanza.get("version").strip()
    status = stanza.get("status").split()
    if status:
        state = status[-1]
        if state in ABSENT_STATES:
            return None, None
        if len(status) != 3 or state not in PRESENT_STATES:
            return None, f"unknown Status {stanza.get('status')!r}"
    if not name:
        return None, "no Package name"
    if not _NAME_RE.fullmatch(name):
        return None, f"invalid package name {name[:80]!r}"
    if not version:
        return None, f"{name}: no Version"
    if not valid_version(version):
        return None, f"{name}: invalid Version {version[:80]!r}"
    source = parse_source(stanza.get("source"), name, version)
    if source is None:
        return None, f"{name}: invalid Source {stanza.get('source')[:80]!r}"
    extra = {}
    maintainer = stanza.get("maintainer").strip()
    if maintainer:
        extra["maintainer"] = maintainer
    license_text = stanza.get("license").replace("\n", " ").strip()
    package = Package(
        name=name,
        version=version,
        type="opkg" if opkg else "deb",
        licenses=[license_text] if license_text else [],
        found_in=path,
        source_name=source[0],
        source_version=source[1],
        arch=stanza.get("architecture").strip() or None,
        extra=extra,
    )
    depends = parse_relations(stanza.get("pre-depends")) + parse_relations(stanza.get("depends"))
    provides = [group[0] for group in parse_relations(stanza.get("provides"))]
    return _Entry(package, depends, provides), None


def resolve_dependencies(entries: list[_Entry]) -> None:
    """Fill ``depends_on`` with the ids of the installed packages that satisfy Depends/Pre-Depends.

    For ``a | b`` the first alternative that is installed wins (that is the one in use); a virtual
    name resolves to every installed package that Provides it. With several architectures of one
    package installed (multi-arch), the dependent's own architecture (or ``all``) is preferred.
    """
    by_name: dict[str, list[Package]] = {}
    providers: dict[str, list[Package]] = {}
    for entry in entries:
        by_name.setdefault(entry.package.name, []).append(entry.package)
        for virtual in entry.provides:
            known = providers.setdefault(virtual, [])
            if len(known) < MAX_PROVIDERS:
                known.append(entry.package)
    for entry in entries:
        me = entry.package
        ids: set[str] = set()
        for group in entry.depends:
            for alternative in group:
                found = by_name.get(alternative, [])
                if found:
                    same_arch = [p for p in found if p.arch in (me.arch, "all")]
                    found = same_arch[:1] or found[:1]
                else:
                    found = providers.get(alternative, [])
                if found:
                    ids.update(p.id for p in found if p is not me)
                    break
        me.depends_on = sorted(ids)


def parse_status(file: FileInput) -> AnalysisResult:
    """Every installed package of one status file (or ``status.d`` entry)."""
    opkg = file.path in OPKG_FILES
    result = AnalysisResult()
    entries: list[_Entry] = []
    stanzas = recognised = 0
    problems: list[str] = []
    for stanza in iter_stanzas(file.open()):
        stanzas += 1
        if stanzas > MAX_STANZAS:
            problems.append(f"more than {MAX_STANZAS} stanzas; the rest is ignored")
            break
        if stanza.error:
            problems.append(f"stanza at line {stanza.line} skipped: {stanza.error}")
            continue
        if stanza.has("package"):
            recognised += 1
        entry, reason = _entry(stanza, file.path, opkg)
        if entry is not None:
            entries.append(entry)
        elif reason:
            problems.append(f"stanza at line {stanza.line} skipped: {reason}")
    if stanzas and not recognised:
        # Not one stanza names a package: this is not a package database (binary garbage, a
        # truncated or foreign file), which the caller reports as one warning.
        reason = problems[0].split(": ", 1)[-1] if problems else "no Package field in any stanza"
        raise ParseError(f"not a dpkg status file: {reason}")
    resolve_dependencies(entries)
    packages = [entry.package for entry in entries]
    if not opkg:
        # dpkg keeps its database sorted by name, then architecture (dpkg-query lists it so);
        # opkg has no such order, so its file order is kept.
        packages.sort(key=lambda p: (p.name, p.arch or ""))
    result.packages = packages
    result.warnings = capped_warnings(file.path, problems, "stanzas", MAX_WARNINGS)
    return result


@register
class DpkgStatusAnalyzer(Analyzer):
    """var/lib/dpkg/status, distroless var/lib/dpkg/status.d/* and opkg's status file."""

    name = "dpkg"
    version = 1
    max_file_size = MAX_FILE_SIZE
    basenames = frozenset({"status"})
    dirnames = frozenset({STATUS_DIR})

    def wants(self, path: str, mode: int) -> bool:
        if path in STATUS_FILES:
            return True
        # distroless keeps one file per package (plus its .md5sums) directly in status.d
        return path.rpartition("/")[0] == STATUS_DIR and not path.endswith(".md5sums")

    def analyze(self, file: FileInput) -> AnalysisResult:
        if file.size > self.max_file_size:
            raise ParseError(f"{file.size} bytes is more than a status file can be ({self.max_file_size})")
        return parse_status(file)
