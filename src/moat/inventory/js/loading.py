"""Bounded JSON and YAML loading for lockfiles and manifests.

Lockfiles come from images we do not trust. Both loaders turn every way a file can be broken
(bad encoding, bad syntax, nesting deep enough to exhaust the stack, YAML aliases that expand
into huge structures) into :class:`~moat.errors.ParseError` with a one-line message.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from moat.errors import ParseError

MAX_YAML_DEPTH = 32
MAX_YAML_DOCUMENTS = 16

_Loader: type[Any] = getattr(yaml, "CBaseLoader", yaml.BaseLoader)


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())[:200]


def load_json_object(data: bytes, what: str) -> dict[str, Any]:
    """Parse ``data`` as a JSON object; ``what`` names the file kind in error messages."""
    try:
        value = json.loads(data.decode("utf-8-sig", errors="replace"))
    except RecursionError:
        raise ParseError(f"{what}: JSON nested too deeply") from None
    except ValueError as exc:
        raise ParseError(f"{what}: invalid JSON: {_one_line(exc)}") from None
    if not isinstance(value, dict):
        raise ParseError(f"{what}: expected a JSON object, found {type(value).__name__}")
    return value


_NO_KEY = object()


class _Builder:
    """Builds documents from the YAML event stream, without recursion and in linear time.

    PyYAML's own constructor is recursive and, on lockfile-sized mappings, several times slower
    than the parse itself; lockfiles need none of what it adds (tags, merge keys, anchors). Every
    scalar stays a string, so ``version: 1.10`` is ``"1.10"``, not the float 1.1.
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self.documents: list[Any] = []
        self.root: Any = None
        self.stack: list[list[Any] | dict[str, Any]] = []
        self.keys: list[Any] = []  # the pending key of each mapping on the stack

    def put(self, value: Any) -> None:
        if not self.stack:
            self.root = value
            return
        top = self.stack[-1]
        if isinstance(top, list):
            top.append(value)
        elif self.keys[-1] is _NO_KEY:
            if not isinstance(value, str):
                raise ParseError(f"{self.what}: YAML mapping keys must be plain scalars")
            self.keys[-1] = value
        else:
            top[self.keys[-1]] = value
            self.keys[-1] = _NO_KEY

    def open(self, container: list[Any] | dict[str, Any]) -> None:
        self.put(container)
        if len(self.stack) >= MAX_YAML_DEPTH:
            raise ParseError(f"{self.what}: YAML nested deeper than {MAX_YAML_DEPTH} levels")
        self.stack.append(container)
        self.keys.append(_NO_KEY)

    def feed(self, event: yaml.Event) -> None:
        if isinstance(event, yaml.ScalarEvent):
            self.put(event.value)
        elif isinstance(event, yaml.MappingStartEvent):
            self.open({})
        elif isinstance(event, yaml.SequenceStartEvent):
            self.open([])
        elif isinstance(event, yaml.CollectionEndEvent):
            self.stack.pop()
            self.keys.pop()
        elif isinstance(event, yaml.DocumentStartEvent):
            if len(self.documents) >= MAX_YAML_DOCUMENTS:
                raise ParseError(f"{self.what}: more than {MAX_YAML_DOCUMENTS} YAML documents")
            self.root = None
        elif isinstance(event, yaml.DocumentEndEvent):
            self.documents.append(self.root)
        elif isinstance(event, yaml.AliasEvent):
            # No lockfile writer emits aliases, and they are how a small file expands into a huge one.
            raise ParseError(f"{self.what}: YAML aliases are not allowed in a lockfile")


def load_yaml_documents(data: bytes, what: str) -> list[Any]:
    """Every document of a YAML stream, with all scalars kept as strings (empty documents left out)."""
    text = data.decode("utf-8-sig", errors="replace")
    builder = _Builder(what)
    try:
        for event in yaml.parse(text, Loader=_Loader):
            builder.feed(event)
    except yaml.YAMLError as exc:
        raise ParseError(f"{what}: invalid YAML: {_one_line(exc)}") from None
    return [d for d in builder.documents if d not in (None, "")]
