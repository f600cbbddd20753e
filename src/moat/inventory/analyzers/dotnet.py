""".NET: ``*.deps.json`` (what a published app loads) and ``packages.lock.json`` (NuGet's lockfile).

deps.json has a ``libraries`` table (``"Name/Version": {"type": "package"|"project"|…}``) and, per
target framework, what each library depends on and which assets it brings. Only NuGet packages
are reported, plus the self-contained runtime pack (the .NET runtime itself, named without the SDK's
``runtimepack.`` prefix) because .NET runtime advisories are about exactly that. Packages whose
runtime target entry carries no runtime, native or runtimeTargets assets are compile-time only
(analyzers, SourceLink …) and are left out, as Trivy does. The root project's own dependencies are
direct, the rest indirect.

packages.lock.json lists, per target framework, every package with ``type`` Direct, Transitive,
CentralTransitive or Project (the solution's own projects, not reported).
"""

from __future__ import annotations

import json
from typing import Any

from moat.errors import ParseError
from moat.inventory.analyzer import AnalysisResult, Analyzer, FileInput, register
from moat.inventory.purl import make_purl
from moat.model import Package

MAX_JSON_SIZE = 64 * 1024 * 1024
RUNTIME_PACK_PREFIX = "runtimepack."
ASSET_KEYS = ("runtime", "runtimeTargets", "native")


@register
class DotnetAnalyzer(Analyzer):
    name = "dotnet"
    version = 1
    basenames = frozenset({"packages.lock.json"})
    suffixes = (".deps.json",)
    max_file_size = MAX_JSON_SIZE

    def analyze(self, file: FileInput) -> AnalysisResult:
        base = file.path.rsplit("/", 1)[-1]
        try:
            document = json.loads(file.read())
        except (ValueError, RecursionError) as exc:
            raise ParseError(f"{base} is not valid JSON: {exc}") from exc
        if not isinstance(document, dict):
            raise ParseError(f"{base}: top level is not an object")
        if base == "packages.lock.json":
            return AnalysisResult(packages=packages_from_lock(document, file.path))
        return AnalysisResult(packages=packages_from_deps(document, file.path))


def _nuget(name: str, version: str, found_in: str, relationship: str | None) -> Package:
    return Package(
        name=name,
        version=version,
        type="nuget",
        purl=make_purl("nuget", name, version),
        found_in=found_in,
        relationship=relationship,
    )


def _object(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ParseError(f"{what} is not an object")
    return value


def _split_key(key: str) -> tuple[str, str] | None:
    name, slash, version = key.partition("/")
    return (name, version) if slash and name and version else None


def _strip_pack(name: str) -> str:
    return name.removeprefix(RUNTIME_PACK_PREFIX)


def packages_from_deps(document: dict[str, Any], found_in: str) -> list[Package]:
    libraries = _object(document.get("libraries"), "deps.json 'libraries'")
    targets = _object(document.get("targets"), "deps.json 'targets'")
    runtime_target = _object(document.get("runtimeTarget"), "deps.json 'runtimeTarget'").get("name")
    target = targets.get(runtime_target) if isinstance(runtime_target, str) else None
    entries: dict[str, dict[str, Any]] = {}
    if target is not None:
        for key, value in _object(target, "deps.json runtime target").items():
            split = _split_key(key)
            if split:
                entries[f"{_strip_pack(split[0])}/{split[1]}"] = _object(value, f"deps.json target entry {key}")
    kept: dict[str, tuple[str, str]] = {}
    projects: list[str] = []
    for key, library in libraries.items():
        split = _split_key(key)
        kind = str(_object(library, f"deps.json library {key}").get("type", "")).lower()
        if split is None:
            continue
        name, version = _strip_pack(split[0]), split[1]
        normalized = f"{name}/{version}"
        if kind == "project":
            projects.append(normalized)
            continue
        if kind not in ("package", "runtimepack"):
            continue
        entry = entries.get(normalized)
        if target is not None and entry is not None and not any(entry.get(k) for k in ASSET_KEYS):
            continue  # compile-time only: nothing of it ships with the app
        kept[normalized] = (name, version)
    direct = _root_dependencies(projects, entries)
    packages = []
    for key, (name, version) in kept.items():
        relationship = None if direct is None else ("direct" if key in direct else "indirect")
        package = _nuget(name, version, found_in, relationship)
        dependencies = _object(entries.get(key, {}).get("dependencies"), f"dependencies of {key}")
        package.depends_on = sorted(
            f"{_strip_pack(dep)}@{ver}" for dep, ver in dependencies.items() if f"{_strip_pack(dep)}/{ver}" in kept
        )
        packages.append(package)
    return packages


def _root_dependencies(projects: list[str], entries: dict[str, dict[str, Any]]) -> set[str] | None:
    """Dependencies of the one project nothing else references; None when that is not clear."""
    referenced = set()
    for entry in entries.values():
        for dep, version in _object(entry.get("dependencies"), "deps.json dependencies").items():
            referenced.add(f"{_strip_pack(dep)}/{version}")
    roots = [p for p in projects if p not in referenced]
    if len(roots) != 1 or roots[0] not in entries:
        return None
    dependencies = _object(entries[roots[0]].get("dependencies"), "deps.json dependencies")
    return {f"{_strip_pack(dep)}/{version}" for dep, version in dependencies.items()} or None


def packages_from_lock(document: dict[str, Any], found_in: str) -> list[Package]:
    frameworks = _object(document.get("dependencies"), "packages.lock.json 'dependencies'")
    found: dict[tuple[str, str], Package] = {}
    for framework, listing in frameworks.items():
        listing = _object(listing, f"packages.lock.json framework {framework}")
        for name, entry in listing.items():
            entry = _object(entry, f"packages.lock.json entry {name}")
            if entry.get("type") == "Project":
                continue
            version = entry.get("resolved")
            if not isinstance(version, str) or not version:
                raise ParseError(f"packages.lock.json: {name} has no resolved version")
            relationship = "direct" if entry.get("type") == "Direct" else "indirect"
            package = found.get((name, version))
            if package is None:
                package = found[(name, version)] = _nuget(name, version, found_in, relationship)
            elif relationship == "direct":
                package.relationship = "direct"
            for dep in _object(entry.get("dependencies"), f"dependencies of {name}"):
                resolved = _object(listing.get(dep), f"packages.lock.json entry {dep}").get("resolved")
                target_type = _object(listing.get(dep), f"packages.lock.json entry {dep}").get("type")
                if isinstance(resolved, str) and resolved and target_type != "Project":
                    dep_id = f"{dep}@{resolved}"
                    if dep_id not in package.depends_on:
                        package.depends_on.append(dep_id)
    for package in found.values():
        package.depends_on.sort()
    return list(found.values())
