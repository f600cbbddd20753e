"""Packages x vulnerability database → vulnerabilities.

The matcher asks the store once per distinct (ecosystem, package name), evaluates each affected row
once per distinct installed version, and only then fans the verdicts out to every instance of the
package (the same jar in three places is three findings that share one evaluation). Advisory rows,
KEV and EPSS answers are cached for the run, so a 10,000-package SBOM costs about as many queries as
it has distinct names.

One finding is one CVE in one package instance. An advisory that fixes several CVEs (an ALSA erratum,
a DSA) becomes one finding per CVE, because the gate, KEV and EPSS all speak per CVE; two advisories
naming the same CVE for the same package (a GHSA and a PYSEC record, a DSA and a DLA) become one
finding that keeps the best data of both.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from moat.gcpause import collector_paused
from moat.match.ecosystems import OS_TYPES, Lookup, lookup_for
from moat.match.ranges import Verdict, evaluate
from moat.model import CVSS, SEVERITIES, Inventory, Package, Vulnerability
from moat.vulndb import versions
from moat.vulndb.store import AdvisoryRecord, AffectedRecord, Store
from moat.vulndb.versions import VersionError

MAX_DESCRIPTION = 8192
"""Advisory details are CommonMark and some run to pages; reports need the gist, bounded."""

_CVE = re.compile(r"(?:^|-)(CVE-\d{4}-\d{4,})$")
_CVE_ID = re.compile(r"CVE-\d{4}-\d{4,}")
"""A CVE id, bare or behind a distro prefix (``UBUNTU-CVE-2022-40735``, ``DEBIAN-CVE-…``)."""

_VENDOR_WORDS = {
    "CRITICAL": "CRITICAL",
    "HIGH": "HIGH",
    "IMPORTANT": "HIGH",
    "MEDIUM": "MEDIUM",
    "MODERATE": "MEDIUM",
    "LOW": "LOW",
    "NEGLIGIBLE": "LOW",
    "UNIMPORTANT": "LOW",
}
"""Vendor severity words (Red Hat's, Ubuntu's, GHSA's) onto Moat's scale."""

_SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}
_VENDOR_STATUSES = ("affected", "will_not_fix", "end_of_life")


def match_inventory(inventory: Inventory, store: Store) -> list[Vulnerability]:
    """The vulnerabilities of ``inventory``'s packages, most severe first.

    Problems that cost coverage (a distro without data, versions that do not parse) are appended to
    ``inventory.warnings`` as counted one-line messages; nothing here raises on bad package data.
    """
    matcher = Matcher(store)
    with collector_paused():
        found = matcher.match(inventory)
    inventory.warnings.extend(matcher.warnings())
    return found


@dataclass(slots=True)
class _Candidate:
    """One advisory's claim about one package version, before it is fanned out to CVEs and instances."""

    advisory: AdvisoryRecord
    row: AffectedRecord
    verdict: Verdict


@dataclass(slots=True)
class _Facts:
    """Per advisory: (finding id, aliases, KEV, EPSS) for each CVE it names, and the trimmed details."""

    ids: list[tuple[str, tuple[str, ...], bool, tuple[float, float] | None]]
    description: str


@dataclass(slots=True)
class _Skips:
    """Counted reasons for not evaluating something, reported as one warning each."""

    no_feed: dict[str, int] = field(default_factory=dict)
    no_comparator: dict[str, int] = field(default_factory=dict)
    bad_installed: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    bad_advisory: dict[str, int] = field(default_factory=dict)
    bad_examples: dict[str, str] = field(default_factory=dict)


class Matcher:
    """One matching run over one store, with that run's caches and warning counters."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._rows: dict[tuple[str, str], list[tuple[AffectedRecord, list[str]]]] = {}
        self._advisories: dict[str, AdvisoryRecord | None] = {}
        self._kev_set: frozenset[str] | None = None
        self._epss: dict[str, tuple[float, float] | None] = {}
        self._ecosystems: set[str] | None = None
        self._facts_cache: dict[tuple[str, bool], _Facts] = {}
        self._skips = _Skips()

    # -- the run ---------------------------------------------------------------------------------

    def match(self, inventory: Inventory) -> list[Vulnerability]:
        groups: dict[Lookup, list[Package]] = defaultdict(list)
        for package in inventory.packages:
            lookup = lookup_for(package, inventory.os)
            if lookup is not None:
                groups[lookup].append(package)
            elif package.type in OS_TYPES and package.version:
                self._count_no_feed(inventory, 1)
        # Phase 1: every row of every package name in a few queries, then the range evaluation.
        self._prefetch_rows(groups)
        hits: list[tuple[Lookup, list[Package], AffectedRecord, Verdict]] = []
        for lookup, packages in groups.items():
            if lookup.os_package and not self._expand(lookup):
                self._count_no_feed(inventory, len(packages))
                continue
            for row, verdict in self._candidates(lookup):
                hits.append((lookup, packages, row, verdict))
        # Phase 2: only the advisories that matched, and their enrichment, in a few queries.
        self._prefetch_advisories({row.advisory_id for _, _, row, _ in hits})
        findings: dict[tuple[str, tuple[str, str, str, str, str, str | None]], Vulnerability] = {}
        for lookup, packages, row, verdict in hits:
            advisory = self._advisories.get(row.advisory_id)
            if advisory is None or advisory.withdrawn:
                continue
            candidate = _Candidate(advisory, row, verdict)
            for package in packages:
                for vuln in self._findings(candidate, package, lookup):
                    key = (vuln.id, _instance_key(package))
                    previous = findings.get(key)
                    findings[key] = vuln if previous is None else _merge(previous, vuln)
        return sorted(findings.values(), key=_sort_key)

    def _prefetch_rows(self, groups: dict[Lookup, list[Package]]) -> None:
        pairs = {(ecosystem, lookup.name) for lookup in groups for ecosystem in self._expand(lookup)}
        pairs -= set(self._rows)
        for key, rows in self.store.affected_many(pairs).items():
            # The versions list stays a list: each row is evaluated for one or two installed
            # versions, so building a set of hundreds of versions per row cost more than it saved.
            self._rows[key] = [(row, row.versions) for row in rows]

    def _prefetch_advisories(self, ids: set[str]) -> None:
        missing = ids - set(self._advisories)
        fetched = self.store.advisories(missing)
        for advisory_id in missing:
            self._advisories[advisory_id] = fetched.get(advisory_id)
        if self._kev_set is None:
            self._kev_set = self.store.kev_all()
        cves = {
            alias
            for advisory in fetched.values()
            for alias in (advisory.id, *advisory.aliases, *advisory.related)
            if alias.startswith("CVE-") and alias not in self._epss
        }
        known = self.store.epss_many(cves)
        for cve in cves:
            self._epss[cve] = known.get(cve)

    def warnings(self) -> list[str]:
        skips = self._skips
        out = [
            f"no vulnerability data for {distro}: {count} OS package(s) not checked"
            for distro, count in sorted(skips.no_feed.items())
        ]
        out += [
            f"no version comparator for {ecosystem}: {count} package(s) not checked"
            for ecosystem, count in sorted(skips.no_comparator.items())
        ]
        for ecosystem, names in sorted(skips.bad_installed.items()):
            out.append(
                f"{len(names)} {ecosystem} package(s) with a version that cannot be compared were not checked "
                f"(e.g. {names[0]})"
            )
        for ecosystem, count in sorted(skips.bad_advisory.items()):
            out.append(
                f"{count} {ecosystem} advisory match(es) skipped: unparseable version in the advisory "
                f"(e.g. {skips.bad_examples[ecosystem]})"
            )
        return out

    # -- evaluation ------------------------------------------------------------------------------

    def _candidates(self, lookup: Lookup) -> Iterable[tuple[AffectedRecord, Verdict]]:
        """The rows that say ``lookup.version`` is affected (withdrawn advisories are dropped later)."""
        ecosystems = self._expand(lookup)
        if not ecosystems:
            return
        if not versions.supports(ecosystems[0]):
            self._skips.no_comparator[ecosystems[0]] = self._skips.no_comparator.get(ecosystems[0], 0) + 1
            return
        if not versions.is_valid(ecosystems[0], lookup.version):
            self._skips.bad_installed[lookup.ecosystem].append(f"{lookup.name} {lookup.version}")
            return
        for ecosystem in ecosystems:
            for row, listed in self._affected(ecosystem, lookup.name):
                if row.status == "not_affected":
                    continue
                verdict = self._evaluate(row, listed, lookup.version)
                if verdict is not None:
                    yield row, verdict

    def _evaluate(self, row: AffectedRecord, listed: list[str], version: str) -> Verdict | None:
        if not row.ranges and not row.versions:
            # A vendor status with no ranges at all (a tracker's "<unfixed>" or "<end-of-life>"
            # without a fix) says every version in this release is affected.
            return Verdict() if row.status in _VENDOR_STATUSES else None
        try:
            return evaluate(row.ecosystem, version, row.ranges, listed)
        except VersionError as exc:
            self._skips.bad_advisory[row.ecosystem] = self._skips.bad_advisory.get(row.ecosystem, 0) + 1
            self._skips.bad_examples.setdefault(row.ecosystem, f"{row.advisory_id}: {exc.version!r}")
            return None

    def _findings(self, candidate: _Candidate, package: Package, lookup: Lookup) -> list[Vulnerability]:
        advisory, row, verdict = candidate.advisory, candidate.row, candidate.verdict
        facts = self._facts(advisory, lookup.os_package)
        severity, severity_source = _severity(row, advisory)
        status = _status(row, verdict)
        return [
            Vulnerability(
                id=vuln_id,
                advisory_id=advisory.id,
                package_name=package.name,
                package_version=package.version,
                package_type=package.type,
                purl=package.purl,
                found_in=package.found_in,
                layer=package.layer,
                aliases=list(aliases),
                status=status,
                fixed_versions=list(verdict.fixed_versions),
                severity=severity,
                severity_source=severity_source,
                cvss=advisory.cvss,  # shared, never mutated: _merge builds new lists
                kev=kev,
                epss=epss[0] if epss else None,
                epss_percentile=epss[1] if epss else None,
                title=advisory.summary,
                description=facts.description,
                references=advisory.references,
                data_source=advisory.source,
                published=advisory.published,
                modified=advisory.modified,
            )
            for vuln_id, aliases, kev, epss in facts.ids
        ]

    def _facts(self, advisory: AdvisoryRecord, os_package: bool) -> _Facts:
        """What every finding of one advisory shares, worked out once per run."""
        key = (advisory.id, os_package)
        facts = self._facts_cache.get(key)
        if facts is not None:
            return facts
        cves = _cves(advisory, include_related=os_package)
        ids = cves or [advisory.id]
        if len(ids) == 1:
            others = [advisory.id, *advisory.aliases]
        else:
            others = [advisory.id, *(alias for alias in advisory.aliases if not _CVE.search(alias))]
        facts = self._facts_cache[key] = _Facts(
            ids=[
                (vuln_id, tuple(_unique(a for a in others if a != vuln_id)), self._kev_of(vuln_id),
                 self._epss_of(vuln_id))
                for vuln_id in ids
            ],
            description=_trim(advisory.details),
        )
        return facts

    # -- store access, cached ---------------------------------------------------------------------

    def _expand(self, lookup: Lookup) -> list[str]:
        """The store ecosystems a lookup covers: itself, or every product stream under a prefix.

        Distro ecosystems the store has no rows for give an empty list (the caller warns that the
        distro went unchecked); language ecosystems are always asked, since an empty answer there
        simply means no advisories.
        """
        if not lookup.os_package:
            return [lookup.ecosystem]
        present = self._store_ecosystems()
        if not lookup.prefix:
            return [lookup.ecosystem] if lookup.ecosystem in present else []
        return sorted(e for e in present if e.startswith(lookup.ecosystem))

    def _store_ecosystems(self) -> set[str]:
        if self._ecosystems is None:
            self._ecosystems = set(self.store.iter_ecosystems())
        return self._ecosystems

    def _count_no_feed(self, inventory: Inventory, count: int) -> None:
        distro = f"{inventory.os.family} {inventory.os.name}".strip() if inventory.os else "an unknown OS"
        self._skips.no_feed[distro] = self._skips.no_feed.get(distro, 0) + count

    def _affected(self, ecosystem: str, name: str) -> list[tuple[AffectedRecord, list[str]]]:
        """The rows for one package name, each with its explicit versions list."""
        key = (ecosystem, name)
        rows = self._rows.get(key)
        if rows is None:
            rows = self._rows[key] = [(row, row.versions) for row in self.store.affected(ecosystem, name)]
        return rows

    def _kev_of(self, vuln_id: str) -> bool:
        if self._kev_set is None:
            self._kev_set = self.store.kev_all()
        return vuln_id in self._kev_set

    def _epss_of(self, vuln_id: str) -> tuple[float, float] | None:
        if not vuln_id.startswith("CVE-"):
            return None
        if vuln_id not in self._epss:
            self._epss[vuln_id] = self.store.epss(vuln_id)
        return self._epss[vuln_id]


# -- pure helpers ------------------------------------------------------------------------------------


def _cves(advisory: AdvisoryRecord, include_related: bool) -> list[str]:
    """The CVEs an advisory is about: its own id if it is one, its aliases, and for distro errata
    (AlmaLinux lists the CVEs an erratum fixes under ``related``) the related ids too."""
    names = [advisory.id, *advisory.aliases]
    if include_related:
        names += advisory.related
    found: dict[str, None] = {}
    for name in names:
        if name.startswith("CVE-") and _CVE_ID.fullmatch(name):
            found[name] = None  # the common case, without a search
        elif m := _CVE.search(name):
            found[m.group(1)] = None
    return list(found)


def _status(row: AffectedRecord, verdict: Verdict) -> str:
    """``fixed`` when an upgrade exists; otherwise the vendor's word (no fix yet, won't fix, EOL)."""
    if verdict.fixed_versions:
        return "fixed"
    return row.status if row.status in _VENDOR_STATUSES else "affected"


def _severity(row: AffectedRecord, advisory: AdvisoryRecord) -> tuple[str, str]:
    """Vendor first (the package's row, then the advisory), else the highest CVSS base score."""
    for word in (row.severity, advisory.severity):
        level = _VENDOR_WORDS.get(word.strip().upper()) if word else None
        if level:
            return level, advisory.severity_source or advisory.source
    scores = [c.score for c in advisory.cvss if c.score is not None]
    if scores:
        return _from_score(max(scores)), "cvss"
    return "UNKNOWN", ""


def _from_score(score: float) -> str:
    if score >= 9.0:
        return "CRITICAL"
    if score >= 7.0:
        return "HIGH"
    if score >= 4.0:
        return "MEDIUM"
    if score > 0.0:
        return "LOW"
    return "UNKNOWN"


def _merge(a: Vulnerability, b: Vulnerability) -> Vulnerability:
    """Two advisories' findings for the same CVE and package instance, as one.

    The better-informed finding leads (one that offers a fix, then vendor severity, then any severity,
    then the lower advisory id for a stable answer); lists are unioned so nothing either said is lost.
    """
    best, other = (a, b) if _quality(a) <= _quality(b) else (b, a)
    merged_aliases = _unique([*best.aliases, other.advisory_id, *other.aliases])
    best.aliases = [x for x in merged_aliases if x not in (best.id, best.advisory_id)]
    best.references = _unique([*best.references, *other.references])
    best.cvss = _unique_cvss([*best.cvss, *other.cvss])
    best.fixed_versions = _unique([*best.fixed_versions, *other.fixed_versions])
    if best.severity == "UNKNOWN" and other.severity != "UNKNOWN":
        best.severity, best.severity_source = other.severity, other.severity_source
    best.title = best.title or other.title
    best.description = best.description or other.description
    best.published = min((p for p in (best.published, other.published) if p), default=None)
    return best


def _quality(v: Vulnerability) -> tuple[int, int, int, str]:
    """Smaller is better."""
    return (
        0 if v.fixed_versions else 1,
        0 if v.severity_source not in ("", "cvss") else 1,
        _SEVERITY_RANK.get(v.severity, len(SEVERITIES)),
        v.advisory_id,
    )


def _unique_cvss(items: list[CVSS]) -> list[CVSS]:
    seen: set[tuple[str, str]] = set()
    out = []
    for item in items:
        key = (item.vector, item.source)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _trim(text: str) -> str:
    text = text.strip()
    return text if len(text) <= MAX_DESCRIPTION else text[: MAX_DESCRIPTION - 1].rstrip() + "…"


def _instance_key(package: Package) -> tuple[str, str, str, str, str, str | None]:
    return (package.type, package.name, package.version, package.found_in, package.purl, package.layer)


def _sort_key(v: Vulnerability) -> tuple[int, str, str, str, str, str]:
    return (_SEVERITY_RANK.get(v.severity, len(SEVERITIES)), v.id, v.package_name, v.package_version,
            v.found_in, v.advisory_id)
