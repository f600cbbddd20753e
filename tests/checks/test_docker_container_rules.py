"""CIS Docker 1.6 section 5 rules on containers as Docker's Engine API describes them.

The inspect documents follow the shape ``GET /containers/{id}/json`` answers (Engine API v1.43): a
hardened container passes every automated rule, and each case changes the one field its benchmark item
is about, the way ``docker run`` with that option would set it. Published ports, the default bridge and
the IPC namespace are covered here because podman, the engine the e2e tests run, cannot show them
(tests must not use a bridge network; podman 4.3 reports IpcMode "shareable" even for --ipc host).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from moat.checks.document import Document
from moat.checks.engine import evaluate
from moat.checks.rule import builtin_rules, rules_for

HARDENED: dict[str, Any] = {
    "Id": "5d1c3b1f0e8e9a6b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b",
    "Name": "/web",
    "State": {"Status": "running", "Running": True, "Pid": 4242,
              "Health": {"Status": "healthy", "FailingStreak": 0, "Log": []}},
    "AppArmorProfile": "docker-default",
    "ProcessLabel": "",
    "HostConfig": {
        "Binds": ["/srv/web/data:/data:ro"],
        "NetworkMode": "frontend",
        "PortBindings": {"8443/tcp": [{"HostIp": "10.0.0.5", "HostPort": "8443"}]},
        "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 5},
        "CapAdd": ["NET_BIND_SERVICE"],
        "CapDrop": ["ALL"],
        "IpcMode": "private",
        "PidMode": "",
        "UTSMode": "",
        "UsernsMode": "",
        "Privileged": False,
        "ReadonlyRootfs": True,
        "SecurityOpt": ["no-new-privileges:true"],
        "CgroupParent": "",
        "CpuShares": 512,
        "Memory": 268435456,
        "PidsLimit": 200,
        "Devices": [],
        "Ulimits": None,
    },
    "Mounts": [{"Type": "bind", "Source": "/srv/web/data", "Destination": "/data", "Mode": "ro", "RW": False,
                "Propagation": "rprivate"}],
    "Config": {
        "Image": "registry.example.com/web:1.4.2",
        "Healthcheck": {"Test": ["CMD-SHELL", "wget -qO- http://localhost:8443/health || exit 1"]},
    },
    "NetworkSettings": {
        "Ports": {"8443/tcp": [{"HostIp": "10.0.0.5", "HostPort": "8443"}]},
        "Networks": {"frontend": {"IPAddress": "172.20.0.2"}},
    },
}

TOP_NGINX = {"Titles": ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"],
             "Processes": [["root", "4242", "4220", "0", "10:00", "?", "00:00:00", "nginx: master process nginx"]]}


def container(changes: dict[str, Any] | None = None, *, top: dict[str, Any] | None = None) -> Document:
    data = copy.deepcopy(HARDENED)
    for dotted, value in (changes or {}).items():
        target = data
        *parents, last = dotted.split(".")
        for key in parents:
            target = target[key]
        target[last] = value
    return Document(kind="docker-container", path="unix:///var/run/docker.sock", data=data,
                    name=data["Name"].lstrip("/"), facts={"top": top or TOP_NGINX})


def host(info: dict[str, Any] | None = None, settings: dict[str, Any] | None = None) -> Document:
    return Document(kind="docker-host", path="/", data={"info": info, "settings": settings or {}}, name="host1")


def failures(*documents: Document, **params: Any) -> list[tuple[str, str]]:
    rules = [r for r in rules_for(["docker-container", "docker-host"], builtin_rules().values())
             if r.id.startswith("MOAT-DC-")]
    run = evaluate(list(documents), rules, params=params)
    return sorted((f.rule_id, f.message) for f in run.findings if f.status == "FAIL")


def test_hardened_container_passes_every_automated_rule() -> None:
    assert failures(container(), host({"SecurityOptions": ["name=apparmor", "name=seccomp,profile=builtin"]})) == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"HostConfig.SecurityOpt": ["no-new-privileges:true", "apparmor=unconfined"]},
         [("MOAT-DC-002", 'container "web" runs with AppArmor disabled (apparmor=unconfined)')]),
        ({"HostConfig.SecurityOpt": ["no-new-privileges:true", "label:disable"]},
         [("MOAT-DC-003", 'container "web" runs with SELinux labelling disabled (label=disable)')]),
        ({"HostConfig.CapAdd": ["CAP_SYS_ADMIN", "NET_BIND_SERVICE", "sys_ptrace"]},
         [("MOAT-DC-004", 'container "web" adds capability SYS_ADMIN'),
          ("MOAT-DC-004", 'container "web" adds capability SYS_PTRACE')]),
        ({"HostConfig.CapDrop": ["NET_RAW"]},
         [("MOAT-DC-004", 'container "web" does not drop all capabilities (no --cap-drop ALL)')]),
        ({"HostConfig.Privileged": True}, [("MOAT-DC-005", 'container "web" runs privileged')]),
        ({"Mounts": [{"Type": "bind", "Source": "/", "Destination": "/host", "RW": False, "Propagation": "rprivate"},
                     {"Type": "bind", "Source": "/etc/ssl/certs", "Destination": "/certs", "RW": False},
                     {"Type": "bind", "Source": "/usr/local/app", "Destination": "/app", "RW": True},
                     {"Type": "volume", "Source": "/var/lib/docker/volumes/x/_data", "Destination": "/x", "RW": True}]},
         [("MOAT-DC-006", 'container "web" mounts /usr/local/app, under a host system directory, read-write at /app'),
          ("MOAT-DC-006", 'container "web" mounts host directory / (read-only) at /host')]),
        ({"NetworkSettings.Ports": {"443/tcp": [{"HostIp": "10.0.0.5", "HostPort": "443"}]}},
         [("MOAT-DC-008", 'container "web" publishes 443/tcp on privileged host port 443')]),
        ({"HostConfig.NetworkMode": "host", "NetworkSettings.Networks": {"host": {}}, "NetworkSettings.Ports": {}},
         [("MOAT-DC-010", 'container "web" shares the host\'s network namespace (NetworkMode=host)')]),
        ({"HostConfig.Memory": 0}, [("MOAT-DC-011", 'container "web" has no memory limit')]),
        ({"HostConfig.CpuShares": 1024}, [("MOAT-DC-012", 'container "web" has the default CPU shares (1024)')]),
        ({"HostConfig.CpuShares": 0}, [("MOAT-DC-012", 'container "web" has the default CPU shares (0)')]),
        ({"HostConfig.ReadonlyRootfs": False}, [("MOAT-DC-013", 'container "web" has a writable root file system')]),
        ({"NetworkSettings.Ports": {"8443/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8443"},
                                                 {"HostIp": "::", "HostPort": "8443"}]}},
         [("MOAT-DC-014", 'container "web" publishes 8443/tcp on all host interfaces (0.0.0.0:8443)'),
          ("MOAT-DC-014", 'container "web" publishes 8443/tcp on all host interfaces (:::8443)')]),
        ({"HostConfig.RestartPolicy": {"Name": "always", "MaximumRetryCount": 0}},
         [("MOAT-DC-015", 'container "web" has restart policy always')]),
        ({"HostConfig.RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 0}},
         [("MOAT-DC-015", 'container "web" has restart policy on-failure:0 (more than 5 retries)')]),
        ({"HostConfig.PidMode": "host"}, [("MOAT-DC-016", 'container "web" shares the host\'s process namespace '
                                                          "(PidMode=host)")]),
        ({"HostConfig.IpcMode": "host"}, [("MOAT-DC-017", 'container "web" shares the host\'s IPC namespace '
                                                          "(IpcMode=host)")]),
        ({"HostConfig.Devices": [{"PathOnHost": "/dev/sda", "PathInContainer": "/dev/sda",
                                  "CgroupPermissions": "rwm"}]},
         [("MOAT-DC-018", 'container "web" has host device /dev/sda (rwm)')]),
        ({"HostConfig.Ulimits": [{"Name": "nofile", "Soft": 1048576, "Hard": 1048576}]},
         [("MOAT-DC-019", 'container "web" sets its own ulimits (nofile=1048576:1048576): confirm they are needed')]),
        ({"Mounts": [{"Type": "bind", "Source": "/srv/shared", "Destination": "/mnt", "RW": True,
                      "Propagation": "rshared"}]},
         [("MOAT-DC-020", 'container "web" mounts /srv/shared at /mnt with rshared propagation')]),
        ({"HostConfig.UTSMode": "host"}, [("MOAT-DC-021", 'container "web" shares the host\'s UTS namespace '
                                                          "(UTSMode=host)")]),
        ({"HostConfig.SecurityOpt": ["no-new-privileges:true", "seccomp:unconfined"]},
         [("MOAT-DC-022", 'container "web" runs with seccomp disabled (seccomp=unconfined)')]),
        ({"HostConfig.CgroupParent": "/custom"},
         [("MOAT-DC-025", 'container "web" runs under cgroup parent /custom: confirm it is intended')]),
        ({"HostConfig.SecurityOpt": []}, [("MOAT-DC-026", 'container "web" does not set no-new-privileges')]),
        ({"HostConfig.SecurityOpt": ["no-new-privileges=false"]},
         [("MOAT-DC-026", 'container "web" does not set no-new-privileges')]),
        ({"Config.Healthcheck": None, "State.Health": None}, [("MOAT-DC-027", 'container "web" has no health check')]),
        ({"Config.Healthcheck": {"Test": ["NONE"]}, "State.Health": None},
         [("MOAT-DC-027", 'container "web" has no health check')]),
        ({"State.Health": {"Status": "unhealthy", "FailingStreak": 7}},
         [("MOAT-DC-027", 'container "web" is unhealthy')]),
        ({"Config.Image": "nginx"}, [("MOAT-DC-028", 'container "web" runs image nginx by no tag (latest)')]),
        ({"Config.Image": "registry.example.com:5000/web:latest"},
         [("MOAT-DC-028", 'container "web" runs image registry.example.com:5000/web:latest by the latest tag')]),
        ({"HostConfig.PidsLimit": None}, [("MOAT-DC-029", 'container "web" has no PIDs limit (PidsLimit=None)')]),
        ({"HostConfig.PidsLimit": -1}, [("MOAT-DC-029", 'container "web" has no PIDs limit (PidsLimit=-1)')]),
        ({"HostConfig.NetworkMode": "default", "NetworkSettings.Networks": {"bridge": {"IPAddress": "172.17.0.2"}}},
         [("MOAT-DC-030", 'container "web" is attached to the default bridge network')]),
        ({"HostConfig.UsernsMode": "host"}, [("MOAT-DC-031", 'container "web" shares the host\'s user namespace '
                                                             "(UsernsMode=host)")]),
        ({"Mounts": [{"Type": "bind", "Source": "/run/docker.sock", "Destination": "/var/run/docker.sock",
                      "RW": False}]},
         [("MOAT-DC-032", 'container "web" mounts the engine socket /run/docker.sock at /var/run/docker.sock')]),
    ],
)
def test_each_item_fails_on_its_own_setting(changes: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert failures(container(changes)) == sorted(expected)


def test_dropping_every_default_capability_counts_as_drop_all() -> None:
    """podman reports --cap-drop ALL as the list of default capabilities it removed."""
    podman_style = ["AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_RAW",
                    "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"]
    assert failures(container({"HostConfig.CapDrop": podman_style})) == []  # NET_BIND_SERVICE was added back
    assert failures(container({"HostConfig.CapDrop": podman_style[1:]})) == [
        ("MOAT-DC-004", 'container "web" does not drop all capabilities (no --cap-drop ALL)')
    ]


def test_pinned_images_pass() -> None:
    for image in ("web@sha256:" + "a" * 64, "sha256:" + "b" * 64, "localhost:5000/web:2"):
        assert failures(container({"Config.Image": image})) == []


def test_binds_stand_in_when_an_engine_gives_no_mounts() -> None:
    doc = container({"HostConfig.Binds": ["/var/run/docker.sock:/var/run/docker.sock", "/etc:/host/etc:ro",
                                          "/srv/x:/x:rshared"]})
    del doc.data["Mounts"]
    assert failures(doc) == [
        ("MOAT-DC-006", 'container "web" mounts host directory /etc (read-only) at /host/etc'),
        ("MOAT-DC-020", 'container "web" mounts /srv/x at /x with rshared propagation'),
        ("MOAT-DC-032", 'container "web" mounts the engine socket /var/run/docker.sock at /var/run/docker.sock'),
    ]


def test_sshd_from_the_process_list() -> None:
    docker_top = {"Titles": ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"],
                  "Processes": [["root", "1", "0", "0", "10:00", "?", "00:00:00", "/usr/sbin/sshd -D"],
                                ["root", "9", "1", "0", "10:01", "?", "00:00:00", "sshd: admin@pts/0"]]}
    assert failures(container(top=docker_top)) == [("MOAT-DC-007", 'container "web" runs sshd (/usr/sbin/sshd -D)')]
    podman_top = {"Titles": ["PID   USER     TIME  COMMAND"],
                  "Processes": [["1 root      0:00 {sshd} /bin/sh /usr/sbin/sshd -D"]]}
    assert [rid for rid, _ in failures(container(top=podman_top))] == ["MOAT-DC-007"]
    not_sshd = {"Titles": ["PID", "CMD"], "Processes": [["1", "/usr/bin/sshd-keygen-wrapper-not-a-daemon"]]}
    assert failures(container(top=not_sshd)) == []
    # In the host's PID namespace the process list is the host's own: its sshd is not the container's.
    assert [rid for rid, _ in failures(container({"HostConfig.PidMode": "host"}, top=docker_top))] == ["MOAT-DC-016"]


def test_apparmor_and_selinux_apply_where_the_host_has_them() -> None:
    unprofiled = container({"AppArmorProfile": ""})
    assert failures(unprofiled, host({"SecurityOptions": ["name=seccomp,profile=builtin"]})) == []
    assert failures(unprofiled, host({"SecurityOptions": ["name=apparmor"]})) == [
        ("MOAT-DC-002", 'container "web" has no AppArmor profile (none) on an AppArmor host')
    ]
    assert failures(unprofiled) == []  # no engine answer: applicability unknown, only explicit opt-outs fail
    assert failures(container(), host({"SecurityOptions": ["name=selinux"]})) == [
        ("MOAT-DC-003", 'container "web" has no SELinux process label on an SELinux host')
    ]
    labelled = container({"ProcessLabel": "system_u:system_r:container_t:s0:c1,c2"})
    assert failures(labelled, host({"SecurityOptions": ["name=selinux"]})) == []


def test_daemon_wide_no_new_privileges_covers_containers() -> None:
    bare = container({"HostConfig.SecurityOpt": None})
    assert [rid for rid, _ in failures(bare)] == ["MOAT-DC-026"]
    daemon = host({}, {"no-new-privileges": {"value": True, "source": "/etc/docker/daemon.json"}})
    assert failures(bare, daemon) == []


def test_swarm_mode_reads_the_daemon() -> None:
    active = host({"Swarm": {"LocalNodeState": "active", "NodeID": "n1"}})
    assert failures(active) == [("MOAT-DC-001", "swarm mode is active on this daemon")]
    assert failures(active, swarm_expected=True) == []
    assert failures(host({"Swarm": {"LocalNodeState": "inactive"}})) == []


def test_parameters_change_the_checks() -> None:
    doc = container({"HostConfig.CgroupParent": "/tenants/a", "HostConfig.CapDrop": [],
                     "HostConfig.RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 8},
                     "NetworkSettings.Ports": {"80/tcp": [{"HostIp": "10.0.0.5", "HostPort": "80"}]}})
    assert [rid for rid, _ in failures(doc)] == ["MOAT-DC-004", "MOAT-DC-008", "MOAT-DC-015", "MOAT-DC-025"]
    assert failures(doc, allowed_cgroup_parents=["/tenants/a"], require_drop_all=False, max_restart_retries=10,
                    lowest_allowed_port=80) == []


def test_odd_and_missing_fields_do_not_break_rules() -> None:
    """Engines differ (podman leaves fields null, old engines omit them): rules read what is there."""
    sparse = Document(kind="docker-container", path="unix:///x.sock",
                      data={"Name": "/odd", "HostConfig": None, "Mounts": None, "Config": {"Image": 7},
                            "NetworkSettings": {"Ports": {"80/tcp": None}}}, name="odd", facts={"top": None})
    found = {rid for rid, _ in failures(sparse)}
    assert found == {"MOAT-DC-004", "MOAT-DC-011", "MOAT-DC-012", "MOAT-DC-013", "MOAT-DC-026", "MOAT-DC-027",
                     "MOAT-DC-029"}


def outcomes(*documents: Document) -> dict[str, str]:
    rules = [r for r in rules_for(["docker-container", "docker-host"], builtin_rules().values())
             if r.id.startswith("MOAT-DC-")]
    return {rid: outcome.status for rid, outcome in evaluate(list(documents), rules).outcomes.items()}


def test_what_the_collected_facts_cannot_settle_is_not_passed() -> None:
    """No process list, no /info: the rules that need them are not assessed, rather than passing."""
    bare = container({"AppArmorProfile": ""}, top=None)
    bare.facts["top"] = None
    status = outcomes(bare, host(None))
    assert status["MOAT-DC-007"] == "NOT_APPLICABLE"  # sshd: no /top
    assert status["MOAT-DC-002"] == "NOT_APPLICABLE"  # AppArmor: host support unknown
    assert status["MOAT-DC-003"] == "NOT_APPLICABLE"  # SELinux: host support unknown
    assert status["MOAT-DC-001"] == "NOT_APPLICABLE"  # swarm: no /info
    assert status["MOAT-DC-005"] == "PASS"
    known = outcomes(container(), host({"SecurityOptions": ["name=seccomp,profile=builtin"], "Swarm": {}}))
    assert {rid: known[rid] for rid in ("MOAT-DC-001", "MOAT-DC-002", "MOAT-DC-003", "MOAT-DC-007")} == {
        "MOAT-DC-001": "PASS", "MOAT-DC-002": "PASS", "MOAT-DC-003": "PASS", "MOAT-DC-007": "PASS"}
    host_pid = outcomes(container({"HostConfig.PidMode": "host"}))
    assert host_pid["MOAT-DC-007"] == "NOT_APPLICABLE" and host_pid["MOAT-DC-016"] == "FAIL"
