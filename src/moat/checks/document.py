"""What a rule looks at: one parsed object of one target kind, with a way back to its source lines.

Every parser (Dockerfile, Kubernetes YAML, compose, image config, ``docker inspect``, node files)
yields :class:`Document` objects. A rule never reads files itself; it reads ``doc.data`` (plain JSON
data: dicts, lists, str, int, float, bool, None) and reports the path of what it found, so the engine
can turn that path into a line number with :meth:`Document.line_of`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

JsonPath = tuple[str | int, ...]
"""A path into ``Document.data``: keys and list indexes, e.g. ``("spec", "containers", 0, "image")``."""


class TargetKind:
    """The kinds of document rules apply to (a rule names one or more)."""

    DOCKERFILE = "dockerfile"
    KUBERNETES = "kubernetes"
    """One Kubernetes object (any kind); ``data`` is the object as written."""
    COMPOSE = "compose"
    """One docker-compose file; ``data`` is the whole file."""
    IMAGE_CONFIG = "image-config"
    """An image's config plus facts from its layers (see :mod:`moat.checks.targets.image_config`)."""
    DOCKER_HOST = "docker-host"
    """A Docker host's files and daemon settings (see :mod:`moat.checks.targets.docker_host`)."""
    DOCKER_CONTAINER = "docker-container"
    """One running container as the Engine API's ``/containers/{id}/json`` returns it."""
    K8S_NODE = "k8s-node"
    """A Kubernetes node's files, flags and configs (see :mod:`moat.checks.targets.k8s_node`)."""

    ALL = (DOCKERFILE, KUBERNETES, COMPOSE, IMAGE_CONFIG, DOCKER_HOST, DOCKER_CONTAINER, K8S_NODE)


@dataclass(slots=True)
class Document:
    """One object a rule is evaluated on."""

    kind: str
    """A :class:`TargetKind` value."""
    path: str
    """The file (or target) it came from, as the user named it; shown in every finding."""
    data: Any
    """The parsed object as plain JSON data."""
    name: str = ""
    """What the object is called in findings: ``Deployment/web`` (namespace too, when given:
    ``prod/Deployment/web``), a container name, ``daemon.json`` …"""
    lines: Mapping[JsonPath, int] = field(default_factory=dict)
    """Source line (1-based) of each path that has one; parsers fill what they can."""
    start_line: int = 0
    """First line of the object in its file (0 when not known)."""
    end_line: int = 0
    facts: dict[str, Any] = field(default_factory=dict)
    """Extra context a parser knows that is not part of the object itself (e.g. the Dockerfile's
    stages, the node role, the benchmark version); rules may read it."""

    def line_of(self, path: JsonPath) -> int:
        """The line of ``path``, else of its nearest ancestor that has one, else the object's start."""
        probe = tuple(path)
        while probe:
            line = self.lines.get(probe)
            if line:
                return line
            probe = probe[:-1]
        return self.start_line
