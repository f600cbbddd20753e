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


def _check_yaml_shape(text: str, what: str) -> None:
    """Walk the event stream (a flat, non-recursive parse) before building anything.

    Aliases are refused outright: no lockfile writer emits them, and they are how a small file
    expands into an enormous structure. Depth and document count are bounded for the same reason.
    """
    depth = 0
    documents = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.AliasEvent):
            raise ParseError(f"{what}: YAML aliases are not allowed in a lockfile")
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                raise ParseError(f"{what}: YAML nested deeper than {MAX_YAML_DEPTH} levels")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
        elif isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            if documents > MAX_YAML_DOCUMENTS:
                raise ParseError(f"{what}: more than {MAX_YAML_DOCUMENTS} YAML documents")


def load_yaml_documents(data: bytes, what: str) -> list[Any]:
    """Every document of a YAML stream, with all scalars kept as strings.

    The base loader resolves no implicit types, so ``version: 1.10`` stays ``"1.10"`` instead of
    becoming the float 1.1, and ``true`` stays the string ``"true"``.
    """
    text = data.decode("utf-8-sig", errors="replace")
    try:
        _check_yaml_shape(text, what)
        return list(yaml.load_all(text, Loader=_Loader))
    except yaml.YAMLError as exc:
        raise ParseError(f"{what}: invalid YAML: {_one_line(exc)}") from None
    except RecursionError:
        raise ParseError(f"{what}: YAML nested too deeply") from None
