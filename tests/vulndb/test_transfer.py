"""Export/import of the database for air-gapped networks: the round trip, and tampered files refused."""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
import tarfile
from pathlib import Path

import pytest

from corpus import SHARED
from moat.errors import MoatError
from moat.vulndb.age import check_age
from moat.vulndb.store import Store
from moat.vulndb.transfer import export_db, import_db
from moat.vulndb.update import update_db

OSV = SHARED / "vulndata" / "osv"


@pytest.fixture()
def db(tmp_path: Path) -> Path:
    path = tmp_path / "online" / "db" / "vuln.db"
    update_db(path, [str(OSV / "npm.zip"), str(OSV / "Maven.zip")], cache_dir=tmp_path / "online")
    return path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rewrite(export: Path, out: Path, *, manifest: dict | None = None, db_bytes: bytes | None = None) -> None:
    """Copy an export, replacing the manifest or the database bytes (what an attacker would do)."""
    with tarfile.open(export) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar}  # type: ignore[union-attr]
    if manifest is not None:
        members["manifest.json"] = json.dumps(manifest).encode()
    if db_bytes is not None:
        members["vuln.db"] = db_bytes
    with tarfile.open(out, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_round_trip(db: Path, tmp_path: Path) -> None:
    export = tmp_path / "moat-db.tar"
    manifest = export_db(db, export)
    with tarfile.open(export) as tar:
        assert tar.getnames() == ["manifest.json", "vuln.db"]
        stored = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert stored == manifest
    assert manifest["sha256"] == sha(db) and manifest["size"] == db.stat().st_size
    assert manifest["schema_version"] == 1 and manifest["built_at"] == Store(db).meta()["built_at"]

    target = tmp_path / "airgap" / "db" / "vuln.db"
    import_db(export, target)
    assert sha(target) == sha(db)
    with Store(target) as store:
        assert store.counts_by_ecosystem() == {"Maven": 5, "npm": 6}
        assert check_age(store, 7) is None


def test_tampered_database_is_refused_and_the_local_one_kept(db: Path, tmp_path: Path) -> None:
    export = tmp_path / "moat-db.tar"
    export_db(db, export)
    target = tmp_path / "airgap" / "vuln.db"
    import_db(export, target)
    before = sha(target)

    data = bytearray(db.read_bytes())
    data[len(data) // 2] ^= 0xFF
    tampered = tmp_path / "tampered.tar"
    rewrite(export, tampered, db_bytes=bytes(data))
    with pytest.raises(MoatError, match="does not match the manifest's sha256") as info:
        import_db(tampered, target)
    assert "\n" not in str(info.value)
    assert sha(target) == before
    assert [p.name for p in target.parent.iterdir()] == ["vuln.db"]


def test_a_consistent_forgery_with_another_schema_is_refused(db: Path, tmp_path: Path) -> None:
    export = tmp_path / "moat-db.tar"
    manifest = export_db(db, export)
    forged = tmp_path / "forged.tar"
    rewrite(export, forged, manifest=dict(manifest, schema_version=99))
    with pytest.raises(MoatError, match="database schema 99, this Moat reads 1"):
        import_db(forged, tmp_path / "x" / "vuln.db")

    # a database whose meta disagrees with an otherwise matching manifest
    copy = tmp_path / "copy.db"
    copy.write_bytes(db.read_bytes())
    con = sqlite3.connect(copy)
    con.execute("UPDATE meta SET value = '2001-01-01T00:00:00Z' WHERE key = 'built_at'")
    con.commit()
    con.close()
    body = copy.read_bytes()
    rewrite(
        export, forged, db_bytes=body, manifest=dict(manifest, sha256=hashlib.sha256(body).hexdigest(), size=len(body))
    )
    with pytest.raises(MoatError, match="does not match its manifest"):
        import_db(forged, tmp_path / "x" / "vuln.db")


@pytest.mark.parametrize("content", [b"", b"not a tar at all", b"\x1f\x8b\x08\x00garbage"])
def test_not_an_export(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.tar"
    path.write_bytes(content)
    with pytest.raises(MoatError, match=r"x\.tar"):
        import_db(path, tmp_path / "db" / "vuln.db")


def test_extra_members_and_truncation(db: Path, tmp_path: Path) -> None:
    export = tmp_path / "moat-db.tar"
    export_db(db, export)
    data = export.read_bytes()
    truncated = tmp_path / "truncated.tar"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(MoatError):
        import_db(truncated, tmp_path / "db" / "vuln.db")
    extra = tmp_path / "extra.tar"
    with tarfile.open(export) as src, tarfile.open(extra, "w") as dst:
        for member in src:
            dst.addfile(member, src.extractfile(member))
        evil = tarfile.TarInfo("../../etc/passwd")
        evil.size = 4
        dst.addfile(evil, io.BytesIO(b"root"))
    with pytest.raises(MoatError, match="unexpected member"):
        import_db(extra, tmp_path / "db" / "vuln.db")
    assert not (tmp_path / "db" / "vuln.db").exists()


def test_age_warning(db: Path) -> None:
    from datetime import UTC, datetime, timedelta

    with Store(db) as store:
        built = datetime.strptime(store.meta()["built_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        assert check_age(store, 7, now=built + timedelta(days=6)) is None
        warning = check_age(store, 7, now=built + timedelta(days=9))
        assert warning is not None and "9 days old" in warning and "moat db update" in warning
        assert check_age(store, 0, now=built + timedelta(days=900)) is None  # 0 disables the check


def test_age_from_the_environment(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import UTC, datetime, timedelta

    with Store(db) as store:
        later = datetime.now(UTC) + timedelta(days=3)
        monkeypatch.setenv("MOAT_DB_MAX_AGE", "2")
        assert check_age(store, now=later) is not None
        monkeypatch.setenv("MOAT_DB_MAX_AGE", "30")
        assert check_age(store, now=later) is None
        monkeypatch.setenv("MOAT_DB_MAX_AGE", "a week")
        with pytest.raises(MoatError, match="MOAT_DB_MAX_AGE"):
            check_age(store)
