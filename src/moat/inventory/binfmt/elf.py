"""ELF headers through pyelftools, after checking the header tables fit inside the file.

pyelftools trusts ``e_shnum``/``e_phnum`` (and the extended counts hidden in section 0), so a
crafted header could make it walk billions of entries; the counts and table extents are checked
against the real file size before anything is iterated.
"""

from __future__ import annotations

from typing import IO

from elftools.elf.constants import P_FLAGS, SH_FLAGS
from elftools.elf.elffile import ELFFile

from moat.errors import ParseError
from moat.inventory.binfmt.executable import MAX_SECTIONS, MAX_SEGMENTS, Executable, Region

GO_BUILDINFO_SECTION = ".go.buildinfo"


def open_elf(stream: IO[bytes], file_size: int) -> Executable:
    try:
        return _parse(stream, file_size)
    except ParseError:
        raise
    except Exception as exc:  # pyelftools raises ELFError, construct errors, struct errors ...
        raise ParseError(f"elf: corrupt headers ({type(exc).__name__}: {exc})") from exc


def _parse(stream: IO[bytes], file_size: int) -> Executable:
    elf = ELFFile(stream)
    exe = Executable(
        format="elf",
        stream=stream,
        file_size=file_size,
        little_endian=elf.little_endian,
        pointer_size=8 if elf.elfclass == 64 else 4,
    )
    _check_table(file_size, "section", elf["e_shoff"], elf["e_shentsize"], elf.num_sections(), MAX_SECTIONS)
    _check_table(file_size, "program", elf["e_phoff"], elf["e_phentsize"], elf.num_segments(), MAX_SEGMENTS)
    for index in range(elf.num_segments()):
        header = elf.get_segment(index).header
        if header["p_type"] != "PT_LOAD":
            continue
        flags = header["p_flags"]
        exe.segments.append(
            Region(
                name=f"LOAD#{index}",
                addr=header["p_vaddr"],
                offset=header["p_offset"],
                size=_clamp(header["p_offset"], header["p_filesz"], file_size),
                writable=bool(flags & P_FLAGS.PF_W),
                executable=bool(flags & P_FLAGS.PF_X),
            )
        )
    for index in range(elf.num_sections()):
        section = elf.get_section(index)
        header = section.header
        in_file = header["sh_type"] != "SHT_NOBITS"
        exe.sections.append(
            Region(
                name=section.name,
                addr=header["sh_addr"] if header["sh_flags"] & SH_FLAGS.SHF_ALLOC else 0,
                offset=header["sh_offset"],
                size=header["sh_size"] if in_file else 0,
                writable=bool(header["sh_flags"] & SH_FLAGS.SHF_WRITE),
                executable=bool(header["sh_flags"] & SH_FLAGS.SHF_EXECINSTR),
            )
        )
    exe.go_data_start = _go_data_start(exe)
    return exe


def _check_table(file_size: int, what: str, offset: int, entry_size: int, count: int, limit: int) -> None:
    if count == 0:
        return
    if count > limit:
        raise ParseError(f"elf: {count} {what} headers, more than the {limit} a real binary has")
    if offset + entry_size * count > file_size:
        raise ParseError(f"elf: {what} header table lies past the end of the file")


def _clamp(offset: int, size: int, file_size: int) -> int:
    """The part of a segment that is really in the file (hostile headers overstate sizes)."""
    return max(0, min(size, file_size - offset))


def _go_data_start(exe: Executable) -> int | None:
    """Go looks in .go.buildinfo, or without section headers in the first writable, non-exec segment."""
    section = exe.section(GO_BUILDINFO_SECTION)
    if section is not None and section.addr:
        return section.addr
    for segment in exe.segments:
        if segment.writable and not segment.executable:
            return segment.addr
    return None
