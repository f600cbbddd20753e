"""``moat host`` against real engines: podman's Docker API service running real containers, and this
machine itself.

Containers are created and started through the Engine API (as ``docker run`` does), each with the
settings one group of CIS section 5 items is about; the collector then reads the podman socket, and the
findings per container must be exactly those settings' items. The podman service is the fixture from
tests/image (rootful, runc, private store in tmp, ``--network none`` or ``host`` only).
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from typer.testing import CliRunner

from image.test_engine_source import podman_socket  # noqa: F401  (the fixture, reused as is)
from moat.checks.engine import evaluate
from moat.checks.rule import builtin_rules, rules_for
from moat.checks.targets.docker_host import collect_docker_host
from moat.cli.host import register

pytestmark = [pytest.mark.images, pytest.mark.xdist_group("images")]

IMAGE = "moat/alpine:alpine"
SLEEP = ["sleep", "600"]


class EngineClient:
    def __init__(self, socket_url: str) -> None:
        self.client = httpx.Client(transport=httpx.HTTPTransport(uds=socket_url.removeprefix("unix://")),
                                   base_url="http://engine/v1.41", timeout=60)
        self.created: list[str] = []

    def run(self, name: str, body: dict[str, Any]) -> str:
        created = self.client.post("/containers/create", params={"name": name}, json={"Image": IMAGE, **body})
        assert created.status_code == 201, created.text
        identifier = created.json()["Id"]
        self.created.append(identifier)
        started = self.client.post(f"/containers/{identifier}/start")
        assert started.status_code == 204, started.text
        state = self.client.get(f"/containers/{identifier}/json").json()["State"]
        assert state["Running"], f"{name} is not running: {state}"
        return str(identifier)

    def close(self) -> None:
        for identifier in self.created:
            self.client.delete(f"/containers/{identifier}", params={"force": "true", "v": "true"})
        self.client.close()


@pytest.fixture(scope="module")
def engine(podman_socket: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:  # noqa: F811
    """Four running containers, removed (and their processes stopped) before the service goes."""
    scratch = tmp_path_factory.mktemp("engine-files")
    fake_engine = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    fake_engine.bind(str(scratch / "engine.sock"))
    (scratch / "shared").mkdir()
    client = EngineClient(podman_socket)
    try:
        tagged = client.client.post(f"/images/{IMAGE}/tag", params={"repo": "moat/alpine", "tag": "latest"})
        assert tagged.status_code == 201, tagged.text
        client.run("hardened", {
            "Cmd": SLEEP,
            "Healthcheck": {"Test": ["CMD", "true"], "Interval": 30_000_000_000},
            "HostConfig": {
                "NetworkMode": "none", "ReadonlyRootfs": True, "Memory": 64 * 1024 * 1024, "PidsLimit": 64,
                "SecurityOpt": ["no-new-privileges"], "CapDrop": ["ALL"], "CpuShares": 512,
                "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3},
            },
        })
        client.run("privileged", {
            "Cmd": SLEEP,
            "HostConfig": {
                "NetworkMode": "none", "Privileged": True,
                "Binds": [f"{scratch}/engine.sock:/var/run/docker.sock", "/etc:/host-etc:ro"],
                "ReadonlyRootfs": True, "Memory": 64 * 1024 * 1024, "PidsLimit": 64, "CpuShares": 512,
                "SecurityOpt": ["no-new-privileges"], "CapDrop": ["ALL"],
            },
        })
        client.run("loose", {
            "Image": "moat/alpine:latest",
            "Cmd": SLEEP,
            "HostConfig": {
                "NetworkMode": "host", "PidMode": "host", "UTSMode": "host",
                "CapAdd": ["SYS_ADMIN"], "SecurityOpt": ["seccomp=unconfined"],
                "RestartPolicy": {"Name": "always"},
                "Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/hostnull", "CgroupPermissions": "r"}],
                "Binds": [f"{scratch}/shared:/mnt/shared:rshared"],
            },
        })
        client.run("sshd", {
            # a process named sshd (the test image has no OpenSSH): a script at /tmp/sshd run as the main process
            "Cmd": ["sh", "-c", "printf '#!/bin/sh\\nsleep 600\\n' > /tmp/sshd && chmod +x /tmp/sshd && "
                                "exec /tmp/sshd -D"],
            "HostConfig": {"NetworkMode": "none"},
        })
        yield podman_socket
    finally:
        client.close()
        fake_engine.close()


def findings_by_container(socket_url: str, root: Path) -> dict[str, set[str]]:
    scan = collect_docker_host(str(root), socket_url)
    rules = rules_for(["docker-host", "docker-container"], builtin_rules().values())
    run = evaluate(scan.documents, rules)
    found: dict[str, set[str]] = {}
    for finding in run.findings:
        if finding.status == "FAIL" and finding.target_kind == "docker-container":
            found.setdefault(finding.object, set()).add(finding.rule_id)
    return found


def test_collector_reads_every_running_container(engine: str, tmp_path: Path) -> None:
    scan = collect_docker_host(str(tmp_path), engine)
    assert scan.engine == engine.removeprefix("unix://")
    host, *containers = scan.documents
    assert host.kind == "docker-host"
    assert host.data["info"]["Swarm"]["LocalNodeState"] == "inactive"
    assert host.data["version"]["Components"][0]["Name"] == "Podman Engine"
    assert sorted(doc.name for doc in containers) == ["hardened", "loose", "privileged", "sshd"]
    by_name = {doc.name: doc for doc in containers}
    assert by_name["privileged"].data["HostConfig"]["Privileged"] is True
    assert by_name["hardened"].data["HostConfig"]["PidsLimit"] == 64
    assert all(doc.facts["top"]["Processes"] for doc in containers)


def test_findings_per_container(engine: str, tmp_path: Path) -> None:
    found = findings_by_container(engine, tmp_path)
    # podman reports its default ulimits (containers.conf) on every container: 5.19 fires everywhere.
    assert found["hardened"] == {"MOAT-DC-019"}
    # --privileged overrides --cap-drop ALL (podman reports only SYS_RESOURCE dropped): 5.4 fires too.
    assert found["privileged"] == {"MOAT-DC-004", "MOAT-DC-005", "MOAT-DC-006", "MOAT-DC-019", "MOAT-DC-027",
                                   "MOAT-DC-032"}
    assert found["loose"] == {
        "MOAT-DC-004",  # SYS_ADMIN added, nothing dropped
        "MOAT-DC-010", "MOAT-DC-016", "MOAT-DC-021",  # host network, PID, UTS namespaces
        "MOAT-DC-011", "MOAT-DC-012", "MOAT-DC-013",  # no memory limit, default CPU shares, writable root
        "MOAT-DC-015",  # restart always
        "MOAT-DC-018",  # /dev/null passed through
        "MOAT-DC-019",
        "MOAT-DC-020",  # rshared bind
        "MOAT-DC-022",  # seccomp unconfined
        "MOAT-DC-026",  # no no-new-privileges
        "MOAT-DC-027",  # no health check
        "MOAT-DC-028",  # moat/alpine:latest
    }
    assert "MOAT-DC-007" in found["sshd"]
    assert not {rid for ids in found.values() for rid in ids if rid == "MOAT-DC-007"} - set(found["sshd"])
    assert all("MOAT-DC-007" not in found[name] for name in ("hardened", "privileged", "loose"))


def test_finding_messages_name_the_container_and_the_setting(engine: str, tmp_path: Path) -> None:
    scan = collect_docker_host(str(tmp_path), engine)
    run = evaluate(scan.documents, rules_for(["docker-container"], builtin_rules().values()))
    messages: dict[tuple[str, str], str] = {}
    for finding in run.findings:
        if finding.status == "FAIL":
            messages.setdefault((finding.rule_id, finding.object), finding.message)
    assert messages[("MOAT-DC-005", "privileged")] == 'container "privileged" runs privileged'
    assert messages[("MOAT-DC-032", "privileged")].startswith('container "privileged" mounts the engine socket ')
    assert messages[("MOAT-DC-032", "privileged")].endswith("/engine.sock at /var/run/docker.sock")
    assert messages[("MOAT-DC-006", "privileged")] == 'container "privileged" mounts host directory /etc (read-only) ' \
                                                      "at /host-etc"
    assert messages[("MOAT-DC-004", "loose")] == 'container "loose" adds capability SYS_ADMIN'
    assert messages[("MOAT-DC-028", "loose")] == 'container "loose" runs image docker.io/moat/alpine:latest by the ' \
                                                 "latest tag"
    assert messages[("MOAT-DC-007", "sshd")].startswith('container "sshd" runs sshd (')


def cli() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.command()
    def version() -> None:  # a second command keeps typer from collapsing the app into `host`
        """Unused."""

    return app


def test_moat_host_cli_gate_and_formats(engine: str, tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["host", "--root", str(tmp_path), "--docker-socket", engine]
    sarif_out = tmp_path / "host.sarif"
    gated = runner.invoke(cli(), [*args, "--severity", "CRITICAL", "--exit-code", "4", "--format", "sarif",
                                  "-o", str(sarif_out)])
    assert gated.exit_code == 4, gated.output
    sarif = json.loads(sarif_out.read_text())
    assert {r["ruleId"] for r in sarif["runs"][0]["results"]} == {"MOAT-DC-005", "MOAT-DC-032"}

    report = runner.invoke(cli(), [*args, "--format", "json", "--include-manual"])
    assert report.exit_code == 0, report.output
    data = json.loads(report.output)
    assert data["scan_kind"] == "host"
    statuses = {c["rule_id"]: c["status"] for c in data["checks"]}
    assert statuses["MOAT-DC-005"] == "FAIL" and statuses["MOAT-DC-001"] == "PASS"
    assert statuses["MOAT-DC-023"] == "MANUAL" and statuses["MOAT-DH-020"] == "MANUAL"
    assert len([rid for rid in statuses if rid.startswith(("MOAT-DH-", "MOAT-DC-"))]) == 94

    junit = runner.invoke(cli(), [*args, "--format", "junit", "--severity", "HIGH,CRITICAL"])
    assert junit.exit_code == 0 and "MOAT-DC-005" in junit.output


def test_moat_host_on_this_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine runs no dockerd: the audit still completes from files, and says the engine is missing."""
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    result = CliRunner().invoke(cli(), ["host", "--root", "/", "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["misconfigurations"], "expected findings on a host with no Docker hardening"
    assert all(f["rule_id"].startswith(("MOAT-DH-", "MOAT-DC-")) for f in data["misconfigurations"])
    assert any(f["rule_id"] == "MOAT-DH-001" for f in data["misconfigurations"])
    if os.path.exists("/var/run/docker.sock"):  # a machine that does run Docker is audited through it
        assert data["target"] == "/ (engine unix:///var/run/docker.sock)"
    else:
        assert data["target"] == "/"
        assert any("no Docker engine at /var/run/docker.sock" in w for w in data["warnings"])


def test_moat_host_bad_input_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "etc/docker").mkdir(parents=True)
    (tmp_path / "etc/docker/daemon.json").write_text("{not json")
    result = CliRunner().invoke(cli(), ["host", "--root", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"moat: error: {tmp_path}/etc/docker/daemon.json: not valid JSON (line 1: Expecting property name enclosed in "
        "double quotes)"
    ]
