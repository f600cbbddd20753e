"""Loading the shared corpus's Kubernetes misconfiguration cases into Moat documents and findings.

Shared by the trivy-checks, kubesec and kubescape corpus tests (and usable by the cluster-object
tests): a case's input is parsed the way ``moat config`` parses manifests, every built-in rule runs
on every object, and findings are looked up by the peer id in each rule's aliases.
"""

from __future__ import annotations

from pathlib import Path

from moat.checks.document import Document
from moat.checks.engine import CheckRun, evaluate
from moat.checks.rule import builtin_rules
from moat.checks.targets.kubernetes import kubernetes_documents
from moat.checks.yamlload import load_yaml_file
from moat.model import Misconfiguration

KNOWN_FILE = "k8s-misconfig"
"""tests/known_differences/k8s-misconfig.yaml: case directory name -> reason it differs."""


def load_documents(path: Path) -> list[Document]:
    """Every Kubernetes object in a file, or in every YAML/JSON file under a directory (sorted)."""
    files = sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml", ".json")) if path.is_dir() else [path]
    documents: list[Document] = []
    for file in files:
        documents.extend(kubernetes_documents(load_yaml_file(file), str(file)))
    return documents


def run_all_rules(documents: list[Document]) -> CheckRun:
    return evaluate(documents, list(builtin_rules().values()))


def findings_for(run: CheckRun, peer_id: str) -> list[Misconfiguration]:
    """Failures of the rules that list ``peer_id`` among their aliases (case-sensitive, as peers are)."""
    return [f for f in run.findings if f.status == "FAIL" and peer_id in f.aliases]
