"""``moat compliance report`` as a user runs it: scanning corpus Dockerfiles, merging reports that
``moat config --format json`` really wrote, both output formats, and one-line errors on bad input.

The command group is registered on a local Typer app (``cli/main.py`` registers it for users). The
rules are added to the built-in registry for the test and picked by a template file, so what the
command reports does not depend on which built-in rules have landed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from corpus import CORPUS
from moat.checks import rule as rule_module
from moat.checks.document import Document, TargetKind
from moat.checks.rule import Hit, Rule, RuleContext
from moat.cli import compliance, config

try:  # click < 8.2 mixes stderr into stdout unless told not to
    runner = CliRunner(mix_stderr=False)  # type: ignore[call-arg]
except TypeError:
    runner = CliRunner()

DOCKERFILES = CORPUS / "misconfig" / "dockerfile" / "trivy-checks"
BAD = DOCKERFILES / "DS-0002-bad-1" / "Dockerfile"  # no USER: runs as root
GOOD = DOCKERFILES / "DS-0002-good-1" / "Dockerfile"  # USER foo


def _root_user(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    stage = doc.data["stages"][-1]
    users = [i for i in stage["instructions"] if i["cmd"] == "USER"]
    if not users:
        yield Hit(f"stage {stage['index']} never sets USER: the container runs as root", line=stage["line"])
    elif users[-1]["args"][0].split(":")[0] in ("root", "0"):
        yield Hit("the last USER is root", line=users[-1]["line"])


def _daemon_icc(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    if doc.data.get("icc", True):
        yield Hit("inter-container communication is on")


TEST_RULES = [
    Rule("TEST-DF-USER", "Image runs as a non-root user", "HIGH", (TargetKind.DOCKERFILE,), "risk: root in container",
         "Add a USER line:\n  USER 10001", "grep USER Dockerfile", _root_user, controls=("cis-docker-1.6:4.1",)),
    Rule("TEST-DH-ICC", "Restrict network traffic between containers", "MEDIUM", (TargetKind.DOCKER_HOST,),
         "risk: lateral movement", 'Set "icc": false in daemon.json', "docker info", _daemon_icc,
         controls=("cis-docker-1.6:2.2",)),
    Rule("TEST-DF-TRUST", "Content trust for Docker is enabled", "LOW", (TargetKind.DOCKERFILE,),
         "risk: unsigned images", "export DOCKER_CONTENT_TRUST=1", "echo $DOCKER_CONTENT_TRUST; expect 1", None,
         controls=("cis-docker-1.6:4.5",)),
]

TEMPLATE = """\
id: test-cis-docker
title: CIS Docker (test rules)
framework: cis-docker-1.6
select:
  rules: [TEST-DF-USER, TEST-DH-ICC, TEST-DF-TRUST]
controls:
  "4.1": Ensure that a user for the container has been created
  "4.5": Ensure Content trust for Docker is Enabled
"""


@pytest.fixture
def template(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    for item in TEST_RULES:
        monkeypatch.setitem(rule_module._REGISTRY, item.id, item)
    path = tmp_path / "cis-test.yaml"
    path.write_text(TEMPLATE)
    return str(path)


def app() -> typer.Typer:
    local = typer.Typer()
    compliance.register(local)
    config.register(local)
    return local


def invoke(*args: str) -> Any:
    return runner.invoke(app(), list(args))


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {control["id"]: control["status"] for control in report["controls"]}


def test_scan_paths_json(template: str) -> None:
    result = invoke("compliance", "report", "--template", template, str(BAD), str(GOOD))
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["schema"] == "moat.compliance/v1"
    assert report["template"] == {"id": "test-cis-docker", "title": "CIS Docker (test rules)",
                                  "framework": "cis-docker-1.6"}
    assert report["targets"] == [str(BAD), str(GOOD)]
    assert statuses(report) == {"2.2": "NOT_ASSESSED", "4.1": "FAIL", "4.5": "MANUAL"}
    user = next(c for c in report["controls"] if c["id"] == "4.1")
    [finding] = user["findings"]
    assert finding["location"]["file"] == str(BAD) and finding["location"]["line"] == 1
    assert finding["message"] == "stage 0 never sets USER: the container runs as root"
    assert user["rules"][0]["evaluated"] == 2 and user["rules"][0]["failures"] == 1
    assert report["summary"]["by_status"] == {"FAIL": 1, "NOT_ASSESSED": 1, "MANUAL": 1, "PASS": 0}


def test_merge_reports_that_moat_config_wrote(template: str, tmp_path: Path) -> None:
    good_json, bad_json = tmp_path / "good.json", tmp_path / "bad.json"
    for path, report in ((GOOD, good_json), (BAD, bad_json)):
        written = invoke("config", "--template", template, str(path), "--format", "json", "-o", str(report))
        assert written.exit_code == 0, written.stderr
    only_good = json.loads(invoke("compliance", "report", "-t", template, "--from", str(good_json)).stdout)
    assert statuses(only_good)["4.1"] == "PASS"
    both = invoke("compliance", "report", "-t", template, "--from", str(good_json), "--from", str(bad_json))
    assert both.exit_code == 0, both.stderr
    merged = json.loads(both.stdout)
    assert statuses(merged)["4.1"] == "FAIL"  # FAIL in one report wins over PASS in the other
    assert merged["sources"] == [str(good_json), str(bad_json)]
    assert merged["targets"] == [str(GOOD), str(BAD)]
    user = next(c for c in merged["controls"] if c["id"] == "4.1")
    assert user["findings"][0]["location"]["file"] == str(BAD)
    assert user["rules"][0]["remediation"] == "Add a USER line:\n  USER 10001"
    # a scan and a saved report together
    mixed = json.loads(invoke("compliance", "report", "-t", template, str(GOOD), "--from", str(bad_json)).stdout)
    assert statuses(mixed)["4.1"] == "FAIL"


def test_html_to_a_file(template: str, tmp_path: Path) -> None:
    out = tmp_path / "cis.html"
    result = invoke("compliance", "report", "-t", template, str(BAD), "--format", "html", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert "CIS Docker (test rules)" in page and "stage 0 never sets USER" in page
    assert "echo $DOCKER_CONTENT_TRUST; expect 1" in page  # the manual control's verification steps


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--template", "no-such-template", str(GOOD)], "unknown template 'no-such-template'"),
        (["--template", "{template}"], "give PATHs to scan, --from REPORT.json files to merge, or both"),
        (["--template", "{template}", "/nonexistent/dir"], "/nonexistent/dir: no such file or directory"),
        (["--template", "{template}", "--from", str(GOOD)], f"--from {GOOD}: not JSON"),
        (["--template", "{template}", "--from", "{sbom}"], 'not a Moat check report (no "checks" list'),
        (["--template", "{template}", "--from", "{bad_check}"], "checks[0]: status 'MAYBE' is not one of"),
        (["--template", "{template}", "--from", "/nonexistent.json"], "--from /nonexistent.json: No such file"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(template: str, tmp_path: Path, args: list[str], message: str) -> None:
    sbom = tmp_path / "sbom.json"
    sbom.write_text(json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.6", "components": []}))
    bad_check = tmp_path / "bad.json"
    bad_check.write_text(json.dumps({"checks": [{"rule_id": "X", "status": "MAYBE", "evaluated": 1}]}))
    values = {"template": template, "sbom": str(sbom), "bad_check": str(bad_check)}
    result = invoke("compliance", "report", *[arg.format(**values) for arg in args])
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("moat: error: ") and message in lines[0], result.stderr


def test_a_report_for_another_framework_is_merged_with_a_warning(template: str, tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    written = invoke("config", "--template", template, str(BAD), "--format", "json", "-o", str(other))
    assert written.exit_code == 0, written.stderr
    data = json.loads(other.read_text())
    data["template"]["framework"] = "pss"
    other.write_text(json.dumps(data))
    result = invoke("compliance", "report", "-t", template, "--from", str(other))
    assert result.exit_code == 0
    assert "written for framework pss" in result.stderr
    assert statuses(json.loads(result.stdout))["4.1"] == "FAIL"


CIS_DOCKER = "id: cis-docker\ntitle: CIS Docker\nframework: cis-docker-1.6\nselect: {frameworks: [cis-docker-1.6]}\n"


def test_a_host_report_and_a_repository_report_merge_into_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Built-in rules through the real commands: ``moat host`` on a small host tree (a daemon.json that
    turns inter-container traffic off) and ``moat config`` on a corpus Dockerfile, merged."""
    from moat.cli import host

    monkeypatch.delenv("DOCKER_HOST", raising=False)  # no engine: the host's files only
    template = tmp_path / "cis-docker.yaml"
    template.write_text(CIS_DOCKER)
    root = tmp_path / "root"
    (root / "etc" / "docker").mkdir(parents=True)
    (root / "etc" / "docker" / "daemon.json").write_text('{"icc": false, "live-restore": true}')
    local = typer.Typer()
    compliance.register(local)
    config.register(local)
    host.register(local)
    host_json, repo_json = tmp_path / "host.json", tmp_path / "repo.json"
    for args in (["host", "--root", str(root)], ["config", str(BAD)]):
        out = host_json if args[0] == "host" else repo_json
        done = runner.invoke(local, [*args, "--template", str(template), "--format", "json", "-o", str(out)])
        assert done.exit_code == 0, done.stderr
    reports = {}
    for name, sources in (("host", [host_json]), ("repo", [repo_json]), ("both", [host_json, repo_json])):
        args = ["compliance", "report", "-t", str(template)]
        for source in sources:
            args += ["--from", str(source)]
        done = runner.invoke(local, args)
        assert done.exit_code == 0, done.stderr
        reports[name] = json.loads(done.stdout)

    def by_kind(report: dict[str, Any], kinds: set[str]) -> list[dict[str, Any]]:
        """Automated controls whose rules all read one of ``kinds``."""
        return [c for c in report["controls"] if c["rules"] and all(
            not r["manual"] and set(r["targets"]) <= kinds for r in c["rules"])]

    host_controls = by_kind(reports["both"], {"docker-host"})
    assert host_controls
    # evaluated on the host, except where the host's files could not settle the item (no mount table in
    # the test tree for the partition checks): those rules say so and the control is not assessed
    assert sum(c["status"] in ("PASS", "FAIL") for c in host_controls) > len(host_controls) // 2
    for control in host_controls:
        if control["status"] not in ("PASS", "FAIL"):
            assert control["status"] == "NOT_ASSESSED"
            assert all(r["evaluated"] == 0 for r in control["rules"])
    assert all(c["status"] == "NOT_ASSESSED" for c in by_kind(reports["repo"], {"docker-host"}))
    icc = [c for c in host_controls if c["id"] == "2.2"]
    assert [c["status"] for c in icc] == ["PASS"]  # daemon.json sets icc false
    assert statuses(reports["both"])["4.1"] == "FAIL" == statuses(reports["repo"])["4.1"]
    assert statuses(reports["host"])["4.1"] == "NOT_ASSESSED"
    counts = {name: r["summary"]["by_status"]["NOT_ASSESSED"] for name, r in reports.items()}
    assert counts["both"] < min(counts["host"], counts["repo"])
