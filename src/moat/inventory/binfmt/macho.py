"""Mach-O load commands (macOS executables): segments and their sections, read with struct.

Universal ("fat") files are not opened: their magic is shared with Java class files, and images
scanned by Moat are Linux or Windows in practice.
"""

from __future__ import annotations

import struct
from typing import IO

from moat.errors import ParseError
from moat.inventory.binfmt.executable import MAX_SECTIONS, MAX_SEGMENTS, Executable, Region

LC_SEGMENT = 0x1
LC_SEGMENT_64 = 0x19
VM_PROT_READ_WRITE = 0x3
VM_PROT_EXECUTE = 0x4
MAX_COMMANDS = 4096
GO_BUILDINFO_SECTION = "__go_buildinfo"


def open_macho(stream: IO[bytes], file_size: int) -> Executable:
    exe = Executable(format="macho", stream=stream, file_size=file_size)
    magic = exe.read_file(0, 4)
    exe.little_endian = magic in (b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe")
    wide = magic in (b"\xcf\xfa\xed\xfe", b"\xfe\xed\xfa\xcf")
    exe.pointer_size = 8 if wide else 4
    order = "<" if exe.little_endian else ">"
    header_size = 32 if wide else 28
    _, _, _, ncmds, sizeofcmds, _ = struct.unpack(order + "IiiIII", exe.read_file(4, 24))
    if ncmds > MAX_COMMANDS:
        raise ParseError(f"macho: {ncmds} load commands, more than a real binary has")
    commands = exe.read_file(header_size, sizeofcmds)
    position = 0
    for _ in range(ncmds):
        if position + 8 > len(commands):
            raise ParseError("macho: load commands run past sizeofcmds")
        cmd, cmdsize = struct.unpack(order + "II", commands[position : position + 8])
        if cmdsize < 8 or position + cmdsize > len(commands):
            raise ParseError(f"macho: bad load command size {cmdsize}")
        if cmd in (LC_SEGMENT, LC_SEGMENT_64):
            _segment(exe, order, commands[position : position + cmdsize], cmd == LC_SEGMENT_64)
        position += cmdsize
    section = exe.section(GO_BUILDINFO_SECTION)
    if section is not None:
        exe.go_data_start = section.addr
    return exe


def _segment(exe: Executable, order: str, command: bytes, wide: bool) -> None:
    if wide:
        fmt, section_fmt, section_size = order + "16sQQQQiiII", order + "16s16sQQIIIIIIII", 80
    else:
        fmt, section_fmt, section_size = order + "16sIIIIiiII", order + "16s16sIIIIIIIII", 68
    head = struct.calcsize(fmt)
    if len(command) < 8 + head:
        raise ParseError("macho: segment command too short")
    name, vmaddr, _vmsize, fileoff, filesize, maxprot, initprot, nsects, _ = struct.unpack(
        fmt, command[8 : 8 + head]
    )
    if len(exe.segments) >= MAX_SEGMENTS or len(exe.sections) + nsects > MAX_SECTIONS:
        raise ParseError("macho: more segments or sections than a real binary has")
    if 8 + head + nsects * section_size > len(command):
        raise ParseError("macho: segment sections run past their load command")
    segment_name = name.rstrip(b"\0").decode("latin-1")
    exe.segments.append(
        Region(
            name=segment_name,
            addr=vmaddr,
            offset=fileoff,
            size=max(0, min(filesize, exe.file_size - fileoff)),
            writable=bool(initprot & 0x2),
            executable=bool(initprot & VM_PROT_EXECUTE),
        )
    )
    if (
        exe.go_data_start is None
        and vmaddr
        and filesize
        and maxprot == VM_PROT_READ_WRITE
        and initprot == VM_PROT_READ_WRITE
    ):
        exe.go_data_start = vmaddr
    for index in range(nsects):
        start = 8 + head + index * section_size
        fields = struct.unpack(section_fmt, command[start : start + section_size])
        sect_name, _seg, addr, size, offset = fields[:5]
        flags = fields[8]
        zero_fill = (flags & 0xFF) in (0x1, 0xC, 0x12)  # S_ZEROFILL, S_GB_ZEROFILL, S_THREAD_LOCAL_ZEROFILL
        exe.sections.append(
            Region(
                name=sect_name.rstrip(b"\0").decode("latin-1"),
                addr=addr,
                offset=offset,
                size=0 if zero_fill else size,
                writable=bool(initprot & 0x2),
            )
        )
