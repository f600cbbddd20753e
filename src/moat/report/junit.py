"""JUnit XML (``--format junit``) for CI servers that chart test results (Jenkins, GitLab).

One ``testsuite`` per scanned target and one ``testcase`` per package, so a pipeline's test view
lists the vulnerable packages as failed tests, each ``failure`` naming its vulnerabilities. Clean
packages are passing test cases: the count tells the reader how much was checked. Built with
ElementTree so every attribute and text is escaped; XML 1.0 forbids most control characters, which
hostile package metadata may hold, so they are removed first.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import defaultdict

from moat.model import Inventory, Vulnerability
from moat.report.json_report import severity_rank, sorted_vulnerabilities, utc_timestamp

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def to_junit(inv: Inventory, findings: list[Vulnerability], target: str) -> str:
    by_package: dict[tuple[str, str, str, str], list[Vulnerability]] = defaultdict(list)
    for vuln in sorted_vulnerabilities(findings):
        by_package[(vuln.package_type, vuln.package_name, vuln.package_version, vuln.found_in)].append(vuln)
    keys = [(p.type, p.name, p.version, p.found_in) for p in inv.sorted_packages()]
    known = set(keys)
    keys += sorted(key for key in by_package if key not in known)  # findings for packages not in the list
    failures = sum(1 for key in keys if by_package.get(key))

    suites = ET.Element("testsuites", _attrs(name="moat", tests=len(keys), failures=failures, errors=0))
    suite = ET.SubElement(
        suites,
        "testsuite",
        _attrs(name=target, tests=len(keys), failures=failures, errors=0, skipped=0, timestamp=utc_timestamp()),
    )
    properties = ET.SubElement(suite, "properties")
    ET.SubElement(properties, "property", _attrs(name="artifact", value=inv.artifact.name))
    if inv.os:
        ET.SubElement(properties, "property", _attrs(name="os", value=f"{inv.os.family} {inv.os.name}".strip()))
    for kind, name, version, found_in in keys:
        case = ET.SubElement(
            suite,
            "testcase",
            _attrs(classname=f"{kind}:{found_in}" if found_in else kind, name=f"{name}@{version}", time="0"),
        )
        vulns = by_package.get((kind, name, version, found_in), [])
        if vulns:
            worst = min(vulns, key=lambda v: severity_rank(v.severity)).severity
            message = f"{len(vulns)} vulnerabilit{'y' if len(vulns) == 1 else 'ies'}: " + ", ".join(
                f"{v.id} ({v.severity})" for v in vulns
            )
            failure = ET.SubElement(case, "failure", _attrs(message=message, type=worst))
            failure.text = _clean("\n".join(_failure_line(v) for v in vulns))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def _failure_line(vuln: Vulnerability) -> str:
    fixed = ", ".join(vuln.fixed_versions) or "no fixed version"
    title = " ".join(vuln.title.split())
    return f"{vuln.id} {vuln.severity} [{vuln.status}] installed {vuln.package_version}, fixed in {fixed}" + (
        f": {title}" if title else ""
    )


def _attrs(**values: object) -> dict[str, str]:
    return {key: _clean(str(value)) for key, value in values.items()}


def _clean(text: str) -> str:
    return _NOT_XML.sub("", text)


def merge_junit(*documents: str) -> str:
    """One ``testsuites`` document holding the suites of several (vulnerabilities and config checks
    of one image), with the totals added up."""
    merged = ET.Element("testsuites", _attrs(name="moat", tests=0, failures=0, errors=0))
    for text in documents:
        root = ET.fromstring(text)
        for suite in root.findall("testsuite"):
            merged.append(suite)
            for key in ("tests", "failures", "errors"):
                merged.set(key, str(int(merged.get(key, "0")) + int(suite.get(key, "0"))))
    ET.indent(merged)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(merged, encoding="unicode") + "\n"
