"""Evaluate rules on documents: findings, plus what each rule concluded (for compliance reports).

A compliance report needs more than the failures: a control passes only when its rules were actually
evaluated on something and found nothing. So the engine records, per rule, how many documents it
was evaluated on and whether it failed (:class:`RuleOutcome`).

A rule that raises on some odd but valid input must not cost the user the rest of the scan: the
error becomes a warning naming the rule and the object. Tests set ``MOAT_STRICT_RULES=1`` so such an
error fails the test instead of hiding a bug.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from moat.checks.document import Document
from moat.checks.rule import Hit, NotAssessable, Rule, RuleContext
from moat.model import SEVERITIES, Misconfiguration

PASS = "PASS"
FAIL = "FAIL"
MANUAL = "MANUAL"
NOT_APPLICABLE = "NOT_APPLICABLE"
"""The run had no document of a kind the rule reads."""


@dataclass(slots=True)
class RuleOutcome:
    rule: Rule
    status: str
    evaluated: int = 0
    """Documents the rule was evaluated on."""
    failures: int = 0
    severity: str = ""
    """The severity in force (a template may override the rule's own)."""


@dataclass(slots=True)
class CheckRun:
    findings: list[Misconfiguration] = field(default_factory=list)
    outcomes: dict[str, RuleOutcome] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def evaluate(
    documents: Sequence[Document],
    rules: Sequence[Rule],
    *,
    params: Mapping[str, Any] | None = None,
    severity_overrides: Mapping[str, str] | None = None,
) -> CheckRun:
    """Run every rule on every document of a kind it reads.

    ``params`` are template parameters (name → value), seen by every rule that declares the name;
    ``severity_overrides`` maps rule ids to the severity a template gives them.
    """
    strict = os.environ.get("MOAT_STRICT_RULES") == "1"
    template_params = dict(params or {})
    overrides = dict(severity_overrides or {})
    run = CheckRun()
    by_kind: dict[str, list[Document]] = {}
    for doc in documents:
        by_kind.setdefault(doc.kind, []).append(doc)
    for item in rules:
        severity = overrides.get(item.id, item.severity)
        if severity not in SEVERITIES:
            raise ValueError(f"severity override for {item.id}: {severity!r}")
        targets = [doc for kind in item.targets for doc in by_kind.get(kind, ())]
        outcome = RuleOutcome(item, NOT_APPLICABLE, severity=severity)
        run.outcomes[item.id] = outcome
        if not targets:
            continue
        if item.check is None:
            outcome.status = MANUAL
            outcome.evaluated = len(targets)
            run.findings.append(_manual_finding(item, severity, targets[0]))
            continue
        shared = (list(item.references), list(item.controls), list(item.aliases))
        context = RuleContext({**item.params, **{k: v for k, v in template_params.items() if k in item.params}},
                              documents)
        for doc in targets:
            try:
                hits = list(item.check(doc, context))
            except NotAssessable:
                continue
            except Exception as exc:
                if strict:
                    raise
                run.warnings.append(f"rule {item.id} could not evaluate {doc.path} {doc.name}: "
                                    f"{type(exc).__name__}: {exc}")
                continue  # not counted as evaluated: a rule that failed to look must not pass
            outcome.evaluated += 1
            for hit in hits:
                run.findings.append(_finding(item, severity, doc, hit, shared))
            outcome.failures += len(hits)
        outcome.status = FAIL if outcome.failures else PASS if outcome.evaluated else NOT_APPLICABLE
    run.findings.sort(key=_finding_order)
    return run


def _finding(item: Rule, severity: str, doc: Document, hit: Hit,
             shared: tuple[list[str], list[str], list[str]]) -> Misconfiguration:
    """``shared`` holds the rule's references, controls and aliases as lists made once per rule and
    shared by its findings: a run with 100,000 findings spent a quarter of its time copying them.
    Findings are read-only once made (``to_dict`` copies)."""
    line = hit.line or (doc.line_of(hit.path) if hit.path else doc.start_line)
    return Misconfiguration(
        rule_id=item.id,
        title=item.title,
        severity=severity,
        status=FAIL,
        target_kind=doc.kind,
        file=doc.path,
        message=hit.message,
        line=line,
        end_line=max(hit.end_line, line) if hit.path or hit.line else doc.end_line,
        object=hit.resource or doc.name,
        container=hit.container,
        description=item.description,
        remediation=item.remediation,
        verification=item.verification,
        references=shared[0],
        controls=shared[1],
        aliases=shared[2],
        evidence=hit.evidence,
    )



def _manual_finding(item: Rule, severity: str, doc: Document) -> Misconfiguration:
    return Misconfiguration(
        rule_id=item.id,
        title=item.title,
        severity=severity,
        status=MANUAL,
        target_kind=doc.kind,
        file=doc.path,
        message="not assessable automatically: verify by hand",
        object="",  # the item is about the target as a whole, not whichever object came first
        description=item.description,
        remediation=item.remediation,
        verification=item.verification,
        references=list(item.references),
        controls=list(item.controls),
        aliases=list(item.aliases),
    )


_SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}


def _finding_order(finding: Misconfiguration) -> tuple[Any, ...]:
    return (finding.status != FAIL, _SEVERITY_RANK.get(finding.severity, 99), finding.file, finding.line,
            finding.rule_id, finding.object, finding.container)
