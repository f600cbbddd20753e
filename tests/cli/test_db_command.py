"""``moat db`` as a user runs it: update, status (table and JSON), export/import, one-line errors."""

from __future__ import annotations

import json
import sqlite3
import zipfile
from pathlib import Path

from typer.testing import CliRunner

from corpus import SHARED
from moat.cli.main import app

try:  # click < 8.2 mixes stderr into stdout unless told not to; 8.2 keeps them apart and drops the flag
    runner = CliRunner(mix_stderr=False)  # type: ignore[call-arg]
except TypeError:
    runner = CliRunner()

DATA = SHARED / "vulndata"
OSV = DATA / "osv"
KEV = DATA / "enrichment" / "known_exploited_vulnerabilities.json"


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_update_status_export_import(tmp_path: Path) -> None:
    cache = str(tmp_path / "cache")
    code, out, err = invoke(
        "db", "update", "--from", str(OSV / "crates.io.zip"), "--from", str(KEV), "--cache-dir", cache
    )
    assert code == 0, err
    assert out == ""
    with zipfile.ZipFile(OSV / "crates.io.zip") as archive:
        records = len(archive.namelist())
        withdrawn = sum(bool(json.loads(archive.read(n)).get("withdrawn")) for n in archive.namelist())
    assert f"osv:crates.io: {records} records ({withdrawn} withdrawn)" in err
    assert "kev: 1404 records" in err

    code, out, err = invoke("db", "status", "--format", "json", "--cache-dir", cache)
    assert code == 0, err
    status = json.loads(out)
    assert status["schema_version"] == 1 and status["age_warning"] is None
    assert {s["name"]: s["records"] for s in status["sources"]} == {"osv:crates.io": records, "kev": 1404}
    assert status["ecosystems"] == {"crates.io": records}

    code, out, _ = invoke("db", "status", "--cache-dir", cache)
    assert code == 0
    assert "osv:crates.io" in out and status["built_at"] in out and "crates.io" in out

    export = tmp_path / "moat-db.tar"
    code, _, err = invoke("db", "export", str(export), "--cache-dir", cache)
    assert code == 0 and "sha256" in err
    other = str(tmp_path / "airgap")
    code, _, err = invoke("db", "import", str(export), "--cache-dir", other)
    assert code == 0, err
    code, out, _ = invoke("db", "status", "-f", "json", "--cache-dir", other)
    assert json.loads(out)["sources"] == status["sources"]

    # the same update again: everything is carried over
    code, _, err = invoke(
        "db", "update", "--from", str(OSV / "crates.io.zip"), "--from", str(KEV), "--cache-dir", cache
    )
    assert code == 0 and err.count("carried over (unchanged)") == 2


def test_status_shows_the_age_warning(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    assert invoke("db", "update", "--from", str(OSV / "npm.zip"), "--cache-dir", str(cache), "-q")[0] == 0
    con = sqlite3.connect(cache / "db" / "vuln.db")
    con.execute("UPDATE meta SET value = '2020-01-01T00:00:00Z' WHERE key = 'built_at'")
    con.commit()
    con.close()
    code, out, _ = invoke("db", "status", "--cache-dir", str(cache))
    assert code == 0 and "warning: the vulnerability database is" in out and "built 2020-01-01" in out


def test_one_line_errors(tmp_path: Path) -> None:
    cache = str(tmp_path / "cache")
    code, out, err = invoke("db", "status", "--cache-dir", cache)
    assert code == 2 and out == ""
    assert err.strip().startswith("moat: error: no vulnerability database at") and err.count("\n") == 1

    code, _, err = invoke("db", "update", "--from", str(tmp_path / "nope.zip"), "--cache-dir", cache)
    assert code == 2 and "no such file or directory" in err and err.count("\n") == 1

    broken = tmp_path / "broken.zip"
    broken.write_bytes((OSV / "npm.zip").read_bytes()[:2000])
    code, _, err = invoke("db", "update", "--from", str(broken), "--cache-dir", cache)
    assert code == 2 and "not a readable zip archive" in err and "Traceback" not in err

    code, _, err = invoke("db", "import", str(broken), "--cache-dir", cache)
    assert code == 2 and err.startswith("moat: error:") and err.count("\n") == 1
    assert not (tmp_path / "cache" / "db" / "vuln.db").exists()


def test_skipped_records_are_one_warning_line(tmp_path: Path) -> None:
    hostile = tmp_path / "mixed.zip"
    with zipfile.ZipFile(OSV / "npm.zip") as src, zipfile.ZipFile(hostile, "w") as dst:
        for name in src.namelist():
            dst.writestr(name, src.read(name))
        dst.writestr("x.json", "{not json")
        dst.writestr("y.json", json.dumps({"id": "X-1", "affected": [{"package": {"ecosystem": "Nope", "name": "a"}}]}))
    code, _, err = invoke("db", "update", "--from", str(hostile), "--cache-dir", str(tmp_path / "c"), "-q")
    assert code == 0
    [warning] = [line for line in err.splitlines() if "warning" in line]
    assert warning == ("moat: warning: osv:mixed: skipped 2 records (1 invalid JSON, 1 unknown ecosystem 'Nope')")
