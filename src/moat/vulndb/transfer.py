"""``moat db export`` / ``moat db import``: one file that carries the database into an air-gapped network.

The file is an uncompressed tar with two members: ``manifest.json`` first (format, schema version,
built_at, size and sha256 of the database) and ``vuln.db``. Import streams the database into a
temporary file beside the local one while hashing it, checks the hash, the size and the schema
(against the manifest and the database's own meta table), and only then renames it into place:
a tampered, truncated or foreign file is refused with one line and the local database is untouched.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sqlite3
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from moat.errors import MoatError
from moat.vulndb.store import DB_FILENAME, SCHEMA_VERSION, Store

FORMAT = "moat.vulndb-export/v1"
MANIFEST = "manifest.json"
MAX_MANIFEST = 64 << 10
MAX_DB = 16 << 30


def export_db(db_path: Path, out: Path) -> dict[str, Any]:
    """Write the export file atomically; returns its manifest."""
    with Store(db_path) as store:
        meta = store.meta()
    digest = hashlib.sha256()
    with open(db_path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    size = db_path.stat().st_size
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "schema_version": int(meta.get("schema_version", "0")),
        "built_at": meta.get("built_at"),
        "size": size,
        "sha256": digest.hexdigest(),
    }
    directory = out.absolute().parent
    if not directory.is_dir():
        raise MoatError(f"{out}: directory {directory} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=".moat-export-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            data = json.dumps(manifest, indent=2).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
            info = tarfile.TarInfo(DB_FILENAME)
            info.size, info.mode = size, 0o644
            with open(db_path, "rb") as handle:
                tar.addfile(info, handle)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise MoatError(f"{out}: cannot write ({exc.strerror or exc})") from exc
    return manifest


def import_db(archive: Path, db_path: Path) -> dict[str, Any]:
    """Verify ``archive`` and put its database in place of ``db_path``; returns the manifest."""
    if not archive.is_file():
        raise MoatError(f"{archive}: no such file")
    db_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".vuln-import-", suffix=".db.tmp", dir=db_path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            manifest, digest, size = _extract(archive, out)
        if size != manifest["size"] or digest != manifest["sha256"]:
            raise MoatError(f"{archive}: the database does not match the manifest's sha256 (tampered or truncated)")
        _check_db(tmp, manifest, archive)
        os.chmod(tmp, 0o644)
        os.replace(tmp, db_path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return manifest


def _extract(archive: Path, out: Any) -> tuple[dict[str, Any], str, int]:
    manifest: dict[str, Any] | None = None
    digest = hashlib.sha256()
    size = -1
    try:
        with tarfile.open(archive, mode="r:") as tar:
            for member in tar:
                if member.name == MANIFEST and member.isreg() and manifest is None:
                    if member.size > MAX_MANIFEST:
                        raise MoatError(f"{archive}: manifest is too large")
                    handle = tar.extractfile(member)
                    manifest = _manifest(handle.read() if handle else b"", archive)
                elif member.name == DB_FILENAME and member.isreg() and size < 0:
                    if manifest is None:
                        raise MoatError(f"{archive}: not a Moat database export (no manifest before {DB_FILENAME})")
                    if member.size > MAX_DB or member.size != manifest["size"]:
                        raise MoatError(f"{archive}: {DB_FILENAME} size does not match the manifest")
                    handle = tar.extractfile(member)
                    size = 0
                    while handle is not None and (chunk := handle.read(1 << 20)):
                        size += len(chunk)
                        digest.update(chunk)
                        out.write(chunk)
                else:
                    raise MoatError(f"{archive}: unexpected member {member.name[:80]!r}: not a Moat database export")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise MoatError(f"{archive}: not a readable Moat database export ({exc})") from exc
    if manifest is None or size < 0:
        raise MoatError(f"{archive}: not a Moat database export (needs {MANIFEST} and {DB_FILENAME})")
    return manifest, digest.hexdigest(), size


def _manifest(data: bytes, archive: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(data)
    except ValueError as exc:
        raise MoatError(f"{archive}: manifest is not valid JSON") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise MoatError(f"{archive}: not a Moat database export (format is not {FORMAT})")
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise MoatError(
            f"{archive}: database schema {manifest.get('schema_version')}, this Moat reads {SCHEMA_VERSION}"
        )
    sha, size = manifest.get("sha256"), manifest.get("size")
    if not isinstance(sha, str) or len(sha) != 64 or not isinstance(size, int) or isinstance(size, bool):
        raise MoatError(f"{archive}: manifest lacks sha256 and size")
    return manifest


def _check_db(path: Path, manifest: dict[str, Any], archive: Path) -> None:
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            db.execute("SELECT COUNT(*) FROM advisories").fetchone()
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        raise MoatError(f"{archive}: {DB_FILENAME} is not a Moat vulnerability database ({exc})") from exc
    if meta.get("schema_version") != str(SCHEMA_VERSION) or meta.get("built_at") != manifest.get("built_at"):
        raise MoatError(f"{archive}: {DB_FILENAME} does not match its manifest (schema or built_at)")
