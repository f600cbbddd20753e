"""From the paths a user gives ``moat config`` to documents: walk, classify each file, parse.

Classification is by name first (``Dockerfile``, ``Containerfile``, ``*.dockerfile``, compose file
names, ``Chart.yaml`` for a Helm chart, ``kustomization.yaml``), then by content for YAML and JSON:
an object with ``apiVersion`` and ``kind`` is Kubernetes; a mapping with ``services`` is compose.
Anything else is skipped silently when found by a directory walk and reported when named directly,
as linters do. A file that fails to parse is a warning naming it when found by a walk (one bad file
must not hide the findings of a thousand good ones) and an error when it is the only target.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from moat.checks.document import Document
from moat.checks.yamlload import YamlDocument, load_yaml_file
from moat.errors import MoatError, ParseError

DOCKERFILE_NAMES = ("dockerfile", "containerfile")
COMPOSE_NAMES = ("docker-compose.yml", "docker-compose.yaml", "compose.yml", "compose.yaml")
YAML_SUFFIXES = (".yaml", ".yml", ".json")
SKIP_DIRS = {".git", ".hg", ".svn", "node_modules", ".venv", "__pycache__", ".terraform"}
MAX_FILES = 100_000


@dataclass(frozen=True, slots=True)
class CollectOptions:
    """How targets that take inputs of their own are rendered."""

    helm_values: tuple[Path, ...] = ()
    """Values files for every Helm chart, in order (``helm template -f``)."""
    build_args: tuple[tuple[str, str], ...] = ()
    """``--build-arg`` values for every Dockerfile (they change what ``ARG`` expands to)."""


@dataclass(slots=True)
class Collected:
    documents: list[Document] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    files: int = 0
    """Files that gave at least one document."""


def require_documents(collected: Collected, paths: Iterable[str]) -> None:
    """Refuse a run that found nothing to check, saying why when files were skipped (an alias bomb,
    invalid YAML): "nothing found" alone would hide that every candidate failed to parse."""
    if collected.documents:
        return
    message = f"{', '.join(paths)}: no Dockerfile, Kubernetes manifest, compose file or chart found"
    if collected.warnings:
        count = len(collected.warnings)
        message += f"; {count} file{'s' if count != 1 else ''} could not be read, first: {collected.warnings[0]}"
    raise MoatError(message)


def is_dockerfile(path: Path) -> bool:
    name = path.name.lower()
    return (
        name in DOCKERFILE_NAMES
        or name.startswith(("dockerfile.", "containerfile."))
        or name.endswith((".dockerfile", ".containerfile"))
    )


def collect(paths: Iterable[str], options: CollectOptions | None = None) -> Collected:
    """Every document under ``paths`` (files, directories, chart or kustomization directories)."""
    options = options or CollectOptions()
    for values in options.helm_values:
        if not values.is_file():
            raise MoatError(f"--helm-values {values}: no such file")
    result = Collected()
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise MoatError(f"{raw}: no such file or directory")
        if path.is_dir():
            _walk(path, result, options)
        else:
            before = len(result.documents)
            _file(path, raw, result, options, named=True)
            if len(result.documents) == before and not result.warnings:
                raise MoatError(f"{raw}: not a Dockerfile, Kubernetes manifest, compose file, or chart")
    return result


def _walk(root: Path, result: Collected, options: CollectOptions) -> None:
    seen = 0
    for directory, subdirs, files in os.walk(root, followlinks=False):
        here = Path(directory)
        if "Chart.yaml" in files:
            _chart(here, result, options)
            subdirs[:] = []  # templates/ are not manifests until rendered
            continue
        kustomization = next((n for n in ("kustomization.yaml", "kustomization.yml", "Kustomization") if n in files),
                             None)
        if kustomization:
            _kustomization(here, result)
            subdirs[:] = []  # the kustomization's own resources are read through it
            continue
        subdirs[:] = sorted(d for d in subdirs if d not in SKIP_DIRS)
        for name in sorted(files):
            seen += 1
            if seen > MAX_FILES:
                raise MoatError(f"{root}: more than {MAX_FILES:,} files; point moat config at a smaller tree")
            path = here / name
            if path.is_symlink():
                continue  # a link may point anywhere on the machine; read what the tree itself holds
            _file(path, str(path), result, options, named=False)


def _file(path: Path, label: str, result: Collected, options: CollectOptions, *, named: bool) -> None:
    try:
        docs = _parse_file(path, label, options, named=named)
    except ParseError as exc:
        if named and not result.documents:
            raise
        result.warnings.append(str(exc))
        return
    if docs:
        result.files += 1
        result.documents.extend(docs)


def _parse_file(path: Path, label: str, options: CollectOptions, *, named: bool) -> list[Document]:
    if path.is_dir():
        return []
    if is_dockerfile(path):
        from moat.checks.targets.dockerfile import dockerfile_documents

        return dockerfile_documents(path, label, dict(options.build_args) or None)
    if path.suffix.lower() not in YAML_SUFFIXES and not named:
        return []
    if path.name == "Chart.yaml":
        return []
    yaml_docs = load_yaml_file(path, label)
    return classify_yaml(yaml_docs, label, compose_name=path.name.lower() in COMPOSE_NAMES)


def classify_yaml(yaml_docs: list[YamlDocument], label: str, *, compose_name: bool = False) -> list[Document]:
    """Kubernetes objects and compose files among parsed YAML documents; the rest are not ours."""
    from moat.checks.targets.compose import compose_documents, looks_like_compose
    from moat.checks.targets.kubernetes import kubernetes_documents, looks_like_kubernetes

    kube = [doc for doc in yaml_docs if looks_like_kubernetes(doc.data)]
    documents = kubernetes_documents(kube, label) if kube else []
    for doc in yaml_docs:
        if (compose_name or looks_like_compose(doc.data)) and not looks_like_kubernetes(doc.data):
            documents.extend(compose_documents(doc, label))
    return documents


def _chart(directory: Path, result: Collected, options: CollectOptions) -> None:
    from moat.checks.targets.helm import render_chart

    _rendered(lambda chart, label: render_chart(chart, label, options.helm_values), directory, result)


def _kustomization(directory: Path, result: Collected) -> None:
    from moat.checks.targets.kustomize import render_kustomization

    _rendered(render_kustomization, directory, result)


def _rendered(
    render: Callable[[Path, str], tuple[list[Document], list[str]]], directory: Path, result: Collected
) -> None:
    """Objects a tool renders from a directory (helm, kustomize); a failure is a warning naming it."""
    try:
        docs, warnings = render(directory, str(directory))
    except ParseError as exc:
        result.warnings.append(str(exc))
        return
    result.warnings.extend(warnings)
    if docs:
        result.files += 1
        result.documents.extend(docs)
