"""Reading an SBOM back into an inventory: CycloneDX JSON, SPDX JSON, or Moat's own report.

The documents are read as plain JSON rather than through the libraries' deserializers on purpose:
SBOMs from other tools bend the schemas (Trivy writes CycloneDX 1.7 with its own properties, Syft's
SPDX uses DEPENDENCY_OF where others use DEPENDS_ON), and one odd field in one of a thousand
components must not make the whole document unreadable. It also keeps every bound (size, count,
nesting) in our hands before anything is built from hostile input. Each failure is one
:class:`~moat.errors.SourceError` line.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from packageurl import PackageURL

from moat.errors import SourceError
from moat.model import Artifact, Inventory, LayerInfo, OSInfo, Package
from moat.report.json_report import artifact_from_dict, os_from_dict, package_from_dict, report_to_inventory

MAX_SBOM_BYTES = 512 * 1024 * 1024
MAX_COMPONENTS = 500_000
MAX_RELATIONSHIPS = 5_000_000
MAX_COMPONENT_DEPTH = 32

CYCLONEDX_VERSIONS = ("1.2", "1.3", "1.4", "1.5", "1.6", "1.7")
SPDX_VERSIONS = ("SPDX-2.2", "SPDX-2.3")
MOAT_PREFIX = "moat:"


def read_sbom(path: str) -> Inventory:
    """The inventory an SBOM file describes; the format is recognised from the content."""
    document = _load_json(path)
    try:
        if not isinstance(document, dict):
            raise SourceError("the document is not a JSON object")
        if document.get("bomFormat") == "CycloneDX":
            return _CycloneDX(document).inventory(path)
        if "spdxVersion" in document:
            return _Spdx(document).inventory(path)
        if "schema" in document:
            return report_to_inventory(document)
        raise SourceError("not a CycloneDX, SPDX or Moat report document")
    except SourceError as exc:
        raise SourceError(_one_line(f"SBOM {path}: {exc}")) from None
    except RecursionError:
        raise SourceError(f"SBOM {path}: the document is nested too deeply") from None


def _load_json(path: str) -> Any:
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > MAX_SBOM_BYTES:
                raise SourceError(f"SBOM {path}: {size} bytes is over the {MAX_SBOM_BYTES} byte limit")
            data = handle.read(MAX_SBOM_BYTES + 1)
    except OSError as exc:
        raise SourceError(f"SBOM {path}: cannot read ({exc.strerror or exc})") from None
    if len(data) > MAX_SBOM_BYTES:
        raise SourceError(f"SBOM {path}: over the {MAX_SBOM_BYTES} byte limit")
    try:
        return json.loads(data)
    except RecursionError:
        raise SourceError(f"SBOM {path}: the JSON is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise SourceError(_one_line(f"SBOM {path}: not JSON ({exc}); only JSON SBOMs are read")) from None


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 400 else text[:397] + "..."


# --- small accessors that turn a wrong shape into a SourceError ------------------------------------


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise SourceError(f"{where} is not a list")
    return value


def _dict(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SourceError(f"{where} is not an object")
    return value


def _str(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise SourceError(f"{where} is not a string")
    return str(value)


def _name(value: Any, where: str) -> str:
    name = _str(value, where)
    if not name or not name.strip():
        raise SourceError(f"{where} has no name")
    return name


def _purl(text: str | None) -> PackageURL | None:
    if not text:
        return None
    try:
        return PackageURL.from_string(text)
    except ValueError:
        return None


@dataclass(slots=True)
class _Graph:
    """Packages under construction, keyed by the document's own element ids, plus dependency edges."""

    packages: list[Package] = field(default_factory=list)
    by_ref: dict[str, int] = field(default_factory=dict)
    edges: list[tuple[str, str]] = field(default_factory=list)
    edge_count: int = 0

    def add(self, ref: str | None, package: Package) -> None:
        if len(self.packages) >= MAX_COMPONENTS:
            raise SourceError(f"more than {MAX_COMPONENTS} components")
        if ref is not None:
            self.by_ref.setdefault(ref, len(self.packages))
        self.packages.append(package)

    def edge(self, source: str, target: str) -> None:
        self.edge_count += 1
        if self.edge_count > MAX_RELATIONSHIPS:
            raise SourceError(f"more than {MAX_RELATIONSHIPS} dependency edges")
        self.edges.append((source, target))

    def finish(self) -> list[Package]:
        """Turn element-id edges into ``name@version`` ids; the result is sorted and without repeats."""
        for source, target in self.edges:
            a, b = self.by_ref.get(source), self.by_ref.get(target)
            if a is not None and b is not None and a != b:
                self.packages[a].depends_on.append(self.packages[b].id)
        for package in self.packages:
            package.depends_on = sorted(set(package.depends_on))
        return self.packages


def _apply_purl_facts(package: Package, purl: PackageURL | None) -> None:
    """Facts other tools encode only in the purl: architecture, rpm epoch, Syft's ``upstream`` source."""
    if purl is None:
        return
    qualifiers = purl.qualifiers if isinstance(purl.qualifiers, dict) else {}
    if package.arch is None and qualifiers.get("arch"):
        package.arch = qualifiers["arch"]
    epoch = qualifiers.get("epoch")
    if package.epoch is None and epoch and epoch.isdigit():
        package.epoch = int(epoch)
    upstream = qualifiers.get("upstream")
    if package.source_name is None and upstream:
        name, _, version = upstream.partition("@")
        package.source_name = name
        package.source_version = version or None


def _trivy_source_version(facts: dict[str, str]) -> str | None:
    """Trivy splits a source version into SrcEpoch, SrcVersion and SrcRelease; Moat keeps it whole."""
    version = facts.get("SrcVersion")
    if not version:
        return None
    if facts.get("SrcRelease"):
        version = f"{version}-{facts['SrcRelease']}"
    if facts.get("SrcEpoch") not in (None, "", "0"):
        version = f"{facts['SrcEpoch']}:{version}"
    return version


# --- CycloneDX ------------------------------------------------------------------------------------

_PACKAGE_TYPES = ("library", "framework")
_MOAT_TEXT_FIELDS = ("layer", "source_name", "source_version", "arch", "release", "relationship")
_THIRD_PARTY_FOUND_IN = ("syft:location:0:path", "aquasecurity:trivy:FilePath")
_THIRD_PARTY_LAYER = ("syft:location:0:layerID", "aquasecurity:trivy:LayerDiffID")
_TRIVY = "aquasecurity:trivy:"


class _CycloneDX:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document

    def inventory(self, path: str) -> Inventory:
        version = self.document.get("specVersion")
        if version not in CYCLONEDX_VERSIONS:
            raise SourceError(f"CycloneDX specVersion {version!r} is not supported (1.2 to 1.7)")
        metadata = _dict(self.document.get("metadata") or {}, "metadata")
        root = metadata.get("component")
        artifact = self._artifact(_dict(root, "metadata.component") if root is not None else None, path)
        graph = _Graph()
        os_info: OSInfo | None = None
        for where, component in self._components():
            kind = component.get("type")
            props = self._properties(component, where)
            if kind == "operating-system":
                candidate = self._os(component, props, where)
                if os_info is None and candidate is not None:
                    os_info = candidate
                continue
            package = self._package(component, props, where)
            if package is not None:
                graph.add(_str(component.get("bom-ref"), f"{where}.bom-ref"), package)
        for index, entry in enumerate(_list(self.document.get("dependencies"), "dependencies")):
            entry = _dict(entry, f"dependencies[{index}]")
            ref = _str(entry.get("ref"), f"dependencies[{index}].ref") or ""
            for target in _list(entry.get("dependsOn"), f"dependencies[{index}].dependsOn"):
                graph.edge(ref, _str(target, f"dependencies[{index}].dependsOn[]") or "")
        return Inventory(artifact=artifact, os=os_info, packages=graph.finish())

    def _components(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every component, nested ones included, walked without recursion and with a depth bound."""
        stack: list[tuple[str, Any, int]] = [
            (f"components[{i}]", item, 1)
            for i, item in reversed(list(enumerate(_list(self.document.get("components"), "components"))))
        ]
        seen = 0
        while stack:
            where, item, depth = stack.pop()
            seen += 1
            if seen > MAX_COMPONENTS:
                raise SourceError(f"more than {MAX_COMPONENTS} components")
            if depth > MAX_COMPONENT_DEPTH:
                raise SourceError(f"components nested deeper than {MAX_COMPONENT_DEPTH} levels")
            component = _dict(item, where)
            yield where, component
            children = _list(component.get("components"), f"{where}.components")
            for i in range(len(children) - 1, -1, -1):
                stack.append((f"{where}.components[{i}]", children[i], depth + 1))

    @staticmethod
    def _properties(component: dict[str, Any], where: str) -> list[tuple[str, str]]:
        found = []
        for index, item in enumerate(_list(component.get("properties"), f"{where}.properties")):
            item = _dict(item, f"{where}.properties[{index}]")
            name = _str(item.get("name"), f"{where}.properties[{index}].name")
            if name:
                found.append((name, _str(item.get("value"), f"{where}.properties[{index}].value") or ""))
        return found

    def _artifact(self, root: dict[str, Any] | None, path: str) -> Artifact:
        if root is None:
            return Artifact(name=path, type="sbom")
        props = self._properties(root, "metadata.component")
        facts = dict(props)
        name = _name(root.get("name"), "metadata.component")
        version = _str(root.get("version"), "metadata.component.version")
        moat_type = facts.get("moat:artifact:type")
        if moat_type:
            return Artifact(
                name=name,
                type=moat_type,
                digest=version,
                architecture=facts.get("moat:artifact:architecture"),
                os=facts.get("moat:artifact:os"),
                created=facts.get("moat:artifact:created"),
                repo_tags=_indexed(props, "moat:artifact:repo_tag:"),
                repo_digests=_indexed(props, "moat:artifact:repo_digest:"),
                layers=[LayerInfo(diff_id=d) for d in _indexed(props, "moat:artifact:layer:")],
            )
        digest = version if version and version.startswith("sha256:") else None
        return Artifact(
            name=name,
            type="sbom",
            digest=digest,
            repo_tags=[v for k, v in props if k == "aquasecurity:trivy:RepoTag"],
            repo_digests=[v for k, v in props if k == "aquasecurity:trivy:RepoDigest"],
            layers=[LayerInfo(diff_id=v) for k, v in props if k == "aquasecurity:trivy:DiffID"],
        )

    @staticmethod
    def _os(component: dict[str, Any], props: list[tuple[str, str]], where: str) -> OSInfo | None:
        family = _name(component.get("name"), where)
        if family == "none":  # Trivy's placeholder when it found no OS
            return None
        return OSInfo(
            family=family,
            name=_str(component.get("version"), f"{where}.version") or "",
            pretty_name=_str(component.get("description"), f"{where}.description") or "",
            distroless=dict(props).get("moat:os:distroless") == "true",
        )

    def _package(self, component: dict[str, Any], props: list[tuple[str, str]], where: str) -> Package | None:
        name = _name(component.get("name"), where)
        facts = dict(props)
        purl_text = facts.get("moat:purl") or _str(component.get("purl"), f"{where}.purl") or ""
        purl = _purl(purl_text)
        moat_type = facts.get("moat:type")
        if moat_type is None and purl is None and component.get("type") not in _PACKAGE_TYPES:
            return None  # an application, file or container grouping, not a package
        group = _str(component.get("group"), f"{where}.group")
        package_type = moat_type or (purl.type if purl else "generic")
        if group and moat_type is None and not name.startswith(group):
            name = f"{group}:{name}" if package_type == "maven" else f"{group}/{name}"
        package = Package(
            name=name,
            version=_str(component.get("version"), f"{where}.version") or "",
            type=package_type,
            purl=purl_text,
            licenses=self._licenses(component, where),
        )
        if moat_type is not None:
            _apply_moat_properties(package, props)
            return package
        package.found_in = _first(facts, _THIRD_PARTY_FOUND_IN).lstrip("/")
        package.layer = _first(facts, _THIRD_PARTY_LAYER) or None
        if facts.get("aquasecurity:trivy:SrcName"):
            package.source_name = facts["aquasecurity:trivy:SrcName"]
            trivy = {key.rsplit(":", 1)[-1]: value for key, value in props if key.startswith(_TRIVY)}
            package.source_version = _trivy_source_version(trivy)
        _apply_purl_facts(package, purl)
        return package

    @staticmethod
    def _licenses(component: dict[str, Any], where: str) -> list[str]:
        found: list[str] = []
        for index, choice in enumerate(_list(component.get("licenses"), f"{where}.licenses")):
            choice = _dict(choice, f"{where}.licenses[{index}]")
            if choice.get("expression") is not None:
                found.append(_str(choice["expression"], f"{where}.licenses[{index}].expression") or "")
                continue
            license_ = _dict(choice.get("license") or {}, f"{where}.licenses[{index}].license")
            value = license_.get("id") or license_.get("name")
            text = _str(value, f"{where}.licenses[{index}].license")
            if text:
                found.append(text)
        return [text for text in found if text]


def _first(facts: dict[str, str], keys: tuple[str, ...]) -> str:
    return next((facts[key] for key in keys if facts.get(key)), "")


def _indexed(props: list[tuple[str, str]], prefix: str) -> list[str]:
    """Values of ``prefix0``, ``prefix1`` … in index order (the library sorts properties by name)."""
    items = []
    for key, value in props:
        if key.startswith(prefix) and key[len(prefix):].isdigit():
            items.append((int(key[len(prefix):]), value))
    return [value for _, value in sorted(items)]


def _apply_moat_properties(package: Package, props: list[tuple[str, str]]) -> None:
    for key, value in props:
        if not key.startswith(MOAT_PREFIX):
            continue
        name = key[len(MOAT_PREFIX):]
        if name == "found_in":
            package.found_in = value
        elif name in _MOAT_TEXT_FIELDS:
            setattr(package, name, value)
        elif name == "epoch":
            if not value.lstrip("-").isdigit():
                raise SourceError(f"moat:epoch {value!r} of {package.id} is not a number")
            package.epoch = int(value)
        elif name == "dev":
            package.dev = value == "true"
        elif name.startswith("extra:"):
            package.extra[name[len("extra:"):]] = value
        elif name == "depends_on":
            package.depends_on.append(value)
        elif name == "licenses":
            try:
                licenses = json.loads(value)
            except ValueError:
                raise SourceError(f"moat:licenses of {package.id} is not JSON") from None
            if not isinstance(licenses, list) or not all(isinstance(x, str) for x in licenses):
                raise SourceError(f"moat:licenses of {package.id} is not a list of strings")
            package.licenses = licenses


# --- SPDX -----------------------------------------------------------------------------------------

_NO_LICENSE = ("NOASSERTION", "NONE", "")
_OS_PURPOSES = ("OPERATING-SYSTEM", "OPERATING_SYSTEM")
_GROUPING_PURPOSES = (
    "APPLICATION", "CONTAINER", "SOURCE", "FILE", "ARCHIVE", "INSTALL", "DEVICE", "FIRMWARE", "OTHER",
)
_SYFT_SOURCE_INFO = "acquired package info from "
_TRIVY_SOURCE_INFO = "built package from: "


class _Spdx:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document

    def inventory(self, path: str) -> Inventory:
        version = self.document.get("spdxVersion")
        if version not in SPDX_VERSIONS:
            raise SourceError(f"SPDX version {version!r} is not supported (SPDX-2.2, SPDX-2.3)")
        packages = _list(self.document.get("packages"), "packages")
        if len(packages) > MAX_COMPONENTS:
            raise SourceError(f"more than {MAX_COMPONENTS} packages")
        relationships = _list(self.document.get("relationships"), "relationships")
        if len(relationships) > MAX_RELATIONSHIPS:
            raise SourceError(f"more than {MAX_RELATIONSHIPS} relationships")
        described = {
            _str(x, "documentDescribes[]") or ""
            for x in _list(self.document.get("documentDescribes"), "documentDescribes")
        }
        files: dict[str, str] = {}
        for index, item in enumerate(_list(self.document.get("files"), "files")):
            item = _dict(item, f"files[{index}]")
            spdx_id = _str(item.get("SPDXID"), f"files[{index}].SPDXID")
            if spdx_id:
                files[spdx_id] = _str(item.get("fileName"), f"files[{index}].fileName") or ""
        contains: dict[str, str] = {}
        graph = _Graph()
        for index, item in enumerate(relationships):
            item = _dict(item, f"relationships[{index}]")
            a = _str(item.get("spdxElementId"), f"relationships[{index}].spdxElementId") or ""
            b = _str(item.get("relatedSpdxElement"), f"relationships[{index}].relatedSpdxElement") or ""
            kind = item.get("relationshipType")
            if kind == "DESCRIBES" and a == "SPDXRef-DOCUMENT":
                described.add(b)
            elif kind == "DESCRIBED_BY" and b == "SPDXRef-DOCUMENT":
                described.add(a)
            elif kind == "DEPENDS_ON":
                graph.edge(a, b)
            elif kind == "DEPENDENCY_OF":
                graph.edge(b, a)
            elif kind == "CONTAINS" and b in files:
                contains.setdefault(a, files[b])
        licenses = self._extracted_licenses()
        artifact: Artifact | None = None
        os_info: OSInfo | None = None
        for index, item in enumerate(packages):
            where = f"packages[{index}]"
            item = _dict(item, where)
            spdx_id = _str(item.get("SPDXID"), f"{where}.SPDXID") or ""
            name = _name(item.get("name"), where)
            facts = self._moat_facts(item, where)
            purpose = item.get("primaryPackagePurpose")
            if spdx_id in described and artifact is None:
                artifact = self._artifact(item, facts, name)
            elif facts.get("kind") == "os" or (purpose in _OS_PURPOSES and not facts):
                if os_info is None:
                    os_info = os_from_dict(facts) if facts else self._os(item, name, where)
            elif spdx_id not in described:
                package = self._package(item, facts, name, where, licenses, contains.get(spdx_id, ""))
                if package is not None:
                    graph.add(spdx_id, package)
        if artifact is None:
            name = _str(self.document.get("name"), "name") or path
            artifact = Artifact(name=name, type="sbom")
        return Inventory(artifact=artifact, os=os_info, packages=graph.finish())

    def _extracted_licenses(self) -> dict[str, str]:
        """LicenseRef id → the text a person would recognise (its name, else a short extracted text)."""
        found = {}
        for index, item in enumerate(_list(self.document.get("hasExtractedLicensingInfos"),
                                           "hasExtractedLicensingInfos")):
            item = _dict(item, f"hasExtractedLicensingInfos[{index}]")
            ref = _str(item.get("licenseId"), "licenseId")
            name = _str(item.get("name"), "name")
            text = _str(item.get("extractedText"), "extractedText")
            if not ref:
                continue
            if name and name != "NOASSERTION":
                found[ref] = name
            elif text and len(text) <= 200 and "\n" not in text:
                found[ref] = text
        return found

    @staticmethod
    def _moat_facts(item: dict[str, Any], where: str) -> dict[str, Any]:
        for index, note in enumerate(_list(item.get("annotations"), f"{where}.annotations")):
            note = _dict(note, f"{where}.annotations[{index}]")
            annotator = _str(note.get("annotator"), f"{where}.annotations[{index}].annotator") or ""
            comment = _str(note.get("comment"), f"{where}.annotations[{index}].comment") or ""
            if annotator.startswith("Tool: moat-") and comment.startswith(MOAT_PREFIX):
                try:
                    facts = json.loads(comment[len(MOAT_PREFIX):])
                except ValueError:
                    raise SourceError(f"{where}: Moat annotation is not JSON") from None
                return _dict(facts, f"{where} Moat annotation")
        return {}

    @staticmethod
    def _tool_facts(item: dict[str, Any]) -> dict[str, str]:
        """Trivy's ``Key: value`` annotations (SrcName, LayerDiffID, …)."""
        found: dict[str, str] = {}
        for note in item.get("annotations") or []:
            if isinstance(note, dict) and str(note.get("annotator", "")).startswith("Tool: trivy"):
                key, sep, value = str(note.get("comment", "")).partition(": ")
                if sep:
                    found.setdefault(key, value)
        return found

    def _artifact(self, item: dict[str, Any], facts: dict[str, Any], name: str) -> Artifact:
        version = _str(item.get("versionInfo"), "versionInfo")
        if facts.get("kind") == "artifact":
            return artifact_from_dict({**facts, "name": name})
        trivy = self._tool_facts(item)
        return Artifact(
            name=name,
            type="sbom",
            digest=version if version and version.startswith("sha256:") else None,
            layers=[LayerInfo(diff_id=trivy["DiffID"])] if trivy.get("DiffID") else [],
        )

    @staticmethod
    def _os(item: dict[str, Any], name: str, where: str) -> OSInfo | None:
        if name == "none":
            return None
        return OSInfo(
            family=name,
            name=_str(item.get("versionInfo"), f"{where}.versionInfo") or "",
            pretty_name=_str(item.get("description"), f"{where}.description") or "",
        )

    def _package(
        self,
        item: dict[str, Any],
        facts: dict[str, Any],
        name: str,
        where: str,
        extracted: dict[str, str],
        contained_file: str,
    ) -> Package | None:
        purl_text = self._purl(item, where)
        if facts.get("kind") == "package":
            data = {
                **facts,
                "name": name,
                "version": _str(item.get("versionInfo"), f"{where}.versionInfo") or "",
            }
            data.setdefault("purl", purl_text)
            data.setdefault("licenses", self._licenses(item, where, extracted))
            return package_from_dict(data, where)
        purl = _purl(purl_text)
        if purl is None and item.get("primaryPackagePurpose") in _GROUPING_PURPOSES:
            return None
        package = Package(
            name=name,
            version=_str(item.get("versionInfo"), f"{where}.versionInfo") or "",
            type=purl.type if purl else "generic",
            purl=purl_text,
            licenses=self._licenses(item, where, extracted),
            found_in=self._found_in(item, where) or contained_file,
        )
        trivy = self._tool_facts(item)
        package.layer = trivy.get("LayerDiffID") or None
        source_info = _str(item.get("sourceInfo"), f"{where}.sourceInfo") or ""
        built_from = source_info.partition(_TRIVY_SOURCE_INFO)[2]
        if built_from.strip():
            source, _, version = built_from.strip().rpartition(" ")
            package.source_name, package.source_version = (source, version) if source else (version, None)
        _apply_purl_facts(package, purl)
        return package

    @staticmethod
    def _purl(item: dict[str, Any], where: str) -> str:
        for index, ref in enumerate(_list(item.get("externalRefs"), f"{where}.externalRefs")):
            ref = _dict(ref, f"{where}.externalRefs[{index}]")
            if ref.get("referenceType") == "purl":
                return _str(ref.get("referenceLocator"), f"{where}.externalRefs[{index}]") or ""
        return ""

    @staticmethod
    def _licenses(item: dict[str, Any], where: str, extracted: dict[str, str]) -> list[str]:
        declared = _str(item.get("licenseDeclared"), f"{where}.licenseDeclared") or ""
        if declared in _NO_LICENSE:
            return []
        return [extracted.get(declared, declared)]

    @staticmethod
    def _found_in(item: dict[str, Any], where: str) -> str:
        """Syft names the file in sourceInfo: "acquired package info from DPKG DB: /var/lib/dpkg/status"."""
        info = _str(item.get("sourceInfo"), f"{where}.sourceInfo") or ""
        if not info.startswith(_SYFT_SOURCE_INFO) or ": " not in info:
            return ""
        return info.split(": ", 1)[1].split(", ", 1)[0].strip().lstrip("/")

