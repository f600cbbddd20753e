"""The RPM header blob, as the rpm database stores one per installed package.

A stored header is ``il`` and ``dl`` (big-endian int32), then ``il`` index entries of 16 bytes
(tag, type, offset, count) and a data store of ``dl`` bytes the offsets point into. Every number is
untrusted: the counts are bounded the way rpm bounds them, and every entry is checked against the
data store before it is read, so a hostile blob costs at most its own size.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from moat.errors import ParseError

# Tag numbers (rpm's rpmtag.h).
TAG_HEADERIMAGE = 61
TAG_HEADERSIGNATURES = 62
TAG_HEADERIMMUTABLE = 63
TAG_SIGMD5 = 261
TAG_NAME = 1000
TAG_VERSION = 1001
TAG_RELEASE = 1002
TAG_EPOCH = 1003
TAG_SUMMARY = 1004
TAG_INSTALLTIME = 1008
TAG_SIZE = 1009
TAG_VENDOR = 1011
TAG_LICENSE = 1014
TAG_URL = 1020
TAG_ARCH = 1022
TAG_OLDFILENAMES = 1027
TAG_SOURCERPM = 1044
TAG_PROVIDENAME = 1047
TAG_REQUIRENAME = 1049
TAG_DIRINDEXES = 1116
TAG_BASENAMES = 1117
TAG_DIRNAMES = 1118
TAG_LONGSIZE = 5009
TAG_MODULARITYLABEL = 5096

_REGION_TAGS = frozenset({TAG_HEADERIMAGE, TAG_HEADERSIGNATURES, TAG_HEADERIMMUTABLE})

# Data types (rpmTagType).
TYPE_NULL = 0
TYPE_CHAR = 1
TYPE_INT8 = 2
TYPE_INT16 = 3
TYPE_INT32 = 4
TYPE_INT64 = 5
TYPE_STRING = 6
TYPE_BIN = 7
TYPE_STRING_ARRAY = 8
TYPE_I18NSTRING = 9

_STRING_TYPES = frozenset({TYPE_STRING, TYPE_STRING_ARRAY, TYPE_I18NSTRING})
_INT_FORMATS = {TYPE_CHAR: "B", TYPE_INT8: "B", TYPE_INT16: "H", TYPE_INT32: "I", TYPE_INT64: "Q"}

MAX_INDEX_ENTRIES = 0xFFFF
"""rpm refuses headers with more tags than this (hdrchkTags)."""
MAX_DATA_BYTES = 64 * 1024 * 1024
"""Bound on a header's data store; real headers (even texlive's) stay well below a few MB."""
MAX_BLOB_BYTES = 8 + 16 * MAX_INDEX_ENTRIES + MAX_DATA_BYTES
MAX_ARRAY_COUNT = 1 << 21
"""Bound on one entry's element count (the largest real file lists hold a few hundred thousand)."""

_ENTRY = struct.Struct(">iIiI")


@dataclass(frozen=True, slots=True)
class _Entry:
    type: int
    offset: int
    count: int


@dataclass(slots=True)
class RpmHeaderInfo:
    """What Moat keeps of one installed package's header."""

    name: str
    version: str
    release: str
    epoch: int | None = None
    arch: str | None = None
    source_rpm: str | None = None
    license: str | None = None
    vendor: str | None = None
    size: int | None = None
    sigmd5: str | None = None
    modularity_label: str | None = None
    summary: str | None = None
    provides: list[str] = field(default_factory=list)
    requires: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    """Installed paths (absolute, as rpm records them); they satisfy file requirements like /bin/sh."""

    @property
    def evr(self) -> str:
        """``[epoch:]version-release``, the epoch shown whenever the header has one (as rpm's %{EVR})."""
        base = f"{self.version}-{self.release}"
        return f"{self.epoch}:{base}" if self.epoch is not None else base


class Header:
    """Typed access to a validated header blob's entries."""

    def __init__(self, blob: bytes) -> None:
        if len(blob) < 8:
            raise ParseError(f"rpm header: {len(blob)} bytes is too short for a header")
        il, dl = struct.unpack_from(">II", blob, 0)
        if il < 1 or il > MAX_INDEX_ENTRIES:
            raise ParseError(f"rpm header: index count {il} is out of range")
        if dl > MAX_DATA_BYTES:
            raise ParseError(f"rpm header: data size {dl} is too large")
        store = 8 + 16 * il
        if store + dl > len(blob):
            raise ParseError(
                f"rpm header: index ({il} entries) and data ({dl} bytes) run past the {len(blob)}-byte blob"
            )
        self._blob = blob
        self._store = store
        self._dl = dl
        self._entries: dict[int, _Entry] = {}
        # Later entries win: rpm lets "dribble" entries after the immutable region replace earlier ones.
        for tag, type_, offset, count in _ENTRY.iter_unpack(blob[8:store]):
            if tag in _REGION_TAGS:
                continue
            if type_ > TYPE_I18NSTRING:
                raise ParseError(f"rpm header: tag {tag} has unknown type {type_}")
            if offset < 0 or offset >= dl:
                raise ParseError(f"rpm header: tag {tag} offset {offset} is outside the {dl}-byte data")
            if count > min(dl, MAX_ARRAY_COUNT):
                raise ParseError(f"rpm header: tag {tag} count {count} is out of range")
            self._entries[tag] = _Entry(type_, offset, count)

    def __contains__(self, tag: int) -> bool:
        return tag in self._entries

    def strings(self, tag: int) -> list[str]:
        """All strings of a STRING, STRING_ARRAY or I18NSTRING entry ([] when absent)."""
        entry = self._entries.get(tag)
        if entry is None:
            return []
        if entry.type not in _STRING_TYPES:
            raise ParseError(f"rpm header: tag {tag} has type {entry.type}, not a string")
        count = 1 if entry.type == TYPE_STRING else entry.count
        start = self._store + entry.offset
        parts = self._blob[start : self._store + self._dl].split(b"\0", count)
        if len(parts) <= count:
            raise ParseError(f"rpm header: strings of tag {tag} are not terminated inside the data")
        return [_decode(raw) for raw in parts[:count]]

    def string(self, tag: int) -> str | None:
        """The first string of an entry, or None when absent."""
        entry = self._entries.get(tag)
        if entry is None:
            return None
        if entry.type not in _STRING_TYPES:
            raise ParseError(f"rpm header: tag {tag} has type {entry.type}, not a string")
        start = self._store + entry.offset
        nul = self._blob.find(b"\0", start, self._store + self._dl)
        if nul < 0:
            raise ParseError(f"rpm header: string of tag {tag} is not terminated inside the data")
        return _decode(self._blob[start:nul])

    def numbers(self, tag: int) -> list[int]:
        """The values of an integer entry (unsigned, as rpm prints them)."""
        entry = self._entries.get(tag)
        if entry is None:
            return []
        fmt = _INT_FORMATS.get(entry.type)
        if fmt is None:
            raise ParseError(f"rpm header: tag {tag} has type {entry.type}, not an integer")
        width = struct.calcsize(fmt)
        if entry.offset + width * entry.count > self._dl:
            raise ParseError(f"rpm header: integers of tag {tag} run past the data")
        return list(struct.unpack_from(f">{entry.count}{fmt}", self._blob, self._store + entry.offset))

    def number(self, tag: int) -> int | None:
        values = self.numbers(tag)
        return values[0] if values else None

    def binary(self, tag: int) -> bytes | None:
        entry = self._entries.get(tag)
        if entry is None:
            return None
        if entry.type != TYPE_BIN:
            raise ParseError(f"rpm header: tag {tag} has type {entry.type}, not binary")
        if entry.offset + entry.count > self._dl:
            raise ParseError(f"rpm header: binary tag {tag} runs past the data")
        start = self._store + entry.offset
        return self._blob[start : start + entry.count]


def _decode(raw: bytes) -> str:
    """UTF-8, falling back to Latin-1: old packages carry vendor and summary text in legacy encodings."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _file_paths(header: Header) -> list[str]:
    """Installed paths, from the compressed (dirnames + basenames) or the legacy file list."""
    basenames = header.strings(TAG_BASENAMES)
    if not basenames:
        return header.strings(TAG_OLDFILENAMES)
    dirnames = header.strings(TAG_DIRNAMES)
    indexes = header.numbers(TAG_DIRINDEXES)
    if len(indexes) != len(basenames):
        raise ParseError(f"rpm header: {len(basenames)} basenames but {len(indexes)} dir indexes")
    paths = []
    for base, index in zip(basenames, indexes, strict=True):
        if index >= len(dirnames):
            raise ParseError(f"rpm header: dir index {index} out of range ({len(dirnames)} dirnames)")
        paths.append(dirnames[index] + base)
    return paths


def parse_header(blob: bytes) -> RpmHeaderInfo:
    """Decode the package facts Moat needs from one stored header blob.

    Raises :class:`ParseError` for a blob whose structure is invalid or lacks a name/version/release.
    """
    header = Header(blob)
    name = header.string(TAG_NAME)
    version = header.string(TAG_VERSION)
    release = header.string(TAG_RELEASE)
    if not name or version is None or release is None:
        raise ParseError("rpm header: no NAME, VERSION or RELEASE")
    sigmd5 = header.binary(TAG_SIGMD5)
    size = header.number(TAG_LONGSIZE)
    if size is None:
        size = header.number(TAG_SIZE)
    return RpmHeaderInfo(
        name=name,
        version=version,
        release=release,
        epoch=header.number(TAG_EPOCH),
        arch=header.string(TAG_ARCH),
        source_rpm=header.string(TAG_SOURCERPM),
        license=header.string(TAG_LICENSE),
        vendor=header.string(TAG_VENDOR),
        size=size,
        sigmd5=sigmd5.hex() if sigmd5 else None,
        modularity_label=header.string(TAG_MODULARITYLABEL),
        summary=header.string(TAG_SUMMARY),
        provides=header.strings(TAG_PROVIDENAME),
        requires=header.strings(TAG_REQUIRENAME),
        files=_file_paths(header),
    )
