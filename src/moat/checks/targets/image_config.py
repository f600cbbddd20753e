"""An image's configuration, history and layer facts as one :class:`Document` for the ``MOAT-IMG`` rules.

The rules judge what ``docker inspect`` and ``docker history`` show of a built image (CIS Docker 1.6
section 4): the user, the health check, exposed ports, labels, age, where it comes from, what its
build steps did, and which files carry setuid/setgid bits. The layer walk that finds those files
belongs to the inventory; its result is passed in as ``setuid_files``.

The document's ``data``::

    {"config": {...},          # the OCI image config's "config" object (User, Env, ExposedPorts, ...)
     "history": [{"created_by": "...", "empty_layer": false, "layer": "sha256:..." | None}],
     "created": "2024-05-01T10:00:00Z" | None,
     "repo_tags": [...], "repo_digests": [...], "name": "...",
     "type": "container_image" | "filesystem" | "sbom",   # what was scanned (Artifact.type)
     "os": "linux" | None, "architecture": "amd64" | None,
     "setuid_files": [{"path": "usr/bin/su", "mode": 0o104755, "layer": "sha256:..."}] | None}

``history`` comes from the layers' ``created_by`` (one entry per non-empty layer) unless the caller
passes the config's full history (with its empty-layer steps such as USER or ENV). ``setuid_files``
is None when no layer walk looked for them, so a rule can tell "none found" from "not looked at".
A directory or an SBOM has no image config at all: the rules that read ``config`` say nothing about
them rather than report a missing user or health check.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from moat.checks.document import Document, TargetKind
from moat.model import Inventory


def image_config_document(
    inv: Inventory,
    label: str,
    setuid_files: Iterable[Mapping[str, Any]] | None = None,
    history: Iterable[Mapping[str, Any]] | None = None,
) -> Document:
    """The image of ``inv`` as a document; ``label`` is how findings name it (the target as typed)."""
    artifact = inv.artifact
    if history is None:
        entries = [{"created_by": layer.created_by or "", "empty_layer": False, "layer": layer.diff_id}
                   for layer in artifact.layers]
    else:
        entries = [{"created_by": str(item.get("created_by") or ""), "empty_layer": bool(item.get("empty_layer")),
                    "layer": item.get("layer")} for item in history if isinstance(item, Mapping)]
    files = None
    if setuid_files is not None:
        files = [{"path": str(item.get("path", "")), "mode": int(item.get("mode") or 0),
                  "layer": item.get("layer")} for item in setuid_files]
    data: dict[str, Any] = {
        "config": dict(artifact.config or {}),
        "history": entries,
        "created": artifact.created,
        "repo_tags": list(artifact.repo_tags),
        "repo_digests": list(artifact.repo_digests),
        "name": artifact.name,
        "type": artifact.type,
        "os": artifact.os,
        "architecture": artifact.architecture,
        "setuid_files": files,
    }
    name = artifact.repo_tags[0] if artifact.repo_tags else artifact.name
    return Document(TargetKind.IMAGE_CONFIG, label, data, name=name)
