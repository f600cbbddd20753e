"""Analyzing one layer: stream its entries once, hand each wanted file to its analyzers.

The result is keyed by path so layers can be merged the way the container runtime stacks them
(see :mod:`moat.inventory.merge`), and it is plain JSON so it can be cached by diff id.
"""

from __future__ import annotations

import io
import posixpath
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO, Any

from moat.errors import LayerError, ParseError
from moat.image.layers import AUFS_META_PREFIX, OPAQUE_MARKER, WHITEOUT_PREFIX, Entry
from moat.image.source import LayerReader
from moat.inventory.analyzer import AnalysisResult, Analyzer, FileInput
from moat.model import OSInfo, Package

SPOOL_IN_MEMORY = 8 * 1024 * 1024
COPY_CHUNK = 1024 * 1024
EXEC_MAGICS = (b"\x7fELF", b"MZ", b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"\xca\xfe\xba\xbe")


@dataclass(slots=True)
class FileFinding:
    """What one analyzer said about one file of a layer."""

    analyzer: str
    packages: list[Package] = field(default_factory=list)
    os: OSInfo | None = None
    package_licenses: dict[str, list[str]] = field(default_factory=dict)
    owned_paths: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "analyzer": self.analyzer,
            "packages": [p.to_dict() for p in self.packages],
            "os": self.os.to_dict() if self.os else None,
        }
        if self.package_licenses:
            data["package_licenses"] = self.package_licenses
        if self.owned_paths:
            data["owned_paths"] = self.owned_paths
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FileFinding:
        return cls(
            analyzer=str(data["analyzer"]),
            packages=[Package.from_dict(p) for p in data.get("packages", [])],
            os=OSInfo.from_dict(data["os"]) if data.get("os") else None,
            package_licenses={
                str(k): [str(x) for x in v] for k, v in (data.get("package_licenses") or {}).items()
            },
            owned_paths=[str(x) for x in data.get("owned_paths") or []],
        )


@dataclass(slots=True)
class LayerResult:
    """Per-path findings of one layer plus the deletions it makes to the layers below."""

    files: dict[str, list[FileFinding]] = field(default_factory=dict)
    whiteouts: list[str] = field(default_factory=list)
    opaque_dirs: list[str] = field(default_factory=list)
    symlinks: dict[str, str] = field(default_factory=dict)
    """Symlinks at paths some analyzer wants, so the merger can follow them inside the root."""
    warnings: list[str] = field(default_factory=list)
    diff_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": {path: [f.to_dict() for f in found] for path, found in self.files.items()},
            "whiteouts": self.whiteouts,
            "opaque_dirs": self.opaque_dirs,
            "symlinks": self.symlinks,
            "warnings": self.warnings,
            "diff_id": self.diff_id,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LayerResult:
        return cls(
            files={
                str(path): [FileFinding.from_dict(f) for f in found]
                for path, found in data.get("files", {}).items()
            },
            whiteouts=[str(x) for x in data.get("whiteouts", [])],
            opaque_dirs=[str(x) for x in data.get("opaque_dirs", [])],
            symlinks={str(k): str(v) for k, v in data.get("symlinks", {}).items()},
            warnings=[str(x) for x in data.get("warnings", [])],
            diff_id=data.get("diff_id"),
        )


class AnalyzerIndex:
    """The walker's pre-filter: decides in a few dictionary lookups whether any analyzer cares.

    Calling every analyzer's ``wants`` on every entry of a 50,000-file layer would cost more than
    decompressing it, so analyzers declare base names, suffixes and directories up front.
    """

    def __init__(self, analyzers: Iterable[Analyzer]) -> None:
        self.by_basename: dict[str, list[Analyzer]] = {}
        self.by_dirname: dict[str, list[Analyzer]] = {}
        self.with_suffixes: list[Analyzer] = []
        self.on_executables: list[Analyzer] = []
        suffixes: list[str] = []
        for analyzer in analyzers:
            for name in analyzer.basenames:
                self.by_basename.setdefault(name, []).append(analyzer)
            for name in analyzer.dirnames:
                self.by_dirname.setdefault(name, []).append(analyzer)
            if analyzer.suffixes:
                self.with_suffixes.append(analyzer)
                suffixes.extend(analyzer.suffixes)
            if analyzer.executables:
                self.on_executables.append(analyzer)
        self.all_suffixes = tuple(suffixes)

    def candidates(self, path: str, mode: int, regular: bool = True) -> tuple[list[Analyzer], bool]:
        """Analyzers that want the path, and whether any matched by name rather than by exec bit."""
        slash = path.rfind("/")
        base = path[slash + 1 :]
        found: list[Analyzer] = []
        hits = self.by_basename.get(base)
        if hits:
            found.extend(hits)
        if self.by_dirname and slash > 0:
            hits = self.by_dirname.get(path[:slash])
            if hits:
                found.extend(a for a in hits if a not in found)
        if self.all_suffixes and base.endswith(self.all_suffixes):
            found.extend(a for a in self.with_suffixes if base.endswith(a.suffixes) and a not in found)
        named_matches = list(found)
        if regular and mode & 0o111 and self.on_executables:
            found.extend(a for a in self.on_executables if a not in found)
        if not found:
            return found, False
        wanted = [a for a in found if a.wants(path, mode)]
        return wanted, any(a in named_matches for a in wanted)


KEEP_FOR_LINKS_MAX = 1024 * 1024
KEEP_FOR_LINKS_TOTAL = 64 * 1024 * 1024


@dataclass(slots=True)
class _WalkState:
    """Bookkeeping for one walk: what was analyzed, and small files kept for later hard links."""

    analyzed: dict[str, frozenset[str]] = field(default_factory=dict)
    kept: dict[str, tuple[bytes, int]] = field(default_factory=dict)
    kept_bytes: int = 0
    pending_links: dict[str, tuple[str, list[Analyzer], int]] = field(default_factory=dict)


def analyze_layer(reader: LayerReader, index: AnalyzerIndex, tmp_dir: str | None = None) -> LayerResult:
    """Walk a layer once and run the wanted analyzers on the files they asked for.

    A hard link is analyzed with its target's content. Small wanted files are kept until the end
    of the walk for that; a link to anything else that was not analyzed under the same analyzers
    is resolved by a second pass over the layer, which only unusual layers need.
    """
    result = LayerResult()
    state = _WalkState()
    for entry in reader.entries():
        _visit(entry, index, result, state, tmp_dir)
    if state.pending_links:
        _resolve_pending_links(reader, state.pending_links, result, tmp_dir)
    result.warnings.extend(reader.warnings)
    result.diff_id = reader.diff_id
    return result


def _visit(entry: Entry, index: AnalyzerIndex, result: LayerResult, state: _WalkState, tmp_dir: str | None) -> None:
    base = posixpath.basename(entry.path)
    if base.startswith(WHITEOUT_PREFIX):
        parent = posixpath.dirname(entry.path)
        if base == OPAQUE_MARKER:
            result.opaque_dirs.append(parent)
        elif not base.startswith(AUFS_META_PREFIX):
            result.whiteouts.append(posixpath.join(parent, base[len(WHITEOUT_PREFIX) :]))
        return
    if entry.kind == "symlink":
        if index.candidates(entry.path, 0, regular=False)[0]:
            result.symlinks[entry.path] = entry.linkname
        return
    if entry.kind not in ("file", "hardlink"):
        return
    analyzers, named = index.candidates(entry.path, entry.mode, regular=True)
    if not analyzers:
        return
    names = frozenset(a.name for a in analyzers)
    if entry.kind == "file":
        stream = _spool(entry, tmp_dir, sniff_executable=not named)
        if stream is None:
            return
        with stream:
            _run(analyzers, entry.path, stream, entry.size, entry.mode, result)
            state.analyzed[entry.path] = names
            if named and entry.size <= KEEP_FOR_LINKS_MAX and state.kept_bytes < KEEP_FOR_LINKS_TOTAL:
                stream.seek(0)
                state.kept[entry.path] = (stream.read(), entry.mode)
                state.kept_bytes += entry.size
        return
    # A hard link: the same content as its target, under another name.
    target = entry.linkname
    if not named and names <= state.analyzed.get(target, frozenset()):
        return  # the same binary, already analyzed under the target's name: not a second copy
    if target in state.kept:
        data, _ = state.kept[target]
        _run(analyzers, entry.path, io.BytesIO(data), len(data), entry.mode, result)
        return
    state.pending_links[entry.path] = (target, analyzers, entry.mode)


def _spool(entry: Entry, tmp_dir: str | None, sniff_executable: bool) -> IO[bytes] | None:
    """Copy an entry's content out of the tar stream into a bounded spooled file."""
    source = entry.open()
    head = source.read(4) if sniff_executable else b""
    if sniff_executable and not head.startswith(EXEC_MAGICS):
        return None
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(  # noqa: SIM115 - returned to the caller, closed there
        max_size=SPOOL_IN_MEMORY, dir=tmp_dir, prefix="moat-"
    )
    spool.write(head)
    while chunk := source.read(COPY_CHUNK):
        spool.write(chunk)
    spool.seek(0)
    return spool


def _run(
    analyzers: list[Analyzer], path: str, stream: IO[bytes], size: int, mode: int, result: LayerResult
) -> None:
    # Record the path even when nothing is found: this version of the file replaces the
    # versions below it, so an emptied package database must hide what lower layers listed.
    findings = result.files.setdefault(path, [])
    file = FileInput(path, stream, size, mode)  # one per file, so analyzers can share its memo
    for analyzer in analyzers:
        if size > analyzer.max_file_size:
            result.warnings.append(
                f"{path}: {size} bytes exceeds {analyzer.name}'s limit of {analyzer.max_file_size}; skipped"
            )
            continue
        try:
            outcome: AnalysisResult = analyzer.analyze(file)
        except ParseError as exc:
            result.warnings.append(f"{path}: {analyzer.name}: {exc}")
            continue
        except LayerError:
            raise
        except Exception as exc:  # one broken file must not sink a whole image scan
            result.warnings.append(f"{path}: {analyzer.name} failed: {type(exc).__name__}: {exc}")
            continue
        result.warnings.extend(outcome.warnings)
        if outcome.packages or outcome.os or outcome.package_licenses or outcome.owned_paths:
            findings.append(
                FileFinding(
                    analyzer=analyzer.name,
                    packages=outcome.packages,
                    os=outcome.os,
                    package_licenses=outcome.package_licenses,
                    owned_paths=outcome.owned_paths,
                )
            )


def _resolve_pending_links(
    reader: LayerReader,
    pending: dict[str, tuple[str, list[Analyzer], int]],
    result: LayerResult,
    tmp_dir: str | None,
) -> None:
    targets: dict[str, list[str]] = {}
    for link, (target, _, _) in pending.items():
        targets.setdefault(target, []).append(link)
    for entry in reader.entries():
        links = targets.get(entry.path)
        if not links or entry.kind != "file":
            continue
        stream = _spool(entry, tmp_dir, sniff_executable=False)
        if stream is None:
            continue
        with stream:
            for link in links:
                _, analyzers, mode = pending[link]
                _run(analyzers, link, stream, entry.size, mode, result)
        del targets[entry.path]
        if not targets:
            break
    for target, links in targets.items():
        for link in links:
            result.warnings.append(f"{link}: hard link to {target}, which is not in the layer; skipped")
