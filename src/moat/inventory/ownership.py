"""Which of the files an OS package database lists could hold a language package.

dpkg, apk and rpm record every file they install. Only a few of those paths matter to the rest of
the scan: the ones some language analyzer reads (a ``*.egg-info``, a ``.jar``, a Go binary), whose
packages would otherwise be reported a second time, as language packages, at the upstream version
the OS package manager may have patched without changing. Keeping only those few paths keeps the
per-layer results (and the layer cache) small: a Debian base image lists ~150,000 files.

The test is the layer walker's own pre-filter (:class:`AnalyzerIndex`) over every analyzer that is
not an OS one, so a new language analyzer is covered without editing this module. File lists carry
no modes, so executables (read by the Go and Rust binary analyzers because of their execute bit)
are recognised by their directory instead: anything under a ``bin``, ``sbin`` or ``libexec``
directory (``usr/bin``, ``usr/local/sbin``, ``usr/lib/go-1.19/bin``, ``usr/libexec/docker/…``).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from moat.inventory.analyzer import all_analyzers
from moat.inventory.layer_analysis import AnalyzerIndex

OS_ANALYZERS = frozenset({"dpkg", "dpkg-copyright", "dpkg-files", "apk", "rpm", "os-release"})
"""Analyzers that read OS package databases or OS facts; their files are never language packages."""

EXECUTABLE_DIRS = frozenset({"bin", "sbin", "libexec"})

MERGED_USR_DIRS = ("bin/", "sbin/", "lib/", "lib32/", "lib64/", "libx32/")
"""Top-level directories that merged-/usr systems (Debian 12, Fedora, …) make symlinks into usr/.
Packages built before the merge list ``/bin/ls`` while the layer stores ``usr/bin/ls``."""


@lru_cache(maxsize=1)
def _language_index() -> AnalyzerIndex:
    # Built on first use, never at import: the analyzer registry imports the analyzers, and the
    # apk and rpm analyzers import this module.
    return AnalyzerIndex(a for a in all_analyzers() if a.name not in OS_ANALYZERS)


def language_readable(path: str) -> bool:
    """Whether a language analyzer could read the file at ``path`` (relative, no leading slash)."""
    directory, _, _ = path.rpartition("/")
    if directory and not EXECUTABLE_DIRS.isdisjoint(directory.split("/")):
        return True
    return bool(_language_index().candidates(path, 0o644, regular=True)[0])


def owned_paths(paths: Iterable[str]) -> list[str]:
    """The language-readable paths among a package database's absolute paths, relative and sorted."""
    kept: set[str] = set()
    for raw in paths:
        path = raw.strip().lstrip("/")
        if path and path != "." and language_readable(path):
            kept.add(path)
    return sorted(kept)


def path_aliases(path: str) -> tuple[str, ...]:
    """``path`` and, on a merged-/usr layout, the name the same file has on the other side."""
    if path.startswith("usr/") and path[4:].startswith(MERGED_USR_DIRS):
        return path, path[4:]
    if path.startswith(MERGED_USR_DIRS):
        return path, "usr/" + path
    return (path,)
