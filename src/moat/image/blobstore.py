"""Random access to the files of an OCI layout, in a directory or inside an uncompressed tarball.

Archives are never extracted: the tar is indexed once (member name → data offset and size) and
each blob is read in place through a bounded slice of the archive file. Compressed archives
(``docker save | gzip``) are first decompressed into Moat's scratch directory, because tar members
cannot be reached at random inside a compressed stream.
"""

from __future__ import annotations

import contextlib
import io
import os
import posixpath
import shutil
import tarfile
import tempfile
from abc import ABC, abstractmethod
from typing import IO, Any

from moat.errors import SourceError
from moat.image.layers import DECODE_ERRORS, decompressing_reader, normalize_member_path
from moat.image.manifest import DIGEST_RE, MAX_JSON_BYTES

MAX_MEMBERS = 1_000_000
MAX_LINK_HOPS = 16


class SliceReader(io.RawIOBase):
    """Reads ``size`` bytes of a file starting at ``offset``; its own handle, so slices don't clash."""

    def __init__(self, path: str, offset: int, size: int) -> None:
        self._handle = open(path, "rb")  # noqa: SIM115 - closed in close()
        self._handle.seek(offset)
        self._remaining = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._remaining <= 0:
            return 0
        view = memoryview(buffer)[: min(len(buffer), self._remaining)]
        n = self._handle.readinto(view) or 0
        if n == 0:
            raise SourceError("archive ends inside a member (truncated)")
        self._remaining -= n
        return n

    def close(self) -> None:
        self._handle.close()
        super().close()


class FileStore(ABC):
    """Named files of a layout or archive (``blobs/sha256/…``, ``manifest.json`` …)."""

    where: str

    @abstractmethod
    def exists(self, name: str) -> bool: ...

    @abstractmethod
    def size(self, name: str) -> int: ...

    @abstractmethod
    def open(self, name: str) -> IO[bytes]: ...

    def read(self, name: str, limit: int = MAX_JSON_BYTES) -> bytes:
        if not self.exists(name):
            raise SourceError(f"{self.where}: {name} is missing")
        if self.size(name) > limit:
            raise SourceError(f"{self.where}: {name} is larger than {limit} bytes")
        with self.open(name) as handle:
            return handle.read(limit + 1)

    def names(self) -> list[str]:
        return []


def blob_name(digest: str) -> str:
    """The path of a blob in an OCI layout; the digest is checked so it cannot name another file."""
    if not DIGEST_RE.match(digest):
        raise SourceError(f"invalid digest {digest!r}")
    algorithm, _, hexdigest = digest.partition(":")
    return f"blobs/{algorithm}/{hexdigest}"


class DirStore(FileStore):
    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)
        self.where = root

    def _path(self, name: str) -> str:
        normalized = normalize_member_path(name)
        if normalized is None:
            raise SourceError(f"{self.where}: {name!r} points outside the layout")
        path = os.path.realpath(os.path.join(self.root, normalized))
        if not path.startswith(self.root + os.sep):
            raise SourceError(f"{self.where}: {name!r} resolves outside the layout")
        return path

    def exists(self, name: str) -> bool:
        return os.path.isfile(self._path(name))

    def size(self, name: str) -> int:
        return os.path.getsize(self._path(name))

    def open(self, name: str) -> IO[bytes]:
        try:
            return open(self._path(name), "rb")
        except OSError as exc:
            raise SourceError(f"{self.where}: cannot open {name}: {exc.strerror}") from exc


class TarStore(FileStore):
    """The members of an uncompressed tar, read in place; symlinked members (docker save uses
    them for repeated layers) are followed inside the archive only."""

    def __init__(self, path: str, scratch: str | None = None) -> None:
        self.where = path
        self._cleanup: str | None = None
        self.path = self._ensure_uncompressed(path, scratch)
        self._members: dict[str, tuple[int, int]] = {}
        self._links: dict[str, tuple[str, bool]] = {}
        self._index()

    def _ensure_uncompressed(self, path: str, scratch: str | None) -> str:
        try:
            with open(path, "rb") as handle:
                head = handle.read(4)
        except OSError as exc:
            raise SourceError(f"{path}: cannot open ({exc.strerror})") from exc
        if not (head.startswith(b"\x1f\x8b") or head.startswith(b"\x28\xb5\x2f\xfd")):
            return path
        fd, plain = tempfile.mkstemp(prefix="archive-", suffix=".tar", dir=scratch)
        self._cleanup = plain
        try:
            with open(path, "rb") as raw, os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(decompressing_reader(raw), out, 1024 * 1024)
        except DECODE_ERRORS as exc:
            self.close()
            raise SourceError(f"{path}: corrupt compressed archive ({exc})") from exc
        return plain

    def _index(self) -> None:
        try:
            with tarfile.open(self.path, mode="r:") as tar:
                for count, member in enumerate(tar):
                    if count > MAX_MEMBERS:
                        raise SourceError(f"{self.where}: more than {MAX_MEMBERS} members")
                    name = normalize_member_path(member.name)
                    if not name:
                        continue
                    if member.isreg() and not member.issparse():
                        self._members[name] = (member.offset_data, member.size)
                    elif member.issym() or member.islnk():
                        self._links[name] = (member.linkname, member.islnk())
        except tarfile.TarError as exc:
            raise SourceError(f"{self.where}: not a readable tar archive ({exc})") from exc
        except OSError as exc:
            raise SourceError(f"{self.where}: cannot read ({exc.strerror or exc})") from exc

    def _resolve(self, name: str) -> str | None:
        """The regular member a name leads to; hard links name their target from the archive root,
        symlinks relative to their own directory, and neither may leave the archive."""
        current = normalize_member_path(name)
        for _ in range(MAX_LINK_HOPS):
            if current is None:
                return None
            if current in self._members:
                return current
            link = self._links.get(current)
            if link is None:
                return None
            target, is_hard = link
            if target.startswith("/"):
                return None
            current = normalize_member_path(
                target if is_hard else posixpath.normpath(posixpath.join(posixpath.dirname(current), target))
            )
        return None

    def exists(self, name: str) -> bool:
        return self._resolve(name) is not None

    def size(self, name: str) -> int:
        resolved = self._resolve(name)
        if resolved is None:
            raise SourceError(f"{self.where}: {name} is missing")
        return self._members[resolved][1]

    def open(self, name: str) -> IO[bytes]:
        resolved = self._resolve(name)
        if resolved is None:
            raise SourceError(f"{self.where}: {name} is missing")
        offset, size = self._members[resolved]
        archive_size = os.path.getsize(self.path)
        if offset + size > archive_size:
            raise SourceError(f"{self.where}: {name} extends past the end of the archive (truncated)")
        return io.BufferedReader(SliceReader(self.path, offset, size), 1024 * 1024)

    def names(self) -> list[str]:
        return sorted(set(self._members) | set(self._links))

    def close(self) -> None:
        if self._cleanup:
            with contextlib.suppress(OSError):
                os.unlink(self._cleanup)
            self._cleanup = None
