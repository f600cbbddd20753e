"""The ``moat`` command: one typer app; each command group lives in its own module."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from typing import TypeVar

import typer
from rich.console import Console

from moat import __version__
from moat.errors import MoatError

app = typer.Typer(
    name="moat",
    help="Moat: container security from image to runtime. Inventory images, emit SBOMs, scan for vulnerabilities, "
    "check configuration against CIS benchmarks and Pod Security Standards.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
stderr = Console(stderr=True, highlight=False)

T = TypeVar("T")


def guarded(action: Callable[[], T]) -> T:
    """Run a command body: bad input → one line and exit 2; a bug → one line and exit 3.

    Set MOAT_DEBUG=1 to see the traceback of an internal error.
    """
    try:
        return action()
    except MoatError as exc:
        stderr.print(f"moat: error: {exc}", markup=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        stderr.print("moat: interrupted", markup=False)
        raise typer.Exit(130) from None
    except (typer.Exit, SystemExit):
        raise
    except Exception as exc:
        if os.environ.get("MOAT_DEBUG"):
            traceback.print_exc()
        stderr.print(f"moat: internal error: {type(exc).__name__}: {exc}", markup=False, soft_wrap=True)
        raise typer.Exit(3) from None


@app.command()
def version() -> None:
    """Print Moat's version."""
    typer.echo(__version__)


def _register_commands() -> None:
    from moat.cli import compliance, config, db, host, k8s_node, sbom, scan, templates

    sbom.register(app)
    scan.register(app)
    config.register(app)
    host.register(app)
    k8s_node.register(app)
    compliance.register(app)
    templates.register(app)
    db.register(app)


_register_commands()


def run() -> None:
    """Console-script entry point."""
    try:
        app()
    except BrokenPipeError:
        sys.stderr.close()
        sys.exit(0)
