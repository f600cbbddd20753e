"""pnpm-lock.yaml, lockfile versions 5.x, 6.x and 9.x, including multi-document files.

pnpm keys every installed package by a path that changed shape between versions:

* 5.x: ``/name/1.0.0`` with peers appended as ``_peer@2.0.0``;
* 6.x: ``/name@1.0.0`` with peers appended as ``(peer@2.0.0)``;
* 9.x: ``name@1.0.0`` in ``packages`` (metadata) and ``name@1.0.0(peer@2.0.0)`` in ``snapshots``
  (the dependency graph).

Tarball, git and local entries carry explicit ``name``/``version`` fields, which win over the key.
An entry with no registry version (a ``file:`` directory pnpm records without one) is not reported;
``link:`` dependencies are other workspaces, not packages.

Importers (the workspace projects) give the direct dependencies. dev-only is what pnpm 5/6 wrote
into ``dev``; pnpm 9 no longer writes it, so it is computed: a package is dev-only when no
production or optional dependency of any importer reaches it. Copies of one ``name@version`` that
differ only in resolved peers are reported once, like npm's duplicate installs.

pnpm 11 puts the package manager's own lockfile in front of the project's, as a separate YAML
document whose importers only have ``packageManagerDependencies``/``configDependencies``; that
document describes the tool, not the project, and is skipped.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, ClassVar

from moat.errors import ParseError
from moat.inventory.analyzer import AnalysisResult, Analyzer, FileInput, register
from moat.inventory.js.collect import MAX_PACKAGES, PackageCollector
from moat.inventory.js.common import is_version, mapping, package_id, split_spec, valid_name
from moat.inventory.js.loading import load_yaml_documents

_PROD_FIELDS = ("dependencies", "optionalDependencies")
_ROOT_FIELDS = ("dependencies", "optionalDependencies", "devDependencies")
_TOOL_FIELDS = ("packageManagerDependencies", "configDependencies")


@dataclass(slots=True)
class _Node:
    name: str
    version: str
    info: dict[str, Any]
    edges: dict[str, str]


def _major(doc: dict[str, Any], what: str) -> int:
    raw = doc.get("lockfileVersion")
    if not isinstance(raw, str):
        raise ParseError(f"{what}: not a pnpm lockfile (no lockfileVersion)")
    digits = raw.strip().lstrip("v").split(".", 1)[0]
    if not digits.isdigit() or len(digits) > 3:
        raise ParseError(f"{what}: unreadable lockfileVersion {raw[:20]!r}")
    return int(digits)


def _is_tool_document(doc: dict[str, Any]) -> bool:
    importers = [mapping(i) for i in mapping(doc.get("importers")).values()]
    if not importers:
        return False
    has_project = any(i.get(f) for i in importers for f in _ROOT_FIELDS)
    return not has_project and any(f in i for i in importers for f in _TOOL_FIELDS)


def _strip_peers(key: str) -> str:
    cut = key.find("(")
    return key if cut < 0 else key[:cut]


def _key_identity(key: str, major: int) -> tuple[str, str]:
    """Name and version spelled by a package key (the entry's own fields may override them)."""
    if major < 6:
        name, _, version = key.lstrip("/").rpartition("/")
        return name, version.split("_", 1)[0]
    return split_spec(_strip_peers(key.lstrip("/") if major < 9 else key))


def _reference(value: Any) -> str | None:
    """A dependency's reference: a plain string (5.x, snapshots) or ``{specifier, version}`` (6.x+)."""
    if isinstance(value, dict):
        value = value.get("version")
    return value if isinstance(value, str) and value else None


def _edges(info: dict[str, Any], fields: tuple[str, ...]) -> dict[str, str]:
    edges: dict[str, str] = {}
    for field in fields:
        for name, value in mapping(info.get(field)).items():
            reference = _reference(value)
            if reference is not None:
                edges[name] = reference
    return edges


class _Document:
    """One project lockfile document: its nodes, its importers' roots and the lookups between them."""

    def __init__(self, doc: dict[str, Any], what: str, warnings: list[str]) -> None:
        self.what = what
        self.warnings = warnings
        self.major = _major(doc, what)
        self.nodes: dict[str, _Node] = {}
        packages = mapping(doc.get("packages"))
        if self.major >= 9:
            snapshots = mapping(doc.get("snapshots"))
            bases = {_strip_peers(key) for key in snapshots}
            for key, value in snapshots.items():
                info = {**mapping(packages.get(_strip_peers(key))), **mapping(value)}
                self._add(key, info)
            for key, value in packages.items():
                if key not in bases:
                    self._add(key, mapping(value))
        else:
            for key, value in packages.items():
                self._add(key, mapping(value))

    def _add(self, key: str, info: dict[str, Any]) -> None:
        if len(self.nodes) >= MAX_PACKAGES:
            raise ParseError(f"{self.what}: more than {MAX_PACKAGES} packages")
        name, version = _key_identity(key, self.major)
        own_name, own_version = info.get("name"), info.get("version")
        name = own_name if isinstance(own_name, str) and own_name else name
        version = own_version if isinstance(own_version, str) and own_version else version
        if not is_version(version) or not valid_name(name):
            return  # a local directory or an unreadable key: nothing with a registry identity
        self.nodes[key] = _Node(name, version, info, _edges(info, _PROD_FIELDS))

    def resolve(self, name: str, reference: str) -> str | None:
        """The node key a dependency reference points at (None for links and unknown entries)."""
        if reference.startswith("link:"):
            return None
        if self.major < 6:
            spelled = f"/{name}/{reference}"
        elif self.major < 9:
            spelled = f"/{name}@{reference}"
        else:
            spelled = f"{name}@{reference}"
        for key in (spelled, reference):  # an alias, tarball or file: reference is the key itself
            if key in self.nodes:
                return key
        return None


def _importers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Workspace projects; a single-project 5.x/6.x lockfile keeps its roots at the top level."""
    if "importers" in doc:
        return [mapping(i) for i in mapping(doc.get("importers")).values()]
    return [doc]


def _reachable(document: _Document, start: set[str]) -> set[str]:
    """Every node reachable from ``start`` (breadth first; cycles are normal in pnpm graphs)."""
    seen = set(start)
    queue = deque(start)
    while queue:
        node = document.nodes[queue.popleft()]
        for name, reference in node.edges.items():
            target = document.resolve(name, reference)
            if target is not None and target not in seen:
                seen.add(target)
                queue.append(target)
    return seen


def _collect(doc: dict[str, Any], collector: PackageCollector, what: str, warnings: list[str]) -> None:
    document = _Document(doc, what, warnings)
    direct: set[str] = set()
    production: set[str] = set()
    for importer in _importers(doc):
        for field in _ROOT_FIELDS:
            for name, reference in _edges(importer, (field,)).items():
                key = document.resolve(name, reference)
                if key is None:
                    continue
                direct.add(key)
                if field in _PROD_FIELDS:
                    production.add(key)
    reachable = _reachable(document, production)
    for key, node in document.nodes.items():
        written = node.info.get("dev")
        dev = written == "true" if written in ("true", "false") else key not in reachable
        depends_on = []
        for name, reference in node.edges.items():
            target = document.resolve(name, reference)
            if target is not None:
                depends_on.append(package_id(document.nodes[target].name, document.nodes[target].version))
        collector.add(
            node.name,
            node.version,
            dev=dev,
            relationship="direct" if key in direct else "indirect",
            depends_on=depends_on,
        )


@register
class PnpmLockAnalyzer(Analyzer):
    """pnpm-lock.yaml of an application or workspace."""

    name = "pnpm-lock"
    version = 1
    max_file_size = 128 * 1024 * 1024
    basenames: ClassVar[frozenset[str]] = frozenset({"pnpm-lock.yaml"})

    def wants(self, path: str, mode: int) -> bool:
        return "node_modules" not in path.split("/")

    def analyze(self, file: FileInput) -> AnalysisResult:
        what = file.path
        documents = [d for d in load_yaml_documents(file.read(), what) if d is not None]
        if not documents or not all(isinstance(d, dict) for d in documents):
            raise ParseError(f"{what}: not a pnpm lockfile (expected YAML mappings)")
        warnings: list[str] = []
        collector = PackageCollector(file.path, what)
        for doc in documents:
            if not _is_tool_document(doc):
                _collect(doc, collector, what, warnings)
        return AnalysisResult(packages=collector.packages(), warnings=warnings)
