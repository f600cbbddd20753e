"""--severity and --ignore-unfixed on hand-made findings covering every status."""

from __future__ import annotations

import pytest

from moat.errors import MoatError
from moat.model import SEVERITIES, Vulnerability
from moat.policy.filters import filter_severity, filter_unfixed, is_unfixed, parse_severities


def vuln(ident: str, severity: str = "HIGH", status: str = "fixed", fixed: list[str] | None = None) -> Vulnerability:
    return Vulnerability(ident, ident, "pkg", "1.0", "pypi", severity=severity, status=status,
                         fixed_versions=["2.0"] if fixed is None else fixed)


def test_parse_severities() -> None:
    assert parse_severities(" critical, HIGH ,") == {"CRITICAL", "HIGH"}
    assert parse_severities(None) == set(SEVERITIES)
    with pytest.raises(MoatError, match="unknown level HIHG"):
        parse_severities("HIHG,LOW")


def test_severity_filter_keeps_only_chosen_levels() -> None:
    vulns = [vuln(f"V{i}", level) for i, level in enumerate(SEVERITIES)]
    kept, dropped = filter_severity(vulns, frozenset({"CRITICAL", "UNKNOWN"}))
    assert [v.id for v in kept] == ["V0", "V4"]
    assert [(d.vulnerability.id, d.source) for d in dropped] == [("V1", "severity"), ("V2", "severity"),
                                                                 ("V3", "severity")]


def test_unfixed_means_no_version_to_move_to() -> None:
    vulns = [
        vuln("fixed"),
        vuln("affected", status="affected", fixed=[]),
        vuln("wontfix", status="will_not_fix", fixed=[]),
        vuln("eol", status="end_of_life", fixed=[]),
        vuln("fixed-without-version", fixed=[]),
    ]
    assert [v.id for v in vulns if is_unfixed(v)] == ["affected", "wontfix", "eol", "fixed-without-version"]
    kept, dropped = filter_unfixed(vulns)
    assert [v.id for v in kept] == ["fixed"] and len(dropped) == 4
