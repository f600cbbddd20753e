"""What a scan's findings are after the user's policy: VEX statements, the ignore file, the
severity and fixed-only filters, and the gate that turns what is left into an exit code.

Suppressions are kept, not dropped, with the reason they were suppressed: a report can still show
them (the CycloneDX ``analysis`` of a VEX-suppressed finding), and a reviewer can see why the gate
passed.
"""

from __future__ import annotations

from dataclasses import dataclass

from moat.model import Vulnerability


@dataclass(slots=True)
class Suppressed:
    """A finding that policy removed, and which rule removed it."""

    vulnerability: Vulnerability
    source: str
    """Where the rule came from: ``vex:FILE``, ``ignorefile:FILE``, ``severity`` or ``ignore-unfixed``."""
    reason: str
    state: str = ""
    """The VEX state or status that suppressed it (not_affected, fixed, false_positive, resolved)."""
    justification: str = ""

    def to_dict(self) -> dict[str, object]:
        data = self.vulnerability.to_dict()
        data["suppression"] = {
            "source": self.source,
            "reason": self.reason,
            "state": self.state,
            "justification": self.justification,
        }
        return data


def vulnerability_ids(vuln: Vulnerability) -> set[str]:
    """Every name a finding goes by: its id, the advisory's own id and the aliases.

    A VEX document or an ignore file may name the CVE while the data names the GHSA (or the reverse);
    either must match.
    """
    return {vuln.id, vuln.advisory_id, *vuln.aliases} - {""}


def purl_matches(pattern: str, purl: str) -> bool:
    """Whether a package's purl is the product a VEX statement or ignore entry names.

    Type, namespace and name must be equal; a version, and any qualifier, in the pattern must be
    equal too, while ones the pattern leaves out match anything (``pkg:pypi/jinja2`` names every
    Jinja2). That is the "less specific purl covers the more specific one" reading OpenVEX gives
    product identifiers.
    """
    from packageurl import PackageURL

    try:
        want = PackageURL.from_string(pattern)
        have = PackageURL.from_string(purl)
    except ValueError:
        return False
    if (want.type, _norm(want.type, want.namespace), _norm(want.type, want.name)) != (
        have.type,
        _norm(have.type, have.namespace),
        _norm(have.type, have.name),
    ):
        return False
    if want.version and want.version != have.version:
        return False
    wanted_qualifiers = want.qualifiers if isinstance(want.qualifiers, dict) else {}
    have_qualifiers = have.qualifiers if isinstance(have.qualifiers, dict) else {}
    return all(have_qualifiers.get(key) == value for key, value in wanted_qualifiers.items())


def _norm(kind: str, part: str | None) -> str:
    """purl spec: pypi names are case-insensitive with ``_`` read as ``-``; github, bitbucket and composer
    names are case-insensitive; every other type compares exactly."""
    text = part or ""
    if kind == "pypi":
        return text.lower().replace("_", "-")
    if kind in ("github", "bitbucket", "composer"):
        return text.lower()
    return text
