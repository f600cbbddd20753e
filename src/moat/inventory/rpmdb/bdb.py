"""Berkeley DB hash databases: the ``Packages`` file of rpm up to 4.15 (RHEL/CentOS <= 8, Amazon Linux 2).

Only what rpm's own read-only reader needs is supported: the hash access method, pages in either
byte order, values stored on the page or on a chain of overflow pages. The walk goes bucket by
bucket, following each bucket's page chain, which is the order ``rpm -qa`` lists packages in.

Page layout (Berkeley DB ``db_page.h``): a 26-byte header (lsn, pgno, prev_pgno, next_pgno,
entries, hf_offset, level, type), then ``entries`` 16-bit item offsets; items alternate key and
value and are packed from the end of the page downwards. An overflow page carries ``hf_offset``
bytes of its value right after the header.
"""

from __future__ import annotations

import struct
from collections.abc import Generator
from typing import IO

from moat.errors import ParseError
from moat.inventory.rpmdb.header import MAX_BLOB_BYTES

HASH_MAGIC = 0x00061561
BTREE_MAGIC = 0x00053162
MAGICS = frozenset({HASH_MAGIC, BTREE_MAGIC})

PAGE_HEADER_SIZE = 26
P_HASH_UNSORTED = 2
P_OVERFLOW = 7
P_HASHMETA = 8
P_HASH = 13

H_KEYDATA = 1
H_OFFPAGE = 3

_HASH_PAGE_TYPES = frozenset({P_HASH_UNSORTED, P_HASH})
_DBMETA_CHKSUM = 0x01


class _Reader:
    """Reads whole pages by number from a seekable stream, in the database's byte order."""

    def __init__(self, stream: IO[bytes], pagesize: int, last_pgno: int, order: str) -> None:
        self.stream = stream
        self.pagesize = pagesize
        self.last_pgno = last_pgno
        self.order = order

    def page(self, pgno: int) -> bytes:
        if pgno < 1 or pgno > self.last_pgno:
            raise ParseError(f"rpm bdb: page number {pgno} is outside the database (last {self.last_pgno})")
        self.stream.seek(pgno * self.pagesize)
        data = self.stream.read(self.pagesize)
        if len(data) != self.pagesize:
            raise ParseError(f"rpm bdb: page {pgno} is truncated")
        (stored,) = struct.unpack_from(self.order + "I", data, 8)
        if stored != pgno:
            raise ParseError(f"rpm bdb: page {pgno} says it is page {stored}")
        return data

    def u16(self, page: bytes, offset: int) -> int:
        return int(struct.unpack_from(self.order + "H", page, offset)[0])

    def u32(self, page: bytes, offset: int) -> int:
        return int(struct.unpack_from(self.order + "I", page, offset)[0])


def _stream_size(stream: IO[bytes]) -> int:
    stream.seek(0, 2)
    size = stream.tell()
    stream.seek(0)
    return size


def iter_blobs(stream: IO[bytes]) -> Generator[bytes, None, None]:
    """Yield every value (header blob) of a hash database, in rpm's cursor order.

    The record with key 0 is skipped: old rpm versions keep their next-instance counter there.
    """
    size = _stream_size(stream)
    meta = stream.read(512)
    if len(meta) < 512:
        raise ParseError("rpm bdb: file is too short for a Berkeley DB metadata page")
    order = _byte_order(meta)
    version, pagesize = struct.unpack_from(order + "II", meta, 16)
    if version < 8 or version > 10:
        raise ParseError(f"rpm bdb: unsupported hash version {version}")
    if pagesize < 512 or pagesize > 65536 or pagesize & (pagesize - 1):
        raise ParseError(f"rpm bdb: invalid page size {pagesize}")
    if meta[24] != 0:
        raise ParseError("rpm bdb: the database is encrypted")
    if meta[26] & _DBMETA_CHKSUM:
        raise ParseError("rpm bdb: page checksums are not supported")
    if meta[25] != P_HASHMETA:
        raise ParseError(f"rpm bdb: metadata page has type {meta[25]}, not a hash metadata page")
    (last_pgno,) = struct.unpack_from(order + "I", meta, 32)
    if (last_pgno + 1) * pagesize > size:
        raise ParseError(f"rpm bdb: file is truncated ({size} bytes, {last_pgno + 1} pages of {pagesize})")
    max_bucket, _high_mask, _low_mask = struct.unpack_from(order + "III", meta, 72)
    spares = struct.unpack_from(order + "32I", meta, 96)
    if max_bucket > last_pgno:
        raise ParseError(f"rpm bdb: {max_bucket + 1} buckets cannot fit in {last_pgno} pages")

    reader = _Reader(stream, pagesize, last_pgno, order)
    visited: set[int] = set()
    for bucket in range(max_bucket + 1):
        split_point = bucket.bit_length()
        if split_point >= len(spares):
            raise ParseError(f"rpm bdb: bucket {bucket} is beyond the spares table")
        pgno = bucket + spares[split_point]
        while pgno:
            if pgno in visited:
                raise ParseError(f"rpm bdb: page {pgno} is reached twice (a loop in the bucket chains)")
            visited.add(pgno)
            page = reader.page(pgno)
            if page[25] not in _HASH_PAGE_TYPES:
                raise ParseError(f"rpm bdb: bucket page {pgno} has type {page[25]}, not a hash page")
            yield from _page_values(reader, page, pgno)
            pgno = reader.u32(page, 16)


def _byte_order(meta: bytes) -> str:
    (little,) = struct.unpack_from("<I", meta, 12)
    (big,) = struct.unpack_from(">I", meta, 12)
    if little == HASH_MAGIC:
        return "<"
    if big == HASH_MAGIC:
        return ">"
    if BTREE_MAGIC in (little, big):
        raise ParseError("rpm bdb: a btree database, not the hash database rpm uses for Packages")
    raise ParseError("rpm bdb: not a Berkeley DB hash database (bad magic)")


def _page_values(reader: _Reader, page: bytes, pgno: int) -> Generator[bytes, None, None]:
    pagesize = reader.pagesize
    entries = reader.u16(page, 20)
    if PAGE_HEADER_SIZE + 2 * entries > pagesize:
        raise ParseError(f"rpm bdb: page {pgno} claims {entries} items")
    offsets = struct.unpack_from(f"{reader.order}{entries}H", page, PAGE_HEADER_SIZE)
    floor = PAGE_HEADER_SIZE + 2 * entries
    for index in range(0, entries - 1, 2):
        key_off, value_off = offsets[index], offsets[index + 1]
        key_end = pagesize if index == 0 else offsets[index - 1]
        if not floor <= value_off < key_off < key_end <= pagesize:
            raise ParseError(f"rpm bdb: page {pgno} item {index} has inconsistent offsets")
        key = _item(reader, page, key_off, key_end - key_off, pgno)
        if key == b"\0\0\0\0":
            continue
        yield _item(reader, page, value_off, key_off - value_off, pgno)


def _item(reader: _Reader, page: bytes, offset: int, length: int, pgno: int) -> bytes:
    kind = page[offset]
    if kind == H_KEYDATA:
        return page[offset + 1 : offset + length]
    if kind == H_OFFPAGE:
        if length != 12:
            raise ParseError(f"rpm bdb: page {pgno} has an off-page item of {length} bytes")
        first = reader.u32(page, offset + 4)
        total = reader.u32(page, offset + 8)
        return _overflow(reader, first, total)
    raise ParseError(f"rpm bdb: page {pgno} has an item of unsupported kind {kind}")


def _overflow(reader: _Reader, pgno: int, total: int) -> bytes:
    """Gather a value from its overflow chain; the chain must deliver exactly ``total`` bytes."""
    if total == 0 or total > MAX_BLOB_BYTES:
        raise ParseError(f"rpm bdb: overflow value of {total} bytes is out of range")
    if total > reader.last_pgno * (reader.pagesize - PAGE_HEADER_SIZE):
        raise ParseError(f"rpm bdb: overflow value of {total} bytes is larger than the file")
    chunks: list[bytes] = []
    remaining = total
    seen: set[int] = set()
    while remaining > 0:
        if pgno in seen:
            raise ParseError(f"rpm bdb: overflow chain loops at page {pgno}")
        seen.add(pgno)
        page = reader.page(pgno)
        if page[25] != P_OVERFLOW:
            raise ParseError(f"rpm bdb: page {pgno} in an overflow chain has type {page[25]}")
        length = reader.u16(page, 22)
        if length == 0 or length > remaining or PAGE_HEADER_SIZE + length > reader.pagesize:
            raise ParseError(f"rpm bdb: overflow page {pgno} holds an invalid length {length}")
        chunks.append(page[PAGE_HEADER_SIZE : PAGE_HEADER_SIZE + length])
        remaining -= length
        pgno = reader.u32(page, 16)
        if remaining and not pgno:
            raise ParseError("rpm bdb: overflow chain ends before the value does")
    return b"".join(chunks)
