"""The native report: its documented envelope, stable package order, and a lossless way back."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
from datetime import UTC, datetime
from typing import Any

import pytest

from moat import __version__
from moat.errors import SourceError
from moat.inventory.purl import make_purl
from moat.model import REPORT_SCHEMA, Artifact, Inventory, LayerInfo, OSInfo, Package
from moat.report.json_report import inventory_to_report, report_to_inventory

LAYER = "sha256:" + "5f" * 32


def installed_debs(limit: int) -> list[Package]:
    """The first installed packages dpkg-query reports on this machine."""
    fields = "\t".join(("${db:Status-Status}", "${Package}", "${Version}", "${Architecture}",
                        "${source:Package}", "${source:Version}")) + "\n"
    query = subprocess.run(["dpkg-query", "-W", "-f", fields], check=True, capture_output=True, text=True)
    out = query.stdout
    rows = [line.split("\t") for line in out.splitlines() if line.startswith("installed\t")]
    return [
        Package(name, version, "deb", make_purl("deb", name, version, "debian", {"arch": arch}),
                found_in="var/lib/dpkg/status", layer=LAYER, arch=arch, source_name=src,
                source_version=src_ver)
        for _, name, version, arch, src, src_ver in rows[:limit]
    ]


def wheels() -> list[Package]:
    found = []
    for name in ("httpx", "idna", "rich"):
        dist = importlib.metadata.distribution(name)
        meta = dist.metadata
        license_ = next(iter(meta.get_all("License-Expression") or meta.get_all("License") or []), "")
        found.append(Package(name, dist.version, "pypi", make_purl("pypi", name, dist.version),
                             licenses=[license_], found_in=f"app/{name}-{dist.version}.dist-info/METADATA",
                             dev=name == "rich", relationship="direct", depends_on=["idna@3.20"],
                             extra={"installer": "pip"}))
    return found


@pytest.fixture
def inventory() -> Inventory:
    packages = wheels() + installed_debs(25)
    packages.reverse()
    epoch = Package("openssl-libs", "1:1.1.1k-7.el8_6", "rpm",
                    "pkg:rpm/redhat/openssl-libs@1.1.1k-7.el8_6?epoch=1",
                    found_in="var/lib/rpm/rpmdb.sqlite", epoch=1, release="7.el8_6")
    return Inventory(
        artifact=Artifact(
            name="debian:12", type="container_image", digest="sha256:" + "ab" * 32,
            repo_tags=["debian:12"], repo_digests=["debian@sha256:" + "cd" * 32], architecture="amd64",
            os="linux", created="2024-06-01T00:00:00Z",
            layers=[LayerInfo(LAYER, digest="sha256:" + "ee" * 32, size=49_000_000,
                              media_type="application/vnd.oci.image.layer.v1.tar+gzip",
                              created_by="/bin/sh -c #(nop) ADD file:…", cached=True)],
            config={"User": "", "Env": ["PATH=/usr/bin"], "Cmd": ["bash"]},
        ),
        os=OSInfo("debian", "12", "Debian GNU/Linux 12 (bookworm)"),
        packages=[*packages, epoch],
        warnings=["layer 3: 2 entries with unsafe paths were skipped"],
    )


def test_envelope_has_exactly_the_documented_keys(inventory: Inventory) -> None:
    report = inventory_to_report(inventory, "docker-archive:debian.tar")
    assert list(report) == ["schema", "moat_version", "created", "target", "artifact", "os", "packages",
                            "warnings"]
    assert report["schema"] == REPORT_SCHEMA == "moat.report/v1"
    assert report["moat_version"] == __version__
    assert report["target"] == "docker-archive:debian.tar"
    created = datetime.strptime(report["created"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - created).total_seconds()) < 3600
    assert report["artifact"] == inventory.artifact.to_dict()
    assert report["os"] == {"family": "debian", "name": "12", "pretty_name": "Debian GNU/Linux 12 (bookworm)"}
    assert report["warnings"] == inventory.warnings
    json.dumps(report)  # plain JSON types only


def test_created_can_be_pinned_and_is_utc() -> None:
    moment = datetime(2024, 5, 1, 14, 30, 5, 123456, tzinfo=UTC)
    report = inventory_to_report(Inventory(Artifact("x", "filesystem")), "x", created=moment)
    assert report["created"] == "2024-05-01T14:30:05Z"
    assert report["os"] is None and report["packages"] == []


def test_packages_are_sorted_by_type_name_version_found_in(inventory: Inventory) -> None:
    report = inventory_to_report(inventory, "t")
    keys = [(p["type"], p["name"], p["version"], p["found_in"]) for p in report["packages"]]
    assert keys == sorted(keys)
    assert [p["type"] for p in report["packages"]] == ["deb"] * 25 + ["pypi"] * 3 + ["rpm"]
    assert report["packages"] == [p.to_dict() for p in inventory.sorted_packages()]


def test_round_trip_through_json_text_is_lossless(inventory: Inventory) -> None:
    text = json.dumps(inventory_to_report(inventory, "t"), indent=2)
    back = report_to_inventory(json.loads(text))
    expected = Inventory(inventory.artifact, inventory.os, inventory.sorted_packages(), inventory.warnings)
    assert back == expected


def test_a_directory_scan_round_trips() -> None:
    inv = Inventory(Artifact("/srv/app", "filesystem", layers=[LayerInfo("", media_type="directory")]),
                    packages=wheels())
    back = report_to_inventory(json.loads(json.dumps(inventory_to_report(inv, "dir:/srv/app"))))
    assert back == Inventory(inv.artifact, None, inv.sorted_packages(), [])


def test_later_schema_keys_are_ignored(inventory: Inventory) -> None:
    report = inventory_to_report(inventory, "t")
    report["vulnerabilities"] = [{"id": "CVE-2024-0001"}]
    report["misconfigurations"] = []
    assert len(report_to_inventory(report).packages) == len(inventory.packages)


def _report(**changes: Any) -> dict[str, Any]:
    base = inventory_to_report(Inventory(Artifact("x", "filesystem"), packages=wheels()), "t")
    base.update(changes)
    return base


def _package(**changes: Any) -> list[dict[str, Any]]:
    return [{**wheels()[0].to_dict(), **changes}]


@pytest.mark.parametrize(
    ("report", "words"),
    [
        (["not", "a", "report"], "not a JSON object"),
        (_report(schema="moat.report/v2"), "moat.report/v2"),
        (_report(artifact=None), "artifact must be a JSON object"),
        (_report(artifact={"type": "filesystem"}), "artifact.name"),
        (_report(os={"name": "12"}), "os.family"),
        (_report(packages={"a": 1}), "packages must be a JSON array"),
        (_report(packages=["idna"]), "packages[0] must be a JSON object"),
        (_report(packages=_package(name="")), "packages[0].name"),
        (_report(packages=_package(epoch="1")), "packages[0].epoch"),
        (_report(packages=_package(epoch=True)), "packages[0].epoch"),
        (_report(packages=_package(dev="yes")), "packages[0].dev"),
        (_report(packages=_package(licenses=[1])), "packages[0].licenses"),
        (_report(packages=_package(extra={"a": {"b": 1}})), "packages[0].extra"),
        (_report(warnings="oops"), "warnings"),
        (_report(artifact={"name": "x", "type": "filesystem", "layers": [{"size": 1}]}), "diff_id"),
    ],
)
def test_wrong_shapes_are_one_line_source_errors(report: Any, words: str) -> None:
    with pytest.raises(SourceError) as info:
        report_to_inventory(report)
    assert words in str(info.value) and "\n" not in str(info.value)
    assert str(info.value).startswith("Moat report: ")
