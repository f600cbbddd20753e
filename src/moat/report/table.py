"""The human-readable package table (``--format table``), rendered with rich.

Long paths and layer digests are shortened so the table stays readable in a terminal; the JSON and
SBOM formats carry the full values. Every cell is plain text: a package called ``[bold]`` from a
hostile image must print as those characters, not restyle the terminal.
"""

from __future__ import annotations

from collections import Counter

from rich.console import Console
from rich.table import Table
from rich.text import Text

from moat.model import Inventory

MAX_PATH_WIDTH = 48
DIGEST_CHARS = 12


def render_inventory_table(inv: Inventory, console: Console) -> None:
    """Print the packages, one row each, then a one-line summary and any warnings."""
    table = Table(show_edge=False, header_style="bold")
    for heading in ("Type", "Name", "Version", "Found in", "Layer"):
        table.add_column(heading, overflow="fold")
    for package in inv.sorted_packages():
        table.add_row(
            Text(package.type),
            Text(package.name),
            Text(package.version),
            Text(shorten_path(package.found_in)),
            Text(short_digest(package.layer)),
        )
    if inv.packages:
        console.print(table)
    console.print(Text(summary_line(inv)))
    for warning in inv.warnings:
        console.print(Text(f"warning: {warning}", style="yellow"))


def summary_line(inv: Inventory) -> str:
    """E.g. ``812 packages (deb 805, pypi 7) in debian:12 · OS debian 12``; types by count, then name."""
    counts = Counter(package.type for package in inv.packages)
    total = len(inv.packages)
    line = f"{total} package{'' if total == 1 else 's'}"
    if counts:
        ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        line += " (" + ", ".join(f"{kind} {count}" for kind, count in ordered) + ")"
    line += f" in {inv.artifact.name}"
    if inv.os:
        line += f" · OS {inv.os.family} {inv.os.name}".rstrip()
    return line


def shorten_path(path: str, width: int = MAX_PATH_WIDTH) -> str:
    """Keep the end of a long path: the file name and its nearest directories say the most."""
    if len(path) <= width:
        return path
    return "…" + path[-(width - 1):]


def short_digest(digest: str | None) -> str:
    """``sha256:0123…`` → its first 12 hex characters, the length ``docker images`` shows."""
    if not digest:
        return ""
    return digest.split(":", 1)[-1][:DIGEST_CHARS]
