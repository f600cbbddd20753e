"""Cargo.lock: every crate in a Rust build, with the dependency graph.

Lockfile v1/v2 name dependencies ``"name version (source)"``; v3+ write just ``"name"`` when only
one version of that crate is locked, ``"name version"`` otherwise. Both resolve to the locked
package's ``name@version``. The lockfile cannot tell the workspace's own crates from path
dependencies or direct from indirect use (that is in Cargo.toml), so no relationship is set.
"""

from __future__ import annotations

import tomllib
from typing import Any

from moat.errors import ParseError
from moat.inventory.analyzer import AnalysisResult, Analyzer, FileInput, register
from moat.inventory.purl import make_purl
from moat.model import Package

MAX_LOCKFILE_SIZE = 32 * 1024 * 1024


@register
class CargoLockAnalyzer(Analyzer):
    name = "cargo"
    version = 1
    basenames = frozenset({"Cargo.lock"})
    max_file_size = MAX_LOCKFILE_SIZE

    def analyze(self, file: FileInput) -> AnalysisResult:
        try:
            document = tomllib.loads(file.text())
        except (tomllib.TOMLDecodeError, RecursionError) as exc:
            raise ParseError(f"Cargo.lock is not valid TOML: {exc}") from exc
        return AnalysisResult(packages=packages_from_lock(document, file.path))


def packages_from_lock(document: dict[str, Any], found_in: str) -> list[Package]:
    entries = document.get("package", [])
    if not isinstance(entries, list):
        raise ParseError("Cargo.lock: 'package' is not an array of tables")
    locked: list[tuple[str, str, list[str], str]] = []
    versions: dict[str, list[str]] = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ParseError(f"Cargo.lock: package {index} is not a table")
        name, version = entry.get("name"), entry.get("version")
        if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
            raise ParseError(f"Cargo.lock: package {index} lacks a name or version")
        dependencies = entry.get("dependencies", [])
        if not isinstance(dependencies, list) or not all(isinstance(d, str) for d in dependencies):
            raise ParseError(f"Cargo.lock: dependencies of {name} are not a list of strings")
        source = entry.get("source", "")
        locked.append((name, version, dependencies, source if isinstance(source, str) else ""))
        if version not in versions.setdefault(name, []):
            versions[name].append(version)
    packages = []
    seen: set[tuple[str, str]] = set()
    for name, version, dependencies, source in locked:
        if (name, version) in seen:  # the same crate from two sources: one package is enough
            continue
        seen.add((name, version))
        package = Package(
            name=name,
            version=version,
            type="cargo",
            purl=make_purl("cargo", name, version),
            found_in=found_in,
            depends_on=sorted({dep for ref in dependencies if (dep := _resolve(ref, versions))}),
        )
        if source and not source.startswith("registry+https://github.com/rust-lang/crates.io-index"):
            package.extra["source"] = source
        packages.append(package)
    return packages


def _resolve(reference: str, versions: dict[str, list[str]]) -> str | None:
    """``name``, ``name version`` or ``name version (source)`` → the locked ``name@version``."""
    parts = reference.split(" ", 2)
    name = parts[0]
    candidates = versions.get(name, [])
    if len(parts) >= 2:
        return f"{name}@{parts[1]}" if parts[1] in candidates else None
    return f"{name}@{candidates[0]}" if len(candidates) == 1 else None
