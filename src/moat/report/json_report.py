"""Moat's native JSON report (``moat.report/v1``), out and back in.

The report is the ``to_dict`` form of the model (docs/report-schema.md) with a small envelope. It is
also an input: ``moat sbom`` output can be fed back as ``sbom:FILE``, so reading it treats the data as
hostile and turns every shape problem into one :class:`~moat.errors.SourceError` line.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from moat import __version__
from moat.errors import SourceError
from moat.model import REPORT_SCHEMA, SEVERITIES, Artifact, Inventory, LayerInfo, OSInfo, Package, Vulnerability

if TYPE_CHECKING:
    from moat.policy import Suppressed


def utc_timestamp(moment: datetime | None = None) -> str:
    """An ISO 8601 UTC timestamp with a ``Z`` and whole seconds, the form every SBOM format accepts."""
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def inventory_to_report(inv: Inventory, target: str, *, created: datetime | None = None) -> dict[str, Any]:
    """The native report for one scanned target.

    Packages are sorted so two scans of the same image give byte-identical package lists (diffable in
    CI); later schema revisions add keys (``vulnerabilities``, ``misconfigurations``) without changing
    these.
    """
    return {
        "schema": REPORT_SCHEMA,
        "moat_version": __version__,
        "created": utc_timestamp(created),
        "target": target,
        "artifact": inv.artifact.to_dict(),
        "os": inv.os.to_dict() if inv.os else None,
        "packages": [package.to_dict() for package in inv.sorted_packages()],
        "warnings": list(inv.warnings),
    }


def scan_to_report(
    inv: Inventory,
    target: str,
    findings: list[Vulnerability],
    suppressed: list[Suppressed] | None = None,
    *,
    created: datetime | None = None,
) -> dict[str, Any]:
    """The native report of a vulnerability scan: the inventory report plus ``vulnerabilities``
    (what is left after the policy, most severe first), ``suppressed`` (what the policy removed, each
    with its ``suppression``) and ``summary`` (counts), all additions within ``moat.report/v1``."""
    suppressed = suppressed or []
    report = inventory_to_report(inv, target, created=created)
    report["vulnerabilities"] = [vuln.to_dict() for vuln in sorted_vulnerabilities(findings)]
    report["suppressed"] = [item.to_dict() for item in suppressed]
    report["summary"] = vulnerability_summary(findings, len(suppressed))
    return report


def severity_rank(severity: str) -> int:
    """0 for CRITICAL … 4 for UNKNOWN; anything unexpected sorts with UNKNOWN."""
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES) - 1


def sorted_vulnerabilities(vulns: list[Vulnerability]) -> list[Vulnerability]:
    """Most severe first, then by package and id, so two reports of the same scan diff cleanly."""
    return sorted(
        vulns,
        key=lambda v: (severity_rank(v.severity), v.package_name, v.package_version, v.found_in, v.id),
    )


def vulnerability_summary(findings: list[Vulnerability], suppressed: int = 0) -> dict[str, Any]:
    """Counts by severity (every level present, zeros included), total, fixed/unfixed, suppressed."""
    from moat.policy.filters import is_unfixed

    by_severity = {level: 0 for level in SEVERITIES}
    for vuln in findings:
        by_severity[SEVERITIES[severity_rank(vuln.severity)]] += 1
    unfixed = sum(1 for vuln in findings if is_unfixed(vuln))
    return {
        "total": len(findings),
        "by_severity": by_severity,
        "fixed": len(findings) - unfixed,
        "unfixed": unfixed,
        "suppressed": suppressed,
    }


def report_to_inventory(data: Any) -> Inventory:
    """Rebuild the inventory from a native report; keys this version does not know are ignored."""
    try:
        return _report_to_inventory(data)
    except SourceError as exc:
        raise SourceError(f"Moat report: {exc}") from None


def _report_to_inventory(data: Any) -> Inventory:
    if not isinstance(data, dict):
        raise SourceError("the document is not a JSON object")
    if data.get("schema") != REPORT_SCHEMA:
        raise SourceError(f"schema is {data.get('schema')!r}, expected {REPORT_SCHEMA!r}")
    artifact = artifact_from_dict(_object(data.get("artifact"), "artifact"))
    os_data = data.get("os")
    os_info = None if os_data is None else os_from_dict(_object(os_data, "os"))
    packages = [
        package_from_dict(_object(item, f"packages[{index}]"), f"packages[{index}]")
        for index, item in enumerate(_array(data.get("packages", []), "packages"))
    ]
    warnings = [_text(item, "warnings[]") for item in _array(data.get("warnings", []), "warnings")]
    return Inventory(artifact=artifact, os=os_info, packages=packages, warnings=warnings)


# Field name -> accepted Python types for a package entry (None means the key may be null or absent).
_PACKAGE_FIELDS: dict[str, tuple[type, ...]] = {
    "purl": (str, type(None)),
    "found_in": (str, type(None)),
    "layer": (str, type(None)),
    "source_name": (str, type(None)),
    "source_version": (str, type(None)),
    "arch": (str, type(None)),
    "epoch": (int, type(None)),
    "release": (str, type(None)),
    "dev": (bool,),
    "relationship": (str, type(None)),
}


def package_from_dict(data: dict[str, Any], where: str = "package") -> Package:
    """A :class:`Package` from its ``to_dict`` form, checking every field's type first.

    ``Package.from_dict`` trusts its input; a report from disk must not be trusted, so a wrong type
    becomes a clear error instead of a package with an ``epoch`` of ``"abc"``.
    """
    for key in ("name", "version", "type"):
        if not isinstance(data.get(key), str) or (key != "version" and not data[key]):
            raise SourceError(f"{where}.{key} must be a non-empty string")
    for key, types in _PACKAGE_FIELDS.items():
        value = data.get(key)
        if key in data and (not isinstance(value, types) or (key == "epoch" and isinstance(value, bool))):
            raise SourceError(f"{where}.{key} has the wrong type")
    for key in ("licenses", "depends_on"):
        for item in _array(data.get(key) or [], f"{where}.{key}"):
            _text(item, f"{where}.{key}[]")
    extra = _object(data.get("extra") or {}, f"{where}.extra")
    for value in extra.values():
        if not isinstance(value, str | int | float | bool):
            raise SourceError(f"{where}.extra values must be strings")
    return Package.from_dict(data)


def os_from_dict(data: dict[str, Any]) -> OSInfo:
    if not isinstance(data.get("family"), str) or not data["family"]:
        raise SourceError("os.family must be a non-empty string")
    for key in ("name", "pretty_name"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise SourceError(f"os.{key} must be a string")
    return OSInfo.from_dict(data)


def artifact_from_dict(data: dict[str, Any]) -> Artifact:
    """The inverse of ``Artifact.to_dict`` (the model has no ``from_dict`` for it)."""
    name = data.get("name")
    kind = data.get("type")
    if not isinstance(name, str) or not name or not isinstance(kind, str) or not kind:
        raise SourceError("artifact.name and artifact.type must be non-empty strings")
    optional = {key: _optional_text(data.get(key), f"artifact.{key}")
                for key in ("digest", "architecture", "os", "created")}
    return Artifact(
        name=name,
        type=kind,
        digest=optional["digest"],
        repo_tags=[_text(x, "artifact.repo_tags[]") for x in _array(data.get("repo_tags", []), "repo_tags")],
        repo_digests=[
            _text(x, "artifact.repo_digests[]") for x in _array(data.get("repo_digests", []), "repo_digests")
        ],
        architecture=optional["architecture"],
        os=optional["os"],
        created=optional["created"],
        layers=[
            layer_from_dict(_object(item, f"artifact.layers[{index}]"))
            for index, item in enumerate(_array(data.get("layers", []), "artifact.layers"))
        ],
        config=_object(data.get("config") or {}, "artifact.config"),
    )


def layer_from_dict(data: dict[str, Any]) -> LayerInfo:
    diff_id = data.get("diff_id")
    if not isinstance(diff_id, str):  # empty for a plain directory, which has no layer digest
        raise SourceError("every layer needs a diff_id string")
    size = data.get("size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool)):
        raise SourceError("layer size must be an integer")
    return LayerInfo(
        diff_id=diff_id,
        digest=_optional_text(data.get("digest"), "layer.digest"),
        size=size,
        media_type=_optional_text(data.get("media_type"), "layer.media_type"),
        created_by=_optional_text(data.get("created_by"), "layer.created_by"),
        cached=bool(data.get("cached", False)),
    )


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SourceError(f"{where} must be a JSON object")
    return value


def _array(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise SourceError(f"{where} must be a JSON array")
    return value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise SourceError(f"{where} must be a string")
    return value


def _optional_text(value: Any, where: str) -> str | None:
    return None if value is None else _text(value, where)
