"""rpm's own "ndb" package store: the ``Packages.db`` file of SUSE and openSUSE.

Layout (rpm ``lib/backend/ndb/rpmpkg.c``, all numbers little-endian): a 32-byte header (magic
``RpmP``, version 0, generation, number of slot pages, next package index) at the start of the first
of ``slotnpages`` 4096-byte slot pages. Each slot is 16 bytes (magic ``Slot``, package index, block
offset, block count; blocks are 16 bytes). A block offset of zero marks a free slot. A blob at its
block offset starts with magic ``BlbS``, the package index, a timestamp and the blob length, and ends
with an adler32, the length again and magic ``BlbE``.

rpm lists packages in block-offset order (``rpmpkgList``), and so does this reader.
"""

from __future__ import annotations

import struct
from collections.abc import Generator
from dataclasses import dataclass
from typing import IO

from moat.errors import ParseError
from moat.inventory.rpmdb.header import MAX_BLOB_BYTES

DB_MAGIC = b"RpmP"
SLOT_MAGIC = b"Slot"
BLOB_HEAD_MAGIC = b"BlbS"
BLOB_TAIL_MAGIC = b"BlbE"
DB_VERSION = 0

PAGE_SIZE = 4096
SLOT_SIZE = 16
BLOCK_SIZE = 16
HEADER_SIZE = 32
BLOB_HEAD_SIZE = 16
BLOB_TAIL_SIZE = 12


@dataclass(frozen=True, slots=True)
class _Slot:
    pkgidx: int
    blkoff: int
    blkcnt: int


def _stream_size(stream: IO[bytes]) -> int:
    stream.seek(0, 2)
    size = stream.tell()
    stream.seek(0)
    return size


def read_slots(stream: IO[bytes]) -> list[_Slot]:
    """The used slots, validated against the file size, in block-offset order."""
    size = _stream_size(stream)
    header = stream.read(HEADER_SIZE)
    if len(header) < HEADER_SIZE:
        raise ParseError("rpm ndb: file is too short for a header")
    magic, version, _generation, slot_pages, _next = struct.unpack_from("<4sIIII", header)
    if magic != DB_MAGIC:
        raise ParseError("rpm ndb: bad magic (not a Packages.db)")
    if version != DB_VERSION:
        raise ParseError(f"rpm ndb: unsupported version {version}")
    if size % BLOCK_SIZE:
        raise ParseError(f"rpm ndb: file size {size} is not a multiple of {BLOCK_SIZE}")
    if slot_pages < 1 or slot_pages * PAGE_SIZE > size:
        raise ParseError(f"rpm ndb: {slot_pages} slot pages do not fit in a {size}-byte file")
    file_blocks = size // BLOCK_SIZE
    min_blkoff = slot_pages * (PAGE_SIZE // BLOCK_SIZE)
    slots: list[_Slot] = []
    stream.seek(0)
    for page_no in range(slot_pages):
        page = stream.read(PAGE_SIZE)
        if len(page) != PAGE_SIZE:
            raise ParseError(f"rpm ndb: slot page {page_no} is truncated")
        start = HEADER_SIZE if page_no == 0 else 0
        for magic, pkgidx, blkoff, blkcnt in struct.iter_unpack("<4sIII", page[start:]):
            if magic != SLOT_MAGIC:
                raise ParseError(f"rpm ndb: bad slot magic on slot page {page_no}")
            if blkoff == 0:
                continue
            if blkoff + blkcnt > file_blocks:
                raise ParseError(f"rpm ndb: package {pkgidx} lies past the end of the file")
            if pkgidx == 0 or blkcnt == 0 or blkoff < min_blkoff:
                raise ParseError(f"rpm ndb: invalid slot (package {pkgidx}, block {blkoff}, count {blkcnt})")
            slots.append(_Slot(pkgidx, blkoff, blkcnt))
    slots.sort(key=lambda slot: slot.blkoff)
    return slots


def iter_blobs(stream: IO[bytes]) -> Generator[bytes, None, None]:
    """Yield every package's header blob, in the order rpm lists them."""
    for slot in read_slots(stream):
        yield _read_blob(stream, slot)


def _read_blob(stream: IO[bytes], slot: _Slot) -> bytes:
    stream.seek(slot.blkoff * BLOCK_SIZE)
    head = stream.read(BLOB_HEAD_SIZE)
    if len(head) != BLOB_HEAD_SIZE:
        raise ParseError(f"rpm ndb: blob of package {slot.pkgidx} is truncated")
    magic, pkgidx, _stamp, length = struct.unpack("<4sIII", head)
    if magic != BLOB_HEAD_MAGIC or pkgidx != slot.pkgidx:
        raise ParseError(f"rpm ndb: blob of package {slot.pkgidx} has a bad head")
    if length > MAX_BLOB_BYTES:
        raise ParseError(f"rpm ndb: blob of package {slot.pkgidx} is too large ({length} bytes)")
    if slot.blkcnt != -(-(BLOB_HEAD_SIZE + length + BLOB_TAIL_SIZE) // BLOCK_SIZE):
        raise ParseError(f"rpm ndb: blob of package {slot.pkgidx} does not fill its {slot.blkcnt} blocks")
    blob = stream.read(length)
    if len(blob) != length:
        raise ParseError(f"rpm ndb: blob of package {slot.pkgidx} is truncated")
    stream.seek((slot.blkoff + slot.blkcnt) * BLOCK_SIZE - BLOB_TAIL_SIZE)
    tail = stream.read(BLOB_TAIL_SIZE)
    if len(tail) != BLOB_TAIL_SIZE:
        raise ParseError(f"rpm ndb: blob of package {slot.pkgidx} is truncated")
    _adler, tail_length, tail_magic = struct.unpack("<II4s", tail)
    if tail_magic != BLOB_TAIL_MAGIC or tail_length != length:
        raise ParseError(f"rpm ndb: blob of package {slot.pkgidx} has a bad tail")
    return blob
