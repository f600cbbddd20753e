"""``docker save`` tarballs (``docker-archive:``), the current layout and the legacy one.

Current layout: ``manifest.json`` lists, per image, the config file, its RepoTags and the layer
files. Legacy layout (Docker before 1.10, and some tools still): no manifest.json; ``repositories``
maps repo → tag → top layer id, and each ``<id>/json`` names its ``parent``. Docker 25+ writes an
OCI layout alongside manifest.json; either reading gives the same image.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from moat.errors import SourceError
from moat.image.blobstore import FileStore, TarStore
from moat.image.layers import TarLayerReader
from moat.image.manifest import build_artifact, diff_ids, layer_history, parse_json
from moat.image.oci_layout import OCIArchiveSource
from moat.image.source import ImageSource, Layer, OpenedImage, SourceOptions
from moat.model import LayerInfo

HEX64 = re.compile(r"^[0-9a-f]{64}$")
MAX_LEGACY_CHAIN = 512


class DockerArchiveSource(ImageSource):
    scheme = "docker-archive"

    def __init__(self, path: str, tag: str | None, options: SourceOptions) -> None:
        self.path = path
        self.tag = tag
        self.options = options

    def open(self) -> OpenedImage:
        store = TarStore(self.path, self.options.tmp_dir)
        try:
            if store.exists("manifest.json"):
                opened = self._open_current(store)
            elif store.exists("repositories"):
                opened = self._open_legacy(store)
            elif store.exists("index.json"):
                store.close()
                return OCIArchiveSource(self.path, self.tag, self.options).open()
            else:
                raise SourceError(f"{self.path}: not a docker-archive (no manifest.json or repositories)")
        except BaseException:
            store.close()
            raise
        opened.cleanup.append(store.close)
        return opened

    def _open_current(self, store: TarStore) -> OpenedImage:
        where = self.path
        manifest = parse_json(store.read("manifest.json"), f"{where}: manifest.json")
        if not isinstance(manifest, list) or not manifest or not all(isinstance(m, dict) for m in manifest):
            raise SourceError(f"{where}: manifest.json is not a list of images")
        entry = self._choose(manifest)
        config_name = entry.get("Config")
        layer_names = entry.get("Layers")
        if not isinstance(config_name, str) or not isinstance(layer_names, list):
            raise SourceError(f"{where}: manifest.json entry lacks Config or Layers")
        config_bytes = store.read(config_name)
        config_digest = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
        expected = _digest_from_name(config_name)
        if expected and expected != config_digest:
            raise SourceError(f"{where}: config {config_name} does not match its digest")
        config = parse_json(config_bytes, f"{where}: {config_name}")
        if not isinstance(config, dict):
            raise SourceError(f"{where}: image config is not a JSON object")
        ids = diff_ids(config, where, len(layer_names))
        history = layer_history(config)
        layers: list[Layer] = []
        infos: list[LayerInfo] = []
        for position, layer_name in enumerate(layer_names):
            if not isinstance(layer_name, str) or not store.exists(layer_name):
                raise SourceError(f"{where}: layer {layer_name!r} named in manifest.json is missing")
            created_by = history[position] if position < len(history) else None
            blob_digest = _digest_from_name(layer_name)
            layers.append(
                Layer(
                    diff_id=ids[position],
                    reader_factory=_factory(store, layer_name, blob_digest, ids[position]),
                    digest=blob_digest,
                    size=store.size(layer_name),
                    created_by=created_by,
                )
            )
            infos.append(
                LayerInfo(
                    diff_id=ids[position] or "",
                    digest=blob_digest,
                    size=store.size(layer_name),
                    created_by=created_by,
                )
            )
        tags = [str(t) for t in entry.get("RepoTags") or []]
        artifact = build_artifact(self.path, config, infos, config_digest, tags)
        return OpenedImage(artifact=artifact, layers=layers)

    def _choose(self, manifest: list[dict[str, Any]]) -> dict[str, Any]:
        if self.tag is None:
            if len(manifest) > 1:
                tags = sorted(str(t) for m in manifest for t in m.get("RepoTags") or [])
                raise SourceError(
                    f"{self.path}: the archive holds {len(manifest)} images; name one with :TAG or :@N "
                    f"({', '.join(tags)})"
                )
            return manifest[0]
        if self.tag.startswith("@") and self.tag[1:].isdigit():
            position = int(self.tag[1:])
            if position >= len(manifest):
                raise SourceError(f"{self.path}: no image @{position} (the archive holds {len(manifest)})")
            return manifest[position]
        for entry in manifest:
            for repo_tag in entry.get("RepoTags") or []:
                if repo_tag == self.tag or str(repo_tag).rsplit(":", 1)[-1] == self.tag:
                    return entry
        raise SourceError(f"{self.path}: no image tagged {self.tag!r}")

    def _open_legacy(self, store: TarStore) -> OpenedImage:
        where = self.path
        repositories = parse_json(store.read("repositories"), f"{where}: repositories")
        if not isinstance(repositories, dict) or not repositories:
            raise SourceError(f"{where}: repositories is not a repo → tag → id map")
        choices = [
            (f"{repo}:{tag}", top)
            for repo, tags in repositories.items()
            if isinstance(tags, dict)
            for tag, top in tags.items()
        ]
        if self.tag:
            choices = [c for c in choices if c[0] == self.tag or c[0].rsplit(":", 1)[-1] == self.tag]
        if not choices:
            raise SourceError(f"{where}: no matching image in repositories")
        repo_tag, top = choices[0]
        chain: list[str] = []
        current: Any = top
        config: dict[str, Any] | None = None
        while current:
            if not isinstance(current, str) or not HEX64.match(current):
                raise SourceError(f"{where}: invalid layer id {current!r}")
            if current in chain or len(chain) >= MAX_LEGACY_CHAIN:
                raise SourceError(f"{where}: layer parent chain loops or is too long")
            meta = parse_json(store.read(f"{current}/json"), f"{where}: {current}/json")
            if not isinstance(meta, dict):
                raise SourceError(f"{where}: {current}/json is not an object")
            if config is None:
                config = meta
            chain.append(current)
            current = meta.get("parent")
        chain.reverse()
        assert config is not None
        layers: list[Layer] = []
        infos: list[LayerInfo] = []
        for layer_id in chain:
            name = f"{layer_id}/layer.tar"
            if not store.exists(name):
                raise SourceError(f"{where}: {name} is missing")
            layers.append(Layer(diff_id=None, reader_factory=_factory(store, name, None, None), size=store.size(name)))
            infos.append(LayerInfo(diff_id="", size=store.size(name)))
        artifact = build_artifact(self.path, config, infos, "sha256:" + chain[-1], [repo_tag])
        return OpenedImage(artifact=artifact, layers=layers)


def _digest_from_name(name: str) -> str | None:
    """Blob digests that the file name states (``blobs/sha256/<hex>``, ``<hex>.json``, ``<hex>.tar``)."""
    stem = name.rsplit("/", 1)[-1].split(".", 1)[0]
    if HEX64.match(stem) and ("blobs/sha256/" in name or name.endswith((".json", ".tar"))):
        return "sha256:" + stem
    return None


def _factory(store: FileStore, name: str, digest: str | None, diff_id: str | None):  # type: ignore[no-untyped-def]
    def factory() -> TarLayerReader:
        return TarLayerReader(lambda: store.open(name), name=name, expected_digest=digest, expected_diff_id=diff_id)

    return factory
