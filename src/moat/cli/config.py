"""``moat config PATH…``: check Dockerfiles, Kubernetes manifests (YAML, JSON, Lists, Helm charts,
kustomizations) and compose files against the built-in rules, a template, and custom CEL rules."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

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
    from moat.checks.collect import CollectOptions
    from moat.checks.rule import Rule

CONFIG_KINDS = ("dockerfile", "kubernetes", "compose")


def run_config(
    paths: list[str], output: CheckOutput, template_name: str | None, rules_files: list[str], include_manual: bool,
    collect_options: CollectOptions | None = None,
) -> int:
    from moat.checks.collect import collect, require_documents
    from moat.checks.engine import evaluate
    from moat.checks.rule import builtin_rules, rules_for
    from moat.checks.templates import load_template

    available = builtin_rules()
    custom = _custom_rules(rules_files, available)
    template = load_template(template_name) if template_name else None
    if template is not None:
        available = {**available, **{item.id: item for item in custom}}
        selected = template.select(available)  # may return custom rules with derived controls added
        chosen = {item.id for item in selected}
        selected += [item for item in custom if item.id not in chosen]
    else:
        selected = [item for item in available.values() if include_manual or not item.manual] + custom
    collected = collect(paths, collect_options)
    require_documents(collected, paths)
    run = evaluate(
        collected.documents,
        rules_for(CONFIG_KINDS, selected),
        params=template.params if template else None,
        severity_overrides=template.severity if template else None,
    )
    run.warnings[:0] = collected.warnings
    return finish_check_run(run, " ".join(paths), "config", output, template=template)


def _custom_rules(files: list[str], builtin: Mapping[str, Rule]) -> list[Rule]:
    if not files:
        return []
    from moat.checks.custom import load_custom_rules

    rules: list[Rule] = []
    for name in files:
        rules.extend(load_custom_rules(Path(name)))
    clash = sorted({item.id for item in rules} & set(builtin))
    if clash:
        raise MoatError(f"--rules: custom rule id {', '.join(clash)} is a built-in rule id")
    return rules


def register(app: typer.Typer) -> None:
    @app.command()
    def config(
        paths: Annotated[
            list[str],
            typer.Argument(help="Files or directories: Dockerfiles, Kubernetes YAML/JSON, Helm charts, "
                                "kustomizations, compose files."),
        ],
        template: TemplateOption = None,
        rules: Annotated[
            list[str] | None, typer.Option("--rules", help="YAML file of custom CEL rules (repeatable).")
        ] = None,
        include_manual: Annotated[
            bool, typer.Option("--include-manual", help="Also list checks a person must verify (no template).")
        ] = False,
        helm_values: Annotated[
            list[str] | None,
            typer.Option("--helm-values", help="Values file for every Helm chart, as helm template -f (repeatable)."),
        ] = None,
        build_arg: Annotated[
            list[str] | None,
            typer.Option("--build-arg", help="NAME=VALUE for every Dockerfile's ARG, as docker build (repeatable)."),
        ] = None,
        format: FormatOption = CheckFormat.table,
        output: opt.Output = None,
        severity: SeverityOption = None,
        exit_code: ExitCodeOption = 0,
    ) -> None:
        """Check configuration files for misconfigurations.

        Example: moat config k8s/ Dockerfile --severity HIGH,CRITICAL --exit-code 1 --format sarif -o moat.sarif
        """
        from moat.cli.main import guarded

        settings = CheckOutput(format, output, severity, exit_code)
        code = guarded(lambda: run_config(paths, settings, template, rules or [], include_manual,
                                          _collect_options(helm_values or [], build_arg or [])))
        if code:
            raise typer.Exit(code)


def _collect_options(helm_values: list[str], build_args: list[str]) -> CollectOptions:
    from moat.checks.collect import CollectOptions

    pairs = []
    for item in build_args:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise MoatError(f"--build-arg {item}: expected NAME=VALUE")
        pairs.append((name, value))
    return CollectOptions(helm_values=tuple(Path(v) for v in helm_values), build_args=tuple(pairs))
