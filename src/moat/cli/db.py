"""``moat db``: build, inspect, export and import the local vulnerability database."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from moat.cli import options as opt


class StatusFormat(StrEnum):
    table = "table"
    json = "json"


def _db_path(cache_dir: str | None) -> Path:
    from moat.paths import cache_dir as resolve
    from moat.vulndb.store import default_db_path

    return default_db_path(resolve(cache_dir))


def status_report(db_path: Path) -> dict[str, object]:
    """What ``moat db status --format json`` prints (also the source of the table)."""
    from moat.vulndb.age import check_age
    from moat.vulndb.store import Store

    with Store(db_path) as store:
        meta = store.meta()
        return {
            "path": str(db_path),
            "schema_version": int(meta.get("schema_version", "0")),
            "built_at": meta.get("built_at"),
            "age_warning": check_age(store),
            "sources": [
                {
                    "name": s.name,
                    "location": s.location,
                    "records": s.records,
                    "skipped": s.skipped,
                    "fetched_at": s.fetched_at,
                    "etag": s.etag,
                    "last_modified": s.last_modified,
                }
                for s in store.sources()
            ],
            "ecosystems": store.counts_by_ecosystem(),
        }


def _status_text(report: dict[str, object]) -> str:
    lines = [
        f"database: {report['path']}",
        f"schema:   {report['schema_version']}",
        f"built at: {report['built_at']}",
        "",
        "sources:",
    ]
    sources = report["sources"]
    assert isinstance(sources, list)
    width = max((len(s["name"]) for s in sources), default=10)
    for s in sources:
        skipped = f", {s['skipped']} skipped" if s["skipped"] else ""
        lines.append(f"  {s['name']:<{width}}  {s['records']:>8} records{skipped}  fetched {s['fetched_at']}")
        lines.append(f"  {'':<{width}}  {s['location']}")
    ecosystems = report["ecosystems"]
    assert isinstance(ecosystems, dict)
    lines += ["", "advisories per ecosystem:"]
    lines += [f"  {name:<24} {count:>8}" for name, count in ecosystems.items()]
    if report["age_warning"]:
        lines += ["", f"warning: {report['age_warning']}"]
    return "\n".join(lines) + "\n"


def register(app: typer.Typer) -> None:
    db_app = typer.Typer(
        name="db",
        help="The local vulnerability database: update, status, export, import.",
        no_args_is_help=True,
    )
    app.add_typer(db_app, name="db")

    @db_app.command("update")
    def update(
        sources: Annotated[
            list[str] | None,
            typer.Option(
                "--from",
                help="Feed to read (repeatable): an OSV all.zip, a directory of zips or JSON records, a URL, "
                "KEV JSON, EPSS CSV/tar.zst, Debian tracker JSON or DSA/DLA list, Alpine secdb. "
                "Default: the osv.dev exports, CISA KEV and FIRST EPSS.",
            ),
        ] = None,
        cache_dir: opt.CacheDir = None,
        offline: Annotated[
            bool, typer.Option("--offline", help="Fetch no URL: keep URL feeds from the current database.")
        ] = False,
        quiet: opt.Quiet = False,
    ) -> None:
        """Build a new vulnerability database; the current one stays in place if anything fails.

        Example: moat db update --from ./osv --from known_exploited_vulnerabilities.json
        """
        from moat.cli.main import guarded, stderr

        def action() -> None:
            from moat.paths import cache_dir as resolve
            from moat.vulndb.update import FeedResult, default_locations, update_db

            cache = resolve(cache_dir)
            db_path = _db_path(str(cache))

            def on_feed(feed: FeedResult) -> None:
                if not quiet:
                    stderr.print(feed.summary(), markup=False, soft_wrap=True)
                warning = feed.warning()
                if warning:
                    stderr.print(f"moat: warning: {warning}", markup=False, soft_wrap=True)

            result = update_db(
                db_path, sources or default_locations(), cache_dir=cache, offline=offline, on_feed=on_feed
            )
            for message in result.ignored:
                stderr.print(f"moat: warning: ignored {message}", markup=False, soft_wrap=True)
            if not quiet:
                size = db_path.stat().st_size
                stderr.print(
                    f"database {db_path}: {len(result.feeds)} sources, {size / 1e6:.1f} MB, "
                    f"{result.downloaded / 1e6:.1f} MB downloaded",
                    markup=False,
                    soft_wrap=True,
                )

        guarded(action)

    @db_app.command("status")
    def status(
        format: Annotated[StatusFormat, typer.Option("--format", "-f", help="Output format.")] = StatusFormat.table,
        cache_dir: opt.CacheDir = None,
    ) -> None:
        """Show the database's sources, advisories per ecosystem, build time and age."""
        from moat.cli.main import guarded

        def action() -> None:
            report = status_report(_db_path(cache_dir))
            if format is StatusFormat.json:
                sys.stdout.write(json.dumps(report, indent=2) + "\n")
            else:
                sys.stdout.write(_status_text(report))

        guarded(action)

    @db_app.command("export")
    def export(
        file: Annotated[str, typer.Argument(help="The file to write (a tar with the database and a manifest).")],
        cache_dir: opt.CacheDir = None,
    ) -> None:
        """Write the database to one verifiable file, for networks without internet."""
        from moat.cli.main import guarded, stderr

        def action() -> None:
            from moat.vulndb.transfer import export_db

            manifest = export_db(_db_path(cache_dir), Path(file))
            stderr.print(
                f"exported {file}: schema {manifest['schema_version']}, built {manifest['built_at']}, "
                f"sha256 {manifest['sha256']}",
                markup=False,
                soft_wrap=True,
            )

        guarded(action)

    @db_app.command("import")
    def import_(
        file: Annotated[str, typer.Argument(help="A file written by 'moat db export'.")],
        cache_dir: opt.CacheDir = None,
    ) -> None:
        """Verify an exported database (sha256, schema) and put it in place of the local one."""
        from moat.cli.main import guarded, stderr

        def action() -> None:
            from moat.vulndb.transfer import import_db

            manifest = import_db(Path(file), _db_path(cache_dir))
            stderr.print(
                f"imported {file}: schema {manifest['schema_version']}, built {manifest['built_at']}",
                markup=False,
                soft_wrap=True,
            )

        guarded(action)
