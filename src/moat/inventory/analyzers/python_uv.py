"""uv's ``uv.lock`` (TOML): packages, the full dependency graph, and which packages are dev-only.

The project itself is the package whose source is ``{ virtual = "." }`` or ``{ editable = "." }``
(relationship ``root``); other editable/virtual sources are workspace members (``workspace``).
Dependencies of those are ``direct``, everything else ``indirect``. A package is ``dev`` when it is
reachable only through a dependency group (``[package.dev-dependencies]``), not through the normal or
optional dependencies of any project package — the set ``uv sync --no-dev --all-extras`` installs.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from moat.errors import ParseError
from moat.inventory.analyzer import AnalysisResult, Analyzer, FileInput, register
from moat.inventory.analyzers.python_common import (
    is_valid_name,
    is_valid_version,
    load_toml,
    normalize_name,
    pypi_package,
)
from moat.model import Package

MAX_LOCK_SIZE = 64 * 1024 * 1024
MAX_PACKAGES = 50_000
_PROJECT_SOURCES = ("virtual", "editable")


@dataclass(slots=True)
class _Entry:
    package: Package
    project: bool
    deps: list[str] = field(default_factory=list)
    """Ids of normal and optional (extra) dependencies."""
    dev_deps: list[str] = field(default_factory=list)
    """Ids of dependency-group dependencies (only meaningful on project packages)."""


@register
class UvLockAnalyzer(Analyzer):
    name = "uv-lock"
    version = 1
    max_file_size = MAX_LOCK_SIZE
    basenames = frozenset({"uv.lock"})

    def analyze(self, file: FileInput) -> AnalysisResult:
        document = load_toml(file.read(), file.path)
        if not isinstance(document.get("version"), int):
            raise ParseError(f"{file.path}: not a uv.lock (no integer 'version')")
        raw = document.get("package", [])
        if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
            raise ParseError(f"{file.path}: 'package' is not an array of tables")
        if len(raw) > MAX_PACKAGES:
            raise ParseError(f"{file.path}: more than {MAX_PACKAGES} packages")
        warnings: list[str] = []
        entries, index = _collect(raw, file.path, warnings)
        for item, entry in zip(raw, entries, strict=True):
            if entry is None:
                continue
            deps = dict.fromkeys(_resolve(item.get("dependencies"), index))
            for group in _tables(item.get("optional-dependencies")):
                deps.update(dict.fromkeys(_resolve(group, index)))
            dev_deps: dict[str, None] = {}
            for group in _tables(item.get("dev-dependencies")):
                dev_deps.update(dict.fromkeys(_resolve(group, index)))
            entry.deps, entry.dev_deps = list(deps), list(dev_deps)
        kept = [entry for entry in entries if entry is not None]
        _classify(kept)
        return AnalysisResult(packages=[entry.package for entry in kept], warnings=warnings)


def _collect(
    raw: list[dict[str, Any]], path: str, warnings: list[str]
) -> tuple[list[_Entry | None], dict[str, list[str]]]:
    """One entry per locked package, plus an index from normalised name to ids."""
    entries: list[_Entry | None] = []
    index: dict[str, list[str]] = {}
    seen: set[str] = set()
    for item in raw:
        name, version = item.get("name"), item.get("version")
        if not isinstance(name, str) or not is_valid_name(name):
            raise ParseError(f"{path}: a [[package]] entry has no valid name")
        raw_source = item.get("source")
        source: dict[str, Any] = raw_source if isinstance(raw_source, dict) else {}
        project = any(key in source for key in _PROJECT_SOURCES)
        if not isinstance(version, str) or not is_valid_version(version):
            # Projects with a dynamic version are locked without one; nothing to match, nothing to list.
            if not project:
                warnings.append(f"{path}: skipped {name!r}: no valid version")
            entries.append(None)
            continue
        package = pypi_package(name, version, path)
        if package.id in seen:
            entries.append(None)
            continue
        seen.add(package.id)
        if project:
            root = any(source.get(key) == "." for key in _PROJECT_SOURCES)
            package.relationship = "root" if root else "workspace"
        entries.append(_Entry(package, project))
        index.setdefault(normalize_name(name), []).append(package.id)
    return entries, index


def _tables(value: Any) -> list[Any]:
    return list(value.values()) if isinstance(value, dict) else []


def _resolve(deps: Any, index: dict[str, list[str]]) -> list[str]:
    """Dependency references to ids; uv adds ``version`` to a reference only when a name is ambiguous."""
    ids: dict[str, None] = {}  # ordered set
    if not isinstance(deps, list):
        return []
    for dep in deps:
        if not isinstance(dep, dict) or not isinstance(dep.get("name"), str):
            continue
        candidates = index.get(normalize_name(dep["name"]), [])
        version = dep.get("version")
        if isinstance(version, str):
            candidates = [c for c in candidates if c.rsplit("@", 1)[1] == version]
        ids.update(dict.fromkeys(candidates))
    return list(ids)


def _classify(entries: list[_Entry]) -> None:
    """Fill depends_on, relationship and dev from the graph (see the module docstring)."""
    by_id = {entry.package.id: entry for entry in entries}
    projects = [entry for entry in entries if entry.project]
    for entry in entries:
        entry.package.depends_on = sorted(set(entry.deps) | set(entry.dev_deps))
    if not projects:
        return
    direct = {dep for entry in projects for dep in (*entry.deps, *entry.dev_deps)}
    production = _reachable([entry.package.id for entry in projects], by_id)
    development = _reachable([dep for entry in projects for dep in entry.dev_deps], by_id)
    for entry in entries:
        package = entry.package
        if package.relationship is None:
            package.relationship = "direct" if package.id in direct else "indirect"
        package.dev = package.id in development and package.id not in production


def _reachable(starts: list[str], by_id: dict[str, _Entry]) -> set[str]:
    """Ids reachable from ``starts`` through normal and optional dependencies (iterative: no recursion)."""
    seen = {start for start in starts if start in by_id}
    queue = deque(seen)
    while queue:
        for dep in by_id[queue.popleft()].deps:
            if dep not in seen and dep in by_id:
                seen.add(dep)
                queue.append(dep)
    return seen
