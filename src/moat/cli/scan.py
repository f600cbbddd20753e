"""``moat image``, ``moat fs`` and ``moat sbom-scan``: inventory, match, apply the policy, report, gate.

The three commands differ only in how the target is named; they share one pipeline (:func:`run_scan`).
The vulnerability database is opened before the (possibly long) inventory, so a missing database
fails in a second with the command that fixes it.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from dataclasses import dataclass, field
from enum import StrEnum
from io import StringIO
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from moat.cli import options as opt
from moat.cli.output import write_report
from moat.cli.progress import layer_progress
from moat.errors import MoatError
from moat.image.source import SourceOptions
from moat.inventory.target import ScanSettings, inventory_opened, opened_target
from moat.model import Inventory, Misconfiguration, SecretFinding, Vulnerability
from moat.policy import Suppressed
from moat.policy.filters import parse_severities
from moat.policy.gate import Policy, apply_policy, gate_exit_code
from moat.policy.ignorefile import DEFAULT_IGNOREFILE

if TYPE_CHECKING:
    from moat.checks.engine import CheckRun
    from moat.vulndb.store import Store

SCANNERS = ("vuln", "config", "secret")
"""``vuln``: packages against the vulnerability database; ``config``: the image config, history and
setuid/setgid files against the image rules (CIS Docker section 4); ``secret``: credentials in every
layer's files."""


class ScanFormat(StrEnum):
    table = "table"
    json = "json"
    sarif = "sarif"
    cyclonedx_json = "cyclonedx-json"
    junit = "junit"
    template = "template"


Format = Annotated[ScanFormat, typer.Option("--format", "-f", help="Report format.")]
Template = Annotated[
    str | None, typer.Option("--template", help="Jinja2 template for --format template (sees the JSON report).")
]
Severity = Annotated[
    str | None,
    typer.Option("--severity", "-s", help="Report only these severities, e.g. HIGH,CRITICAL (default: all)."),
]
IgnoreUnfixed = Annotated[bool, typer.Option("--ignore-unfixed", help="Leave out findings with no fixed version.")]
ExitCode = Annotated[
    int,
    typer.Option("--exit-code", min=0, max=255, help="Exit with this code when findings remain after filters."),
]
IgnoreFile = Annotated[
    str | None,
    typer.Option("--ignorefile", help=f"YAML list of accepted findings (default: {DEFAULT_IGNOREFILE} if present)."),
]
Vex = Annotated[
    list[str] | None, typer.Option("--vex", help="OpenVEX or CycloneDX VEX document (repeatable).")
]
Db = Annotated[
    str | None,
    typer.Option("--db", envvar="MOAT_DB", help="Vulnerability database file (default: CACHE_DIR/db/vuln.db)."),
]
Scanners = Annotated[
    str, typer.Option("--scanners", help="Comma-separated scanners to run: vuln, config, secret (default: vuln).")
]


@dataclass(slots=True)
class ScanRequest:
    target: str
    format: ScanFormat = ScanFormat.table
    template: str | None = None
    severity: str | None = None
    ignore_unfixed: bool = False
    exit_code: int = 0
    ignorefile: str | None = None
    vex: list[str] = field(default_factory=list)
    db: str | None = None
    scanners: str = "vuln"
    output: str | None = None
    quiet: bool = False
    settings: ScanSettings = field(default_factory=ScanSettings)
    source_options: SourceOptions = field(default_factory=SourceOptions)


@dataclass(slots=True)
class ScanOutcome:
    inventory: Inventory
    findings: list[Vulnerability]
    suppressed: list[Suppressed]
    warnings: list[str]
    scanners: tuple[str, ...] = ("vuln",)
    checks: CheckRun | None = None
    """The config scanner's run (None when it did not run)."""
    misconfigurations: list[Misconfiguration] = field(default_factory=list)
    """The config scanner's findings after ``--severity``."""
    secrets: list[SecretFinding] | None = None
    """The secret scanner's findings after ``--severity`` (None when it did not run)."""


def run_scan(request: ScanRequest) -> int:
    """The whole command; returns the exit code (0, or the gate's code). Raises MoatError on bad input."""
    scanners = _check_scanners(request.scanners)
    _check_format(request)
    policy = Policy(
        severities=parse_severities(request.severity),
        ignore_unfixed=request.ignore_unfixed,
        ignorefile=_ignorefile(request.ignorefile),
        vex_files=[Path(item) for item in request.vex],
    )
    with ExitStack() as stack:
        store = stack.enter_context(_open_store(request)) if "vuln" in scanners else None
        opened = stack.enter_context(opened_target(request.target, request.source_options, request.settings))
        with layer_progress(not request.quiet) as on_layer:
            inventory = inventory_opened(request.target, opened, request.settings, on_layer)
        vulnerabilities: list[Vulnerability] = []
        if store is not None:
            from moat.match.matcher import match_inventory

            vulnerabilities = match_inventory(inventory, store)
        facts = None
        if opened is not None and ("config" in scanners or "secret" in scanners):
            from moat.paths import cache_dir
            from moat.secrets.layers import scan_layers

            root = cache_dir(request.settings.cache_dir) if request.settings.use_cache else None
            facts = scan_layers(opened, root, secrets="secret" in scanners, setuid="config" in scanners)
    result = apply_policy(vulnerabilities, policy)
    warnings = list(result.warnings) + (facts.warnings if facts else [])
    if opened is None and ("config" in scanners or "secret" in scanners):
        warnings.append(f"{request.target}: an SBOM has no layers: setuid files and layer secrets were not checked")
    for warning in warnings:
        _warn(warning)
    outcome = ScanOutcome(inventory, result.findings, result.suppressed, warnings, scanners)
    if "config" in scanners:
        from moat.checks.image import check_image

        outcome.checks = check_image(inventory, request.target, facts.setuid_files if facts else None)
        for warning in outcome.checks.warnings:
            _warn(warning)
        outcome.misconfigurations = [f for f in outcome.checks.findings if f.severity in policy.severities]
    if "secret" in scanners:
        found = facts.secrets if facts else []
        outcome.secrets = [item for item in found if item.severity in policy.severities]
    write_report(render(outcome, request), request.output)
    return _gate(outcome, request.exit_code)


def _open_store(request: ScanRequest) -> Store:
    """The vulnerability database, opened before the (possibly long) inventory so a missing one fails
    at once with the command that fixes it."""
    from moat.paths import cache_dir
    from moat.vulndb.store import Store, default_db_path

    db_path = Path(request.db) if request.db else default_db_path(cache_dir(request.settings.cache_dir))
    store = Store(db_path)
    for warning in _db_warnings(store):
        _warn(warning)
    return store


def _gate(outcome: ScanOutcome, exit_code: int) -> int:
    failed = any(f.status == "FAIL" for f in outcome.misconfigurations) or bool(outcome.secrets)
    return exit_code if failed else gate_exit_code(outcome.findings, exit_code)


def render(outcome: ScanOutcome, request: ScanRequest) -> str:
    inv, findings, target = outcome.inventory, outcome.findings, request.target
    fmt = request.format
    if fmt is ScanFormat.table:
        return _render_table(outcome)
    if fmt is ScanFormat.sarif:
        from moat.report.sarif import to_sarif

        sarif = to_sarif(inv, findings, target)
        if outcome.checks is not None or outcome.secrets is not None:
            from moat.report.misconfig_sarif import misconfigs_to_sarif

            extra = misconfigs_to_sarif(outcome.misconfigurations, target, outcome.secrets)
            sarif["runs"] += extra["runs"]
        return json.dumps(sarif, indent=2)
    if fmt is ScanFormat.junit:
        from moat.report.junit import to_junit

        text = to_junit(inv, findings, target)
        if outcome.checks is not None:
            from moat.report.junit import merge_junit
            from moat.report.misconfig_junit import misconfigs_to_junit

            text = merge_junit(text, misconfigs_to_junit(outcome.checks, outcome.misconfigurations,
                                                         f"{target} (config)"))
        return text
    if fmt is ScanFormat.cyclonedx_json:
        from moat.sbom.cyclonedx import inventory_to_cyclonedx

        return inventory_to_cyclonedx(inv, findings, outcome.suppressed)
    from moat.report.json_report import scan_to_report

    report = scan_to_report(inv, target, findings, outcome.suppressed)
    report["scanners"] = list(outcome.scanners)
    if outcome.checks is not None:
        from moat.report.misconfig_json import check_outcomes, misconfig_summary

        report["misconfigurations"] = [item.to_dict() for item in outcome.misconfigurations]
        report["checks"] = check_outcomes(outcome.checks)
        report["summary"]["misconfigurations"] = misconfig_summary(outcome.misconfigurations, outcome.checks)
    if outcome.secrets is not None:
        report["secrets"] = [item.to_dict() for item in outcome.secrets]
        report["summary"]["secrets"] = len(outcome.secrets)
    if fmt is ScanFormat.template:
        from moat.report.template import render_template

        assert request.template is not None  # checked by _check_format
        return render_template(request.template, report)
    return json.dumps(report, indent=2)


def _render_table(outcome: ScanOutcome) -> str:
    buffer = StringIO()
    console = Console(file=buffer, width=160, force_terminal=False)
    if "vuln" in outcome.scanners:
        from moat.report.vuln_table import render_vuln_table

        render_vuln_table(outcome.inventory, outcome.findings, console, suppressed=len(outcome.suppressed))
    if outcome.checks is not None or outcome.secrets is not None:
        from moat.report.misconfig_table import render_misconfig_table

        if "vuln" in outcome.scanners:
            console.print()
        rules_run = 0
        if outcome.checks is not None:
            rules_run = sum(1 for item in outcome.checks.outcomes.values() if item.status != "NOT_APPLICABLE")
        render_misconfig_table(outcome.misconfigurations, console, rules_run=rules_run, warnings=[],
                               secrets=outcome.secrets)
    return buffer.getvalue()


def _check_scanners(text: str) -> tuple[str, ...]:
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in chosen if name not in SCANNERS]
    if unknown or not chosen:
        named = ", ".join(unknown) or "(none)"
        raise MoatError(f"--scanners: unknown scanner {named} (available: {','.join(SCANNERS)})")
    return tuple(dict.fromkeys(chosen))


def _check_format(request: ScanRequest) -> None:
    if request.format is ScanFormat.template and not request.template:
        raise MoatError("--format template needs --template FILE")
    if request.template and request.format is not ScanFormat.template:
        raise MoatError("--template is used with --format template")


def _ignorefile(path: str | None) -> Path | None:
    if path is not None:
        return Path(path)  # named explicitly: a missing file is an error (load_ignorefile says so)
    default = Path(DEFAULT_IGNOREFILE)
    return default if default.is_file() else None


def _db_warnings(store: Store) -> list[str]:
    """The staleness warning (MOAT_DB_MAX_AGE days, default 7): the scan still runs on an old db."""
    from moat.vulndb.age import check_age

    warning = check_age(store)
    return [warning] if warning else []


def _warn(text: str) -> None:
    Console(stderr=True, highlight=False).print(f"moat: warning: {text}", markup=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    @app.command()
    def image(
        target: Annotated[
            str,
            typer.Argument(
                help="Image: oci-dir:PATH[:tag], oci-archive:PATH, docker-archive:PATH, registry:REF, "
                "docker:NAME, dir:PATH, sbom:FILE, or a plain path/reference."
            ),
        ],
        format: Format = ScanFormat.table,
        template: Template = None,
        severity: Severity = None,
        ignore_unfixed: IgnoreUnfixed = False,
        exit_code: ExitCode = 0,
        ignorefile: IgnoreFile = None,
        vex: Vex = None,
        db: Db = None,
        scanners: Scanners = "vuln",
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
        """Scan an image for vulnerabilities, and with --scanners for misconfiguration and secrets.

        Example: moat image registry:alpine:3.19 --scanners vuln,config,secret --severity HIGH,CRITICAL --exit-code 1
        """
        request = ScanRequest(
            target, format, template, severity, ignore_unfixed, exit_code, ignorefile, vex or [], db, scanners,
            output, quiet, ScanSettings(cache_dir=cache_dir, use_cache=not no_cache),
            SourceOptions(platform=platform, insecure=insecure, username=username, password=password,
                          docker_config=docker_config, docker_host=docker_host),
        )
        _run(request)

    @app.command()
    def fs(
        path: Annotated[str, typer.Argument(help="Directory to scan (a root filesystem or a project).")],
        format: Format = ScanFormat.table,
        template: Template = None,
        severity: Severity = None,
        ignore_unfixed: IgnoreUnfixed = False,
        exit_code: ExitCode = 0,
        ignorefile: IgnoreFile = None,
        vex: Vex = None,
        db: Db = None,
        scanners: Scanners = "vuln",
        output: opt.Output = None,
        cache_dir: opt.CacheDir = None,
        quiet: opt.Quiet = False,
    ) -> None:
        """Scan a directory for vulnerabilities (the same as moat image dir:PATH).

        Example: moat fs . --format sarif -o moat.sarif
        """
        target = path if path.startswith("dir:") else f"dir:{path}"
        _run(ScanRequest(target, format, template, severity, ignore_unfixed, exit_code, ignorefile, vex or [], db,
                         scanners, output, quiet, ScanSettings(cache_dir=cache_dir)))

    @app.command("sbom-scan")
    def sbom_scan(
        file: Annotated[str, typer.Argument(help="CycloneDX, SPDX or Moat JSON SBOM to scan.")],
        format: Format = ScanFormat.table,
        template: Template = None,
        severity: Severity = None,
        ignore_unfixed: IgnoreUnfixed = False,
        exit_code: ExitCode = 0,
        ignorefile: IgnoreFile = None,
        vex: Vex = None,
        db: Db = None,
        scanners: Scanners = "vuln",
        output: opt.Output = None,
        cache_dir: opt.CacheDir = None,
        quiet: opt.Quiet = False,
    ) -> None:
        """Scan the packages an SBOM lists for vulnerabilities (the same as moat image sbom:FILE).

        Example: moat sbom-scan app.cdx.json --format json
        """
        target = file if file.startswith("sbom:") else f"sbom:{file}"
        _run(ScanRequest(target, format, template, severity, ignore_unfixed, exit_code, ignorefile, vex or [], db,
                         scanners, output, quiet, ScanSettings(cache_dir=cache_dir)))


def _run(request: ScanRequest) -> None:
    from moat.cli.main import guarded

    code = guarded(lambda: run_scan(request))
    if code:
        raise typer.Exit(code)
