"""The bounded YAML loader: plain data, a line for every value, and hostile input turned into one
ParseError naming the file."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from moat.checks.yamlload import MAX_DEPTH, MAX_NODES, load_yaml_documents, load_yaml_file
from moat.errors import ParseError

MANIFEST = """\
# leading comment
apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
    - name: app
      image: nginx:1.25
      securityContext:
        privileged: true
---
---
apiVersion: v1
kind: Service
metadata: {name: web}
"""


def test_multi_document_stream_keeps_lines_of_every_value() -> None:
    docs = load_yaml_documents(MANIFEST, "m.yaml")
    assert [d.data["kind"] for d in docs] == ["Pod", "Service"]
    pod = docs[0]
    assert pod.lines[("spec", "containers", 0)] == 8
    assert pod.lines[("spec", "containers", 0, "securityContext", "privileged")] == 11
    assert pod.data["spec"]["containers"][0]["securityContext"]["privileged"] is True
    assert (pod.start_line, pod.end_line) == (2, 11)
    assert docs[1].start_line == 14
    assert docs[1].index == 2  # the empty document between them still counts in the stream


def test_yaml_11_scalars_are_pyyaml_s() -> None:
    [doc] = load_yaml_documents("a: yes\nb: 0x1F\nc: 1_000\nd: ~\ne: '010'\nf: 2024-01-01\ng: 1.5\n", "s")
    assert doc.data == {"a": True, "b": 31, "c": 1000, "d": None, "e": "010", "f": "2024-01-01", "g": 1.5}


def test_base_60_numbers_stay_text_as_in_yaml_12() -> None:
    [doc] = load_yaml_documents("ports: [22:22, 8080:80, 1:30.5]\nn: 22\n", "compose.yaml")
    assert doc.data == {"ports": ["22:22", "8080:80", "1:30.5"], "n": 22}


def test_merge_keys_and_anchors_as_compose_files_use_them() -> None:
    text = "x-base: &base\n  restart: always\n  user: root\nservices:\n  web:\n    <<: *base\n    user: app\n"
    [doc] = load_yaml_documents(text, "compose.yaml")
    assert doc.data["services"]["web"] == {"user": "app", "restart": "always"}


def test_non_string_keys_become_text() -> None:
    [doc] = load_yaml_documents("80: 8080\ntrue: 1\nnull: 2\n", "k")
    assert doc.data == {"80": 8080, "true": 1, "null": 2}


def test_alias_bomb_is_refused_quickly() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 10):
        refs = ", ".join([f"*a{level - 1}"] * 10)
        lines.append(f"a{level}: &a{level} [{refs}]")
    started = time.monotonic()
    with pytest.raises(ParseError, match=f"more than {MAX_NODES:,} YAML nodes"):
        load_yaml_documents("\n".join(lines), "bomb.yaml")
    assert time.monotonic() - started < 60  # a bound, not a speed goal: it must not run for ever


DEEP_FLOW = "[" * 10_000 + "]" * 10_000
DEEP_BLOCK = "a:\n" + "".join(" " * i + "- \n" for i in range(1, 400))


@pytest.mark.parametrize("text", [DEEP_FLOW, DEEP_BLOCK])
def test_deep_nesting_is_a_clear_error(text: str) -> None:
    with pytest.raises(ParseError, match=r"deep\.yaml: .*(nest|deep)"):
        load_yaml_documents(text, "deep.yaml")


def test_depth_limit_allows_realistic_nesting() -> None:
    text = "".join("  " * i + f"k{i}:\n" for i in range(MAX_DEPTH // 2)) + "  " * (MAX_DEPTH // 2) + "v: 1\n"
    [doc] = load_yaml_documents(text, "ok.yaml")
    assert "k0" in doc.data


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: [1, 2\n", r"bad\.yaml: line \d+: invalid YAML"),
        ("a: b: c\n", r"bad\.yaml: line 1: invalid YAML"),
        ("? [a, b]\n: 1\n", r"bad\.yaml: line 1: a mapping key must be a scalar"),
        ("a: !!int xyz\n", r"bad\.yaml: line 1: bad scalar"),
        ("<<: 5\n", r"bad\.yaml: line 1: merge key needs a mapping"),
    ],
)
def test_invalid_yaml_names_file_and_line(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        load_yaml_documents(text, "bad.yaml")


def test_files_that_are_not_text_or_too_big(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    binary = tmp_path / "x.yaml"
    binary.write_bytes(b"a: \xff\xfe\n")
    with pytest.raises(ParseError, match=r"x\.yaml: not UTF-8"):
        load_yaml_file(binary)
    monkeypatch.setattr("moat.checks.yamlload.MAX_BYTES", 10)
    big = tmp_path / "big.yaml"
    big.write_text("a: " + "b" * 100)
    with pytest.raises(ParseError, match=r"big\.yaml: larger than"):
        load_yaml_file(big)
    with pytest.raises(ParseError, match="cannot read"):
        load_yaml_file(tmp_path / "missing.yaml")
