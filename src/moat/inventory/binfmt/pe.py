"""The PE/COFF section table (Windows executables), read with struct: no library needed for this much."""

from __future__ import annotations

import struct
from typing import IO

from moat.errors import ParseError
from moat.inventory.binfmt.executable import MAX_SECTIONS, Executable, Region

SECTION_HEADER_SIZE = 40
SCN_CNT_INITIALIZED_DATA = 0x00000040
SCN_MEM_EXECUTE = 0x20000000
SCN_MEM_READ = 0x40000000
SCN_MEM_WRITE = 0x80000000
SCN_ALIGN_MASK = 0x00F00000
OPTIONAL_MAGIC_PE32 = 0x10B
OPTIONAL_MAGIC_PE32_PLUS = 0x20B


def open_pe(stream: IO[bytes], file_size: int) -> Executable | None:
    """Parse a PE file's headers; None for an MZ file that is not PE (a DOS program)."""
    exe = Executable(format="pe", stream=stream, file_size=file_size)
    if file_size < 0x40:
        return None
    (pe_offset,) = struct.unpack("<I", exe.read_file(0x3C, 4))
    if pe_offset + 24 > file_size or exe.read_file(pe_offset, 4) != b"PE\0\0":
        return None
    _machine, count, _, _, _, optional_size, _ = struct.unpack("<HHIIIHH", exe.read_file(pe_offset + 4, 20))
    if count > MAX_SECTIONS:
        raise ParseError(f"pe: {count} sections, more than a real binary has")
    optional_offset = pe_offset + 24
    image_base = 0
    if optional_size >= 2:
        (magic,) = struct.unpack("<H", exe.read_file(optional_offset, 2))
        if magic == OPTIONAL_MAGIC_PE32_PLUS and optional_size >= 32:
            (image_base,) = struct.unpack("<Q", exe.read_file(optional_offset + 24, 8))
        elif magic == OPTIONAL_MAGIC_PE32 and optional_size >= 32:
            (image_base,) = struct.unpack("<I", exe.read_file(optional_offset + 28, 4))
            exe.pointer_size = 4
        else:
            raise ParseError(f"pe: unknown optional header magic {magic:#x}")
    table = exe.read_file(optional_offset + optional_size, count * SECTION_HEADER_SIZE)
    for index in range(count):
        entry = table[index * SECTION_HEADER_SIZE : (index + 1) * SECTION_HEADER_SIZE]
        raw_name, virtual_size, virtual_addr, raw_size, raw_offset = struct.unpack("<8sIIII", entry[:24])
        (characteristics,) = struct.unpack("<I", entry[36:40])
        size = min(virtual_size, raw_size) if virtual_size else raw_size
        exe.sections.append(
            Region(
                name=raw_name.rstrip(b"\0").decode("latin-1"),
                addr=image_base + virtual_addr,
                offset=raw_offset,
                size=size,
                writable=bool(characteristics & SCN_MEM_WRITE),
                executable=bool(characteristics & SCN_MEM_EXECUTE),
            )
        )
        plain_data = SCN_CNT_INITIALIZED_DATA | SCN_MEM_READ | SCN_MEM_WRITE
        if (
            exe.go_data_start is None
            and virtual_addr
            and size
            and characteristics & ~SCN_ALIGN_MASK == plain_data
        ):
            exe.go_data_start = image_base + virtual_addr
    return exe
