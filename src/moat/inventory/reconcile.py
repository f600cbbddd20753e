"""Rules that need more than one file, applied once the layers are merged.

Analyzers see one file at a time (that is what makes per-layer caching possible); the few facts
that span files are settled here, on the final package list.
"""

from __future__ import annotations

import posixpath
import re

from moat.model import Package

_GO_VERSION = re.compile(r"^(\d+)\.(\d+)")


def _go_at_least_117(version: str) -> bool:
    match = _GO_VERSION.match(version)
    if match is None:
        return False
    return (int(match.group(1)), int(match.group(2))) >= (1, 17)


def reconcile_go_sum(packages: list[Package]) -> list[Package]:
    """Use go.sum only where its go.mod cannot speak for the build, as the Go toolchain does.

    From Go 1.17 on, go.mod lists every module the build needs, and go.sum also lists modules it
    merely verified; reporting those would be false positives. Before 1.17, go.mod omits indirect
    modules, so go.sum fills in the ones go.mod does not name. A go.sum alone is kept as it is.
    """
    by_dir_mod: dict[str, list[Package]] = {}
    mod_dirs: set[str] = set()
    for package in packages:
        if package.type == "golang" and posixpath.basename(package.found_in) == "go.mod":
            directory = posixpath.dirname(package.found_in)
            by_dir_mod.setdefault(directory, []).append(package)
            mod_dirs.add(directory)
    if not mod_dirs:
        return packages
    kept: list[Package] = []
    for package in packages:
        if package.type != "golang" or posixpath.basename(package.found_in) != "go.sum":
            kept.append(package)
            continue
        directory = posixpath.dirname(package.found_in)
        siblings = by_dir_mod.get(directory)
        if siblings is None:
            kept.append(package)
            continue
        if any(_go_at_least_117(p.extra.get("go", "")) for p in siblings):
            continue
        if package.name in {p.name for p in siblings}:
            continue
        package.relationship = "indirect"
        kept.append(package)
    return kept


def reconcile(packages: list[Package]) -> list[Package]:
    return reconcile_go_sum(packages)
