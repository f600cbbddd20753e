"""Stacking per-layer results the way an overlay filesystem stacks layers.

A file in a higher layer replaces the same path below; a ``.wh.`` whiteout deletes a path (and
everything under it) from the layers below; an opaque directory hides everything below it. The
layer that *introduced* a package is the first layer, in the surviving chain of versions of its
file, in which that package appeared — so a dpkg status rewritten by every layer still credits
each package to the layer that installed it.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

from moat.image.layers import resolve_link_target
from moat.inventory.layer_analysis import FileFinding, LayerResult
from moat.model import OSInfo, Package

MAX_SYMLINK_HOPS = 40


@dataclass(slots=True)
class MergedTree:
    """The findings visible in the final image, path by path."""

    files: dict[str, list[FileFinding]] = field(default_factory=dict)
    introduced: dict[str, dict[tuple[str, str], str | None]] = field(default_factory=dict)
    symlinks: dict[str, str] = field(default_factory=dict)

    def packages(self) -> list[Package]:
        found: list[Package] = []
        for path in sorted(self.files):
            introduced = self.introduced.get(path, {})
            for finding in self.files[path]:
                for package in finding.packages:
                    package.layer = introduced.get((finding.analyzer, package.id), package.layer)
                    found.append(package)
        return found

    def package_licenses(self) -> dict[str, list[str]]:
        """Licenses declared for packages by files other than their package database."""
        found: dict[str, list[str]] = {}
        for path in sorted(self.files):
            for finding in self.files[path]:
                for key, licenses in finding.package_licenses.items():
                    found.setdefault(key, licenses)
        return found

    def owned_paths(self) -> set[str]:
        """Paths that a visible OS package database (dpkg .list, apk, rpm) says it installed.

        Whiteouts and replaced databases apply here as to packages: once a layer deletes a
        package's .list, its files stop counting as owned.
        """
        found: set[str] = set()
        for findings in self.files.values():
            for finding in findings:
                found.update(finding.owned_paths)
        return found

    def os_findings(self) -> dict[str, OSInfo]:
        """What each OS-describing file says, with symlinked names (etc/os-release → usr/lib/…)
        answered by the file they resolve to inside the root."""
        results = {
            path: finding.os for path, findings in self.files.items() for finding in findings if finding.os
        }
        for link in self.symlinks:
            target = self.resolve(link)
            if target and target in results and link not in results:
                results[link] = results[target]
        return results

    def resolve(self, path: str) -> str | None:
        """Follow symlinks (bounded, never out of the root) to the path that holds content."""
        current = path
        for _ in range(MAX_SYMLINK_HOPS):
            target = self.symlinks.get(current)
            if target is None:
                return current
            resolved = resolve_link_target(current, target)
            if resolved is None:
                return None
            current = resolved
        return None


def _remove_tree(mapping: dict[str, object], root: str) -> None:
    prefix = root.rstrip("/") + "/" if root else ""
    for key in [k for k in mapping if k == root or k.startswith(prefix)]:
        del mapping[key]


def merge_layers(layers: list[tuple[str | None, LayerResult]]) -> MergedTree:
    """Apply layer results bottom to top; each item is (layer id, that layer's result)."""
    tree = MergedTree()
    for layer_id, result in layers:
        for directory in result.opaque_dirs:
            for mapping in (tree.files, tree.introduced, tree.symlinks):
                _remove_tree(mapping, directory)  # type: ignore[arg-type]
        for path in result.whiteouts:
            for mapping in (tree.files, tree.introduced, tree.symlinks):
                _remove_tree(mapping, posixpath.normpath(path))  # type: ignore[arg-type]
        for path, target in result.symlinks.items():
            tree.files.pop(path, None)
            tree.introduced.pop(path, None)
            tree.symlinks[path] = target
        for path, findings in result.files.items():
            previous = tree.introduced.get(path, {})
            introduced: dict[tuple[str, str], str | None] = {}
            for finding in findings:
                for package in finding.packages:
                    key = (finding.analyzer, package.id)
                    introduced[key] = previous.get(key, layer_id)
            tree.files[path] = findings
            tree.introduced[path] = introduced
            tree.symlinks.pop(path, None)
    return tree
