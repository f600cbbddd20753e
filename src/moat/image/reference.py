"""Image references as docker writes them: ``[host[:port]/]path[:tag][@digest]``.

The rules follow the distribution reference grammar so that a reference a user copies from
``docker pull`` means the same registry and repository here: the first path component is a
registry only when it looks like a host (has a ``.`` or a ``:``, or is ``localhost``), Docker Hub
is the default registry, and a one-component Hub repository lives under ``library/``.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from moat.errors import SourceError

DOCKER_HUB = "docker.io"
"""The registry name users write (and config.json keys by ``https://index.docker.io/v1/``)."""
DOCKER_HUB_API = "registry-1.docker.io"
"""Where Docker Hub's v2 API actually answers."""
DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/"
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io"}

DEFAULT_TAG = "latest"
MAX_NAME_LENGTH = 255

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST_RE = re.compile(
    rf"^(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:.]+\])(?::[0-9]{{1,5}})?$"
)
_PATH_COMPONENT_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST_RE = re.compile(r"^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$")


@dataclass(frozen=True, slots=True)
class Reference:
    """A parsed reference. ``registry`` is the name users write (``docker.io`` for the Hub)."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def api_host(self) -> str:
        """``host[:port]`` that serves the v2 API (the Hub's differs from its name)."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def hostname(self) -> str:
        """The registry host without its port (brackets of an IPv6 literal removed)."""
        return split_host_port(self.registry)[0]

    @property
    def manifest_ref(self) -> str:
        """What goes after ``/manifests/``: the digest when there is one (it pins content)."""
        return self.digest or self.tag or DEFAULT_TAG

    @property
    def familiar_repository(self) -> str:
        """The repository as ``docker images`` shows it: ``alpine``, ``user/app``, ``host:5000/app``."""
        if self.registry == DOCKER_HUB:
            return self.repository.removeprefix("library/")
        return f"{self.registry}/{self.repository}"

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_reference(text: str) -> Reference:
    """Parse a reference, filling in Docker Hub, ``library/`` and (without a digest) ``latest``."""
    original = text
    text = text.strip()
    text = text.removeprefix("docker://")
    if not text:
        raise SourceError("empty image reference")
    if any(c.isspace() for c in text):
        raise SourceError(f"{original!r}: image references cannot contain whitespace")

    name, at, digest = text.partition("@")
    if at and not _DIGEST_RE.match(digest):
        raise SourceError(
            f"{original}: invalid digest {digest!r} (expected sha256:<64 hex> or sha512:<128 hex>)"
        )
    tag: str | None = None
    # A colon after the last slash is a tag; one before it belongs to a host:port.
    last_slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > last_slash:
        name, tag = name[:colon], name[colon + 1 :]
        if not _TAG_RE.match(tag):
            raise SourceError(f"{original}: invalid tag {tag!r}")

    registry, repository = _split_registry(name, original)
    components = repository.split("/")
    for component in components:
        if not _PATH_COMPONENT_RE.match(component):
            if component.lower() != component and _PATH_COMPONENT_RE.match(component.lower()):
                raise SourceError(f"{original}: repository names must be lowercase")
            raise SourceError(f"{original}: invalid repository name component {component!r}")
    if registry == DOCKER_HUB and len(components) == 1:
        repository = f"library/{repository}"
    if len(registry) + 1 + len(repository) > MAX_NAME_LENGTH:
        raise SourceError(f"{original}: repository name longer than {MAX_NAME_LENGTH} characters")
    if tag is None and not at:
        tag = DEFAULT_TAG
    return Reference(registry=registry, repository=repository, tag=tag, digest=digest if at else None)


def _split_registry(name: str, original: str) -> tuple[str, str]:
    first, slash, rest = name.partition("/")
    if slash and _looks_like_host(first):
        if not _HOST_RE.match(first):
            raise SourceError(f"{original}: invalid registry host {first!r}")
        if not rest:
            raise SourceError(f"{original}: no repository after the registry host")
        registry = DOCKER_HUB if first.lower() in _HUB_ALIASES else first
        return registry, rest
    if not name:
        raise SourceError(f"{original}: no repository name")
    return DOCKER_HUB, name


def _looks_like_host(component: str) -> bool:
    return "." in component or ":" in component or component == "localhost" or component.startswith("[")


def split_host_port(host: str) -> tuple[str, int | None]:
    """``host:port`` → (host, port); IPv6 literals are written in brackets (``[::1]:5000``)."""
    if host.startswith("["):
        end = host.find("]")
        inner = host[1:end]
        port = host[end + 2 :] if host[end + 1 : end + 2] == ":" else ""
        return inner, int(port) if port else None
    name, colon, port = host.partition(":")
    return name, int(port) if colon and port else None


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses, which docker treats as insecure registries."""
    name = split_host_port(host)[0].lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
