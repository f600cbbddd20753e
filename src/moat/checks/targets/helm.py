"""Helm charts as documents: the manifests ``helm template`` renders, each pointing at its template.

Templates are not YAML until Helm has run (``{{ if }}`` blocks, ``range`` loops, values), so a chart
is rendered by Helm itself, never by us: ``helm template`` with the chart's default values and any
``--values`` files, in a child process with a timeout and a private HOME (so Helm neither reads the
user's repositories and kubeconfig nor writes outside a temporary directory). Without ``helm`` on
PATH the chart gives no documents and one warning saying how to get Helm, or how to scan
``helm template`` output instead.

Each rendered manifest is attributed to its template: ``helm template`` prints ``# Source:
CHART/templates/x.yaml`` before each one, and we turn that into the template's path under the chart
directory. Line numbers are found in the template text: a
field's line is the first line after its parent's line that starts with the field's key (templates
keep literal keys; values substituted into them do not move keys). A key the template does not spell
out (a ``toYaml`` block, say) falls back to its nearest ancestor that it does.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from moat.checks.document import Document, JsonPath
from moat.checks.targets.kubernetes import kubernetes_documents
from moat.checks.targets.kustomize import run_tool
from moat.checks.yamlload import YamlDocument, load_yaml_documents, read_text
from moat.errors import ParseError

RELEASE_NAME = "release-name"
"""The name ``helm template`` uses when none is given; rendered names read ``release-name-web``."""
MAX_TEMPLATE_LINES = 20_000
"""Templates longer than this are not searched for lines (the finding keeps the template's path)."""

INSTALL_HINT = (
    "Helm charts need the `helm` binary on PATH to be rendered (https://helm.sh/docs/intro/install/); or "
    "render the chart yourself and scan the output: "
    "`helm template RELEASE CHART_DIR > rendered.yaml && moat config rendered.yaml`"
)

_SOURCE = re.compile(r"^# Source: (.+?)\s*$")

def render_chart(chart_dir: Path, label: str, values: Sequence[Path] = ()) -> tuple[list[Document], list[str]]:
    """The objects the chart in ``chart_dir`` renders to with its default values, plus ``values`` files
    in order (later files win, as with ``helm template -f a.yaml -f b.yaml``)."""
    if shutil.which("helm") is None:
        return [], [f"{label}: {INSTALL_HINT}"]
    chart = chart_dir.resolve()
    argv = ["helm", "template", RELEASE_NAME, str(chart)]
    for item in values:
        argv += ["--values", str(Path(item).resolve())]
    with tempfile.TemporaryDirectory(prefix="moat-helm-") as tmp:
        manifests = split_helm_output(run_tool(argv, label, Path(tmp)))
    return documents_from_manifests(manifests, chart, label), []


def split_helm_output(text: str) -> list[tuple[str, str]]:
    """``helm template`` output as (source, manifest text) pairs, cut at its ``# Source:`` comments."""
    pieces: list[tuple[str, str]] = []
    source = ""
    current: list[str] = []
    for line in text.splitlines(keepends=True):
        found = _SOURCE.match(line)
        if found:
            if current:
                pieces.append((source, "".join(current)))
            source, current = found.group(1), []
            continue
        current.append(line)
    if current:
        pieces.append((source, "".join(current)))
    return [(src, body) for src, body in pieces if body.strip(" \n-")]


def documents_from_manifests(manifests: Sequence[tuple[str, str]], chart: Path, label: str) -> list[Document]:
    """Kubernetes documents from rendered manifests, each with its template's path and lines."""
    documents: list[Document] = []
    templates: dict[str, list[str] | None] = {}
    for source, body in manifests:
        template_label, template_file = _template_of(source, chart, label)
        if template_label not in templates:
            templates[template_label] = _template_text(template_file) if template_file else None
        yaml_docs = load_yaml_documents(body, f"{template_label} (rendered)")
        by_identity = {id(y.data): y for y in yaml_docs}
        for doc in kubernetes_documents(yaml_docs, template_label):
            doc.facts["rendered_by"] = "helm"
            template = templates[template_label]
            rendered = by_identity.get(id(doc.data))
            if template is None or rendered is None:
                doc.lines, doc.start_line, doc.end_line = {}, 0, 0  # lines of the output mean nothing to the user
            else:
                doc.lines, doc.start_line = template_lines(template, rendered)
                doc.end_line = doc.start_line
            documents.append(doc)
    return documents


def _template_of(source: str, chart: Path, label: str) -> tuple[str, Path | None]:
    """``shop/templates/x.yaml`` → (``LABEL/templates/x.yaml``, the file); the first component is the
    chart's name, not a directory. A source outside the chart is not followed."""
    parts = [part for part in source.replace("\\", "/").split("/") if part]
    if len(parts) < 2 or ".." in parts:
        return label, None
    relative = os.path.join(*parts[1:])
    candidate = (chart / relative).resolve()
    if not candidate.is_relative_to(chart) or not candidate.is_file():
        return os.path.join(label, relative), None
    return os.path.join(label, relative), candidate


def _template_text(path: Path) -> list[str] | None:
    try:
        lines = read_text(path).splitlines()
    except ParseError:
        return None
    return lines if len(lines) <= MAX_TEMPLATE_LINES else None


def template_lines(template: list[str], rendered: YamlDocument) -> tuple[dict[JsonPath, int], int]:
    """Lines in the template for the paths of a rendered object, and the object's first line."""
    kind = rendered.data.get("kind") if isinstance(rendered.data, dict) else None
    start = _find(template, re.compile(rf"^\s*kind:\s*[\"']?{re.escape(str(kind))}[\"']?\s*(#.*)?$"), 0)
    if start is None:
        return {}, 0
    for back in range(start - 1, max(start - 6, -1), -1):
        if re.match(r"^\s*apiVersion\s*:", template[back]):
            start = back
            break
    lines: dict[JsonPath, int] = {}
    for path in sorted(rendered.lines, key=len):
        key = path[-1]
        if isinstance(key, int):
            continue
        parent = path[:-1]
        while parent and parent not in lines:
            parent = parent[:-1]
        search_from = lines[parent] if parent else start  # the line after the parent (1-based = next index)
        found = _find(template, re.compile(rf"^\s*(- )?[\"']?{re.escape(key)}[\"']?\s*:"), search_from)
        if found is not None:
            lines[path] = found + 1
    return lines, start + 1


def _find(lines: list[str], pattern: re.Pattern[str], begin: int) -> int | None:
    for index in range(max(begin, 0), len(lines)):
        if pattern.match(lines[index]):
            return index
    return None
