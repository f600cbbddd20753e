"""yarn.lock: yarn classic (v1, its own syntax) and yarn berry (v2+, YAML with ``__metadata``).

Both map descriptors (``name@range``) to resolved packages; ``depends_on`` is found by looking the
dependency descriptors up in that map. What is reported follows yarn's protocols (and the Trivy
corpus): registry packages (no protocol or ``npm:``) and tarball URLs are packages; workspaces,
``file:``/``link:``/``portal:`` directories, ``exec:`` and git dependencies are not (they have no
registry identity). A berry ``patch:`` entry is not a package of its own: its descriptors point at
the registry package it patches, which has its own entry (when it has none, as for an optional
platform package, nothing is reported, as Trivy does). Unknown protocols are skipped with a warning.

yarn.lock does not say which dependencies are dev-only. Berry records each workspace's
dependencies, so it can tell direct from indirect; yarn classic cannot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import unquote

from moat.errors import ParseError
from moat.inventory.analyzer import AnalysisResult, Analyzer, FileInput, register
from moat.inventory.js import yarn_v1
from moat.inventory.js.collect import MAX_PACKAGES, PackageCollector
from moat.inventory.js.common import mapping, package_id, split_spec, string_map, valid_name
from moat.inventory.js.loading import load_yaml_documents

_PROTOCOL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_BERRY = re.compile(r"^__metadata:", re.MULTILINE)

REGISTRY = frozenset({"", "npm", "http", "https"})
NOT_PACKAGES = frozenset(
    {"workspace", "file", "link", "portal", "exec", "github", "git", "git+ssh", "git+http", "git+https", "git+file"}
)
_EDGE_FIELDS = ("dependencies", "optionalDependencies")


def _protocol(range_: str) -> str:
    match = _PROTOCOL.match(range_)
    return match.group(1).lower() if match else ""


def _real_name(name: str, range_: str) -> str:
    """The registry name behind an alias (``alias@npm:real@^1``), else ``name``."""
    if range_.startswith("npm:"):
        inner = range_[4:]
        if inner.find("@", 1) > 0:
            real = split_spec(inner)[0]
            if valid_name(real):
                return real
    return name


@dataclass(slots=True)
class _Resolved:
    """What a lockfile entry resolves to, before dependency descriptors are looked up."""

    name: str
    version: str
    descriptors: list[str]
    dependencies: dict[str, str]
    workspace: bool = False
    patch: bool = False
    dependency_ids: list[str] = field(default_factory=list)


def _edges(fields: dict[str, Any]) -> dict[str, str]:
    edges: dict[str, str] = {}
    for key in _EDGE_FIELDS:
        edges.update(string_map(fields.get(key)))
    return edges


def _classic_entries(text: str, what: str, warnings: list[str]) -> list[_Resolved]:
    resolved: list[_Resolved] = []
    for entry in yarn_v1.parse(text, what):
        name, range_ = split_spec(entry.patterns[0])
        protocol = _protocol(range_)
        if protocol in NOT_PACKAGES:
            continue
        if protocol not in REGISTRY:
            warnings.append(f"{what}: line {entry.line}: unknown protocol {protocol!r}, skipped")
            continue
        version = entry.fields.get("version")
        name = _real_name(name, range_)
        if not isinstance(version, str) or not version or not valid_name(name):
            warnings.append(f"{what}: line {entry.line}: entry without a usable name and version, skipped")
            continue
        edges = {dep: f"{dep}@{spec}" for dep, spec in _edges(entry.fields).items()}
        resolved.append(_Resolved(name, version, entry.patterns, edges))
    return resolved


def _berry_descriptor(dep: str, spec: str) -> str:
    """Berry writes ``dep: ^1.0.0`` for ``dep@npm:^1.0.0``; keys always carry the protocol."""
    return f"{dep}@{spec}" if _protocol(spec) else f"{dep}@npm:{spec}"


def _berry_entries(data: bytes, what: str, warnings: list[str]) -> list[_Resolved]:
    documents = load_yaml_documents(data, what)
    doc = documents[0] if documents else None
    if not isinstance(doc, dict):
        raise ParseError(f"{what}: yarn berry lockfile is not a mapping")
    resolved: list[_Resolved] = []
    for key, value in doc.items():
        if key == "__metadata" or not isinstance(key, str):
            continue
        fields = mapping(value)
        resolution = fields.get("resolution")
        version = fields.get("version")
        if not isinstance(resolution, str) or not isinstance(version, str):
            warnings.append(f"{what}: entry {key[:80]!r} has no resolution or version, skipped")
            continue
        name, range_ = split_spec(resolution)
        protocol = _protocol(range_)
        descriptors = yarn_v1.split_patterns(key, what=what)
        edges = {dep: _berry_descriptor(dep, spec) for dep, spec in _edges(fields).items()}
        if protocol == "workspace":
            resolved.append(_Resolved(name, version, descriptors, edges, workspace=True))
        elif protocol == "patch":
            # patch:resolve@npm%3A1.22.1#… — the patched package keeps its registry identity.
            inner_name, inner_range = split_spec(unquote(range_[len("patch:") :].split("#", 1)[0]))
            if _protocol(inner_range) in REGISTRY and valid_name(inner_name):
                resolved.append(_Resolved(inner_name, version, descriptors, edges, patch=True))
        elif protocol in NOT_PACKAGES:
            continue
        elif protocol not in REGISTRY:
            warnings.append(f"{what}: unknown protocol {protocol!r} in {resolution[:80]!r}, skipped")
        elif valid_name(name) and version:
            resolved.append(_Resolved(_real_name(name, range_), version, descriptors, edges))
        if len(resolved) > MAX_PACKAGES:
            raise ParseError(f"{what}: more than {MAX_PACKAGES} entries")
    return resolved


@register
class YarnLockAnalyzer(Analyzer):
    """yarn.lock of an application (lockfiles shipped inside node_modules packages are ignored)."""

    name = "yarn-lock"
    version = 1
    max_file_size = 128 * 1024 * 1024
    basenames: ClassVar[frozenset[str]] = frozenset({"yarn.lock"})

    def wants(self, path: str, mode: int) -> bool:
        return "node_modules" not in path.split("/")

    def analyze(self, file: FileInput) -> AnalysisResult:
        what = file.path
        data = file.read()
        text = data.decode("utf-8-sig", errors="replace")
        warnings: list[str] = []
        berry = bool(_BERRY.search(text))
        entries = _berry_entries(data, what, warnings) if berry else _classic_entries(text, what, warnings)

        by_descriptor: dict[str, str] = {}
        for entry in entries:
            for descriptor in entry.descriptors:
                by_descriptor[descriptor] = package_id(entry.name, entry.version)
        direct: set[str] = set()
        for entry in entries:
            entry.dependency_ids = [by_descriptor[d] for d in entry.dependencies.values() if d in by_descriptor]
            if entry.workspace:
                direct.update(entry.dependency_ids)

        collector = PackageCollector(file.path, what)
        knows_roots = berry and any(e.workspace for e in entries)
        for entry in entries:
            if entry.workspace or entry.patch:
                continue
            relationship = None
            if knows_roots:
                relationship = "direct" if package_id(entry.name, entry.version) in direct else "indirect"
            collector.add(entry.name, entry.version, relationship=relationship, depends_on=entry.dependency_ids)
        packages = collector.packages()
        reported = {p.id for p in packages}
        for package in packages:  # edges to patch-only or skipped entries lead nowhere
            package.depends_on = [d for d in package.depends_on if d in reported]
        return AnalysisResult(packages=packages, warnings=warnings)
