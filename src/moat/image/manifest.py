"""OCI / Docker manifest handling shared by every source that stores blobs by digest.

OCI layouts, OCI archives and registries all hand out blobs by digest; this module walks from an
index (or a tag) to one image manifest, checks platform choice, and turns the config and manifest
into an :class:`~moat.model.Artifact` and a list of layer descriptors.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from moat.errors import SourceError
from moat.image.source import Layer
from moat.model import Artifact, LayerInfo

MAX_JSON_BYTES = 16 * 1024 * 1024
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$|^sha512:[0-9a-f]{128}$")

INDEX_TYPES = {
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
}
MANIFEST_TYPES = {
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
}
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"


@dataclass(slots=True)
class Descriptor:
    media_type: str
    digest: str
    size: int | None
    annotations: dict[str, str]
    platform: dict[str, Any] | None = None

    @classmethod
    def parse(cls, data: Any, where: str) -> Descriptor:
        if not isinstance(data, dict):
            raise SourceError(f"{where}: descriptor is not an object")
        digest = data.get("digest")
        if not isinstance(digest, str) or not DIGEST_RE.match(digest):
            raise SourceError(f"{where}: invalid digest {digest!r}")
        size = data.get("size")
        return cls(
            media_type=str(data.get("mediaType") or ""),
            digest=digest,
            size=size if isinstance(size, int) and size >= 0 else None,
            annotations={str(k): str(v) for k, v in (data.get("annotations") or {}).items()},
            platform=data.get("platform") if isinstance(data.get("platform"), dict) else None,
        )


def parse_json(data: bytes, where: str) -> Any:
    if len(data) > MAX_JSON_BYTES:
        raise SourceError(f"{where}: larger than {MAX_JSON_BYTES} bytes")
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SourceError(f"{where}: not valid JSON ({exc})") from exc


def verify_blob(data: bytes, digest: str, where: str) -> None:
    algorithm, _, expected = digest.partition(":")
    actual = hashlib.new(algorithm, data).hexdigest()
    if actual != expected:
        raise SourceError(f"{where}: content digest {algorithm}:{actual} does not match {digest}")


def is_index(media_type: str, document: dict[str, Any]) -> bool:
    return media_type in INDEX_TYPES or ("manifests" in document and "layers" not in document)


def parse_platform(text: str | None) -> dict[str, str] | None:
    """``os/arch[/variant]`` as docker and skopeo accept it."""
    if not text:
        return None
    parts = text.split("/")
    if len(parts) < 2 or not all(parts):
        raise SourceError(f"--platform {text!r}: expected os/arch[/variant]")
    platform = {"os": parts[0], "architecture": parts[1]}
    if len(parts) > 2:
        platform["variant"] = parts[2]
    return platform


def default_platform() -> dict[str, str]:
    import platform as host

    machine = host.machine().lower()
    arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)
    return {"os": "linux", "architecture": arch}


def choose_manifest(
    manifests: list[Descriptor], platform: dict[str, str] | None, where: str
) -> Descriptor:
    """Pick the manifest for a platform (the host's when none is asked for), skipping attestations."""
    images = [m for m in manifests if not _is_attestation(m)]
    if not images:
        raise SourceError(f"{where}: the index lists no image manifests")
    wanted = platform or default_platform()
    for descriptor in images:
        have = descriptor.platform or {}
        if have.get("os") == wanted["os"] and have.get("architecture") == wanted["architecture"]:
            if "variant" in wanted and have.get("variant") not in (None, wanted["variant"]):
                continue
            return descriptor
    if platform is None and len(images) == 1:
        return images[0]
    if platform is None and all(m.platform is None for m in images):
        return images[0]
    available = sorted(
        "/".join(x for x in (m.platform or {}).values() if isinstance(x, str)) or "unknown" for m in images
    )
    asked = "/".join(wanted.values())
    raise SourceError(f"{where}: no manifest for platform {asked} (available: {', '.join(available)})")


def _is_attestation(descriptor: Descriptor) -> bool:
    if descriptor.annotations.get("vnd.docker.reference.type") == "attestation-manifest":
        return True
    return (descriptor.platform or {}).get("os") == "unknown"


@dataclass(slots=True)
class ResolvedImage:
    """An image manifest and its parsed config, found from an index or a tag."""

    manifest_digest: str
    manifest: dict[str, Any]
    config: dict[str, Any]
    config_digest: str
    layers: list[Descriptor]


def resolve_image(
    top: Descriptor | None,
    fetch: Callable[[Descriptor], bytes],
    platform: dict[str, str] | None,
    where: str,
    top_document: dict[str, Any] | None = None,
) -> ResolvedImage:
    """Walk index → manifest → config; ``fetch`` returns a blob's verified bytes."""
    descriptor = top
    document = top_document
    for _ in range(8):
        if document is None:
            assert descriptor is not None
            document = parse_json(fetch(descriptor), f"{where}: {descriptor.digest}")
        if not isinstance(document, dict):
            raise SourceError(f"{where}: manifest is not a JSON object")
        media_type = str(document.get("mediaType") or (descriptor.media_type if descriptor else ""))
        if is_index(media_type, document):
            entries = document.get("manifests")
            if not isinstance(entries, list):
                raise SourceError(f"{where}: index has no manifests list")
            children = [Descriptor.parse(m, where) for m in entries]
            descriptor = choose_manifest(children, platform, where)
            document = None
            continue
        if document.get("schemaVersion") == 1:
            raise SourceError(f"{where}: Docker schema 1 manifests are not supported (deprecated since 2017)")
        if "layers" not in document or "config" not in document:
            raise SourceError(f"{where}: not an image manifest (no config or layers)")
        config_descriptor = Descriptor.parse(document["config"], where)
        layers = document["layers"]
        if not isinstance(layers, list):
            raise SourceError(f"{where}: manifest layers is not a list")
        config = parse_json(fetch(config_descriptor), f"{where}: config")
        if not isinstance(config, dict):
            raise SourceError(f"{where}: image config is not a JSON object")
        digest = descriptor.digest if descriptor else ""
        return ResolvedImage(
            manifest_digest=digest,
            manifest=document,
            config=config,
            config_digest=config_descriptor.digest,
            layers=[Descriptor.parse(layer, where) for layer in layers],
        )
    raise SourceError(f"{where}: indexes nested too deeply")


def diff_ids(config: dict[str, Any], where: str, layer_count: int) -> list[str | None]:
    """The config's rootfs diff ids, checked for count and form (None where the config has none)."""
    rootfs = config.get("rootfs") or {}
    values = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not values:
        return [None] * layer_count
    if not isinstance(values, list) or len(values) != layer_count:
        raise SourceError(f"{where}: config lists {len(values or [])} diff ids for {layer_count} layers")
    for value in values:
        if not isinstance(value, str) or not DIGEST_RE.match(value):
            raise SourceError(f"{where}: invalid diff id {value!r}")
    return list(values)


def layer_history(config: dict[str, Any]) -> list[str | None]:
    """``created_by`` of each non-empty history entry, aligned with the layers."""
    history = config.get("history")
    if not isinstance(history, list):
        return []
    return [
        str(item.get("created_by") or "") or None
        for item in history
        if isinstance(item, dict) and not item.get("empty_layer")
    ]


def build_artifact(
    name: str,
    config: dict[str, Any],
    layer_infos: list[LayerInfo],
    digest: str | None,
    repo_tags: list[str] | None = None,
    repo_digests: list[str] | None = None,
) -> Artifact:
    inner = config.get("config") if isinstance(config.get("config"), dict) else {}
    return Artifact(
        name=name,
        type="container_image",
        digest=digest,
        repo_tags=repo_tags or [],
        repo_digests=repo_digests or [],
        architecture=str(config.get("architecture")) if config.get("architecture") else None,
        os=str(config.get("os")) if config.get("os") else None,
        created=str(config.get("created")) if config.get("created") else None,
        layers=layer_infos,
        config=inner or {},
    )


def check_layer_type(descriptor: Descriptor, where: str) -> None:
    """Refuse layers Moat cannot read: encrypted ones, and artifacts that are not tar layers."""
    media_type = descriptor.media_type
    if "encrypted" in media_type:
        raise SourceError(f"{where}: layer {descriptor.digest[:19]} is encrypted ({media_type})")
    if media_type and "tar" not in media_type:
        raise SourceError(
            f"{where}: layer {descriptor.digest[:19]} has media type {media_type!r}, not a container image layer"
        )


def describe_layers(
    resolved: ResolvedImage,
    where: str,
    reader_factory: Callable[[Descriptor, str | None], Callable[[], Any]],
) -> tuple[list[Layer], list[LayerInfo]]:
    """The image's layers, bottom to top, for the scan and for the report.

    ``reader_factory(descriptor, diff_id)`` returns what opens a fresh reader of that layer; each
    source supplies its own (a blob file, an archive member, a registry download).
    """
    ids = diff_ids(resolved.config, where, len(resolved.layers))
    history = layer_history(resolved.config)
    layers: list[Layer] = []
    infos: list[LayerInfo] = []
    for position, descriptor in enumerate(resolved.layers):
        check_layer_type(descriptor, where)
        created_by = history[position] if position < len(history) else None
        media_type = descriptor.media_type or None
        layers.append(
            Layer(
                diff_id=ids[position],
                reader_factory=reader_factory(descriptor, ids[position]),
                digest=descriptor.digest,
                media_type=media_type,
                size=descriptor.size,
                created_by=created_by,
            )
        )
        infos.append(
            LayerInfo(
                diff_id=ids[position] or "",
                digest=descriptor.digest,
                size=descriptor.size,
                media_type=media_type,
                created_by=created_by,
            )
        )
    return layers, infos
