"""``moat k8s-node``: assess a Kubernetes node against the CIS Kubernetes Benchmark, sections 1 to 4.

Agentless, like kube-bench: it reads the node's files (``--root /`` on the node itself, or a copy of the
node's tree) and, on the live system, the running components' command lines. The node's role decides
which items apply (a worker is not held to API server items); ``--role`` forces one.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from moat.cli import options as opt
from moat.cli.config_output import (
    CheckFormat,
    CheckOutput,
    ExitCodeOption,
    FormatOption,
    SeverityOption,
    TemplateOption,
    finish_check_run,
)
from moat.errors import MoatError

if TYPE_CHECKING:
    from moat.model import Misconfiguration


class Role(StrEnum):
    auto = "auto"
    master = "master"
    worker = "worker"
    etcd = "etcd"


class Benchmark(StrEnum):
    auto = "auto"
    cis_1_8 = "cis-1.8"
    cis_1_9 = "cis-1.9"
    cis_1_10 = "cis-1.10"
    cis_1_11 = "cis-1.11"
    cis_1_12 = "cis-1.12"


def run_k8s_node(root: str, role: str, benchmark: str, output: CheckOutput, template_name: str | None,
                 skip_manual: bool, quiet: bool = False) -> int:
    from moat.checks.document import TargetKind
    from moat.checks.engine import evaluate
    from moat.checks.rule import builtin_rules, rules_for
    from moat.checks.rules.k8s_node import rules_for_roles
    from moat.checks.targets.k8s_node import NodeOptions, collect_node
    from moat.checks.templates import load_template

    template = load_template(template_name) if template_name else None
    available = builtin_rules()
    selected = template.select(available) if template else list(available.values())
    selected = [item for item in rules_for([TargetKind.K8S_NODE], selected) if not (skip_manual and item.manual)]
    scan = collect_node(NodeOptions(root=root, role=role, benchmark=benchmark))
    data = scan.document.data
    if not data["roles"]:
        raise MoatError(f"{root}: no Kubernetes component found (no control plane manifest or process, no kubelet "
                        "unit, process or config); use --role to assess it anyway")
    if not quiet:
        version = f", Kubernetes {data['kubernetes_version']}" if data["kubernetes_version"] else ""
        Console(stderr=True, highlight=False).print(
            f"moat: {scan.document.name}: benchmark {data['benchmark']} ({data['benchmark_source']}){version}",
            markup=False, soft_wrap=True)
    run = evaluate(
        [scan.document],
        rules_for_roles(selected, data["roles"]),
        params=template.params if template else None,
        severity_overrides=template.severity if template else None,
    )
    run.warnings[:0] = scan.warnings
    place_in_files(run.findings, root)
    facts = {key: data.get(key) for key in ("role", "roles", "benchmark", "benchmark_source", "kubernetes_version")}
    return finish_check_run(run, root, "k8s-node", output, template=template, facts={"node": facts})


def place_in_files(findings: list[Misconfiguration], root: str) -> None:
    """A node finding's object is the node path of the file at fault and its line is in that file; make
    ``file`` that file under the scanned root, so SARIF and editors open the right file at the right line."""
    for finding in findings:
        if finding.target_kind == "k8s-node" and finding.object.startswith("/"):
            finding.file = str(PurePosixPath(root) / finding.object.lstrip("/"))


def register(app: typer.Typer) -> None:
    @app.command("k8s-node")
    def k8s_node(
        root: Annotated[
            str, typer.Option("--root", help="The node's root: / on the node itself, or a copy of its tree.")
        ] = "/",
        role: Annotated[
            Role, typer.Option("--role", help="Node role whose items apply (auto: detected from the node).")
        ] = Role.auto,
        benchmark: Annotated[
            Benchmark,
            typer.Option("--benchmark", help="CIS release (auto: from the Kubernetes version, else cis-1.9)."),
        ] = Benchmark.auto,
        template: TemplateOption = None,
        skip_manual: Annotated[
            bool, typer.Option("--skip-manual", help="Leave out the items a person must verify.")
        ] = False,
        format: FormatOption = CheckFormat.table,
        output: opt.Output = None,
        severity: SeverityOption = None,
        exit_code: ExitCodeOption = 0,
        quiet: opt.Quiet = False,
    ) -> None:
        """Check a Kubernetes node (control plane, etcd, worker) against the CIS Kubernetes Benchmark.

        Example: moat k8s-node --root / --format json -o node.json --severity HIGH,CRITICAL --exit-code 1
        """
        from moat.cli.main import guarded

        settings = CheckOutput(format, output, severity, exit_code)
        code = guarded(lambda: run_k8s_node(root, role.value, benchmark.value, settings, template, skip_manual,
                                            quiet))
        if code:
            raise typer.Exit(code)
