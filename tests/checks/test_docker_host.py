"""CIS Docker 1.6 sections 1-3 on real host trees: a --root built in tmp the way a Docker host lays its
files out (systemd units with drop-ins and environment files, daemon.json, audit rules, fstab, a unix
socket, certificates with real owners and modes), collected by moat.checks.targets.docker_host and
evaluated by the built-in rules. Also: every CIS item of sections 1, 2, 3 and 5 maps to exactly one rule.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import socket
import socketserver
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from corpus import SHARED
from moat.checks.engine import evaluate
from moat.checks.rule import builtin_rules, rules_for
from moat.checks.targets.docker_host import (
    HostRoot,
    audit_watches,
    collect_docker_host,
    effective_settings,
    parse_dockerd_args,
)
from moat.cli.host import register
from moat.errors import MoatError, ParseError
from moat.model import Misconfiguration

BENCHMARK_IDS = SHARED / "corpus" / "benchmarks" / "docker-bench-security-check-ids.json"

PASSWD = """\
root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
alice:x:1000:1000:Alice:/home/alice:/bin/bash
bob:x:1001:999:Bob:/home/bob:/bin/bash
"""
GROUP = """\
root:x:0:
daemon:x:1:
alice:x:1000:
docker:x:999:alice
"""
SERVICE = """\
[Unit]
Description=Docker Application Container Engine
After=network-online.target docker.socket

[Service]
Type=notify
EnvironmentFile=-/etc/default/docker
ExecStart=/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock $DOCKER_OPTS
ExecReload=/bin/kill -s HUP $MAINPID
"""
SOCKET_UNIT = """\
[Socket]
ListenStream=/run/docker.sock
SocketMode=0660
SocketUser=root
SocketGroup=docker
"""
HARDENED_JSON = {
    "icc": False,
    "log-level": "info",
    "userns-remap": "default",
    "authorization-plugins": ["opa-docker-authz"],
    "log-driver": "syslog",
    "log-opts": {"syslog-address": "tcp://logs.example.com:514"},
    "no-new-privileges": True,
    "live-restore": True,
    "userland-proxy": False,
    "default-ulimits": {"nofile": {"Name": "nofile", "Hard": 64000, "Soft": 64000}},
}
AUDIT_RULES = """\
## Docker (CIS 1.1.x)
-w /usr/bin/dockerd -k docker
-w /run/containerd -k docker
-w /var/lib/docker -k docker
-w /etc/docker -k docker
-w /lib/systemd/system/docker.service -k docker
-a always,exit -F path=/run/containerd/containerd.sock -F perm=wa -k docker
-w /lib/systemd/system/docker.socket -k docker
-w /etc/default/docker -k docker
-a always,exit -F dir=/usr/bin -F perm=wa -k binaries
"""


# ----------------------------------------------------------------------------------------------
# Building host trees


class Host:
    """A Docker host's root file system in tmp; each method lays out one part as a real host has it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._servers: list[socket.socket] = []
        for directory in ("etc/docker", "usr/lib/systemd/system", "usr/bin", "run/containerd", "var/lib/docker",
                          "etc/systemd/system", "etc/audit/rules.d", "etc/default"):
            (root / directory).mkdir(parents=True, exist_ok=True)
        os.symlink("usr/lib", root / "lib")  # usrmerge: /lib/systemd/system is /usr/lib/systemd/system
        (root / "var/run").symlink_to("../run")
        self.write("etc/passwd", PASSWD)
        self.write("etc/group", GROUP)
        self.write("etc/hostname", "dockerhost1\n")
        self.write("usr/lib/systemd/system/docker.service", SERVICE, 0o644)
        self.write("usr/lib/systemd/system/docker.socket", SOCKET_UNIT, 0o644)
        self.write("usr/bin/dockerd", "#!/bin/sh\n", 0o755)
        self.write("usr/bin/runc", "#!/bin/sh\n", 0o755)
        self.write("usr/bin/containerd", "#!/bin/sh\n", 0o755)
        self.write("etc/fstab", "UUID=1 / ext4 defaults 0 1\n/dev/vg0/docker /var/lib/docker ext4 nodev 0 2\n")
        self.socket("run/docker.sock", 0o660, gid=999)
        self.socket("run/containerd/containerd.sock", 0o660)

    def write(self, relative: str, text: str, mode: int = 0o644, uid: int = 0, gid: int = 0) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        os.chmod(path, mode)
        os.chown(path, uid, gid)
        return path

    def daemon_json(self, settings: dict[str, object], mode: int = 0o644) -> Path:
        return self.write("etc/docker/daemon.json", json.dumps(settings, indent=2) + "\n", mode)

    def socket(self, relative: str, mode: int, uid: int = 0, gid: int = 0) -> None:
        """A real listening unix socket. Bound under a short directory (the 108-byte address limit), then
        moved into the tree: the file keeps being a socket."""
        path = self.root / relative
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        short = Path(tempfile.mkdtemp(prefix="moat-sock-", dir="/tmp"))
        server.bind(str(short / "s"))
        os.rename(short / "s", path)
        short.rmdir()
        self._servers.append(server)
        os.chmod(path, mode)
        os.chown(path, uid, gid)

    def harden(self) -> None:
        self.daemon_json(HARDENED_JSON)
        self.write("etc/audit/rules.d/docker.rules", AUDIT_RULES)

    def close(self) -> None:
        for server in self._servers:
            server.close()


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    built = Host(tmp_path / "root")
    yield built
    built.close()


def run_rules(root: Path, **params: object) -> list[Misconfiguration]:
    scan = collect_docker_host(str(root))
    rules = rules_for(["docker-host"], builtin_rules().values())
    return evaluate(scan.documents, rules, params=params).findings


def failures(root: Path, **params: object) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for finding in run_rules(root, **params):
        if finding.status == "FAIL":
            found.setdefault(finding.rule_id, []).append(finding.message)
    return found


# ----------------------------------------------------------------------------------------------
# The benchmark listing: one rule per item


def benchmark_items(sections: tuple[str, ...]) -> dict[str, str]:
    """Item id -> title for the listed sections; headings (ids with items below them) are not items."""
    listing = json.loads(BENCHMARK_IDS.read_text())
    ids = {check["id"]: check["title"] for section in listing["sections"] for check in section["checks"]}
    chosen = {i: t for i, t in ids.items() if i.split(".")[0] in sections}
    return {i: t for i, t in chosen.items() if not any(other.startswith(i + ".") for other in ids)}


def test_every_cis_item_of_sections_1_2_3_5_has_exactly_one_rule() -> None:
    """Among the rules that audit a running host and its containers (compose rules may map section 5 too)."""
    items = benchmark_items(("1", "2", "3", "5"))
    assert len(items) == 94  # 20 + 18 + 24 + 32 items in the listing
    mapped: dict[str, list[str]] = {}
    runtime_rules = rules_for(["docker-host", "docker-container"], builtin_rules().values())
    for item in runtime_rules:
        for control in item.controls:
            framework, _, cis_id = control.partition(":")
            if framework == "cis-docker-1.6" and cis_id.split(".")[0] in ("1", "2", "3", "5"):
                mapped.setdefault(cis_id, []).append(item.id)
    assert sorted(mapped) == sorted(items), set(mapped) ^ set(items)
    doubled = {cis_id: ids for cis_id, ids in mapped.items() if len(ids) != 1}
    assert doubled == {}
    ours = [r for r in builtin_rules().values() if r.id.startswith(("MOAT-DH-", "MOAT-DC-"))]
    assert len(ours) == 94
    manual = sorted(next(c for c in r.controls if c.startswith("cis-docker")) for r in ours if r.manual)
    assert manual == sorted(f"cis-docker-1.6:{i}" for i in ("1.2.1", "1.2.2", "2.1", "2.17", "5.9", "5.23", "5.24"))


def test_every_rule_names_its_docker_bench_check() -> None:
    for item in builtin_rules().values():
        if item.id.startswith(("MOAT-DH-", "MOAT-DC-")):
            cis = next(c.split(":", 1)[1] for c in item.controls if c.startswith("cis-docker-1.6:"))
            assert item.aliases[0] == "check_" + cis.replace(".", "_"), item.id
            assert all(ref.startswith("https://") for ref in item.references)


# ----------------------------------------------------------------------------------------------
# Collection


def test_collector_reads_unit_dropins_env_files_and_daemon_json(host: Host) -> None:
    host.harden()
    host.write("etc/default/docker", 'DOCKER_OPTS="--iptables=false --insecure-registry registry.local:5000"\n')
    host.write("etc/systemd/system/docker.service.d/override.conf",
               "[Service]\nExecStart=\nExecStart=/usr/bin/dockerd -H fd:// \\\n  -H tcp://0.0.0.0:2375 $DOCKER_OPTS\n")
    doc = collect_docker_host(str(host.root)).documents[0]
    data = doc.data
    assert doc.kind == "docker-host" and doc.name == "dockerhost1"
    assert data["dockerd_args"] == ["/usr/bin/dockerd", "-H", "fd://", "-H", "tcp://0.0.0.0:2375",
                                    "--iptables=false", "--insecure-registry", "registry.local:5000"]
    assert data["dockerd_args_source"] == "/usr/lib/systemd/system/docker.service"
    assert data["settings"]["iptables"] == {"value": False, "source": "/usr/lib/systemd/system/docker.service"}
    assert data["settings"]["icc"] == {"value": False, "source": "/etc/docker/daemon.json"}
    assert data["settings"]["hosts"]["value"] == ["fd://", "tcp://0.0.0.0:2375"]
    assert data["docker_group"] == {"name": "docker", "gid": 999, "members": ["alice", "bob"]}
    sock = data["files"]["/var/run/docker.sock"]
    assert sock == {"exists": True, "resolved": "/run/docker.sock", "type": "socket", "uid": 0, "gid": 999,
                    "owner": "root", "group": "docker", "mode": "0660", "roles": ["docker-socket"]}
    assert {"/usr/bin/dockerd", "/var/lib/docker"} <= set(audit_paths(data))
    written = (host.root / "etc/docker/daemon.json").read_text().splitlines()
    assert doc.line_of(("daemon_json", "live-restore")) == 1 + written.index('  "live-restore": true,')
    assert {m["mountpoint"] for m in data["mounts"] if m["from"] == "/etc/fstab"} == {"/", "/var/lib/docker"}


def audit_paths(data: dict[str, object]) -> list[str]:
    return [w for entry in data["audit_rules"] for w in entry["watches"]]  # type: ignore[attr-defined]


def test_running_dockerd_flags_win_over_the_unit(host: Host) -> None:
    (host.root / "proc/4242").mkdir(parents=True)
    (host.root / "proc/4242/cmdline").write_bytes(b"/usr/bin/dockerd\0--icc=false\0--config-file\0/etc/dj.json\0")
    (host.root / "proc/17").mkdir()
    (host.root / "proc/17/cmdline").write_bytes(b"/sbin/init\0")
    host.write("etc/dj.json", '{"live-restore": true}', 0o600)
    data = collect_docker_host(str(host.root)).documents[0].data
    assert data["dockerd_process"] == {"pid": 4242, "args": ["/usr/bin/dockerd", "--icc=false", "--config-file",
                                                             "/etc/dj.json"]}
    assert data["daemon_json_path"] == "/etc/dj.json"
    assert data["settings"]["icc"]["source"] == "/proc/4242/cmdline"
    assert data["settings"]["live-restore"] == {"value": True, "source": "/etc/dj.json"}
    assert data["files"]["/etc/dj.json"]["mode"] == "0600"


def test_dockerd_is_found_among_many_processes(host: Host) -> None:
    (host.root / "proc").mkdir()
    for pid in range(1, 6001):  # kernel threads and exited processes: no readable cmdline
        (host.root / f"proc/{pid}").mkdir()
    (host.root / "proc/6001").mkdir()
    (host.root / "proc/6001/cmdline").write_bytes(b"/usr/bin/dockerd\0--iptables=false\0")
    data = collect_docker_host(str(host.root)).documents[0].data
    assert data["dockerd_process"] == {"pid": 6001, "args": ["/usr/bin/dockerd", "--iptables=false"]}


def test_dockerd_flag_forms() -> None:
    args = ["dockerd", "--icc", "false", "-Hunix:///x.sock", "--host=tcp://1.2.3.4:2376", "-D", "--log-level", "warn",
            "--tlsverify=false", "--live-restore=maybe", "--storage-opt", "dm.basesize=20G", "positional"]
    assert parse_dockerd_args(args) == {
        "icc": True,  # a bare boolean flag is true; "false" is a separate (ignored) word, as dockerd reads it
        "hosts": ["unix:///x.sock", "tcp://1.2.3.4:2376"],
        "debug": True,
        "log-level": "warn",
        "tlsverify": False,
        "storage-opts": ["dm.basesize=20G"],
    }
    merged = effective_settings({"hosts": ["unix:///var/run/docker.sock"], "debug": False}, ["-H", "tcp://h:2376"],
                                "flags", "daemon.json")
    assert merged["hosts"] == {"value": ["unix:///var/run/docker.sock", "tcp://h:2376"],
                               "source": "daemon.json and flags"}
    assert merged["debug"] == {"value": False, "source": "daemon.json"}


def test_audit_rule_forms() -> None:
    assert audit_watches("-w /etc/docker -p wa -k docker") == ["/etc/docker"]
    assert audit_watches("-a always,exit -F arch=b64 -F path=/usr/bin/runc -F perm=x") == ["/usr/bin/runc"]
    assert audit_watches("-a exit,always -F dir=/var/lib/docker/ -k d") == ["/var/lib/docker"]
    assert audit_watches("-D") == []


def test_symlinks_never_leave_the_root(tmp_path: Path, host: Host) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "daemon.json").write_text('{"icc": false}')
    os.symlink(str(outside / "daemon.json"), host.root / "etc/docker/daemon.json")  # absolute: the root's own path
    os.symlink("../../../../../../../../outside", host.root / "etc/default/docker")
    data = collect_docker_host(str(host.root)).documents[0].data
    assert data["daemon_json"] is None
    assert data["files"]["/etc/docker/daemon.json"]["exists"] is False
    assert data["files"]["/etc/default/docker"]["exists"] is False
    resolver = HostRoot(str(host.root))
    assert resolver.resolve("/var/run/../../../etc/hostname") == "/etc/hostname"
    os.symlink("loop", host.root / "loop")
    assert resolver.resolve("/loop/x") is None


def test_hostile_daemon_json_is_a_one_line_error_naming_it(host: Host) -> None:
    host.write("etc/docker/daemon.json", '{"icc": false,\n "log-level": }\n')
    with pytest.raises(ParseError, match=r"daemon\.json: not valid JSON \(line 2"):
        collect_docker_host(str(host.root))
    host.write("etc/docker/daemon.json", "[" * 100_000 + "]" * 100_000)
    with pytest.raises(ParseError, match=r"daemon\.json: (nested too deeply|expected a JSON object)"):
        collect_docker_host(str(host.root))
    host.write("etc/docker/daemon.json", '{"x": "' + "a" * 2_000_000 + '"}')
    with pytest.raises(ParseError, match=r"daemon\.json: larger than 1024 KiB"):
        collect_docker_host(str(host.root))
    host.write("etc/docker/daemon.json", "[1, 2]")
    with pytest.raises(ParseError, match="expected a JSON object"):
        collect_docker_host(str(host.root))


def test_a_fifo_in_place_of_a_file_is_not_read(host: Host) -> None:
    os.mkfifo(host.root / "etc/docker/daemon.json")
    result: list[object] = []
    reader = threading.Thread(target=lambda: result.append(collect_docker_host(str(host.root))), daemon=True)
    reader.start()
    reader.join(timeout=30)
    assert result, "collecting a root with a FIFO for daemon.json did not return"
    assert result[0].documents[0].data["daemon_json"] is None  # type: ignore[attr-defined]


def test_missing_root_and_socket_are_clear_errors(tmp_path: Path, host: Host) -> None:
    with pytest.raises(MoatError, match=r"--root .*: no such directory"):
        collect_docker_host(str(tmp_path / "absent"))
    with pytest.raises(MoatError, match="no engine socket"):
        collect_docker_host(str(host.root), f"unix://{tmp_path}/none.sock")
    with pytest.raises(MoatError, match="only unix://"):
        collect_docker_host(str(host.root), "tcp://127.0.0.1:2375")


def test_a_stale_default_socket_is_a_warning_not_a_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A socket file left by a stopped daemon: the audit of this machine goes on from its files."""
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    short = Path(tempfile.mkdtemp(prefix="moat-stale-", dir="/tmp"))
    stale.bind(str(short / "docker.sock"))
    stale.close()  # the file stays; connecting is refused
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setattr("moat.checks.targets.docker_host.DEFAULT_SOCKET", str(short / "docker.sock"))
    try:
        scan = collect_docker_host("/")
        assert scan.engine is None and scan.documents[0].data["info"] is None
        assert len(scan.warnings) == 1 and "GET /info failed" in scan.warnings[0]
        with pytest.raises(MoatError, match="GET /info failed"):
            collect_docker_host("/", f"unix://{short}/docker.sock")  # named explicitly: an error
    finally:
        shutil.rmtree(short)


def test_a_copied_tree_does_not_ask_this_machines_engine(host: Host, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    scan = collect_docker_host(str(host.root))
    assert scan.engine is None and scan.warnings == []
    assert scan.documents[0].data["info"] is None


# ----------------------------------------------------------------------------------------------
# Section 1


def test_hardened_host_passes_every_automated_host_rule(host: Host) -> None:
    host.harden()
    assert failures(host.root, trusted_docker_users=["alice", "bob"]) == {}


def test_separate_partition(host: Host) -> None:
    host.harden()
    assert "MOAT-DH-001" not in failures(host.root)
    host.write("etc/fstab", "UUID=1 / ext4 defaults 0 1\n")
    assert failures(host.root)["MOAT-DH-001"] == [
        "/var/lib/docker is not a mount point of its own (not in /proc/mounts or /etc/fstab)"
    ]
    host.daemon_json({**HARDENED_JSON, "data-root": "/srv/docker"})
    host.write("etc/fstab", "/dev/sdb1 /srv/docker xfs defaults 0 2\n")
    assert "MOAT-DH-001" not in failures(host.root)


def test_partition_is_not_assessed_without_mount_tables(host: Host) -> None:
    (host.root / "etc/fstab").unlink()  # a copied /etc without fstab, and no /proc
    scan = collect_docker_host(str(host.root))
    run = evaluate(scan.documents, rules_for(["docker-host"], builtin_rules().values()))
    assert run.outcomes["MOAT-DH-001"].status == "NOT_APPLICABLE"
    assert "MOAT-DH-001" not in {f.rule_id for f in run.findings}


def test_docker_group_members_must_be_trusted(host: Host) -> None:
    host.harden()
    found = failures(host.root)["MOAT-DH-002"]
    assert found == [
        'user "alice" can control the Docker daemon (member of group "docker") and is not listed in '
        "trusted_docker_users",
        'user "bob" can control the Docker daemon (member of group "docker") and is not listed in '
        "trusted_docker_users",
    ]
    assert len(failures(host.root, trusted_docker_users=["alice"])["MOAT-DH-002"]) == 1


def test_audit_watches(host: Host) -> None:
    host.harden()
    found = failures(host.root)
    assert not [rid for rid in found if rid in {f"MOAT-DH-{n:03d}" for n in range(3, 19)}]
    host.write("etc/audit/rules.d/docker.rules", "-w /etc/docker -k docker\n")
    found = failures(host.root)
    assert "MOAT-DH-006" not in found and "MOAT-DH-011" not in found  # /etc/docker covers daemon.json
    assert found["MOAT-DH-003"] == [
        "no audit rule watches /usr/bin/dockerd (the Docker daemon binary)"
    ]
    assert found["MOAT-DH-007"] == [
        "no audit rule watches /usr/lib/systemd/system/docker.service (the docker.service unit)"
    ]
    for rule_id in ("MOAT-DH-004", "MOAT-DH-005", "MOAT-DH-008", "MOAT-DH-009", "MOAT-DH-014", "MOAT-DH-018"):
        assert rule_id in found
    # Paths this host does not have are not asked for.
    for rule_id in ("MOAT-DH-010", "MOAT-DH-012", "MOAT-DH-013", "MOAT-DH-015", "MOAT-DH-016", "MOAT-DH-017"):
        assert rule_id not in found
    (host.root / "etc/audit/rules.d/docker.rules").unlink()
    assert failures(host.root)["MOAT-DH-006"] == ["no audit rules found, so nothing watches /etc/docker"]


# ----------------------------------------------------------------------------------------------
# Section 2


@pytest.mark.parametrize(
    ("rule_id", "change", "message"),
    [
        ("MOAT-DH-022", {"icc": True}, "icc is True"),
        ("MOAT-DH-023", {"log-level": "debug"}, "log-level is 'debug', not info"),
        ("MOAT-DH-024", {"iptables": False}, "iptables is false: Docker does not manage its firewall rules"),
        ("MOAT-DH-025", {"insecure-registries": ["10.1.0.0/16", "127.0.0.0/8"]},
         "insecure registries allowed: 10.1.0.0/16"),
        ("MOAT-DH-026", {"storage-driver": "aufs"}, "storage-driver is aufs"),
        ("MOAT-DH-027", {"hosts": ["unix:///var/run/docker.sock", "tcp://0.0.0.0:2376"], "tlsverify": True,
                         "tlscacert": "/etc/docker/tls/ca.pem"},
         "the daemon listens on tcp://0.0.0.0:2376 without tlscert, tlskey"),
        ("MOAT-DH-030", {"cgroup-parent": "/custom"}, "cgroup-parent is '/custom': confirm containers belong under it"),
        ("MOAT-DH-031", {"storage-opts": ["dm.basesize=50G"]}, "base device size changed: dm.basesize=50G"),
        ("MOAT-DH-034", {"no-new-privileges": False}, "no-new-privileges is False"),
        ("MOAT-DH-035", {"live-restore": False}, "live-restore is False"),
        ("MOAT-DH-036", {"userland-proxy": True}, "userland-proxy is True"),
        ("MOAT-DH-038", {"experimental": True}, "experimental features are enabled"),
        ("MOAT-DH-033", {"log-driver": "json-file"}, "log-driver is 'json-file': logs stay on this host"),
    ],
)
def test_daemon_json_settings(host: Host, rule_id: str, change: dict[str, object], message: str) -> None:
    host.harden()
    host.daemon_json({**HARDENED_JSON, **change})
    if "hosts" in change:  # dockerd refuses hosts in both places: the admin drops -H fd:// from the unit
        host.write("etc/systemd/system/docker.service.d/hosts.conf",
                   "[Service]\nExecStart=\nExecStart=/usr/bin/dockerd\n")
    found = run_rules(host.root, trusted_docker_users=["alice", "bob"])
    assert [(f.rule_id, f.message) for f in found if f.status == "FAIL"] == [(rule_id, message)]
    assert found[0].object == "/etc/docker/daemon.json"
    key = next(iter(change))
    written = (host.root / "etc/docker/daemon.json").read_text().splitlines()
    assert found[0].line == 1 + next(i for i, line in enumerate(written) if line.startswith(f'  "{key}":'))


@pytest.mark.parametrize(
    ("rule_id", "removed", "message"),
    [
        ("MOAT-DH-022", "icc", "icc is not set (dockerd defaults it to true)"),
        ("MOAT-DH-028", "default-ulimits", "default-ulimits is not set"),
        ("MOAT-DH-029", "userns-remap", "userns-remap is not set"),
        ("MOAT-DH-032", "authorization-plugins", "authorization-plugins is not set"),
        ("MOAT-DH-033", "log-driver", "log-driver is not set (the daemon uses 'json-file')"),
        ("MOAT-DH-034", "no-new-privileges", "no-new-privileges is not set daemon-wide"),
        ("MOAT-DH-035", "live-restore", "live-restore is not set"),
        ("MOAT-DH-036", "userland-proxy", "userland-proxy is not set (dockerd defaults it to true)"),
    ],
)
def test_daemon_defaults_that_fail(host: Host, rule_id: str, removed: str, message: str) -> None:
    host.harden()
    host.daemon_json({k: v for k, v in HARDENED_JSON.items() if k != removed})
    assert failures(host.root, trusted_docker_users=["alice", "bob"]) == {rule_id: [message]}


def test_flags_count_as_much_as_daemon_json(host: Host) -> None:
    """dockerd merges its flags with daemon.json: a setting made only on the command line satisfies a rule,
    and a bad flag fails it, named with the unit it came from."""
    host.harden()
    host.daemon_json({k: v for k, v in HARDENED_JSON.items() if k not in ("icc", "live-restore")})
    host.write("etc/default/docker", "DOCKER_OPTS='--icc=false --live-restore -D -H tcp://0.0.0.0:2375'\n")
    found = run_rules(host.root, trusted_docker_users=["alice", "bob"])
    fails = {(f.rule_id, f.message, f.object) for f in found if f.status == "FAIL"}
    unit = "/usr/lib/systemd/system/docker.service"
    assert fails == {
        ("MOAT-DH-023", "debug is on: the daemon logs at debug level", unit),
        ("MOAT-DH-027", "the daemon listens on tcp://0.0.0.0:2375 without tlsverify, tlscacert, tlscert, tlskey", unit),
    }


def test_tls_on_tcp_passes_with_all_parts(host: Host) -> None:
    host.harden()
    tls = {"hosts": ["unix:///var/run/docker.sock", "tcp://0.0.0.0:2376"], "tlsverify": True,
           "tlscacert": "/etc/docker/tls/ca.pem", "tlscert": "/etc/docker/tls/cert.pem",
           "tlskey": "/etc/docker/tls/key.pem"}
    host.daemon_json({**HARDENED_JSON, **tls})
    for name, mode in (("ca.pem", 0o444), ("cert.pem", 0o444), ("key.pem", 0o400)):
        host.write(f"etc/docker/tls/{name}", "-----BEGIN-----\n", mode)
    assert failures(host.root, trusted_docker_users=["alice", "bob"]) == {}


# ----------------------------------------------------------------------------------------------
# Section 3


def test_file_ownership_and_modes(host: Host) -> None:
    host.harden()
    tls = {"tlsverify": True, "tlscacert": "/etc/docker/tls/ca.pem", "tlscert": "/etc/docker/tls/cert.pem",
           "tlskey": "/etc/docker/tls/key.pem"}
    host.daemon_json({**HARDENED_JSON, **tls}, mode=0o664)
    os.chown(host.root / "etc/docker/daemon.json", 1000, 0)
    os.chmod(host.root / "usr/lib/systemd/system/docker.service", 0o664)
    os.chown(host.root / "usr/lib/systemd/system/docker.service", 0, 1000)
    os.chmod(host.root / "usr/lib/systemd/system/docker.socket", 0o646)
    os.chown(host.root / "usr/lib/systemd/system/docker.socket", 1001, 999)
    os.chmod(host.root / "etc/docker", 0o775)
    os.chown(host.root / "etc/docker", 0, 999)
    host.write("etc/docker/certs.d/registry.example.com:5000/ca.crt", "cert\n", 0o644, uid=1000)
    host.write("etc/docker/tls/ca.pem", "ca\n", 0o644, gid=999)
    host.write("etc/docker/tls/cert.pem", "cert\n", 0o440, uid=1000)
    host.write("etc/docker/tls/key.pem", "key\n", 0o440, gid=1000)
    os.chmod(host.root / "run/docker.sock", 0o666)
    os.chown(host.root / "run/docker.sock", 0, 1000)
    host.write("etc/default/docker", "DOCKER_OPTS=\n", 0o666, uid=1000)
    host.write("etc/sysconfig/docker", "OPTIONS=\n", 0o664, gid=1000)
    os.chmod(host.root / "run/containerd/containerd.sock", 0o666)
    os.chown(host.root / "run/containerd/containerd.sock", 0, 999)
    found = failures(host.root, trusted_docker_users=["alice", "bob"])
    service = "/usr/lib/systemd/system/docker.service"
    sock_unit = "/usr/lib/systemd/system/docker.socket"
    cert = "/etc/docker/certs.d/registry.example.com:5000/ca.crt"
    assert found == {
        "MOAT-DH-039": [f"{service} is owned by root:alice; root:root expected"],
        "MOAT-DH-040": [f"{service} has mode 0664; 0644 or stricter expected"],
        "MOAT-DH-041": [f"{sock_unit} is owned by bob:docker; root:root expected"],
        "MOAT-DH-042": [f"{sock_unit} has mode 0646; 0644 or stricter expected"],
        "MOAT-DH-043": ["/etc/docker is owned by root:docker; root:root expected"],
        "MOAT-DH-044": ["/etc/docker has mode 0775; 0755 or stricter expected"],
        "MOAT-DH-045": [f"{cert} is owned by alice:root; root:root expected"],
        "MOAT-DH-046": [f"{cert} has mode 0644; 0444 or stricter expected"],
        "MOAT-DH-047": ["/etc/docker/tls/ca.pem is owned by root:docker; root:root expected"],
        "MOAT-DH-048": ["/etc/docker/tls/ca.pem has mode 0644; 0444 or stricter expected"],
        "MOAT-DH-049": ["/etc/docker/tls/cert.pem is owned by alice:root; root:root expected"],
        "MOAT-DH-052": ["/etc/docker/tls/key.pem has mode 0440; 0400 or stricter expected"],
        "MOAT-DH-051": ["/etc/docker/tls/key.pem is owned by root:alice; root:root expected"],
        "MOAT-DH-053": ["/var/run/docker.sock is owned by root:alice; root:docker expected"],
        "MOAT-DH-054": ["/var/run/docker.sock has mode 0666; 0660 or stricter expected"],
        "MOAT-DH-055": ["/etc/docker/daemon.json is owned by alice:root; root:root expected"],
        "MOAT-DH-056": ["/etc/docker/daemon.json has mode 0664; 0644 or stricter expected"],
        "MOAT-DH-057": ["/etc/default/docker is owned by alice:root; root:root expected"],
        "MOAT-DH-058": ["/etc/default/docker has mode 0666; 0644 or stricter expected"],
        "MOAT-DH-059": ["/etc/sysconfig/docker has mode 0664; 0644 or stricter expected"],
        "MOAT-DH-060": ["/etc/sysconfig/docker is owned by root:alice; root:root expected"],
        "MOAT-DH-061": ["/run/containerd/containerd.sock is owned by root:docker; root:root expected"],
        "MOAT-DH-062": ["/run/containerd/containerd.sock has mode 0666; 0660 or stricter expected"],
        "MOAT-DH-013": ["no audit rule watches /etc/sysconfig/docker"],
    }
    # 3.12 (server certificate mode 444) passes at 440: stricter is fine.
    assert "MOAT-DH-050" not in found


def test_unknown_uids_are_shown_as_numbers(host: Host) -> None:
    host.harden()
    os.chown(host.root / "etc/docker/daemon.json", 4321, 0)
    assert failures(host.root)["MOAT-DH-055"] == ["/etc/docker/daemon.json is owned by 4321:root; root:root expected"]


def test_socket_group_follows_the_daemons_group_flag(host: Host) -> None:
    host.harden()
    host.write("etc/group", GROUP + "dockerops:x:998:\n")
    os.chown(host.root / "run/docker.sock", 0, 998)
    host.daemon_json({**HARDENED_JSON, "group": "dockerops"})
    found = failures(host.root, trusted_docker_users=["alice", "bob"])
    assert "MOAT-DH-053" not in found
    host.daemon_json(HARDENED_JSON)
    assert failures(host.root, trusted_docker_users=["alice", "bob"])["MOAT-DH-053"] == [
        "/var/run/docker.sock is owned by root:dockerops; root:docker expected"
    ]


def test_manual_items_are_reported_with_their_steps(host: Host) -> None:
    host.harden()
    manual = {f.rule_id: f for f in run_rules(host.root) if f.status == "MANUAL"}
    assert sorted(manual) == ["MOAT-DH-019", "MOAT-DH-020", "MOAT-DH-021", "MOAT-DH-037"]
    assert "docker version" in manual["MOAT-DH-020"].verification


# ----------------------------------------------------------------------------------------------
# A hostile engine


class _Handler(http.server.BaseHTTPRequestHandler):
    answers: dict[str, bytes] = {}

    def do_GET(self) -> None:
        body = self.answers.get(self.path.split("?")[0], b"{}")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        request, _ = super().get_request()
        return request, ("engine", 0)  # BaseHTTPRequestHandler wants a (host, port) client address


FakeEngine = tuple[str, dict[str, bytes]]


@pytest.fixture
def fake_engine() -> Iterator[FakeEngine]:
    """A real HTTP server on a unix socket whose answers each test sets."""
    directory = Path(tempfile.mkdtemp(prefix="moat-eng-", dir="/tmp"))
    answers: dict[str, bytes] = {}
    handler = type("Handler", (_Handler,), {"answers": answers})
    server = _UnixHTTPServer(str(directory / "engine.sock"), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"unix://{directory}/engine.sock", answers
    server.shutdown()
    server.server_close()
    shutil.rmtree(directory)


def test_engine_answers_that_are_not_json_are_one_line_errors(host: Host, fake_engine: FakeEngine) -> None:
    url, answers = fake_engine
    answers["/info"] = b"<html>not an engine</html>"
    with pytest.raises(ParseError, match=r"engine at .*engine\.sock: GET /info did not answer JSON"):
        collect_docker_host(str(host.root), url)


def test_engine_answers_are_bounded(host: Host, fake_engine: FakeEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    url, answers = fake_engine
    monkeypatch.setattr("moat.checks.targets.docker_host.MAX_ENGINE_BYTES", 1024)
    answers["/version"] = json.dumps({"Version": "x" * 4096}).encode()
    with pytest.raises(MoatError, match=r"GET /version answer exceeds"):
        collect_docker_host(str(host.root), url)


def test_odd_engine_listings_are_skipped_not_trusted(host: Host, fake_engine: FakeEngine) -> None:
    url, answers = fake_engine
    answers["/info"] = b'{"Swarm": "not a mapping", "SecurityOptions": 5}'
    answers["/containers/json"] = json.dumps(
        [{"Id": "../../images/evil"}, {"Id": 7}, "junk", {"Id": "abc123"}]
    ).encode()
    answers["/containers/abc123/json"] = json.dumps({"Name": "/web", "HostConfig": {"Privileged": True}}).encode()
    answers["/containers/abc123/top"] = b'{"Titles": ["CMD"], "Processes": [["nginx"]]}'
    scan = collect_docker_host(str(host.root), url)
    assert [d.name for d in scan.documents[1:]] == ["web"]
    rules = rules_for(["docker-host", "docker-container"], builtin_rules().values())
    found = {f.rule_id for f in evaluate(scan.documents, rules).findings if f.object == "web"}
    assert "MOAT-DC-005" in found


def test_moat_host_with_a_template_file(host: Host, tmp_path: Path) -> None:
    """A template picks the benchmark section, sets a rule's parameter and overrides a severity."""
    host.harden()
    host.write("etc/fstab", "UUID=1 / ext4 defaults 0 1\n")
    template = tmp_path / "hosts.yaml"
    template.write_text(
        "id: our-hosts\ntitle: Our Docker hosts\nframework: cis-docker-1.6\n"
        "select:\n  frameworks: ['cis-docker-1.6:1.*']\n"
        "params:\n  trusted_docker_users: [alice]\n"
        "severity:\n  MOAT-DH-001: CRITICAL\n"
    )
    app = typer.Typer()
    register(app)
    app.command("other")(lambda: None)
    result = CliRunner().invoke(app, ["host", "--root", str(host.root), "--template", str(template), "-f", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    failed = sorted((f["rule_id"], f["severity"], f["message"]) for f in report["misconfigurations"]
                    if f["status"] == "FAIL")
    assert failed == [
        ("MOAT-DH-001", "CRITICAL",
         "/var/lib/docker is not a mount point of its own (not in /proc/mounts or /etc/fstab)"),
        ("MOAT-DH-002", "HIGH", 'user "bob" can control the Docker daemon (member of group "docker") and is not '
                                "listed in trusted_docker_users"),
    ]
    assert {c["rule_id"] for c in report["checks"]} == {f"MOAT-DH-{n:03d}" for n in range(1, 21)}
    assert report["template"]["id"] == "our-hosts"
