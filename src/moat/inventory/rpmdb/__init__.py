"""Reading rpm package databases without librpm.

rpm has stored its installed-package headers in three containers over the years: a Berkeley DB
hash file (``Packages``), its own "ndb" store (``Packages.db``, SUSE) and SQLite (``rpmdb.sqlite``).
The container is recognised by its magic bytes, not its file name, so a database copied under
another name is still read correctly; each header blob is then decoded by :mod:`.header`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import IO

from moat.errors import ParseError
from moat.inventory.rpmdb import bdb, ndb, sqlite
from moat.inventory.rpmdb.header import RpmHeaderInfo, parse_header

__all__ = ["MAX_PACKAGES", "RpmDatabase", "RpmHeaderInfo", "detect_format", "parse_header", "read_rpmdb"]

MAX_PACKAGES = 200_000
"""More headers than any real system has installed; a database claiming more is not trusted."""
MAX_WARNINGS = 20


@dataclass(slots=True)
class RpmDatabase:
    """The headers of one database, in the order rpm itself lists them."""

    format: str
    """bdb, ndb or sqlite."""
    headers: list[RpmHeaderInfo] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    """Headers rpm would skip too (corrupt blobs), one line each."""


def detect_format(stream: IO[bytes]) -> str:
    """``bdb``, ``ndb`` or ``sqlite`` from the file's magic; ParseError for anything else."""
    stream.seek(0)
    head = stream.read(16)
    stream.seek(0)
    if head == sqlite.SQLITE_MAGIC:
        return "sqlite"
    if head[:4] == ndb.DB_MAGIC:
        return "ndb"
    magic = head[12:16]
    if len(magic) == 4 and {int.from_bytes(magic, "little"), int.from_bytes(magic, "big")} & bdb.MAGICS:
        return "bdb"  # a btree is refused by the bdb reader, with a message that says why
    raise ParseError("rpm database: unrecognised format (not Berkeley DB, ndb or SQLite)")


def _blobs(kind: str, stream: IO[bytes]) -> Generator[bytes, None, None]:
    if kind == "sqlite":
        return sqlite.iter_blobs(stream)
    if kind == "ndb":
        return ndb.iter_blobs(stream)
    return bdb.iter_blobs(stream)


def read_rpmdb(stream: IO[bytes]) -> RpmDatabase:
    """Every header of an rpm database, gpg-pubkey pseudo-packages included.

    A structurally broken database raises :class:`ParseError`; a single header blob that does not
    decode is skipped with a warning, as ``rpm -qa`` skips it.
    """
    kind = detect_format(stream)
    result = RpmDatabase(format=kind)
    skipped = 0
    with contextlib.closing(_blobs(kind, stream)) as blobs:
        for index, blob in enumerate(blobs):
            if index >= MAX_PACKAGES:
                raise ParseError(f"rpm database: more than {MAX_PACKAGES} packages")
            try:
                result.headers.append(parse_header(blob))
            except ParseError as exc:
                skipped += 1
                if len(result.warnings) < MAX_WARNINGS:
                    result.warnings.append(f"skipped package header #{index + 1}: {exc}")
    if skipped > len(result.warnings):
        result.warnings.append(f"skipped {skipped - len(result.warnings)} more corrupt package headers")
    return result
