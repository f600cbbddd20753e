"""YAML (and JSON, which is YAML) read as hostile input, with the source line of every value.

Why our own tree walk rather than ``yaml.safe_load``: rules need line numbers for findings, and
``safe_load`` keeps none; and ``safe_load`` expands aliases without a bound, so an anchor bomb
("billion laughs") takes all memory. We let libyaml build the node tree (``compose_all`` with the C
loader when present, so parsing stays in C) and convert nodes to plain data ourselves, counting
every node we visit and stopping at :data:`MAX_NODES`. Scalars are built by PyYAML's own
``SafeConstructor`` so the YAML 1.1 rules (``yes``, ``0x1F``, ``1_000``) are PyYAML's.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from moat.checks.document import JsonPath
from moat.errors import ParseError

MAX_BYTES = 32 * 1024 * 1024
"""Largest file read (bytes). A manifest directory of a real cluster has files of kilobytes."""
MAX_NODES = 1_000_000
"""Most nodes visited in one file, aliases counted each time they are expanded."""
MAX_DEPTH = 200
"""Deepest nesting accepted: deeper than any real manifest, shallow enough for the C stack."""

_Loader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SCALARS = SafeConstructor()
_MERGE_TAG = "tag:yaml.org,2002:merge"
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"


@dataclass(slots=True)
class YamlDocument:
    """One document of a (possibly multi-document) YAML stream."""

    data: Any
    lines: dict[JsonPath, int] = field(default_factory=dict)
    start_line: int = 0
    end_line: int = 0
    index: int = 0
    """Position in the stream, counting from 0."""


def read_text(path: Path, label: str | None = None, max_bytes: int = MAX_BYTES) -> str:
    """The file's text, bounded and decoded; every failure is one ParseError naming the file."""
    name = label or str(path)
    try:
        with path.open("rb") as handle:
            raw = handle.read(max_bytes + 1)
    except OSError as exc:
        raise ParseError(f"{name}: cannot read ({exc.strerror or exc})") from exc
    if len(raw) > max_bytes:
        raise ParseError(f"{name}: larger than {max_bytes // (1024 * 1024)} MiB, not read")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ParseError(f"{name}: not UTF-8 text (byte {exc.start})") from exc


def load_yaml_documents(text: str, label: str) -> list[YamlDocument]:
    """Every document in ``text``; empty documents are dropped. Raises ParseError naming ``label``."""
    if len(text) > MAX_BYTES:
        raise ParseError(f"{label}: larger than {MAX_BYTES // (1024 * 1024)} MiB, not read")
    documents: list[YamlDocument] = []
    budget = _Budget(label)
    try:
        for index, root in enumerate(_compose_all(text)):
            if root is None:
                continue
            lines: dict[JsonPath, int] = {}
            data = _convert(root, (), lines, budget, 0)
            if data is None:
                continue
            documents.append(
                YamlDocument(data, lines, root.start_mark.line + 1, _end_line(root), index)
            )
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.context_mark is not None and exc.problem_mark is not None \
                and exc.context_mark.line != exc.problem_mark.line:
            problem += f" ({exc.context} started on line {exc.context_mark.line + 1})"
        raise ParseError(f"{label}:{where}: invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise ParseError(f"{label}: invalid YAML: {_first_line(str(exc))}") from None
    except RecursionError:
        raise ParseError(f"{label}: nested too deeply to parse") from None
    return documents


def load_yaml_file(path: Path, label: str | None = None) -> list[YamlDocument]:
    """Read and parse one file (see :func:`load_yaml_documents`)."""
    name = label or str(path)
    return load_yaml_documents(read_text(path, name), name)


def _compose_all(text: str) -> Iterator[Node | None]:
    loader = _Loader(text)
    try:
        while loader.check_node():
            yield loader.get_node()
    finally:
        loader.dispose()


class _Budget:
    __slots__ = ("label", "left")

    def __init__(self, label: str) -> None:
        self.label = label
        self.left = MAX_NODES

    def spend(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise ParseError(
                f"{self.label}: more than {MAX_NODES:,} YAML nodes once aliases are expanded "
                "(an alias bomb?); not read"
            )


def _convert(node: Node, path: JsonPath, lines: dict[JsonPath, int], budget: _Budget, depth: int) -> Any:
    budget.spend()
    if depth > MAX_DEPTH:
        raise ParseError(f"{budget.label}: nested deeper than {MAX_DEPTH} levels; not read")
    if isinstance(node, ScalarNode):
        return _scalar(node, budget.label)
    if isinstance(node, SequenceNode):
        items: list[Any] = []
        for index, child in enumerate(node.value):
            child_path = (*path, index)
            lines.setdefault(child_path, child.start_mark.line + 1)
            items.append(_convert(child, child_path, lines, budget, depth + 1))
        return items
    if isinstance(node, MappingNode):
        return _mapping(node, path, lines, budget, depth)
    raise ParseError(f"{budget.label}: line {node.start_mark.line + 1}: unsupported YAML node")


def _mapping(
    node: MappingNode, path: JsonPath, lines: dict[JsonPath, int], budget: _Budget, depth: int
) -> dict[str, Any]:
    result: dict[str, Any] = {}
    merged: dict[str, Any] = {}
    for key_node, value_node in node.value:
        if key_node.tag == _MERGE_TAG:
            # ``<<: *anchor`` (or a list of them): keys already written in this mapping win.
            sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            for source in sources:
                value = _convert(source, path, {}, budget, depth + 1)
                if not isinstance(value, dict):
                    raise ParseError(f"{budget.label}: line {source.start_mark.line + 1}: merge key needs a mapping")
                for key, item in value.items():
                    merged.setdefault(key, item)
            continue
        key = _convert(key_node, path, {}, budget, depth + 1)
        if isinstance(key, dict | list):
            raise ParseError(f"{budget.label}: line {key_node.start_mark.line + 1}: a mapping key must be a scalar")
        text_key = key if isinstance(key, str) else _key_text(key)
        child_path = (*path, text_key)
        lines.setdefault(child_path, key_node.start_mark.line + 1)
        result[text_key] = _convert(value_node, child_path, lines, budget, depth + 1)
    for key, item in merged.items():
        result.setdefault(key, item)
    return result


def _key_text(key: Any) -> str:
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)


def _scalar(node: ScalarNode, label: str) -> Any:
    tag = node.tag
    try:
        if tag == "tag:yaml.org,2002:str":
            return node.value
        if tag in (_INT_TAG, _FLOAT_TAG) and ":" in node.value:
            # YAML 1.1 base-60 (``22:22`` is 1342); Kubernetes and compose read YAML 1.2, where it is text.
            return node.value
        if tag == _INT_TAG:
            return _SCALARS.construct_yaml_int(node)
        if tag == _FLOAT_TAG:
            return _SCALARS.construct_yaml_float(node)
        if tag == "tag:yaml.org,2002:bool":
            return _SCALARS.construct_yaml_bool(node)
        if tag == "tag:yaml.org,2002:null":
            return None
    except (ConstructorError, ValueError) as exc:
        raise ParseError(f"{label}: line {node.start_mark.line + 1}: bad scalar: {exc}") from None
    # Timestamps, binary and unknown tags stay text: rules compare strings, and JSON has no dates.
    return node.value


def _end_line(node: Node) -> int:
    mark = node.end_mark
    # libyaml puts the end mark at column 0 of the line after a block node.
    return mark.line if mark.column == 0 and mark.line > node.start_mark.line else mark.line + 1


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "invalid YAML"
