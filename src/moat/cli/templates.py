"""``moat templates``: list the shipped templates, show what one runs, export one to copy and edit.

A template is a named selection of rules with parameters (:mod:`moat.checks.templates`). ``show`` is
how a user learns which parameter names a template may set and which controls each rule evidences;
``export`` writes the shipped YAML, comments included, as the starting point for ``--template FILE``.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from moat.errors import MoatError

if TYPE_CHECKING:
    from moat.checks.rule import Rule
    from moat.checks.templates import Template


class ShowFormat(StrEnum):
    table = "table"
    json = "json"


def template_summaries() -> list[dict[str, Any]]:
    """Each shipped template: id, title, framework and how many rules it selects (what ``list`` prints)."""
    from moat.checks.rule import builtin_rules
    from moat.checks.templates import builtin_template_names, load_template

    rules = builtin_rules()
    summaries = []
    for name in builtin_template_names():
        template = load_template(name)
        summaries.append({"name": name, "id": template.id, "title": template.title, "framework": template.framework,
                          "rules": len(template.select(rules))})
    return summaries


def template_details(name_or_file: str) -> dict[str, Any]:
    """A template and the rules it runs, with severity in force, parameters and controls (``show``)."""
    from moat.checks.rule import builtin_rules
    from moat.checks.templates import load_template

    template = load_template(name_or_file)
    selected = template.select(builtin_rules())
    return {
        "id": template.id,
        "title": template.title,
        "description": template.description,
        "framework": template.framework,
        "source": template.source,
        "rules_file": template.rules_file,
        "params": template.params,
        "controls": template.controls,
        "rules": [_rule_entry(item, template) for item in selected],
    }


def _rule_entry(item: Rule, template: Template) -> dict[str, Any]:
    params = {name: template.params.get(name, default) for name, default in item.params.items()}
    return {
        "id": item.id,
        "title": item.title,
        "severity": template.severity.get(item.id, item.severity),
        "manual": item.manual,
        "targets": list(item.targets),
        "params": params,
        "controls": list(item.controls),
        "source": item.source,
    }


def _show_text(details: dict[str, Any]) -> str:
    lines = [f"{details['id']}: {details['title']}"]
    if details["framework"]:
        lines.append(f"framework: {details['framework']}")
    lines.append(f"source:    {details['source']}")
    if details["rules_file"]:
        lines.append(f"rules:     {details['rules_file']}")
    if details["params"]:
        lines.append("params:")
        lines.extend(f"  {name} = {json.dumps(value)}" for name, value in details["params"].items())
    lines.append(f"{len(details['rules'])} rules:")
    for entry in details["rules"]:
        manual = " (manual)" if entry["manual"] else ""
        lines.append(f"  {entry['id']:<14} {entry['severity']:<8} {entry['title']}{manual}")
        framework = details["framework"]
        mine = [c for c in entry["controls"] if framework and c.startswith(f"{framework}:")]
        lines.append(f"      controls: {', '.join(mine or entry['controls']) or '-'}")
        if entry["params"]:
            lines.append("      params: " + ", ".join(f"{k}={json.dumps(v)}" for k, v in entry["params"].items()))
    return "\n".join(lines)


def export_template(name: str, output: str | None, force: bool) -> str | None:
    """The shipped YAML: returned for stdout, or written to ``output`` (refusing to overwrite unless
    ``force``); returns None when written."""
    from moat.checks.templates import builtin_template_text

    text = builtin_template_text(name)
    if output is None:
        return text
    path = Path(output)
    if path.is_dir():
        raise MoatError(f"{output}: is a directory")
    if (path.exists() or path.is_symlink()) and not force:
        raise MoatError(f"{output}: already exists (use --force to overwrite)")
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise MoatError(f"{output}: cannot write ({exc.strerror or exc})") from None
    return None


def register(app: typer.Typer) -> None:
    group = typer.Typer(name="templates", help="Rule templates: list, show and export them.", no_args_is_help=True)

    @group.command("list")
    def list_templates() -> None:
        """The shipped templates, with how many rules each selects."""
        from moat.cli.main import guarded

        def action() -> None:
            summaries = template_summaries()
            width = max(len(item["name"]) for item in summaries)
            for item in summaries:
                typer.echo(f"{item['name']:<{width}}  {item['rules']:>4} rules  {item['title']}")

        guarded(action)

    @group.command("show")
    def show(
        name: Annotated[str, typer.Argument(help="A shipped template's name or a template YAML file.")],
        format: Annotated[ShowFormat, typer.Option("--format", "-f", help="table or json.")] = ShowFormat.table,
    ) -> None:
        """The rules a template runs, with severities, parameters and controls."""
        from moat.cli.main import guarded

        def action() -> None:
            details = template_details(name)
            typer.echo(json.dumps(details, indent=2) if format is ShowFormat.json else _show_text(details))

        guarded(action)

    @group.command("export")
    def export(
        name: Annotated[str, typer.Argument(help="A shipped template's name (see `moat templates list`).")],
        output: Annotated[str | None, typer.Option("--output", "-o", help="Write to this file, not stdout.")] = None,
        force: Annotated[bool, typer.Option("--force", help="Overwrite an existing output file.")] = False,
    ) -> None:
        """Print or write a shipped template's YAML, to copy, edit and use with --template FILE."""
        from moat.cli.main import guarded

        def action() -> None:
            text = export_template(name, output, force)
            if text is not None:
                typer.echo(text, nl=False)
            else:
                typer.echo(f"wrote {output}", err=True)

        guarded(action)

    app.add_typer(group)
