"""SPDX 2.3 output: spdx-tools parses it back and its full validator finds nothing; Moat facts ride in
annotations."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from spdx_tools.spdx.parser.json.json_parser import parse_from_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from fixtures.inventories import IMAGE_DIGEST, realistic_inventory
from moat import __version__
from moat.model import Artifact, Inventory, Package
from moat.sbom.spdx import inventory_to_spdx


@pytest.fixture(scope="module")
def inventory() -> Inventory:
    return realistic_inventory()


@pytest.fixture(scope="module")
def written(inventory: Inventory, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("spdx") / "image.spdx.json"
    path.write_text(inventory_to_spdx(inventory))
    return path


@pytest.fixture(scope="module")
def doc(written: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(written.read_text())
    return data


def libraries(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in doc["packages"] if p.get("primaryPackagePurpose") == "LIBRARY"]


def facts(package: dict[str, Any]) -> dict[str, Any]:
    notes = [a for a in package.get("annotations", []) if a["annotator"] == f"Tool: moat-{__version__}"]
    assert len(notes) == 1 and notes[0]["annotationType"] == "OTHER"
    assert notes[0]["comment"].startswith("moat:")
    data: dict[str, Any] = json.loads(notes[0]["comment"][len("moat:"):])
    return data


def one_package(licenses: list[str], tmp_path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    inv = Inventory(Artifact("x", "filesystem"), packages=[Package("p", "1", "pypi", "pkg:pypi/p@1",
                                                                   licenses=licenses)])
    path = tmp_path / "one.spdx.json"
    path.write_text(inventory_to_spdx(inv))
    assert validate_full_spdx_document(parse_from_file(str(path))) == []
    data = json.loads(path.read_text())
    return libraries(data)[0], data


def test_spdx_tools_parses_it_and_finds_no_validation_message(written: Path) -> None:
    document = parse_from_file(str(written))
    assert validate_full_spdx_document(document) == []


def test_the_validator_does_catch_a_broken_document(doc: dict[str, Any], tmp_path: Path) -> None:
    broken = json.loads(json.dumps(doc))
    broken["hasExtractedLicensingInfos"] = []  # leaves LicenseRef-… undefined
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    assert validate_full_spdx_document(parse_from_file(str(path)))


def test_creation_info(doc: dict[str, Any], inventory: Inventory) -> None:
    assert doc["spdxVersion"] == "SPDX-2.3" and doc["dataLicense"] == "CC0-1.0"
    assert doc["creationInfo"]["creators"] == [f"Tool: moat-{__version__}"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", doc["creationInfo"]["created"])
    assert doc["name"] == inventory.artifact.name
    assert doc["documentNamespace"].startswith("https://")
    again = json.loads(inventory_to_spdx(inventory))
    assert again["documentNamespace"] != doc["documentNamespace"]


def test_document_describes_the_image_which_contains_every_package(doc: dict[str, Any]) -> None:
    rels = doc["relationships"]
    describes = [r for r in rels if r["relationshipType"] == "DESCRIBES"]
    assert [(r["spdxElementId"], r["relatedSpdxElement"]) for r in describes] == [
        ("SPDXRef-DOCUMENT", "SPDXRef-Artifact")]
    image = next(p for p in doc["packages"] if p["SPDXID"] == "SPDXRef-Artifact")
    assert image["primaryPackagePurpose"] == "CONTAINER" and image["versionInfo"] == IMAGE_DIGEST
    assert image["externalRefs"][0]["referenceLocator"].startswith("pkg:oci/app@sha256")
    contained = {r["relatedSpdxElement"] for r in rels
                 if r["relationshipType"] == "CONTAINS" and r["spdxElementId"] == "SPDXRef-Artifact"}
    assert contained == {p["SPDXID"] for p in doc["packages"]} - {"SPDXRef-Artifact"}


def test_os_package(doc: dict[str, Any], inventory: Inventory) -> None:
    assert inventory.os is not None
    systems = [p for p in doc["packages"] if p.get("primaryPackagePurpose") == "OPERATING_SYSTEM"]
    assert [(p["name"], p["versionInfo"]) for p in systems] == [(inventory.os.family, inventory.os.name)]


def test_one_spdx_package_per_moat_package_with_its_purl(doc: dict[str, Any], inventory: Inventory) -> None:
    libs = libraries(doc)
    assert len(libs) == len(inventory.packages)
    ids = [p["SPDXID"] for p in doc["packages"]]
    assert len(ids) == len(set(ids)) and all(re.fullmatch(r"SPDXRef-[A-Za-z0-9.-]+", i) for i in ids)
    purls = [[r["referenceLocator"] for r in p["externalRefs"] if r["referenceType"] == "purl"] for p in libs]
    assert all(len(found) == 1 for found in purls)
    written = sorted((p["name"], p["versionInfo"], found[0]) for p, found in zip(libs, purls, strict=True))
    assert written == sorted((p.name, p.version, p.purl) for p in inventory.packages)
    assert {r["referenceCategory"] for p in libs for r in p["externalRefs"]} == {"PACKAGE_MANAGER"}


def test_depends_on_relationships(doc: dict[str, Any], inventory: Inventory) -> None:
    by_id = {p["SPDXID"]: p for p in doc["packages"]}
    edges: dict[str, set[str]] = {}
    for r in doc["relationships"]:
        if r["relationshipType"] == "DEPENDS_ON":
            target = by_id[r["relatedSpdxElement"]]
            edges.setdefault(r["spdxElementId"], set()).add(f"{target['name']}@{target['versionInfo']}")
    assert edges
    for package in libraries(doc):
        moat = facts(package)
        original = next(p for p in inventory.packages if (p.name, p.version, p.found_in) ==
                        (package["name"], package["versionInfo"], moat["found_in"]))
        linked = edges.get(package["SPDXID"], set()) | set(moat.get("depends_on", []))
        assert linked == set(original.depends_on), original.id


def test_moat_facts_are_in_one_annotation_per_package(doc: dict[str, Any]) -> None:
    openssl = facts(next(p for p in libraries(doc) if p["name"] == "openssl-libs"))
    assert openssl["epoch"] == 1 and openssl["release"] == "7.el8_6" and openssl["type"] == "rpm"
    curl = facts(next(p for p in libraries(doc) if p["name"] == "curl" and "rpm" in p["SPDXID"]))
    assert curl["extra"] == {"source_rpm": "curl-7.76.0-6.cm2.src.rpm", "vendor": "Microsoft Corporation"}
    idna = [facts(p) for p in libraries(doc) if p["name"] == "idna"]
    assert len({f["found_in"] for f in idna}) == 2
    assert facts(next(p for p in doc["packages"] if p["SPDXID"] == "SPDXRef-Artifact"))["kind"] == "artifact"


def test_license_declared(tmp_path: Path) -> None:
    package, _ = one_package(["MIT"], tmp_path)
    assert package["licenseDeclared"] == "MIT" and package["licenseConcluded"] == "NOASSERTION"
    assert "licenses" not in facts(package)
    package, _ = one_package([], tmp_path)
    assert package["licenseDeclared"] == "NOASSERTION"
    package, _ = one_package(["MIT", "Apache-2.0 OR BSD-2-Clause"], tmp_path)
    assert package["licenseDeclared"] == "MIT AND (Apache-2.0 OR BSD-2-Clause)"
    assert facts(package)["licenses"] == ["MIT", "Apache-2.0 OR BSD-2-Clause"]


def test_unknown_license_becomes_a_license_ref_with_its_text(tmp_path: Path) -> None:
    package, data = one_package(["GPL-2+", "MIT"], tmp_path)
    ref = package["licenseDeclared"].split(" AND ")[0]
    assert ref.startswith("LicenseRef-") and package["licenseDeclared"].endswith(" AND MIT")
    infos = {i["licenseId"]: i for i in data["hasExtractedLicensingInfos"]}
    assert infos[ref]["extractedText"] == "GPL-2+" and infos[ref]["name"] == "GPL-2+"


def test_same_unknown_text_shares_one_license_ref(inventory: Inventory, tmp_path: Path) -> None:
    pkgs = [Package(n, "1", "npm", f"pkg:npm/{n}@1", licenses=["public domain"]) for n in ("a", "b")]
    pkgs.append(Package("c", "1", "npm", "pkg:npm/c@1", licenses=["public-domain"]))  # same id once sanitized
    path = tmp_path / "refs.json"
    path.write_text(inventory_to_spdx(Inventory(Artifact("x", "filesystem"), packages=pkgs)))
    data = json.loads(path.read_text())
    assert validate_full_spdx_document(parse_from_file(str(path))) == []
    declared = {p["name"]: p["licenseDeclared"] for p in libraries(data)}
    assert declared["a"] == declared["b"] != declared["c"]
    assert len(data["hasExtractedLicensingInfos"]) == 2
