"""The order policies run in, and the exit code they lead to.

VEX first (the producer's word on the package), then the ignore file (the user's accepted risks),
then ``--ignore-unfixed`` and ``--severity``. A finding a vendor marks ``not_affected`` never
reaches the gate. The gate fails only when the user asked for it (``--exit-code N``, N ≠ 0) and at
least one finding is left.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from moat.model import Vulnerability
from moat.policy import Suppressed
from moat.policy.filters import filter_severity, filter_unfixed
from moat.policy.ignorefile import apply_ignores, load_ignorefile
from moat.policy.vex import apply_vex, load_vex


@dataclass(slots=True)
class Policy:
    severities: frozenset[str]
    ignore_unfixed: bool = False
    ignorefile: Path | None = None
    vex_files: list[Path] = field(default_factory=list)
    today: date | None = None


@dataclass(slots=True)
class PolicyResult:
    findings: list[Vulnerability]
    suppressed: list[Suppressed]
    warnings: list[str]


def apply_policy(vulns: list[Vulnerability], policy: Policy) -> PolicyResult:
    """Load the policy files (bad ones raise MoatError before anything is reported) and filter."""
    statements = load_vex(policy.vex_files)
    rules = load_ignorefile(policy.ignorefile) if policy.ignorefile else []
    suppressed: list[Suppressed] = []
    kept: list[Vulnerability] = []
    for vuln in vulns:
        if vuln.status == "not_affected":
            suppressed.append(Suppressed(vuln, "vendor", "the advisory says this package is not affected",
                                         state="not_affected"))
        else:
            kept.append(vuln)
    kept, dropped = apply_vex(kept, statements)
    suppressed += dropped
    warnings: list[str] = []
    if policy.ignorefile:
        kept, dropped, warnings = apply_ignores(kept, rules, f"ignorefile:{policy.ignorefile}", policy.today)
        suppressed += dropped
    if policy.ignore_unfixed:
        kept, dropped = filter_unfixed(kept)
        suppressed += dropped
    kept, dropped = filter_severity(kept, policy.severities)
    suppressed += dropped
    return PolicyResult(kept, suppressed, warnings)


def gate_exit_code(findings: list[Vulnerability], exit_code: int) -> int:
    """``exit_code`` when findings remain, else 0 (the scan ran)."""
    return exit_code if findings else 0
