"""SPDX 2.3 JSON out of an inventory, built and validated with spdx-tools.

SPDX has no place for most of what Moat knows about a package (the file it came from, the layer, the
source package, rpm epoch …). Those facts ride in one package annotation each, written by the tool
``moat-<version>`` with a comment ``moat:{json}`` (docs/sbom.md). Annotations are part of the SPDX
model, so spdx-tools writes and parses them and other tools carry them along untouched.

The document is built from spdx-tools' model and converters, but serialized one package at a time:
spdx-tools' whole-document writer and validator look every element up by scanning the whole
document, which takes minutes for an image with a few thousand packages. The test suite runs the
full validator over realistic documents instead.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from cyclonedx.spdx import fixup_id, is_expression
from spdx_tools.common.spdx_licensing import spdx_licensing
from spdx_tools.spdx.jsonschema.document_converter import DocumentConverter
from spdx_tools.spdx.jsonschema.package_converter import PackageConverter
from spdx_tools.spdx.model import (
    Actor,
    ActorType,
    Annotation,
    AnnotationType,
    CreationInfo,
    Document,
    ExternalPackageRef,
    ExternalPackageRefCategory,
    ExtractedLicensingInfo,
    Package,
    PackagePurpose,
    Relationship,
    RelationshipType,
    SpdxNoAssertion,
)

from moat import __version__
from moat.model import Artifact, Inventory, OSInfo
from moat.model import Package as MoatPackage
from moat.sbom.graph import oci_purl, package_refs, resolve_dependencies

FACTS_PREFIX = "moat:"
DOCUMENT_ID = "SPDXRef-DOCUMENT"
ARTIFACT_ID = "SPDXRef-Artifact"
OS_ID = "SPDXRef-OperatingSystem"

_PURPOSES = {"container_image": PackagePurpose.CONTAINER, "filesystem": PackagePurpose.FILE}
_UNSAFE_ID = re.compile(r"[^A-Za-z0-9.-]+")
# The shape spdx-tools' validator demands of a purl locator (SPDX 2.3 annex F), minus whitespace.
_PURL_SHAPE = re.compile(r"^pkg:[^/\s]+/\S+$")


def inventory_to_spdx(inv: Inventory, *, created: datetime | None = None) -> str:
    """The inventory as an SPDX 2.3 JSON document (a string, indented)."""
    created = (created or datetime.now(UTC)).replace(microsecond=0)
    document = _DocumentBuilder(created).build(inv)
    return json.dumps(_convert(document), indent=2)


def spdx_document(inv: Inventory, *, created: datetime | None = None) -> Document:
    """The spdx-tools model of the document (for callers that validate or write other SPDX formats)."""
    return _DocumentBuilder((created or datetime.now(UTC)).replace(microsecond=0)).build(inv)


def _convert(document: Document) -> dict[str, Any]:
    """spdx-tools' JSON form of the document, in time linear in its size.

    Each package is converted against a one-package document holding only its own annotations, which
    is all the package converter looks at (our packages contain no files).
    """
    shell = Document(
        creation_info=document.creation_info,
        relationships=document.relationships,
        extracted_licensing_info=document.extracted_licensing_info,
    )
    data = DocumentConverter().convert(shell)
    annotations: dict[str, list[Annotation]] = {}
    for annotation in document.annotations:
        annotations.setdefault(annotation.spdx_id, []).append(annotation)
    converter = PackageConverter()
    relationships = data.pop("relationships", None)
    data["packages"] = [
        converter.convert(
            package,
            Document(creation_info=document.creation_info, packages=[package],
                     annotations=annotations.get(package.spdx_id, [])),
        )
        for package in document.packages
    ]
    if relationships:
        data["relationships"] = relationships
    return data


class _DocumentBuilder:
    """Collects packages, relationships, annotations and extracted licenses for one document."""

    def __init__(self, created: datetime) -> None:
        self.created = created
        self.tool = Actor(ActorType.TOOL, f"moat-{__version__}")
        self.packages: list[Package] = []
        self.relationships: list[Relationship] = []
        self.annotations: list[Annotation] = []
        self.extracted: dict[str, ExtractedLicensingInfo] = {}

    def build(self, inv: Inventory) -> Document:
        self._artifact(inv.artifact)
        if inv.os:
            self._os(inv.os)
        packages = inv.sorted_packages()
        refs = package_refs(packages)
        resolved, unresolved = resolve_dependencies(packages)
        ids = _unique_ids(packages, refs)
        for index, package in enumerate(packages):
            self._package(package, ids[index], unresolved.get(index, []))
            self.relationships.append(Relationship(ARTIFACT_ID, RelationshipType.CONTAINS, ids[index]))
        for index, targets in resolved.items():
            for target in targets:
                self.relationships.append(Relationship(ids[index], RelationshipType.DEPENDS_ON, ids[target]))
        creation = CreationInfo(
            spdx_version="SPDX-2.3",
            spdx_id=DOCUMENT_ID,
            name=inv.artifact.name,
            document_namespace=f"https://spdx.org/spdxdocs/moat-{_safe(inv.artifact.name)}-{uuid.uuid4()}",
            creators=[self.tool],
            created=self.created,
        )
        return Document(
            creation_info=creation,
            packages=self.packages,
            relationships=self.relationships,
            annotations=self.annotations,
            extracted_licensing_info=list(self.extracted.values()),
        )

    def _artifact(self, artifact: Artifact) -> None:
        purl = oci_purl(artifact)
        facts = {key: value for key, value in artifact.to_dict().items() if key not in ("name", "config")}
        # The image config (Env, Labels …) is left out on purpose: it can hold secrets and is no SBOM fact.
        self.packages.append(
            Package(
                spdx_id=ARTIFACT_ID,
                name=artifact.name,
                download_location=SpdxNoAssertion(),
                version=artifact.digest,
                files_analyzed=False,
                external_references=[_purl_ref(purl)] if purl else [],
                primary_package_purpose=_PURPOSES.get(artifact.type, PackagePurpose.OTHER),
            )
        )
        self.relationships.append(Relationship(DOCUMENT_ID, RelationshipType.DESCRIBES, ARTIFACT_ID))
        self._annotate(ARTIFACT_ID, "artifact", facts)

    def _os(self, os_info: OSInfo) -> None:
        self.packages.append(
            Package(
                spdx_id=OS_ID,
                name=os_info.family,
                download_location=SpdxNoAssertion(),
                version=os_info.name or None,
                files_analyzed=False,
                description=os_info.pretty_name or None,
                primary_package_purpose=PackagePurpose.OPERATING_SYSTEM,
            )
        )
        self.relationships.append(Relationship(ARTIFACT_ID, RelationshipType.CONTAINS, OS_ID))
        self._annotate(OS_ID, "os", os_info.to_dict())

    def _package(self, package: MoatPackage, spdx_id: str, unresolved: list[str]) -> None:
        declared, recovered = self._licenses(package.licenses)
        facts = package.to_dict()
        for key in ("name", "version", "depends_on"):
            facts.pop(key, None)
        if recovered == package.licenses:
            facts.pop("licenses")
        if package.purl and _purl_round_trips(package.purl):
            facts.pop("purl")
        if unresolved:
            facts["depends_on"] = unresolved
        self.packages.append(
            Package(
                spdx_id=spdx_id,
                name=package.name,
                download_location=SpdxNoAssertion(),
                version=package.version or None,
                files_analyzed=False,
                license_concluded=SpdxNoAssertion(),
                license_declared=declared,
                external_references=[_purl_ref(package.purl)] if _purl_round_trips(package.purl) else [],
                primary_package_purpose=PackagePurpose.LIBRARY,
            )
        )
        self._annotate(spdx_id, "package", facts)

    def _licenses(self, values: list[str]) -> tuple[Any, list[str]]:
        """licenseDeclared for a package, and the strings a reader will get back from it.

        Known ids and valid expressions are kept; anything else (``GPL-2+``, ``Apache 2.0``) becomes a
        ``LicenseRef-`` with the original text in hasExtractedLicensingInfos. Several values are joined
        with AND because they all apply to the package. The checks are cyclonedx-python-lib's: they use
        the same license-expression data as spdx-tools but survive inputs on which its ``validate``
        raises (``Apache License, Version 2.0``).
        """
        parts: list[str] = []
        kept = [value for value in values if value.strip()]
        for value in kept:
            spdx_id = fixup_id(value)
            if spdx_id is not None:
                parts.append(spdx_id)
            elif is_expression(value):
                parts.append(f"({value})" if len(kept) > 1 else value)
            else:
                parts.append(self._license_ref(value))
        if not parts:
            return SpdxNoAssertion(), []
        expression = spdx_licensing.parse(" AND ".join(parts))
        if len(parts) == 1 and parts[0].startswith("LicenseRef-"):
            return expression, [kept[0]]
        return expression, [str(expression)]

    def _license_ref(self, text: str) -> str:
        for ref, info in self.extracted.items():
            if info.extracted_text == text:
                return ref
        base = "LicenseRef-" + (_safe(text)[:60] or "unnamed")
        ref = base
        if ref in self.extracted:
            ref = f"{base}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"
        self.extracted[ref] = ExtractedLicensingInfo(license_id=ref, extracted_text=text, license_name=text)
        return ref

    def _annotate(self, spdx_id: str, kind: str, facts: dict[str, Any]) -> None:
        comment = FACTS_PREFIX + json.dumps({"kind": kind, **facts}, sort_keys=True, separators=(",", ":"))
        self.annotations.append(Annotation(spdx_id, AnnotationType.OTHER, self.tool, self.created, comment))


def _unique_ids(packages: list[MoatPackage], refs: list[str]) -> list[str]:
    """SPDX ids that are readable (type, name) and stable (a hash of the package's unique reference)."""
    ids = []
    for package, ref in zip(packages, refs, strict=True):
        digest = hashlib.sha256(ref.encode()).hexdigest()[:16]
        ids.append(f"SPDXRef-Package-{_safe(package.type)}-{_safe(package.name)[:80]}-{digest}")
    return ids


def _purl_round_trips(purl: str) -> bool:
    """Whether the purl can go in an externalRef as is (else it stays only in the annotation)."""
    return bool(_PURL_SHAPE.match(purl))


def _purl_ref(purl: str) -> ExternalPackageRef:
    return ExternalPackageRef(ExternalPackageRefCategory.PACKAGE_MANAGER, "purl", purl)


def _safe(text: str) -> str:
    return _UNSAFE_ID.sub("-", text).strip("-")
