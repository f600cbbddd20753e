"""CycloneDX 1.6 JSON out of an inventory, built with cyclonedx-python-lib.

Everything Moat knows about a package that CycloneDX has no field for travels as a ``moat:`` property
(docs/sbom.md lists them), so :func:`moat.sbom.reader.read_sbom` gives back the same inventory. The
helpers :func:`package_refs` and :func:`resolve_dependencies` are shared with the SPDX writer so both
formats name and link packages the same way.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from cyclonedx.model import Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.dependency import Dependency
from cyclonedx.model.license import DisjunctiveLicense, License, LicenseExpression
from cyclonedx.output.json import JsonV1Dot6
from cyclonedx.spdx import fixup_id, is_expression
from packageurl import PackageURL

from moat import __version__
from moat.model import Artifact, Inventory, OSInfo, Package, Vulnerability
from moat.sbom.graph import oci_purl, package_refs, resolve_dependencies

if TYPE_CHECKING:
    from moat.policy import Suppressed

PROPERTY_PREFIX = "moat:"
ARTIFACT_REF = "moat:artifact"

_ARTIFACT_TYPES = {"container_image": ComponentType.CONTAINER, "filesystem": ComponentType.FILE}


def inventory_to_cyclonedx(
    inv: Inventory,
    vulnerabilities: Sequence[Vulnerability] | None = None,
    suppressed: Sequence[Suppressed] | None = None,
) -> str:
    """The inventory as a CycloneDX 1.6 JSON document (a string, indented).

    With ``vulnerabilities`` the BOM also carries them (``moat.sbom.cyclonedx_vulns``); suppressed
    findings whose suppression is a VEX state are written too, with that ``analysis``.
    """
    bom = Bom()
    tool = Component(type=ComponentType.APPLICATION, name="moat", version=__version__)
    bom.metadata.tools.components.add(tool)
    root = _artifact_component(inv.artifact)
    bom.metadata.component = root
    contained: list[Component] = []
    if inv.os:
        contained.append(_os_component(inv.os))
    packages = inv.sorted_packages()
    refs = package_refs(packages)
    resolved, unresolved = resolve_dependencies(packages)
    components = [
        _package_component(package, ref, unresolved.get(index, []))
        for index, (package, ref) in enumerate(zip(packages, refs, strict=True))
    ]
    contained.extend(components)
    for component in contained:
        bom.components.add(component)
    # The image "depends on" everything in it; without this edge the graph has no root and the library warns.
    bom.dependencies.add(
        Dependency(ref=root.bom_ref, dependencies=[Dependency(ref=c.bom_ref) for c in contained])
    )
    for index, component in enumerate(components):
        targets = [Dependency(ref=components[target].bom_ref) for target in resolved.get(index, [])]
        bom.dependencies.add(Dependency(ref=component.bom_ref, dependencies=targets))
    if inv.os:
        bom.dependencies.add(Dependency(ref=contained[0].bom_ref))
    if vulnerabilities is not None:
        from moat.sbom.cyclonedx_vulns import add_vulnerabilities

        ref_of = {(p.type, p.name, p.version, p.found_in): r for p, r in zip(packages, refs, strict=True)}
        add_vulnerabilities(bom, list(vulnerabilities), list(suppressed or []), ref_of)
    _skip_quadratic_registration(bom)
    return JsonV1Dot6(bom).output_as_string(indent=2)


def _skip_quadratic_registration(bom: Bom) -> None:
    """Stop ``Bom.validate`` from re-registering every component with a linear search each.

    The outputter calls ``validate``, which calls ``register_dependency`` once per component, and
    that scans all dependency entries: minutes for a few thousand packages. Every component already
    has its entry here, so the per-instance replacement only falls back to the library's method for
    a reference it has not seen.
    """
    known = {dependency.ref for dependency in bom.dependencies}
    original = bom.register_dependency

    def register(target: Any, depends_on: Any = None) -> None:
        if depends_on or target.bom_ref not in known:
            original(target, depends_on)
            known.add(target.bom_ref)

    setattr(bom, "register_dependency", register)  # noqa: B010 - instance override, see docstring


def _artifact_component(artifact: Artifact) -> Component:
    purl = oci_purl(artifact)
    props = [_prop("artifact:type", artifact.type)]
    for key in ("architecture", "os", "created"):
        value = getattr(artifact, key)
        if value:
            props.append(_prop(f"artifact:{key}", value))
    props += [_prop(f"artifact:repo_tag:{i}", tag) for i, tag in enumerate(artifact.repo_tags)]
    props += [_prop(f"artifact:repo_digest:{i}", digest) for i, digest in enumerate(artifact.repo_digests)]
    props += [_prop(f"artifact:layer:{i}", layer.diff_id) for i, layer in enumerate(artifact.layers)]
    return Component(
        type=_ARTIFACT_TYPES.get(artifact.type, ComponentType.APPLICATION),
        name=artifact.name,
        version=artifact.digest,
        bom_ref=ARTIFACT_REF,
        purl=PackageURL.from_string(purl) if purl else None,
        properties=props,
    )


def _os_component(os_info: OSInfo) -> Component:
    props = [_prop("os:distroless", "true")] if os_info.distroless else []
    return Component(
        type=ComponentType.OPERATING_SYSTEM,
        name=os_info.family,
        version=os_info.name or None,
        description=os_info.pretty_name or None,
        bom_ref=f"moat:os:{os_info.family}@{os_info.name}",
        properties=props,
    )


def _package_component(package: Package, ref: str, unresolved: list[str]) -> Component:
    props = [_prop("type", package.type)]
    if package.found_in:
        props.append(_prop("found_in", package.found_in))
    for key in ("layer", "source_name", "source_version", "arch", "release", "relationship"):
        value = getattr(package, key)
        if value is not None:
            props.append(_prop(key, value))
    if package.epoch is not None:
        props.append(_prop("epoch", str(package.epoch)))
    if package.dev:
        props.append(_prop("dev", "true"))
    props += [_prop(f"extra:{key}", value) for key, value in package.extra.items()]
    props += [_prop("depends_on", dep) for dep in unresolved]
    purl = _parse_purl(package.purl)
    if package.purl and (purl is None or purl.to_string() != package.purl):
        props.append(_prop("purl", package.purl))  # keep the original spelling the purl field would lose
    component = Component(
        type=ComponentType.LIBRARY,
        name=package.name,
        version=package.version,
        bom_ref=ref,
        purl=purl,
        licenses=cyclonedx_licenses(package.licenses),
        properties=props,
    )
    # The library keeps licenses sorted; what a reader gets back is that order, so compare with it.
    if _license_strings(component) != package.licenses:
        component.properties.add(_prop("licenses", json.dumps(package.licenses)))
    return component


def cyclonedx_licenses(values: Sequence[str]) -> list[License]:
    """License objects for a package's license strings.

    CycloneDX allows either a list of ``license`` entries or exactly one ``expression``. So a single
    expression stays an expression, several ids/expressions are joined with AND into one expression,
    and a list that mixes unknown names with expressions is written as names. When the strings a reader
    would recover differ from the originals, the caller adds a ``moat:licenses`` property.
    """
    values = [value for value in values if value.strip()]
    kinds = [_license_kind(value) for value in values]
    if any(kind == "expression" for kind, _ in kinds):
        if len(values) == 1:
            return [LicenseExpression(values[0])]
        if all(kind != "name" for kind, _ in kinds):
            joined = " AND ".join(f"({text})" if kind == "expression" else text for kind, text in kinds)
            return [LicenseExpression(joined)]
        pairs = zip(kinds, values, strict=True)
        kinds = [("id", text) if kind == "id" else ("name", value) for (kind, text), value in pairs]
    return [
        DisjunctiveLicense(id=text) if kind == "id" else DisjunctiveLicense(name=text) for kind, text in kinds
    ]


def _license_strings(component: Component) -> list[str]:
    """The license strings a reader takes from the component, in the order they are written."""
    found = []
    for license_ in component.licenses:
        if isinstance(license_, LicenseExpression):
            found.append(license_.value)
        elif isinstance(license_, DisjunctiveLicense):
            found.append(license_.id or license_.name or "")
    return found


def _license_kind(value: str) -> tuple[str, str]:
    """("id", canonical id) | ("expression", value) | ("name", value)."""
    spdx_id = fixup_id(value)
    if spdx_id is not None:
        return "id", spdx_id
    if is_expression(value):
        return "expression", value
    return "name", value


def _parse_purl(purl: str) -> PackageURL | None:
    if not purl:
        return None
    try:
        return PackageURL.from_string(purl)
    except ValueError:
        return None


def _prop(key: str, value: str) -> Property:
    return Property(name=PROPERTY_PREFIX + key, value=value)


