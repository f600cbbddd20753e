"""A format-neutral view of an executable: its sections, its loaded segments, bounded reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import IO

from moat.errors import ParseError
from moat.inventory.analyzer import FileInput

ELF_MAGIC = b"\x7fELF"
PE_MAGIC = b"MZ"
MACHO_MAGICS = (b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"\xfe\xed\xfa\xcf", b"\xfe\xed\xfa\xce")

MAX_SECTIONS = 4096
"""Real binaries have tens of sections; thousands means a crafted header we should not walk."""
MAX_SEGMENTS = 1024
MAX_READ = 64 * 1024 * 1024
"""The largest single read any caller may ask for, whatever a header claims."""


@dataclass(slots=True, frozen=True)
class Region:
    """A piece of the file that is mapped at ``addr`` when the program runs.

    ``size`` counts only the bytes present in the file (a .bss tail has none).
    """

    name: str
    addr: int
    offset: int
    size: int
    writable: bool = False
    executable: bool = False


@dataclass(slots=True)
class Executable:
    """An opened executable: what its headers say, plus reads clamped to the real file."""

    format: str
    """elf, pe or macho."""
    stream: IO[bytes]
    file_size: int
    little_endian: bool = True
    pointer_size: int = 8
    sections: list[Region] = field(default_factory=list)
    segments: list[Region] = field(default_factory=list)
    go_data_start: int | None = None
    """Where Go's own reader starts looking for build info (format-specific rule)."""

    def section(self, name: str) -> Region | None:
        for region in self.sections:
            if region.name == name:
                return region
        return None

    def read_file(self, offset: int, size: int) -> bytes:
        """Read exactly ``size`` bytes at a file offset, or raise ParseError when the file is shorter."""
        if offset + size > self.file_size:
            raise ParseError(f"{self.format}: data at offset {offset} (+{size}) lies past the end of the file")
        if size < 0 or offset < 0 or size > MAX_READ:
            raise ParseError(f"{self.format}: refusing to read {size} bytes at offset {offset}")
        self.stream.seek(offset)
        data = self.stream.read(size)
        if len(data) != size:
            raise ParseError(f"{self.format}: file truncated at offset {offset}")
        return data

    def section_data(self, region: Region, limit: int) -> bytes:
        """A section's bytes, refusing sections larger than ``limit``."""
        if region.size > limit:
            raise ParseError(f"{self.format}: section {region.name} is {region.size} bytes, over the {limit} limit")
        return self.read_file(region.offset, region.size)

    def read_at(self, addr: int, size: int, *, partial: bool = False) -> bytes:
        """Bytes at a virtual address, found through the loaded segments, then the sections.

        With ``partial`` the read stops at the end of the region holding ``addr`` (for searches
        that only need "up to N bytes"); otherwise the whole range must be present.
        """
        for region in (*self.segments, *self.sections):
            if region.size and region.addr <= addr < region.addr + region.size:
                available = region.addr + region.size - addr
                if size > available:
                    if not partial:
                        raise ParseError(f"{self.format}: {size} bytes at {addr:#x} run past their segment")
                    size = available
                offset = region.offset + (addr - region.addr)
                if partial:
                    size = max(0, min(size, self.file_size - offset))
                return self.read_file(offset, size)
        raise ParseError(f"{self.format}: address {addr:#x} is not mapped from the file")


def sniff(head: bytes) -> str | None:
    """The executable format a file's first bytes announce, or None for anything else."""
    if head.startswith(ELF_MAGIC):
        return "elf"
    if head.startswith(PE_MAGIC):
        return "pe"
    if head[:4] in MACHO_MAGICS:
        return "macho"
    return None


def open_executable(stream: IO[bytes], file_size: int) -> Executable | None:
    """Parse the headers of an ELF, PE or Mach-O file; None when the file is none of those.

    Raises ParseError when the magic matches but the headers are corrupt or hostile.
    """
    stream.seek(0)
    kind = sniff(stream.read(4))
    if kind is None:
        return None
    if kind == "elf":
        from moat.inventory.binfmt.elf import open_elf

        return open_elf(stream, file_size)
    if kind == "pe":
        from moat.inventory.binfmt.pe import open_pe

        return open_pe(stream, file_size)
    from moat.inventory.binfmt.macho import open_macho

    return open_macho(stream, file_size)


_MEMO_KEY = "executable"


def executable_of(file: FileInput) -> Executable | None:
    """The parsed headers of an analyzed file, parsed once however many analyzers ask (the Go and
    the Rust analyzers both look at every executable); None when it is not an executable.

    A ParseError is remembered too, so each asking analyzer reports it.
    """
    if _MEMO_KEY not in file.memo:
        try:
            file.memo[_MEMO_KEY] = open_executable(file.open(), file.size)
        except ParseError as exc:
            file.memo[_MEMO_KEY] = exc
    value = file.memo[_MEMO_KEY]
    if isinstance(value, ParseError):
        raise value
    return value
