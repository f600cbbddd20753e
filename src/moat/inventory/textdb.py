"""Reading the line-oriented package databases (dpkg status, apk installed) safely.

Both are plain text written by a package manager, and both reach Moat from untrusted images: a line
may be a hundred megabytes long, hold NUL bytes, or not be UTF-8. One reader bounds every line and
names what is wrong with it, so each database parser only deals with well-formed text.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

MAX_LINE = 1024 * 1024
MAX_WARNINGS = 20


def bounded_lines(stream: IO[bytes], max_line: int = MAX_LINE) -> Iterator[tuple[int, str | None, str]]:
    """(line number, text without its line ending, problem) for every line.

    ``text`` is None when the line is unusable (over ``max_line`` bytes, or with a NUL byte); then
    ``problem`` says why. Undecodable bytes are replaced (old status files carry Latin-1 names).
    """
    line_no = 0
    while True:
        raw = stream.readline(max_line + 1)
        if not raw:
            return
        line_no += 1
        if len(raw) > max_line and not raw.endswith(b"\n"):
            while (chunk := stream.readline(max_line)) and not chunk.endswith(b"\n"):
                pass
            yield line_no, None, f"line {line_no} is longer than {max_line} bytes"
        elif b"\x00" in raw:
            yield line_no, None, f"line {line_no} contains NUL bytes"
        else:
            yield line_no, raw.decode("utf-8", errors="replace").rstrip("\r\n"), ""


def capped_warnings(path: str, problems: list[str], unit: str, limit: int = MAX_WARNINGS) -> list[str]:
    """The first ``limit`` problems as warnings, and a count of the rest (a broken database must not
    drown the report)."""
    warnings = [f"{path}: {problem}" for problem in problems[:limit]]
    if len(problems) > limit:
        warnings.append(f"{path}: {len(problems) - limit} more {unit} skipped")
    return warnings
