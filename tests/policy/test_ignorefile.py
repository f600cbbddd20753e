"""The ignore file: matching by any id and by package name or purl, expiry, and clear errors."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from moat.errors import MoatError
from moat.model import Vulnerability
from moat.policy.ignorefile import IgnoreRule, apply_ignores, load_ignorefile

FLASK = Vulnerability("CVE-2023-30861", "PYSEC-2023-62", "Flask", "2.2.0", "pypi", purl="pkg:pypi/flask@2.2.0",
                      aliases=["CVE-2023-30861", "GHSA-m2qf-hxjv-5gpq"])
JINJA = Vulnerability("CVE-2019-10906", "PYSEC-2019-217", "Jinja2", "2.10", "pypi", purl="pkg:pypi/jinja2@2.10")


def load(tmp_path: Path, text: str) -> list[IgnoreRule]:
    path = tmp_path / ".moatignore"
    path.write_text(text)
    return load_ignorefile(path)


@pytest.mark.parametrize(
    ("entry", "suppressed"),
    [
        ("id: GHSA-m2qf-hxjv-5gpq", True),  # an alias
        ("id: PYSEC-2023-62", True),  # the advisory's own id
        ("id: CVE-2023-30861\n  package: flask", True),  # names compare case-insensitively
        ("id: CVE-2023-30861\n  package: pkg:pypi/Flask", True),  # purl without version
        ("id: CVE-2023-30861\n  package: pkg:pypi/flask@2.2.0", True),
        ("id: CVE-2023-30861\n  package: pkg:pypi/flask@2.3.0", False),
        ("id: CVE-2023-30861\n  package: jinja2", False),
        ("id: CVE-2099-0001", False),
    ],
)
def test_matching(tmp_path: Path, entry: str, suppressed: bool) -> None:
    rules = load(tmp_path, f"- {entry}\n  reason: accepted\n")
    kept, dropped, warnings = apply_ignores([FLASK, JINJA], rules, "ignorefile")
    assert [d.vulnerability.id for d in dropped] == (["CVE-2023-30861"] if suppressed else [])
    assert JINJA in kept and warnings == []


def test_expiry_is_the_last_day_it_applies(tmp_path: Path) -> None:
    rules = load(tmp_path, "- id: CVE-2023-30861\n  reason: r\n  expires: 2025-06-30\n")
    assert len(apply_ignores([FLASK], rules, "f", today=date(2025, 6, 30))[1]) == 1
    kept, dropped, warnings = apply_ignores([FLASK], rules, "f", today=date(2025, 7, 1))
    assert kept == [FLASK] and dropped == []
    assert warnings == ["f: entry CVE-2023-30861 expired on 2025-06-30; it no longer suppresses findings"]


def test_quoted_dates_and_empty_files(tmp_path: Path) -> None:
    assert load(tmp_path, "- id: X\n  reason: r\n  expires: '2025-01-02'\n")[0].expires == date(2025, 1, 2)
    assert load(tmp_path, "") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- id: X\n", "entry 1 (X): 'reason' is required"),
        ("- id: X\n  reason: '  '\n", "'reason' is required"),
        ("- reason: r\n", "entry 1: 'id' must be a non-empty string"),
        ("- id: X\n  reason: r\n  expires: next week\n", "'expires' must be a date"),
        ("- id: X\n  reason: r\n  until: 2025-01-01\n", "unknown key until"),
        ("id: X\n", "expected a YAML list"),
        ("- id: [\n", "not valid YAML (line"),
        ("- just a string\n", "expected a mapping"),
    ],
)
def test_mistakes_are_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(MoatError) as info:
        load(tmp_path, text)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MoatError, match="No such file"):
        load_ignorefile(tmp_path / "nope")
