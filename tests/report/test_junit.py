"""JUnit XML: well-formed, and the testsuites/testsuite/testcase/failure shape Jenkins and GitLab read."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from vuln_fixtures import findings, inventory

from moat.report.junit import to_junit


def test_one_testcase_per_package_with_failures_for_vulnerable_ones() -> None:
    root = ET.fromstring(to_junit(inventory(), findings(), "registry:app:1.0").encode())
    assert root.tag == "testsuites" and (root.get("tests"), root.get("failures")) == ("4", "3")
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["registry:app:1.0"]
    cases = {c.get("name"): c for c in suites[0].findall("testcase")}
    assert sorted(cases) == ["Jinja2@2.10", "PyYAML@5.1", "idna@3.7", "libssl3@3.0.7-1"]
    assert cases["idna@3.7"].find("failure") is None
    failure = cases["Jinja2@2.10"].find("failure")
    assert failure is not None
    assert failure.get("type") == "HIGH"
    assert failure.get("message") == "2 vulnerabilities: CVE-2024-56326 (HIGH), CVE-2019-10906 (UNKNOWN)"
    assert "CVE-2019-10906 UNKNOWN [fixed] installed 2.10, fixed in 2.10.1" in (failure.text or "")
    assert cases["libssl3@3.0.7-1"].get("classname") == "deb:var/lib/dpkg/status"


def test_control_characters_from_advisories_are_dropped() -> None:
    text = to_junit(inventory(), findings(), "t")
    ET.fromstring(text.encode())  # would raise on \x07
    assert "\x07" not in text and "X.400 address type confusion in X.509" in text


def test_clean_scan_is_all_passing() -> None:
    root = ET.fromstring(to_junit(inventory(), [], "t").encode())
    assert (root.get("tests"), root.get("failures")) == ("4", "0")
    assert root.findall(".//failure") == []
