"""Streaming a layer: decompress, walk the tar, verify digests, refuse hostile entries.

A layer is never extracted. Its blob is read once, front to back, through a decompressor and a
tar reader; only the entries an analyzer wants are copied out (bounded, spooled). Both the
compressed digest and the diff id are checked as the bytes go by, so a blob that lies about its
digest fails the scan after the walk and its results are thrown away, never cached.
"""

from __future__ import annotations

import io
import os
import posixpath
import stat
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, cast

import zstandard
from isal import igzip, igzip_lib

from moat.errors import LayerError
from moat.image.tarstream import DecodedStream, MemberReader, TarMember, iter_tar

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
TAR_BUFSIZE = 1024 * 1024
DEFAULT_MAX_LAYER_BYTES = 64 * 1024**3
"""Uncompressed bytes one layer may expand to before it is treated as a decompression bomb."""

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
AUFS_META_PREFIX = ".wh..wh."


DECODE_ERRORS: tuple[type[BaseException], ...] = (
    EOFError,
    OSError,
    ValueError,
    zlib.error,
    zstandard.ZstdError,
    cast(type[BaseException], igzip_lib.IsalError),  # typed as an instance in isal's stubs
)
"""What the decompressors raise for damaged input (isal's error is not an OSError)."""


def max_layer_bytes() -> int:
    value = os.environ.get("MOAT_MAX_LAYER_BYTES")
    return int(value) if value and value.isdigit() else DEFAULT_MAX_LAYER_BYTES


def decompressing_reader(raw: IO[bytes]) -> IO[bytes]:
    """Wrap a blob stream in the decompressor its magic bytes call for (gzip, zstd or none)."""
    buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw, TAR_BUFSIZE)  # type: ignore[type-var]
    head = buffered.peek(4)[:4]
    if head.startswith(GZIP_MAGIC):
        return igzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[return-value]
    if head.startswith(ZSTD_MAGIC):
        return zstandard.ZstdDecompressor().stream_reader(buffered, read_across_frames=True)
    return buffered


@dataclass(slots=True)
class Entry:
    """One tar (or directory) entry, with its path normalised relative to the image root."""

    path: str
    kind: str
    """file, dir, symlink, hardlink or other (devices, fifos: never read)."""
    mode: int
    size: int
    linkname: str
    opener: Callable[[], IO[bytes]] | None

    def open(self) -> IO[bytes]:
        if self.opener is None:
            raise LayerError(f"{self.path}: entry has no content")
        return self.opener()


def normalize_member_path(name: str) -> str | None:
    """The entry's path relative to the root, or None when it tries to leave the root."""
    path = name.replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    path = path.lstrip("/")
    if not path or path == ".":
        return ""
    parts = path.split("/")
    if ".." in parts:
        return None
    return posixpath.normpath(path)


def resolve_link_target(entry_path: str, linkname: str) -> str | None:
    """Where a symlink points, inside the root, or None if it escapes.

    Absolute targets are taken relative to the image root (the container sees them that way).
    """
    if linkname.startswith("/"):
        joined = linkname.lstrip("/")
    else:
        joined = posixpath.join(posixpath.dirname(entry_path), linkname)
    normalized = posixpath.normpath(joined)
    if normalized.startswith("../") or normalized == "..":
        return None
    return "" if normalized == "." else normalized


class TarLayerReader:
    """Walks one layer blob as a stream of :class:`Entry` objects, verifying digests at the end.

    ``expected_digest`` is the blob's (compressed) digest, ``expected_diff_id`` the digest of the
    uncompressed tar; either may be None when the source does not know it.
    """

    def __init__(
        self,
        open_blob: Callable[[], IO[bytes]],
        *,
        name: str,
        expected_digest: str | None = None,
        expected_diff_id: str | None = None,
    ) -> None:
        self._open_blob = open_blob
        self.name = name
        self.expected_digest = expected_digest
        self.expected_diff_id = expected_diff_id
        self.warnings: list[str] = []
        self.diff_id: str | None = None

    def entries(self) -> Iterator[Entry]:
        stream = DecodedStream(self._open_raw, decompressing_reader, max_layer_bytes(), f"layer {self.name}")
        finished = False
        try:
            for member, reader in iter_tar(stream):
                entry = self._entry(member, reader)
                if entry is not None:
                    yield entry
            stream.finish()
            finished = True
        except LayerError as exc:
            raise LayerError(_prefixed(self.name, exc)) from exc
        except DECODE_ERRORS as exc:
            raise LayerError(f"layer {self.name}: corrupt or truncated ({_describe(exc)})") from exc
        finally:
            if not finished:
                stream.close()
        self.diff_id = stream.uncompressed_digest
        if self.expected_digest and stream.compressed_digest != self.expected_digest:
            raise LayerError(
                f"layer {self.name}: blob digest is {stream.compressed_digest}, "
                f"manifest says {self.expected_digest}"
            )
        if self.expected_diff_id and self.diff_id != self.expected_diff_id:
            raise LayerError(
                f"layer {self.name}: uncompressed digest is {self.diff_id}, config says {self.expected_diff_id}"
            )

    def _open_raw(self) -> IO[bytes]:
        try:
            return self._open_blob()
        except OSError as exc:
            raise LayerError(f"cannot open blob: {exc.strerror or exc}") from exc

    def _entry(self, member: TarMember, reader: MemberReader | None) -> Entry | None:
        path = normalize_member_path(member.name)
        if path is None:
            self.warnings.append(f"layer {self.name}: skipped entry escaping the root: {member.name!r}")
            return None
        if path == "":
            return None
        kind = TAR_KINDS.get(member.typeflag, "other")
        if kind == "file" and reader is None:
            kind = "other"
        linkname = ""
        if kind == "hardlink":
            target = normalize_member_path(member.linkname)
            if target is None:
                self.warnings.append(f"layer {self.name}: skipped hard link out of the root: {member.name!r}")
                return None
            linkname = target
        elif kind == "symlink":
            linkname = member.linkname
        opener = (lambda r=reader: r) if reader is not None else None
        return Entry(path, kind, member.mode, member.size, linkname, opener)


TAR_KINDS = {b"0": "file", b"\0": "file", b"7": "file", b"5": "dir", b"2": "symlink", b"1": "hardlink"}


def _prefixed(name: str, exc: LayerError) -> str:
    text = str(exc)
    return text if text.startswith("layer ") else f"layer {name}: {text}"


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0]


class DirLayerReader:
    """Walks an unpacked root filesystem as if it were one layer, never following symlinks.

    Symlinks are reported as entries (their targets are resolved by the merger inside the root);
    device files, sockets and fifos are reported as ``other`` and never opened.
    """

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self.name = root
        self.warnings: list[str] = []
        self.diff_id: str | None = None

    def entries(self) -> Iterator[Entry]:
        stack = [""]
        while stack:
            relative = stack.pop()
            absolute = os.path.join(self.root, relative) if relative else self.root
            try:
                with os.scandir(absolute) as listing:
                    items = sorted(listing, key=lambda e: e.name)
            except OSError as exc:
                self.warnings.append(f"{absolute}: cannot list ({exc.strerror})")
                continue
            for item in items:
                path = f"{relative}/{item.name}" if relative else item.name
                try:
                    info = item.stat(follow_symlinks=False)
                except OSError as exc:
                    self.warnings.append(f"{item.path}: cannot stat ({exc.strerror})")
                    continue
                if stat.S_ISLNK(info.st_mode):
                    try:
                        target = os.readlink(item.path)
                    except OSError:
                        target = ""
                    yield Entry(path, "symlink", stat.S_IMODE(info.st_mode), 0, target, None)
                elif stat.S_ISDIR(info.st_mode):
                    yield Entry(path, "dir", stat.S_IMODE(info.st_mode), 0, "", None)
                    stack.append(path)
                elif stat.S_ISREG(info.st_mode):
                    yield Entry(
                        path, "file", stat.S_IMODE(info.st_mode), info.st_size, "", _file_opener(item.path)
                    )
                else:
                    yield Entry(path, "other", stat.S_IMODE(info.st_mode), 0, "", None)


def _file_opener(path: str) -> Callable[[], IO[bytes]]:
    def opener() -> IO[bytes]:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
        return os.fdopen(fd, "rb")

    return opener
