"""Dockerfiles parsed the way BuildKit reads them, into one :class:`Document` per file.

Why our own parser: ``dockerfile-parse`` (the Python library) does not parse heredocs (its issue
#145 is open and its last release is from 2023) and it has no per-stage ``ARG`` scope; the Python
binding of BuildKit's Go parser (``dockerfile``) is archived. Rules need both: ``RUN <<EOF`` bodies
are where ``apt-get update`` and ``apt-get install`` meet, and a ``FROM`` line means what its global
``ARG`` defaults make of it. So this module follows BuildKit's rules (``frontend/dockerfile/parser``
and ``shell/lex.go``) as documented in the Dockerfile reference:

* parser directives (``# syntax=``, ``# escape=``, ``# check=``) only before any comment, blank
  line or instruction; ``escape`` may be ``\\`` or a backtick;
* a line ending in the escape character (then optional blanks) continues on the next line; comment
  lines and empty lines inside a continuation are skipped;
* heredocs (``<<EOF``, ``<<-EOF``, quoted delimiters that turn expansion off, several per line) on
  ``RUN``, ``COPY`` and ``ADD``: the body is every following line up to the delimiter;
* JSON (exec) form for ``RUN``/``CMD``/``ENTRYPOINT``/``SHELL``/``COPY``/``ADD``/``VOLUME`` when the
  arguments are a JSON array of strings, shell form otherwise;
* variables: ``$VAR``, ``${VAR}``, ``${VAR:-x}``, ``${VAR-x}``, ``${VAR:+x}``, ``${VAR+x}``,
  ``${VAR:?x}``, ``${VAR#p}``, ``${VAR%p}`` and ``${VAR/p/r}`` are expanded in the instructions
  BuildKit expands (``FROM``, ``COPY``, ``ADD``, ``ENV``, ``ARG``, ``LABEL``, ``EXPOSE``, ``USER``,
  ``WORKDIR``, ``VOLUME``, ``STOPSIGNAL``); ``RUN``, ``CMD`` and ``ENTRYPOINT`` keep their text (the
  shell expands it at build or run time). Global ``ARG``\\ s (before the first ``FROM``) are seen by
  ``FROM`` lines; inside a stage an ``ARG`` is seen only after it is declared there (a bare ``ARG X``
  takes the global default), ``ENV`` wins over ``ARG``, and a stage built ``FROM`` an earlier stage
  inherits that stage's ``ENV``.

The document's ``data``::

    {"directives": {"syntax": ..., "escape": "\\\\"},
     "args": [<global ARG instructions>],
     "stages": [{"index": 0, "name": "build" | None, "from": "golang:${GO}",   # as written
                 "base_image": "golang:1.22",        # expanded
                 "base_stage": None | <index of the earlier stage it is built from>,
                 "platform": None | "linux/amd64",
                 "unresolved": [],                   # variables of the image reference nothing defines
                 "line": 3, "end_line": 20,
                 "instructions": [<FROM first, then each instruction of the stage>]}]}

and each instruction::

    {"cmd": "RUN", "line": 5, "end_line": 9, "original": <source lines>,
     "value": <text after the keyword and flags, not expanded>,
     "flags": {"mount": ["type=cache,target=/root/.cache"]},   # every --flag, values in order
     "args": [...],          # JSON form: the array; RUN/CMD/ENTRYPOINT/SHELL shell form: [value];
                             # others: the words, quotes removed and variables expanded
     "json_form": false,
     "heredocs": [{"name": "EOF", "body": "...", "expand": true, "chomp": false,
                   "line": 6, "end_line": 9}],
     "unresolved": ["TAG"],  # variables the expansion did not know (no default, no build arg)
     # only on some instructions:
     "pairs": [["KEY", "value"]],            # ENV, LABEL, ARG (an ARG without default: None)
     "commands": [{"argv": [...], "op": "&&", "depth": 0}],  # RUN: the simple commands its shell runs
     "shell": ["/bin/sh", "-c"],             # RUN: the SHELL in force
     "trigger": {<instruction>}}             # ONBUILD: the instruction it defers

``commands`` splits the shell script of a ``RUN`` (its shell-form text, the heredoc it feeds a shell
with, or ``sh -c "..."`` in JSON form) into simple commands: ``op`` is the operator before it (``""``,
``;``, ``&&``, ``||``, ``|``, ``&``), ``depth`` how deep it sits in subshells (``( )``, ``$( )``,
backticks); redirections, leading ``NAME=value`` assignments and ``case`` patterns are dropped.
It is a lexer, not a shell: enough for rules to see ``apt-get install`` without ``-y``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase, translate
from pathlib import Path
from typing import Any

from moat.checks.document import Document, JsonPath, TargetKind
from moat.checks.yamlload import read_text
from moat.errors import ParseError

MAX_BYTES = 1024 * 1024
"""Largest Dockerfile read; real ones are kilobytes."""
MAX_INSTRUCTIONS = 20_000
MAX_VALUE = 1024 * 1024
"""Longest value a variable may expand to: ``ENV A=$A$A`` repeated would otherwise double each time."""
MAX_PATTERN_SUBJECT = 4096
"""Longest value ``${VAR#glob}``, ``${VAR%glob}`` and ``${VAR/glob/x}`` are applied to (glob matching at
every position is quadratic or worse; real values are paths and versions)."""
MAX_NESTING = 32
"""Deepest ``${A:-${B:-...}}`` nesting followed."""

INSTRUCTIONS = frozenset({
    "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
    "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
})
HEREDOC_INSTRUCTIONS = frozenset({"RUN", "COPY", "ADD"})
EXPANDED = frozenset({"ADD", "COPY", "ENV", "ARG", "LABEL", "EXPOSE", "FROM", "USER", "WORKDIR", "VOLUME",
                      "STOPSIGNAL"})
DIRECTIVES = frozenset({"syntax", "escape", "check"})
DEFAULT_SHELL = ("/bin/sh", "-c")
POSIX_SHELLS = frozenset({"sh", "bash", "ash", "dash", "zsh", "ksh", "mksh"})

_DIRECTIVE = re.compile(r"^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=(.*)$")
_HEREDOC = re.compile(r"^(\d*)<<(-?)([^<]*)$")
_NAME_START = re.compile(r"[A-Za-z_]")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def dockerfile_documents(path: Path, label: str, build_args: Mapping[str, str] | None = None) -> list[Document]:
    """The Dockerfile at ``path`` as one document; ``label`` is how findings name the file."""
    text = read_text(path, label, max_bytes=MAX_BYTES)
    return parse_dockerfile(text, label, build_args=build_args, name=path.name)


def parse_dockerfile(text: str, label: str, build_args: Mapping[str, str] | None = None,
                     name: str = "") -> list[Document]:
    """Parse Dockerfile ``text``; every problem is a :class:`ParseError` naming ``label`` and the line."""
    if len(text) > MAX_BYTES:
        raise ParseError(f"{label}: larger than {MAX_BYTES // (1024 * 1024)} MiB, not read")
    parser = _Parser(text.removeprefix("\ufeff"), label)
    raw = parser.parse()
    data, lines = _Builder(label, dict(build_args or {}), parser.directives).build(raw)
    last = max((item.end_line for item in raw), default=1)
    doc_name = name or Path(label).name or "Dockerfile"
    return [Document(TargetKind.DOCKERFILE, label, data, name=doc_name, lines=lines, start_line=1,
                     end_line=last, facts={"stage_count": len(data["stages"])})]


# ------------------------------------------------------------------------------ lines to instructions


@dataclass(slots=True)
class _Heredoc:
    name: str
    expand: bool
    chomp: bool
    body: str = ""
    line: int = 0
    end_line: int = 0


@dataclass(slots=True)
class _Raw:
    """One instruction as the line reader found it, before its arguments are interpreted."""

    cmd: str
    rest: str
    line: int
    end_line: int
    original: str
    heredocs: list[_Heredoc] = field(default_factory=list)


class _Parser:
    """Directives, continuations, comments and heredocs: the line-level grammar."""

    def __init__(self, text: str, label: str) -> None:
        self.lines = text.split("\n")
        self.label = label
        self.directives: dict[str, str] = {}
        self.escape = "\\"

    def error(self, line: int, message: str) -> ParseError:
        return ParseError(f"{self.label}:{line}: {message}")

    def parse(self) -> list[_Raw]:
        lines = [line.removesuffix("\r") for line in self.lines]
        index = self._directives(lines)
        found: list[_Raw] = []
        while index < len(lines):
            first = lines[index].lstrip(" \t")
            index += 1
            if not first or first.startswith("#"):
                continue
            start = index
            piece, ended = self._trim_continuation(first)
            pieces = [piece]
            while not ended and index < len(lines):
                nxt = lines[index]
                index += 1
                stripped = nxt.lstrip(" \t")
                if stripped.startswith("#") or not stripped.strip():
                    continue  # comments and empty lines inside a continuation are skipped
                piece, ended = self._trim_continuation(nxt)
                pieces.append(piece)
            logical = "".join(pieces)
            if not logical.strip():
                continue
            word, *more = re.split(r"[ \t]+", logical.strip(), maxsplit=1)
            rest = more[0] if more else ""
            cmd = word.strip().upper()
            if cmd not in INSTRUCTIONS:
                raise self.error(start, f"unknown instruction {word.strip()!r}")
            item = _Raw(cmd, rest.strip(), start, index, "\n".join(lines[start - 1:index]))
            if cmd in HEREDOC_INSTRUCTIONS:
                index = self._heredocs(item, lines, index)
            found.append(item)
            if len(found) > MAX_INSTRUCTIONS:
                raise self.error(start, f"more than {MAX_INSTRUCTIONS:,} instructions")
        return found

    def _directives(self, lines: list[str]) -> int:
        index = 0
        while index < len(lines):
            match = _DIRECTIVE.match(lines[index])
            if not match or match.group(1).lower() not in DIRECTIVES or not match.group(2).strip():
                break
            key, value = match.group(1).lower(), match.group(2).strip()
            if key in self.directives:
                raise self.error(index + 1, f"only one {key} parser directive can be used")
            if key == "escape":
                if value not in ("\\", "`"):
                    raise self.error(index + 1, f"invalid escape token {value!r} (use \\ or `)")
                self.escape = value
            self.directives[key] = value
            index += 1
        return index

    def _trim_continuation(self, line: str) -> tuple[str, bool]:
        """The line without its continuation mark, and whether the instruction ends here."""
        trimmed = line.rstrip(" \t")
        if trimmed.endswith(self.escape):
            return trimmed[:-1], False
        return line, True

    def _heredocs(self, item: _Raw, lines: list[str], index: int) -> int:
        for word in split_words(item.rest, self.escape):
            heredoc = _parse_heredoc_word(word, self.escape)
            if heredoc is None:
                continue
            heredoc.line = index + 1
            body: list[str] = []
            while True:
                if index >= len(lines):
                    raise self.error(item.line, f"unterminated heredoc {heredoc.name!r}")
                current = lines[index]
                index += 1
                probe = current.lstrip("\t") if heredoc.chomp else current
                if probe == heredoc.name:
                    break
                body.append(current.lstrip("\t") if heredoc.chomp else current)
            heredoc.body = "".join(f"{text}\n" for text in body)
            heredoc.end_line = index
            item.heredocs.append(heredoc)
        if item.heredocs:
            item.end_line = index
            item.original = "\n".join(lines[item.line - 1:index])
        return index


def _parse_heredoc_word(word: str, escape: str) -> _Heredoc | None:
    """A ``<<NAME`` word as BuildKit reads it: the delimiter is quoted (no expansion) when removing
    quotes changed it."""
    match = _HEREDOC.match(word)
    if not match or not match.group(3):
        return None
    rest = match.group(3)
    if len(split_words(rest, escape)) != 1:
        return None
    name = _Expander({}, escape, expand=False).word(rest)
    quoted = any(ch in rest for ch in "'\"")
    return _Heredoc(name, expand=not quoted, chomp=match.group(2) == "-")


# ------------------------------------------------------------------------------ words and variables


def split_words(text: str, escape: str = "\\") -> list[str]:
    """Split on blanks outside quotes, keeping quotes and escapes (BuildKit's raw word split)."""
    words: list[str] = []
    current: list[str] = []
    quote = ""
    in_word = False
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            current.append(ch)
            if ch == escape and quote == '"' and i + 1 < len(text):
                current.append(text[i + 1])
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in " \t\n":
            if in_word:
                words.append("".join(current))
                current = []
                in_word = False
        else:
            in_word = True
            current.append(ch)
            if ch == escape and i + 1 < len(text):
                current.append(text[i + 1])
                i += 1
            elif ch in "'\"":
                quote = ch
        i += 1
    if in_word:
        words.append("".join(current))
    return words


class _Expander:
    """Quote removal and variable expansion of one word, after BuildKit's ``shell.Lex``."""

    def __init__(self, env: Mapping[str, str], escape: str, *, expand: bool = True, label: str = "",
                 line: int = 0) -> None:
        self.env = env
        self.escape = escape
        self.expand = expand
        self.unresolved: list[str] = []
        self.label = label
        self.line = line

    def word(self, text: str) -> str:
        value, _ = self._scan(text, 0, "", 0)
        return value

    def _scan(self, text: str, i: int, stop: str, depth: int) -> tuple[str, int]:
        """Process ``text`` from ``i`` up to an unquoted ``stop`` character (or the end)."""
        if depth > MAX_NESTING:
            raise ParseError(f"{self.label}:{self.line}: variables nested more than {MAX_NESTING} deep")
        out: list[str] = []
        size = 0
        while i < len(text):
            ch = text[i]
            if stop and ch in stop:
                break
            if ch == self.escape:
                if i + 1 < len(text):
                    out.append(text[i + 1])
                    i += 2
                else:
                    out.append(ch)
                    i += 1
            elif ch == "'":
                end = text.find("'", i + 1)
                end = len(text) if end < 0 else end
                out.append(text[i + 1:end])
                i = end + 1
            elif ch == '"':
                i = self._double(text, i + 1, out, depth)
            elif ch == "$" and self.expand:
                value, i = self._dollar(text, i, depth)
                out.append(value)
            else:
                out.append(ch)
                i += 1
            size += len(out[-1]) if out else 0
            if size > MAX_VALUE:
                raise ParseError(f"{self.label}:{self.line}: a variable expands to more than "
                                 f"{MAX_VALUE // 1024} KiB")
        return "".join(out), i

    def _double(self, text: str, i: int, out: list[str], depth: int) -> int:
        while i < len(text):
            ch = text[i]
            if ch == '"':
                return i + 1
            if ch == self.escape and i + 1 < len(text) and text[i + 1] in ('"', "$", self.escape):
                out.append(text[i + 1])
                i += 2
            elif ch == "$" and self.expand:
                value, i = self._dollar(text, i, depth)
                out.append(value)
            else:
                out.append(ch)
                i += 1
        return i

    def _lookup(self, name: str) -> str | None:
        value = self.env.get(name)
        if value is None and name not in self.unresolved:
            self.unresolved.append(name)
        return value

    def _dollar(self, text: str, i: int, depth: int) -> tuple[str, int]:
        """Expand the ``$...`` at ``text[i]``; return the value and the index after it."""
        nxt = text[i + 1] if i + 1 < len(text) else ""
        if nxt != "{":
            match = _NAME.match(text, i + 1)
            if not match:
                return "$", i + 1
            return self._lookup(match.group(0)) or "", match.end()
        match = _NAME.match(text, i + 2)
        if not match:
            end = text.find("}", i)
            return (text[i:] if end < 0 else text[i:end + 1]), (len(text) if end < 0 else end + 1)
        name = match.group(0)
        j = match.end()
        if j < len(text) and text[j] == "}":
            return self._lookup(name) or "", j + 1
        operator = ""
        for candidate in (":-", ":+", ":?", "-", "+", "?", "##", "#", "%%", "%", "//", "/"):
            if text.startswith(candidate, j):
                operator = candidate
                break
        if not operator:
            end = text.find("}", j)
            return "", len(text) if end < 0 else end + 1
        value = self.env.get(name)
        if operator in ("//", "/"):
            pattern, j = self._scan(text, j + len(operator), "/}", depth + 1)
            replacement = ""
            if j < len(text) and text[j] == "/":
                replacement, j = self._scan(text, j + 1, "}", depth + 1)
            subject = self._lookup(name) or ""
            result = subject if len(subject) > MAX_PATTERN_SUBJECT else _replace(subject, pattern, replacement,
                                                                                  operator == "//")
        else:
            word, j = self._scan(text, j + len(operator), "}", depth + 1)
            result = self._apply(name, value, operator, word)
        return result, min(j + 1, len(text))

    def _apply(self, name: str, value: str | None, operator: str, word: str) -> str:
        if operator == ":-":
            return value if value else word
        if operator == "-":
            return value if value is not None else word
        if operator == ":+":
            return word if value else ""
        if operator == "+":
            return word if value is not None else ""
        if operator in (":?", "?"):
            if value is None and name not in self.unresolved:
                self.unresolved.append(name)
            return value or ""
        current = self._lookup(name) or ""
        if len(current) > MAX_PATTERN_SUBJECT:
            return current  # glob trimming of huge values would cost O(n²); leave them untouched
        if operator in ("#", "##"):
            cuts = [k for k in range(len(current) + 1) if fnmatchcase(current[:k], word)]
            return current[(max(cuts) if operator == "##" else min(cuts)):] if cuts else current
        cuts = [k for k in range(len(current) + 1) if fnmatchcase(current[k:], word)]
        return current[:(min(cuts) if operator == "%%" else max(cuts))] if cuts else current


def _replace(value: str, pattern: str, replacement: str, every: bool) -> str:
    """``${VAR/pattern/replacement}``: the longest match of the glob, leftmost first (greedy regex of the glob)."""
    if not pattern:
        return value
    regex = re.compile(translate(pattern).removesuffix(r"\Z"))
    return regex.sub(lambda _match: replacement, value, count=0 if every else 1)


# ------------------------------------------------------------------------------ shell commands of RUN

_OPERATORS = ("&&", "||", ";;&", ";;", ";&", ";", "|", "&", "(", ")", "\n")
_KEYWORDS = frozenset({"if", "then", "else", "elif", "fi", "do", "done", "while", "until", "for", "case",
                       "select", "esac", "!", "{", "}"})
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_FD_REDIRECT = re.compile(r"\d+[<>]")
_DIGITS = re.compile(r"\d*")
_REDIRECT = re.compile(r"<<-?|<<<|<>|>>|>&|<&|>\||[<>]")
_SCRIPT_HEREDOC = re.compile(r"""[ \t]*(['"]?)([^\s'";&|<>()]+)\1""")
_FD_TARGET = re.compile(r"\d+-?|-")


def shell_commands(script: str) -> list[dict[str, Any]]:
    """The simple commands of a POSIX shell script, each with the operator that joins it to the one
    before (see the module docstring)."""
    tokens = _shell_tokens(script)
    commands: list[dict[str, Any]] = []
    argv: list[str] = []
    op = ""
    pending = ""

    def flush(next_op: str) -> None:
        nonlocal argv, op
        words = argv
        while words and (_ASSIGNMENT.match(words[0]) or words[0] in _KEYWORDS):
            if words[0] in ("for", "select"):
                words = []  # a loop header names a variable and a word list, not a command
                break
            words = words[1:]
        if words:
            commands.append({"argv": words, "op": op, "depth": depth})
            op = next_op
        elif next_op in ("|", "&&", "||"):
            op = next_op
        else:
            op = ";" if commands else ""
        argv = []

    # case WORD in PATTERN|PATTERN) commands ;; ... esac: the header and the patterns are not commands
    case_state = ""  # "" outside a case header or pattern, "header" up to "in", "pattern" up to ")"
    case_depth = 0
    depth = 0  # nesting in ( ... ), $( ... ) and `...`
    for kind, value in tokens:
        if case_state == "header":
            case_state = "pattern" if kind == "word" and value == "in" else "header"
            continue
        if case_state == "pattern":
            if kind == "word" and value == "esac":
                case_state, case_depth = "", case_depth - 1
            elif kind == "op" and value == ")":
                case_state = ""
            continue
        if kind == "word" and not argv and not pending:
            if value == "case":
                case_state, case_depth = "header", case_depth + 1
                continue
            if value == "esac" and case_depth:
                case_depth -= 1
                continue
        if kind == "op" and value in (";;", ";&", ";;&") and case_depth:
            flush(";")
            case_state = "pattern"
            continue
        if kind == "op":
            flush(";" if value in ("\n", ";;", "(", ")") else value)
            depth = depth + 1 if value == "(" else max(depth - 1, 0) if value == ")" else depth
            if value in ("\n", "(", ")") and commands:
                op = ";"
            pending = ""
        elif kind == "redir":
            pending = value
        elif pending:
            pending = ""  # the redirection's target is not an argument
        else:
            argv.append(value)
    flush("")
    return commands


def _shell_tokens(script: str) -> list[tuple[str, str]]:
    """Words, operators and redirections; comments, quotes and heredoc bodies handled."""
    tokens: list[tuple[str, str]] = []
    word: list[str] = []
    in_word = False
    heredocs: list[tuple[str, bool]] = []
    in_backticks = False
    i = 0
    n = len(script)

    def end_word() -> None:
        nonlocal word, in_word
        if in_word:
            tokens.append(("word", "".join(word)))
        word = []
        in_word = False

    while i < n:
        ch = script[i]
        if ch == "\\":
            if i + 1 < n and script[i + 1] == "\n":
                i += 2
                continue
            word.append(script[i + 1] if i + 1 < n else "\\")
            in_word = True
            i += 2
        elif ch == "'":
            end = script.find("'", i + 1)
            end = n if end < 0 else end
            word.append(script[i + 1:end])
            in_word = True
            i = end + 1
        elif ch == '"':
            i += 1
            while i < n and script[i] != '"':
                if script[i] == "\\" and i + 1 < n and script[i + 1] in '"\\$`\n':
                    if script[i + 1] != "\n":
                        word.append(script[i + 1])
                    i += 2
                    continue
                word.append(script[i])
                i += 1
            in_word = True
            i += 1
        elif ch == "#" and not in_word:
            while i < n and script[i] != "\n":
                i += 1
        elif ch in " \t\r":
            end_word()
            i += 1
        elif ch == "\n":
            end_word()
            tokens.append(("op", "\n"))
            i += 1
            for delimiter, chomp in heredocs:
                while i < n:
                    stop = script.find("\n", i)
                    stop = n if stop < 0 else stop
                    line = script[i:stop]
                    i = stop + 1
                    if (line.lstrip("\t") if chomp else line) == delimiter:
                        break
            heredocs = []
        elif ch == "$" and script.startswith("$(", i) and not script.startswith("$((", i):
            end_word()
            tokens.append(("op", "("))
            i += 2
        elif ch == "`":
            end_word()
            tokens.append(("op", ")" if in_backticks else "("))
            in_backticks = not in_backticks
            i += 1
        elif ch in "<>" or (ch.isdigit() and not in_word and _FD_REDIRECT.match(script, i)):
            end_word()
            j = _DIGITS.match(script, i).end()  # type: ignore[union-attr]
            match = _REDIRECT.match(script, j)
            operator = match.group(0) if match else script[j]
            j += len(operator)
            if operator in ("<<", "<<-"):
                delim = _SCRIPT_HEREDOC.match(script, j)
                if delim:
                    heredocs.append((delim.group(2), operator == "<<-"))
                    i = delim.end()
                    continue
            if operator in (">&", "<&"):
                target = _FD_TARGET.match(script, j)
                if target:
                    i = target.end()
                    continue
            tokens.append(("redir", operator))
            i = j
        elif ch == "&" and script.startswith("&>", i):
            end_word()
            tokens.append(("redir", "&>>" if script.startswith("&>>", i) else "&>"))
            i += 3 if script.startswith("&>>", i) else 2
        elif ch in ";&|()":
            end_word()
            operator = next(op for op in _OPERATORS if script.startswith(op, i))
            tokens.append(("op", operator))
            i += len(operator)
        else:
            word.append(ch)
            in_word = True
            i += 1
    end_word()
    return tokens


# ------------------------------------------------------------------------------ instructions to data


def _flags(rest: str, escape: str) -> tuple[list[tuple[str, str]], str]:
    """Leading ``--name[=value]`` flags and the text after them (one pass over the text)."""
    flags: list[tuple[str, str]] = []
    position = 0
    while rest.startswith("--", position):
        end = _word_end(rest, position, escape)
        word = rest[position:end]
        if word == "--":
            break
        name, eq, value = word[2:].partition("=")
        flags.append((name.lower(), _unquote(value) if eq else "true"))
        position = end
        while position < len(rest) and rest[position] in " \t":
            position += 1
    return flags, rest[position:]


def _word_end(text: str, start: int, escape: str) -> int:
    """Index just past the word starting at ``start`` (blanks inside quotes do not end it)."""
    quote = ""
    i = start
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == quote:
                quote = ""
        elif ch in " \t":
            return i
        elif ch in "'\"":
            quote = ch
        elif ch == escape:
            i += 1
        i += 1
    return len(text)


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _json_array(text: str) -> list[str] | None:
    if not text.startswith("["):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    return None


class _Builder:
    """Stages, scopes and expansion: from raw instructions to the document's data."""

    def __init__(self, label: str, build_args: dict[str, str], directives: dict[str, str]) -> None:
        self.label = label
        self.build_args = build_args
        self.directives = directives
        self.escape = directives.get("escape", "\\")
        self.global_args: dict[str, str | None] = {}
        self.lines: dict[JsonPath, int] = {}

    def build(self, raw: list[_Raw]) -> tuple[dict[str, Any], dict[JsonPath, int]]:
        stages: list[dict[str, Any]] = []
        global_args: list[dict[str, Any]] = []
        args: dict[str, str | None] = {}
        env: dict[str, str] = {}
        shell: list[str] = list(DEFAULT_SHELL)
        final_env: list[dict[str, str]] = []
        for item in raw:
            if item.cmd == "FROM":
                if stages:
                    stages[-1]["end_line"] = stages[-1]["instructions"][-1]["end_line"]
                    final_env.append(env)
                stage = self._stage(item, len(stages), stages)
                base = stage["base_stage"]
                env = dict(final_env[base]) if base is not None else {}
                args = {}
                shell = list(DEFAULT_SHELL)
                stages.append(stage)
                self.lines[("stages", stage["index"])] = item.line
                self.lines[("stages", stage["index"], "instructions", 0)] = item.line
                continue
            if not stages:
                if item.cmd != "ARG":
                    raise ParseError(f"{self.label}:{item.line}: {item.cmd} before the first FROM "
                                     "(only ARG may come first)")
                instruction = self._instruction(item, self._global_scope(), shell)
                for key, value in instruction["pairs"]:
                    self.global_args[key] = self.build_args.get(key, value)
                global_args.append(instruction)
                self.lines[("args", len(global_args) - 1)] = item.line
                continue
            instruction = self._instruction(item, {**_defined(args), **env}, shell)
            if item.cmd == "ARG":
                for key, value in instruction["pairs"]:
                    if key in self.build_args:
                        args[key] = self.build_args[key]
                    elif value is None and key in self.global_args:
                        args[key] = self.global_args[key]
                    else:
                        args[key] = value
            elif item.cmd == "ENV":
                for key, value in instruction["pairs"]:
                    env[key] = value or ""
            elif item.cmd == "SHELL" and instruction["json_form"] and instruction["args"]:
                shell = list(instruction["args"])
            position = len(stages[-1]["instructions"])
            stages[-1]["instructions"].append(instruction)
            self.lines[("stages", len(stages) - 1, "instructions", position)] = item.line
        if not stages:
            raise ParseError(f"{self.label}: no FROM instruction: not a Dockerfile")
        stages[-1]["end_line"] = stages[-1]["instructions"][-1]["end_line"]
        data = {"directives": dict(self.directives), "escape": self.escape, "args": global_args,
                "stages": stages}
        return data, self.lines

    def _global_scope(self) -> dict[str, str]:
        return _defined(self.global_args)

    def _stage(self, item: _Raw, index: int, stages: list[dict[str, Any]]) -> dict[str, Any]:
        instruction = self._instruction(item, self._global_scope(), list(DEFAULT_SHELL))
        words = instruction["args"]
        if len(words) not in (1, 3) or (len(words) == 3 and words[1].upper() != "AS"):
            raise ParseError(f"{self.label}:{item.line}: FROM takes an image and an optional "
                             f"'AS name', got {item.rest!r}")
        image = words[0]
        name = words[2].lower() if len(words) == 3 else None
        base_stage = next((s["index"] for s in stages if s["name"] is not None and s["name"] == image.lower()),
                          None)
        raw_words = split_words(_flags(item.rest, self.escape)[1], self.escape)
        platform = instruction["flags"].get("platform", [None])[-1]
        probe = _Expander(self._global_scope(), self.escape, label=self.label, line=item.line)
        probe.word(raw_words[0] if raw_words else image)
        return {"index": index, "name": name, "from": raw_words[0] if raw_words else image,
                "base_image": image, "base_stage": base_stage, "platform": platform,
                "unresolved": probe.unresolved, "line": item.line, "end_line": item.end_line,
                "instructions": [instruction]}

    def _instruction(self, item: _Raw, scope: Mapping[str, str], shell: list[str]) -> dict[str, Any]:
        return _Interpreter(self.label, self.escape, item.line).interpret(item, scope, shell)


def _defined(values: Mapping[str, str | None]) -> dict[str, str]:
    return {key: value for key, value in values.items() if value is not None}


class _Interpreter:
    """One instruction's arguments, by its kind."""

    def __init__(self, label: str, escape: str, line: int) -> None:
        self.label = label
        self.escape = escape
        self.line = line

    def error(self, message: str) -> ParseError:
        return ParseError(f"{self.label}:{self.line}: {message}")

    def interpret(self, item: _Raw, scope: Mapping[str, str] | None, shell: list[str]) -> dict[str, Any]:
        expand = scope is not None and item.cmd in EXPANDED
        expander = _Expander(scope or {}, self.escape, expand=expand, label=self.label, line=item.line)
        flag_pairs, value = _flags(item.rest, self.escape)
        if item.cmd in ("ENV", "LABEL", "ARG", "MAINTAINER", "ONBUILD", "USER", "WORKDIR", "STOPSIGNAL",
                        "EXPOSE", "VOLUME", "SHELL", "ENTRYPOINT", "CMD") and flag_pairs:
            # Only FROM, RUN, COPY, ADD and HEALTHCHECK take flags; elsewhere "--x" is an argument.
            flag_pairs, value = [], item.rest
        flags: dict[str, list[str]] = {}
        for name, flag_value in flag_pairs:
            flags.setdefault(name, []).append(expander.word(flag_value) if expand else flag_value)
        data: dict[str, Any] = {
            "cmd": item.cmd, "line": item.line, "end_line": item.end_line, "original": item.original,
            "value": value, "flags": flags, "args": [], "json_form": False,
            "heredocs": [{"name": h.name, "body": h.body, "expand": h.expand, "chomp": h.chomp, "line": h.line,
                          "end_line": h.end_line} for h in item.heredocs],
            "unresolved": [],
        }
        handler = getattr(self, f"_{item.cmd.lower()}", self._words)
        handler(data, value, expander, shell)
        data["unresolved"] = list(expander.unresolved)
        return data

    def _words(self, data: dict[str, Any], value: str, expander: _Expander, shell: list[str]) -> None:
        array = _json_array(value) if data["cmd"] in ("COPY", "ADD", "VOLUME") else None
        if array is not None:
            data["json_form"] = True
            data["args"] = [expander.word(item) if expander.expand and not any(c in item for c in "'\"\\`")
                            else item for item in array]
            return
        data["args"] = [expander.word(word) for word in split_words(value, self.escape)]

    def _one(self, data: dict[str, Any], value: str, expander: _Expander, shell: list[str]) -> None:
        data["args"] = [expander.word(value.strip())] if value.strip() else []

    _user = _one
    _workdir = _one
    _stopsignal = _one

    def _maintainer(self, data: dict[str, Any], value: str, expander: _Expander, shell: list[str]) -> None:
        data["args"] = [value.strip()]

    def _exec_or_shell(self, data: dict[str, Any], value: str) -> None:
        array = _json_array(value.strip())
        if array is not None:
            data["json_form"] = True
            data["args"] = array
        else:
            data["args"] = [value] if value.strip() else []

    def _cmd(self, data: dict[str, Any], value: str, expander: _Expander, shell: list[str]) -> None:
        self._exec_or_shell(data, value)

    _entrypoint = _cmd

    def _shell(self, data: dict[str, Any], value: str, expander: _Expander, shell: list[str]) -> None:
        self._exec_or_shell(data, value)
        if not data["json_form"]:
            raise self.error("SHELL requires the JSON form, e.g. SHELL [\"/bin/bash\", \"-c\"]")

    def _run(self, data: dict[str, Any], value: str, expander: _Expander, shell: list[str]) -> None:
        self._exec_or_shell(data, value)
        data["shell"] = list(shell)
        data["commands"] = _run_commands(data, shell)

    def _healthcheck(self, data: dict[str, Any], value: str, expander: _Expander, shell: list[str]) -> None:
        words = value.split(None, 1)
        if not words:
            raise self.error("HEALTHCHECK needs NONE or CMD")
        if words[0].upper() == "NONE":
            data["args"] = ["NONE"]
            return
        if words[0].upper() != "CMD":
            raise self.error(f"HEALTHCHECK expects NONE or CMD, got {words[0]!r}")
        rest = words[1] if len(words) > 1 else ""
        array = _json_array(rest.strip())
        data["json_form"] = array is not None
        data["args"] = ["CMD", *(array if array is not None else [rest])]

    def _pairs(self, data: dict[str, Any], value: str, expander: _Expander, *, allow_bare: bool) -> None:
        words = split_words(value, self.escape)
        pairs: list[list[str | None]] = []
        if words and "=" not in words[0] and data["cmd"] != "ARG":
            # Legacy form: ENV KEY value with spaces
            rest = value.strip()[len(words[0]):].strip()
            if not rest:
                raise self.error(f"{data['cmd']} {words[0]} has no value")
            pairs.append([words[0], expander.word(rest)])
        else:
            for word in words:
                key, eq, raw = word.partition("=")
                if not eq:
                    if not allow_bare:
                        raise self.error(f"{data['cmd']} expects KEY=value, got {word!r}")
                    pairs.append([expander.word(key), None])
                    continue
                pairs.append([expander.word(key), expander.word(raw)])
        if not pairs:
            raise self.error(f"{data['cmd']} needs at least one argument")
        data["pairs"] = pairs
        data["args"] = [expander.word(word) for word in words]

    def _env(self, data: dict[str, Any], value: str, expander: _Expander, shell: list[str]) -> None:
        self._pairs(data, value, expander, allow_bare=False)

    _label = _env

    def _arg(self, data: dict[str, Any], value: str, expander: _Expander, shell: list[str]) -> None:
        self._pairs(data, value, expander, allow_bare=True)

    def _onbuild(self, data: dict[str, Any], value: str, expander: _Expander, shell: list[str]) -> None:
        word, _, rest = value.strip().partition(" ")
        cmd = word.upper()
        if cmd not in INSTRUCTIONS:
            raise self.error(f"ONBUILD of unknown instruction {word!r}")
        if cmd in ("ONBUILD", "FROM", "MAINTAINER"):
            raise self.error(f"ONBUILD {cmd} is not allowed")
        trigger = _Raw(cmd, rest.strip(), data["line"], data["end_line"], data["original"])
        data["trigger"] = _Interpreter(self.label, self.escape, self.line).interpret(trigger, None, shell)
        data["args"] = [value.strip()]


def _run_commands(data: dict[str, Any], shell: list[str]) -> list[dict[str, Any]]:
    """The simple commands a RUN executes, when its shell is a POSIX shell."""
    args = data["args"]
    if data["json_form"]:
        if len(args) >= 3 and _program(args[0]) in POSIX_SHELLS and args[1].startswith("-") and "c" in args[1]:
            return shell_commands(args[2])
        return [{"argv": list(args), "op": "", "depth": 0}] if args else []
    if not shell or _program(shell[0]) not in POSIX_SHELLS:
        return []  # PowerShell or cmd.exe: not ours to split
    script = args[0] if args else ""
    heredocs = data["heredocs"]
    if not heredocs:
        return shell_commands(script)
    line_commands = shell_commands(" ".join(w for w in split_words(script) if not _HEREDOC.match(w)))
    first = line_commands[0]["argv"] if line_commands else []
    feeds_shell = not first or (_program(first[0]) in POSIX_SHELLS and "-c" not in first)
    if not feeds_shell:
        return line_commands
    body = heredocs[0]["body"]
    if body.startswith("#!") and _program(body[2:].split("\n", 1)[0].split()[0] if body[2:].split() else "") \
            not in POSIX_SHELLS | {"env"}:
        return line_commands
    return [*line_commands, *shell_commands(body)]


def _program(word: str) -> str:
    return word.rsplit("/", 1)[-1]
