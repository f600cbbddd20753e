"""``moat image|fs|sbom-scan`` as a user runs them, on a small real root and a database of real
PyPI advisories. The expected findings are worked out here from the OSV records with ``packaging``
(the version rules pip itself uses), not with Moat's matcher."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
import zipfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from packaging.version import InvalidVersion, Version
from typer.testing import CliRunner

from corpus import SHARED
from moat.cli.main import app
from moat.vulndb.osv import parse_record
from moat.vulndb.store import StoreWriter

try:  # click < 8.2 mixes stderr into stdout unless told not to; 8.2 keeps them apart and drops the flag
    runner = CliRunner(mix_stderr=False)  # type: ignore[call-arg]
except TypeError:
    runner = CliRunner()

PYPI_ZIP = SHARED / "vulndata/osv/PyPI.zip"
SARIF_SCHEMA = Path(__file__).resolve().parent.parent / "report/data/sarif-2.1.0.json"
INSTALLED = {"jinja2": "2.10", "pyyaml": "5.1"}
DIST_NAMES = {"jinja2": "Jinja2", "pyyaml": "PyYAML"}


def _records() -> list[dict[str, Any]]:
    with zipfile.ZipFile(PYPI_ZIP) as archive:
        records = [json.loads(archive.read(name)) for name in archive.namelist()]
    return [
        r for r in records
        if any(a.get("package", {}).get("name", "").lower() in INSTALLED for a in r.get("affected", []))
    ]


def _affects(record: dict[str, Any], package: str, version: str) -> list[str]:
    """Fixed versions when ``version`` of ``package`` is affected by the record, else []. Only
    ECOSYSTEM ranges count for PyPI versions (GIT ranges name commits)."""
    if record.get("withdrawn"):
        return []
    installed = Version(version)
    for entry in record["affected"]:
        if entry["package"]["name"].lower() != package:
            continue
        fixes = [e["fixed"] for r in entry.get("ranges", []) if r["type"] == "ECOSYSTEM" for e in r["events"]
                 if "fixed" in e]
        if version in entry.get("versions", []):
            return fixes or ["(listed)"]
        for rng in entry.get("ranges", []):
            if rng["type"] != "ECOSYSTEM":
                continue
            low: Version | None = None
            for event in rng["events"]:
                if "introduced" in event:
                    low = Version("0") if event["introduced"] == "0" else Version(event["introduced"])
                elif low is not None and ("fixed" in event or "last_affected" in event):
                    try:
                        bound = Version(event.get("fixed") or event["last_affected"])
                    except InvalidVersion:
                        continue
                    inside = installed < bound if "fixed" in event else installed <= bound
                    if low <= installed and inside:
                        return fixes
                    low = None
            if low is not None and low <= installed:
                return fixes or ["(open)"]
    return []


def _expected() -> dict[tuple[str, str], str]:
    """(package, CVE or record id) → the record's id, for every advisory that applies."""
    found = {}
    for record in _records():
        for package, version in INSTALLED.items():
            if _affects(record, package, version):
                cves = [a for a in record.get("aliases", []) if a.startswith("CVE-")]
                found[(package, cves[0] if cves else record["id"])] = record["id"]
    return found


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("scan")
    root = base / "rootfs"
    site = root / "usr/lib/python3/dist-packages"
    for key, version in INSTALLED.items():
        info = site / f"{DIST_NAMES[key]}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {DIST_NAMES[key]}\nVersion: {version}\n")
    (root / "etc").mkdir()
    (root / "etc/os-release").write_text('ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12"\n')
    db = base / "db/vuln.db"
    with StoreWriter(db) as writer:
        for record in _records():
            advisory, rows = parse_record(record, "osv:PyPI")
            writer.add_advisory(advisory, rows)
    return {"root": root, "db": db, "cache": base / "cache", "base": base}


def invoke(world: dict[str, Path], *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, [*args, "--db", str(world["db"]), "--cache-dir", str(world["cache"]), "-q"])
    return result.exit_code, result.stdout, result.stderr


def scan_json(world: dict[str, Path], *args: str) -> dict[str, Any]:
    code, out, err = invoke(world, "fs", str(world["root"]), "-f", "json", *args)
    assert code == 0, err
    data: dict[str, Any] = json.loads(out)
    return data


def test_findings_are_the_advisories_that_apply(world: dict[str, Path]) -> None:
    expected = _expected()
    assert len(expected) >= 8  # six for Jinja2 2.10 and three for PyYAML 5.1 in this data
    report = scan_json(world)
    found = {(v["package"]["name"].lower(), v["id"]): v for v in report["vulnerabilities"]}
    assert set(found) == set(expected)
    for key, vuln in found.items():
        assert vuln["advisory_id"] == expected[key]
        assert vuln["package"]["found_in"].endswith("/METADATA")
    assert found[("jinja2", "CVE-2019-10906")]["fixed_versions"] == ["2.10.1"]
    assert found[("pyyaml", "CVE-2020-14343")]["fixed_versions"] == ["5.4"]
    summary = report["summary"]
    assert summary["total"] == len(expected) == sum(summary["by_severity"].values())
    assert summary["fixed"] + summary["unfixed"] == summary["total"]
    assert report["schema"] == "moat.report/v1" and len(report["packages"]) == 2


def test_gate_exit_codes_and_severity_filter(world: dict[str, Path]) -> None:
    everything = scan_json(world)["vulnerabilities"]
    target = str(world["root"])
    assert invoke(world, "fs", target, "-f", "json")[0] == 0  # no gate asked for
    assert invoke(world, "fs", target, "-f", "json", "--exit-code", "1")[0] == 1
    assert invoke(world, "fs", target, "-f", "json", "--exit-code", "7")[0] == 7
    high = [v for v in everything if v["severity"] == "HIGH"]
    assert high  # CVE-2024-56326 carries CVSS 3.1 AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H = 7.8
    code, out, _ = invoke(world, "fs", target, "-f", "json", "--severity", "high,CRITICAL", "--exit-code", "1")
    assert code == 1
    report = json.loads(out)
    assert [v["id"] for v in report["vulnerabilities"]] == [v["id"] for v in high]
    assert report["summary"]["suppressed"] == len(everything) - len(high)
    assert invoke(world, "fs", target, "--severity", "CRITICAL", "--exit-code", "1")[0] == 0


def test_ignore_unfixed_keeps_fixed_findings(world: dict[str, Path]) -> None:
    everything = scan_json(world)["vulnerabilities"]
    kept = scan_json(world, "--ignore-unfixed")["vulnerabilities"]
    assert [v["id"] for v in kept] == [v["id"] for v in everything if v["fixed_versions"]]


def test_ignore_file_with_expiry(world: dict[str, Path], tmp_path: Path) -> None:
    target = str(world["root"])
    future = (date.today() + timedelta(days=30)).isoformat()
    ignore = tmp_path / "ignore.yaml"
    ignore.write_text(
        f"- id: GHSA-q2x7-8rv6-6q7h\n  package: pkg:pypi/jinja2\n  reason: sandbox not used\n  expires: {future}\n"
    )
    args = ("-f", "json", "--severity", "HIGH", "--exit-code", "1", "--ignorefile", str(ignore))
    code, out, err = invoke(world, "fs", target, *args)
    assert code == 0 and err == ""
    report = json.loads(out)
    assert report["vulnerabilities"] == []
    assert [(s["id"], s["suppression"]["reason"]) for s in report["suppressed"] if s["id"] == "CVE-2024-56326"] == [
        ("CVE-2024-56326", "sandbox not used")
    ]
    ignore.write_text("- id: CVE-2024-56326\n  reason: sandbox not used\n  expires: 2020-01-01\n")
    code, out, err = invoke(world, "fs", target, *args)
    assert code == 1
    assert "CVE-2024-56326 expired on 2020-01-01" in err
    ignore.write_text("- id: CVE-2024-56326\n  package: pyyaml\n  reason: wrong package\n")
    assert invoke(world, "fs", target, *args)[0] == 1
    ignore.write_text("- id: CVE-2024-56326\n")
    code, out, err = invoke(world, "fs", target, *args)
    assert code == 2 and out == "" and "'reason' is required" in err and len(err.strip().splitlines()) == 1


def test_default_ignore_file_is_read_from_the_working_directory(
    world: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".moatignore").write_text("- id: CVE-2024-56326\n  reason: accepted\n")
    monkeypatch.chdir(tmp_path)
    assert invoke(world, "fs", str(world["root"]), "--severity", "HIGH", "--exit-code", "1")[0] == 0


def test_openvex_and_cyclonedx_vex(world: dict[str, Path], tmp_path: Path) -> None:
    openvex = tmp_path / "a.openvex.json"
    openvex.write_text(json.dumps({
        "@context": "https://openvex.dev/ns/v0.2.0",
        "@id": "https://example.com/vex/1",
        "author": "test",
        "timestamp": "2024-01-01T00:00:00Z",
        "version": 1,
        "statements": [
            {"vulnerability": {"name": "GHSA-3pqx-4fqf-j49f"}, "products": [{"@id": "pkg:pypi/pyyaml@5.1"}],
             "status": "not_affected", "justification": "vulnerable_code_not_in_execute_path"},
            {"vulnerability": {"name": "CVE-2020-14343"}, "products": [{"@id": "pkg:pypi/pyyaml@5.1"}],
             "status": "under_investigation"},
            {"vulnerability": {"name": "CVE-2020-1747"}, "products": [{"@id": "pkg:pypi/pyyaml@9.9"}],
             "status": "not_affected", "justification": "component_not_present"},
        ],
    }))
    cdx = tmp_path / "b.cdx.json"
    cdx.write_text(json.dumps({
        "bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1,
        "components": [{"type": "library", "name": "jinja2", "version": "2.10", "bom-ref": "j",
                        "purl": "pkg:pypi/jinja2@2.10"}],
        "vulnerabilities": [
            {"id": "CVE-2019-10906", "analysis": {"state": "false_positive"}, "affects": [{"ref": "j"}]},
            {"id": "CVE-2020-28493", "analysis": {"state": "exploitable"}, "affects": [{"ref": "j"}]},
        ],
    }))
    before = {v["id"] for v in scan_json(world)["vulnerabilities"]}
    report = scan_json(world, "--vex", str(openvex), "--vex", str(cdx))
    after = {v["id"] for v in report["vulnerabilities"]}
    assert before - after == {"CVE-2019-20477", "CVE-2019-10906"}
    states = {s["id"]: s["suppression"]["state"] for s in report["suppressed"]}
    assert states == {"CVE-2019-20477": "not_affected", "CVE-2019-10906": "false_positive"}

    code, out, _ = invoke(world, "fs", str(world["root"]), "-f", "cyclonedx-json", "--vex", str(openvex))
    assert code == 0
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(out) is None
    bom = json.loads(out)
    by_id = {v["id"]: v for v in bom["vulnerabilities"]}
    assert by_id["CVE-2019-20477"]["analysis"]["state"] == "not_affected"
    assert by_id["CVE-2019-20477"]["analysis"]["justification"] == "code_not_reachable"
    assert "analysis" not in by_id["CVE-2020-14343"]


def test_every_format(world: dict[str, Path], tmp_path: Path) -> None:
    target = str(world["root"])
    ids = {v["id"] for v in scan_json(world)["vulnerabilities"]}

    code, out, _ = invoke(world, "fs", target, "-f", "sarif")
    assert code == 0
    sarif = json.loads(out)
    jsonschema.validate(sarif, json.loads(SARIF_SCHEMA.read_text()))
    assert {r["id"] for r in sarif["runs"][0]["tool"]["driver"]["rules"]} == ids
    assert len(sarif["runs"][0]["results"]) == len(ids)

    code, out, _ = invoke(world, "fs", target, "-f", "junit")
    suites = ET.fromstring(out.encode())
    cases = suites.findall("./testsuite/testcase")
    assert sorted(c.get("name") for c in cases) == ["Jinja2@2.10", "PyYAML@5.1"]
    assert all(c.find("failure") is not None for c in cases)

    code, out, _ = invoke(world, "fs", target, "-f", "cyclonedx-json")
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(out) is None
    bom = json.loads(out)
    assert {v["id"] for v in bom["vulnerabilities"]} == ids
    refs = {c["bom-ref"] for c in bom["components"]}
    assert all(a["ref"] in refs for v in bom["vulnerabilities"] for a in v["affects"])

    template = tmp_path / "t.txt"
    template.write_text("{% for v in vulnerabilities %}{{ v.id }}\n{% endfor %}total={{ summary.total }}\n")
    code, out, _ = invoke(world, "fs", target, "-f", "template", "--template", str(template))
    assert code == 0
    assert set(out.splitlines()[:-1]) == ids and out.splitlines()[-1] == f"total={len(ids)}"

    code, out, _ = invoke(world, "fs", target)
    assert code == 0
    assert "CVE-2019-10906" in out and f"Vulnerabilities: {len(ids)} (" in out and "2 packages (pypi 2)" in out

    report = tmp_path / "out.sarif"
    code, out, _ = invoke(world, "image", f"dir:{target}", "-f", "sarif", "-o", str(report))
    assert code == 0 and out == "" and json.loads(report.read_text())["version"] == "2.1.0"


def test_sbom_scan_finds_the_same(world: dict[str, Path], tmp_path: Path) -> None:
    sbom = tmp_path / "root.cdx.json"
    result = runner.invoke(app, ["sbom", f"dir:{world['root']}", "-f", "cyclonedx-json", "-o", str(sbom), "-q",
                                 "--cache-dir", str(world["cache"])])
    assert result.exit_code == 0
    code, out, _ = invoke(world, "sbom-scan", str(sbom), "-f", "json")
    assert code == 0
    direct = {v["id"] for v in scan_json(world)["vulnerabilities"]}
    assert {v["id"] for v in json.loads(out)["vulnerabilities"]} == direct


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--severity", "HIHG"], "--severity: unknown level HIHG"),
        (["--scanners", "vuln,malware"], "--scanners: unknown scanner malware"),
        (["-f", "template"], "--format template needs --template"),
        (["--vex", "/no/such.json"], "VEX file /no/such.json"),
        (["--ignorefile", "/no/such.yaml"], "ignore file /no/such.yaml"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(world: dict[str, Path], args: list[str], message: str) -> None:
    code, out, err = invoke(world, "fs", str(world["root"]), *args)
    assert code == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_missing_database_says_how_to_get_one(world: dict[str, Path], tmp_path: Path) -> None:
    result = runner.invoke(app, ["fs", str(world["root"]), "--cache-dir", str(tmp_path), "-q"])
    assert result.exit_code == 2
    assert "moat db update" in result.stderr and len(result.stderr.strip().splitlines()) == 1
