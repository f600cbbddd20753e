"""ELF headers: the program header table (loaded segments) and the section header table.

Every executable in an image reaches the Go and Rust analyzers, so this runs thousands of times a
scan. pyelftools parses each header through ``construct`` (about 7 ms per binary measured on
Debian's /usr/bin, 9 s for 1,300 files); reading the two tables with one ``struct.iter_unpack``
each costs a fraction of that, so the hot path does it directly. The tests check the result
against pyelftools. Counts and table extents are bounded by the file size before anything is read.
"""

from __future__ import annotations

import struct
from typing import IO

from moat.errors import ParseError
from moat.inventory.binfmt.executable import MAX_SECTIONS, MAX_SEGMENTS, Executable, Region

GO_BUILDINFO_SECTION = ".go.buildinfo"
PT_LOAD = 1
PF_X, PF_W = 0x1, 0x2
SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR = 0x1, 0x2, 0x4
SHT_NOBITS = 8
PN_XNUM = 0xFFFF
MAX_NAME_TABLE = 16 * 1024 * 1024

# (header layout after e_ident, section header layout, program header layout) per ELF class
_LAYOUTS = {
    1: ("HHIIIIIHHHHHH", "IIIIIIIIII", "IIIIIIII"),
    2: ("HHIQQQIHHHHHH", "IIQQQQIIQQ", "IIQQQQQQ"),
}


def open_elf(stream: IO[bytes], file_size: int) -> Executable:
    exe = Executable(format="elf", stream=stream, file_size=file_size)
    ident = exe.read_file(0, 16)
    elf_class, data = ident[4], ident[5]
    if elf_class not in _LAYOUTS or data not in (1, 2):
        raise ParseError(f"elf: unknown class {elf_class} or byte order {data}")
    order = "<" if data == 1 else ">"
    header_fmt, section_fmt, program_fmt = (order + f for f in _LAYOUTS[elf_class])
    exe.little_endian = data == 1
    exe.pointer_size = 4 * elf_class
    header = struct.unpack(header_fmt, exe.read_file(16, struct.calcsize(header_fmt)))
    phoff, shoff = header[4], header[5]
    phentsize, phnum, shentsize, shnum, shstrndx = header[8:13]
    sections = _table(exe, "section", shoff, shentsize, shnum, section_fmt)
    if shoff and shnum == 0:  # extended numbering: the real count is section 0's sh_size
        first = _table(exe, "section", shoff, shentsize, 1, section_fmt)
        if first:
            sections = _table(exe, "section", shoff, shentsize, first[0][5], section_fmt)
    if phnum == PN_XNUM and sections:
        phnum = sections[0][7]  # extended program header count lives in section 0's sh_info
    for index, (p_type, *rest) in enumerate(_table(exe, "program", phoff, phentsize, phnum, program_fmt)):
        if p_type != PT_LOAD:
            continue
        if elf_class == 2:
            flags, offset, vaddr, _paddr, filesz = rest[:5]
        else:
            offset, vaddr, _paddr, filesz, _memsz, flags = rest[:6]
        exe.segments.append(
            Region(
                name=f"LOAD#{index}",
                addr=vaddr,
                offset=offset,
                size=max(0, min(filesz, file_size - offset)),
                writable=bool(flags & PF_W),
                executable=bool(flags & PF_X),
            )
        )
    names = _name_table(exe, sections, shstrndx)
    for name_offset, sh_type, flags, addr, offset, size, *_ in sections:
        exe.sections.append(
            Region(
                name=_name(names, name_offset),
                addr=addr if flags & SHF_ALLOC else 0,
                offset=offset,
                size=0 if sh_type == SHT_NOBITS else size,
                writable=bool(flags & SHF_WRITE),
                executable=bool(flags & SHF_EXECINSTR),
            )
        )
    exe.go_data_start = _go_data_start(exe)
    return exe


def _table(exe: Executable, what: str, offset: int, entry_size: int, count: int, fmt: str) -> list[tuple[int, ...]]:
    if not offset or not count:
        return []
    limit = MAX_SECTIONS if what == "section" else MAX_SEGMENTS
    if count > limit:
        raise ParseError(f"elf: {count} {what} headers, more than the {limit} a real binary has")
    size = struct.calcsize(fmt)
    if entry_size < size:
        raise ParseError(f"elf: {what} header entries of {entry_size} bytes are too small")
    if offset + entry_size * count > exe.file_size:
        raise ParseError(f"elf: {what} header table lies past the end of the file")
    raw = exe.read_file(offset, entry_size * count)
    return [struct.unpack_from(fmt, raw, index * entry_size) for index in range(count)]


def _name_table(exe: Executable, sections: list[tuple[int, ...]], index: int) -> bytes:
    if not sections or not 0 < index < len(sections):
        return b""
    offset, size = sections[index][4], sections[index][5]
    if size > MAX_NAME_TABLE:
        raise ParseError(f"elf: section name table of {size} bytes is over the limit")
    return exe.read_file(offset, size)


def _name(table: bytes, offset: int) -> str:
    if offset >= len(table):
        return ""
    end = table.find(b"\0", offset)
    return table[offset : end if end >= 0 else len(table)].decode("latin-1")


def _go_data_start(exe: Executable) -> int | None:
    """Go looks in .go.buildinfo, or without section headers in the first writable, non-exec segment."""
    section = exe.section(GO_BUILDINFO_SECTION)
    if section is not None and section.addr:
        return section.addr
    for segment in exe.segments:
        if segment.writable and not segment.executable:
            return segment.addr
    return None
