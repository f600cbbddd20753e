"""CIS Docker Benchmark 1.6 sections 1, 2 and 3 on a ``docker-host`` document: the host's audit watches
and partitions, the daemon's configuration (daemon.json and dockerd's flags, merged as dockerd merges
them, with the running daemon's ``/info`` where it tells more), and the ownership and modes of the
daemon's files. Each benchmark item is exactly one rule (``MOAT-DH-nnn``), automated where a file or
the Engine API settles it and manual otherwise.

The document is built by :mod:`moat.checks.targets.docker_host`; its shape is described there.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from moat.checks.document import Document, TargetKind
from moat.checks.rule import Hit, NotAssessable, RuleContext, manual_rule, rule
from moat.checks.rules.docker_cis import CIS, NETWORK, RUNTIME_CONFIG, docker_bench_alias

HOST = (TargetKind.DOCKER_HOST,)

DOCKERD = "https://docs.docker.com/reference/cli/dockerd/"
AUDITCTL = "https://man7.org/linux/man-pages/man8/auditctl.8.html"
PROTECT_ACCESS = "https://docs.docker.com/engine/security/protect-access/"
DAEMON_CONFIG = "https://docs.docker.com/engine/daemon/"

HOST_FILES = "nist-800-190:4.5.5"
"""Host OS file system tampering."""
USER_ACCESS = "nist-800-190:4.5.4"
"""Improper user access rights."""


# ----------------------------------------------------------------------------------------------
# Reading the document


def _data(doc: Document) -> Mapping[str, Any]:
    return doc.data if isinstance(doc.data, dict) else {}


def _info(doc: Document) -> Mapping[str, Any]:
    info = _data(doc).get("info")
    return info if isinstance(info, dict) else {}


@dataclass(frozen=True, slots=True)
class Setting:
    key: str
    value: Any
    source: str


def setting(doc: Document, key: str) -> Setting | None:
    """A daemon setting as dockerd ends up with it (daemon.json or a flag), None when left at default."""
    entry = (_data(doc).get("settings") or {}).get(key)
    if not isinstance(entry, dict) or "value" not in entry:
        return None
    return Setting(key, entry["value"], str(entry.get("source", "")))


def values(found: Setting | None) -> list[str]:
    if found is None:
        return []
    value = found.value
    if isinstance(value, list):
        return [str(item) for item in value]
    if isinstance(value, dict):
        return [f"{k}={v}" for k, v in value.items()]
    return [str(value)]


def setting_hit(doc: Document, found: Setting, message: str) -> Hit:
    """A finding about a setting, located in daemon.json (with its line) or in dockerd's command line."""
    in_json = found.source == _data(doc).get("daemon_json_path")
    return Hit(
        message,
        path=("daemon_json", found.key) if in_json else ("dockerd_args",),
        resource=found.source,
        evidence=f"{found.key}={found.value}" if not isinstance(found.value, list | dict) else
        f"{found.key}={values(found)}",
    )


def default_hit(doc: Document, message: str) -> Hit:
    """A finding about a setting nobody set: it names where the fix goes."""
    return Hit(message, resource=str(_data(doc).get("daemon_json_path") or "/etc/docker/daemon.json"))


def is_true(found: Setting | None) -> bool:
    return found is not None and (found.value is True or str(found.value).lower() == "true")


def is_false(found: Setting | None) -> bool:
    return found is not None and (found.value is False or str(found.value).lower() == "false")


def files_with(doc: Document, role: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for path, facts in (_data(doc).get("files") or {}).items():
        if isinstance(facts, dict) and role in (facts.get("roles") or ()) and facts.get("exists"):
            yield path, facts


def security_options(doc: Document) -> list[str]:
    options = _info(doc).get("SecurityOptions")
    return [str(item) for item in options] if isinstance(options, list) else []


# ----------------------------------------------------------------------------------------------
# 1.1.1 to 1.1.2: partition and docker group


@rule(
    id="MOAT-DH-001",
    title="Docker's data root is not on a separate partition",
    severity="MEDIUM",
    targets=HOST,
    description=(
        "Images, containers and volumes all live under Docker's data root (/var/lib/docker unless data-root "
        "moves it). When it shares a file system with the rest of the host, a container that fills its "
        "writable layer or a volume fills the host's root file system too, and the host stops logging, "
        "updating and eventually booting properly."
    ),
    remediation=(
        "Give the data root its own partition or logical volume and mount it there, e.g. in /etc/fstab:\n"
        "  /dev/vg0/docker  /var/lib/docker  ext4  defaults,nodev  0 2\n"
        "Stop Docker, move the old contents onto the new file system, mount it, and start Docker again."
    ),
    verification=(
        "Run `mountpoint -- \"$(docker info -f '{{.DockerRootDir}}')\"` (or `findmnt /var/lib/docker`): it must "
        "say the directory is a mountpoint."
    ),
    references=(CIS, "https://docs.docker.com/engine/daemon/#daemon-data-directory"),
    controls=("cis-docker-1.6:1.1.1", "nist-800-190:4.5.1"),
    aliases=(docker_bench_alias("1.1.1"),),
)
def separate_partition(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    data = _data(doc)
    root = str(data.get("data_root") or "/var/lib/docker")
    info_root = _info(doc).get("DockerRootDir")
    if isinstance(info_root, str) and info_root.startswith("/"):
        root = info_root
    facts = (data.get("files") or {}).get(root) or {}
    candidates = {root.rstrip("/") or "/", str(facts.get("resolved") or root).rstrip("/") or "/"}
    mounts = data.get("mounts") or []
    if not mounts:
        raise NotAssessable("neither /proc/mounts nor /etc/fstab could be read")
    if any(isinstance(m, dict) and m.get("mountpoint") in candidates for m in mounts):
        return
    yield Hit(f"{root} is not a mount point of its own (not in /proc/mounts or /etc/fstab)", path=("mounts",),
              resource=root)


@rule(
    id="MOAT-DH-002",
    title="Users who are not trusted can control the Docker daemon",
    severity="HIGH",
    targets=HOST,
    description=(
        "Any member of the group that owns the Docker socket can start a privileged container that mounts the "
        "host's root file system: membership is root on the host without a password prompt or an audit "
        "trail of sudo. Only administrators who are trusted with root belong in it."
    ),
    remediation=(
        "Remove everyone who should not be root from the group: `gpasswd -d alice docker`. List the members "
        "you trust in the rule's parameter so the check passes for them, e.g. in a template:\n"
        "  params:\n    trusted_docker_users: [ops-admin]"
    ),
    verification="Run `getent group docker` and confirm every listed user is trusted with root on this host.",
    references=(CIS, "https://docs.docker.com/engine/security/#docker-daemon-attack-surface",
                "https://docs.docker.com/engine/install/linux-postinstall/"),
    controls=("cis-docker-1.6:1.1.2", USER_ACCESS),
    aliases=(docker_bench_alias("1.1.2"),),
    params={"trusted_docker_users": []},
)
def docker_group_members(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    group = _data(doc).get("docker_group")
    if not isinstance(group, dict):
        return
    trusted = {str(name) for name in ctx.params.get("trusted_docker_users") or ()}
    for member in group.get("members") or ():
        if str(member) not in trusted:
            yield Hit(f'user "{member}" can control the Docker daemon (member of group "{group.get("name")}") '
                      "and is not listed in trusted_docker_users", path=("docker_group", "members"),
                      resource="/etc/group", evidence=str(member))


# ----------------------------------------------------------------------------------------------
# 1.1.3 to 1.1.18: audit watches


@dataclass(frozen=True, slots=True)
class AuditItem:
    rule_id: str
    cis_id: str
    label: str
    severity: str = "LOW"
    path: str = ""
    """A fixed path; empty when the document says where the file is (``role``)."""
    role: str = ""
    data_key: str = ""


AUDIT_ITEMS = (
    AuditItem("MOAT-DH-003", "1.1.3", "the Docker daemon binary", "MEDIUM", data_key="dockerd_binary"),
    AuditItem("MOAT-DH-004", "1.1.4", "/run/containerd", path="/run/containerd"),
    AuditItem("MOAT-DH-005", "1.1.5", "Docker's data root", data_key="data_root"),
    AuditItem("MOAT-DH-006", "1.1.6", "/etc/docker", path="/etc/docker"),
    AuditItem("MOAT-DH-007", "1.1.7", "the docker.service unit", role="docker.service"),
    AuditItem("MOAT-DH-008", "1.1.8", "containerd's socket", path="/run/containerd/containerd.sock"),
    AuditItem("MOAT-DH-009", "1.1.9", "the docker.socket unit", role="docker.socket"),
    AuditItem("MOAT-DH-010", "1.1.10", "/etc/default/docker", path="/etc/default/docker"),
    AuditItem("MOAT-DH-011", "1.1.11", "daemon.json", role="daemon.json"),
    AuditItem("MOAT-DH-012", "1.1.12", "/etc/containerd/config.toml", path="/etc/containerd/config.toml"),
    AuditItem("MOAT-DH-013", "1.1.13", "/etc/sysconfig/docker", path="/etc/sysconfig/docker"),
    AuditItem("MOAT-DH-014", "1.1.14", "/usr/bin/containerd", path="/usr/bin/containerd"),
    AuditItem("MOAT-DH-015", "1.1.15", "/usr/bin/containerd-shim", path="/usr/bin/containerd-shim"),
    AuditItem("MOAT-DH-016", "1.1.16", "/usr/bin/containerd-shim-runc-v1", path="/usr/bin/containerd-shim-runc-v1"),
    AuditItem("MOAT-DH-017", "1.1.17", "/usr/bin/containerd-shim-runc-v2", path="/usr/bin/containerd-shim-runc-v2"),
    AuditItem("MOAT-DH-018", "1.1.18", "/usr/bin/runc", path="/usr/bin/runc"),
)


def audit_watched(doc: Document) -> set[str]:
    watched: set[str] = set()
    for entry in _data(doc).get("audit_rules") or ():
        if isinstance(entry, dict):
            watched.update(str(path) for path in entry.get("watches") or ())
            watched.update(str(path) for path in entry.get("resolved_watches") or ())
    return watched


def covered(path: str, watched: set[str]) -> bool:
    """A watch on the path, or on a directory above it (``-w DIR`` and ``-F dir=`` are recursive)."""
    probe = path.rstrip("/") or "/"
    while True:
        if probe in watched:
            return True
        if probe == "/":
            return False
        probe = probe.rsplit("/", 1)[0] or "/"


def audit_targets(doc: Document, item: AuditItem) -> list[str]:
    data = _data(doc)
    if item.role:
        return [path for path, _facts in files_with(doc, item.role)]
    path = str(data.get(item.data_key) or "") if item.data_key else item.path
    facts = (data.get("files") or {}).get(path)
    return [path] if isinstance(facts, dict) and facts.get("exists") else []


def _audit_check(item: AuditItem) -> Any:
    def check(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
        watched = audit_watched(doc)
        for path in audit_targets(doc, item):
            facts = (_data(doc).get("files") or {}).get(path) or {}
            resolved = str(facts.get("resolved") or path)
            if covered(path, watched) or covered(resolved, watched):
                continue
            what = path if item.label == path else f"{path} ({item.label})"
            message = f"no audit rule watches {what}" if watched else f"no audit rules found, so nothing watches {what}"
            yield Hit(message, path=("audit_rules",), resource=path,
                      evidence=f"-w {path} -k docker")

    check.__name__ = f"audit_{item.cis_id.replace('.', '_')}"
    return check


for _item in AUDIT_ITEMS:
    rule(
        id=_item.rule_id,
        title=f"Changes to {_item.label} are not audited",
        severity=_item.severity,
        targets=HOST,
        description=(
            f"Docker runs as root, and {_item.label} decides what it does. Without an audit watch, a change to "
            "it — a swapped binary, a loosened setting, a new socket consumer — leaves no record in the audit "
            "log, so it can neither raise an alert nor be traced afterwards. The rule applies when the path "
            "exists on this host."
        ),
        remediation=(
            f"Add a watch for the path to the audit rules and load them, e.g. for {_item.path or 'the file'}:\n"
            f"  echo '-w {_item.path or '/path/to/file'} -k docker' >> /etc/audit/rules.d/docker.rules\n"
            "  augenrules --load"
        ),
        verification=(
            f"Run `auditctl -l | grep {_item.path or '<path>'}`: a `-w <path>` rule (or `-F path=`/`-F dir=`) "
            "must be listed for the path the finding names."
        ),
        references=(CIS, AUDITCTL),
        controls=(f"cis-docker-1.6:{_item.cis_id}", HOST_FILES),
        aliases=(docker_bench_alias(_item.cis_id),),
    )(_audit_check(_item))


# ----------------------------------------------------------------------------------------------
# 1.2: general host configuration (manual)

manual_rule(
    id="MOAT-DH-019",
    title="The container host is hardened",
    severity="MEDIUM",
    targets=HOST,
    description=(
        "Containers share the host's kernel: a weakness of the host is a weakness of every container on it. "
        "A host that runs containers should be a minimal, hardened, patched operating system."
    ),
    remediation=(
        "Harden the host against its operating system's CIS benchmark, or use a container-optimised "
        "distribution; remove packages and services the host does not need."
    ),
    verification=(
        "Review the host against its OS hardening baseline (e.g. the CIS benchmark for the distribution) and "
        "confirm `systemctl list-units --type=service --state=running` shows only needed services."
    ),
    references=(CIS, "https://docs.docker.com/engine/security/"),
    controls=("cis-docker-1.6:1.2.1", "nist-800-190:4.5.1"),
    aliases=(docker_bench_alias("1.2.1"),),
)

manual_rule(
    id="MOAT-DH-020",
    title="Docker is up to date",
    severity="MEDIUM",
    targets=HOST,
    description=(
        "Docker Engine, containerd and runc receive security fixes (container escapes among them); an old "
        "engine keeps the vulnerabilities those releases fixed."
    ),
    remediation="Update the engine from your distribution or Docker's repository, e.g. `apt-get install --only-upgrade "
                "docker-ce docker-ce-cli containerd.io`.",
    verification=(
        "Run `docker version` and compare the Engine, containerd and runc versions with the latest releases "
        "at https://docs.docker.com/engine/release-notes/."
    ),
    references=(CIS, "https://docs.docker.com/engine/release-notes/"),
    controls=("cis-docker-1.6:1.2.2", "nist-800-190:4.4.1"),
    aliases=(docker_bench_alias("1.2.2"),),
)


# ----------------------------------------------------------------------------------------------
# 2.x: daemon configuration

manual_rule(
    id="MOAT-DH-021",
    title="The Docker daemon runs as root where rootless mode would do",
    severity="MEDIUM",
    targets=HOST,
    description=(
        "A root daemon turns any escape from a container, and any access to its socket, into root on the host. "
        "Rootless mode runs the daemon and containers as an unprivileged user; whether a workload can run "
        "that way is a judgement about the workload."
    ),
    remediation="Where the workloads allow it, install rootless Docker (`dockerd-rootless-setuptool.sh install` "
                "as the service user) and retire the root daemon.",
    verification=(
        "Run `docker info -f '{{.SecurityOptions}}'`: `name=rootless` shows a rootless daemon; otherwise "
        "confirm with the owners that the workloads need a root daemon."
    ),
    references=(CIS, "https://docs.docker.com/engine/security/rootless/"),
    controls=("cis-docker-1.6:2.1", RUNTIME_CONFIG),
    aliases=(docker_bench_alias("2.1"),),
)


@rule(
    id="MOAT-DH-022",
    title="Containers on the default bridge can talk to each other",
    severity="MEDIUM",
    targets=HOST,
    description=(
        "By default every container on the default bridge network can reach every other one on any port. "
        "One compromised container can then probe and attack its neighbours."
    ),
    remediation='Set "icc": false in /etc/docker/daemon.json (or start dockerd with --icc=false) and link the '
                "containers that must talk on user-defined networks.",
    verification="Run `docker network inspect bridge -f "
                 "'{{index .Options \"com.docker.network.bridge.enable_icc\"}}'`: it must print false.",
    references=(CIS, DOCKERD, "https://docs.docker.com/engine/network/drivers/bridge/"),
    controls=("cis-docker-1.6:2.2", NETWORK),
    aliases=(docker_bench_alias("2.2"),),
)
def inter_container_traffic(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    found = setting(doc, "icc")
    if is_false(found):
        return
    if found is None:
        yield default_hit(doc, "icc is not set (dockerd defaults it to true)")
    else:
        yield setting_hit(doc, found, f"icc is {found.value!r}")


@rule(
    id="MOAT-DH-023",
    title="The daemon's log level is not info",
    severity="LOW",
    targets=HOST,
    description=(
        "At warn or error the daemon leaves out events an investigation needs; at debug it logs so much, "
        "including request details, that the log grows fast and may hold sensitive data."
    ),
    remediation='Remove log-level (and debug) from daemon.json and dockerd\'s flags, or set "log-level": "info".',
    verification="Run `docker info -f '{{.Debug}}'` (false) and `ps -o args= -C dockerd` / daemon.json: no log level "
                 "other than info.",
    references=(CIS, DOCKERD),
    controls=("cis-docker-1.6:2.3",),
    aliases=(docker_bench_alias("2.3"),),
)
def log_level(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    found = setting(doc, "log-level")
    if found is not None and str(found.value).lower() != "info":
        yield setting_hit(doc, found, f"log-level is {found.value!r}, not info")
    debug = setting(doc, "debug")
    if is_true(debug) and debug is not None:
        yield setting_hit(doc, debug, "debug is on: the daemon logs at debug level")
    elif debug is None and _info(doc).get("Debug") is True:
        yield Hit("the running daemon reports Debug: true", path=("info", "Debug"))


@rule(
    id="MOAT-DH-024",
    title="Docker may not manage iptables",
    severity="MEDIUM",
    targets=HOST,
    description=(
        "With iptables disabled, Docker no longer writes the firewall rules that isolate its networks and "
        "publish only the ports asked for; hand-written rules drift out of step with the containers and "
        "usually end up too open."
    ),
    remediation='Remove "iptables": false from daemon.json (and --iptables=false from the dockerd command line).',
    verification="Check `ps -o args= -C dockerd` and /etc/docker/daemon.json: iptables must not be false.",
    references=(CIS, DOCKERD, "https://docs.docker.com/engine/network/packet-filtering-firewalls/"),
    controls=("cis-docker-1.6:2.4", NETWORK),
    aliases=(docker_bench_alias("2.4"),),
)
def iptables(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    found = setting(doc, "iptables")
    if is_false(found) and found is not None:
        yield setting_hit(doc, found, "iptables is false: Docker does not manage its firewall rules")


_DEFAULT_INSECURE = {"127.0.0.0/8", "::1/128"}


@rule(
    id="MOAT-DH-025",
    title="Insecure registries are allowed",
    severity="HIGH",
    targets=HOST,
    description=(
        "An insecure registry is reached over plain HTTP or with unverified TLS: anyone on the path can "
        "replace the images the host pulls, and the registry credentials travel in the clear."
    ),
    remediation='Remove the entries from "insecure-registries" in daemon.json (and every --insecure-registry flag); '
                "give the registry a certificate the host trusts (/etc/docker/certs.d/<registry>/ca.crt).",
    verification="Run `docker info -f '{{.RegistryConfig.InsecureRegistryCIDRs}} "
                 "{{json .RegistryConfig.IndexConfigs}}'`: only 127.0.0.0/8 and no index with \"Secure\":false.",
    references=(CIS, DOCKERD, "https://docs.docker.com/reference/cli/dockerd/#insecure-registries"),
    controls=("cis-docker-1.6:2.5", "nist-800-190:4.2.1"),
    aliases=(docker_bench_alias("2.5"),),
)
def insecure_registries(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    found = setting(doc, "insecure-registries")
    configured = [name for name in values(found) if name not in _DEFAULT_INSECURE]
    if found is not None and configured:
        yield setting_hit(doc, found, f"insecure registries allowed: {', '.join(configured)}")
        return
    registry = _info(doc).get("RegistryConfig")
    if not isinstance(registry, dict):
        return
    cidrs = registry.get("InsecureRegistryCIDRs") or ()
    running: list[str] = [str(c) for c in cidrs if str(c) not in _DEFAULT_INSECURE]
    indexes = registry.get("IndexConfigs")
    if isinstance(indexes, dict):
        running += [str(name) for name, index in indexes.items()
                    if isinstance(index, dict) and index.get("Secure") is False]
    if running:
        yield Hit(f"the running daemon allows insecure registries: {', '.join(sorted(set(running)))}",
                  path=("info", "RegistryConfig"))


@rule(
    id="MOAT-DH-026",
    title="The aufs storage driver is used",
    severity="MEDIUM",
    targets=HOST,
    description=(
        "aufs is an out-of-tree file system that current kernels do not ship and Docker no longer supports; "
        "it has had kernel crashes and security bugs nobody fixes any more."
    ),
    remediation='Use overlay2: set "storage-driver": "overlay2" in daemon.json (images must be pulled again).',
    verification="Run `docker info -f '{{.Driver}}'`: it must not print aufs.",
    references=(CIS, "https://docs.docker.com/engine/storage/drivers/select-storage-driver/"),
    controls=("cis-docker-1.6:2.6", RUNTIME_CONFIG),
    aliases=(docker_bench_alias("2.6"),),
)
def aufs_driver(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    found = setting(doc, "storage-driver")
    if found is not None and str(found.value).lower() == "aufs":
        yield setting_hit(doc, found, "storage-driver is aufs")
    elif str(_info(doc).get("Driver", "")).lower() == "aufs":
        yield Hit("the running daemon uses the aufs storage driver", path=("info", "Driver"))


@rule(
    id="MOAT-DH-027",
    title="The daemon listens on TCP without TLS client authentication",
    severity="CRITICAL",
    targets=HOST,
    description=(
        "The Engine API is root on the host. Exposed on a TCP port without mutual TLS, anyone who can reach "
        "the port can start a privileged container and take the machine."
    ),
    remediation=(
        "Listen on the unix socket only, or require client certificates, e.g. in daemon.json:\n"
        '  {"hosts": ["unix:///var/run/docker.sock", "tcp://0.0.0.0:2376"], "tlsverify": true,\n'
        '   "tlscacert": "/etc/docker/tls/ca.pem", "tlscert": "/etc/docker/tls/server-cert.pem",\n'
        '   "tlskey": "/etc/docker/tls/server-key.pem"}'
    ),
    verification="Run `ps -o args= -C dockerd` and read daemon.json: for every tcp:// host, tlsverify must be true and "
                 "tlscacert, tlscert and tlskey set; `curl http://HOST:2375/version` must fail.",
    references=(CIS, PROTECT_ACCESS),
    controls=("cis-docker-1.6:2.7", "nist-800-190:4.3.1"),
    aliases=(docker_bench_alias("2.7"),),
)
def tls_authentication(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    hosts = setting(doc, "hosts")
    tcp = [host for host in values(hosts) if host.startswith(("tcp://", "http://", "https://")) or
           (":" in host and not host.startswith(("unix://", "fd://", "npipe://", "/")))]
    if not tcp or hosts is None:
        return
    missing = [key for key in ("tlscacert", "tlscert", "tlskey") if not values(setting(doc, key))]
    if not is_true(setting(doc, "tlsverify")):
        missing.insert(0, "tlsverify")
    if missing:
        yield setting_hit(doc, hosts, f"the daemon listens on {', '.join(tcp)} without {', '.join(missing)}")


@rule(
    id="MOAT-DH-028",
    title="No daemon-wide default ulimit is set",
    severity="LOW",
    targets=HOST,
    description=(
        "Without default ulimits each container inherits the daemon's own limits, which are generous; one "
        "container can then exhaust file descriptors or processes for the whole host."
    ),
    remediation='Set default ulimits in daemon.json, e.g. "default-ulimits": {"nofile": {"Name": "nofile", '
                '"Hard": 64000, "Soft": 64000}, "nproc": {"Name": "nproc", "Hard": 4096, "Soft": 4096}}.',
    verification="Read /etc/docker/daemon.json and `ps -o args= -C dockerd`: default-ulimits / --default-ulimit must "
                 "be set to values that suit the workloads.",
    references=(CIS, "https://docs.docker.com/reference/cli/dockerd/#default-ulimit-settings"),
    controls=("cis-docker-1.6:2.8", RUNTIME_CONFIG),
    aliases=(docker_bench_alias("2.8"),),
)
def default_ulimits(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    if not values(setting(doc, "default-ulimits")):
        yield default_hit(doc, "default-ulimits is not set")


@rule(
    id="MOAT-DH-029",
    title="User namespace remapping is not enabled",
    severity="MEDIUM",
    targets=HOST,
    description=(
        "Without user namespace remapping, root in a container is uid 0 on the host: a process that escapes "
        "the container, or writes through a bind mount, does so as the host's root."
    ),
    remediation='Set "userns-remap": "default" in daemon.json (Docker creates the dockremap user and subordinate '
                "ids) and restart the daemon; containers that need host root can opt out with --userns=host.",
    verification="Run `docker info -f '{{.SecurityOptions}}'`: it must contain name=userns.",
    references=(CIS, "https://docs.docker.com/engine/security/userns-remap/"),
    controls=("cis-docker-1.6:2.9", RUNTIME_CONFIG),
    aliases=(docker_bench_alias("2.9"),),
)
def userns_remap(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    found = setting(doc, "userns-remap")
    if found is not None and str(found.value).strip():
        return
    if any(option.startswith("name=userns") or option.startswith("name=rootless") for option in security_options(doc)):
        return
    yield default_hit(doc, "userns-remap is not set")


@rule(
    id="MOAT-DH-030",
    title="The daemon's default cgroup parent is changed",
    severity="LOW",
    targets=HOST,
    description=(
        "The cgroup parent decides which resource limits and accounting containers fall under. A changed "
        "default is fine when it was meant, and a quiet way to move every container out from under the "
        "limits the host's cgroup layout sets when it was not."
    ),
    remediation='Remove "cgroup-parent" from daemon.json (and --cgroup-parent) unless the cgroup named is the one '
                "intended; document it when it is, and exclude this rule for the host in a template.",
    verification="Run `ps -o args= -C dockerd` and read daemon.json: confirm the cgroup-parent value is intended.",
    references=(CIS, "https://docs.docker.com/reference/cli/dockerd/#default-cgroup-parent"),
    controls=("cis-docker-1.6:2.10", RUNTIME_CONFIG),
    aliases=(docker_bench_alias("2.10"),),
)
def cgroup_parent(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    found = setting(doc, "cgroup-parent")
    if found is not None and str(found.value).strip():
        yield setting_hit(doc, found, f"cgroup-parent is {found.value!r}: confirm containers belong under it")


@rule(
    id="MOAT-DH-031",
    title="The base device size is changed",
    severity="LOW",
    targets=HOST,
    description=(
        "dm.basesize enlarges every container's root file system on devicemapper; raised without need it lets "
        "containers fill the thin pool and deny space to the rest."
    ),
    remediation='Remove "dm.basesize" from "storage-opts" in daemon.json (and --storage-opt dm.basesize=…).',
    verification="Read daemon.json and `ps -o args= -C dockerd`: no dm.basesize storage option.",
    references=(CIS, "https://docs.docker.com/reference/cli/dockerd/#daemon-storage-driver"),
    controls=("cis-docker-1.6:2.11", RUNTIME_CONFIG),
    aliases=(docker_bench_alias("2.11"),),
)
def base_device_size(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    found = setting(doc, "storage-opts")
    changed = [value for value in values(found) if value.replace(" ", "").lower().startswith("dm.basesize")]
    if changed and found is not None:
        yield setting_hit(doc, found, f"base device size changed: {', '.join(changed)}")


@rule(
    id="MOAT-DH-032",
    title="No authorization plugin controls Docker client commands",
    severity="MEDIUM",
    targets=HOST,
    description=(
        "Without an authorization plugin, whoever reaches the socket may do everything the API allows, "
        "including privileged containers and host mounts; nothing restricts or records the request."
    ),
    remediation='Install an authorization plugin and enable it, e.g. "authorization-plugins": ["opa-docker-authz"] '
                "in daemon.json.",
    verification="Run `docker info -f '{{.Plugins.Authorization}}'`: it must list the plugin.",
    references=(CIS, "https://docs.docker.com/engine/extend/plugins_authorization/"),
    controls=("cis-docker-1.6:2.12", USER_ACCESS),
    aliases=(docker_bench_alias("2.12"),),
)
def authorization_plugin(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    if values(setting(doc, "authorization-plugins")):
        return
    plugins = _info(doc).get("Plugins")
    if isinstance(plugins, dict) and plugins.get("Authorization"):
        return
    yield default_hit(doc, "authorization-plugins is not set")


_LOCAL_LOG_DRIVERS = {"json-file", "local", "none", ""}


@rule(
    id="MOAT-DH-033",
    title="Container logs are not sent to a central log service",
    severity="LOW",
    targets=HOST,
    description=(
        "With the default local log drivers, container logs stay on the host: they rotate away, and an "
        "intruder who owns the host can erase them. A remote log service keeps them for investigation."
    ),
    remediation='Set a remote log driver in daemon.json, e.g. "log-driver": "syslog", "log-opts": '
                '{"syslog-address": "tcp://logs.example.com:514"} (or journald forwarded to a collector, '
                "fluentd, gelf).",
    verification="Run `docker info -f '{{.LoggingDriver}}'`: it must not be json-file, local or none.",
    references=(CIS, "https://docs.docker.com/engine/logging/configure/"),
    controls=("cis-docker-1.6:2.13",),
    aliases=(docker_bench_alias("2.13"),),
)
def central_logging(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    found = setting(doc, "log-driver")
    if found is not None:
        if str(found.value).lower() in _LOCAL_LOG_DRIVERS:
            yield setting_hit(doc, found, f"log-driver is {found.value!r}: logs stay on this host")
        return
    running = _info(doc).get("LoggingDriver")
    if isinstance(running, str) and running.lower() not in _LOCAL_LOG_DRIVERS:
        return
    yield default_hit(doc, f"log-driver is not set (the daemon uses {running or 'json-file'!r})")


@rule(
    id="MOAT-DH-034",
    title="Containers may acquire new privileges by default",
    severity="MEDIUM",
    targets=HOST,
    description=(
        "Without no-new-privileges, a process in a container can gain privileges through setuid and setgid "
        "binaries or file capabilities. Setting it daemon-wide closes that path for every container that does "
        "not opt out."
    ),
    remediation='Set "no-new-privileges": true in daemon.json (or start dockerd with --no-new-privileges).',
    verification="Read daemon.json and `ps -o args= -C dockerd`: no-new-privileges must be true.",
    references=(CIS, DOCKERD),
    controls=("cis-docker-1.6:2.14", RUNTIME_CONFIG),
    aliases=(docker_bench_alias("2.14"),),
)
def no_new_privileges(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    found = setting(doc, "no-new-privileges")
    if is_true(found):
        return
    if found is None:
        yield default_hit(doc, "no-new-privileges is not set daemon-wide")
    else:
        yield setting_hit(doc, found, f"no-new-privileges is {found.value!r}")


@rule(
    id="MOAT-DH-035",
    title="Live restore is not enabled",
    severity="LOW",
    targets=HOST,
    description=(
        "Without live restore, stopping or upgrading the daemon stops every container. Patching the engine "
        "then means downtime, so security updates get put off."
    ),
    remediation='Set "live-restore": true in daemon.json (not available in swarm mode).',
    verification="Run `docker info -f '{{.LiveRestoreEnabled}}'`: it must print true.",
    references=(CIS, "https://docs.docker.com/engine/daemon/live-restore/"),
    controls=("cis-docker-1.6:2.15",),
    aliases=(docker_bench_alias("2.15"),),
)
def live_restore(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    found = setting(doc, "live-restore")
    if is_true(found) or _info(doc).get("LiveRestoreEnabled") is True:
        return
    swarm = _info(doc).get("Swarm")
    if isinstance(swarm, dict) and swarm.get("LocalNodeState") == "active":
        return  # live restore is incompatible with swarm mode; the benchmark does not ask for it there
    if found is None:
        yield default_hit(doc, "live-restore is not set")
    else:
        yield setting_hit(doc, found, f"live-restore is {found.value!r}")


@rule(
    id="MOAT-DH-036",
    title="The userland proxy is enabled",
    severity="LOW",
    targets=HOST,
    description=(
        "The userland proxy (docker-proxy) forwards published ports with one process per port; hairpin NAT "
        "does the same in the kernel. The proxy adds a privileged process and attack surface that are not "
        "needed on current kernels."
    ),
    remediation='Set "userland-proxy": false in daemon.json.',
    verification="Read daemon.json and `ps -o args= -C dockerd`: userland-proxy must be false; `pgrep docker-proxy` "
                 "finds nothing.",
    references=(CIS, "https://docs.docker.com/engine/network/packet-filtering-firewalls/#docker-on-a-router"),
    controls=("cis-docker-1.6:2.16", NETWORK),
    aliases=(docker_bench_alias("2.16"),),
)
def userland_proxy(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    found = setting(doc, "userland-proxy")
    if is_false(found):
        return
    if found is None:
        yield default_hit(doc, "userland-proxy is not set (dockerd defaults it to true)")
    else:
        yield setting_hit(doc, found, f"userland-proxy is {found.value!r}")


manual_rule(
    id="MOAT-DH-037",
    title="A daemon-wide custom seccomp profile is applied where appropriate",
    severity="MEDIUM",
    targets=HOST,
    description=(
        "Docker's default seccomp profile blocks a few dozen dangerous system calls. A stricter daemon-wide "
        "profile, fitted to what the host's workloads use, removes more of the kernel's attack surface; "
        "whether one is appropriate depends on those workloads."
    ),
    remediation='Write a profile and set it daemon-wide: "seccomp-profile": "/etc/docker/seccomp/profile.json" in '
                'daemon.json. Never set it to "unconfined".',
    verification="Run `docker info -f '{{.SecurityOptions}}'`: name=seccomp,profile= shows the profile in force; "
                 "confirm it is the one chosen for this host's workloads.",
    references=(CIS, "https://docs.docker.com/engine/security/seccomp/"),
    controls=("cis-docker-1.6:2.17", "nist-800-190:4.5.2"),
    aliases=(docker_bench_alias("2.17"),),
)


@rule(
    id="MOAT-DH-038",
    title="Experimental features are enabled",
    severity="LOW",
    targets=HOST,
    description=(
        "Experimental features are unfinished and get little security review; they do not belong on a "
        "production daemon."
    ),
    remediation='Remove "experimental": true from daemon.json (and --experimental from dockerd\'s flags).',
    verification="Run `docker version -f '{{.Server.Experimental}}'`: it must print false.",
    references=(CIS, DOCKERD),
    controls=("cis-docker-1.6:2.18",),
    aliases=(docker_bench_alias("2.18"),),
)
def experimental(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    found = setting(doc, "experimental")
    if is_true(found) and found is not None:
        yield setting_hit(doc, found, "experimental features are enabled")
    elif found is None and _info(doc).get("ExperimentalBuild") is True:
        yield Hit("the running daemon reports ExperimentalBuild: true", path=("info", "ExperimentalBuild"))


# ----------------------------------------------------------------------------------------------
# 3.x: ownership and permissions of the daemon's files


@dataclass(frozen=True, slots=True)
class FileItem:
    rule_id: str
    cis_id: str
    role: str
    label: str
    example: str
    """The usual path, for remediation and verification text."""
    max_mode: int | None = None
    """Permission items: the most the mode may allow."""
    group: str = ""
    """Ownership items: the group expected (the owner is always root)."""
    severity: str = "MEDIUM"


FILE_ITEMS = (
    FileItem("MOAT-DH-039", "3.1", "docker.service", "the docker.service unit",
             "/usr/lib/systemd/system/docker.service", group="root"),
    FileItem("MOAT-DH-040", "3.2", "docker.service", "the docker.service unit",
             "/usr/lib/systemd/system/docker.service", max_mode=0o644),
    FileItem("MOAT-DH-041", "3.3", "docker.socket", "the docker.socket unit",
             "/usr/lib/systemd/system/docker.socket", group="root"),
    FileItem("MOAT-DH-042", "3.4", "docker.socket", "the docker.socket unit",
             "/usr/lib/systemd/system/docker.socket", max_mode=0o644),
    FileItem("MOAT-DH-043", "3.5", "/etc/docker", "the /etc/docker directory", "/etc/docker", group="root"),
    FileItem("MOAT-DH-044", "3.6", "/etc/docker", "the /etc/docker directory", "/etc/docker", max_mode=0o755),
    FileItem("MOAT-DH-045", "3.7", "registry-certificate", "a registry certificate file",
             "/etc/docker/certs.d/<registry>/ca.crt", group="root"),
    FileItem("MOAT-DH-046", "3.8", "registry-certificate", "a registry certificate file",
             "/etc/docker/certs.d/<registry>/ca.crt", max_mode=0o444),
    FileItem("MOAT-DH-047", "3.9", "tls-ca", "the TLS CA certificate", "/etc/docker/tls/ca.pem", group="root"),
    FileItem("MOAT-DH-048", "3.10", "tls-ca", "the TLS CA certificate", "/etc/docker/tls/ca.pem", max_mode=0o444),
    FileItem("MOAT-DH-049", "3.11", "tls-cert", "the daemon's TLS certificate", "/etc/docker/tls/server-cert.pem",
             group="root"),
    FileItem("MOAT-DH-050", "3.12", "tls-cert", "the daemon's TLS certificate", "/etc/docker/tls/server-cert.pem",
             max_mode=0o444),
    FileItem("MOAT-DH-051", "3.13", "tls-key", "the daemon's TLS key", "/etc/docker/tls/server-key.pem",
             group="root", severity="HIGH"),
    FileItem("MOAT-DH-052", "3.14", "tls-key", "the daemon's TLS key", "/etc/docker/tls/server-key.pem",
             max_mode=0o400, severity="HIGH"),
    FileItem("MOAT-DH-053", "3.15", "docker-socket", "the Docker socket", "/var/run/docker.sock", group="docker",
             severity="HIGH"),
    FileItem("MOAT-DH-054", "3.16", "docker-socket", "the Docker socket", "/var/run/docker.sock", max_mode=0o660,
             severity="HIGH"),
    FileItem("MOAT-DH-055", "3.17", "daemon.json", "daemon.json", "/etc/docker/daemon.json", group="root"),
    FileItem("MOAT-DH-056", "3.18", "daemon.json", "daemon.json", "/etc/docker/daemon.json", max_mode=0o644),
    FileItem("MOAT-DH-057", "3.19", "/etc/default/docker", "/etc/default/docker", "/etc/default/docker",
             group="root"),
    FileItem("MOAT-DH-058", "3.20", "/etc/default/docker", "/etc/default/docker", "/etc/default/docker",
             max_mode=0o644),
    FileItem("MOAT-DH-059", "3.21", "/etc/sysconfig/docker", "/etc/sysconfig/docker", "/etc/sysconfig/docker",
             max_mode=0o644),
    FileItem("MOAT-DH-060", "3.22", "/etc/sysconfig/docker", "/etc/sysconfig/docker", "/etc/sysconfig/docker",
             group="root"),
    FileItem("MOAT-DH-061", "3.23", "containerd-socket", "containerd's socket", "/run/containerd/containerd.sock",
             group="root", severity="HIGH"),
    FileItem("MOAT-DH-062", "3.24", "containerd-socket", "containerd's socket", "/run/containerd/containerd.sock",
             max_mode=0o660, severity="HIGH"),
)


def _socket_group(doc: Document) -> str:
    return str(values(setting(doc, "group"))[0]) if values(setting(doc, "group")) else "docker"


def _file_check(item: FileItem) -> Any:
    def check(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
        for path, facts in files_with(doc, item.role):
            if item.max_mode is not None:
                try:
                    mode = int(str(facts.get("mode")), 8)
                except ValueError:
                    continue
                extra = mode & ~item.max_mode & 0o7777
                if extra:
                    yield Hit(f"{path} has mode {mode:04o}; {item.max_mode:04o} or stricter expected",
                              path=("files", path, "mode"), resource=path, evidence=f"{mode:04o}")
                continue
            group = _socket_group(doc) if item.group == "docker" else item.group
            allowed_groups = {group, "root"} if item.group == "docker" else {group}
            owner, actual_group = str(facts.get("owner")), str(facts.get("group"))
            if owner != "root" or actual_group not in allowed_groups:
                yield Hit(f"{path} is owned by {owner}:{actual_group}; root:{group} expected",
                          path=("files", path, "owner"), resource=path, evidence=f"{owner}:{actual_group}")

    check.__name__ = f"files_{item.cis_id.replace('.', '_')}"
    return check


def _file_rule_text(item: FileItem) -> dict[str, str]:
    if item.max_mode is not None:
        mode = f"{item.max_mode:o}"
        return {
            "title": f"Permissions of {item.label} are looser than {mode}",
            "description": (
                f"{item.label[0].upper()}{item.label[1:]} controls how the Docker daemon runs or who may talk to it. "
                f"Write access for anyone but root — or read access, for a key — lets a local user change the "
                f"daemon's behaviour or impersonate it. The benchmark asks for {mode} or stricter."
            ),
            "remediation": f"chmod {mode} {item.example}  (for every file the finding names)",
            "verification": f"Run `stat -c '%a %n' {item.example}`: the mode must be {mode} or stricter.",
        }
    group = item.group
    return {
        "title": f"{item.label[0].upper()}{item.label[1:]} is not owned by root:{group}",
        "description": (
            f"{item.label[0].upper()}{item.label[1:]} controls how the Docker daemon runs or who may talk to it. "
            f"Owned by another user or group, it can be changed by someone other than root — the same as "
            f"giving them root through the daemon."
        ),
        "remediation": f"chown root:{group} {item.example}  (for every file the finding names)",
        "verification": f"Run `stat -c '%U:%G %n' {item.example}`: it must print root:{group}.",
    }


for _file_item in FILE_ITEMS:
    _texts = _file_rule_text(_file_item)
    rule(
        id=_file_item.rule_id,
        title=_texts["title"],
        severity=_file_item.severity,
        targets=HOST,
        description=_texts["description"],
        remediation=_texts["remediation"],
        verification=_texts["verification"],
        references=(CIS, PROTECT_ACCESS if _file_item.role.startswith("tls") else DAEMON_CONFIG),
        controls=(f"cis-docker-1.6:{_file_item.cis_id}", HOST_FILES),
        aliases=(docker_bench_alias(_file_item.cis_id),),
    )(_file_check(_file_item))
