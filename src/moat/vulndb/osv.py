"""One OSV record (https://ossf.github.io/osv-schema/) → an AdvisoryRecord and its AffectedRecord rows.

Records are untrusted: every field is type-checked, and a record that does not hold together raises
:class:`RecordError` (the update counts it as skipped and goes on). Choices made here:

- Ecosystem names stay as OSV writes them, except Ubuntu's suffixes: ``Ubuntu:22.04:LTS`` and
  ``Ubuntu:Pro:18.04:LTS`` both become ``Ubuntu:22.04`` / ``Ubuntu:18.04``, because the matcher knows
  an image's release, not its support contract. An ESM (Pro) entry is kept only when the record has
  no standard entry for the same release and package, since for an end-of-life release the ESM fix
  is the only fix there is.
- Aliases are ordered CVE first. Distro advisories that bundle CVEs (AlmaLinux and other RHEL
  rebuilds put them in ``related``; Ubuntu USNs in ``upstream`` as ``UBUNTU-CVE-…``) get those CVEs
  as aliases too, so the report can lead with the CVE. Ubuntu CVE records with the older plain
  ``CVE-…`` id are stored under Canonical's current ``UBUNTU-CVE-…`` id, so they never collide with
  another feed's record of the same CVE.
- Vendor severity comes from GHSA's ``database_specific.severity``, Ubuntu's priority (per package)
  and the Red Hat word that starts AlmaLinux summaries ("Important: openssh security update").
"""

from __future__ import annotations

import re
from typing import Any

from moat.vulndb.enrich import make_cvss, vendor_severity
from moat.vulndb.store import AdvisoryRecord, AffectedRecord

# Ecosystems of the OSV schema (1.7), base names before any ":release" suffix.
KNOWN_ECOSYSTEMS = frozenset(
    {
        "AlmaLinux", "Alpaquita", "Alpine", "Android", "Azure Linux", "BellSoft Hardened Containers",
        "Bioconductor", "Bitnami", "Chainguard", "CleanStart", "ConanCenter", "CRAN", "crates.io", "Debian",
        "Docker Hardened Images", "Echo", "FreeBSD", "GHC", "GitHub Actions", "Go", "Hackage", "Hex", "Julia",
        "Linux", "Mageia", "Maven", "MinimOS", "npm", "NuGet", "opam", "openEuler", "openSUSE", "OSS-Fuzz",
        "Packagist", "Photon OS", "Pub", "PyPI", "Red Hat", "Rocky Linux", "Root", "RubyGems", "SUSE",
        "SwiftURL", "Ubuntu", "VSCode", "Wolfi",
    }
)  # fmt: skip

_RHEL_FAMILY = frozenset({"AlmaLinux", "Rocky Linux", "Red Hat", "openEuler", "Mageia"})
_CVE = re.compile(r"^CVE-\d{4}-\d{4,}$")
_UBUNTU_CVE = re.compile(r"^UBUNTU-(CVE-\d{4}-\d{4,})$")
_RED_HAT_WORD = re.compile(r"^(Critical|Important|Moderate|Low):\s")
_ORDER = ("CRITICAL", "HIGH", "MEDIUM", "LOW")
_EVENT_KEYS = frozenset({"introduced", "fixed", "last_affected", "limit"})
MAX_AFFECTED = 20_000
"""More affected entries than this in one record is not data, it is an attack on the store."""


class RecordError(ValueError):
    """A record that cannot be ingested; the message names what is wrong."""


def normalize_ecosystem(name: str) -> str | None:
    """The stored ecosystem name, or None when the base ecosystem is not one OSV defines."""
    base = name.split(":", 1)[0]
    if base not in KNOWN_ECOSYSTEMS:
        return None
    if base == "Ubuntu":
        parts = [p for p in name.split(":")[1:] if p not in ("LTS", "Pro", "FIPS", "FIPS-updates", "FIPS-preview")]
        release = next((p for p in parts if re.match(r"^\d+\.\d+$", p)), None)
        return f"Ubuntu:{release}" if release else "Ubuntu"
    return name


def parse_record(data: Any, source: str) -> tuple[AdvisoryRecord, list[AffectedRecord]]:
    """Turn one decoded OSV JSON object into store records; raises RecordError when it is unusable."""
    if not isinstance(data, dict):
        raise RecordError("record is not a JSON object")
    record_id = data.get("id")
    if not isinstance(record_id, str) or not record_id.strip() or len(record_id) > 256:
        raise RecordError("missing or invalid 'id'")
    aliases = _str_list(data, "aliases")
    related = _str_list(data, "related")
    upstream = _str_list(data, "upstream")
    summary = _opt_str(data, "summary")
    details = _opt_str(data, "details")
    published, modified, withdrawn = (_opt_str(data, k) or None for k in ("published", "modified", "withdrawn"))
    references = _references(data)
    raw_affected = data.get("affected", [])
    if not isinstance(raw_affected, list):
        raise RecordError("'affected' is not a list")
    if len(raw_affected) > MAX_AFFECTED:
        raise RecordError(f"{len(raw_affected)} affected entries")

    affected: list[tuple[AffectedRecord, bool]] = []  # (row, from an Ubuntu Pro/ESM ecosystem)
    unknown: set[str] = set()
    for entry in raw_affected:
        parsed = _affected(entry, record_id, unknown)
        if parsed is not None:
            affected.append(parsed)
    if raw_affected and not affected and unknown:
        raise RecordError(f"unknown ecosystem {sorted(unknown)[0]!r}")
    rows = _drop_shadowed_esm(affected)
    bases = {row.ecosystem.split(":", 1)[0] for row in rows}

    if "Ubuntu" in bases and _CVE.match(record_id):
        aliases = [record_id, *aliases]
        record_id = f"UBUNTU-{record_id}"
        for row in rows:
            row.advisory_id = record_id
    extra_cves: list[str] = []
    if bases & _RHEL_FAMILY:
        extra_cves += [r for r in related if _CVE.match(r)]
    for name in upstream:
        match = _UBUNTU_CVE.match(name)
        extra_cves.append(match.group(1) if match else name)
    aliases = _cve_first(_dedupe([*aliases, *(c for c in extra_cves if _CVE.match(c))]), record_id)

    issuer = _issuer(record_id, bases)
    cvss = _cvss_list(data.get("severity"), issuer)
    severity, severity_source = _vendor_severity(data, summary, rows, bases)
    advisory = AdvisoryRecord(
        id=record_id,
        source=source,
        aliases=aliases,
        related=related,
        summary=summary,
        details=details,
        severity=severity,
        severity_source=severity_source,
        cvss=cvss,
        references=references,
        published=published,
        modified=modified,
        withdrawn=withdrawn,
    )
    return advisory, rows


def _affected(entry: Any, record_id: str, unknown: set[str]) -> tuple[AffectedRecord, bool] | None:
    if not isinstance(entry, dict):
        raise RecordError("an 'affected' entry is not an object")
    package = entry.get("package")
    if package is None:
        return None  # GIT-only entries (no package) cannot be matched against an inventory
    if not isinstance(package, dict):
        raise RecordError("'affected.package' is not an object")
    ecosystem, name = package.get("ecosystem"), package.get("name")
    if not isinstance(ecosystem, str) or not isinstance(name, str) or not name or not ecosystem:
        raise RecordError("'affected.package' lacks a string ecosystem and name")
    stored = normalize_ecosystem(ecosystem)
    if stored is None:
        unknown.add(ecosystem)
        return None
    ranges = entry.get("ranges", [])
    versions = entry.get("versions", [])
    if not isinstance(ranges, list) or not all(_valid_range(r) for r in ranges):
        raise RecordError(f"invalid 'ranges' for {name}")
    if not isinstance(versions, list) or not all(isinstance(v, str) for v in versions):
        raise RecordError(f"invalid 'versions' for {name}")
    fixed = any("fixed" in event for rng in ranges for event in rng["events"])
    ecosystem_specific = entry.get("ecosystem_specific")
    severity = ""
    if isinstance(ecosystem_specific, dict):
        severity = vendor_severity(ecosystem_specific.get("ubuntu_priority")) or vendor_severity(
            ecosystem_specific.get("severity")
        )
    if not severity:
        severity = _cves_map_severity(entry.get("database_specific"))
    row = AffectedRecord(
        advisory_id=record_id,
        ecosystem=stored,
        package=name,
        ranges=ranges,
        versions=versions,
        status="fixed" if fixed else "affected",
        severity=severity,
    )
    return row, ecosystem.startswith("Ubuntu:") and ":Pro:" in f":{ecosystem.split(':', 1)[1]}:"


def _cves_map_severity(specific: Any) -> str:
    """Ubuntu USNs give each CVE's priority in ``database_specific.cves_map``: take the worst."""
    if not isinstance(specific, dict) or not isinstance(specific.get("cves_map"), dict):
        return ""
    cves = specific["cves_map"].get("cves")
    found = [
        vendor_severity(item.get("score"))
        for cve in (cves if isinstance(cves, list) else [])
        if isinstance(cve, dict) and isinstance(cve.get("severity"), list)
        for item in cve["severity"]
        if isinstance(item, dict) and item.get("type") == "Ubuntu"
    ]
    found = [f for f in found if f]
    return min(found, key=_ORDER.index) if found else ""


def _valid_range(rng: Any) -> bool:
    if not isinstance(rng, dict) or not isinstance(rng.get("type"), str):
        return False
    events = rng.get("events")
    if not isinstance(events, list) or not events:
        return False
    for event in events:
        if not isinstance(event, dict) or len(event) != 1:
            return False
        key, value = next(iter(event.items()))
        if key not in _EVENT_KEYS or not isinstance(value, str):
            return False
    return True


def _drop_shadowed_esm(rows: list[tuple[AffectedRecord, bool]]) -> list[AffectedRecord]:
    standard = {(row.ecosystem, row.package) for row, esm in rows if not esm}
    return [row for row, esm in rows if not esm or (row.ecosystem, row.package) not in standard]


def _vendor_severity(
    data: dict[str, Any], summary: str, rows: list[AffectedRecord], bases: set[str]
) -> tuple[str, str]:
    specific = data.get("database_specific")
    if isinstance(specific, dict) and vendor_severity(specific.get("severity")):
        return vendor_severity(specific["severity"]), "ghsa" if data["id"].startswith("GHSA-") else "osv"
    severities = data.get("severity")
    if isinstance(severities, list):
        for item in severities:
            if isinstance(item, dict) and item.get("type") == "Ubuntu" and vendor_severity(item.get("score")):
                return vendor_severity(item["score"]), "ubuntu"
    if bases & _RHEL_FAMILY:
        match = _RED_HAT_WORD.match(summary)
        if match:
            return vendor_severity(match.group(1)), next(iter(sorted(bases & _RHEL_FAMILY))).lower().replace(" ", "")
    per_package = [row.severity for row in rows if row.severity]
    if per_package:  # the advisory's level is its worst package's
        return min(per_package, key=_ORDER.index), "ubuntu" if "Ubuntu" in bases else "osv"
    return "", ""


def _cvss_list(severities: Any, issuer: str) -> list[Any]:
    if severities is None:
        return []
    if not isinstance(severities, list):
        raise RecordError("'severity' is not a list")
    out = []
    for item in severities:
        if not isinstance(item, dict):
            raise RecordError("a 'severity' entry is not an object")
        kind, score = item.get("type"), item.get("score")
        if not isinstance(kind, str) or not isinstance(score, str):
            raise RecordError("a 'severity' entry lacks string type and score")
        if kind.startswith("CVSS_"):
            cvss = make_cvss(score.strip(), kind, issuer)
            if cvss is not None:
                out.append(cvss)
    return out


def _issuer(record_id: str, bases: set[str]) -> str:
    """Who scored the record's CVSS: the distro for distro records, else the id's database prefix."""
    distro = bases & {"Ubuntu", "Debian", "Alpine", *_RHEL_FAMILY}
    if distro:
        return sorted(distro)[0].lower().replace(" ", "")
    return record_id.split("-", 1)[0].lower()


def _references(data: dict[str, Any]) -> list[str]:
    refs = data.get("references", [])
    if not isinstance(refs, list):
        raise RecordError("'references' is not a list")
    urls = []
    for ref in refs:
        if not isinstance(ref, dict) or not isinstance(ref.get("url"), str):
            raise RecordError("a 'references' entry has no string url")
        urls.append(ref["url"])
    return _dedupe(urls)


def _str_list(data: dict[str, Any], key: str) -> list[str]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RecordError(f"'{key}' is not a list of strings")
    return list(value)


def _opt_str(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RecordError(f"'{key}' is not a string")
    return value


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _cve_first(aliases: list[str], record_id: str) -> list[str]:
    aliases = [a for a in aliases if a != record_id]
    return [a for a in aliases if _CVE.match(a)] + [a for a in aliases if not _CVE.match(a)]
