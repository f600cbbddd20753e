"""OpenVEX (0.0.x and 0.2 shapes) and CycloneDX VEX: which statements suppress which findings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from moat.errors import MoatError
from moat.model import Vulnerability
from moat.policy import purl_matches
from moat.policy.vex import apply_vex, load_vex

YAML = Vulnerability("CVE-2020-14343", "PYSEC-2021-142", "PyYAML", "5.1", "pypi", purl="pkg:pypi/pyyaml@5.1",
                     aliases=["CVE-2020-14343", "GHSA-8q59-q68h-6hv4"])
OPENSSL = Vulnerability("CVE-2023-0286", "DSA-5343-1", "libssl3", "3.0.7-1", "deb",
                        purl="pkg:deb/debian/libssl3@3.0.7-1?arch=amd64&distro=debian-12")


def write(tmp_path: Path, name: str, data: Any) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def openvex(*statements: dict[str, Any], timestamp: str = "2024-01-01T00:00:00Z") -> dict[str, Any]:
    return {"@context": "https://openvex.dev/ns/v0.2.0", "@id": "x", "author": "a", "timestamp": timestamp,
            "version": 1, "statements": list(statements)}


def suppressed_ids(tmp_path: Path, *docs: dict[str, Any]) -> list[str]:
    paths = [write(tmp_path, f"{i}.json", doc) for i, doc in enumerate(docs)]
    return [s.vulnerability.id for s in apply_vex([YAML, OPENSSL], load_vex(paths))[1]]


@pytest.mark.parametrize(
    ("vulnerability", "product", "status", "hit"),
    [
        ({"name": "CVE-2020-14343"}, {"@id": "pkg:pypi/pyyaml@5.1"}, "not_affected", True),
        ({"name": "GHSA-8q59-q68h-6hv4"}, {"@id": "pkg:pypi/PyYAML"}, "fixed", True),  # alias; versionless purl
        ("CVE-2020-14343", "pkg:pypi/pyyaml@5.1", "not_affected", True),  # OpenVEX 0.0.x strings
        ({"name": "CVE-2020-14343"}, {"identifiers": {"purl": "pkg:pypi/pyyaml@5.1"}}, "not_affected", True),
        ({"name": "CVE-2020-14343"}, {"@id": "pkg:pypi/pyyaml@5.4"}, "not_affected", False),
        ({"name": "CVE-2020-14343"}, {"@id": "pkg:pypi/pyyaml@5.1"}, "affected", False),
        ({"name": "CVE-2020-14343"}, {"@id": "pkg:pypi/pyyaml@5.1"}, "under_investigation", False),
        ({"name": "CVE-2020-1747"}, {"@id": "pkg:pypi/pyyaml@5.1"}, "not_affected", False),
    ],
)
def test_openvex_statement(tmp_path: Path, vulnerability: Any, product: Any, status: str, hit: bool) -> None:
    statement = {"vulnerability": vulnerability, "products": [product], "status": status,
                 "justification": "vulnerable_code_not_present"}
    assert suppressed_ids(tmp_path, openvex(statement)) == (["CVE-2020-14343"] if hit else [])


def test_openvex_subcomponents_of_an_image_and_qualifiers(tmp_path: Path) -> None:
    image = {"@id": "pkg:oci/app@sha256%3Aabc", "subcomponents": [{"@id": "pkg:deb/debian/libssl3?arch=amd64"}]}
    statement = {"vulnerability": {"name": "CVE-2023-0286"}, "products": [image], "status": "not_affected",
                 "justification": "vulnerable_code_not_in_execute_path"}
    assert suppressed_ids(tmp_path, openvex(statement)) == ["CVE-2023-0286"]
    image["subcomponents"] = [{"@id": "pkg:deb/debian/libssl3?arch=arm64"}]
    assert suppressed_ids(tmp_path, openvex(statement)) == []


def test_latest_openvex_statement_wins(tmp_path: Path) -> None:
    product = [{"@id": "pkg:pypi/pyyaml@5.1"}]
    old = {"vulnerability": {"name": "CVE-2020-14343"}, "products": product, "status": "not_affected",
           "justification": "vulnerable_code_not_present", "timestamp": "2024-01-01T00:00:00Z"}
    new = {"vulnerability": {"name": "CVE-2020-14343"}, "products": product, "status": "affected",
           "timestamp": "2024-02-01T00:00:00Z"}
    assert suppressed_ids(tmp_path, openvex(new, old)) == []
    assert suppressed_ids(tmp_path, openvex(old)) == ["CVE-2020-14343"]


def cdx(state: str, ref: str, components: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1, "components": components or [],
            "vulnerabilities": [{"id": "GHSA-8q59-q68h-6hv4", "analysis": {"state": state},
                                 "affects": [{"ref": ref}]}]}


@pytest.mark.parametrize(
    ("state", "hit"),
    [("not_affected", True), ("false_positive", True), ("resolved", True), ("exploitable", False),
     ("in_triage", False)],
)
def test_cyclonedx_states(tmp_path: Path, state: str, hit: bool) -> None:
    component = {"type": "library", "name": "pyyaml", "bom-ref": "c1", "purl": "pkg:pypi/pyyaml@5.1"}
    assert suppressed_ids(tmp_path, cdx(state, "c1", [component])) == (["CVE-2020-14343"] if hit else [])


@pytest.mark.parametrize(
    "ref", ["pkg:pypi/pyyaml@5.1", "urn:cdx:3e671687-395b-41f5-a30f-a58921a69b79/1#pkg%3Apypi%2Fpyyaml%405.1"]
)
def test_cyclonedx_refs_as_purls_and_bom_links(tmp_path: Path, ref: str) -> None:
    assert suppressed_ids(tmp_path, cdx("not_affected", ref)) == ["CVE-2020-14343"]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"hello": 1}, "neither an OpenVEX document nor a CycloneDX BOM"),
        (openvex({"vulnerability": {"name": "X"}, "products": ["pkg:pypi/a"], "status": "maybe"}),
         "status must be one of"),
        (openvex({"vulnerability": {}, "products": ["pkg:pypi/a"], "status": "fixed"}), "no vulnerability name"),
        (openvex({"vulnerability": {"name": "X"}, "products": [], "status": "fixed"}), "'products' must be"),
        (cdx("sure", "x"), "analysis.state must be one of"),
        ({"bomFormat": "CycloneDX"}, "without 'vulnerabilities'"),
    ],
)
def test_bad_documents(tmp_path: Path, doc: dict[str, Any], message: str) -> None:
    with pytest.raises(MoatError, match=message):
        load_vex([write(tmp_path, "v.json", doc)])


def test_not_json(tmp_path: Path) -> None:
    path = tmp_path / "v.json"
    path.write_text("{")
    with pytest.raises(MoatError, match="not valid JSON"):
        load_vex([path])


def test_purl_matching_rules() -> None:
    assert purl_matches("pkg:pypi/Py_YAML", "pkg:pypi/py-yaml@1")  # PyPI names normalise
    assert not purl_matches("pkg:maven/org.example/Art", "pkg:maven/org.example/art@1")  # Maven names do not
    assert not purl_matches("pkg:pypi/pyyaml", "pkg:npm/pyyaml@1")
    assert not purl_matches("not a purl", "pkg:pypi/pyyaml@1")
