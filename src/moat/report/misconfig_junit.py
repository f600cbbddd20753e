"""JUnit XML for configuration checks: one ``testsuite`` per scanned target, one ``testcase`` per
rule that was evaluated. A failed rule lists its findings in the ``failure`` body; a MANUAL rule is a
``skipped`` case whose message is the verification to do, so CI dashboards show how much was checked,
what failed, and what a person still has to look at.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict
from typing import TYPE_CHECKING

from moat.model import Misconfiguration
from moat.report.json_report import utc_timestamp
from moat.report.junit import _attrs, _clean

if TYPE_CHECKING:
    from moat.checks.engine import CheckRun


def misconfigs_to_junit(run: CheckRun, findings: list[Misconfiguration], target: str) -> str:
    by_rule: dict[str, list[Misconfiguration]] = defaultdict(list)
    for finding in findings:
        if finding.status == "FAIL":
            by_rule[finding.rule_id].append(finding)
    outcomes = sorted((o for o in run.outcomes.values() if o.status != "NOT_APPLICABLE"), key=lambda o: o.rule.id)
    failures = sum(1 for o in outcomes if by_rule.get(o.rule.id))
    skipped = sum(1 for o in outcomes if o.status == "MANUAL")
    suites = ET.Element("testsuites", _attrs(name="moat", tests=len(outcomes), failures=failures, errors=0))
    suite = ET.SubElement(suites, "testsuite", _attrs(name=target, tests=len(outcomes), failures=failures,
                                                       errors=0, skipped=skipped, timestamp=utc_timestamp()))
    for outcome in outcomes:
        rule = outcome.rule
        case = ET.SubElement(suite, "testcase", _attrs(classname=",".join(rule.targets),
                                                        name=f"{rule.id} {rule.title}", time="0"))
        hits = by_rule.get(rule.id, [])
        if hits:
            failure = ET.SubElement(case, "failure", _attrs(message=f"{len(hits)} finding(s): {rule.title}",
                                                            type=outcome.severity))
            failure.text = _clean("\n".join(_line(hit) for hit in hits) + f"\n\nRemediation: {rule.remediation}")
        elif outcome.status == "MANUAL":
            ET.SubElement(case, "skipped", _attrs(message=f"verify by hand: {rule.verification}"))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def _line(finding: Misconfiguration) -> str:
    where = f"{finding.file}:{finding.line}" if finding.line else finding.file
    subject = finding.object + (f" [{finding.container}]" if finding.container else "")
    return f"{where} {subject}: {finding.message}"
