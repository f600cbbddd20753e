"""Kustomizations as documents: what ``kustomize build`` would send to the cluster, with each object
pointing back at the file it came from.

We render with the real tool, a ``kustomize`` binary or ``kubectl kustomize`` (kubectl embeds
kustomize), because overlays, patches, generators and name prefixes are kustomize's semantics, not
ours to re-implement. To find where each rendered object came from we do not edit the user's
kustomization: we render a throw-away kustomization in a temporary directory that has the user's
directory as its only resource and asks for ``buildMetadata: [originAnnotations]``. Kustomize then
annotates every object with ``config.kubernetes.io/origin`` (its source file), which we read and
remove. Line numbers come from that source file: a field a patch added points at its nearest
ancestor that the source file has (the pod spec a patch made privileged, say).

:func:`run_tool` (bounded output, timeout, a private HOME so nothing is written outside the temporary
directory) is shared with :mod:`moat.checks.targets.helm`.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from moat.checks.document import Document
from moat.checks.targets.kubernetes import kubernetes_documents, namespace_of
from moat.checks.yamlload import MAX_BYTES, YamlDocument, load_yaml_documents, load_yaml_file
from moat.errors import ParseError

TIMEOUT_SECONDS = 120
"""A render of a real repository takes well under a second; remote bases that cannot be fetched
(no network) must not hang the scan."""
ORIGIN = "config.kubernetes.io/origin"
KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")

INSTALL_HINT = (
    "kustomizations need the `kustomize` binary or `kubectl` (which embeds it) on PATH: install kubectl "
    "(https://kubernetes.io/docs/tasks/tools/) or kustomize (https://kubectl.docs.kubernetes.io/installation/"
    "kustomize/), or point `moat config` at the output of `kubectl kustomize DIR > rendered.yaml`"
)


def kustomize_command() -> list[str] | None:
    """The command that builds a kustomization: ``kustomize build`` or ``kubectl kustomize``."""
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


def run_tool(argv: Sequence[str], label: str, work_dir: Path, *, timeout: int = TIMEOUT_SECONDS,
             name: str = "") -> str:
    """Run a renderer and return its standard output; every failure is one ParseError naming ``label``.

    The tool runs with HOME, caches and configs inside ``work_dir`` (a temporary directory the caller
    owns), so it neither reads the user's kubeconfig nor writes anywhere else. ``name`` is what
    messages call the tool (default: the first two words of ``argv``).
    """
    tool = name or " ".join(argv[:2])
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(work_dir),
        "KUBECONFIG": str(work_dir / "kubeconfig"),
        "KUBECACHEDIR": str(work_dir / "kube-cache"),
        "HELM_CACHE_HOME": str(work_dir / "helm-cache"),
        "HELM_CONFIG_HOME": str(work_dir / "helm-config"),
        "HELM_DATA_HOME": str(work_dir / "helm-data"),
        "XDG_CACHE_HOME": str(work_dir / "cache"),
        "XDG_CONFIG_HOME": str(work_dir / "config"),
        "LANG": "C.UTF-8",
    }
    out_path, err_path = work_dir / "stdout", work_dir / "stderr"
    try:
        with out_path.open("wb") as out, err_path.open("wb") as err:
            done = subprocess.run(list(argv), cwd=work_dir, env=env, stdout=out, stderr=err, timeout=timeout,
                                  check=False, stdin=subprocess.DEVNULL, preexec_fn=_limit_output)
    except subprocess.TimeoutExpired:
        raise ParseError(f"{label}: {tool} did not finish within {timeout} s") from None
    except OSError as exc:
        raise ParseError(f"{label}: cannot run {tool}: {exc.strerror or exc}") from None
    if done.returncode == -signal.SIGXFSZ or out_path.stat().st_size > MAX_BYTES:
        raise ParseError(f"{label}: {tool} printed more than {MAX_BYTES // (1024 * 1024)} MiB; not read")
    if done.returncode != 0:
        with err_path.open("rb") as handle:
            raise ParseError(f"{label}: {tool} failed: {_last_error_line(handle.read(1024 * 1024))}")
    try:
        return out_path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ParseError(f"{label}: {tool} printed something that is not UTF-8") from None


def _limit_output() -> None:
    """In the child: no file it writes (its output included) may grow past what we would read; a
    renderer looping over a huge range is stopped by SIGXFSZ instead of filling the disk."""
    limit = MAX_BYTES + 1
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def _last_error_line(stderr: bytes) -> str:
    """The line that says what went wrong: helm's ``Error: …`` (followed by a hint line), kubectl's
    ``error: …`` or its logged ``err="…"``, else the last line."""
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    if not lines:
        return "no error message"
    chosen = next((line for line in lines if line.lower().startswith("error:") or ' err="' in line), lines[-1])
    if ' err="' in chosen:
        chosen = chosen.split(' err="', 1)[1].removesuffix('"')
    elif chosen.lower().startswith("error:"):
        chosen = chosen[len("error:"):].strip()
    return chosen[:500]


def render_kustomization(directory: Path, label: str) -> tuple[list[Document], list[str]]:
    """The objects the kustomization in ``directory`` produces, each pointing at its source file.

    Without a renderer there are no documents and one warning saying what to install.
    """
    command = kustomize_command()
    if command is None:
        return [], [f"{label}: {INSTALL_HINT}"]
    target = directory.resolve()
    with tempfile.TemporaryDirectory(prefix="moat-kustomize-") as tmp:
        work = Path(tmp)
        wrapper = work / "wrap"
        wrapper.mkdir()
        relative = os.path.relpath(target, wrapper)
        (wrapper / "kustomization.yaml").write_text(yaml.safe_dump(
            {"resources": [relative], "buildMetadata": ["originAnnotations"]}))
        text = run_tool([*command, str(wrapper)], label, work)
        documents = _documents(text, label, wrapper, target)
    return documents, []


def _documents(text: str, label: str, wrapper: Path, target: Path) -> list[Document]:
    rendered = kubernetes_documents(load_yaml_documents(text, f"{label} (kustomize output)"), label)
    sources: dict[Path, list[YamlDocument] | None] = {}
    for doc in rendered:
        origin = _pop_origin(doc.data)
        source = _origin_file(origin, wrapper)
        doc.facts["rendered_by"] = "kustomize"
        if source is None:
            doc.lines, doc.start_line, doc.end_line = {}, 0, 0  # the output's lines mean nothing to the user
            continue
        doc.path = _label_for(source, target, label)
        if source not in sources:
            sources[source] = _read_source(source)
        match = _find_source_object(sources[source] or [], doc.data)
        if match is None:
            doc.lines, doc.start_line, doc.end_line = {}, 0, 0
        else:
            doc.lines, doc.start_line, doc.end_line = match.lines, match.start_line, match.end_line
    return rendered


def _pop_origin(data: dict[str, Any]) -> str:
    metadata = data.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    if not isinstance(annotations, dict):
        return ""
    origin = annotations.pop(ORIGIN, "")
    if not annotations:
        del metadata["annotations"]  # type: ignore[union-attr]
    return origin if isinstance(origin, str) else ""


def _origin_file(origin: str, wrapper: Path) -> Path | None:
    try:
        parsed = yaml.safe_load(origin) if origin else None
    except yaml.YAMLError:
        return None
    path = parsed.get("path") if isinstance(parsed, dict) else None
    if not isinstance(path, str) or not path or "://" in path:
        return None  # generated (configMapGenerator) or from a remote repository
    resolved = Path(os.path.normpath(wrapper / path))
    return resolved if resolved.is_file() else None


def _label_for(source: Path, target: Path, label: str) -> str:
    """The source file as the user would name it: relative to the directory they gave."""
    return os.path.normpath(os.path.join(label, os.path.relpath(source, target)))


def _read_source(source: Path) -> list[YamlDocument] | None:
    try:
        return load_yaml_file(source)
    except ParseError:
        return None


def _find_source_object(candidates: list[YamlDocument], rendered: dict[str, Any]) -> YamlDocument | None:
    """The object in the source file that became ``rendered``: same kind, and the same name once
    kustomize's prefix and suffix are allowed for; the only one of its kind when names do not help."""
    kind = rendered.get("kind")
    same_kind = [c for c in candidates if isinstance(c.data, dict) and c.data.get("kind") == kind]
    name = _name(rendered)
    named = [c for c in same_kind if _name(c.data) and _name(c.data) in name]
    if len(named) > 1:
        exact_namespace = [c for c in named if namespace_of(c.data) == namespace_of(rendered)]
        named = exact_namespace or sorted(named, key=lambda c: -len(_name(c.data)))[:1]
    if named:
        return named[0]
    return same_kind[0] if len(same_kind) == 1 else None


def _name(data: Any) -> str:
    metadata = data.get("metadata") if isinstance(data, dict) else None
    name = metadata.get("name") if isinstance(metadata, dict) else None
    return name if isinstance(name, str) else ""

