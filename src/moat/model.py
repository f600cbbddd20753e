"""Moat's data model: plain dataclasses shared by every stage.

The native JSON report (``moat.report/v1``, documented in docs/report-schema.md) is the
``to_dict`` form of these classes, so the schema lives here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

REPORT_SCHEMA = "moat.report/v1"


@dataclass(slots=True)
class Package:
    """One installed or declared package.

    ``version`` is the full version as the ecosystem's own tool prints it: dpkg
    ``[epoch:]upstream[-revision]``, rpm ``[epoch:]version-release``, apk ``pkgver-rN``. The rpm
    parts are kept separately too (``epoch``, ``release``) because matching needs them.
    """

    name: str
    version: str
    type: str
    """Package URL type: deb, apk, rpm, pypi, npm, golang, maven, gem, cargo, composer, nuget."""
    purl: str = ""
    licenses: list[str] = field(default_factory=list)
    found_in: str = ""
    """Path of the file the package was read from, relative to the image root (no leading slash)."""
    layer: str | None = None
    """Diff id of the layer that introduced the package (None for a plain directory)."""
    source_name: str | None = None
    source_version: str | None = None
    arch: str | None = None
    epoch: int | None = None
    release: str | None = None
    dev: bool = False
    """Declared as a development-only dependency (lockfiles that say so)."""
    relationship: str | None = None
    """root, direct, indirect or None when the file does not tell."""
    depends_on: list[str] = field(default_factory=list)
    """Ids (``name@version``) of the packages this one depends on, where the file records them."""
    extra: dict[str, str] = field(default_factory=dict)
    """Ecosystem-specific facts worth keeping (source_rpm, modularity_label, vendor, …)."""

    @property
    def id(self) -> str:
        return f"{self.name}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "type": self.type,
            "purl": self.purl,
            "licenses": list(self.licenses),
            "found_in": self.found_in,
            "layer": self.layer,
        }
        for key in ("source_name", "source_version", "arch", "epoch", "release", "relationship"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        if self.dev:
            data["dev"] = True
        if self.depends_on:
            data["depends_on"] = list(self.depends_on)
        if self.extra:
            data["extra"] = dict(self.extra)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Package:
        return cls(
            name=str(data["name"]),
            version=str(data["version"]),
            type=str(data["type"]),
            purl=str(data.get("purl") or ""),
            licenses=[str(x) for x in data.get("licenses") or []],
            found_in=str(data.get("found_in") or ""),
            layer=data.get("layer"),
            source_name=data.get("source_name"),
            source_version=data.get("source_version"),
            arch=data.get("arch"),
            epoch=data.get("epoch"),
            release=data.get("release"),
            dev=bool(data.get("dev", False)),
            relationship=data.get("relationship"),
            depends_on=[str(x) for x in data.get("depends_on") or []],
            extra={str(k): str(v) for k, v in (data.get("extra") or {}).items()},
        )


@dataclass(slots=True)
class OSInfo:
    """The operating system of an image, as the os-release family of files describes it.

    ``family`` uses the identifiers Trivy and the vulnerability feeds use (debian, ubuntu, alpine,
    redhat, centos, centos-stream, rocky, alma, oracle, fedora, amazon, sles, slem, opensuse-leap,
    opensuse-tumbleweed, photon, cbl-mariner, azurelinux, wolfi, chainguard, bottlerocket, …; see
    ``moat.inventory.analyzers.osrelease``) so matching can select a feed from it.
    """

    family: str
    name: str
    """The release: "12", "3.19.1", "8.7" …"""
    pretty_name: str = ""
    distroless: bool = False

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"family": self.family, "name": self.name}
        if self.pretty_name:
            data["pretty_name"] = self.pretty_name
        if self.distroless:
            data["distroless"] = True
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OSInfo:
        return cls(
            family=str(data["family"]),
            name=str(data.get("name") or ""),
            pretty_name=str(data.get("pretty_name") or ""),
            distroless=bool(data.get("distroless", False)),
        )


@dataclass(slots=True)
class LayerInfo:
    """One layer of an image as the report shows it."""

    diff_id: str
    digest: str | None = None
    size: int | None = None
    media_type: str | None = None
    created_by: str | None = None
    cached: bool = False

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"diff_id": self.diff_id}
        for key in ("digest", "size", "media_type", "created_by"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        data["cached"] = self.cached
        return data


@dataclass(slots=True)
class Artifact:
    """What was scanned: an image, a directory, or an SBOM."""

    name: str
    type: str
    """container_image, filesystem or sbom."""
    digest: str | None = None
    """Manifest digest for registry images; config digest otherwise."""
    repo_tags: list[str] = field(default_factory=list)
    repo_digests: list[str] = field(default_factory=list)
    architecture: str | None = None
    os: str | None = None
    created: str | None = None
    layers: list[LayerInfo] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    """The image configuration (OCI ``config`` object: User, Env, Cmd, Labels …)."""

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "type": self.type}
        for key in ("digest", "architecture", "os", "created"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        if self.repo_tags:
            data["repo_tags"] = list(self.repo_tags)
        if self.repo_digests:
            data["repo_digests"] = list(self.repo_digests)
        data["layers"] = [layer.to_dict() for layer in self.layers]
        if self.config:
            data["config"] = self.config
        return data


@dataclass(slots=True)
class CVSS:
    """One CVSS assessment of an advisory, as the data source states it."""

    version: str
    """"2.0", "3.0", "3.1" or "4.0"."""
    vector: str
    score: float | None = None
    source: str = ""
    """Who scored it (nvd, ghsa, a distro), where the data says."""

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "vector": self.vector, "score": self.score, "source": self.source}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CVSS:
        score = data.get("score")
        return cls(
            version=str(data.get("version") or ""),
            vector=str(data.get("vector") or ""),
            score=float(score) if isinstance(score, int | float) else None,
            source=str(data.get("source") or ""),
        )


SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN")
"""Severity levels, most severe first (the order reports sort by)."""

VULN_STATUSES = ("fixed", "affected", "will_not_fix", "end_of_life", "not_affected")
"""fixed: a fixed version exists; affected: no fix yet; will_not_fix / end_of_life: the vendor
says there will be none; not_affected: the vendor (or a VEX statement) says the package is safe."""


@dataclass(slots=True)
class Vulnerability:
    """One advisory that applies to one package of the inventory: a finding of the vuln scanner."""

    id: str
    """The CVE when the advisory aliases one, else the advisory's own id."""
    advisory_id: str
    """The record's own id (PYSEC-…, GHSA-…, GO-…, ALSA-…, DSA-…, or the CVE for distro trackers)."""
    package_name: str
    package_version: str
    package_type: str
    purl: str = ""
    found_in: str = ""
    layer: str | None = None
    aliases: list[str] = field(default_factory=list)
    status: str = "affected"
    fixed_versions: list[str] = field(default_factory=list)
    severity: str = "UNKNOWN"
    severity_source: str = ""
    """Where the severity came from: the vendor (debian, alpine, almalinux, ghsa …) or "cvss"."""
    cvss: list[CVSS] = field(default_factory=list)
    kev: bool = False
    """Listed in CISA's Known Exploited Vulnerabilities catalog."""
    epss: float | None = None
    epss_percentile: float | None = None
    title: str = ""
    description: str = ""
    references: list[str] = field(default_factory=list)
    data_source: str = ""
    """The feed the advisory came from: osv:PyPI, debian-tracker, alpine-secdb …"""
    published: str | None = None
    modified: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "advisory_id": self.advisory_id,
            "aliases": list(self.aliases),
            "package": {
                "name": self.package_name,
                "version": self.package_version,
                "type": self.package_type,
                "purl": self.purl,
                "found_in": self.found_in,
                "layer": self.layer,
            },
            "status": self.status,
            "fixed_versions": list(self.fixed_versions),
            "severity": self.severity,
            "severity_source": self.severity_source,
            "cvss": [c.to_dict() for c in self.cvss],
            "kev": self.kev,
            "epss": self.epss,
            "epss_percentile": self.epss_percentile,
            "title": self.title,
            "description": self.description,
            "references": list(self.references),
            "data_source": self.data_source,
            "published": self.published,
            "modified": self.modified,
        }


@dataclass(slots=True)
class Inventory:
    """Everything the image-scanning stage learned about one artifact (and, once matched, what is
    vulnerable in it)."""

    artifact: Artifact
    os: OSInfo | None = None
    packages: list[Package] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    vulnerabilities: list[Vulnerability] = field(default_factory=list)

    def sorted_packages(self) -> list[Package]:
        return sorted(self.packages, key=lambda p: (p.type, p.name, p.version, p.found_in))


MISCONFIG_STATUSES = ("FAIL", "MANUAL")
"""A misconfiguration finding either failed an automated check or needs a person to verify it."""


@dataclass(slots=True)
class Misconfiguration:
    """One rule's finding on one object: what is wrong, where, why it matters, how to fix and verify."""

    rule_id: str
    title: str
    severity: str
    status: str
    """``FAIL`` or ``MANUAL`` (:data:`MISCONFIG_STATUSES`)."""
    target_kind: str
    file: str
    """The file or target the object came from."""
    message: str
    line: int = 0
    end_line: int = 0
    object: str = ""
    """``Deployment/web``, a container name, ``daemon.json`` …"""
    container: str = ""
    description: str = ""
    remediation: str = ""
    verification: str = ""
    references: list[str] = field(default_factory=list)
    controls: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)
    evidence: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "title": self.title,
            "severity": self.severity,
            "status": self.status,
            "target_kind": self.target_kind,
            "location": {
                "file": self.file,
                "line": self.line,
                "end_line": self.end_line,
                "object": self.object,
                "container": self.container,
            },
            "message": self.message,
            "description": self.description,
            "remediation": self.remediation,
            "verification": self.verification,
            "references": list(self.references),
            "controls": list(self.controls),
            "aliases": list(self.aliases),
            "evidence": self.evidence,
        }


@dataclass(slots=True)
class SecretFinding:
    """A credential found in a file, a layer, an environment variable, a manifest or a Dockerfile.

    ``match`` is always redacted: reports must never carry the secret itself.
    """

    rule_id: str
    category: str
    """``AWS``, ``GitHub``, ``PrivateKey``, ``Password`` …"""
    title: str
    severity: str
    file: str
    line: int
    match: str
    """The line with the secret masked (``AKIA************MPLE``)."""
    layer: str | None = None
    """Diff id of the layer that holds the file, for image scans."""
    source: str = "file"
    """``file``, ``layer``, ``env``, ``manifest``, ``dockerfile``, ``history``, ``label``."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "category": self.category,
            "title": self.title,
            "severity": self.severity,
            "location": {"file": self.file, "line": self.line, "layer": self.layer, "source": self.source},
            "match": self.match,
        }
