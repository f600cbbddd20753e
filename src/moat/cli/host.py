"""``moat host``: audit a Docker host and its running containers against CIS Docker Benchmark 1.6
sections 1, 2, 3 and 5, agentless — files under --root, the daemon over its socket."""

from __future__ import annotations

from typing import Annotated

import typer

from moat.checks.document import TargetKind
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

HOST_KINDS = (TargetKind.DOCKER_HOST, TargetKind.DOCKER_CONTAINER)


def run_host(root: str, docker_socket: str | None, output: CheckOutput, template_name: str | None,
             include_manual: bool) -> int:
    from moat.checks.engine import evaluate
    from moat.checks.rule import builtin_rules, rules_for
    from moat.checks.targets.docker_host import collect_docker_host
    from moat.checks.templates import load_template

    available = builtin_rules()
    template = load_template(template_name) if template_name else None
    if template is not None:
        selected = template.select(available)
    else:
        selected = [item for item in available.values() if include_manual or not item.manual]
    scan = collect_docker_host(root, docker_socket)
    run = evaluate(
        scan.documents,
        rules_for(HOST_KINDS, selected),
        params=template.params if template else None,
        severity_overrides=template.severity if template else None,
    )
    run.warnings[:0] = scan.warnings
    target = f"{root} (engine unix://{scan.engine})" if scan.engine else root
    return finish_check_run(run, target, "host", output, template=template)


def register(app: typer.Typer) -> None:
    @app.command()
    def host(
        root: Annotated[
            str, typer.Option("--root", help="The host's root file system: / for this machine, or a copied tree.")
        ] = "/",
        docker_socket: Annotated[
            str | None,
            typer.Option("--docker-socket", help="Engine socket (default $DOCKER_HOST, else /var/run/docker.sock "
                                                 "when --root is /)."),
        ] = None,
        template: TemplateOption = None,
        include_manual: Annotated[
            bool, typer.Option("--include-manual", help="Also list benchmark items a person must verify.")
        ] = False,
        format: FormatOption = CheckFormat.table,
        output: opt.Output = None,
        severity: SeverityOption = None,
        exit_code: ExitCodeOption = 0,
    ) -> None:
        """Audit a Docker host (daemon settings, files, audit rules) and its running containers.

        Example: moat host --severity HIGH,CRITICAL --exit-code 1 --format sarif -o host.sarif
        """
        from moat.cli.main import guarded

        settings = CheckOutput(format, output, severity, exit_code)
        code = guarded(lambda: run_host(root, docker_socket, settings, template, include_manual))
        if code:
            raise typer.Exit(code)
