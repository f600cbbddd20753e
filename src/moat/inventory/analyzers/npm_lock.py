"""npm's package-lock.json and npm-shrinkwrap.json (lockfile versions 1, 2 and 3).

Versions 2 and 3 describe the node_modules tree as a flat ``packages`` map keyed by install path;
version 1 only has the nested ``dependencies`` tree. Both are read the way Node resolves
``require()``: a dependency is the nearest copy found walking up the tree, which is what gives the
``depends_on`` graph its exact versions.

Rules that follow npm (and that the Trivy corpus pins down):

* the root project (``""``) is not a package; entries outside ``node_modules`` are the sources of
  linked packages (workspaces, ``file:`` directories) and are reported under the link's name;
* a link whose target is missing from the file is dropped (there is nothing installed to report);
* direct dependencies are the root's dependencies, optional, dev and peer dependencies, plus the
  workspaces; everything else in ``node_modules`` is indirect. Version 1 cannot tell, so it leaves
  ``relationship`` unset.
"""

from __future__ import annotations

import fnmatch
from typing import Any, ClassVar

from moat.errors import ParseError
from moat.inventory.analyzer import AnalysisResult, Analyzer, FileInput, register
from moat.inventory.js.collect import MAX_PACKAGES, PackageCollector
from moat.inventory.js.common import (
    licenses_from,
    mapping,
    package_id,
    split_spec,
    string_map,
    valid_name,
)
from moat.inventory.js.loading import load_json_object

NODE_MODULES = "node_modules/"
MAX_V1_DEPTH = 128
MAX_WORKSPACE_PATTERNS = 1000

# The dependency maps an installed package can declare. devDependencies only ever appear on
# workspace packages in a lockfile, and npm installs them, so they count as edges too.
_EDGE_FIELDS = ("dependencies", "optionalDependencies", "peerDependencies", "devDependencies")
_ROOT_FIELDS = ("dependencies", "optionalDependencies", "devDependencies", "peerDependencies")


def _name_from_path(path: str) -> str:
    """``node_modules/a/node_modules/@s/b`` → ``@s/b``."""
    return path.rsplit(NODE_MODULES, 1)[-1]


def _workspace_patterns(root: dict[str, Any]) -> list[str]:
    value = root.get("workspaces")
    if isinstance(value, dict):  # the yarn-compatible {"packages": [...]} form
        value = value.get("packages")
    if not isinstance(value, list):
        return []
    patterns = [p.strip().removeprefix("./").rstrip("/") for p in value if isinstance(p, str)]
    return patterns[:MAX_WORKSPACE_PATTERNS]


def _is_workspace(path: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(path, pattern) for pattern in patterns)


def _resolve(from_path: str, dep: str, located: dict[str, dict[str, Any]]) -> str | None:
    """The install path ``require(dep)`` reaches from the package installed at ``from_path``."""
    base = from_path
    while True:
        candidate = f"{base}/{NODE_MODULES}{dep}"
        if candidate in located:
            return candidate
        cut = base.rfind("/" + NODE_MODULES)
        if cut < 0:
            break
        base = base[:cut]
    top = NODE_MODULES + dep
    return top if top in located else None


def _identity(path: str, entry: dict[str, Any]) -> tuple[str, str]:
    name = entry.get("name")
    if not isinstance(name, str) or not valid_name(name):
        name = _name_from_path(path)
    version = entry.get("version")
    return name, version if isinstance(version, str) else ""


def _locate(nodes: dict[str, dict[str, Any]], warnings: list[str], what: str) -> dict[str, dict[str, Any]]:
    """Install path → entry, with every link replaced by the content of its target.

    A target's own nested node_modules move with it, so ``packages/a/node_modules/x`` becomes
    ``node_modules/a/node_modules/x`` when ``node_modules/a`` links to ``packages/a``.
    """
    targets: dict[str, list[str]] = {}
    for path, entry in nodes.items():
        if entry.get("link") is True:
            target = entry.get("resolved")
            if isinstance(target, str) and target.strip("/") and target in nodes:
                targets.setdefault(target, []).append(path)
            else:
                warnings.append(f"{what}: link {path} points to {target!r}, which the lockfile does not have")
    located: dict[str, dict[str, Any]] = {}
    for path, entry in nodes.items():
        if entry.get("link") is True:
            continue
        if path.startswith(NODE_MODULES):
            located[path] = entry
        ancestor = path
        while ancestor:
            for link in targets.get(ancestor, ()):
                located[link + path[len(ancestor) :]] = entry
            if ancestor in targets:
                break
            ancestor = ancestor.rpartition("/")[0]
    return located


def _parse_packages(
    entries: dict[str, Any], collector: PackageCollector, warnings: list[str], what: str
) -> None:
    if len(entries) > MAX_PACKAGES:
        raise ParseError(f"{what}: more than {MAX_PACKAGES} entries in 'packages'")
    root = mapping(entries.get(""))
    nodes = {path: entry for path, entry in entries.items() if path and isinstance(entry, dict)}
    located = _locate(nodes, warnings, what)

    direct = set()
    for field in _ROOT_FIELDS:
        for dep in string_map(root.get(field)):
            if NODE_MODULES + dep in located:
                direct.add(NODE_MODULES + dep)
    patterns = _workspace_patterns(root)
    for path, entry in nodes.items():
        target = entry.get("resolved")
        if (
            entry.get("link") is True
            and path.count(NODE_MODULES) == 1
            and isinstance(target, str)
            and _is_workspace(target, patterns)
        ):
            direct.add(path)

    for path in sorted(located):
        entry = located[path]
        name, version = _identity(path, entry)
        if not valid_name(name):
            warnings.append(f"{what}: skipped {path}: no usable package name")
            continue
        depends_on = []
        for field in _EDGE_FIELDS:
            for dep in string_map(entry.get(field)):
                dep_path = _resolve(path, dep, located)
                if dep_path is not None:
                    depends_on.append(package_id(*_identity(dep_path, located[dep_path])))
        collector.add(
            name,
            version,
            licenses=licenses_from(entry),
            dev=entry.get("dev") is True,
            relationship="direct" if path in direct else "indirect",
            depends_on=depends_on,
        )


def _v1_identity(name: str, entry: dict[str, Any]) -> tuple[str, str] | None:
    """Name and version of a version-1 entry; None for local directories and links.

    An alias (``"version": "npm:lodash@4.17.20"`` under the key ``lodash-old``) is reported as the
    real package.
    """
    version = entry.get("version")
    if not isinstance(version, str) or version.startswith(("file:", "link:")):
        return None
    if version.startswith("npm:"):
        real, real_version = split_spec(version[4:])
        if valid_name(real) and real_version:
            return real, real_version
    return name, version


def _parse_dependencies(top: dict[str, Any], collector: PackageCollector, warnings: list[str], what: str) -> None:
    """The version-1 tree, walked without recursion; each frame keeps the maps above it for lookups."""
    todo: list[tuple[str, dict[str, Any], tuple[dict[str, Any], ...]]] = [
        (name, entry, (top,)) for name, entry in reversed(top.items()) if isinstance(entry, dict)
    ]
    seen = 0
    while todo:
        name, entry, scopes = todo.pop()
        seen += 1
        if seen > MAX_PACKAGES:
            raise ParseError(f"{what}: more than {MAX_PACKAGES} entries in 'dependencies'")
        identity = _v1_identity(name, entry)
        if identity is None or not valid_name(identity[0]):
            continue
        own = mapping(entry.get("dependencies"))
        depends_on = []
        for required in string_map(entry.get("requires")):
            for scope in (own, *reversed(scopes)):
                found = scope.get(required)
                if isinstance(found, dict):
                    dep_identity = _v1_identity(required, found)
                    if dep_identity is not None:
                        depends_on.append(package_id(*dep_identity))
                    break
        collector.add(
            identity[0],
            identity[1],
            licenses=licenses_from(entry),
            dev=entry.get("dev") is True,
            depends_on=depends_on,
        )
        if own:
            if len(scopes) >= MAX_V1_DEPTH:
                warnings.append(f"{what}: dependencies of {name} nested deeper than {MAX_V1_DEPTH}, not read")
                continue
            inner = (*scopes, own)
            todo.extend((n, e, inner) for n, e in reversed(own.items()) if isinstance(e, dict))


@register
class NpmLockAnalyzer(Analyzer):
    """package-lock.json / npm-shrinkwrap.json of an application (not ones shipped inside packages)."""

    name = "npm-lock"
    version = 1
    max_file_size = 128 * 1024 * 1024
    basenames: ClassVar[frozenset[str]] = frozenset({"package-lock.json", "npm-shrinkwrap.json"})

    def wants(self, path: str, mode: int) -> bool:
        # A lockfile published inside a package describes that package's development tree, not
        # what is installed; node_modules/.package-lock.json is npm's cache of the tree itself.
        return "node_modules" not in path.split("/")

    def analyze(self, file: FileInput) -> AnalysisResult:
        what = file.path
        doc = load_json_object(file.read(), what)
        warnings: list[str] = []
        collector = PackageCollector(file.path, what)
        packages = doc.get("packages")
        dependencies = doc.get("dependencies")
        if isinstance(packages, dict):
            _parse_packages(packages, collector, warnings, what)
        elif isinstance(dependencies, dict):
            _parse_dependencies(dependencies, collector, warnings, what)
        elif "lockfileVersion" not in doc:
            raise ParseError(f"{what}: not an npm lockfile (no lockfileVersion, packages or dependencies)")
        return AnalysisResult(packages=collector.packages(), warnings=warnings)
