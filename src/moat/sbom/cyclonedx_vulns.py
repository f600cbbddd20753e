"""CycloneDX 1.6 ``vulnerabilities`` for a scanned BOM: what Moat found, and what VEX settled.

One entry per vulnerability id with every affected component in ``affects`` (CycloneDX's shape:
the vulnerability is the subject, components are its targets). Ratings carry each CVSS assessment
the advisory has plus the severity Moat reports, so a consumer that reads only ``severity`` sees the
same level the gate used. Suppressed findings are written only when a VEX state suppressed them,
with that state as ``analysis``; findings an ignore file or a filter removed are policy of this
pipeline, not facts about the component, and stay out.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import TYPE_CHECKING

from cyclonedx.model import XsUri
from cyclonedx.model.bom import Bom
from cyclonedx.model.impact_analysis import ImpactAnalysisJustification, ImpactAnalysisState
from cyclonedx.model.vulnerability import (
    BomTarget,
    VulnerabilityAdvisory,
    VulnerabilityAnalysis,
    VulnerabilityRating,
    VulnerabilityReference,
    VulnerabilityScoreSource,
    VulnerabilitySeverity,
    VulnerabilitySource,
)
from cyclonedx.model.vulnerability import Vulnerability as CdxVulnerability

from moat.model import Vulnerability

if TYPE_CHECKING:
    from moat.policy import Suppressed

PackageKey = tuple[str, str, str, str]

_METHODS = {
    "2.0": VulnerabilityScoreSource.CVSS_V2,
    "3.0": VulnerabilityScoreSource.CVSS_V3,
    "3.1": VulnerabilityScoreSource.CVSS_V3_1,
    "4.0": VulnerabilityScoreSource.CVSS_V4,
}
_SEVERITY = {
    "CRITICAL": VulnerabilitySeverity.CRITICAL,
    "HIGH": VulnerabilitySeverity.HIGH,
    "MEDIUM": VulnerabilitySeverity.MEDIUM,
    "LOW": VulnerabilitySeverity.LOW,
    "UNKNOWN": VulnerabilitySeverity.UNKNOWN,
}
_OPENVEX_STATE = {"not_affected": "not_affected", "fixed": "resolved"}
_JUSTIFICATION = {  # OpenVEX justification → the nearest CycloneDX one
    "component_not_present": "requires_dependency",
    "vulnerable_code_not_present": "code_not_present",
    "vulnerable_code_not_in_execute_path": "code_not_reachable",
    "vulnerable_code_cannot_be_controlled_by_adversary": "requires_environment",
    "inline_mitigations_already_exist": "protected_by_mitigating_control",
}
_SOURCE_URLS = {
    "CVE": "https://nvd.nist.gov/vuln/detail/",
    "GHSA": "https://github.com/advisories/",
    "PYSEC": "https://osv.dev/vulnerability/",
    "GO": "https://pkg.go.dev/vuln/",
    "RUSTSEC": "https://rustsec.org/advisories/",
}


def add_vulnerabilities(
    bom: Bom, findings: list[Vulnerability], suppressed: list[Suppressed], ref_of: dict[PackageKey, str]
) -> None:
    groups: dict[str, list[tuple[Vulnerability, Suppressed | None]]] = defaultdict(list)
    for vuln in findings:
        groups[vuln.id].append((vuln, None))
    for item in suppressed:
        if _analysis_state(item) is not None:
            groups[item.vulnerability.id].append((item.vulnerability, item))
    for vuln_id in sorted(groups):
        bom.vulnerabilities.add(_entry(vuln_id, groups[vuln_id], ref_of))


def _entry(
    vuln_id: str, items: list[tuple[Vulnerability, Suppressed | None]], ref_of: dict[PackageKey, str]
) -> CdxVulnerability:
    first = items[0][0]
    targets = []
    for vuln, _ in items:
        ref = ref_of.get((vuln.package_type, vuln.package_name, vuln.package_version, vuln.found_in))
        if ref is not None and ref not in targets:
            targets.append(ref)
    fixes = sorted({f"{v.package_name} {', '.join(v.fixed_versions)}" for v, _ in items if v.fixed_versions})
    suppression = next((s for _, s in items if s is not None), None)
    all_suppressed = all(s is not None for _, s in items)
    return CdxVulnerability(
        bom_ref=f"moat:vuln:{vuln_id}",
        id=vuln_id,
        source=_source(vuln_id),
        references=[
            VulnerabilityReference(id=alias, source=_source(alias))
            for alias in dict.fromkeys([first.advisory_id, *first.aliases])
            if alias and alias != vuln_id
        ],
        ratings=_ratings(first),
        description=first.title or None,
        detail=first.description or None,
        recommendation=("Upgrade to a fixed version: " + "; ".join(fixes)) if fixes else None,
        advisories=[VulnerabilityAdvisory(url=XsUri(url)) for url in first.references if _is_url(url)],
        affects=[BomTarget(ref=ref) for ref in targets],
        analysis=_analysis(suppression) if suppression is not None and all_suppressed else None,
    )


def _ratings(vuln: Vulnerability) -> list[VulnerabilityRating]:
    ratings = [
        VulnerabilityRating(
            source=VulnerabilitySource(name=c.source) if c.source else None,
            score=Decimal(str(c.score)) if c.score is not None else None,
            method=_METHODS.get(c.version, VulnerabilityScoreSource.OTHER),
            vector=c.vector or None,
        )
        for c in vuln.cvss
    ]
    ratings.append(
        VulnerabilityRating(
            source=VulnerabilitySource(name=vuln.severity_source) if vuln.severity_source else None,
            severity=_SEVERITY.get(vuln.severity, VulnerabilitySeverity.UNKNOWN),
        )
    )
    return ratings


def _source(identifier: str) -> VulnerabilitySource:
    prefix = identifier.split("-", 1)[0]
    url = _SOURCE_URLS.get(prefix)
    return VulnerabilitySource(name=prefix, url=XsUri(url + identifier) if url else None)


def _analysis_state(item: Suppressed) -> ImpactAnalysisState | None:
    state = _OPENVEX_STATE.get(item.state, item.state)
    try:
        return ImpactAnalysisState(state)
    except ValueError:
        return None


def _analysis(item: Suppressed) -> VulnerabilityAnalysis:
    justification = _JUSTIFICATION.get(item.justification, item.justification)
    try:
        known = ImpactAnalysisJustification(justification)
    except ValueError:
        known = None
    return VulnerabilityAnalysis(state=_analysis_state(item), justification=known, detail=item.reason or None)


def _is_url(text: str) -> bool:
    return text.startswith(("https://", "http://"))
