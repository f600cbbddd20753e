"""VEX: statements from the software's producer that a finding does not apply (``--vex FILE``).

Two formats are read, recognised by their content rather than the file name:

- OpenVEX (``@context`` ``https://openvex.dev/ns…``): each statement names a vulnerability (by
  name, ``@id`` or aliases), products (purls, directly, under ``identifiers.purl`` or as
  ``subcomponents`` of an image product) and a status. ``not_affected`` and ``fixed`` suppress.
  When several statements speak of the same finding the latest wins (statement ``timestamp``,
  else the document's, else the order given), as OpenVEX defines a document's history.
- CycloneDX VEX (``bomFormat: CycloneDX`` with ``vulnerabilities``): ``analysis.state``
  ``not_affected``, ``false_positive``, ``resolved`` or ``resolved_with_pedigree`` suppresses the
  vulnerability for each ``affects[].ref``; a ref is a bom-ref of a component in the same document
  (its purl is used), a BOM-Link (``urn:cdx:…#ref``), or a purl itself.

Matching is by any name the finding goes by (id, advisory id, aliases) and the package purl
(:func:`moat.policy.purl_matches`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from moat.errors import MoatError
from moat.model import Vulnerability
from moat.policy import Suppressed, purl_matches, vulnerability_ids

MAX_BYTES = 64 * 1024 * 1024
OPENVEX_STATUSES = ("not_affected", "affected", "fixed", "under_investigation")
OPENVEX_SUPPRESS = frozenset({"not_affected", "fixed"})
CDX_STATES = ("resolved", "resolved_with_pedigree", "exploitable", "in_triage", "false_positive", "not_affected")
CDX_SUPPRESS = frozenset({"not_affected", "false_positive", "resolved", "resolved_with_pedigree"})


@dataclass(slots=True, frozen=True)
class VexStatement:
    """One (vulnerability, products, status) claim, normalised from either format."""

    ids: frozenset[str]
    products: tuple[str, ...]
    """Package URLs the statement is about."""
    status: str
    suppresses: bool
    justification: str
    source: str
    order: tuple[str, int]
    """Sort key: (timestamp or "", position across all files); the largest matching statement wins."""

    def applies_to(self, vuln: Vulnerability) -> bool:
        if not self.ids & vulnerability_ids(vuln) or not vuln.purl:
            return False
        return any(purl_matches(product, vuln.purl) for product in self.products)


def load_vex(paths: Iterable[Path]) -> list[VexStatement]:
    statements: list[VexStatement] = []
    for path in paths:
        document = _read_json(path)
        start = len(statements)
        if isinstance(document, dict) and "openvex" in str(document.get("@context", "")):
            statements.extend(_openvex(document, f"vex:{path}", start))
        elif isinstance(document, dict) and document.get("bomFormat") == "CycloneDX":
            statements.extend(_cyclonedx(document, f"vex:{path}", start))
        else:
            raise MoatError(f"VEX file {path}: neither an OpenVEX document nor a CycloneDX BOM")
    return statements


def apply_vex(
    vulns: Iterable[Vulnerability], statements: list[VexStatement]
) -> tuple[list[Vulnerability], list[Suppressed]]:
    kept: list[Vulnerability] = []
    suppressed: list[Suppressed] = []
    for vuln in vulns:
        matching = [s for s in statements if s.applies_to(vuln)]
        latest = max(matching, key=lambda s: s.order, default=None)
        if latest is None or not latest.suppresses:
            kept.append(vuln)
            continue
        reason = f"VEX {latest.status}" + (f": {latest.justification}" if latest.justification else "")
        suppressed.append(Suppressed(vuln, latest.source, reason, latest.status, latest.justification))
    return kept, suppressed


def _read_json(path: Path) -> Any:
    try:
        if path.stat().st_size > MAX_BYTES:
            raise MoatError(f"VEX file {path}: larger than {MAX_BYTES} bytes")
        return json.loads(path.read_bytes())
    except OSError as exc:
        raise MoatError(f"VEX file {path}: {exc.strerror or exc}") from None
    except (ValueError, RecursionError):
        raise MoatError(f"VEX file {path}: not valid JSON") from None


def _openvex(document: dict[str, Any], source: str, start: int) -> Iterator[VexStatement]:
    statements = document.get("statements")
    if not isinstance(statements, list):
        raise MoatError(f"{source}: OpenVEX document without a 'statements' list")
    doc_time = document.get("timestamp") if isinstance(document.get("timestamp"), str) else ""
    for index, item in enumerate(statements):
        where = f"{source}: statement {index + 1}"
        if not isinstance(item, dict):
            raise MoatError(f"{where}: not an object")
        status = item.get("status")
        if status not in OPENVEX_STATUSES:
            raise MoatError(f"{where}: status must be one of {', '.join(OPENVEX_STATUSES)}")
        ids = _openvex_ids(item.get("vulnerability"))
        if not ids:
            raise MoatError(f"{where}: no vulnerability name")
        products = tuple(_openvex_products(item.get("products"), where))
        timestamp = item.get("timestamp") if isinstance(item.get("timestamp"), str) else doc_time
        justification = item.get("justification") or item.get("impact_statement") or ""
        yield VexStatement(ids, products, str(status), status in OPENVEX_SUPPRESS, str(justification), source,
                           (str(timestamp), start + index))


def _openvex_ids(value: Any) -> frozenset[str]:
    """``"CVE-…"`` (OpenVEX 0.0.x) or ``{"name": …, "@id": …, "aliases": […]}`` (0.2)."""
    if isinstance(value, str):
        return frozenset({value})
    if not isinstance(value, dict):
        return frozenset()
    found = {value.get("name"), value.get("@id")}
    aliases = value.get("aliases")
    if isinstance(aliases, list):
        found.update(aliases)
    return frozenset(item for item in found if isinstance(item, str) and item)


def _openvex_products(value: Any, where: str) -> Iterator[str]:
    if not isinstance(value, list) or not value:
        raise MoatError(f"{where}: 'products' must be a non-empty list")
    for product in value:
        if isinstance(product, str):
            yield product
            continue
        if not isinstance(product, dict):
            raise MoatError(f"{where}: a product must be an object or a purl string")
        subcomponents = product.get("subcomponents")
        if isinstance(subcomponents, list) and subcomponents:
            # The product is the image; the statement is about these packages inside it.
            for sub in subcomponents:
                yield from _purls_of(sub)
        else:
            yield from _purls_of(product)


def _purls_of(component: Any) -> Iterator[str]:
    if isinstance(component, str):
        yield component
        return
    if not isinstance(component, dict):
        return
    ident = component.get("@id")
    if isinstance(ident, str) and ident.startswith("pkg:"):
        yield ident
    identifiers = component.get("identifiers")
    if isinstance(identifiers, dict) and isinstance(identifiers.get("purl"), str):
        yield identifiers["purl"]


def _cyclonedx(document: dict[str, Any], source: str, start: int) -> Iterator[VexStatement]:
    vulnerabilities = document.get("vulnerabilities")
    if not isinstance(vulnerabilities, list):
        raise MoatError(f"{source}: CycloneDX document without 'vulnerabilities' (not a VEX)")
    purls = dict(_component_purls(document))
    for index, item in enumerate(vulnerabilities):
        where = f"{source}: vulnerabilities[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
            raise MoatError(f"{where}: needs an 'id'")
        analysis = item.get("analysis")
        if not isinstance(analysis, dict) or "state" not in analysis:
            continue  # a plain finding, no VEX claim
        state = analysis["state"]
        if state not in CDX_STATES:
            raise MoatError(f"{where}: analysis.state must be one of {', '.join(CDX_STATES)}")
        ids = {item["id"]}
        for ref in item.get("references") or []:
            if isinstance(ref, dict) and isinstance(ref.get("id"), str):
                ids.add(ref["id"])
        products = []
        for affect in item.get("affects") or []:
            ref = affect.get("ref") if isinstance(affect, dict) else None
            if isinstance(ref, str):
                products.append(_resolve_ref(ref, purls))
        justification = str(analysis.get("justification") or analysis.get("detail") or "")
        yield VexStatement(frozenset(ids), tuple(p for p in products if p), str(state), state in CDX_SUPPRESS,
                           justification, source, (str(item.get("updated") or ""), start + index))


def _component_purls(document: dict[str, Any]) -> Iterator[tuple[str, str]]:
    stack: list[Any] = list(document.get("components") or [])
    metadata = document.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("component"), dict):
        stack.append(metadata["component"])
    seen = 0
    while stack and seen < 1_000_000:  # bounded: a hostile document cannot make this loop forever
        seen += 1
        component = stack.pop()
        if not isinstance(component, dict):
            continue
        ref, purl = component.get("bom-ref"), component.get("purl")
        if isinstance(ref, str) and isinstance(purl, str):
            yield ref, purl
        stack.extend(component.get("components") or [])


def _resolve_ref(ref: str, purls: dict[str, str]) -> str:
    if ref in purls:
        return purls[ref]
    if ref.startswith("urn:cdx:") and "#" in ref:
        fragment = unquote(ref.split("#", 1)[1])
        return purls.get(fragment, fragment if fragment.startswith("pkg:") else "")
    return ref if ref.startswith("pkg:") else ""
