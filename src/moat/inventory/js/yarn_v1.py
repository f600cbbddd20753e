"""A parser for the yarn v1 lockfile format (yarn classic's own syntax, not YAML).

The format, as yarn classic writes it::

    # yarn lockfile v1

    "@babel/code-frame@^7.0.0", "@babel/code-frame@^7.8.3":
      version "7.8.3"
      resolved "https://…"
      dependencies:
        "@babel/highlight" "^7.8.3"

A top-level line lists the patterns one entry satisfies and ends with ``:``; indented lines are
``key value`` pairs or ``key:`` openers of a nested block. Strings may be quoted with JSON escapes.
The parser is line-based, keeps no more than :data:`MAX_DEPTH` levels and :data:`MAX_LINES` lines,
and reports the line number of anything it cannot read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from moat.errors import ParseError

MAX_LINES = 4_000_000
MAX_DEPTH = 8
MAX_PATTERNS = 10_000


@dataclass(slots=True)
class Entry:
    """One top-level block: the patterns it satisfies and its fields (strings or nested dicts)."""

    patterns: list[str]
    fields: dict[str, Any] = field(default_factory=dict)
    line: int = 0


def _quoted_end(text: str, start: int) -> int:
    """Index of the quote closing the string opened at ``text[start]``, or -1."""
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == '"':
            return i
        i += 1
    return -1


def _unquote(token: str, line: int, what: str) -> str:
    if not token.startswith('"'):
        return token
    inner = token[1:-1]
    if len(token) >= 2 and token.endswith('"') and "\\" not in inner and '"' not in inner:
        return inner  # the common case; JSON decoding is only needed for escapes
    try:
        value = json.loads(token)
    except ValueError:
        raise ParseError(f"{what}: line {line}: bad quoted string") from None
    if not isinstance(value, str):
        raise ParseError(f"{what}: line {line}: bad quoted string")
    return value


def split_patterns(text: str, line: int = 0, what: str = "yarn.lock") -> list[str]:
    """``a@^1, "b@^2 || ^3"`` → ``["a@^1", "b@^2 || ^3"]`` (commas inside quotes are kept)."""
    patterns: list[str] = []
    i = 0
    while i < len(text):
        while i < len(text) and text[i] in " ,":
            i += 1
        if i >= len(text):
            break
        if text[i] == '"':
            end = _quoted_end(text, i)
            if end < 0:
                raise ParseError(f"{what}: line {line}: unterminated quote")
            patterns.append(_unquote(text[i : end + 1], line, what))
            i = end + 1
        else:
            end = text.find(",", i)
            end = len(text) if end < 0 else end
            patterns.append(text[i:end].strip())
            i = end
        if len(patterns) > MAX_PATTERNS:
            raise ParseError(f"{what}: line {line}: more than {MAX_PATTERNS} patterns in one entry")
    return [p for p in patterns if p]


def _split_pair(content: str, line: int, what: str) -> tuple[str, str]:
    """``key value`` with either side possibly quoted."""
    if content.startswith('"'):
        end = _quoted_end(content, 0)
        if end < 0:
            raise ParseError(f"{what}: line {line}: unterminated quote")
        key, rest = content[: end + 1], content[end + 1 :]
    else:
        parts = content.split(None, 1)
        key, rest = parts[0], (parts[1] if len(parts) > 1 else "")
    return _unquote(key, line, what), _unquote(rest.strip(), line, what)


def parse(text: str, what: str = "yarn.lock") -> list[Entry]:
    """Every top-level entry of a yarn v1 lockfile, in file order."""
    entries: list[Entry] = []
    # Each frame: (indent of the line that opened the block, the dict its lines go into).
    stack: list[tuple[int, dict[str, Any]]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if number > MAX_LINES:
            raise ParseError(f"{what}: more than {MAX_LINES} lines")
        content = raw.strip()
        if not content or content.startswith("#"):
            continue
        stripped = raw.lstrip(" ")
        if stripped.startswith("\t"):
            raise ParseError(f"{what}: line {number}: tab in indentation")
        indent = len(raw) - len(stripped)
        if indent == 0:
            if not content.endswith(":"):
                raise ParseError(f"{what}: line {number}: expected an entry header ending in ':'")
            entry = Entry(split_patterns(content[:-1], number, what), line=number)
            if not entry.patterns:
                raise ParseError(f"{what}: line {number}: entry header without a pattern")
            entries.append(entry)
            stack = [(0, entry.fields)]
            continue
        if not stack:
            raise ParseError(f"{what}: line {number}: indented line before the first entry")
        while len(stack) > 1 and indent <= stack[-1][0]:
            stack.pop()
        container = stack[-1][1]
        if content.endswith(":"):
            key = _unquote(content[:-1].strip(), number, what)
            block: dict[str, Any] = {}
            container[key] = block
            if len(stack) >= MAX_DEPTH:
                raise ParseError(f"{what}: line {number}: nested deeper than {MAX_DEPTH} levels")
            stack.append((indent, block))
        else:
            key, value = _split_pair(content, number, what)
            container[key] = value
    return entries
