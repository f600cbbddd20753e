"""A Kubernetes node as one :class:`~moat.checks.document.Document`: its components' flags and configs,
and the ownership and mode of the files the CIS Kubernetes Benchmark names (sections 1 to 4).

Agentless, as kube-bench is: everything is read from the node's files, either the node itself
(``--root /``) or a copy of its tree (``--root DIR``). Every path is resolved inside the root the way a
``chroot`` would see it: a symlink (absolute or relative) is followed only within the root, so a copied
tree cannot make Moat read the scanning machine's own files.

Where each component's flags come from:

* control plane (API server, controller manager, scheduler, etcd): the static Pod manifests in
  ``/etc/kubernetes/manifests`` (container ``command`` plus ``args``; for etcd also ``ETCD_*``
  environment variables, which etcd reads as flags). When the root is ``/`` the running processes'
  command lines (``/proc/*/cmdline``) are read too, and a running process wins over its manifest: it
  is what actually runs (a manifest edited but not yet picked up is not). Files a running component
  names (the API server's encryption, audit and authorization files, kube-proxy's config) are read in
  that process's own root, ``/proc/PID/root``: in a container, its mounts decide what it reads.
* kubelet: the running process, else the systemd unit and its drop-ins (``ExecStart`` with
  ``Environment=`` and ``EnvironmentFile=`` variables expanded, as kubeadm's ``10-kubeadm.conf``,
  ``/var/lib/kubelet/kubeadm-flags.env`` and ``/etc/default/kubelet`` use them).
* kubelet config file: ``--config``, else ``/var/lib/kubelet/config.yaml`` when it exists.
* etcd without a static Pod (an external member, e.g. Debian's ``etcd-server``): its systemd unit, whose
  ``ETCD_*`` variables etcd reads as flags (a flag wins); a running etcd's ``ETCD_*`` environment too.

Precedence of kubelet settings (``components.kubelet.effective``): a command-line flag overrides the
same setting in the config file, which overrides the kubelet's default; this is the kubelet's own
order. Defaults differ with and without a config file: a ``KubeletConfiguration`` file brings the
secure v1beta1 defaults (anonymous auth off, ``Webhook`` authorization, read-only port 0), while a
kubelet run from flags alone keeps the legacy ones (anonymous on, ``AlwaysAllow``, port 10255). A
zero duration in the config file (``streamingConnectionIdleTimeout: 0s``, which kubeadm writes) is
the unset value and gets the default (4h); only the flag can really set it to 0.

The node's role is detected (control plane when an API server manifest or process exists, etcd when
etcd runs, worker when a kubelet is configured) unless forced, and the benchmark version from the
Kubernetes version (the control plane image tag), mapped to a CIS release as kube-bench maps it.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from moat.checks.document import Document, TargetKind
from moat.checks.yamlload import YamlDocument, load_yaml_documents
from moat.errors import MoatError, ParseError

ROLES = ("master", "etcd", "worker")
BENCHMARKS = ("cis-1.8", "cis-1.9", "cis-1.10", "cis-1.11", "cis-1.12")
DEFAULT_BENCHMARK = "cis-1.9"
VERSION_TO_BENCHMARK = {
    "1.26": "cis-1.8",
    "1.27": "cis-1.9",
    "1.28": "cis-1.9",
    "1.29": "cis-1.9",
    "1.30": "cis-1.10",
    "1.31": "cis-1.10",
    "1.32": "cis-1.11",
    "1.33": "cis-1.12",
    "1.34": "cis-1.12",
}
"""Kubernetes minor version → the CIS release kube-bench runs for it (its ``version_mapping``)."""

COMPONENTS = ("apiserver", "controller-manager", "scheduler", "etcd", "kubelet", "proxy")
BINARIES = {
    "kube-apiserver": "apiserver",
    "apiserver": "apiserver",
    "kube-controller-manager": "controller-manager",
    "controller-manager": "controller-manager",
    "kube-scheduler": "scheduler",
    "scheduler": "scheduler",
    "etcd": "etcd",
    "kubelet": "kubelet",
    "kube-proxy": "proxy",
    "proxy": "proxy",
}
ROLE_COMPONENTS = {"master": ("apiserver", "controller-manager", "scheduler"), "etcd": ("etcd",),
                   "worker": ("kubelet",)}
BINARY_OF = {"apiserver": "kube-apiserver", "controller-manager": "kube-controller-manager",
             "scheduler": "kube-scheduler", "etcd": "etcd", "kubelet": "kubelet", "proxy": "kube-proxy"}
MANIFEST_DIR = "/etc/kubernetes/manifests"
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json", ".manifest")
UNIT_DIRS = ("/etc/systemd/system", "/run/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system")
DEFAULT_KUBELET_CONFIG = "/var/lib/kubelet/config.yaml"
DEFAULT_KUBELET_KUBECONFIG = "/etc/kubernetes/kubelet.conf"
DEFAULT_ETCD_DATA_DIR = "/var/lib/etcd"
PKI_DIR = "/etc/kubernetes/pki"
CNI_DIRS = ("/etc/cni/net.d",)

MAX_FILE_BYTES = 4 * 1024 * 1024
"""Largest manifest, unit, env or config file read; real ones are a few kilobytes."""
MAX_TREE_ENTRIES = 10_000
"""Most entries listed under one directory tree (PKI, CNI, manifests)."""
MAX_LINK_HOPS = 40
MAX_PROCESSES = 100_000
MAX_CMDLINE = 256 * 1024


@dataclass(slots=True)
class NodeOptions:
    root: str = "/"
    role: str = "auto"
    """``auto`` or one of :data:`ROLES`."""
    benchmark: str = "auto"
    """``auto`` or one of :data:`BENCHMARKS`."""
    processes: bool | None = None
    """Read ``/proc``; by default only when the root is the running system's ``/``."""


@dataclass(slots=True)
class NodeScan:
    document: Document
    warnings: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------------
# Reading inside the root


class NodeFS:
    """Paths as the node names them (``/etc/kubernetes/admin.conf``), read inside ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.is_live = os.path.realpath(root) == "/"

    def resolve(self, node_path: str) -> Path | None:
        """The host path for ``node_path`` with every symlink followed inside the root (``..`` stops
        at the root, absolute targets restart from it), or None when a link loops or a part is missing."""
        parts = [p for p in PurePosixPath("/", node_path).parts[1:] if p not in ("", ".")]
        done: list[str] = []
        hops = 0
        while parts:
            part = parts.pop(0)
            if part == "..":
                if done:
                    done.pop()
                continue
            candidate = self.root.joinpath(*done, part)
            try:
                info = os.lstat(candidate)
            except OSError:
                return None if parts else candidate
            if stat.S_ISLNK(info.st_mode):
                hops += 1
                if hops > MAX_LINK_HOPS:
                    return None
                try:
                    target = os.readlink(candidate)
                except OSError:
                    return None
                if target.startswith("/"):
                    done = []
                parts = [p for p in PurePosixPath(target).parts if p not in ("", ".", "/")] + parts
                continue
            done.append(part)
        return self.root.joinpath(*done)

    def stat(self, node_path: str) -> os.stat_result | None:
        host = self.resolve(node_path)
        if host is None:
            return None
        try:
            return os.lstat(host)
        except OSError:
            return None

    def read_bytes(self, node_path: str, limit: int = MAX_FILE_BYTES) -> bytes | None:
        """The file's bytes (None when absent or not a regular file); larger than ``limit`` is a ParseError."""
        host = self.resolve(node_path)
        if host is None:
            return None
        try:
            fd = os.open(host, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
        except OSError:
            return None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None
            with os.fdopen(fd, "rb", closefd=False) as handle:
                data = handle.read(limit + 1)
        except OSError as exc:
            raise ParseError(f"{node_path}: cannot read ({exc.strerror or exc})") from None
        finally:
            os.close(fd)
        if len(data) > limit:
            raise ParseError(f"{node_path}: larger than {limit // 1024} KiB, not read")
        return data

    def read_text(self, node_path: str) -> str | None:
        data = self.read_bytes(node_path)
        if data is None:
            return None
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ParseError(f"{node_path}: not UTF-8 text (byte {exc.start})") from None

    def listdir(self, node_path: str) -> list[str]:
        host = self.resolve(node_path)
        if host is None:
            return []
        try:
            if not stat.S_ISDIR(os.lstat(host).st_mode):
                return []
            names = sorted(os.listdir(host))
        except OSError:
            return []
        return names[:MAX_TREE_ENTRIES]

    def walk(self, node_path: str) -> Iterator[str]:
        """Every entry under a directory (itself first), not descending into symlinked directories."""
        seen = 0
        pending = [node_path.rstrip("/") or "/"]
        while pending:
            current = pending.pop(0)
            info = self.stat(current)
            if info is None:
                continue
            yield current
            seen += 1
            if seen >= MAX_TREE_ENTRIES:
                return
            if stat.S_ISDIR(info.st_mode) and (current == node_path or not self.is_symlink(current)):
                pending.extend(f"{current}/{name}" for name in self.listdir(current))

    def is_symlink(self, node_path: str) -> bool:
        """Whether the last part of ``node_path`` is itself a link (its parents resolved inside the root)."""
        parent, _, name = node_path.rstrip("/").rpartition("/")
        host = self.resolve(parent or "/")
        if host is None or not name:
            return False
        try:
            return stat.S_ISLNK(os.lstat(host / name).st_mode)
        except OSError:
            return False


class Accounts:
    """User and group names from the node's own ``/etc/passwd`` and ``/etc/group`` (id 0 is root even
    when a copied tree lacks them: the kernel gives it that meaning, not the file)."""

    def __init__(self, fs: NodeFS) -> None:
        self.users = {0: "root", **self._table(fs, "/etc/passwd")}
        self.groups = {0: "root", **self._table(fs, "/etc/group")}

    @staticmethod
    def _table(fs: NodeFS, path: str) -> dict[int, str]:
        try:
            text = fs.read_text(path)
        except ParseError:
            return {}
        table: dict[int, str] = {}
        for line in (text or "").splitlines():
            fields = line.split(":")
            if len(fields) >= 3 and fields[2].isdigit():
                table.setdefault(int(fields[2]), fields[0])
        return table


def file_facts(fs: NodeFS, accounts: Accounts, node_path: str, *, digest: bool = False) -> dict[str, Any]:
    """What the file rules read: existence, type, owner and group (names from the node), octal mode."""
    info = fs.stat(node_path)
    if info is None:
        return {"exists": False}
    mode = info.st_mode
    kind = "dir" if stat.S_ISDIR(mode) else "file" if stat.S_ISREG(mode) else "link" if stat.S_ISLNK(mode) else "other"
    facts: dict[str, Any] = {
        "exists": True,
        "type": kind,
        "mode": f"{stat.S_IMODE(mode):04o}",
        "uid": info.st_uid,
        "gid": info.st_gid,
        "owner": accounts.users.get(info.st_uid, str(info.st_uid)),
        "group": accounts.groups.get(info.st_gid, str(info.st_gid)),
    }
    if digest and kind == "file":
        try:
            data = fs.read_bytes(node_path)
        except ParseError:
            data = None
        if data is not None:
            facts["sha256"] = hashlib.sha256(data).hexdigest()
    return facts


# --------------------------------------------------------------------------------------------------
# Flags


def parse_flags(argv: list[str]) -> dict[str, str]:
    """``--name=value``, ``--name value`` and bare ``--name`` (true) into a dict; the last one wins,
    as with the Go flag parsers the components use."""
    flags: dict[str, str] = {}
    index = 0
    while index < len(argv):
        item = argv[index]
        index += 1
        if not item.startswith("-") or item in ("-", "--"):
            continue
        name = item.lstrip("-")
        if "=" in name:
            key, value = name.split("=", 1)
            flags[key] = value
        elif index < len(argv) and not argv[index].startswith("-"):
            flags[name] = argv[index]
            index += 1
        else:
            flags[name] = "true"
    return flags


def flag_positions(argv: list[str]) -> dict[str, int]:
    """Index in ``argv`` of the item that sets each flag (the last one)."""
    positions: dict[str, int] = {}
    for index, item in enumerate(argv):
        if item.startswith("-") and item not in ("-", "--"):
            positions[item.lstrip("-").split("=", 1)[0]] = index
    return positions


def component_of(argv: list[str]) -> str | None:
    """Which component a command line runs (``kube-apiserver …``, ``/usr/bin/kubelet …``,
    ``hyperkube kubelet …``)."""
    if not argv:
        return None
    base = PurePosixPath(argv[0]).name
    if base == "hyperkube" and len(argv) > 1:
        base = argv[1]
    if base in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd", "kubelet", "kube-proxy"):
        return BINARIES[base]
    return None


_VERSION = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?")


def version_from_image(image: str) -> str | None:
    """``registry.k8s.io/kube-apiserver:v1.29.3`` → ``1.29.3``."""
    tag = image.rsplit("@", 1)[0].rsplit(":", 1)[-1] if ":" in image.rsplit("/", 1)[-1] else ""
    match = _VERSION.match(tag)
    if not match:
        return None
    return ".".join(part for part in match.groups() if part is not None)


def benchmark_for_version(version: str | None) -> str:
    if not version:
        return DEFAULT_BENCHMARK
    match = _VERSION.match(version)
    if not match:
        return DEFAULT_BENCHMARK
    major, minor = int(match.group(1)), int(match.group(2))
    key = f"{major}.{minor}"
    if key in VERSION_TO_BENCHMARK:
        return VERSION_TO_BENCHMARK[key]
    if (major, minor) < (1, 26):
        return BENCHMARKS[0]
    return BENCHMARKS[-1]


# --------------------------------------------------------------------------------------------------
# Sources


def _new_component(origin: str, source: str) -> dict[str, Any]:
    return {"origin": origin, "source": source, "flags": {}, "locations": {}, "line": 0}


def _manifest_components(fs: NodeFS, warnings: list[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for name in fs.listdir(MANIFEST_DIR):
        if not name.endswith(MANIFEST_SUFFIXES):
            continue
        path = f"{MANIFEST_DIR}/{name}"
        try:
            text = fs.read_text(path)
            docs = load_yaml_documents(text, path) if text is not None else []
        except ParseError as exc:
            warnings.append(str(exc))
            continue
        for doc in docs:
            for component, entry in _pod_components(doc, path):
                entry["manifest"] = path
                found.setdefault(component, entry)
    return found


def _pod_components(doc: YamlDocument, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    data = doc.data
    if not isinstance(data, dict) or data.get("kind") != "Pod" or not isinstance(data.get("spec"), dict):
        return
    containers = data["spec"].get("containers")
    if not isinstance(containers, list):
        return
    for index, container in enumerate(containers):
        if not isinstance(container, dict):
            continue
        command = [str(item) for item in container.get("command") or [] if isinstance(item, str | int | float)]
        args = [str(item) for item in container.get("args") or [] if isinstance(item, str | int | float)]
        component = component_of(command) or component_of([str(container.get("name", ""))])
        if component is None:
            continue
        entry = _new_component("manifest", path)
        argv = command + args
        entry["flags"] = parse_flags(argv)
        base: tuple[str | int, ...] = ("spec", "containers", index)
        entry["line"] = doc.lines.get((*base, "command"), doc.lines.get(base, doc.start_line))
        for flag, position in flag_positions(argv).items():
            item_path = (*base, "command", position) if position < len(command) else \
                (*base, "args", position - len(command))
            entry["locations"][flag] = {"file": path, "line": doc.lines.get(item_path, entry["line"])}
        if component == "etcd":
            _etcd_environment(container, base, doc, path, entry)
        image = container.get("image")
        if isinstance(image, str):
            entry["image"] = image
            version = version_from_image(image)
            if version:
                entry["version"] = version
        yield component, entry


def _etcd_environment(container: dict[str, Any], base: tuple[str | int, ...], doc: YamlDocument, path: str,
                      entry: dict[str, Any]) -> None:
    """etcd reads ``ETCD_CLIENT_CERT_AUTH=true`` as ``--client-cert-auth=true``; a flag wins over it."""
    env = container.get("env")
    if not isinstance(env, list):
        return
    for index, item in enumerate(env):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or "value" not in item:
            continue
        name = item["name"]
        if not name.startswith("ETCD_"):
            continue
        flag = name[5:].lower().replace("_", "-")
        if flag not in entry["flags"]:
            entry["flags"][flag] = str(item["value"])
            entry["locations"][flag] = {"file": path, "line": doc.lines.get((*base, "env", index), entry["line"])}


def _process_components(fs: NodeFS, warnings: list[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    try:
        pids = sorted((name for name in os.listdir("/proc") if name.isdigit()), key=int)[:MAX_PROCESSES]
    except OSError:
        return found
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                raw = handle.read(MAX_CMDLINE)
        except OSError:
            continue
        argv = [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]
        component = component_of(argv)
        if component is None or component in found:
            continue
        entry = _new_component("process", f"process {pid}")
        entry["pid"] = int(pid)
        entry["argv"] = argv
        entry["flags"] = parse_flags(argv[1:])
        if component == "etcd":
            entry["env"] = _process_etcd_env(pid)
            etcd_env_flags(entry)
        found[component] = entry
    return found


def _process_etcd_env(pid: str) -> dict[str, str]:
    """The ``ETCD_*`` variables of a running etcd (which it reads as flags); others are not kept."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            raw = handle.read(MAX_CMDLINE)
    except OSError:
        return {}
    env: dict[str, str] = {}
    for item in raw.split(b"\0"):
        name, _, value = item.decode("utf-8", "replace").partition("=")
        if name.startswith("ETCD_"):
            env[name] = value
    return env


# systemd ---------------------------------------------------------------------------------------------

_ENV_ASSIGN = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def unit_files(fs: NodeFS, unit: str) -> list[str]:
    """A service's unit file and its drop-ins in the order systemd applies them (a unit or drop-in in
    /etc hides one of the same name in /usr/lib)."""
    main = next((f"{d}/{unit}" for d in UNIT_DIRS if fs.stat(f"{d}/{unit}")), None)
    dropins: dict[str, str] = {}
    for directory in reversed(UNIT_DIRS):
        for name in fs.listdir(f"{directory}/{unit}.d"):
            if name.endswith(".conf"):
                dropins[name] = f"{directory}/{unit}.d/{name}"
    return ([main] if main else []) + [dropins[name] for name in sorted(dropins)]


def kubelet_unit_files(fs: NodeFS) -> list[str]:
    return unit_files(fs, "kubelet.service")


def _unit_lines(text: str) -> Iterator[tuple[int, str, str]]:
    """(line number, key, value) of a unit file, with backslash continuations joined."""
    pending = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = (pending + line).strip()
        pending = ""
        if not line or line.startswith(("#", ";", "[")) or "=" not in line:
            continue
        key, value = line.split("=", 1)
        yield start, key.strip(), value.strip()


def _specifiers(text: str, unit: str, hostname: str) -> str:
    """The systemd specifiers a unit for these services uses: %p, %n, %N, %H, %%."""
    prefix = unit.rsplit(".", 1)[0]
    table = {"p": prefix, "n": unit, "N": prefix, "H": hostname, "%": "%"}
    return re.sub(r"%(.)", lambda m: table.get(m.group(1), m.group(0)), text)


def _env_file(fs: NodeFS, path: str, env: dict[str, str], origins: dict[str, tuple[str, int]]) -> None:
    text = fs.read_text(path)
    if text is None:
        return
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[7:].strip()
        match = _ENV_ASSIGN.match(line)
        if not match:
            continue
        try:
            parts = shlex.split(match.group(2))
        except ValueError:
            parts = [match.group(2)]
        env[match.group(1)] = " ".join(parts)
        origins[match.group(1)] = (path, number)


def systemd_service(fs: NodeFS, unit: str, warnings: list[str]) -> dict[str, Any] | None:
    """A component run by systemd: its ``ExecStart`` with ``Environment=`` and ``EnvironmentFile=``
    variables expanded into flags, each flag located at the line (of the unit, drop-in or env file)
    that set it. The environment itself is kept too (etcd reads ``ETCD_*`` variables as flags)."""
    files = unit_files(fs, unit)
    if not files:
        return None
    hostname = _hostname(fs)
    env: dict[str, str] = {}
    origins: dict[str, tuple[str, int]] = {}
    exec_start: tuple[str, str, int] | None = None
    for path in files:
        try:
            text = fs.read_text(path) or ""
        except ParseError as exc:
            warnings.append(str(exc))
            continue
        for number, key, value in _unit_lines(text):
            value = _specifiers(value, unit, hostname)
            if key == "Environment":
                try:
                    assignments = shlex.split(value)
                except ValueError:
                    warnings.append(f"{path}: line {number}: unbalanced quotes in Environment=")
                    continue
                for assignment in assignments:
                    match = _ENV_ASSIGN.match(assignment)
                    if match:
                        env[match.group(1)] = match.group(2)
                        origins[match.group(1)] = (path, number)
            elif key == "EnvironmentFile":
                try:
                    _env_file(fs, value.lstrip("-"), env, origins)
                except ParseError as exc:
                    warnings.append(str(exc))
            elif key == "ExecStart":
                exec_start = (value, path, number) if value else None
    entry = _new_component("systemd", files[-1])
    entry["unit_files"] = files
    entry["env"] = env
    entry["env_locations"] = {name: {"file": file, "line": line} for name, (file, line) in origins.items()}
    if exec_start is None:
        return entry
    command, path, number = exec_start
    entry["source"] = path
    entry["line"] = number
    argv: list[str] = []
    where: list[tuple[str, int]] = []
    try:
        words = shlex.split(command.lstrip("@-:+!"))
    except ValueError:
        warnings.append(f"{path}: line {number}: unbalanced quotes in ExecStart=")
        return entry
    for word in words:
        names = [m.group(1) or m.group(2) for m in _VAR.finditer(word)]
        if word.startswith("$") and len(names) == 1 and _VAR.fullmatch(word):
            value = env.get(names[0], "")
            origin = origins.get(names[0], (path, number))
            try:
                split = shlex.split(value)
            except ValueError:
                split = value.split()
            argv.extend(split)
            where.extend([origin] * len(split))
        else:
            expanded = _VAR.sub(lambda m: env.get(m.group(1) or m.group(2), ""), word)
            argv.append(expanded)
            where.append((path, number))
    entry["argv"] = argv
    entry["flags"] = parse_flags(argv[1:])
    for flag, position in flag_positions(argv).items():
        file, line = where[position]
        entry["locations"][flag] = {"file": file, "line": line}
    return entry


def etcd_env_flags(entry: dict[str, Any]) -> None:
    """etcd reads ``ETCD_CLIENT_CERT_AUTH=true`` as ``--client-cert-auth=true``; a flag wins over it."""
    locations = entry.get("env_locations", {})
    for name, value in entry.get("env", {}).items():
        if not name.startswith("ETCD_") or name in ("ETCD_UNSUPPORTED_ARCH",):
            continue
        flag = name[5:].lower().replace("_", "-")
        if flag not in entry["flags"]:
            entry["flags"][flag] = value
            if name in locations:
                entry["locations"][flag] = locations[name]


# --------------------------------------------------------------------------------------------------
# Kubelet settings

KUBELET_SETTINGS: dict[str, tuple[str, tuple[str, ...]]] = {
    # setting: (flag, path in KubeletConfiguration)
    "anonymous_auth": ("anonymous-auth", ("authentication", "anonymous", "enabled")),
    "authorization_mode": ("authorization-mode", ("authorization", "mode")),
    "client_ca_file": ("client-ca-file", ("authentication", "x509", "clientCAFile")),
    "read_only_port": ("read-only-port", ("readOnlyPort",)),
    "streaming_connection_idle_timeout": ("streaming-connection-idle-timeout", ("streamingConnectionIdleTimeout",)),
    "make_iptables_util_chains": ("make-iptables-util-chains", ("makeIPTablesUtilChains",)),
    "hostname_override": ("hostname-override", ()),
    "event_qps": ("event-qps", ("eventRecordQPS",)),
    "tls_cert_file": ("tls-cert-file", ("tlsCertFile",)),
    "tls_private_key_file": ("tls-private-key-file", ("tlsPrivateKeyFile",)),
    "rotate_certificates": ("rotate-certificates", ("rotateCertificates",)),
    "server_tls_bootstrap": ("", ("serverTLSBootstrap",)),
    "tls_cipher_suites": ("tls-cipher-suites", ("tlsCipherSuites",)),
    "pod_pids_limit": ("pod-max-pids", ("podPidsLimit",)),
    "kubeconfig": ("kubeconfig", ()),
}
"""The kubelet settings the benchmark reads, by the flag and the config-file field that set them."""

_DEFAULTS_WITH_CONFIG = {
    "anonymous_auth": False, "authorization_mode": "Webhook", "read_only_port": 0,
    "streaming_connection_idle_timeout": "4h0m0s", "make_iptables_util_chains": True, "event_qps": 50,
    "rotate_certificates": False, "server_tls_bootstrap": False, "pod_pids_limit": -1,
}
_DEFAULTS_FLAGS_ONLY = {**_DEFAULTS_WITH_CONFIG, "anonymous_auth": True, "authorization_mode": "AlwaysAllow",
                        "read_only_port": 10255}
_ZERO_DURATION = re.compile(r"^(0+(\.0*)?(ns|us|µs|ms|s|m|h)?)+$")


def _config_value(config: Any, path: tuple[str, ...]) -> Any:
    node = config
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def kubelet_effective(flags: dict[str, str], locations: dict[str, Any], config: Any, config_path: str | None,
                      config_lines: dict[tuple[str | int, ...], int]) -> dict[str, dict[str, Any]]:
    """Each benchmark setting's value in force and where it came from (flag > config file > default)."""
    defaults = _DEFAULTS_WITH_CONFIG if config_path else _DEFAULTS_FLAGS_ONLY
    effective: dict[str, dict[str, Any]] = {}
    for setting, (flag, path) in KUBELET_SETTINGS.items():
        if flag and flag in flags:
            where = locations.get(flag, {})
            effective[setting] = {"value": flags[flag], "source": "flag", "flag": flag, **where}
            continue
        value = _config_value(config, path) if path else None
        if value is not None and not (setting == "streaming_connection_idle_timeout"
                                      and isinstance(value, str) and _ZERO_DURATION.match(value)):
            effective[setting] = {"value": value, "source": "config", "field": ".".join(path),
                                  "file": config_path, "line": config_lines.get(path, 0)}
            continue
        effective[setting] = {"value": defaults.get(setting), "source": "default"}
    gates = feature_gates(flags.get("feature-gates", ""))
    config_gates = _config_value(config, ("featureGates",))
    if "RotateKubeletServerCertificate" in gates:
        effective["rotate_server_certificate"] = {"value": gates["RotateKubeletServerCertificate"],
                                                  "source": "flag", "flag": "feature-gates",
                                                  **locations.get("feature-gates", {})}
    elif isinstance(config_gates, dict) and "RotateKubeletServerCertificate" in config_gates:
        effective["rotate_server_certificate"] = {
            "value": config_gates["RotateKubeletServerCertificate"], "source": "config",
            "field": "featureGates.RotateKubeletServerCertificate", "file": config_path,
            "line": config_lines.get(("featureGates", "RotateKubeletServerCertificate"), 0)}
    else:
        effective["rotate_server_certificate"] = {"value": True, "source": "default"}
    return effective


def feature_gates(text: str) -> dict[str, bool]:
    """``A=true,B=false`` → ``{"A": True, "B": False}``."""
    gates: dict[str, bool] = {}
    for item in text.split(","):
        if "=" in item:
            key, value = item.split("=", 1)
            gates[key.strip()] = value.strip().lower() == "true"
    return gates


# --------------------------------------------------------------------------------------------------
# The document


def collect_node(options: NodeOptions) -> NodeScan:
    """Read the node under ``options.root`` into one ``k8s-node`` document."""
    root = Path(options.root)
    if not root.is_dir():
        raise MoatError(f"--root {options.root}: not a directory")
    if options.role not in ("auto", *ROLES):
        raise MoatError(f"--role {options.role}: choose auto, {', '.join(ROLES)}")
    if options.benchmark not in ("auto", *BENCHMARKS):
        raise MoatError(f"--benchmark {options.benchmark}: choose auto, {', '.join(BENCHMARKS)}")
    fs = NodeFS(root)
    accounts = Accounts(fs)
    warnings: list[str] = []
    components = _manifest_components(fs, warnings)
    read_processes = fs.is_live if options.processes is None else options.processes
    if read_processes:
        for name, entry in _process_components(fs, warnings).items():
            if name in components:
                entry["manifest"] = components[name].get("manifest")
                for key in ("image", "version"):
                    if key in components[name]:
                        entry[key] = components[name][key]
            components[name] = entry
    if "etcd" not in components:
        etcd = systemd_service(fs, "etcd.service", warnings)
        if etcd is not None and etcd.get("argv"):
            etcd_env_flags(etcd)
            components["etcd"] = etcd
    if "kubelet" not in components:
        systemd = systemd_service(fs, "kubelet.service", warnings)
        if systemd is not None:
            components["kubelet"] = systemd
    elif components["kubelet"]["origin"] == "process":
        components["kubelet"]["unit_files"] = kubelet_unit_files(fs)
    _kubelet_config(fs, components, warnings)
    _proxy_config(fs, components, warnings)
    _apiserver_files(fs, components, warnings)
    detected = detect_roles(components, fs)
    roles = detected if options.role == "auto" else [options.role]
    version = next((components[c]["version"] for c in ("apiserver", "controller-manager", "scheduler", "kubelet")
                    if c in components and components[c].get("version")), None)
    benchmark = benchmark_for_version(version) if options.benchmark == "auto" else options.benchmark
    data: dict[str, Any] = {
        "root": str(root),
        "hostname": _hostname(fs),
        "role": roles[0] if roles else "none",
        "roles": roles,
        "detected_roles": detected,
        "benchmark": benchmark,
        "benchmark_source": "forced" if options.benchmark != "auto" else
        (f"Kubernetes {version}" if version else f"default ({DEFAULT_BENCHMARK}: no version found)"),
        "kubernetes_version": version,
        "components": components,
    }
    for role_name in roles:
        for expected in ROLE_COMPONENTS[role_name]:
            if expected not in components:
                warnings.append(f"{root}: role {role_name} but no {BINARY_OF[expected]} manifest, process or unit "
                                f"found: the items about its flags find nothing to fail")
    data["paths"] = benchmark_paths(fs, components)
    data["files"] = _files(fs, accounts, data["paths"], components)
    name = f"node {data['hostname'] or str(root)} ({', '.join(roles) or 'no Kubernetes components found'})"
    document = Document(kind=TargetKind.K8S_NODE, path=str(root), data=data, name=name,
                        facts={"role": data["role"], "roles": roles, "benchmark": benchmark})
    return NodeScan(document, warnings)


def detect_roles(components: dict[str, dict[str, Any]], fs: NodeFS) -> list[str]:
    roles = []
    if "apiserver" in components:
        roles.append("master")
    if "etcd" in components:
        roles.append("etcd")
    if "kubelet" in components or fs.stat(DEFAULT_KUBELET_CONFIG) is not None:
        roles.append("worker")
    return roles


def _hostname(fs: NodeFS) -> str:
    try:
        text = fs.read_text("/etc/hostname") or ""
    except ParseError:
        return ""
    return text.strip().splitlines()[0][:253] if text.strip() else ""


def _load_yaml_file(fs: NodeFS, path: str, warnings: list[str]) -> YamlDocument | None:
    try:
        text = fs.read_text(path)
        if text is None:
            return None
        docs = load_yaml_documents(text, path)
    except ParseError as exc:
        warnings.append(str(exc))
        return None
    return docs[0] if docs else None


def _kubelet_config(fs: NodeFS, components: dict[str, dict[str, Any]], warnings: list[str]) -> None:
    kubelet = components.get("kubelet")
    if kubelet is None:
        if fs.stat(DEFAULT_KUBELET_CONFIG) is None:
            return
        kubelet = components["kubelet"] = _new_component("config", DEFAULT_KUBELET_CONFIG)
    flags = kubelet["flags"]
    config_path = flags.get("config")
    if not config_path and fs.stat(DEFAULT_KUBELET_CONFIG) is not None:
        config_path = DEFAULT_KUBELET_CONFIG
    config: Any = None
    lines: dict[tuple[str | int, ...], int] = {}
    if config_path:
        doc = _load_yaml_file(fs, config_path, warnings)
        if doc is not None and isinstance(doc.data, dict):
            config, lines = doc.data, doc.lines
        elif doc is not None:
            warnings.append(f"{config_path}: not a KubeletConfiguration mapping")
    kubelet["config_path"] = config_path
    kubelet["config"] = config
    kubelet["effective"] = kubelet_effective(flags, kubelet["locations"], config, config_path, lines)
    kubelet["kubeconfig"] = flags.get("kubeconfig") or DEFAULT_KUBELET_KUBECONFIG


def _proxy_config(fs: NodeFS, components: dict[str, dict[str, Any]], warnings: list[str]) -> None:
    """kube-proxy's --config file. A running kube-proxy (on kubeadm clusters a DaemonSet Pod, whose config
    is a mounted ConfigMap) is read in its own root, ``/proc/PID/root``, where that path exists; its
    kubeconfig stays a node path, as the benchmark's file items mean the node's own files."""
    proxy = components.get("proxy")
    if proxy is None:
        return
    config_path = proxy["flags"].get("config")
    config: Any = None
    if config_path:
        reader = fs
        if proxy.get("origin") == "process" and proxy.get("pid"):
            reader = NodeFS(Path(f"/proc/{int(proxy['pid'])}/root"))
            proxy["config_root"] = f"/proc/{int(proxy['pid'])}/root"
        doc = _load_yaml_file(reader, config_path, warnings)
        config = doc.data if doc is not None and isinstance(doc.data, dict) else None
    proxy["config_path"] = config_path
    proxy["config"] = config
    kubeconfig = proxy["flags"].get("kubeconfig") or _config_value(config, ("clientConnection", "kubeconfig"))
    proxy["kubeconfig"] = kubeconfig if isinstance(kubeconfig, str) and kubeconfig else None


def _apiserver_files(fs: NodeFS, components: dict[str, dict[str, Any]], warnings: list[str]) -> None:
    """The encryption configuration, audit policy and structured authorization configuration the API
    server names, parsed for sections 1.2 and 3.2. A running API server's paths are its own: they are
    read in its root (``/proc/PID/root``), which is the node's for a static Pod's hostPath mounts and
    also right when a mount puts a file elsewhere."""
    apiserver = components.get("apiserver")
    if apiserver is None:
        return
    if apiserver.get("origin") == "process" and apiserver.get("pid"):
        fs = NodeFS(Path(f"/proc/{int(apiserver['pid'])}/root"))
    for key, flag in (("encryption_config", "encryption-provider-config"), ("audit_policy", "audit-policy-file"),
                      ("authorization_config", "authorization-config")):
        path = apiserver["flags"].get(flag)
        if not path:
            continue
        entry: dict[str, Any] = {"path": path, "data": None, "error": ""}
        try:
            text = fs.read_text(path)
            if text is None:
                entry["error"] = "file not found on the node"
            else:
                docs = load_yaml_documents(text, path)
                entry["data"] = docs[0].data if docs else None
        except ParseError as exc:
            entry["error"] = str(exc)
            warnings.append(str(exc))
        apiserver[key] = entry


def benchmark_paths(fs: NodeFS, components: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The node paths each file check of the benchmark looks at (from the flags where they name one)."""
    def flag(component: str, name: str) -> str | None:
        value = components.get(component, {}).get("flags", {}).get(name)
        return value if isinstance(value, str) and value else None

    def manifest(component: str, default: str) -> str:
        return str(components.get(component, {}).get("manifest") or default)

    etcd_data = flag("etcd", "data-dir") or DEFAULT_ETCD_DATA_DIR
    kubelet = components.get("kubelet", {})
    effective = kubelet.get("effective", {})
    client_ca = effective.get("client_ca_file", {}).get("value") if effective else None
    units = kubelet.get("unit_files") or kubelet_unit_files(fs)
    pki = list(fs.walk(PKI_DIR))
    cni = [path for directory in CNI_DIRS for path in fs.walk(directory) if path != directory]
    return {
        "apiserver_manifest": manifest("apiserver", f"{MANIFEST_DIR}/kube-apiserver.yaml"),
        "controller_manager_manifest": manifest("controller-manager", f"{MANIFEST_DIR}/kube-controller-manager.yaml"),
        "scheduler_manifest": manifest("scheduler", f"{MANIFEST_DIR}/kube-scheduler.yaml"),
        "etcd_manifest": manifest("etcd", f"{MANIFEST_DIR}/etcd.yaml"),
        "admin_kubeconfigs": ["/etc/kubernetes/admin.conf", "/etc/kubernetes/super-admin.conf"],
        "scheduler_kubeconfig": flag("scheduler", "kubeconfig") or "/etc/kubernetes/scheduler.conf",
        "controller_manager_kubeconfig": flag("controller-manager", "kubeconfig")
        or "/etc/kubernetes/controller-manager.conf",
        "pki": pki,
        "cni": cni,
        "etcd_data_dir": etcd_data,
        "kubelet_units": units,
        "kubelet_service": [path for path in units if ".service.d/" in path] or units,
        "kubelet_kubeconfig": kubelet.get("kubeconfig") or DEFAULT_KUBELET_KUBECONFIG,
        "kubelet_config": kubelet.get("config_path"),
        "kubelet_client_ca": client_ca if isinstance(client_ca, str) and client_ca else None,
        "proxy_kubeconfig": components.get("proxy", {}).get("kubeconfig"),
        "apiserver_client_ca": flag("apiserver", "client-ca-file"),
        "etcd_trusted_ca": flag("etcd", "trusted-ca-file"),
    }


def _files(fs: NodeFS, accounts: Accounts, paths: dict[str, Any], components: dict[str, dict[str, Any]]
           ) -> dict[str, dict[str, Any]]:
    wanted: list[str] = []
    for value in paths.values():
        if isinstance(value, str):
            wanted.append(value)
        elif isinstance(value, list):
            wanted.extend(item for item in value if isinstance(item, str))
    digests = {paths.get("apiserver_client_ca"), paths.get("etcd_trusted_ca")}
    files: dict[str, dict[str, Any]] = {}
    for path in wanted:
        if path not in files:
            files[path] = file_facts(fs, accounts, path, digest=path in digests)
    return files
