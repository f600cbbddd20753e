"""Enrichment keyed by CVE: CISA KEV, FIRST EPSS, and CVSS base scores and vendor severity words.

CVSS scores come from Red Hat's ``cvss`` library (PyPI ``cvss``: CVSS 2.0, 3.0, 3.1 and 4.0,
no dependencies, maintained by Red Hat Product Security). Writing our own calculator would mean
re-deriving the CVSS 4.0 macro-vector tables; a well-kept implementation is the safer choice.
When the library is missing the vector is kept and the score stays ``None``.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from moat.errors import MoatError
from moat.model import CVSS

CVE_RE = re.compile(r"^CVE-\d{4}-\d{4,}$")


class EnrichError(MoatError):
    """A KEV or EPSS file that cannot be used at all."""


# --- CVSS ---------------------------------------------------------------------------------------


def cvss_version(vector: str, osv_type: str = "") -> str | None:
    """The CVSS version a vector string is written in, or None when it is not one we know."""
    if vector.startswith("CVSS:3.1/"):
        return "3.1"
    if vector.startswith("CVSS:3.0/"):
        return "3.0"
    if vector.startswith("CVSS:4.0/"):
        return "4.0"
    if osv_type == "CVSS_V2" or re.match(r"^\(?AV:[LAN]/AC:[HML]/Au:[MSN]/", vector):
        return "2.0"
    return None


def cvss_base_score(vector: str, version: str) -> float | None:
    """The base score of a vector, or None when the vector is malformed or the library is absent."""
    try:
        import cvss as cvsslib  # deferred: only ingest needs it
    except ImportError:  # pragma: no cover - the library is a declared dependency
        return None
    try:
        if version == "2.0":
            return float(cvsslib.CVSS2(vector.strip("()")).base_score)
        if version in ("3.0", "3.1"):
            return float(cvsslib.CVSS3(vector).base_score)
        if version == "4.0":
            return float(cvsslib.CVSS4(vector).base_score)
    except (cvsslib.CVSSError, ValueError, KeyError, IndexError, TypeError):
        return None
    return None


def make_cvss(vector: str, osv_type: str = "", source: str = "") -> CVSS | None:
    """A scored :class:`CVSS` from a vector string, or None when the string is no CVSS vector."""
    version = cvss_version(vector, osv_type)
    if version is None:
        return None
    return CVSS(version=version, vector=vector, score=cvss_base_score(vector, version), source=source)


def severity_from_score(score: float | None, version: str = "3.1") -> str:
    """The qualitative rating of a base score (CVSS 3/4 bands; CVSS 2 has no CRITICAL)."""
    if score is None:
        return "UNKNOWN"
    if version == "2.0":
        return "HIGH" if score >= 7.0 else "MEDIUM" if score >= 4.0 else "LOW"
    if score >= 9.0:
        return "CRITICAL"
    if score >= 7.0:
        return "HIGH"
    if score >= 4.0:
        return "MEDIUM"
    if score > 0.0:
        return "LOW"
    return "UNKNOWN"  # 0.0 is "None" in CVSS: nothing to rank it by


# Vendor words, lower-cased, onto Moat's levels. Red Hat/AlmaLinux use Critical/Important/Moderate/Low,
# GHSA uses CRITICAL/HIGH/MODERATE/LOW, Ubuntu priorities are critical/high/medium/low/negligible,
# Debian urgencies are high/medium/low/unimportant.
_VENDOR_WORDS = {
    "critical": "CRITICAL",
    "important": "HIGH",
    "high": "HIGH",
    "moderate": "MEDIUM",
    "medium": "MEDIUM",
    "low": "LOW",
    "negligible": "LOW",
    "unimportant": "LOW",
}


def vendor_severity(word: object) -> str:
    """Map a vendor's severity word onto CRITICAL/HIGH/MEDIUM/LOW; '' when the word is unknown."""
    if not isinstance(word, str):
        return ""
    return _VENDOR_WORDS.get(word.strip().lower(), "")


# --- KEV ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class KevEntry:
    cve: str
    date_added: str
    due_date: str
    ransomware: str
    name: str


def is_kev(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("vulnerabilities"), list) and "catalogVersion" in data


def read_kev(data: Any) -> tuple[list[KevEntry], int]:
    """The entries of CISA's known_exploited_vulnerabilities.json and how many were skipped."""
    if not is_kev(data):
        raise EnrichError("not a CISA KEV catalog (no catalogVersion/vulnerabilities)")
    entries: list[KevEntry] = []
    skipped = 0
    for item in data["vulnerabilities"]:
        cve = item.get("cveID") if isinstance(item, dict) else None
        if not isinstance(cve, str) or not CVE_RE.match(cve):
            skipped += 1
            continue
        entries.append(
            KevEntry(
                cve=cve,
                date_added=_text(item.get("dateAdded")),
                due_date=_text(item.get("dueDate")),
                ransomware=_text(item.get("knownRansomwareCampaignUse")),
                name=_text(item.get("vulnerabilityName")),
            )
        )
    return entries, skipped


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


# --- EPSS ---------------------------------------------------------------------------------------


def looks_like_epss(head: str) -> bool:
    """True for FIRST's CSV (``#model_version…`` line, ``cve,epss,percentile`` header) or the
    header-less ``CVE;epss;percentile`` form."""
    first = head.lstrip("\ufeff").split("\n", 1)[0].strip().lower()
    if first.startswith("#model_version") or first.replace(";", ",").startswith("cve,epss"):
        return True
    return re.match(r"^cve-\d{4}-\d+[;,]\s*[0-9.]+[;,]\s*[0-9.]+$", first) is not None


def read_epss(text: str) -> tuple[Iterator[tuple[str, float, float]], list[int]]:
    """Rows (cve, score, percentile) of one EPSS CSV, lazily; the one-element list counts skipped lines.

    Accepts FIRST's published form (a ``#model_version`` comment, a ``cve,epss,percentile`` header,
    comma-separated) and the per-year header-less ``;``-separated files.
    """
    skipped = [0]

    def rows() -> Iterator[tuple[str, float, float]]:
        for line in text.splitlines():
            line = line.strip().lstrip("\ufeff")
            if not line or line.startswith("#"):
                continue
            delimiter = ";" if ";" in line else ","
            fields = next(csv.reader(io.StringIO(line), delimiter=delimiter))
            if len(fields) >= 3 and fields[0].strip().lower() == "cve":
                continue  # header
            try:
                cve, score, percentile = fields[0].strip(), float(fields[1]), float(fields[2])
            except (IndexError, ValueError):
                skipped[0] += 1
                continue
            if not CVE_RE.match(cve) or not (0.0 <= score <= 1.0 and 0.0 <= percentile <= 1.0):
                skipped[0] += 1
                continue
            yield cve, score, percentile

    return rows(), skipped


def load_json_bytes(data: bytes) -> Any:
    """json.loads with the error turned into an EnrichError."""
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EnrichError(f"invalid JSON ({exc})") from exc
