"""``--severity`` and ``--ignore-unfixed``: the two filters every scanner's users expect."""

from __future__ import annotations

from collections.abc import Iterable

from moat.errors import MoatError
from moat.model import SEVERITIES, Vulnerability
from moat.policy import Suppressed

UNFIXED_STATUSES = frozenset({"affected", "will_not_fix", "end_of_life"})


def parse_severities(text: str | None) -> frozenset[str]:
    """``"critical, HIGH"`` → ``{"CRITICAL", "HIGH"}``; an unknown level is a usage error, not an empty gate.

    A typo such as ``HIHG`` that silently matched nothing would make a CI gate pass forever.
    """
    if text is None or not text.strip():
        return frozenset(SEVERITIES)
    chosen = {part.strip().upper() for part in text.split(",") if part.strip()}
    unknown = sorted(chosen - set(SEVERITIES))
    if unknown:
        raise MoatError(f"--severity: unknown level {', '.join(unknown)} (choose from {','.join(SEVERITIES)})")
    return frozenset(chosen)


def is_unfixed(vuln: Vulnerability) -> bool:
    """No fixed version to move to: the advisory says so, or names no fixed version at all."""
    return vuln.status in UNFIXED_STATUSES or (vuln.status == "fixed" and not vuln.fixed_versions)


def filter_severity(
    vulns: Iterable[Vulnerability], severities: frozenset[str]
) -> tuple[list[Vulnerability], list[Suppressed]]:
    kept: list[Vulnerability] = []
    dropped: list[Suppressed] = []
    for vuln in vulns:
        if vuln.severity in severities:
            kept.append(vuln)
        else:
            dropped.append(Suppressed(vuln, "severity", f"severity {vuln.severity} not selected"))
    return kept, dropped


def filter_unfixed(vulns: Iterable[Vulnerability]) -> tuple[list[Vulnerability], list[Suppressed]]:
    kept: list[Vulnerability] = []
    dropped: list[Suppressed] = []
    for vuln in vulns:
        if is_unfixed(vuln):
            dropped.append(Suppressed(vuln, "ignore-unfixed", f"no fixed version ({vuln.status})"))
        else:
            kept.append(vuln)
    return kept, dropped
