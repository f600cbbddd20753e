"""Go build information (``go version -m``) read out of an executable.

The Go linker writes a 32-byte header starting with ``\\xff Go buildinf:`` at a 16-byte aligned
place near the start of the data (the ``.go.buildinfo`` section on ELF). Byte 14 is the pointer
size, byte 15 holds flags: bit 0 big-endian, bit 1 "strings inline". Go 1.18+ writes the Go version
and the module info right after the header as varint-length-prefixed strings; older toolchains
wrote two pointers to Go string headers (data pointer, length) that must be followed through the
executable's address space. The module info is wrapped in 16-byte sentinels and holds
tab-separated ``path``/``mod``/``dep``/``=>``/``build`` lines.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field

from moat.errors import ParseError
from moat.inventory.binfmt.executable import Executable, Region

MAGIC = b"\xff Go buildinf:"
HEADER_SIZE = 32
ALIGN = 16
SEARCH_SIZE = 64 * 1024
"""Go's own reader only searches this far from the start of the data."""
MAX_STRING = 8 * 1024 * 1024
"""Module info of the largest real binaries is a few hundred kilobytes."""
FLAG_BIG_ENDIAN = 0x1
FLAG_INLINE = 0x2
SENTINEL_SIZE = 16


@dataclass(slots=True)
class Module:
    path: str
    version: str = ""
    sum: str = ""
    replace: Module | None = None


@dataclass(slots=True)
class BuildInfo:
    go_version: str
    path: str = ""
    main: Module | None = None
    deps: list[Module] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)


def read_build_info(exe: Executable) -> BuildInfo | None:
    """The build info of a Go executable, or None when the file was not built by Go."""
    start = _search_start(exe)
    if start is None:
        return None
    offset, end = start
    window = exe.read_file(offset, min(SEARCH_SIZE, end - offset))
    position = _find_header(window)
    if position is None:
        return None
    header = window[position : position + HEADER_SIZE]
    pointer_size, flags = header[14], header[15]
    if flags & FLAG_INLINE:
        cursor = offset + position + HEADER_SIZE
        version, cursor = _varint_string(exe, cursor, end)
        modinfo, _ = _varint_string(exe, cursor, end)
    else:
        big_endian = bool(flags & FLAG_BIG_ENDIAN)
        version = _pointed_string(exe, header[16:], pointer_size, big_endian)
        modinfo = _pointed_string(exe, header[16 + pointer_size :], pointer_size, big_endian)
    if not version:
        return None
    return parse_modinfo(version.decode("utf-8", "replace"), _unframe(modinfo).decode("utf-8", "replace"))


def _search_start(exe: Executable) -> tuple[int, int] | None:
    """File offset where the search begins, and the end of the region it may run through."""
    for name in (".go.buildinfo", "__go_buildinfo"):
        section = exe.section(name)
        if section is not None and section.size:
            return section.offset, min(section.offset + section.size, exe.file_size)
    if exe.go_data_start is None:
        return None
    region = _region_of(exe, exe.go_data_start)
    if region is None:
        return None
    offset = region.offset + exe.go_data_start - region.addr
    return offset, min(region.offset + region.size, exe.file_size)


def _region_of(exe: Executable, addr: int) -> Region | None:
    for region in (*exe.segments, *exe.sections):
        if region.size and region.addr <= addr < region.addr + region.size:
            return region
    return None


def _find_header(window: bytes) -> int | None:
    position = window.find(MAGIC)
    while position >= 0:
        if len(window) - position < HEADER_SIZE:
            return None
        if position % ALIGN == 0:
            return position
        position = window.find(MAGIC, position + 1)
    return None


def _varint_string(exe: Executable, offset: int, end: int) -> tuple[bytes, int]:
    """A Go ``binary.Uvarint`` length followed by that many bytes, all inside ``[offset, end)``."""
    length = 0
    shift = 0
    for index in range(10):
        if offset + index >= end:
            raise ParseError("go buildinfo: string length runs past the end of its section")
        byte = exe.read_file(offset + index, 1)[0]
        length |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            offset += index + 1
            break
    else:
        raise ParseError("go buildinfo: string length is not a valid varint")
    if length > MAX_STRING:
        raise ParseError(f"go buildinfo: string of {length} bytes is over the {MAX_STRING} limit")
    if offset + length > end:
        raise ParseError("go buildinfo: string runs past the end of its section")
    return exe.read_file(offset, length), offset + length


def _pointed_string(exe: Executable, raw_pointer: bytes, pointer_size: int, big_endian: bool) -> bytes:
    """Follow a pointer to a Go string header (data pointer, length) and read the string."""
    if pointer_size not in (4, 8):
        raise ParseError(f"go buildinfo: pointer size {pointer_size} is neither 4 nor 8")
    code = ("<>"[big_endian]) + ("I" if pointer_size == 4 else "Q")
    (address,) = struct.unpack(code, raw_pointer[:pointer_size])
    string_header = exe.read_at(address, 2 * pointer_size)
    data_address, length = struct.unpack(code[0] + code[1] * 2, string_header)
    if length == 0:
        return b""
    if length > MAX_STRING:
        raise ParseError(f"go buildinfo: string of {length} bytes is over the {MAX_STRING} limit")
    return exe.read_at(data_address, length)


def _unframe(modinfo: bytes) -> bytes:
    """Strip the 16-byte sentinels around the module info (absent: no module info at all)."""
    if len(modinfo) >= 2 * SENTINEL_SIZE + 1 and modinfo[-SENTINEL_SIZE - 1] == ord("\n"):
        return modinfo[SENTINEL_SIZE:-SENTINEL_SIZE]
    return b""


def parse_modinfo(go_version: str, modinfo: str) -> BuildInfo:
    """Parse the tab-separated module info lines, as ``runtime/debug.ParseBuildInfo`` reads them."""
    info = BuildInfo(go_version=go_version)
    last: Module | None = None
    for line in modinfo.split("\n"):
        word, _, rest = line.partition("\t")
        if word == "path":
            info.path = rest
        elif word in ("mod", "dep", "=>"):
            module = _module(rest)
            if module is None:
                raise ParseError(f"go buildinfo: malformed {word!r} line")
            if word == "mod":
                info.main = last = module
            elif word == "dep":
                info.deps.append(module)
                last = module
            else:
                if last is None or last.replace is not None:
                    raise ParseError("go buildinfo: replacement without a module to replace")
                last.replace = module
        elif word == "build":
            key, value = _setting(rest)
            info.settings[key] = value
    return info


def _module(rest: str) -> Module | None:
    fields = rest.split("\t")
    if not fields[0] or len(fields) > 3:
        return None
    fields += [""] * (3 - len(fields))
    return Module(path=fields[0], version=fields[1], sum=fields[2])


def _setting(rest: str) -> tuple[str, str]:
    """``key=value``; Go 1.18+ quotes keys and values holding spaces, quotes or ``=``."""
    if rest.startswith('"'):
        key, remainder = _unquote_prefix(rest)
        if not remainder.startswith("="):
            raise ParseError("go buildinfo: malformed build setting")
        raw_value = remainder[1:]
    else:
        key, _, raw_value = rest.partition("=")
    if raw_value.startswith(('"', "`")):
        value, trailing = _unquote_prefix(raw_value)
        if trailing:
            raise ParseError("go buildinfo: malformed build setting value")
        return key, value
    return key, raw_value


_ESCAPE = re.compile(r"\\(?:x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3}|[abfnrtv\\'\"])")
_SIMPLE = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_QUOTED = re.compile(r'"(?:[^"\\\n]|\\.)*"')


def _unquote_prefix(text: str) -> tuple[str, str]:
    """Unquote one Go string literal at the start of ``text``; return it and what follows."""
    if text.startswith("`"):
        close = text.find("`", 1)
        if close < 0:
            raise ParseError("go buildinfo: unterminated raw string")
        return text[1:close], text[close + 1 :]
    match = _QUOTED.match(text)
    if match is None:
        raise ParseError("go buildinfo: unterminated quoted string")
    body = match.group(0)[1:-1]
    return _ESCAPE.sub(_unescape, body), text[match.end() :]


def _unescape(match: re.Match[str]) -> str:
    escape = match.group(0)[1:]
    if escape[0] in "xuU":
        return chr(min(int(escape[1:], 16), 0x10FFFF)) if escape[0] != "x" else chr(int(escape[1:], 16))
    if escape[0].isdigit():
        return chr(int(escape, 8))
    return _SIMPLE.get(escape, escape)
