"""Rules that need more than one file, applied once the layers are merged.

Analyzers see one file at a time (that is what makes per-layer caching possible); the few facts
that span files are settled here, on the final package list:

- go.sum entries give way to their go.mod (:func:`reconcile_go_sum`);
- a language package found in a file that dpkg, apk or rpm installed is dropped
  (:func:`drop_os_owned`), as Trivy and Grype do: the OS package is already reported, and matching
  the upstream version against language advisories gives false positives, since distributions
  patch ``python3-*`` and friends without changing that version. A Go or Rust binary the OS
  installed takes all its modules with it, as in Trivy.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Set

from moat.inventory.ownership import path_aliases
from moat.model import Package

OS_PACKAGE_TYPES = frozenset({"deb", "apk", "rpm", "opkg"})

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


def drop_os_owned(packages: list[Package], owned: Set[str]) -> list[Package]:
    """Leave out the language packages whose file an OS package database lists as installed.

    ``owned`` holds the language-readable paths of the visible dpkg .list files, apk database and
    rpm database. A nested jar (``outer.jar:inner.jar``) is owned when its outermost archive is;
    merged-/usr twins (``bin/x`` and ``usr/bin/x``) are the same file.
    """
    if not owned:
        return packages
    kept: list[Package] = []
    for package in packages:
        if package.type not in OS_PACKAGE_TYPES and package.found_in:
            outer = package.found_in.split(":", 1)[0]
            if any(alias in owned for alias in path_aliases(outer)):
                continue
        kept.append(package)
    return kept


def reconcile(packages: list[Package], owned: Set[str] = frozenset()) -> list[Package]:
    """Every cross-file rule, in order, on the merged package list."""
    return reconcile_go_sum(drop_os_owned(packages, owned))
