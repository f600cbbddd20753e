"""The compliance view of check results: one status per control of a template's framework.

A finding list answers "what is wrong"; an auditor asks "which controls of CIS Docker 1.6 hold".
The answer needs what every rule concluded, not just its failures: a control whose rules never saw a
document of their kind has not passed, it was not assessed. So this module works from the engine's
per-rule outcomes (:class:`~moat.checks.engine.RuleOutcome`) or from the ``checks`` array of saved
JSON reports (:mod:`moat.report.misconfig_json`), which lets one compliance report cover ``moat host``
on every host, ``moat k8s-node`` on every node and ``moat config`` on the repository.

Per rule, merged over every input: FAIL wins; PASS needs the rule to have been evaluated somewhere.
Per control, from the rules mapped to it, in this order:

``FAIL``
    a rule mapped to it failed.
``PASS``
    at least one automated rule mapped to it was evaluated, and none found anything.
``NOT_ASSESSED``
    automated rules map to it but none was evaluated (no document of the kinds they read).
``MANUAL``
    only manual rules map to it, or no rule does (the template names it, a person must verify it).

Why one evaluated rule is enough for PASS: the rules mapped to one control usually read different
kinds of evidence for the same requirement (CIS Docker 5.4 "no privileged containers" is checked on
running containers by ``moat host`` and on compose files by ``moat config``). Requiring all of them
would fail every host without compose files. Each control still lists which of its rules were not
evaluated, so a reader sees how wide the evidence was.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moat import __version__
from moat.errors import MoatError
from moat.model import SEVERITIES, Misconfiguration

if TYPE_CHECKING:
    from moat.checks.engine import CheckRun
    from moat.checks.rule import Rule
    from moat.checks.templates import Template

COMPLIANCE_SCHEMA = "moat.compliance/v1"

PASS = "PASS"
FAIL = "FAIL"
MANUAL = "MANUAL"
NOT_ASSESSED = "NOT_ASSESSED"
CONTROL_STATUSES = (FAIL, NOT_ASSESSED, MANUAL, PASS)
"""Most urgent first: the order of the summary and of the per-control table's legend."""

NOT_APPLICABLE = "NOT_APPLICABLE"
RULE_STATUSES = (PASS, FAIL, MANUAL, NOT_APPLICABLE)

MAX_REPORT_BYTES = 256 * 1024 * 1024
"""A saved report larger than this is not one Moat wrote for a sane number of objects."""
MAX_CHECKS = 100_000
MAX_FINDINGS = 2_000_000


@dataclass(slots=True)
class CheckResult:
    """What one rule concluded, from one run or merged over many."""

    rule_id: str
    title: str
    severity: str
    status: str
    """PASS, FAIL, MANUAL or NOT_APPLICABLE (:data:`RULE_STATUSES`)."""
    evaluated: int = 0
    failures: int = 0
    controls: tuple[str, ...] = ()
    manual: bool = False
    targets: tuple[str, ...] = ()
    description: str = ""
    remediation: str = ""
    verification: str = ""

    @classmethod
    def from_rule(cls, item: Rule, severity: str = "") -> CheckResult:
        """A selected rule that no input ran: it counts as never evaluated."""
        return cls(item.id, item.title, severity or item.severity, NOT_APPLICABLE, 0, 0, tuple(item.controls),
                   item.manual, tuple(item.targets), item.description, item.remediation, item.verification)

    def merge(self, other: CheckResult) -> None:
        """Fold another run's result for the same rule into this one (FAIL wins, PASS needs evaluation)."""
        self.evaluated += other.evaluated
        self.failures += other.failures
        statuses = {self.status, other.status}
        for status in (FAIL, PASS, MANUAL, NOT_APPLICABLE):
            if status in statuses:
                self.status = status
                break
        self.controls = tuple(dict.fromkeys((*self.controls, *other.controls)))
        self.targets = tuple(dict.fromkeys((*self.targets, *other.targets)))
        self.manual = self.manual or other.manual
        if _SEVERITY_RANK.get(other.severity, 99) < _SEVERITY_RANK.get(self.severity, 99):
            self.severity = other.severity
        for name in ("title", "description", "remediation", "verification"):
            if not getattr(self, name):
                setattr(self, name, getattr(other, name))


def results_from_run(run: CheckRun) -> list[CheckResult]:
    """The engine's per-rule outcomes as :class:`CheckResult` objects."""
    return [
        CheckResult(
            rule_id=outcome.rule.id,
            title=outcome.rule.title,
            severity=outcome.severity or outcome.rule.severity,
            status=outcome.status,
            evaluated=outcome.evaluated,
            failures=outcome.failures,
            controls=tuple(outcome.rule.controls),
            manual=outcome.rule.manual,
            targets=tuple(outcome.rule.targets),
            description=outcome.rule.description,
            remediation=outcome.rule.remediation,
            verification=outcome.rule.verification,
        )
        for outcome in run.outcomes.values()
    ]


def merge_results(groups: Iterable[Iterable[CheckResult]]) -> dict[str, CheckResult]:
    """One result per rule id over every run (copies: the inputs are left as they were)."""
    merged: dict[str, CheckResult] = {}
    for group in groups:
        for result in group:
            current = merged.get(result.rule_id)
            if current is None:
                merged[result.rule_id] = replace(result)
            else:
                current.merge(result)
    return merged


@dataclass(slots=True)
class SavedReport:
    """The parts of a saved ``moat config|host|k8s-node --format json`` report a compliance report uses."""

    label: str
    """The file it was read from."""
    target: str
    checks: list[CheckResult]
    findings: list[Misconfiguration]
    template: dict[str, Any] | None = None
    created: str = ""


def load_saved_report(path: str | Path) -> SavedReport:
    """Read one saved check report; anything that is not one is a one-line :class:`MoatError`.

    The file may come from another machine, so its shape is checked field by field before use.
    """
    label = str(path)
    file = Path(path)
    try:
        size = file.stat().st_size
        if not file.is_file():
            raise MoatError(f"--from {label}: not a file")
        if size > MAX_REPORT_BYTES:
            raise MoatError(f"--from {label}: larger than {MAX_REPORT_BYTES // (1024 * 1024)} MiB")
        raw = file.read_bytes()
    except OSError as exc:
        raise MoatError(f"--from {label}: {exc.strerror or exc}") from None
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else "not JSON"
        raise MoatError(f"--from {label}: {reason}; expected a Moat check report (moat config --format json)") \
            from None
    return parse_saved_report(data, label)


def parse_saved_report(data: Any, label: str) -> SavedReport:
    """Validate and convert the JSON of a saved check report (see :func:`load_saved_report`)."""
    if not isinstance(data, dict) or not isinstance(data.get("checks"), list):
        raise MoatError(f"--from {label}: not a Moat check report (no \"checks\" list; write one with "
                        f"moat config|host|k8s-node --format json)")
    checks_raw = data["checks"]
    findings_raw = data.get("misconfigurations", [])
    if not isinstance(findings_raw, list):
        raise MoatError(f"--from {label}: \"misconfigurations\" must be a list")
    if len(checks_raw) > MAX_CHECKS or len(findings_raw) > MAX_FINDINGS:
        raise MoatError(f"--from {label}: more checks or findings than a Moat report holds")
    checks = [_check_from_dict(item, label, index) for index, item in enumerate(checks_raw)]
    findings = [_finding_from_dict(item, label, index) for index, item in enumerate(findings_raw)]
    template = data.get("template")
    target = data.get("target")
    created = data.get("created")
    return SavedReport(
        label=label,
        target=target if isinstance(target, str) else label,
        checks=checks,
        findings=findings,
        template=template if isinstance(template, dict) else None,
        created=created if isinstance(created, str) else "",
    )


def _check_from_dict(item: Any, label: str, index: int) -> CheckResult:
    where = f"--from {label}: checks[{index}]"
    if not isinstance(item, dict):
        raise MoatError(f"{where} is not an object")
    rule_id = _field(item, "rule_id", str, where)
    status = _field(item, "status", str, where)
    if status not in RULE_STATUSES:
        raise MoatError(f"{where}: status {status[:40]!r} is not one of {', '.join(RULE_STATUSES)}")
    severity = _field(item, "severity", str, where, default="UNKNOWN")
    if severity not in SEVERITIES:
        raise MoatError(f"{where}: severity {severity[:40]!r} is not one of {', '.join(SEVERITIES)}")
    evaluated = _field(item, "evaluated", int, where, default=0)
    failures = _field(item, "failures", int, where, default=0)
    if evaluated < 0 or failures < 0:
        raise MoatError(f"{where}: negative counts")
    if status in (PASS, FAIL) and evaluated == 0:
        status = NOT_APPLICABLE  # a PASS on nothing is no evidence; a FAIL on nothing is a broken report
        failures = 0
    return CheckResult(
        rule_id=rule_id,
        title=_field(item, "title", str, where, default=rule_id),
        severity=severity,
        status=FAIL if failures and status == PASS else status,
        evaluated=evaluated,
        failures=failures,
        controls=tuple(_strings(item, "controls", where)),
        manual=bool(_field(item, "manual", bool, where, default=False)),
        targets=tuple(_strings(item, "targets", where)),
        verification=_field(item, "verification", str, where, default=""),
    )


def _finding_from_dict(item: Any, label: str, index: int) -> Misconfiguration:
    where = f"--from {label}: misconfigurations[{index}]"
    if not isinstance(item, dict):
        raise MoatError(f"{where} is not an object")
    location = item.get("location", {})
    if not isinstance(location, dict):
        raise MoatError(f"{where}: location is not an object")
    loc = f"{where}.location"
    return Misconfiguration(
        rule_id=_field(item, "rule_id", str, where),
        title=_field(item, "title", str, where, default=""),
        severity=_field(item, "severity", str, where, default="UNKNOWN"),
        status=_field(item, "status", str, where, default=FAIL),
        target_kind=_field(item, "target_kind", str, where, default=""),
        file=_field(location, "file", str, loc, default=""),
        message=_field(item, "message", str, where, default=""),
        line=_field(location, "line", int, loc, default=0),
        end_line=_field(location, "end_line", int, loc, default=0),
        object=_field(location, "object", str, loc, default=""),
        container=_field(location, "container", str, loc, default=""),
        description=_field(item, "description", str, where, default=""),
        remediation=_field(item, "remediation", str, where, default=""),
        verification=_field(item, "verification", str, where, default=""),
        references=_strings(item, "references", where),
        controls=_strings(item, "controls", where),
        aliases=_strings(item, "aliases", where),
        evidence=_field(item, "evidence", str, where, default=""),
    )


_MISSING = object()


def _field(data: dict[str, Any], key: str, kind: type, where: str, default: Any = _MISSING) -> Any:
    value = data.get(key, _MISSING)
    if value is _MISSING or value is None:
        if default is _MISSING:
            raise MoatError(f"{where}: missing {key}")
        return default
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise MoatError(f"{where}: {key} must be {kind.__name__}")
    return value


def _strings(data: dict[str, Any], key: str, where: str) -> list[str]:
    value = data.get(key) or []
    if not isinstance(value, list) or not all(isinstance(entry, str) for entry in value):
        raise MoatError(f"{where}: {key} must be a list of strings")
    return list(value)


@dataclass(slots=True)
class ControlRule:
    """One rule behind a control, with what a reader needs to act on it."""

    result: CheckResult
    findings: list[Misconfiguration] = field(default_factory=list)
    """Its FAIL findings (as reported: a saved report may have been filtered by severity)."""


@dataclass(slots=True)
class ControlResult:
    id: str
    """The control id within the framework, e.g. ``4.1`` or ``baseline/privileged``."""
    control: str
    """The full mapping, ``framework:id``."""
    title: str
    status: str
    rules: list[ControlRule] = field(default_factory=list)

    @property
    def findings(self) -> list[Misconfiguration]:
        return [finding for entry in self.rules for finding in entry.findings]

    def counts(self) -> dict[str, int]:
        statuses = Counter(entry.result.status for entry in self.rules)
        return {
            "rules": len(self.rules),
            "failed": statuses[FAIL],
            "passed": statuses[PASS],
            "manual": sum(1 for entry in self.rules if entry.result.manual),
            "not_evaluated": statuses[NOT_APPLICABLE],
            "findings": sum(entry.result.failures for entry in self.rules),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "control": self.control,
            "title": self.title,
            "status": self.status,
            "counts": self.counts(),
            "rules": [
                {
                    "rule_id": entry.result.rule_id,
                    "title": entry.result.title,
                    "severity": entry.result.severity,
                    "status": entry.result.status,
                    "manual": entry.result.manual,
                    "evaluated": entry.result.evaluated,
                    "failures": entry.result.failures,
                    "targets": list(entry.result.targets),
                    "remediation": entry.result.remediation,
                    "verification": entry.result.verification,
                }
                for entry in self.rules
            ],
            "findings": [finding.to_dict() for finding in self.findings],
        }


@dataclass(slots=True)
class ComplianceReport:
    template_id: str
    template_title: str
    framework: str
    controls: list[ControlResult]
    targets: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    """Where the results came from: scanned paths and merged report files."""
    created: str = ""
    moat_version: str = __version__

    def status_counts(self) -> dict[str, int]:
        counts = Counter(control.status for control in self.controls)
        return {status: counts.get(status, 0) for status in CONTROL_STATUSES}

    def failures_by_severity(self) -> dict[str, int]:
        """FAIL findings behind the framework's controls, each counted once even when it maps to two."""
        seen: set[tuple[Any, ...]] = set()
        counts: Counter[str] = Counter()
        for control in self.controls:
            for finding in control.findings:
                key = _finding_key(finding)
                if key not in seen:
                    seen.add(key)
                    counts[finding.severity] += 1
        return {severity: counts.get(severity, 0) for severity in SEVERITIES}

    def to_dict(self) -> dict[str, Any]:
        by_severity = self.failures_by_severity()
        return {
            "schema": COMPLIANCE_SCHEMA,
            "moat_version": self.moat_version,
            "created": self.created,
            "template": {"id": self.template_id, "title": self.template_title, "framework": self.framework},
            "targets": list(self.targets),
            "sources": list(self.sources),
            "summary": {
                "controls": len(self.controls),
                "by_status": self.status_counts(),
                "failures": sum(by_severity.values()),
                "failures_by_severity": by_severity,
            },
            "controls": [control.to_dict() for control in self.controls],
        }


def build_report(
    template: Template,
    results: Mapping[str, CheckResult],
    findings: Sequence[Misconfiguration],
    *,
    selected: Sequence[Rule] = (),
    targets: Sequence[str] = (),
    sources: Sequence[str] = (),
    created: datetime | None = None,
) -> ComplianceReport:
    """The per-control report of ``template`` over merged rule results.

    ``selected`` are the rules the template selects from this Moat's registry: a selected rule that no
    input ran still counts (as never evaluated), and its texts fill in what a saved report left out.
    Rules the template excludes never count, even when a saved report ran them.
    """
    from moat.report.json_report import utc_timestamp

    framework = template.framework or (template.frameworks[0] if template.frameworks else template.id)
    excluded = set(template.exclude)
    severity_overrides = template.severity
    merged = {rid: replace(result) for rid, result in results.items() if rid not in excluded}
    for rid, severity in severity_overrides.items():  # a merged report may have run another template
        if rid in merged:
            merged[rid].severity = severity
    findings = [replace(f, severity=severity_overrides[f.rule_id]) if f.rule_id in severity_overrides else f
                for f in findings]
    for item in selected:
        if item.id in excluded:
            continue
        if item.id not in merged:
            merged[item.id] = CheckResult.from_rule(item, severity_overrides.get(item.id, ""))
        else:
            merged[item.id].merge(CheckResult.from_rule(item, merged[item.id].severity))
    by_control: dict[str, list[CheckResult]] = {}
    for result in merged.values():
        for control in result.controls:
            local = control_id(control, framework)
            if local is not None:
                by_control.setdefault(local, []).append(result)
    failing = _fail_findings(findings, excluded)
    controls: list[ControlResult] = []
    for local in sorted({*by_control, *template.controls}, key=natural_key):
        mapped = sorted(by_control.get(local, []), key=lambda r: (_SEVERITY_RANK.get(r.severity, 99), r.rule_id))
        entries = [ControlRule(result, failing.get(result.rule_id, [])) for result in mapped]
        for entry in entries:
            _fill_texts(entry)
        title = template.controls.get(local) or _fallback_title(mapped)
        controls.append(ControlResult(local, f"{_prefix(framework)}{local}", title, control_status(mapped), entries))
    return ComplianceReport(
        template_id=template.id,
        template_title=template.title,
        framework=framework,
        controls=controls,
        targets=list(dict.fromkeys(targets)),
        sources=list(dict.fromkeys(sources)),
        created=utc_timestamp(created),
    )


MAX_TITLES_JOINED = 3


def _fallback_title(mapped: Sequence[CheckResult]) -> str:
    """A control the template gives no title: its rules' titles, while that stays readable (a derived
    control such as PCI DSS 2.2.1 is evidenced by hundreds of rules)."""
    titles = list(dict.fromkeys(result.title for result in mapped))
    return "; ".join(titles) if len(titles) <= MAX_TITLES_JOINED else ""


def control_status(mapped: Sequence[CheckResult]) -> str:
    """The status of one control from the merged results of the rules mapped to it (module docstring)."""
    if any(result.status == FAIL for result in mapped):
        return FAIL
    automated = [result for result in mapped if not result.manual and result.status != MANUAL]
    if any(result.status == PASS for result in automated):
        return PASS
    if automated:
        return NOT_ASSESSED
    return MANUAL


def control_id(control: str, framework: str) -> str | None:
    """``cis-docker-1.6:4.1`` → ``4.1`` for framework ``cis-docker-1.6``; None when it is another's.

    A framework written with a colon is a control pattern (``pss:restricted/*``), as in templates.
    """
    if ":" in framework:
        if not fnmatchcase(control, framework):
            return None
        return control.split(":", 1)[1]
    name, _, local = control.partition(":")
    return local if name == framework and local else None


def _prefix(framework: str) -> str:
    return framework.split(":", 1)[0] + ":"


def natural_key(text: str) -> tuple[Any, ...]:
    """``1.1.2`` before ``1.1.10``; words sort as words."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", text) if part)


_SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}


def _finding_key(finding: Misconfiguration) -> tuple[Any, ...]:
    return (finding.rule_id, finding.file, finding.line, finding.object, finding.container, finding.message)


def _fail_findings(findings: Iterable[Misconfiguration], excluded: set[str]) -> dict[str, list[Misconfiguration]]:
    """FAIL findings by rule id, deduplicated (the same report merged twice, or two scans of one repo)."""
    seen: set[tuple[Any, ...]] = set()
    grouped: dict[str, list[Misconfiguration]] = {}
    for finding in findings:
        if finding.status != FAIL or finding.rule_id in excluded:
            continue
        key = _finding_key(finding)
        if key in seen:
            continue
        seen.add(key)
        grouped.setdefault(finding.rule_id, []).append(finding)
    for items in grouped.values():
        items.sort(key=lambda f: (f.file, f.line, f.object, f.container, f.message))
    return grouped


def _fill_texts(entry: ControlRule) -> None:
    """A saved report's ``checks`` carry no remediation; its findings do."""
    for finding in entry.findings:
        for name in ("description", "remediation", "verification"):
            if not getattr(entry.result, name) and getattr(finding, name):
                setattr(entry.result, name, getattr(finding, name))
