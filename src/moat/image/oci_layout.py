"""OCI image layouts: a directory (``oci-dir:``) or a tarball of one (``oci-archive:``)."""

from __future__ import annotations

from collections.abc import Callable

from moat.errors import SourceError
from moat.image.blobstore import DirStore, FileStore, TarStore, blob_name
from moat.image.layers import TarLayerReader
from moat.image.manifest import (
    REF_NAME_ANNOTATION,
    Descriptor,
    build_artifact,
    describe_layers,
    parse_json,
    parse_platform,
    resolve_image,
    verify_blob,
)
from moat.image.source import ImageSource, OpenedImage, SourceOptions


def open_layout(store: FileStore, tag: str | None, options: SourceOptions, name: str) -> OpenedImage:
    """Resolve the layout's index (by tag, then platform) to one image and describe its layers."""
    where = store.where
    if not store.exists("index.json"):
        raise SourceError(f"{where}: not an OCI layout (no index.json)")
    index = parse_json(store.read("index.json"), f"{where}: index.json")
    if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
        raise SourceError(f"{where}: index.json has no manifests list")
    descriptors = [Descriptor.parse(item, f"{where}: index.json") for item in index["manifests"]]
    if not descriptors:
        raise SourceError(f"{where}: the layout holds no images")
    tagged = [d for d in descriptors if d.annotations.get(REF_NAME_ANNOTATION)]
    if tag:
        chosen = [d for d in descriptors if d.annotations.get(REF_NAME_ANNOTATION) == tag]
        if not chosen:
            available = sorted({d.annotations[REF_NAME_ANNOTATION] for d in tagged})
            raise SourceError(f"{where}: no image tagged {tag!r} (tags: {', '.join(available) or 'none'})")
        top = chosen[0]
    elif len({d.digest for d in descriptors}) == 1:
        top = descriptors[0]
    else:
        tags = sorted({d.annotations.get(REF_NAME_ANNOTATION, d.digest[:19]) for d in descriptors})
        raise SourceError(f"{where}: the layout holds several images; name one with :TAG ({', '.join(tags)})")

    def fetch(descriptor: Descriptor) -> bytes:
        data = store.read(blob_name(descriptor.digest))
        verify_blob(data, descriptor.digest, f"{where}: blob {descriptor.digest}")
        return data

    resolved = resolve_image(top, fetch, parse_platform(options.platform), where)
    for descriptor in resolved.layers:
        if not store.exists(blob_name(descriptor.digest)):
            raise SourceError(f"{where}: layer blob {descriptor.digest} is missing")
    layers, infos = describe_layers(
        resolved, where, lambda descriptor, diff_id: _reader_factory(store, descriptor.digest, diff_id)
    )
    repo_tags = [tag] if tag else [d.annotations[REF_NAME_ANNOTATION] for d in tagged[:1]]
    artifact = build_artifact(name, resolved.config, infos, resolved.manifest_digest or top.digest, repo_tags)
    return OpenedImage(artifact=artifact, layers=layers)


def _reader_factory(store: FileStore, digest: str, diff_id: str | None) -> Callable[[], TarLayerReader]:
    def factory() -> TarLayerReader:
        return TarLayerReader(
            lambda: store.open(blob_name(digest)), name=digest[:19], expected_digest=digest, expected_diff_id=diff_id
        )

    return factory


class OCILayoutSource(ImageSource):
    scheme = "oci-dir"

    def __init__(self, path: str, tag: str | None, options: SourceOptions) -> None:
        self.path = path
        self.tag = tag
        self.options = options

    def open(self) -> OpenedImage:
        return open_layout(DirStore(self.path), self.tag, self.options, self.path)


class OCIArchiveSource(ImageSource):
    scheme = "oci-archive"

    def __init__(self, path: str, tag: str | None, options: SourceOptions) -> None:
        self.path = path
        self.tag = tag
        self.options = options

    def open(self) -> OpenedImage:
        store = TarStore(self.path, self.options.tmp_dir)
        try:
            opened = open_layout(store, self.tag, self.options, self.path)
        except BaseException:
            store.close()
            raise
        opened.cleanup.append(store.close)
        return opened
