"""CIS Docker Benchmark 1.6 section 5 (container runtime) on running containers: each rule reads one
``docker-container`` document — the Engine API's ``/containers/{id}/json`` — and, for sshd, the
process list ``/containers/{id}/top`` gave the collector. Item 5.1 (swarm mode) is a property of the
daemon and reads the ``docker-host`` document's ``/info``.

Where the host's settings change the answer (AppArmor and SELinux apply only on hosts that have
them; a daemon-wide no-new-privileges covers every container), the rule looks up the run's
``docker-host`` document in ``ctx.documents``. Each benchmark item is exactly one rule (``MOAT-DC-nnn``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import PurePosixPath
from typing import Any

from moat.checks.document import Document, TargetKind
from moat.checks.rule import Hit, NotAssessable, RuleContext, manual_rule, rule
from moat.checks.rules.docker_cis import CIS, NETWORK, RUNTIME_CONFIG, docker_bench_alias

CONTAINER = (TargetKind.DOCKER_CONTAINER,)

RUN = "https://docs.docker.com/reference/cli/docker/container/run/"
RUNNING = "https://docs.docker.com/engine/containers/run/"
SECURITY = "https://docs.docker.com/engine/security/"
RESOURCES = "https://docs.docker.com/engine/containers/resource_constraints/"

SHARED_KERNEL = "nist-800-190:4.5.2"


# ----------------------------------------------------------------------------------------------
# Reading inspect JSON (every field may be missing or null: older engines and podman differ)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def host_config(doc: Document) -> Mapping[str, Any]:
    return _mapping(_mapping(doc.data).get("HostConfig"))


def config(doc: Document) -> Mapping[str, Any]:
    return _mapping(_mapping(doc.data).get("Config"))


def name(doc: Document) -> str:
    return doc.name or str(_mapping(doc.data).get("Name") or "").lstrip("/")


def security_opts(doc: Document) -> list[str]:
    opts = host_config(doc).get("SecurityOpt")
    return [str(item) for item in opts] if isinstance(opts, list) else []


def opt_value(option: str, key: str) -> str | None:
    """The value of ``key=value`` or the older ``key:value`` security option; None when it is another key."""
    for separator in ("=", ":"):
        if option.startswith(key + separator):
            return option[len(key) + 1:]
    return None


def mounts(doc: Document) -> list[dict[str, Any]]:
    """Mounts as the engine reports them; ``HostConfig.Binds`` when an engine gives no ``Mounts``."""
    listed = _mapping(doc.data).get("Mounts")
    if isinstance(listed, list):
        return [item for item in listed if isinstance(item, dict)]
    found = []
    for bind in host_config(doc).get("Binds") or ():
        parts = str(bind).split(":")
        if len(parts) >= 2:
            options = parts[2].split(",") if len(parts) > 2 else []
            propagation = next((o for o in options if o in ("shared", "rshared", "slave", "rslave", "private",
                                                            "rprivate")), "")
            found.append({"Type": "bind", "Source": parts[0], "Destination": parts[1], "RW": "ro" not in options,
                          "Propagation": propagation})
    return found


def port_bindings(doc: Document) -> Iterator[tuple[str, str, str]]:
    """(container port, host ip, host port) of each published port, as running or else as configured."""
    running = _mapping(_mapping(_mapping(doc.data).get("NetworkSettings")).get("Ports"))
    bindings = running or _mapping(host_config(doc).get("PortBindings"))
    for port, entries in bindings.items():
        for entry in entries or ():
            if isinstance(entry, dict):
                yield str(port), str(entry.get("HostIp") or ""), str(entry.get("HostPort") or "")


def host_document(ctx: RuleContext) -> Document | None:
    return next((d for d in ctx.documents if d.kind == TargetKind.DOCKER_HOST), None)


def host_security_options(ctx: RuleContext) -> list[str] | None:
    """The daemon's SecurityOptions from /info, None when the run has no engine answer."""
    host = host_document(ctx)
    info = _mapping(_mapping(host.data).get("info")) if host else {}
    options = info.get("SecurityOptions")
    return [str(item) for item in options] if isinstance(options, list) else None


def _hit(doc: Document, message: str, path: tuple[str | int, ...], evidence: str = "") -> Hit:
    return Hit(f'container "{name(doc)}" {message}', path=path, evidence=evidence)


# ----------------------------------------------------------------------------------------------
# 5.1: swarm mode (a daemon property)


@rule(
    id="MOAT-DC-001",
    title="Swarm mode is enabled",
    severity="LOW",
    targets=(TargetKind.DOCKER_HOST,),
    description=(
        "A swarm node opens management and overlay ports (2377, 7946, 4789) and runs extra services; "
        "on a host that is not meant to be in a swarm that is attack surface for nothing."
    ),
    remediation="On a host that does not need swarm, leave it: `docker swarm leave` (a manager needs --force). "
                "If the host is meant to be in a swarm, set the rule's parameter swarm_expected: true.",
    verification="Run `docker info -f '{{.Swarm.LocalNodeState}}'`: it must print inactive.",
    references=(CIS, "https://docs.docker.com/engine/swarm/"),
    controls=("cis-docker-1.6:5.1", RUNTIME_CONFIG),
    aliases=(docker_bench_alias("5.1"),),
    params={"swarm_expected": False},
)
def swarm_mode(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    if ctx.params.get("swarm_expected"):
        return
    info = _mapping(doc.data).get("info")
    if not isinstance(info, dict):
        raise NotAssessable("no engine answered /info")
    swarm = _mapping(info.get("Swarm"))
    if swarm.get("LocalNodeState") == "active":
        yield Hit("swarm mode is active on this daemon", path=("info", "Swarm", "LocalNodeState"),
                  evidence=f"NodeID={swarm.get('NodeID', '')}")


# ----------------------------------------------------------------------------------------------
# 5.2 to 5.32: the container itself


@rule(
    id="MOAT-DC-002",
    title="Container runs without an AppArmor profile",
    severity="MEDIUM",
    targets=CONTAINER,
    description=(
        "On AppArmor hosts, Docker confines each container with the docker-default profile, which denies "
        "writes to /proc and /sys and mounts. A container run unconfined loses that layer: an exploit in it "
        "meets one defence fewer on its way to the host."
    ),
    remediation="Remove `--security-opt apparmor=unconfined` (keep the default profile) or name a stricter one: "
                "`docker run --security-opt apparmor=my-profile …`.",
    verification="Run `docker inspect -f '{{.AppArmorProfile}}' CONTAINER`: it must name a profile, not be empty or "
                 "unconfined (on hosts where `docker info` lists name=apparmor).",
    references=(CIS, "https://docs.docker.com/engine/security/apparmor/"),
    controls=("cis-docker-1.6:5.2", SHARED_KERNEL),
    aliases=(docker_bench_alias("5.2"),),
)
def apparmor(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    for index, option in enumerate(security_opts(doc)):
        if opt_value(option, "apparmor") == "unconfined":
            yield _hit(doc, "runs with AppArmor disabled (apparmor=unconfined)", ("HostConfig", "SecurityOpt", index),
                       option)
            return
    profile = str(_mapping(doc.data).get("AppArmorProfile") or "")
    if profile and profile != "unconfined":
        return
    host = host_security_options(ctx)
    if host is None:
        raise NotAssessable("whether the host has AppArmor is unknown without the engine's /info")
    if profile == "unconfined" or any(o.startswith("name=apparmor") for o in host):
        yield _hit(doc, f"has no AppArmor profile ({profile or 'none'}) on an AppArmor host", ("AppArmorProfile",))


@rule(
    id="MOAT-DC-003",
    title="Container runs without SELinux separation",
    severity="MEDIUM",
    targets=CONTAINER,
    description=(
        "On SELinux hosts each container gets its own MCS label, so even a process that escapes cannot read "
        "other containers' files or the host's. label=disable, or a host daemon without --selinux-enabled, "
        "gives that up."
    ),
    remediation="Run the daemon with \"selinux-enabled\": true and remove `--security-opt label=disable`; set a "
                "level where needed: `--security-opt label=level:s0:c100,c200`.",
    verification="Run `docker inspect -f '{{.HostConfig.SecurityOpt}} {{.ProcessLabel}}' CONTAINER`: no "
                 "label=disable, and a process label on SELinux hosts.",
    references=(CIS, "https://docs.docker.com/reference/cli/docker/container/run/#security-opt"),
    controls=("cis-docker-1.6:5.3", SHARED_KERNEL),
    aliases=(docker_bench_alias("5.3"),),
)
def selinux(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    for index, option in enumerate(security_opts(doc)):
        if opt_value(option, "label") == "disable":
            yield _hit(doc, "runs with SELinux labelling disabled (label=disable)",
                       ("HostConfig", "SecurityOpt", index), option)
            return
    if _mapping(doc.data).get("ProcessLabel"):
        return
    host = host_security_options(ctx)
    if host is None:
        raise NotAssessable("whether the host has SELinux is unknown without the engine's /info")
    if any(o.startswith("name=selinux") for o in host):
        yield _hit(doc, "has no SELinux process label on an SELinux host", ("ProcessLabel",))


DANGEROUS_CAPABILITIES = [
    "ALL", "SYS_ADMIN", "SYS_MODULE", "SYS_PTRACE", "SYS_RAWIO", "SYS_BOOT", "SYS_TIME", "NET_ADMIN",
    "DAC_READ_SEARCH", "MAC_ADMIN", "MAC_OVERRIDE", "BPF", "PERFMON", "SYSLOG", "LINUX_IMMUTABLE",
]


DEFAULT_CAPABILITIES = frozenset({
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE", "NET_RAW",
    "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
})
"""What Docker grants a container unless told otherwise (moby's default capability list)."""


@rule(
    id="MOAT-DC-004",
    title="Container capabilities are not restricted",
    severity="HIGH",
    targets=CONTAINER,
    description=(
        "Capabilities split root's power into pieces; several of them (SYS_ADMIN, SYS_MODULE, SYS_PTRACE, "
        "NET_ADMIN, DAC_READ_SEARCH …) are enough to break out of a container or take over the host's network. "
        "Docker's default set is still broader than most applications need: dropping all and adding back "
        "the few needed keeps a compromise small."
    ),
    remediation="Drop everything and add back only what the process needs: "
                "`docker run --cap-drop ALL --cap-add NET_BIND_SERVICE …`. Never add SYS_ADMIN or ALL.",
    verification="Run `docker inspect -f '{{.HostConfig.CapAdd}} {{.HostConfig.CapDrop}}' CONTAINER`: CapDrop must "
                 "hold ALL and CapAdd none of the dangerous capabilities.",
    references=(CIS, "https://docs.docker.com/engine/containers/run/#runtime-privilege-and-linux-capabilities",
                "https://man7.org/linux/man-pages/man7/capabilities.7.html"),
    controls=("cis-docker-1.6:5.4", RUNTIME_CONFIG),
    aliases=(docker_bench_alias("5.4"),),
    params={"dangerous_capabilities": DANGEROUS_CAPABILITIES, "require_drop_all": True},
)
def capabilities(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    dangerous = {_cap(c) for c in ctx.params.get("dangerous_capabilities") or ()}
    for index, cap in enumerate(host_config(doc).get("CapAdd") or ()):
        if _cap(str(cap)) in dangerous:
            yield _hit(doc, f"adds capability {_cap(str(cap))}", ("HostConfig", "CapAdd", index), str(cap))
    dropped = {_cap(str(c)) for c in host_config(doc).get("CapDrop") or ()}
    added = {_cap(str(c)) for c in host_config(doc).get("CapAdd") or ()}
    # Docker reports --cap-drop ALL as ["ALL"]; podman lists each default capability it dropped instead.
    kept = set() if "ALL" in dropped else DEFAULT_CAPABILITIES - dropped - added
    if ctx.params.get("require_drop_all") and kept:
        yield _hit(doc, "does not drop all capabilities (no --cap-drop ALL)", ("HostConfig", "CapDrop"),
                   "keeps " + ",".join(sorted(kept)))


def _cap(value: str) -> str:
    upper = value.strip().upper()
    return upper[4:] if upper.startswith("CAP_") else upper


@rule(
    id="MOAT-DC-005",
    title="Container runs privileged",
    severity="CRITICAL",
    targets=CONTAINER,
    description=(
        "--privileged gives the container every capability, all host devices, and no seccomp, AppArmor or "
        "SELinux confinement. Root in it is root on the host: mounting the host's disk is one command."
    ),
    remediation="Run without --privileged; grant the one capability or device the workload needs instead "
                "(`--cap-add NET_ADMIN`, `--device /dev/fuse`).",
    verification="Run `docker inspect -f '{{.HostConfig.Privileged}}' CONTAINER`: it must print false.",
    references=(CIS, "https://docs.docker.com/engine/containers/run/#runtime-privilege-and-linux-capabilities"),
    controls=("cis-docker-1.6:5.5", RUNTIME_CONFIG),
    aliases=(docker_bench_alias("5.5"),),
)
def privileged(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    if host_config(doc).get("Privileged") is True:
        yield _hit(doc, "runs privileged", ("HostConfig", "Privileged"), "Privileged=true")


SENSITIVE_HOST_PATHS = ["/", "/boot", "/dev", "/etc", "/lib", "/proc", "/sys", "/usr"]


@rule(
    id="MOAT-DC-006",
    title="Sensitive host directories are mounted into the container",
    severity="HIGH",
    targets=CONTAINER,
    description=(
        "Mounting /, /boot, /dev, /etc, /lib, /proc, /sys or /usr hands the container the host's system "
        "files: written, they change the host (a new user in /etc/passwd, a replaced library); even read, "
        "they disclose secrets such as /etc/shadow. A writable mount below one of them does the same for "
        "that part."
    ),
    remediation="Mount only the specific file or data directory the workload needs, read-only where possible "
                "(`-v /etc/ssl/certs:/etc/ssl/certs:ro`), never the host's system directories.",
    verification="Run `docker inspect -f '{{json .Mounts}}' CONTAINER`: no Source equal to one of those directories, "
                 "and none below them with RW true.",
    references=(CIS, "https://docs.docker.com/engine/storage/bind-mounts/"),
    controls=("cis-docker-1.6:5.6", RUNTIME_CONFIG),
    aliases=(docker_bench_alias("5.6"),),
    params={"sensitive_host_paths": SENSITIVE_HOST_PATHS},
)
def sensitive_mounts(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    sensitive = [str(p).rstrip("/") or "/" for p in ctx.params.get("sensitive_host_paths") or ()]
    for index, mount in enumerate(mounts(doc)):
        if mount.get("Type", "bind") != "bind":
            continue
        source = str(mount.get("Source") or "").rstrip("/") or "/"
        writable = mount.get("RW") is not False
        mode = "read-write" if writable else "read-only"
        if source in sensitive:
            yield _hit(doc, f"mounts host directory {source} ({mode}) at {mount.get('Destination')}",
                       ("Mounts", index), source)
        elif writable and any(source.startswith(p + "/") for p in sensitive if p != "/"):
            yield _hit(doc, f"mounts {source}, under a host system directory, read-write at {mount.get('Destination')}",
                       ("Mounts", index), source)


@rule(
    id="MOAT-DC-007",
    title="sshd runs inside the container",
    severity="MEDIUM",
    targets=CONTAINER,
    description=(
        "An SSH server in a container is one more network service with its own keys, users and patches to "
        "manage, and a way in that bypasses the engine's access control and audit. `docker exec` reaches a "
        "container without it."
    ),
    remediation="Remove the SSH server from the image and the entrypoint; use `docker exec -it CONTAINER sh` for "
                "access.",
    verification="Run `docker exec CONTAINER ps -el` (or `docker top CONTAINER`): no sshd process.",
    references=(CIS, "https://docs.docker.com/reference/cli/docker/container/exec/"),
    controls=("cis-docker-1.6:5.7", RUNTIME_CONFIG),
    aliases=(docker_bench_alias("5.7"),),
)
def sshd_running(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    if str(host_config(doc).get("PidMode") or "") == "host":
        raise NotAssessable("its process list is the host's (5.16 reports the shared namespace itself)")
    if not isinstance(doc.facts.get("top"), dict):
        raise NotAssessable("the engine gave no process list (/containers/{id}/top)")
    top = _mapping(doc.facts.get("top"))
    titles = [str(t).upper() for t in top.get("Titles") or ()]
    column = next((i for i, t in enumerate(titles) if t in ("CMD", "COMMAND", "ARGS")), None)
    for row in top.get("Processes") or ():
        if not isinstance(row, list):
            continue
        text = str(row[column]) if column is not None and column < len(row) else " ".join(str(r) for r in row)
        if any(PurePosixPath(word.rstrip(":")).name == "sshd" for word in text.split()):
            yield _hit(doc, f"runs sshd ({text.strip()[:120]})", (), text.strip()[:200])
            return


@rule(
    id="MOAT-DC-008",
    title="Privileged host ports are mapped to the container",
    severity="LOW",
    targets=CONTAINER,
    description=(
        "Ports below 1024 are reserved for services root started. Publishing a container on one lets it pose "
        "as such a service (SSH on 22, DNS on 53) to the network."
    ),
    remediation="Publish on a port from 1024 up (`-p 8443:443`) and put a load balancer or firewall rule in front "
                "when the well-known port is needed.",
    verification="Run `docker port CONTAINER`: every host port must be 1024 or above.",
    references=(CIS, "https://docs.docker.com/engine/network/#published-ports"),
    controls=("cis-docker-1.6:5.8", NETWORK),
    aliases=(docker_bench_alias("5.8"),),
    params={"lowest_allowed_port": 1024},
)
def privileged_ports(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    lowest = int(ctx.params.get("lowest_allowed_port") or 1024)
    for port, _ip, host_port in port_bindings(doc):
        if host_port.isdigit() and 0 < int(host_port) < lowest:
            yield _hit(doc, f"publishes {port} on privileged host port {host_port}",
                       ("NetworkSettings", "Ports", port), host_port)


manual_rule(
    id="MOAT-DC-009",
    title="Only needed ports are open on the container",
    severity="LOW",
    targets=CONTAINER,
    description=(
        "Every published port is reachable from outside the host. A port the application does not need "
        "published (a debug endpoint, a database admin port, -P publishing all EXPOSEd ports) is attack "
        "surface; only the service's owner knows which are needed."
    ),
    remediation="Publish only the ports the service needs, each explicitly (`-p 8443:8443`), not with -P.",
    verification="Run `docker ps --format '{{.Names}} {{.Ports}}'` and confirm every published port is needed.",
    references=(CIS, "https://docs.docker.com/engine/network/#published-ports"),
    controls=("cis-docker-1.6:5.9", NETWORK),
    aliases=(docker_bench_alias("5.9"),),
)


def _namespace_rule(rule_id: str, cis_id: str, field: str, what: str, description: str, severity: str,
                    flag: str, extra_aliases: tuple[str, ...] = ()) -> None:
    def check(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
        if str(host_config(doc).get(field) or "") == "host":
            yield _hit(doc, f"shares the host's {what} namespace ({field}=host)", ("HostConfig", field), "host")

    check.__name__ = f"host_{field.lower()}"
    rule(
        id=rule_id,
        title=f"Container shares the host's {what} namespace",
        severity=severity,
        targets=CONTAINER,
        description=description,
        remediation=f"Run the container without {flag}=host.",
        verification=f"Run `docker inspect -f '{{{{.HostConfig.{field}}}}}' CONTAINER`: it must not print host.",
        references=(CIS, RUN),
        controls=(f"cis-docker-1.6:{cis_id}", NETWORK if field == "NetworkMode" else RUNTIME_CONFIG),
        aliases=(docker_bench_alias(cis_id), *extra_aliases),
    )(check)


_namespace_rule(
    "MOAT-DC-010", "5.10", "NetworkMode", "network",
    "With the host's network namespace the container sees every host interface, can bind any host port, "
    "reach services listening on localhost, and, with NET_ADMIN, change the host's network.",
    "HIGH", "--network",
)


@rule(
    id="MOAT-DC-011",
    title="Container memory is not limited",
    severity="MEDIUM",
    targets=CONTAINER,
    description=(
        "Without a memory limit one container can take all of the host's memory, and the kernel's OOM killer "
        "then picks victims among the other containers and the host's own services."
    ),
    remediation="Set a limit: `docker run --memory 512m …` (and --memory-swap to cap swap too).",
    verification="Run `docker inspect -f '{{.HostConfig.Memory}}' CONTAINER`: it must not be 0.",
    references=(CIS, RESOURCES),
    controls=("cis-docker-1.6:5.11", RUNTIME_CONFIG),
    aliases=(docker_bench_alias("5.11"),),
)
def memory_limit(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    if not _positive(host_config(doc).get("Memory")):
        yield _hit(doc, "has no memory limit", ("HostConfig", "Memory"), "Memory=0")


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


@rule(
    id="MOAT-DC-012",
    title="Container CPU priority is not set",
    severity="LOW",
    targets=CONTAINER,
    description=(
        "All containers get equal CPU shares by default; a busy or compromised one competes with critical "
        "ones on equal terms. Setting shares gives the important workloads priority under contention."
    ),
    remediation="Give the container a relative weight: `docker run --cpu-shares 512 …` (1024 is the default).",
    verification="Run `docker inspect -f '{{.HostConfig.CpuShares}}' CONTAINER`: it must be neither 0 nor 1024.",
    references=(CIS, RESOURCES),
    controls=("cis-docker-1.6:5.12", RUNTIME_CONFIG),
    aliases=(docker_bench_alias("5.12"),),
)
def cpu_shares(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    shares = host_config(doc).get("CpuShares")
    if not _positive(shares) or shares == 1024:
        yield _hit(doc, f"has the default CPU shares ({shares or 0})", ("HostConfig", "CpuShares"), str(shares))


@rule(
    id="MOAT-DC-013",
    title="Container root file system is writable",
    severity="MEDIUM",
    targets=CONTAINER,
    description=(
        "A writable root file system lets an intruder drop tools, change binaries and persist in the container. "
        "Read-only, with explicit volumes or tmpfs for the data it must write, the container stays as built."
    ),
    remediation="`docker run --read-only --tmpfs /tmp -v data:/var/lib/app …`",
    verification="Run `docker inspect -f '{{.HostConfig.ReadonlyRootfs}}' CONTAINER`: it must print true.",
    references=(CIS, RUN),
    controls=("cis-docker-1.6:5.13", RUNTIME_CONFIG),
    aliases=(docker_bench_alias("5.13"),),
)
def read_only_root(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    if host_config(doc).get("ReadonlyRootfs") is not True:
        yield _hit(doc, "has a writable root file system", ("HostConfig", "ReadonlyRootfs"), "ReadonlyRootfs=false")


@rule(
    id="MOAT-DC-014",
    title="Container ports are published on every host interface",
    severity="MEDIUM",
    targets=CONTAINER,
    description=(
        "`-p 8080:80` publishes on all of the host's addresses, including external and management networks. "
        "Binding to the one interface that should serve the port keeps it off the others."
    ),
    remediation="Name the host address: `docker run -p 10.0.0.5:8080:80 …` (or 127.0.0.1 for local-only services).",
    verification="Run `docker port CONTAINER`: no mapping on 0.0.0.0 or [::].",
    references=(CIS, "https://docs.docker.com/engine/network/#published-ports"),
    controls=("cis-docker-1.6:5.14", NETWORK),
    aliases=(docker_bench_alias("5.14"),),
)
def bound_interface(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    for port, ip, host_port in port_bindings(doc):
        if ip in ("", "0.0.0.0", "::", "[::]"):
            yield _hit(doc, f"publishes {port} on all host interfaces ({ip or '0.0.0.0'}:{host_port})",
                       ("NetworkSettings", "Ports", port), f"{ip}:{host_port}")


@rule(
    id="MOAT-DC-015",
    title="Container restarts without a bound",
    severity="LOW",
    targets=CONTAINER,
    description=(
        "A container that restarts forever (always, unless-stopped, or on-failure without a count) hides a "
        "crash loop and can be used to exhaust the host; a bounded on-failure policy stops after a few tries "
        "and leaves the failure visible."
    ),
    remediation="`docker run --restart on-failure:5 …` (or `docker update --restart on-failure:5 CONTAINER`).",
    verification="Run `docker inspect -f '{{.HostConfig.RestartPolicy.Name}} "
                 "{{.HostConfig.RestartPolicy.MaximumRetryCount}}' CONTAINER`: no, or on-failure with 1 to 5.",
    references=(CIS, "https://docs.docker.com/engine/containers/start-containers-automatically/"),
    controls=("cis-docker-1.6:5.15", RUNTIME_CONFIG),
    aliases=(docker_bench_alias("5.15"),),
    params={"max_restart_retries": 5},
)
def restart_policy(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    policy = _mapping(host_config(doc).get("RestartPolicy"))
    policy_name = str(policy.get("Name") or "")
    retries = policy.get("MaximumRetryCount") or 0
    limit = int(ctx.params.get("max_restart_retries") or 5)
    if policy_name in ("always", "unless-stopped"):
        yield _hit(doc, f"has restart policy {policy_name}", ("HostConfig", "RestartPolicy", "Name"), policy_name)
    elif policy_name == "on-failure" and (not isinstance(retries, int) or retries <= 0 or retries > limit):
        yield _hit(doc, f"has restart policy on-failure:{retries} (more than {limit} retries)",
                   ("HostConfig", "RestartPolicy", "MaximumRetryCount"), f"on-failure:{retries}")


_namespace_rule(
    "MOAT-DC-016", "5.16", "PidMode", "process",
    "With the host's PID namespace the container sees every process on the host and, as root, can signal or "
    "trace them (kill the host's services, read their memory and environment).",
    "HIGH", "--pid",
)
_namespace_rule(
    "MOAT-DC-017", "5.17", "IpcMode", "IPC",
    "With the host's IPC namespace the container can read and write the host's shared memory segments and "
    "message queues, and with them the data of the host's processes.",
    "HIGH", "--ipc",
)


@rule(
    id="MOAT-DC-018",
    title="Host devices are exposed to the container",
    severity="HIGH",
    targets=CONTAINER,
    description=(
        "A host device passed with --device is reachable by the container's processes without going through "
        "the host's access control: a disk can be read or written raw, a serial or USB device driven directly."
    ),
    remediation="Remove --device options the workload does not need; pass the rest with the least permission "
                "(`--device /dev/fuse:/dev/fuse:r`).",
    verification="Run `docker inspect -f '{{json .HostConfig.Devices}}' CONTAINER`: it must be [] or list only "
                 "devices confirmed as needed.",
    references=(CIS, "https://docs.docker.com/reference/cli/docker/container/run/#device"),
    controls=("cis-docker-1.6:5.18", RUNTIME_CONFIG),
    aliases=(docker_bench_alias("5.18"),),
)
def host_devices(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    for index, device in enumerate(host_config(doc).get("Devices") or ()):
        if isinstance(device, dict):
            path = device.get("PathOnHost")
            perms = device.get("CgroupPermissions") or "rwm"
            yield _hit(doc, f"has host device {path} ({perms})", ("HostConfig", "Devices", index), str(path))


@rule(
    id="MOAT-DC-019",
    title="Container overrides the default ulimits",
    severity="LOW",
    targets=CONTAINER,
    description=(
        "The daemon's default ulimits bound how many files and processes one container may use. A container "
        "started with its own --ulimit replaces them; when that is not needed it widens what a runaway or "
        "hostile process can consume."
    ),
    remediation="Start the container without --ulimit unless the workload needs it, and document the need when "
                "it does.",
    verification="Run `docker inspect -f '{{.HostConfig.Ulimits}}' CONTAINER`: <no value> or [] unless the "
                 "override is confirmed as needed.",
    references=(CIS, "https://docs.docker.com/reference/cli/docker/container/run/#ulimit"),
    controls=("cis-docker-1.6:5.19", RUNTIME_CONFIG),
    aliases=(docker_bench_alias("5.19"),),
)
def ulimit_override(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    limits = host_config(doc).get("Ulimits") or ()
    listed = [f"{u.get('Name')}={u.get('Soft')}:{u.get('Hard')}" for u in limits if isinstance(u, dict)]
    if listed:
        yield _hit(doc, f"sets its own ulimits ({', '.join(listed)}): confirm they are needed",
                   ("HostConfig", "Ulimits"), ", ".join(listed))


@rule(
    id="MOAT-DC-020",
    title="A mount's propagation is shared",
    severity="MEDIUM",
    targets=CONTAINER,
    description=(
        "With shared propagation, mounts the container makes under the volume appear on the host too (and the "
        "other way round): a container with mount rights can then place mounts in the host's namespace."
    ),
    remediation="Use the default private propagation: drop `:shared`/`:rshared` from -v, or set "
                "`bind-propagation=rprivate` with --mount.",
    verification="Run `docker inspect -f '{{range .Mounts}}{{.Destination}}={{.Propagation}} {{end}}' CONTAINER`: "
                 "no shared or rshared.",
    references=(CIS, "https://docs.docker.com/engine/storage/bind-mounts/#configure-bind-propagation"),
    controls=("cis-docker-1.6:5.20", RUNTIME_CONFIG),
    aliases=(docker_bench_alias("5.20"),),
)
def shared_propagation(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    for index, mount in enumerate(mounts(doc)):
        propagation = str(mount.get("Propagation") or "")
        if propagation in ("shared", "rshared"):
            yield _hit(doc, f"mounts {mount.get('Source')} at {mount.get('Destination')} with {propagation} "
                            "propagation", ("Mounts", index, "Propagation"), propagation)


_namespace_rule(
    "MOAT-DC-021", "5.21", "UTSMode", "UTS",
    "With the host's UTS namespace the container can change the host's hostname and domain name, which "
    "other services and logs rely on.",
    "MEDIUM", "--uts",
)


@rule(
    id="MOAT-DC-022",
    title="Container runs without seccomp",
    severity="HIGH",
    targets=CONTAINER,
    description=(
        "Docker's default seccomp profile blocks around 44 system calls that containers rarely need and "
        "kernel exploits often do (keyctl, unshare, mount, kexec …). Unconfined, the whole kernel system-call "
        "surface is open to the container."
    ),
    remediation="Remove `--security-opt seccomp=unconfined`; if a call is missing, use a copy of the default "
                "profile that allows just it: `--security-opt seccomp=/etc/docker/seccomp/app.json`.",
    verification="Run `docker inspect -f '{{.HostConfig.SecurityOpt}}' CONTAINER`: no seccomp=unconfined.",
    references=(CIS, "https://docs.docker.com/engine/security/seccomp/"),
    controls=("cis-docker-1.6:5.22", SHARED_KERNEL),
    aliases=(docker_bench_alias("5.22"),),
)
def seccomp_unconfined(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    for index, option in enumerate(security_opts(doc)):
        if opt_value(option, "seccomp") == "unconfined":
            yield _hit(doc, "runs with seccomp disabled (seccomp=unconfined)", ("HostConfig", "SecurityOpt", index),
                       option)


manual_rule(
    id="MOAT-DC-023",
    title="docker exec is used with --privileged",
    severity="HIGH",
    targets=CONTAINER,
    description=(
        "`docker exec --privileged` starts a process with every capability and no confinement inside a "
        "container that was started confined, defeating the container's own restrictions. Exec sessions "
        "are short-lived and leave no trace in the container's inspect data, so only the audit log tells."
    ),
    remediation="Do not use --privileged with docker exec; enforce it with an authorization plugin that denies "
                "exec requests with Privileged set.",
    verification="Search the audit log of the docker binary (`ausearch -k docker | grep exec | grep privileged`) "
                 "or the API access log for exec create requests with \"Privileged\": true.",
    references=(CIS, "https://docs.docker.com/reference/cli/docker/container/exec/"),
    controls=("cis-docker-1.6:5.23", RUNTIME_CONFIG),
    aliases=(docker_bench_alias("5.23"),),
)

manual_rule(
    id="MOAT-DC-024",
    title="docker exec is used with --user=root",
    severity="MEDIUM",
    targets=CONTAINER,
    description=(
        "`docker exec --user root` runs a process as root in a container that was built to run as an "
        "unprivileged user; like privileged exec, it leaves no trace in the container's inspect data."
    ),
    remediation="Exec as the container's own user; enforce it with an authorization plugin that denies exec "
                "requests with User root or 0.",
    verification="Search the audit log of the docker binary (`ausearch -k docker | grep exec | grep -E "
                 "'user[= ](root|0)'`) or the API access log for exec create requests with \"User\": \"root\".",
    references=(CIS, "https://docs.docker.com/reference/cli/docker/container/exec/"),
    controls=("cis-docker-1.6:5.24", RUNTIME_CONFIG),
    aliases=(docker_bench_alias("5.24"),),
)


@rule(
    id="MOAT-DC-025",
    title="Container runs under a non-default cgroup parent",
    severity="LOW",
    targets=CONTAINER,
    description=(
        "--cgroup-parent moves the container out of the daemon's cgroup hierarchy and with it out from under "
        "the limits and accounting set there. Fine when intended; a way around resource controls when not."
    ),
    remediation="Start the container without --cgroup-parent, or list the intended parent in the rule's "
                "parameter allowed_cgroup_parents.",
    verification="Run `docker inspect -f '{{.HostConfig.CgroupParent}}' CONTAINER`: empty, or a parent confirmed "
                 "as intended.",
    references=(CIS, "https://docs.docker.com/reference/cli/docker/container/run/#cgroup-parent"),
    controls=("cis-docker-1.6:5.25", RUNTIME_CONFIG),
    aliases=(docker_bench_alias("5.25"),),
    params={"allowed_cgroup_parents": []},
)
def cgroup_parent(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    parent = str(host_config(doc).get("CgroupParent") or "")
    allowed = {str(p) for p in ctx.params.get("allowed_cgroup_parents") or ()}
    if parent and parent not in allowed:
        yield _hit(doc, f"runs under cgroup parent {parent}: confirm it is intended", ("HostConfig", "CgroupParent"),
                   parent)


@rule(
    id="MOAT-DC-026",
    title="Container may acquire additional privileges",
    severity="MEDIUM",
    targets=CONTAINER,
    description=(
        "Without no-new-privileges a process in the container can gain privileges through setuid or setgid "
        "binaries and file capabilities — the usual step from an application compromise to root in the "
        "container."
    ),
    remediation="`docker run --security-opt no-new-privileges …`, or set \"no-new-privileges\": true daemon-wide.",
    verification="Run `docker inspect -f '{{.HostConfig.SecurityOpt}}' CONTAINER`: it must hold no-new-privileges "
                 "(or the daemon sets it for every container).",
    references=(CIS, "https://docs.docker.com/reference/cli/docker/container/run/#security-opt"),
    controls=("cis-docker-1.6:5.26", RUNTIME_CONFIG),
    aliases=(docker_bench_alias("5.26"),),
)
def no_new_privileges(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    for option in security_opts(doc):
        if option == "no-new-privileges":
            return
        value = opt_value(option, "no-new-privileges")
        if value is not None:
            if value.lower() == "true":
                return
            break
    host = host_document(ctx)
    setting = _mapping(_mapping(_mapping(host.data).get("settings") if host else {}).get("no-new-privileges"))
    if setting.get("value") is True:
        return
    yield _hit(doc, "does not set no-new-privileges", ("HostConfig", "SecurityOpt"))


@rule(
    id="MOAT-DC-027",
    title="Container health is not checked",
    severity="LOW",
    targets=CONTAINER,
    description=(
        "Without a health check the engine only knows whether the process runs, not whether it works; a hung "
        "or hijacked service keeps running unnoticed. An unhealthy container is the same signal, already "
        "raised."
    ),
    remediation="Add a HEALTHCHECK to the image or the run: `docker run --health-cmd 'wget -qO- "
                "http://localhost:8080/health || exit 1' --health-interval 30s …`.",
    verification="Run `docker inspect -f '{{.State.Health.Status}}' CONTAINER`: it must print healthy.",
    references=(CIS, "https://docs.docker.com/reference/dockerfile/#healthcheck"),
    controls=("cis-docker-1.6:5.27", RUNTIME_CONFIG),
    aliases=(docker_bench_alias("5.27"),),
)
def health_check(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    check = _mapping(config(doc).get("Healthcheck"))
    test = check.get("Test")
    status = str(_mapping(_mapping(_mapping(doc.data).get("State")).get("Health")).get("Status") or "")
    if not test or (isinstance(test, list) and test[:1] == ["NONE"]):
        if not status:
            yield _hit(doc, "has no health check", ("Config", "Healthcheck"))
    elif status == "unhealthy":
        yield _hit(doc, "is unhealthy", ("State", "Health", "Status"), status)


@rule(
    id="MOAT-DC-028",
    title="Container runs an image by a mutable tag",
    severity="LOW",
    targets=CONTAINER,
    description=(
        "An image named by `latest` (or by no tag at all) changes under the same name: which version runs, "
        "and whether it is the newest, cannot be told from the container, and a stale local copy keeps "
        "running after the fix was published. A version tag or digest, pulled at deploy, makes it definite."
    ),
    remediation="Run a specific version, pulling it on deploy: `docker run --pull always registry/app:1.4.2` or "
                "pin the digest `registry/app@sha256:…`.",
    verification="Run `docker inspect -f '{{.Config.Image}}' CONTAINER`: a version tag or digest, not latest.",
    references=(CIS, RUN),
    controls=("cis-docker-1.6:5.28", "nist-800-190:4.1.1"),
    aliases=(docker_bench_alias("5.28"),),
)
def mutable_image_tag(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    image = config(doc).get("Image")
    if not isinstance(image, str) or not image or image.startswith("sha256:") or "@" in image:
        return
    last = image.rsplit("/", 1)[-1]
    tag = last.rsplit(":", 1)[1] if ":" in last else ""
    if tag in ("", "latest"):
        yield _hit(doc, f"runs image {image} by {'the latest tag' if tag else 'no tag (latest)'}",
                   ("Config", "Image"), image)


@rule(
    id="MOAT-DC-029",
    title="Container PIDs are not limited",
    severity="MEDIUM",
    targets=CONTAINER,
    description=(
        "Without a PIDs limit a fork bomb in one container exhausts the host's process table and stops "
        "everything else from starting processes."
    ),
    remediation="`docker run --pids-limit 200 …`",
    verification="Run `docker inspect -f '{{.HostConfig.PidsLimit}}' CONTAINER`: a positive number.",
    references=(CIS, RUN),
    controls=("cis-docker-1.6:5.29", RUNTIME_CONFIG),
    aliases=(docker_bench_alias("5.29"),),
)
def pids_limit(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    limit = host_config(doc).get("PidsLimit")
    if not _positive(limit):
        yield _hit(doc, f"has no PIDs limit (PidsLimit={limit})", ("HostConfig", "PidsLimit"), str(limit))


@rule(
    id="MOAT-DC-030",
    title="Container uses the default bridge network",
    severity="LOW",
    targets=CONTAINER,
    description=(
        "On docker0 every container can reach every other one unless icc is off, and containers find each "
        "other only by IP. User-defined networks isolate groups of containers from each other and resolve "
        "names."
    ),
    remediation="Create a network per application and attach to it: `docker network create app` then "
                "`docker run --network app …`.",
    verification="Run `docker inspect -f '{{.HostConfig.NetworkMode}} {{json .NetworkSettings.Networks}}' CONTAINER`:"
                 " not default or bridge.",
    references=(CIS, "https://docs.docker.com/engine/network/drivers/bridge/"),
    controls=("cis-docker-1.6:5.30", NETWORK),
    aliases=(docker_bench_alias("5.30"),),
)
def default_bridge(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    mode = str(host_config(doc).get("NetworkMode") or "")
    networks = _mapping(_mapping(_mapping(doc.data).get("NetworkSettings")).get("Networks"))
    if mode in ("default", "bridge") or "bridge" in networks:
        yield _hit(doc, "is attached to the default bridge network", ("HostConfig", "NetworkMode"), mode)


_namespace_rule(
    "MOAT-DC-031", "5.31", "UsernsMode", "user",
    "On a daemon with user namespace remapping, --userns=host opts the container out: root in it is root on "
    "the host again.",
    "MEDIUM", "--userns",
)

ENGINE_SOCKETS = ["docker.sock", "containerd.sock", "podman.sock", "crio.sock", "dockershim.sock"]


@rule(
    id="MOAT-DC-032",
    title="The Docker socket is mounted into the container",
    severity="CRITICAL",
    targets=CONTAINER,
    description=(
        "A container with the engine's socket can ask the engine for anything — a privileged container with "
        "the host's root file system mounted among it. Whoever controls the container controls the host."
    ),
    remediation="Remove the socket mount (`-v /var/run/docker.sock:…`). Tools that need the API should use a "
                "proxy that allows only the calls they need, or run where they need no host engine.",
    verification="Run `docker inspect -f '{{range .Mounts}}{{.Source}}:{{.Destination}} {{end}}' CONTAINER`: no "
                 "docker.sock (or containerd.sock, podman.sock).",
    references=(CIS, "https://docs.docker.com/engine/security/#docker-daemon-attack-surface"),
    controls=("cis-docker-1.6:5.32", RUNTIME_CONFIG),
    aliases=(docker_bench_alias("5.32"),),
    params={"engine_sockets": ENGINE_SOCKETS},
)
def engine_socket_mounted(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    sockets = {str(s) for s in ctx.params.get("engine_sockets") or ()}
    for index, mount in enumerate(mounts(doc)):
        source = str(mount.get("Source") or "")
        destination = str(mount.get("Destination") or "")
        if PurePosixPath(source).name in sockets or PurePosixPath(destination).name in sockets:
            yield _hit(doc, f"mounts the engine socket {source} at {destination}", ("Mounts", index),
                       f"{source}:{destination}")
