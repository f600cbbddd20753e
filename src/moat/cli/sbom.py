"""``moat sbom``: inventory a target and write it as an SBOM or Moat's own report."""

from __future__ import annotations

from enum import StrEnum
from io import StringIO
from typing import Annotated

import typer
from rich.console import Console

from moat.cli import options as opt
from moat.cli.output import write_report
from moat.cli.progress import layer_progress
from moat.image.source import SourceOptions
from moat.inventory.target import ScanSettings, inventory_target
from moat.model import Inventory


class SbomFormat(StrEnum):
    cyclonedx_json = "cyclonedx-json"
    spdx_json = "spdx-json"
    json = "json"
    table = "table"


def render(inventory: Inventory, fmt: SbomFormat, target: str) -> str:
    """The report text in the chosen format (one place, reused by later commands)."""
    if fmt is SbomFormat.cyclonedx_json:
        from moat.sbom.cyclonedx import inventory_to_cyclonedx

        return inventory_to_cyclonedx(inventory)
    if fmt is SbomFormat.spdx_json:
        from moat.sbom.spdx import inventory_to_spdx

        return inventory_to_spdx(inventory)
    if fmt is SbomFormat.json:
        import json

        from moat.report.json_report import inventory_to_report

        return json.dumps(inventory_to_report(inventory, target), indent=2)
    from moat.report.table import render_inventory_table

    buffer = StringIO()
    render_inventory_table(inventory, Console(file=buffer, width=160, force_terminal=False))
    return buffer.getvalue()


def register(app: typer.Typer) -> None:
    @app.command()
    def sbom(
        target: Annotated[
            str,
            typer.Argument(
                help="Image or filesystem: oci-dir:PATH[:tag], oci-archive:PATH, docker-archive:PATH, "
                "registry:REF, docker:NAME, dir:PATH, sbom:FILE, or a plain path/reference."
            ),
        ],
        format: Annotated[SbomFormat, typer.Option("--format", "-f", help="Output format.")] = SbomFormat.table,
        output: opt.Output = None,
        cache_dir: opt.CacheDir = None,
        no_cache: opt.NoCache = False,
        platform: opt.Platform = None,
        insecure: opt.Insecure = False,
        username: opt.Username = None,
        password: opt.Password = None,
        docker_config: opt.DockerConfig = None,
        docker_host: opt.DockerHost = None,
        quiet: opt.Quiet = False,
    ) -> None:
        """Inventory every package in an image and write an SBOM.

        Example: moat sbom docker-archive:app.tar --format cyclonedx-json -o app.cdx.json
        """
        from moat.cli.main import guarded

        def action() -> None:
            source_options = SourceOptions(
                platform=platform,
                insecure=insecure,
                username=username,
                password=password,
                docker_config=docker_config,
                docker_host=docker_host,
            )
            settings = ScanSettings(cache_dir=cache_dir, use_cache=not no_cache)
            with layer_progress(not quiet) as on_layer:
                inventory = inventory_target(target, source_options, settings, on_layer)
            write_report(render(inventory, format, target), output)

        guarded(action)
