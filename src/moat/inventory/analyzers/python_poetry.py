"""Poetry's ``poetry.lock``: every locked package, its dependency graph, and whether it is dev-only.

Lock files from Poetry < 1.5 say ``category = "main" | "dev"``; Poetry 2 writes ``groups = [...]``,
where a package outside the ``main`` group is not installed for production; Poetry 1.5 to 1.8 write
neither, so the lock alone cannot tell and ``dev`` stays False. Which packages are direct
dependencies is only in ``pyproject.toml``, so ``relationship`` is left unset.
"""

from __future__ import annotations

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


@register
class PoetryLockAnalyzer(Analyzer):
    name = "poetry-lock"
    version = 1
    max_file_size = MAX_LOCK_SIZE
    basenames = frozenset({"poetry.lock"})

    def analyze(self, file: FileInput) -> AnalysisResult:
        document = load_toml(file.read(), file.path)
        entries = document.get("package", [])
        if not isinstance(entries, list):
            raise ParseError(f"{file.path}: 'package' is not an array of tables")
        if len(entries) > MAX_PACKAGES:
            raise ParseError(f"{file.path}: more than {MAX_PACKAGES} packages")
        packages: list[Package] = []
        wanted: list[dict[str, Any]] = []
        warnings: list[str] = []
        seen: set[tuple[str, str]] = set()
        for entry in entries:
            if not isinstance(entry, dict):
                raise ParseError(f"{file.path}: a [[package]] entry is not a table")
            name, version = entry.get("name"), entry.get("version")
            if not isinstance(name, str) or not isinstance(version, str):
                raise ParseError(f"{file.path}: a [[package]] entry has no name or version")
            if not is_valid_name(name) or not is_valid_version(version):
                warnings.append(f"{file.path}: skipped invalid package {name[:80]!r} {version[:80]!r}")
                continue
            if (name, version) in seen:
                continue
            seen.add((name, version))
            packages.append(pypi_package(name, version, file.path, dev=_is_dev(entry)))
            deps = entry.get("dependencies", {})
            wanted.append(deps if isinstance(deps, dict) else {})
        _link(packages, wanted)
        return AnalysisResult(packages=packages, warnings=warnings)


def _is_dev(entry: dict[str, Any]) -> bool:
    category = entry.get("category")
    if isinstance(category, str):
        return category == "dev"
    groups = entry.get("groups")
    if isinstance(groups, list) and groups:
        return "main" not in groups
    return False


def _link(packages: list[Package], wanted: list[dict[str, Any]]) -> None:
    """Resolve dependency names to locked ids.

    A name locked at several versions (different markers per platform) is linked to all of them:
    the lock does not say which one a given dependent picks without evaluating markers.
    """
    by_name: dict[str, list[str]] = {}
    for package in packages:
        by_name.setdefault(normalize_name(package.name), []).append(package.id)
    for package, deps in zip(packages, wanted, strict=True):
        ids = {dep_id for dep_name in deps for dep_id in by_name.get(normalize_name(str(dep_name)), [])}
        ids.discard(package.id)
        package.depends_on = sorted(ids)
