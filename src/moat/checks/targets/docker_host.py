"""A Docker host's facts as documents, gathered agentless: files under a root, and the Engine API.

``moat host`` audits a machine against CIS Docker Benchmark 1.6 sections 1, 2, 3 and 5. Everything
those items ask about is either a file (daemon.json, the systemd units, audit rules, mount tables,
ownership and modes of the daemon's files) or something the running daemon answers over its socket
(``/info``, ``/version``, each container's inspect JSON). This module reads both and hands the rules
plain data:

* one ``docker-host`` document: the daemon's configuration as dockerd sees it (daemon.json *and* the
  flags of the running dockerd or of its systemd unit, since dockerd merges both), the facts of every
  file section 3 names, the audit watches, the mounts, the ``docker`` group, and ``/info`` and
  ``/version`` when an engine answers;
* one ``docker-container`` document per running container: its inspect JSON, plus its process list
  (``/containers/{id}/top``) in ``facts`` when the engine can give one.

The root may be the live host (``/``) or a copied tree. Paths are resolved inside it the way a chroot
would resolve them: an absolute symlink means the root's own path, and ``..`` stops at the root, so
nothing outside it is ever read. User and group names come from the root's own /etc/passwd and
/etc/group, as they would on that host.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import stat
from collections import deque
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import httpx

from moat.checks.document import Document, TargetKind
from moat.errors import MoatError, ParseError, SourceError
from moat.image.engine import DEFAULT_SOCKET, engine_socket
from moat.image.source import SourceOptions

MAX_CONFIG_BYTES = 1024 * 1024
"""daemon.json, units, audit rules, passwd: real ones are a few KiB."""
MAX_ACCOUNTS_BYTES = 16 * 1024 * 1024
"""/etc/passwd and /etc/group: hosts with directory-synced accounts have large ones."""
MAX_CMDLINE_BYTES = 256 * 1024
MAX_LISTED = 2000
"""Entries read from one directory (drop-ins, audit rule files, registry certificates)."""
MAX_PROCESSES = 200_000
MAX_SYMLINK_HOPS = 40
MAX_ENGINE_BYTES = 32 * 1024 * 1024
MAX_CONTAINERS = 5000
ENGINE_TIMEOUT = 30.0
ENGINE_WORKERS = 8
"""Containers read at once (inspect + top); 20 podman containers took 3.3 s one by one, 1.7 s with 8 on 2 CPUs."""

UNIT_DIRS = (
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
)
"""systemd's unit search path, highest precedence first."""

DEFAULT_DAEMON_JSON = "/etc/docker/daemon.json"
DEFAULT_DATA_ROOT = "/var/lib/docker"
CONTAINERD_SOCKET = "/run/containerd/containerd.sock"
ENV_FILES = ("/etc/default/docker", "/etc/sysconfig/docker")

AUDIT_TARGETS = (
    "/run/containerd",
    "/etc/docker",
    "/etc/containerd/config.toml",
    "/etc/default/docker",
    "/etc/sysconfig/docker",
    "/usr/bin/containerd",
    "/usr/bin/containerd-shim",
    "/usr/bin/containerd-shim-runc-v1",
    "/usr/bin/containerd-shim-runc-v2",
    "/usr/bin/runc",
    CONTAINERD_SOCKET,
)
"""Fixed paths CIS 1.1.x wants watched; the daemon binary, data root, units and daemon.json are added
where this host has them."""


# ----------------------------------------------------------------------------------------------
# Reading files inside a root


class HostRoot:
    """Files of a host mounted or copied at ``root``, resolved without ever leaving it."""

    def __init__(self, root: str) -> None:
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise MoatError(f"--root {root}: no such directory")

    def resolve(self, path: str) -> str | None:
        """The host path ``path`` after following symlinks inside the root, or None when missing."""
        pending = deque(PurePosixPath(path).parts[1:] if path.startswith("/") else PurePosixPath(path).parts)
        current: list[str] = []
        hops = 0
        while pending:
            part = pending.popleft()
            if part in ("", "."):
                continue
            if part == "..":
                if current:
                    current.pop()
                continue
            real = self.root.joinpath(*current, part)
            try:
                info = os.lstat(real)
            except OSError:
                return None
            if stat.S_ISLNK(info.st_mode):
                hops += 1
                if hops > MAX_SYMLINK_HOPS:
                    return None
                try:
                    target = os.readlink(real)
                except OSError:
                    return None
                if target.startswith("/"):
                    current = []
                pending.extendleft(reversed(PurePosixPath(target).parts[1:] if target.startswith("/")
                                            else PurePosixPath(target).parts))
                continue
            if pending and not stat.S_ISDIR(info.st_mode):
                return None
            current.append(part)
        return "/" + "/".join(current)

    def real(self, host_path: str) -> Path:
        """Where an already resolved host path sits on this machine."""
        return self.root.joinpath(*PurePosixPath(host_path).parts[1:])

    def stat(self, path: str) -> tuple[str, os.stat_result] | None:
        resolved = self.resolve(path)
        if resolved is None:
            return None
        try:
            return resolved, os.lstat(self.real(resolved))
        except OSError:
            return None

    def read_bytes(self, path: str, limit: int = MAX_CONFIG_BYTES) -> bytes | None:
        """A regular file's bytes (None when absent or not a regular file); ParseError when too big.

        The file is opened without following a final symlink and without blocking, so a FIFO or a
        link swapped in after resolution is refused rather than hung on or followed.
        """
        resolved = self.resolve(path)
        if resolved is None:
            return None
        try:
            fd = os.open(self.real(resolved), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                return None
            data = handle.read(limit + 1)
        if len(data) > limit:
            raise ParseError(f"{self.label(path)}: larger than {limit // 1024} KiB, not a real configuration file")
        return data

    def read_text(self, path: str, limit: int = MAX_CONFIG_BYTES) -> str | None:
        data = self.read_bytes(path, limit)
        return None if data is None else data.decode("utf-8", errors="replace")

    def listdir(self, path: str, limit: int = MAX_LISTED) -> list[str]:
        resolved = self.resolve(path)
        if resolved is None:
            return []
        try:
            with os.scandir(self.real(resolved)) as entries:
                names = []
                for entry in entries:
                    names.append(entry.name)
                    if len(names) >= limit:
                        break
        except OSError:
            return []
        return sorted(names)

    def label(self, path: str) -> str:
        """How a host path is named in messages: as is for the live host, with the root otherwise."""
        return path if str(self.root) == "/" else f"{self.root}{path}"


# ----------------------------------------------------------------------------------------------
# The daemon's configuration: daemon.json merged with dockerd's flags


@dataclass(frozen=True, slots=True)
class Flag:
    key: str
    """The daemon.json key the flag sets."""
    kind: str
    """``bool``, ``str`` or ``list`` (repeatable flag / JSON array)."""


DOCKERD_FLAGS: dict[str, Flag] = {
    "--icc": Flag("icc", "bool"),
    "--log-level": Flag("log-level", "str"),
    "-l": Flag("log-level", "str"),
    "--debug": Flag("debug", "bool"),
    "-D": Flag("debug", "bool"),
    "--iptables": Flag("iptables", "bool"),
    "--ip6tables": Flag("ip6tables", "bool"),
    "--insecure-registry": Flag("insecure-registries", "list"),
    "--storage-driver": Flag("storage-driver", "str"),
    "-s": Flag("storage-driver", "str"),
    "--storage-opt": Flag("storage-opts", "list"),
    "--tls": Flag("tls", "bool"),
    "--tlsverify": Flag("tlsverify", "bool"),
    "--tlscacert": Flag("tlscacert", "str"),
    "--tlscert": Flag("tlscert", "str"),
    "--tlskey": Flag("tlskey", "str"),
    "--host": Flag("hosts", "list"),
    "-H": Flag("hosts", "list"),
    "--default-ulimit": Flag("default-ulimits", "list"),
    "--userns-remap": Flag("userns-remap", "str"),
    "--cgroup-parent": Flag("cgroup-parent", "str"),
    "--authorization-plugin": Flag("authorization-plugins", "list"),
    "--log-driver": Flag("log-driver", "str"),
    "--log-opt": Flag("log-opts", "list"),
    "--no-new-privileges": Flag("no-new-privileges", "bool"),
    "--live-restore": Flag("live-restore", "bool"),
    "--userland-proxy": Flag("userland-proxy", "bool"),
    "--seccomp-profile": Flag("seccomp-profile", "str"),
    "--experimental": Flag("experimental", "bool"),
    "--data-root": Flag("data-root", "str"),
    "--graph": Flag("data-root", "str"),
    "-g": Flag("data-root", "str"),
    "--config-file": Flag("config-file", "str"),
    "--selinux-enabled": Flag("selinux-enabled", "bool"),
    "--group": Flag("group", "str"),
    "-G": Flag("group", "str"),
}
"""The dockerd flags the benchmark's items depend on (see ``dockerd --help``)."""

_TRUE = {"true", "1", "t", "yes"}
_FALSE = {"false", "0", "f", "no"}


def parse_dockerd_args(args: list[str]) -> dict[str, Any]:
    """Flags of a dockerd command line as daemon.json keys; repeatable flags become lists.

    ``--icc=false`` and ``--icc false`` are not the same to dockerd (a boolean takes its value only
    after ``=``), and this parser agrees: a bare boolean flag means true.
    """
    found: dict[str, Any] = {}
    index = 0
    while index < len(args):
        token = args[index]
        index += 1
        if not token.startswith("-") or token in ("-", "--"):
            continue
        name, has_value, value = token.partition("=")
        flag = DOCKERD_FLAGS.get(name)
        if flag is None and not has_value and not name.startswith("--") and len(name) > 2:
            flag = DOCKERD_FLAGS.get(name[:2])  # -Hunix:///x, -lwarn
            if flag is not None:
                has_value, value = "=", name[2:]
        if flag is None:
            continue
        if flag.kind == "bool":
            text = value.lower() if has_value else "true"
            if text in _TRUE or text in _FALSE:
                found[flag.key] = text in _TRUE
            continue
        if not has_value:
            if index >= len(args):
                continue
            value = args[index]
            index += 1
        if flag.kind == "list":
            found.setdefault(flag.key, []).append(value)
        else:
            found[flag.key] = value
    return found


def effective_settings(daemon_json: Mapping[str, Any] | None, dockerd_args: list[str],
                       args_source: str = "dockerd flags", json_source: str = DEFAULT_DAEMON_JSON,
                       ) -> dict[str, dict[str, Any]]:
    """Each daemon setting dockerd ends up with: ``{key: {"value": ..., "source": ...}}``.

    dockerd refuses to start when a flag and daemon.json set the same scalar, so at most one of them
    sets it; list settings (hosts, insecure registries, authorization plugins …) add up.
    """
    settings: dict[str, dict[str, Any]] = {}
    for key, value in (daemon_json or {}).items():
        settings[str(key)] = {"value": value, "source": json_source}
    for key, value in parse_dockerd_args(dockerd_args).items():
        if isinstance(value, list) and key in settings:
            previous = settings[key]["value"]
            merged = [*(_as_list(previous)), *value]
            settings[key] = {"value": merged, "source": f"{settings[key]['source']} and {args_source}"}
        else:
            settings[key] = {"value": value, "source": args_source}
    return settings


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return [f"{k}={v}" for k, v in value.items()]
    return [] if value is None else [value]


# ----------------------------------------------------------------------------------------------
# systemd units


@dataclass(slots=True)
class Unit:
    path: str | None = None
    """The unit file systemd uses (highest-precedence directory), None when there is none."""
    exec_start: list[str] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)
    environment_files: list[str] = field(default_factory=list)


def find_unit(root: HostRoot, name: str) -> str | None:
    for directory in UNIT_DIRS:
        path = f"{directory}/{name}"
        found = root.stat(path)
        if found and stat.S_ISREG(found[1].st_mode):
            return path
    return None


def read_unit(root: HostRoot, name: str) -> Unit:
    """The unit's [Service] settings after its drop-ins (``name.d/*.conf``), as systemd merges them."""
    unit = Unit(path=find_unit(root, name))
    sources = [unit.path] if unit.path else []
    dropins: dict[str, str] = {}
    for directory in reversed(UNIT_DIRS):  # a drop-in in a higher directory replaces one of the same name
        for entry in root.listdir(f"{directory}/{name}.d"):
            if entry.endswith(".conf"):
                dropins[entry] = f"{directory}/{name}.d/{entry}"
    sources.extend(dropins[entry] for entry in sorted(dropins))
    for source in sources:
        text = root.read_text(source)
        if text is None:
            continue
        for key, value in _service_entries(text):
            if key == "ExecStart":
                unit.exec_start = _split_command(value.lstrip("-@:+!")) if value else []
            elif key == "Environment":
                for item in _split_command(value):
                    name_, _, val = item.partition("=")
                    unit.environment[name_] = val
            elif key == "EnvironmentFile":
                if value:
                    unit.environment_files.append(value)
                else:
                    unit.environment_files = []
    return unit


def _service_entries(text: str) -> Iterator[tuple[str, str]]:
    section = ""
    logical = ""
    for raw in text.splitlines():
        line = raw.strip()
        if logical:
            line = logical + " " + line
            logical = ""
        if line.endswith("\\"):
            logical = line[:-1].rstrip()
            continue
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        if section != "Service" or "=" not in line:
            continue
        key, _, value = line.partition("=")
        yield key.strip(), value.strip()


def _split_command(text: str) -> list[str]:
    try:
        return shlex.split(text, comments=False, posix=True)
    except ValueError:
        return text.split()


def read_env_file(root: HostRoot, path: str) -> dict[str, str]:
    """KEY=VALUE lines of an environment file (/etc/default/docker, /etc/sysconfig/docker)."""
    text = root.read_text(path)
    values: dict[str, str] = {}
    for raw in (text or "").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        if line.startswith("export "):
            line = line[len("export "):]
        key, _, value = line.partition("=")
        parts = _split_command(value)
        values[key.strip()] = " ".join(parts)
    return values


_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def expand_exec_start(unit: Unit, root: HostRoot) -> list[str]:
    """ExecStart with ``$VAR`` and ``${VAR}`` filled from the unit's Environment and EnvironmentFiles.

    systemd splits an unbraced ``$VAR`` into words and keeps ``${VAR}`` as one word; both matter for
    ``$DOCKER_OPTS`` / ``$OPTIONS``, which carry several flags.
    """
    env: dict[str, str] = {}
    for entry in unit.environment_files:
        env.update(read_env_file(root, entry.lstrip("-")))
    env.update(unit.environment)
    expanded: list[str] = []
    for word in unit.exec_start:
        whole = _VARIABLE.fullmatch(word)
        if whole and whole.group(2):
            expanded.extend(_split_command(env.get(whole.group(2), "")))
            continue
        expanded.append(_VARIABLE.sub(lambda m: env.get(m.group(1) or m.group(2), ""), word))
    return [word for word in expanded if word]


# ----------------------------------------------------------------------------------------------
# Processes, users, audit rules, mounts


def find_dockerd(root: HostRoot) -> tuple[int, list[str]] | None:
    """The running dockerd's pid and command line, from the root's /proc (None when not running)."""
    for entry in root.listdir("/proc", MAX_PROCESSES):
        if not entry.isdigit():
            continue
        try:
            data = root.read_bytes(f"/proc/{entry}/cmdline", MAX_CMDLINE_BYTES)
        except ParseError:
            continue
        if not data:
            continue
        args = [part.decode("utf-8", errors="replace") for part in data.rstrip(b"\0").split(b"\0")]
        if args and PurePosixPath(args[0]).name == "dockerd":
            return int(entry), args
    return None


@dataclass(slots=True)
class Accounts:
    users: dict[int, str] = field(default_factory=dict)
    primary_groups: dict[str, int] = field(default_factory=dict)
    groups: dict[int, str] = field(default_factory=dict)
    members: dict[str, list[str]] = field(default_factory=dict)


def read_accounts(root: HostRoot) -> Accounts:
    accounts = Accounts()
    for line in (root.read_text("/etc/passwd", MAX_ACCOUNTS_BYTES) or "").splitlines():
        fields = line.split(":")
        if len(fields) >= 4 and fields[2].isdigit():
            accounts.users.setdefault(int(fields[2]), fields[0])
            if fields[3].isdigit():
                accounts.primary_groups[fields[0]] = int(fields[3])
    for line in (root.read_text("/etc/group", MAX_ACCOUNTS_BYTES) or "").splitlines():
        fields = line.split(":")
        if len(fields) >= 3 and fields[2].isdigit():
            accounts.groups.setdefault(int(fields[2]), fields[0])
            if len(fields) >= 4:
                accounts.members[fields[0]] = [name for name in fields[3].split(",") if name]
    return accounts


def group_facts(accounts: Accounts, name: str) -> dict[str, Any] | None:
    """A group's gid and every user in it, listed or by primary group (who ``newgrp`` would not need)."""
    gid = next((gid for gid, group in accounts.groups.items() if group == name), None)
    if gid is None:
        return None
    members = set(accounts.members.get(name, []))
    members |= {user for user, primary in accounts.primary_groups.items() if primary == gid}
    return {"name": name, "gid": gid, "members": sorted(members)}


def read_audit_rules(root: HostRoot) -> list[dict[str, Any]]:
    """Every audit rule line in /etc/audit/rules.d/*.rules and /etc/audit/audit.rules."""
    files = [f"/etc/audit/rules.d/{name}" for name in root.listdir("/etc/audit/rules.d") if name.endswith(".rules")]
    files.append("/etc/audit/audit.rules")
    found: list[dict[str, Any]] = []
    for path in files:
        text = root.read_text(path)
        for number, raw in enumerate((text or "").splitlines(), start=1):
            line = raw.strip()
            if line and not line.startswith("#"):
                watches = audit_watches(line)
                # /lib/systemd/system/docker.service is /usr/lib/… on a merged-/usr host: compare real paths too
                resolved = sorted({real for watch in watches if (real := root.resolve(watch)) and real != watch})
                found.append({"file": path, "line": number, "rule": line, "watches": watches,
                              "resolved_watches": resolved})
    return found


def audit_watches(rule: str) -> list[str]:
    """Paths an audit rule watches: ``-w PATH …`` and syscall rules with ``-F path=`` / ``-F dir=``."""
    words = _split_command(rule)
    paths: list[str] = []
    for index, word in enumerate(words):
        value = words[index + 1] if index + 1 < len(words) else ""
        if word == "-w" and value:
            paths.append(value)
        elif word.startswith("-w") and len(word) > 2:
            paths.append(word[2:])
        elif word == "-F" and value.startswith(("path=", "dir=")):
            paths.append(value.split("=", 1)[1])
    return [path.rstrip("/") or "/" for path in paths]


def read_mounts(root: HostRoot) -> list[dict[str, str]]:
    """Mounted file systems (/proc/mounts, the live view) and configured ones (/etc/fstab)."""
    mounts: list[dict[str, str]] = []
    for path in ("/proc/mounts", "/etc/fstab"):
        try:
            text = root.read_text(path, MAX_CONFIG_BYTES * 4)
        except ParseError:
            text = None
        for line in (text or "").splitlines():
            fields = line.split()
            if len(fields) >= 3 and not fields[0].startswith("#"):
                mountpoint = fields[1].replace("\\040", " ")
                mounts.append({"source": fields[0], "mountpoint": mountpoint, "fstype": fields[2], "from": path})
    return mounts


# ----------------------------------------------------------------------------------------------
# Files section 3 names


def file_facts(root: HostRoot, accounts: Accounts, path: str, roles: list[str]) -> dict[str, Any]:
    found = root.stat(path)
    if found is None:
        return {"exists": False, "roles": roles}
    resolved, info = found
    return {
        "exists": True,
        "resolved": resolved,
        "type": _file_type(info.st_mode),
        "uid": info.st_uid,
        "gid": info.st_gid,
        "owner": accounts.users.get(info.st_uid, str(info.st_uid)),
        "group": accounts.groups.get(info.st_gid, str(info.st_gid)),
        "mode": f"{stat.S_IMODE(info.st_mode):04o}",
        "roles": roles,
    }


def _file_type(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "other"


def registry_certificates(root: HostRoot) -> list[str]:
    """Files under /etc/docker/certs.d/<registry>/ (CIS 3.7, 3.8)."""
    found: list[str] = []
    for registry in root.listdir("/etc/docker/certs.d"):
        for name in root.listdir(f"/etc/docker/certs.d/{registry}"):
            found.append(f"/etc/docker/certs.d/{registry}/{name}")
            if len(found) >= MAX_LISTED:
                return found
    return found


def unix_sockets(hosts: list[Any]) -> list[str]:
    """The unix socket paths among dockerd's ``hosts`` (``unix:///run/docker.sock``, ``fd://``)."""
    sockets = []
    for host in hosts:
        text = str(host)
        if text.startswith("unix://"):
            sockets.append(text[len("unix://"):] or DEFAULT_SOCKET)
    return sockets


# ----------------------------------------------------------------------------------------------
# The Engine API


class Engine:
    """A few GETs to a Docker-compatible engine over its unix socket (the transport image/engine.py uses)."""

    def __init__(self, socket: str) -> None:
        self.socket = socket
        self.client = httpx.Client(transport=httpx.HTTPTransport(uds=socket), base_url="http://engine",
                                   timeout=ENGINE_TIMEOUT)

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def get(self, path: str, params: Mapping[str, str] | None = None, *, missing_ok: bool = False) -> Any:
        try:
            with self.client.stream("GET", path, params=params) as response:
                if missing_ok and response.status_code in (404, 500, 501):
                    return None
                if response.status_code != 200:
                    raise SourceError(f"engine at {self.socket}: GET {path} answered HTTP {response.status_code}")
                body = bytearray()
                for chunk in response.iter_bytes(1024 * 1024):
                    body += chunk
                    if len(body) > MAX_ENGINE_BYTES:
                        raise SourceError(f"engine at {self.socket}: GET {path} answer exceeds "
                                          f"{MAX_ENGINE_BYTES // (1024 * 1024)} MiB")
        except httpx.HTTPError as exc:
            raise SourceError(f"engine at {self.socket}: GET {path} failed ({exc})") from exc
        try:
            return json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise ParseError(f"engine at {self.socket}: GET {path} did not answer JSON") from exc


def choose_socket(docker_socket: str | None, root: HostRoot) -> str | None:
    """The engine to ask: --docker-socket, else $DOCKER_HOST, else the default socket — the last only
    when auditing this machine itself (a copied tree's facts must not mix with this machine's daemon)."""
    if docker_socket:
        return engine_socket(SourceOptions(docker_host=docker_socket))
    if os.environ.get("DOCKER_HOST"):
        return engine_socket(SourceOptions())
    if str(root.root) == "/":
        return DEFAULT_SOCKET
    return None


# ----------------------------------------------------------------------------------------------
# Putting it together


@dataclass(slots=True)
class HostScan:
    documents: list[Document] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    engine: str | None = None
    """The socket that answered, None when no engine was asked or reachable."""


def collect_docker_host(root: str = "/", docker_socket: str | None = None) -> HostScan:
    """The ``docker-host`` document and one ``docker-container`` document per running container."""
    host_root = HostRoot(root)
    scan = HostScan()
    socket = choose_socket(docker_socket, host_root)
    info: Any = None
    version: Any = None
    containers: list[Document] = []
    explicit = bool(docker_socket or os.environ.get("DOCKER_HOST"))
    if socket is not None:
        if not os.path.exists(socket):
            if explicit:
                named = "--docker-socket" if docker_socket else "DOCKER_HOST"
                raise SourceError(f"no engine socket at {socket} (from {named})")
            scan.warnings.append(f"no Docker engine at {socket}: daemon checks use files only, no containers checked")
        else:
            try:
                with Engine(socket) as engine:
                    info = engine.get("/info")
                    version = engine.get("/version")
                    containers = container_documents(engine)
                scan.engine = socket
            except SourceError as exc:
                if explicit:
                    raise
                # A socket file left behind by a stopped daemon: audit the files, say what was skipped.
                info = version = None
                containers = []
                scan.warnings.append(f"{exc}: daemon checks use files only, no containers checked")
    scan.documents.append(host_document(host_root, info, version))
    scan.documents.extend(containers)
    return scan


def host_document(root: HostRoot, info: Any, version: Any) -> Document:
    accounts = read_accounts(root)
    process = find_dockerd(root)
    unit = read_unit(root, "docker.service")
    unit_args = expand_exec_start(unit, root) if unit.exec_start else []
    if process is not None:
        dockerd_args, args_source = process[1], f"/proc/{process[0]}/cmdline"
    else:
        dockerd_args, args_source = unit_args, unit.path or ""
    flags = parse_dockerd_args(dockerd_args)
    daemon_json_path = str(flags.get("config-file") or DEFAULT_DAEMON_JSON)
    daemon_json, lines = read_daemon_json(root, daemon_json_path)
    settings = effective_settings(daemon_json, dockerd_args, args_source or "dockerd flags", daemon_json_path)

    dockerd_binary = _dockerd_binary(dockerd_args, root)
    data_root = str(settings.get("data-root", {}).get("value") or DEFAULT_DATA_ROOT)
    socket_unit = find_unit(root, "docker.socket")
    service_path = unit.path or "/usr/lib/systemd/system/docker.service"
    socket_path = socket_unit or "/usr/lib/systemd/system/docker.socket"

    roles: dict[str, list[str]] = {}

    def want(path: str, role: str) -> None:
        roles.setdefault(path, [])
        if role not in roles[path]:
            roles[path].append(role)

    want(service_path, "docker.service")
    want(socket_path, "docker.socket")
    want("/etc/docker", "/etc/docker")
    for path in registry_certificates(root):
        want(path, "registry-certificate")
    tls_enabled = bool(_truthy(settings, "tls") or _truthy(settings, "tlsverify"))
    for key, role in (("tlscacert", "tls-ca"), ("tlscert", "tls-cert"), ("tlskey", "tls-key")):
        value = settings.get(key, {}).get("value")
        if value:
            want(str(value), role)
        elif tls_enabled:
            want(f"/root/.docker/{role.split('-')[1]}.pem", role)  # dockerd's default under $HOME/.docker
    hosts = _as_list(settings.get("hosts", {}).get("value"))
    for path in unix_sockets(hosts) or [DEFAULT_SOCKET]:
        want(path, "docker-socket")
    want(daemon_json_path, "daemon.json")
    want("/etc/default/docker", "/etc/default/docker")
    want("/etc/sysconfig/docker", "/etc/sysconfig/docker")
    want(CONTAINERD_SOCKET, "containerd-socket")
    for path in (dockerd_binary, data_root, service_path, socket_path, DEFAULT_DAEMON_JSON, daemon_json_path,
                 *AUDIT_TARGETS):
        want(path, "audit-target")
    files = {path: file_facts(root, accounts, path, sorted(role_list)) for path, role_list in sorted(roles.items())}

    data: dict[str, Any] = {
        "root": str(root.root),
        "daemon_json": daemon_json,
        "daemon_json_path": daemon_json_path,
        "dockerd_args": dockerd_args,
        "dockerd_args_source": args_source,
        "dockerd_process": {"pid": process[0], "args": process[1]} if process else None,
        "dockerd_unit": {"path": unit.path, "args": unit_args} if unit.path else None,
        "dockerd_binary": dockerd_binary,
        "data_root": data_root,
        "settings": settings,
        "files": files,
        "audit_rules": read_audit_rules(root),
        "mounts": read_mounts(root),
        "docker_group": group_facts(accounts, str(settings.get("group", {}).get("value") or "docker")),
        "info": info,
        "version": version,
    }
    hostname = (root.read_text("/etc/hostname") or "").strip().splitlines()
    return Document(
        kind=TargetKind.DOCKER_HOST,
        path=str(root.root),
        data=data,
        name=hostname[0][:253] if hostname else "docker-host",
        lines={("daemon_json", key): line for key, line in lines.items()},
        facts={"benchmark": "cis-docker-1.6"},
    )


def read_daemon_json(root: HostRoot, path: str) -> tuple[dict[str, Any] | None, dict[str, int]]:
    """daemon.json as an object, and the line of each top-level key (for findings)."""
    text = root.read_text(path)
    if text is None:
        return None, {}
    if not text.strip():
        return {}, {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(f"{root.label(path)}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except RecursionError:
        raise ParseError(f"{root.label(path)}: nested too deeply") from None
    if not isinstance(data, dict):
        raise ParseError(f"{root.label(path)}: expected a JSON object of daemon settings")
    lines: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        for match in re.finditer(r'"([^"\\]+)"\s*:', line):
            if match.group(1) in data:
                lines.setdefault(match.group(1), number)
    return data, lines


def _dockerd_binary(args: list[str], root: HostRoot) -> str:
    if args and args[0].startswith("/"):
        return args[0]
    for candidate in ("/usr/bin/dockerd", "/usr/local/bin/dockerd"):
        if root.stat(candidate):
            return candidate
    return "/usr/bin/dockerd"


def _truthy(settings: Mapping[str, Mapping[str, Any]], key: str) -> bool:
    return settings.get(key, {}).get("value") is True


def container_documents(engine: Engine) -> list[Document]:
    """One document per running container: its inspect JSON, and its processes when /top answers.

    The containers are read a few at a time: an engine answers /top by running ps in the container
    (podman: about 150 ms each, measured), which dominates a host with many containers.
    """
    listed = engine.get("/containers/json")
    if not isinstance(listed, list):
        raise ParseError(f"engine at {engine.socket}: /containers/json is not a list")
    if len(listed) > MAX_CONTAINERS:
        raise SourceError(f"engine at {engine.socket}: more than {MAX_CONTAINERS} running containers")
    identifiers = [entry.get("Id") for entry in listed if isinstance(entry, dict)]
    valid = [i for i in identifiers if isinstance(i, str) and re.fullmatch(r"[0-9a-zA-Z_.-]{1,128}", i)]
    with ThreadPoolExecutor(max_workers=ENGINE_WORKERS) as pool:
        documents = list(pool.map(lambda identifier: _container_document(engine, identifier), valid))
    return [doc for doc in documents if doc is not None]


def _container_document(engine: Engine, identifier: str) -> Document | None:
    inspect = engine.get(f"/containers/{identifier}/json", missing_ok=True)
    if not isinstance(inspect, dict):
        return None  # gone between the listing and the inspect
    top = engine.get(f"/containers/{identifier}/top", {"ps_args": "-ef"}, missing_ok=True)
    name = str(inspect.get("Name") or identifier[:12]).lstrip("/")
    return Document(
        kind=TargetKind.DOCKER_CONTAINER,
        path=f"unix://{engine.socket}",
        data=inspect,
        name=name,
        facts={"id": identifier, "top": top if isinstance(top, dict) else None},
    )
