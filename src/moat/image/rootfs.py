"""``dir:`` targets: an unpacked root filesystem, walked as a single layer without following links."""

from __future__ import annotations

import os

from moat.errors import SourceError
from moat.image.layers import DirLayerReader
from moat.image.source import ImageSource, Layer, OpenedImage
from moat.model import Artifact, LayerInfo


class RootfsSource(ImageSource):
    scheme = "dir"

    def __init__(self, path: str) -> None:
        self.path = path

    def open(self) -> OpenedImage:
        if not os.path.isdir(self.path):
            raise SourceError(f"{self.path}: not a directory")
        layer = Layer(diff_id=None, reader_factory=lambda: DirLayerReader(self.path))
        artifact = Artifact(
            name=self.path, type="filesystem", layers=[LayerInfo(diff_id="", media_type="directory")]
        )
        return OpenedImage(artifact=artifact, layers=[layer])
