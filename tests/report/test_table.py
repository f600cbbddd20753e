"""The package table, rendered to a string the way a terminal would show it."""

from __future__ import annotations

import importlib.metadata
import subprocess
from io import StringIO

from rich.console import Console

from moat.inventory.purl import make_purl
from moat.model import Artifact, Inventory, OSInfo, Package
from moat.report.table import render_inventory_table, short_digest, shorten_path, summary_line

LAYER = "sha256:0123456789abcdef" + "0" * 48
SITE = "usr/local/lib/python3.11/site-packages"


def render(inv: Inventory) -> str:
    out = StringIO()
    render_inventory_table(inv, Console(file=out, width=200, force_terminal=False))
    return out.getvalue()


def debs(limit: int) -> list[Package]:
    query = subprocess.run(["dpkg-query", "-W", "-f", "${db:Status-Status} ${Package} ${Version}\n"],
                           check=True, capture_output=True, text=True)
    rows = [line.split(" ") for line in query.stdout.splitlines() if line.startswith("installed ")]
    return [Package(name, version, "deb", make_purl("deb", name, version, "debian"),
                    found_in="var/lib/dpkg/status", layer=LAYER) for _, name, version in rows[:limit]]


def wheel(name: str) -> Package:
    version = importlib.metadata.version(name)
    return Package(name, version, "pypi", make_purl("pypi", name, version),
                   found_in=f"{SITE}/{name}-{version}.dist-info/METADATA", layer=LAYER)


def image(packages: list[Package], os_info: OSInfo | None = None) -> Inventory:
    return Inventory(Artifact("docker.io/library/python:3.11", "container_image"), os=os_info,
                     packages=packages)


def test_rows_and_summary() -> None:
    packages = [*debs(12), wheel("idna"), wheel("httpx")]
    text = render(image(packages, OSInfo("debian", "12", "Debian GNU/Linux 12 (bookworm)")))
    for heading in ("Type", "Name", "Version", "Found in", "Layer"):
        assert heading in text
    idna = next(line for line in text.splitlines() if " idna " in line)
    assert "pypi" in idna and importlib.metadata.version("idna") in idna
    assert "0123456789ab" in idna and LAYER not in text  # the layer is shortened to 12 hex digits
    cells = [cell.strip() for cell in idna.split("│")]
    assert cells[3].startswith("…") and cells[3].endswith(f"idna-{cells[2]}.dist-info/METADATA")
    assert len(cells[3]) == 48
    first_deb = packages[0]
    assert any(first_deb.name in line and first_deb.version in line for line in text.splitlines())
    assert text.rstrip().splitlines()[-1] == (
        "14 packages (deb 12, pypi 2) in docker.io/library/python:3.11 · OS debian 12")


def test_rows_are_sorted_like_the_report() -> None:
    packages = [wheel("rich"), *debs(3), wheel("attrs")]
    text = render(image(packages))
    order = [p.name for p in sorted(packages, key=lambda p: (p.type, p.name, p.version, p.found_in))]
    positions = [text.index(f" {name} ") for name in order]
    assert positions == sorted(positions)


def test_cells_are_text_not_markup() -> None:
    hostile = Package("[bold red]evil[/bold red]", "1.0[/]", "npm", found_in="srv/[link=x]package-lock.json")
    text = render(image([hostile]))
    assert "[bold red]evil[/bold red]" in text and "1.0[/]" in text and "[link=x]" in text


def test_empty_inventory_has_only_the_summary() -> None:
    text = render(image([]))
    assert text.strip() == "0 packages in docker.io/library/python:3.11"
    assert "Type" not in text


def test_one_package_warnings_and_no_os() -> None:
    inv = image([wheel("idna")])
    inv.warnings = ["layer sha256:abc: 1 entry with an unsafe path was skipped"]
    text = render(inv)
    assert "1 package (pypi 1) in docker.io/library/python:3.11\n" in text
    assert "warning: layer sha256:abc: 1 entry with an unsafe path was skipped" in text
    assert "· OS" not in text


def test_summary_orders_types_by_count_then_name() -> None:
    packages = [*debs(3), wheel("idna"), wheel("rich"), wheel("attrs"), Package("lodash", "4.17.21", "npm"),
                Package("ms", "2.0.0", "npm"), Package("cargo", "1", "cargo")]
    line = summary_line(image(packages, OSInfo("alpine", "3.19.1")))
    assert line == ("9 packages (deb 3, pypi 3, npm 2, cargo 1) in docker.io/library/python:3.11"
                    " · OS alpine 3.19.1")


def test_short_forms() -> None:
    assert shorten_path("etc/os-release") == "etc/os-release"
    long = "usr/lib/node_modules/npm/node_modules/@npmcli/arborist/package.json"
    assert shorten_path(long) == "…" + long[-47:] and len(shorten_path(long)) == 48
    assert short_digest(None) == "" and short_digest("sha256:" + "ab" * 32) == "ab" * 6
