"""CycloneDX 1.6 output: valid against the official schema, and every Moat fact where docs/sbom.md says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from packageurl import PackageURL

from fixtures.inventories import APP_LAYER, IMAGE_DIGEST, corpus_packages, realistic_inventory
from moat import __version__
from moat.model import Artifact, Inventory, OSInfo, Package
from moat.sbom.cyclonedx import inventory_to_cyclonedx
from moat.sbom.graph import package_refs, resolve_dependencies
from moat.sbom.reader import read_sbom


@pytest.fixture(scope="module")
def inventory() -> Inventory:
    return realistic_inventory()


@pytest.fixture(scope="module")
def text(inventory: Inventory) -> str:
    return inventory_to_cyclonedx(inventory)


@pytest.fixture(scope="module")
def bom(text: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(text)
    return data


def props(component: dict[str, Any]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for item in component.get("properties", []):
        found.setdefault(item["name"], []).append(item["value"])
    return found


def components_named(bom: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [c for c in bom["components"] if c["name"] == name]


def test_output_is_valid_cyclonedx_1_6(text: str) -> None:
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None


def test_the_validator_does_reject_a_broken_document(bom: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(bom))
    broken["components"][0]["type"] = "not-a-type"
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(broken)) is not None


def test_envelope(bom: dict[str, Any]) -> None:
    assert (bom["bomFormat"], bom["specVersion"]) == ("CycloneDX", "1.6")
    assert bom["serialNumber"].startswith("urn:uuid:")
    tools = bom["metadata"]["tools"]["components"]
    assert [(t["name"], t["version"]) for t in tools] == [("moat", __version__)]


def test_image_is_the_metadata_component(bom: dict[str, Any], inventory: Inventory) -> None:
    root = bom["metadata"]["component"]
    assert root["type"] == "container"
    assert root["name"] == inventory.artifact.name
    assert root["version"] == IMAGE_DIGEST
    purl = PackageURL.from_string(root["purl"])
    assert (purl.type, purl.name, purl.version) == ("oci", "app", IMAGE_DIGEST)
    assert purl.qualifiers == {"repository_url": "registry.example.com:5000/moat/app", "tag": "1.4",
                               "arch": "amd64"}
    assert props(root)["moat:artifact:layer:1"] == [APP_LAYER]


def test_os_is_an_operating_system_component(bom: dict[str, Any], inventory: Inventory) -> None:
    assert inventory.os is not None
    systems = [c for c in bom["components"] if c["type"] == "operating-system"]
    assert len(systems) == 1
    assert (systems[0]["name"], systems[0]["version"]) == (inventory.os.family, inventory.os.name)
    assert systems[0]["description"] == inventory.os.pretty_name


def test_every_package_is_a_library_with_a_unique_ref(bom: dict[str, Any], inventory: Inventory) -> None:
    libraries = [c for c in bom["components"] if c["type"] == "library"]
    assert len(libraries) == len(inventory.packages)
    refs = [c["bom-ref"] for c in bom["components"]] + [bom["metadata"]["component"]["bom-ref"]]
    assert len(refs) == len(set(refs))
    copies = components_named(bom, "idna")
    assert len(copies) == 2 and copies[0]["purl"] == copies[1]["purl"]
    assert {props(c)["moat:found_in"][0] for c in copies} == {
        p.found_in for p in inventory.packages if p.name == "idna"
    }


def test_refs_are_stable_between_runs(inventory: Inventory) -> None:
    first = json.loads(inventory_to_cyclonedx(inventory))
    second = json.loads(inventory_to_cyclonedx(inventory))
    refs = [sorted(c["bom-ref"] for c in bom["components"]) for bom in (first, second)]
    assert refs[0] == refs[1]
    assert first["dependencies"] == second["dependencies"]


def test_moat_facts_are_properties(bom: dict[str, Any]) -> None:
    openssl = props(components_named(bom, "openssl-libs")[0])
    assert openssl["moat:epoch"] == ["1"] and openssl["moat:release"] == ["7.el8_6"]
    assert openssl["moat:type"] == ["rpm"] and openssl["moat:arch"] == ["x86_64"]
    assert openssl["moat:source_name"] == ["openssl"]
    curl = props(next(c for c in components_named(bom, "curl") if c["purl"].startswith("pkg:rpm/")))
    assert curl["moat:extra:vendor"] == ["Microsoft Corporation"]
    assert curl["moat:extra:source_rpm"] == ["curl-7.76.0-6.cm2.src.rpm"]
    dev_debug = next(c for c in components_named(bom, "debug") if c["version"] == "2.5.2")
    assert props(dev_debug)["moat:dev"] == ["true"]
    assert props(dev_debug)["moat:relationship"] == ["direct"]
    assert props(dev_debug)["moat:layer"] == [APP_LAYER]


def test_licenses_use_ids_expressions_and_names() -> None:
    def licenses(values: list[str]) -> list[dict[str, Any]]:
        inv = Inventory(Artifact("x", "filesystem"), packages=[Package("p", "1", "pypi", "pkg:pypi/p@1",
                                                                       licenses=values)])
        text = inventory_to_cyclonedx(inv)
        assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
        result: list[dict[str, Any]] = json.loads(text)["components"][0].get("licenses", [])
        return result

    assert licenses(["MIT"]) == [{"license": {"id": "MIT"}}]
    assert licenses(["Apache-2.0 OR MIT"]) == [{"expression": "Apache-2.0 OR MIT"}]
    assert licenses(["GPL-2+"]) == [{"license": {"name": "GPL-2+"}}]
    # Several licenses: the library writes them in its own (sorted) order.
    two = licenses(["MIT", "BSD-3-Clause"])
    assert sorted(json.dumps(x) for x in two) == sorted(
        json.dumps({"license": {"id": i}}) for i in ("MIT", "BSD-3-Clause"))
    mixed = licenses(["MIT", "Apache-2.0 OR BSD-2-Clause"])
    assert mixed == [{"expression": "MIT AND (Apache-2.0 OR BSD-2-Clause)"}]
    # An unknown name beside an expression cannot share one expression: both become names.
    names = licenses(["Apache 2.0", "MIT OR X11"])
    assert sorted(x["license"]["name"] for x in names) == ["Apache 2.0", "MIT OR X11"]
    assert licenses([]) == []


def test_license_order_survives_the_sorted_output(tmp_path: Path) -> None:
    for values in (["MIT", "BSD-3-Clause"], ["BSD-3-Clause", "MIT"], ["zlib-acknowledgement", "Apache 2.0"]):
        inv = Inventory(Artifact("x", "filesystem"), packages=[Package("p", "1", "pypi", "pkg:pypi/p@1",
                                                                       licenses=values)])
        path = tmp_path / "l.json"
        path.write_text(inventory_to_cyclonedx(inv))
        assert read_sbom(str(path)).packages[0].licenses == values


def test_original_license_strings_are_kept_when_the_form_changes_them(bom: dict[str, Any]) -> None:
    lang = components_named(bom, "org.apache.commons:commons-lang3")[0]
    assert json.loads(props(lang)["moat:licenses"][0]) == [
        "Apache License, Version 2.0", "mit", "GPL-2.0-or-later WITH Classpath-exception-2.0"]
    idna = components_named(bom, "idna")[0]
    assert "moat:licenses" not in props(idna)
    assert idna["licenses"] == [{"license": {"id": "BSD-3-Clause"}}]


def test_dependencies_follow_depends_on(bom: dict[str, Any], inventory: Inventory) -> None:
    by_ref = {c["bom-ref"]: c for c in bom["components"]}
    graph = {d["ref"]: d.get("dependsOn", []) for d in bom["dependencies"]}
    assert set(graph[bom["metadata"]["component"]["bom-ref"]]) == set(by_ref)
    for package in inventory.packages:
        if package.type != "npm" or not package.depends_on:
            continue
        ref = next(r for r, c in by_ref.items() if f"{c['name']}@{c['version']}" == package.id)
        named = sorted(f"{by_ref[t]['name']}@{by_ref[t]['version']}" for t in graph[ref])
        unresolved = props(by_ref[ref]).get("moat:depends_on", [])
        assert sorted(named + unresolved) == sorted(set(package.depends_on))
    assert all(target in by_ref for targets in graph.values() for target in targets)


def test_dependencies_resolve_within_the_same_file_first() -> None:
    lock_a = corpus_packages("npm", "trivy-package-lock_v3", "npm", "a/package-lock.json")
    lock_b = corpus_packages("npm", "trivy-package-lock_v3", "npm", "b/package-lock.json")
    packages = lock_a + lock_b
    resolved, _ = resolve_dependencies(packages)
    edges = [(i, j) for i, targets in resolved.items() for j in targets]
    assert edges
    assert all(packages[i].found_in == packages[j].found_in for i, j in edges)
    refs = package_refs(packages)
    assert len(set(refs)) == len(refs)
    assert all(ref.endswith(("#a/package-lock.json", "#b/package-lock.json")) for ref in refs)


def test_a_dependency_found_only_in_another_file_still_resolves() -> None:
    app = Package("flask", "2.0.0", "pypi", "pkg:pypi/flask@2.0.0", found_in="app/requirements.txt",
                  depends_on=["click@8.0.0", "missing@1"])
    click = Package("click", "8.0.0", "pypi", "pkg:pypi/click@8.0.0", found_in="site/click-8.0.0/METADATA")
    resolved, unresolved = resolve_dependencies([app, click])
    assert resolved == {0: [1]} and unresolved == {0: ["missing@1"]}


def test_true_duplicates_get_distinct_refs() -> None:
    same = Package("ms", "2.0.0", "npm", "pkg:npm/ms@2.0.0", found_in="package-lock.json")
    refs = package_refs([same, Package.from_dict(same.to_dict())])
    assert refs == ["pkg:npm/ms@2.0.0#package-lock.json", "pkg:npm/ms@2.0.0#package-lock.json~2"]


def test_a_directory_is_a_file_component_without_purl() -> None:
    inv = Inventory(Artifact("/srv/app", "filesystem"), os=OSInfo("alpine", "3.19.1", distroless=True))
    bom = json.loads(inventory_to_cyclonedx(inv))
    root = bom["metadata"]["component"]
    assert root["type"] == "file" and "purl" not in root and "version" not in root
    assert props(bom["components"][0])["moat:os:distroless"] == ["true"]


def test_an_image_without_digest_has_no_purl() -> None:
    bom = json.loads(inventory_to_cyclonedx(Inventory(Artifact("debian:12", "container_image"))))
    assert "purl" not in bom["metadata"]["component"]
