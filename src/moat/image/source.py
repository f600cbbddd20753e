"""The one interface every image source implements, and how a target string picks a source.

Targets are written the way syft and skopeo users write them: ``oci-dir:PATH[:tag]``,
``oci-archive:PATH``, ``docker-archive:PATH``, ``registry:REF``, ``docker:NAME``, ``dir:PATH``,
``sbom:FILE``; a plain path is auto-detected and anything else is taken as a registry reference.
"""

from __future__ import annotations

import os
import tarfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from moat.errors import SourceError
from moat.model import Artifact


class LayerReader(Protocol):
    """What the inventory engine walks: entries, then the verified diff id and any warnings."""

    name: str
    warnings: list[str]
    diff_id: str | None

    def entries(self) -> Iterator[Any]: ...


@dataclass(slots=True)
class Layer:
    """One layer of an image: identity for the cache, and a way to walk it."""

    diff_id: str | None
    """Uncompressed digest as the image config states it (None for a plain directory)."""
    reader_factory: Any
    """Callable returning a fresh :class:`LayerReader`; a layer may be walked more than once."""
    digest: str | None = None
    media_type: str | None = None
    size: int | None = None
    created_by: str | None = None

    def reader(self) -> LayerReader:
        reader: LayerReader = self.reader_factory()
        return reader


@dataclass(slots=True)
class OpenedImage:
    """A source after it has been opened: what the image is, and its layers bottom to top."""

    artifact: Artifact
    layers: list[Layer]
    cleanup: list[Any] = field(default_factory=list)

    def close(self) -> None:
        for item in reversed(self.cleanup):
            item()
        self.cleanup.clear()


class ImageSource(ABC):
    """An image location. ``open`` does the I/O and raises :class:`SourceError` for bad input."""

    scheme: str

    @abstractmethod
    def open(self) -> OpenedImage: ...


@dataclass(slots=True)
class SourceOptions:
    """Options that only some sources use (registry auth, platform choice, engine socket)."""

    platform: str | None = None
    insecure: bool = False
    username: str | None = None
    password: str | None = None
    docker_config: str | None = None
    docker_host: str | None = None
    tmp_dir: str | None = None


SCHEMES = ("oci-dir", "oci-archive", "docker-archive", "registry", "docker", "dir", "sbom")


def split_target(target: str) -> tuple[str, str]:
    """Split ``scheme:rest``; a plain path is auto-detected, anything else is a registry ref."""
    for scheme in SCHEMES:
        if target.startswith(scheme + ":"):
            return scheme, target[len(scheme) + 1 :]
    if os.path.exists(target):
        return detect_path_scheme(target), target
    if target.startswith(("/", "./", "../", "~")) or target.endswith((".tar", ".tar.gz", ".tgz", ".json")):
        raise SourceError(f"{target}: no such file or directory")
    return "registry", target


def detect_path_scheme(path: str) -> str:
    """Tell an OCI layout, a docker-save or OCI tarball, an SBOM file or a root filesystem apart."""
    if os.path.isdir(path):
        if os.path.isfile(os.path.join(path, "oci-layout")) and os.path.isfile(os.path.join(path, "index.json")):
            return "oci-dir"
        return "dir"
    if not os.path.isfile(path):
        raise SourceError(f"{path}: not a file or directory")
    try:
        with tarfile.open(path, mode="r:*") as tar:
            names = set()
            for index, member in enumerate(tar):
                names.add(member.name.lstrip("./"))
                if index > 4096:
                    break
    except (tarfile.TarError, OSError, EOFError):
        names = set()
    if "manifest.json" in names and "oci-layout" not in names:
        return "docker-archive"
    if "oci-layout" in names or "index.json" in names:
        return "oci-archive"
    if "manifest.json" in names:
        return "docker-archive"
    if _looks_like_sbom(path):
        return "sbom"
    raise SourceError(f"{path}: not an image archive, OCI layout, SBOM or directory")


SBOM_MARKERS = (b'"bomFormat"', b'"spdxVersion"', b'"schema": "moat.report/')


def _looks_like_sbom(path: str) -> bool:
    """A JSON document carrying a CycloneDX, SPDX or Moat report marker anywhere in it.

    Writers order keys differently (cyclonedx-python-lib sorts them, so ``bomFormat`` comes late),
    so the whole file is searched, a chunk at a time.
    """
    overlap = max(len(m) for m in SBOM_MARKERS)
    try:
        with open(path, "rb") as handle:
            head = handle.read(1024 * 1024)
            if not head.lstrip().startswith(b"{"):
                return False
            chunk = head
            while chunk:
                if any(marker in chunk for marker in SBOM_MARKERS):
                    return True
                more = handle.read(1024 * 1024)
                chunk = chunk[-overlap:] + more if more else b""
    except OSError:
        return False
    return False


def make_source(target: str, options: SourceOptions | None = None) -> ImageSource:
    """The source for a target string (``sbom:`` targets are handled by :mod:`moat.sbom.reader`)."""
    options = options or SourceOptions()
    scheme, rest = split_target(target)
    if not rest:
        raise SourceError(f"{target}: empty {scheme} reference")
    if scheme == "oci-dir":
        from moat.image.oci_layout import OCILayoutSource

        path, tag = _split_path_tag(rest)
        return OCILayoutSource(path, tag, options)
    if scheme == "oci-archive":
        from moat.image.archive import OCIArchiveSource

        path, tag = _split_path_tag(rest)
        return OCIArchiveSource(path, tag, options)
    if scheme == "docker-archive":
        from moat.image.archive import DockerArchiveSource

        path, tag = _split_path_tag(rest)
        return DockerArchiveSource(path, tag, options)
    if scheme == "dir":
        from moat.image.rootfs import RootfsSource

        return RootfsSource(rest)
    if scheme == "docker":
        from moat.image.engine import DockerEngineSource

        return DockerEngineSource(rest, options)
    if scheme == "registry":
        from moat.image.registry import RegistrySource

        return RegistrySource(rest, options)
    raise SourceError(f"{target}: {scheme} targets are not images")


def _split_path_tag(rest: str) -> tuple[str, str | None]:
    """``PATH[:tag]``: the tag is whatever follows the last colon, if PATH alone does not exist."""
    if os.path.exists(rest) or ":" not in rest:
        return rest, None
    path, _, tag = rest.rpartition(":")
    return path, tag or None
