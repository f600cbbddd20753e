"""docker-compose files as documents, and one normalised view of each service for rules.

The compose specification allows two spellings for most settings: ports as ``"127.0.0.1:8080:80/tcp"``
or as a mapping with ``target``/``published``/``host_ip``; volumes as ``"./data:/data:ro"`` or as a
mapping with ``type``/``source``/``target``/``read_only``; environment as a ``KEY=value`` list or a
mapping; limits as ``mem_limit``/``cpus``/``pids_limit`` or under ``deploy.resources.limits``. Rules
should not each re-learn both, so :func:`services` turns a compose document into :class:`Service`
objects whose fields are already decoded, each value keeping its path into ``doc.data`` so findings
point at the line that says it. ``x-`` extension blocks and ``<<`` merges are resolved by the YAML
loader before we see the data.

The document itself is the file as written (``kind: compose``, ``data`` = the whole file), so custom
rules and reports see what the user wrote.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from moat.checks.document import Document, JsonPath, TargetKind
from moat.checks.yamlload import YamlDocument

SERVICE_KEYS = frozenset({
    "image", "build", "command", "entrypoint", "ports", "volumes", "environment", "env_file", "depends_on",
    "networks", "network_mode", "privileged", "cap_add", "cap_drop", "user", "restart", "deploy", "healthcheck",
    "security_opt", "read_only", "container_name", "labels", "expose", "pid", "ipc", "devices", "working_dir",
    "mem_limit", "cpus", "pids_limit", "extends", "profiles", "secrets", "configs", "logging", "tmpfs",
})
"""Keys only a compose service has; one of them tells a compose file from other YAML with ``services``."""


def looks_like_compose(data: Any) -> bool:
    """A mapping whose ``services`` is a mapping of service mappings that use compose keys."""
    if not isinstance(data, dict):
        return False
    services = data.get("services")
    if not isinstance(services, dict) or not services:
        return False
    bodies = list(services.values())
    if not all(isinstance(body, dict) or body is None for body in bodies):
        return False
    return any(isinstance(body, dict) and SERVICE_KEYS.intersection(body) for body in bodies)


def compose_documents(yaml_doc: YamlDocument, label: str) -> list[Document]:
    """One document for the compose file; its name is the project name when the file sets one."""
    data = yaml_doc.data
    if not isinstance(data, dict):
        return []
    project = data.get("name")
    name = project if isinstance(project, str) and project else PurePosixPath(label.replace("\\", "/")).name
    return [Document(TargetKind.COMPOSE, label, data, name=name, lines=yaml_doc.lines,
                     start_line=yaml_doc.start_line, end_line=yaml_doc.end_line)]


# --------------------------------------------------------------------------------------------------
# The normalised view


@dataclass(frozen=True, slots=True)
class Port:
    """One published port mapping (a port only exposed to other containers is not one)."""

    target: str
    published: str
    """The host port or range as written; "" when Docker picks a random host port."""
    host_ip: str
    protocol: str
    path: JsonPath

    @property
    def published_ports(self) -> list[int]:
        """The host ports, when they are numbers (a range gives each; ``${PORT}`` gives none)."""
        return _port_numbers(self.published)


@dataclass(frozen=True, slots=True)
class Mount:
    """One volume of a service: a bind mount of a host path, a named volume, a tmpfs …"""

    type: str
    """``bind``, ``volume``, ``tmpfs``, ``npipe``, ``cluster`` or ``image``."""
    source: str
    target: str
    read_only: bool
    propagation: str
    path: JsonPath


@dataclass(slots=True)
class Service:
    """A compose service with its settings decoded, each with the path it came from."""

    name: str
    data: dict[str, Any]
    path: JsonPath
    ports: list[Port] = field(default_factory=list)
    mounts: list[Mount] = field(default_factory=list)
    environment: dict[str, tuple[str | None, JsonPath]] = field(default_factory=dict)
    security_opt: list[tuple[str, str, JsonPath]] = field(default_factory=list)
    """(option, value, path): ``no-new-privileges:true`` → ("no-new-privileges", "true", …)."""

    def at(self, *keys: str | int) -> JsonPath:
        return (*self.path, *keys)

    def get(self, key: str) -> Any:
        return self.data.get(key)

    @property
    def limits(self) -> dict[str, Any]:
        """``deploy.resources.limits`` ({} when absent)."""
        return _mapping(_mapping(_mapping(self.data.get("deploy")).get("resources")).get("limits"))

    @property
    def limits_path(self) -> JsonPath:
        return self.at("deploy", "resources", "limits")


def services(doc: Document) -> list[Service]:
    """Every service of a compose document, decoded (computed once and kept in ``doc.facts``)."""
    cached = doc.facts.get("compose.services")
    if cached is not None:
        result: list[Service] = cached
        return result
    result = []
    for name, body in _mapping(_mapping(doc.data).get("services")).items():
        if isinstance(body, dict):
            result.append(_service(str(name), body, ("services", str(name))))
    doc.facts["compose.services"] = result
    return result


def _service(name: str, body: dict[str, Any], path: JsonPath) -> Service:
    service = Service(name, body, path)
    service.ports = list(_ports(body.get("ports"), (*path, "ports")))
    service.mounts = list(_mounts(body.get("volumes"), (*path, "volumes")))
    service.environment = _environment(body.get("environment"), (*path, "environment"))
    service.security_opt = list(_security_opts(body.get("security_opt"), (*path, "security_opt")))
    return service


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


# ports ------------------------------------------------------------------------------------------------

def _ports(value: Any, path: JsonPath) -> Iterator[Port]:
    for position, item in enumerate(_list(value)):
        where = (*path, position)
        if isinstance(item, int | float) and not isinstance(item, bool):
            yield Port(str(int(item)), "", "", "tcp", where)
        elif isinstance(item, str):
            port = parse_port(item.strip(), where)
            if port is not None:
                yield port
        elif isinstance(item, dict):
            published = item.get("published")
            yield Port(str(item.get("target", "")), "" if published is None else str(published),
                       str(item.get("host_ip") or ""), str(item.get("protocol") or "tcp"), where)


def parse_port(text: str, path: JsonPath = ()) -> Port | None:
    """``[HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL]``; an IPv6 host address is in brackets."""
    protocol = "tcp"
    if "/" in text:
        text, protocol = text.rsplit("/", 1)
    host_ip = ""
    if text.startswith("["):
        address, bracket, text = text[1:].partition("]")
        if not bracket or not text.startswith(":"):
            return None
        host_ip, text = address, text[1:]
        parts = text.split(":")
        if len(parts) != 2:
            return None
        return Port(parts[1], parts[0], host_ip, protocol, path)
    parts = text.split(":")
    if len(parts) == 1:
        return Port(parts[0], "", "", protocol, path)
    if len(parts) == 2:
        return Port(parts[1], parts[0], "", protocol, path)
    if len(parts) == 3:
        return Port(parts[2], parts[1], parts[0], protocol, path)
    return None


def _port_numbers(text: str) -> list[int]:
    text = text.strip()
    if re.fullmatch(r"\d+", text):
        return [int(text)]
    ranged = re.fullmatch(r"(\d+)-(\d+)", text)
    if ranged:
        low, high = int(ranged.group(1)), int(ranged.group(2))
        return list(range(low, min(high, low + 65535) + 1)) if low <= high else []
    return []


# volumes ----------------------------------------------------------------------------------------------

_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")


def _mounts(value: Any, path: JsonPath) -> Iterator[Mount]:
    for position, item in enumerate(_list(value)):
        where = (*path, position)
        if isinstance(item, str):
            yield parse_volume(item, where)
        elif isinstance(item, dict):
            kind = str(item.get("type") or "volume")
            bind = _mapping(item.get("bind"))
            yield Mount(kind, str(item.get("source") or ""), str(item.get("target") or ""),
                        item.get("read_only") is True, str(bind.get("propagation") or ""), where)


def parse_volume(text: str, path: JsonPath = ()) -> Mount:
    """``SOURCE:TARGET[:MODE]`` or an anonymous ``TARGET``. A source that is a path (``/``, ``.``, ``~``
    or a Windows drive) is a bind mount; a bare name is a named volume."""
    drive = ""
    rest = text
    if _WINDOWS_DRIVE.match(text):
        drive, rest = text[:2], text[2:]
    parts = rest.split(":")
    parts[0] = drive + parts[0]
    if len(parts) == 1:
        return Mount("volume", "", parts[0], False, "", path)
    source, target = parts[0], parts[1]
    options = set(parts[2].split(",")) if len(parts) > 2 else set()
    is_path = source.startswith(("/", ".", "~", "$")) or bool(drive)
    propagation = next((o for o in options if o in ("shared", "rshared", "slave", "rslave", "private",
                                                    "rprivate")), "")
    return Mount("bind" if is_path else "volume", source, target, "ro" in options, propagation, path)


# environment and security options ------------------------------------------------------------------------

def _environment(value: Any, path: JsonPath) -> dict[str, tuple[str | None, JsonPath]]:
    result: dict[str, tuple[str | None, JsonPath]] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            result[str(key)] = (None if item is None else _text(item), (*path, str(key)))
    else:
        for position, item in enumerate(_list(value)):
            if isinstance(item, str):
                key, sep, rest = item.partition("=")
                result[key] = (rest if sep else None, (*path, position))
    return result


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _security_opts(value: Any, path: JsonPath) -> Iterator[tuple[str, str, JsonPath]]:
    for position, item in enumerate(_list(value)):
        if not isinstance(item, str):
            continue
        match = re.match(r"\s*([^:=]+?)\s*(?:[:=](.*))?$", item)
        if match:
            yield match.group(1), (match.group(2) or "").strip(), (*path, position)


def memory_bytes(value: Any) -> int | None:
    """A compose memory size (``512m``, ``1g``, ``1073741824``, ``1.5gb``) in bytes; None when unknown."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value)
    if not isinstance(value, str):
        return None
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*", value.lower())
    if not match:
        return None
    scale = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}[match.group(2)]
    return int(float(match.group(1)) * scale)
