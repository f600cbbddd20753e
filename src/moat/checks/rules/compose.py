"""docker-compose rules (``MOAT-CMP-nnn``): the CIS Docker Benchmark 1.6 section 5 runtime items as a
compose file states them, and the image reference of each service.

Every rule looks at one service at a time through :func:`moat.checks.targets.compose.services`, which
has already decoded the short and long syntaxes; a finding names the service as its container and
points at the line of the setting (or of the service, when the fault is a setting that is missing).
The verification steps use ``docker compose config`` (the file as Compose resolves it, merges and
interpolation included) and ``docker inspect`` on the running container.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from moat.checks.document import Document, JsonPath, TargetKind
from moat.checks.rule import Hit, RuleContext, rule
from moat.checks.targets.compose import Service, memory_bytes, services

COMPOSE = (TargetKind.COMPOSE,)
SPEC = "https://docs.docker.com/reference/compose-file/services/"
RUN_REF = "https://docs.docker.com/reference/cli/docker/container/run/"
CIS = "https://www.cisecurity.org/benchmark/docker"

Finding = tuple[str, JsonPath] | tuple[str, JsonPath, str]
ServiceCheck = Callable[[Service, Mapping[str, Any]], Iterable[Finding]]


def compose_rule(
    *, id: str, title: str, severity: str, description: str, remediation: str, verification: str,
    controls: Sequence[str], references: Sequence[str] = (), aliases: Sequence[str] = (),
    params: Mapping[str, Any] | None = None,
) -> Callable[[ServiceCheck], ServiceCheck]:
    """Register a rule from a function that looks at one service and yields (message, path[, evidence])."""

    def decorate(function: ServiceCheck) -> ServiceCheck:
        def check(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
            for service in services(doc):
                for found in function(service, ctx.params):
                    evidence = found[2] if len(found) > 2 else ""
                    yield Hit(f'service "{service.name}" {found[0]}', path=found[1], container=service.name,
                              evidence=evidence)

        rule(id=id, title=title, severity=severity, targets=COMPOSE, description=description,
             remediation=remediation, verification=verification, references=(SPEC, *references),
             controls=tuple(controls), aliases=tuple(aliases), params=params)(check)
        return function

    return decorate


def _is_true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _host(service: Service, key: str) -> Iterator[Finding]:
    value = service.get(key)
    if isinstance(value, str) and value.strip().lower() == "host":
        yield f"shares the host's {key.replace('_mode', '')} namespace ({key}: host)", service.at(key)


# 5.5 -------------------------------------------------------------------------------------------------

@compose_rule(
    id="MOAT-CMP-001",
    title="Service runs privileged",
    severity="CRITICAL",
    description=(
        "A privileged container gets every capability, every host device and no seccomp or AppArmor "
        "confinement: root in it is root on the host."
    ),
    remediation="Remove `privileged: true`; add only the capabilities the service needs with `cap_add`.",
    verification="`docker compose config | grep -n privileged`, and on the host `docker inspect --format "
                 "'{{.HostConfig.Privileged}}' CONTAINER` prints false.",
    controls=("cis-docker-1.6:5.5", "nist-800-190:4.4.3"),
    references=(CIS,),
)
def privileged(service: Service, params: Mapping[str, Any]) -> Iterator[Finding]:
    if _is_true(service.get("privileged")):
        yield "runs privileged", service.at("privileged")


# host namespaces -------------------------------------------------------------------------------------

_NAMESPACE_RULES = (
    ("MOAT-CMP-002", "network_mode", "network", "5.10", "HIGH",
     "The container sees and can bind every host interface, reach services listening on localhost and "
     "sniff host traffic with NET_RAW."),
    ("MOAT-CMP-003", "pid", "process", "5.16", "HIGH",
     "The container sees every host process and, with enough privilege, can signal or ptrace them and read "
     "their environment and /proc/PID/root."),
    ("MOAT-CMP-004", "ipc", "IPC", "5.17", "MEDIUM",
     "The container can read and write the host's shared memory segments and message queues."),
    ("MOAT-CMP-005", "uts", "UTS", "5.21", "MEDIUM",
     "The container can change the host's hostname and domain name."),
    ("MOAT-CMP-006", "userns_mode", "user", "5.31", "MEDIUM",
     "User namespace remapping is switched off for the container, so its root is the host's root."),
)


def _namespace_rule(rule_id: str, key: str, what: str, control: str, severity: str, risk: str) -> None:
    @compose_rule(
        id=rule_id,
        title=f"Service shares the host's {what} namespace",
        severity=severity,
        description=risk,
        remediation=f"Remove `{key}: host`" + (
            "; publish the ports the service needs with `ports:` instead." if key == "network_mode" else "."),
        verification=f"`docker compose config | grep -n '{key}'`; on the host `docker inspect --format "
                     f"'{{{{.HostConfig.{_INSPECT_FIELD[key]}}}}}' CONTAINER` is not `host`.",
        controls=(f"cis-docker-1.6:{control}", "nist-800-190:4.4.3"),
        references=(CIS,),
    )
    def check(service: Service, params: Mapping[str, Any]) -> Iterator[Finding]:
        return _host(service, key)


_INSPECT_FIELD = {"network_mode": "NetworkMode", "pid": "PidMode", "ipc": "IpcMode", "uts": "UTSMode",
                  "userns_mode": "UsernsMode"}
for _args in _NAMESPACE_RULES:
    _namespace_rule(*_args)


# mounts ----------------------------------------------------------------------------------------------

RUNTIME_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock", "/run/containerd/containerd.sock",
                   "/var/run/containerd/containerd.sock", "/run/crio/crio.sock", "/var/run/crio/crio.sock",
                   "/run/podman/podman.sock", "/var/run/podman/podman.sock")


def _normal(path: str) -> str:
    cleaned = "/" + "/".join(part for part in path.replace("\\", "/").split("/") if part not in ("", "."))
    return cleaned


def _bind_sources(service: Service) -> Iterator[tuple[str, Any]]:
    for mount in service.mounts:
        if mount.type == "bind" and mount.source.startswith("/"):
            yield _normal(mount.source), mount


@compose_rule(
    id="MOAT-CMP-007",
    title="Service mounts the container runtime socket",
    severity="CRITICAL",
    description=(
        "Whoever can talk to the Docker (or containerd, CRI-O, Podman) socket can start a privileged container "
        "with the host's root filesystem mounted: the socket is root on the host."
    ),
    remediation=(
        "Remove the socket volume. A service that must manage containers should go through an "
        "authorising proxy that allows only the API calls it needs."
    ),
    verification="`docker inspect --format '{{range .Mounts}}{{.Source}} {{end}}' CONTAINER` lists no "
                 "docker.sock/containerd.sock.",
    controls=("cis-docker-1.6:5.32", "nist-800-190:4.4.3"),
    references=(CIS,),
)
def runtime_socket(service: Service, params: Mapping[str, Any]) -> Iterator[Finding]:
    for source, mount in _bind_sources(service):
        if source in RUNTIME_SOCKETS or source.endswith(("/docker.sock", "/containerd.sock")):
            yield f"mounts the runtime socket {source}", mount.path, f"{mount.source}:{mount.target}"


SENSITIVE_HOST_PATHS = ("/", "/boot", "/dev", "/etc", "/lib", "/lib64", "/proc", "/sys", "/usr", "/bin", "/sbin",
                        "/root", "/var/lib/docker", "/var/lib/kubelet", "/var/lib/containerd", "/run", "/var/run")


@compose_rule(
    id="MOAT-CMP-008",
    title="Service mounts a sensitive host directory",
    severity="HIGH",
    description=(
        "Mounting host system directories (/, /etc, /proc, /sys, /dev, /boot, /usr, Docker's own state) "
        "lets the container read host secrets or change the host's configuration and binaries."
    ),
    remediation="Mount only the application's own data directory, read-only where possible: "
                "`./config:/app/config:ro`.",
    verification="`docker inspect --format '{{range .Mounts}}{{.Source}}:{{.Destination}}:{{.RW}} {{end}}' "
                 "CONTAINER`: no host system directory.",
    controls=("cis-docker-1.6:5.6", "nist-800-190:4.4.3"),
    references=(CIS,),
    params={"sensitive_host_paths": list(SENSITIVE_HOST_PATHS)},
)
def sensitive_mount(service: Service, params: Mapping[str, Any]) -> Iterator[Finding]:
    sensitive = {_normal(str(p)) for p in params.get("sensitive_host_paths", SENSITIVE_HOST_PATHS)}
    for source, mount in _bind_sources(service):
        if source in RUNTIME_SOCKETS or source.endswith(("/docker.sock", "/containerd.sock")):
            continue  # MOAT-CMP-007
        hit = source if source in sensitive else next(
            (p for p in sensitive if p not in ("/", "/run", "/var/run") and source.startswith(p + "/")), None)
        if hit is not None:
            mode = "read-only" if mount.read_only else "read-write"
            yield f"mounts host directory {source} ({mode})", mount.path, f"{mount.source}:{mount.target}"


@compose_rule(
    id="MOAT-CMP-009",
    title="Service mounts a volume with shared propagation",
    severity="MEDIUM",
    description=(
        "With shared mount propagation, mounts the container makes under the volume appear on the host "
        "(and the other way round): the container can change the host's mount table."
    ),
    remediation="Drop the `shared`/`rshared` option (the default `rprivate` is what containers need).",
    verification="`docker inspect --format '{{range .Mounts}}{{.Propagation}} {{end}}' CONTAINER`: no "
                 "shared or rshared.",
    controls=("cis-docker-1.6:5.20",),
    references=(CIS,),
)
def shared_propagation(service: Service, params: Mapping[str, Any]) -> Iterator[Finding]:
    for mount in service.mounts:
        if mount.propagation in ("shared", "rshared"):
            yield f"mounts {mount.target} with {mount.propagation} propagation", mount.path


@compose_rule(
    id="MOAT-CMP-010",
    title="Service exposes host devices",
    severity="MEDIUM",
    description="A host device in the container (a disk, /dev/mem, a GPU) gives direct access to the hardware "
                "below every other container's isolation.",
    remediation="Remove the `devices:` entry, or grant read-only access only: `/dev/ttyUSB0:/dev/ttyUSB0:r`.",
    verification="`docker inspect --format '{{.HostConfig.Devices}}' CONTAINER` is empty.",
    controls=("cis-docker-1.6:5.18",),
    references=(CIS,),
)
def host_devices(service: Service, params: Mapping[str, Any]) -> Iterator[Finding]:
    for position, device in enumerate(service.get("devices") or []):
        if isinstance(device, str | dict):
            shown = device if isinstance(device, str) else str(device.get("source", device))
            yield f"exposes host device {shown}", service.at("devices", position)


# capabilities and confinement ----------------------------------------------------------------------------

DANGEROUS_CAPABILITIES = ("ALL", "SYS_ADMIN", "NET_ADMIN", "SYS_PTRACE", "SYS_MODULE", "SYS_RAWIO", "SYS_BOOT",
                          "DAC_READ_SEARCH", "SYS_TIME", "MAC_ADMIN", "MAC_OVERRIDE", "BPF", "PERFMON",
                          "SYSLOG", "NET_BROADCAST", "LINUX_IMMUTABLE", "SYS_RESOURCE", "WAKE_ALARM")


@compose_rule(
    id="MOAT-CMP-011",
    title="Service adds dangerous capabilities",
    severity="HIGH",
    description=(
        "Capabilities such as SYS_ADMIN, NET_ADMIN, SYS_PTRACE or SYS_MODULE (or ALL) give powers that are "
        "a short step from escaping the container: mounting filesystems, loading kernel modules, tracing "
        "host processes."
    ),
    remediation="Remove the capability from `cap_add`; start from `cap_drop: [ALL]` and add back only what the "
                "service needs, e.g. `cap_add: [NET_BIND_SERVICE]`.",
    verification="`docker inspect --format '{{.HostConfig.CapAdd}} {{.HostConfig.CapDrop}}' CONTAINER`.",
    controls=("cis-docker-1.6:5.4", "nist-800-190:4.4.3"),
    references=(CIS, "https://man7.org/linux/man-pages/man7/capabilities.7.html"),
    params={"dangerous_capabilities": list(DANGEROUS_CAPABILITIES)},
)
def dangerous_caps(service: Service, params: Mapping[str, Any]) -> Iterator[Finding]:
    dangerous = {str(c).upper().removeprefix("CAP_") for c in params.get("dangerous_capabilities", ())}
    for position, cap in enumerate(service.get("cap_add") or []):
        name = str(cap).upper().removeprefix("CAP_")
        if name in dangerous:
            yield f"adds capability {name}", service.at("cap_add", position)


def _opts(service: Service, name: str) -> list[tuple[str, JsonPath]]:
    return [(value, path) for key, value, path in service.security_opt if key.lower() == name]


@compose_rule(
    id="MOAT-CMP-012",
    title="Service may gain new privileges (no-new-privileges not set)",
    severity="MEDIUM",
    description=(
        "Without no-new-privileges, a process in the container can gain privileges through setuid or "
        "setcap binaries, turning a foothold as an unprivileged user into root in the container."
    ),
    remediation="security_opt:\n  - no-new-privileges:true",
    verification="`docker inspect --format '{{.HostConfig.SecurityOpt}}' CONTAINER` contains no-new-privileges "
                 "(or the daemon sets `\"no-new-privileges\": true` in daemon.json).",
    controls=("cis-docker-1.6:5.26",),
    references=(CIS,),
)
def new_privileges(service: Service, params: Mapping[str, Any]) -> Iterator[Finding]:
    if _is_true(service.get("privileged")):
        return  # MOAT-CMP-001 already says worse
    values = _opts(service, "no-new-privileges")
    if not values:
        yield "does not set security_opt no-new-privileges", service.path
    for value, path in values:
        if value.lower() == "false":
            yield "sets no-new-privileges:false", path


@compose_rule(
    id="MOAT-CMP-013",
    title="Service runs without seccomp (seccomp:unconfined)",
    severity="HIGH",
    description="The default seccomp profile blocks about 50 system calls that containers never need and that "
                "kernel exploits rely on; `unconfined` removes it.",
    remediation="Remove `seccomp:unconfined` from `security_opt`, or give a custom profile: "
                "`seccomp:./seccomp.json`.",
    verification="`docker inspect --format '{{.HostConfig.SecurityOpt}}' CONTAINER` has no seccomp=unconfined.",
    controls=("cis-docker-1.6:5.22",),
    references=(CIS, "https://docs.docker.com/engine/security/seccomp/"),
)
def seccomp_unconfined(service: Service, params: Mapping[str, Any]) -> Iterator[Finding]:
    for value, path in _opts(service, "seccomp"):
        if value.lower() == "unconfined":
            yield "disables seccomp (seccomp:unconfined)", path


@compose_rule(
    id="MOAT-CMP-014",
    title="Service runs without AppArmor (apparmor:unconfined)",
    severity="HIGH",
    description="The docker-default AppArmor profile denies writes to /proc and /sys and mounts; `unconfined` "
                "removes that layer.",
    remediation="Remove `apparmor:unconfined`, or name a profile: `apparmor:my-profile`.",
    verification="`docker inspect --format '{{.AppArmorProfile}}' CONTAINER` is docker-default or a custom "
                 "profile.",
    controls=("cis-docker-1.6:5.2",),
    references=(CIS, "https://docs.docker.com/engine/security/apparmor/"),
)
def apparmor_unconfined(service: Service, params: Mapping[str, Any]) -> Iterator[Finding]:
    for value, path in _opts(service, "apparmor"):
        if value.lower() == "unconfined":
            yield "disables AppArmor (apparmor:unconfined)", path


@compose_rule(
    id="MOAT-CMP-015",
    title="Service disables SELinux labelling (label:disable)",
    severity="MEDIUM",
    description="On SELinux hosts, label separation keeps containers from each other's files; `label:disable` "
                "runs the container unconfined.",
    remediation="Remove `label:disable`, or set a type: `label:type:svirt_apache_t`.",
    verification="`docker inspect --format '{{.HostConfig.SecurityOpt}}' CONTAINER` has no label=disable.",
    controls=("cis-docker-1.6:5.3",),
    references=(CIS,),
)
def selinux_disabled(service: Service, params: Mapping[str, Any]) -> Iterator[Finding]:
    for value, path in _opts(service, "label"):
        if value.lower() == "disable":
            yield "disables SELinux labels (label:disable)", path


# resources -------------------------------------------------------------------------------------------

@compose_rule(
    id="MOAT-CMP-016",
    title="Service has no memory limit",
    severity="MEDIUM",
    description="Without a memory limit one container can exhaust the host's memory and get other containers "
                "(or the Docker daemon) killed by the OOM killer.",
    remediation="deploy:\n  resources:\n    limits:\n      memory: 512M     # or mem_limit: 512m",
    verification="`docker inspect --format '{{.HostConfig.Memory}}' CONTAINER` is not 0.",
    controls=("cis-docker-1.6:5.11",),
    references=(CIS,),
)
def no_memory_limit(service: Service, params: Mapping[str, Any]) -> Iterator[Finding]:
    for value, path in ((service.get("mem_limit"), service.at("mem_limit")),
                        (service.limits.get("memory"), (*service.limits_path, "memory"))):
        if value is None:
            continue
        size = memory_bytes(value)
        if size == 0:
            yield "sets an unlimited memory limit (0)", path
        return
    yield "has no memory limit (mem_limit or deploy.resources.limits.memory)", service.path


@compose_rule(
    id="MOAT-CMP-017",
    title="Service has no CPU limit",
    severity="LOW",
    description="Without a CPU limit or share, one busy container can starve the others on the host.",
    remediation="deploy:\n  resources:\n    limits:\n      cpus: \"0.50\"     # or cpus: 0.5",
    verification="`docker inspect --format '{{.HostConfig.NanoCpus}} {{.HostConfig.CpuShares}} "
                 "{{.HostConfig.CpuQuota}}' CONTAINER`: one of them is set.",
    controls=("cis-docker-1.6:5.12",),
    references=(CIS,),
)
def no_cpu_limit(service: Service, params: Mapping[str, Any]) -> Iterator[Finding]:
    keys = ("cpus", "cpu_shares", "cpu_quota", "cpuset")
    if any(service.get(key) not in (None, 0, "0") for key in keys) or service.limits.get("cpus") is not None:
        return
    yield "has no CPU limit (cpus, cpu_shares or deploy.resources.limits.cpus)", service.path


@compose_rule(
    id="MOAT-CMP-018",
    title="Service has no PIDs limit",
    severity="LOW",
    description="Without a PIDs limit a fork bomb in one container exhausts the host's process table.",
    remediation="pids_limit: 200     # or deploy.resources.limits.pids: 200",
    verification="`docker inspect --format '{{.HostConfig.PidsLimit}}' CONTAINER` is a positive number.",
    controls=("cis-docker-1.6:5.29",),
    references=(CIS,),
)
def no_pids_limit(service: Service, params: Mapping[str, Any]) -> Iterator[Finding]:
    for value, path in ((service.get("pids_limit"), service.at("pids_limit")),
                        (service.limits.get("pids"), (*service.limits_path, "pids"))):
        if value is None:
            continue
        if isinstance(value, int) and not isinstance(value, bool) and value <= 0:
            yield f"sets pids_limit {value} (unlimited)", path
        return
    yield "has no PIDs limit (pids_limit or deploy.resources.limits.pids)", service.path


@compose_rule(
    id="MOAT-CMP-019",
    title="Service root filesystem is writable",
    severity="LOW",
    description="A writable root filesystem lets an intruder drop tools and change binaries and configuration "
                "inside the container; read-only with explicit writable volumes makes that visible.",
    remediation="read_only: true\ntmpfs:\n  - /tmp",
    verification="`docker inspect --format '{{.HostConfig.ReadonlyRootfs}}' CONTAINER` prints true.",
    controls=("cis-docker-1.6:5.13",),
    references=(CIS,),
)
def writable_rootfs(service: Service, params: Mapping[str, Any]) -> Iterator[Finding]:
    if not _is_true(service.get("read_only")):
        where = service.at("read_only") if "read_only" in service.data else service.path
        yield "does not mount its root filesystem read-only (read_only: true)", where


# ports -----------------------------------------------------------------------------------------------

@compose_rule(
    id="MOAT-CMP-020",
    title="Service publishes a privileged host port",
    severity="LOW",
    description="Host ports below 1024 are reserved for system services; publishing one from a container "
                "can shadow or be mistaken for a host service.",
    remediation="Publish a port of 1024 or above: `ports: [\"8080:80\"]`.",
    verification="`docker port CONTAINER`: no host port below 1024 (except where a reverse proxy is meant "
                 "to listen on 80/443).",
    controls=("cis-docker-1.6:5.8",),
    references=(CIS,),
    params={"allowed_privileged_ports": [80, 443]},
)
def privileged_port(service: Service, params: Mapping[str, Any]) -> Iterator[Finding]:
    allowed = {int(p) for p in params.get("allowed_privileged_ports", ()) if str(p).isdigit()}
    for port in service.ports:
        low = [n for n in port.published_ports if n < 1024 and n not in allowed]
        if low:
            yield f"publishes privileged host port {low[0]} (→ {port.target}/{port.protocol})", port.path


@compose_rule(
    id="MOAT-CMP-021",
    title="Service port is published on every host interface",
    severity="LOW",
    description="A port published without a host address listens on all interfaces, public ones included, "
                "and Docker's iptables rules bypass host firewalls such as ufw.",
    remediation="Bind to the interface that should receive traffic: `ports: [\"127.0.0.1:8080:80\"]`.",
    verification="`docker port CONTAINER`: no 0.0.0.0 or [::] unless the service is meant to be public.",
    controls=("cis-docker-1.6:5.14",),
    references=(CIS,),
)
def all_interfaces(service: Service, params: Mapping[str, Any]) -> Iterator[Finding]:
    for port in service.ports:
        if port.published and port.host_ip in ("", "0.0.0.0", "::"):
            yield f"publishes host port {port.published} on all interfaces", port.path


# restart, user, healthcheck, image ---------------------------------------------------------------------

@compose_rule(
    id="MOAT-CMP-022",
    title="Service restarts without a retry limit",
    severity="LOW",
    description="`restart: always` (or unless-stopped, or on-failure without a small maximum) restarts a "
                "crashing or compromised container forever, hiding the failure and helping a denial of service.",
    remediation="restart: on-failure:5     # or deploy.restart_policy: {condition: on-failure, max_attempts: 5}",
    verification="`docker inspect --format '{{.HostConfig.RestartPolicy.Name}} "
                 "{{.HostConfig.RestartPolicy.MaximumRetryCount}}' CONTAINER`: on-failure 5 or less.",
    controls=("cis-docker-1.6:5.15",),
    references=(CIS,),
    params={"max_restart_attempts": 5},
)
def restart_policy(service: Service, params: Mapping[str, Any]) -> Iterator[Finding]:
    limit = int(params.get("max_restart_attempts", 5))
    value = service.get("restart")
    if isinstance(value, str):
        name, _, count = value.strip().partition(":")
        if name in ("always", "unless-stopped"):
            yield f"uses restart: {name}", service.at("restart")
        elif name == "on-failure" and count.isdigit() and int(count) > limit:
            yield f"retries up to {count} times (more than {limit})", service.at("restart")
    policy = service.get("deploy")
    policy = policy.get("restart_policy") if isinstance(policy, dict) else None
    if isinstance(policy, dict):
        where = service.at("deploy", "restart_policy")
        attempts = policy.get("max_attempts")
        if policy.get("condition", "any") == "any" and not attempts:
            yield "restarts on any exit without max_attempts (deploy.restart_policy)", where
        elif isinstance(attempts, int) and attempts > limit:
            yield f"retries up to {attempts} times (more than {limit})", (*where, "max_attempts")


ROOT_USERS = ("root", "0")


@compose_rule(
    id="MOAT-CMP-023",
    title="Service runs as root",
    severity="MEDIUM",
    description="`user: root` (or uid 0) overrides the image's own user: a process that breaks out of the "
                "application is root inside the container, one kernel bug away from root on the host.",
    remediation="user: \"10001:10001\"     # a non-root uid that owns the files the service writes",
    verification="`docker inspect --format '{{.Config.User}}' CONTAINER` is a non-root user, and "
                 "`docker exec CONTAINER id -u` is not 0.",
    controls=("cis-docker-1.6:4.1", "nist-800-190:4.4.3"),
    references=(CIS,),
)
def root_user(service: Service, params: Mapping[str, Any]) -> Iterator[Finding]:
    value = service.get("user")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str) and value.strip().partition(":")[0] in ROOT_USERS:
        yield f"runs as user {value.strip()!r}", service.at("user")


@compose_rule(
    id="MOAT-CMP-024",
    title="Service disables its health check",
    severity="LOW",
    description="With the health check disabled, Docker cannot tell a hung service from a healthy one, and "
                "neither can the orchestration or monitoring that reads its state.",
    remediation="healthcheck:\n  test: [\"CMD\", \"curl\", \"-f\", \"http://localhost/health\"]\n  interval: 30s",
    verification="`docker inspect --format '{{.State.Health.Status}}' CONTAINER` prints healthy.",
    controls=("cis-docker-1.6:5.27",),
    references=(CIS,),
)
def healthcheck_disabled(service: Service, params: Mapping[str, Any]) -> Iterator[Finding]:
    check = service.get("healthcheck")
    if not isinstance(check, dict):
        return
    test = check.get("test")
    if _is_true(check.get("disable")) or test == ["NONE"] or test == "NONE":
        yield "disables the image's health check", service.at("healthcheck")


def image_tag(reference: str) -> tuple[str, str]:
    """(tag, digest) of an image reference; a missing tag is "" (Docker then pulls ``latest``)."""
    name, _, digest = reference.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = last.partition(":")[2] if ":" in last else ""
    return tag, digest


@compose_rule(
    id="MOAT-CMP-025",
    title="Service image is not pinned (latest or no tag)",
    severity="MEDIUM",
    description="`latest` (or no tag) pulls whatever the registry holds at deploy time: builds are not "
                "repeatable, a scanned image is not the one that runs, and a compromised registry push "
                "lands without review.",
    remediation="Pin a version and, better, a digest: `image: nginx:1.27.3@sha256:…`.",
    verification="`docker compose config --images` lists no image without a tag or with :latest; "
                 "`docker inspect --format '{{.Image}}' CONTAINER` matches the digest that was scanned.",
    controls=("nist-800-190:4.1.5",),
    references=("https://docs.docker.com/reference/compose-file/services/#image",),
)
def unpinned_image(service: Service, params: Mapping[str, Any]) -> Iterator[Finding]:
    image = service.get("image")
    if not isinstance(image, str) or not image.strip() or "$" in image:
        return  # built locally, or chosen by interpolation at run time
    tag, digest = image_tag(image.strip())
    if digest:
        return
    if tag == "latest":
        yield f"uses image {image!r} (latest)", service.at("image")
    elif not tag:
        yield f"uses image {image!r} without a tag (latest)", service.at("image")


def rule_ids() -> list[str]:
    """The ids this module registers (for tests and docs)."""
    return [f"MOAT-CMP-{n:03d}" for n in range(1, 26)]

