"""The layer cache: one JSON file per (diff id, analyzer versions), so a layer is analyzed once.

Keyed by the layer's diff id (the digest of its uncompressed content) rather than by the blob
digest, so the same base layer shared by many images, or the same image stored as a
docker-archive and in a registry, is analyzed once. Writes are atomic (temp file + rename), and a
damaged entry is treated as a miss, never as a result.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from moat.inventory.layer_analysis import LayerResult

CACHE_FORMAT = 2
"""2: file findings carry owned_paths."""


class LayerCache:
    def __init__(self, root: Path, analyzer_versions: str) -> None:
        self.root = root / "layers"
        self._versions = analyzer_versions

    def key(self, diff_id: str) -> str:
        material = f"{CACHE_FORMAT}|{diff_id}|{self._versions}"
        return hashlib.sha256(material.encode()).hexdigest()

    def _path(self, diff_id: str) -> Path:
        key = self.key(diff_id)
        return self.root / key[:2] / f"{key}.json"

    def get(self, diff_id: str) -> LayerResult | None:
        path = self._path(diff_id)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("diff_id") != diff_id:
                return None
            return LayerResult.from_dict(data)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def put(self, diff_id: str, result: LayerResult) -> None:
        path = self._path(diff_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = result.to_dict()
        data["diff_id"] = diff_id
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle, separators=(",", ":"))
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
