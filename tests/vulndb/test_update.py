"""``update_db`` on the real feeds in ../shared/vulndata: counts computed here from the files themselves,
URLs served by a real HTTP server on 127.0.0.1, and failures that must leave the previous db intact."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import sqlite3
import tarfile
import threading
import zipfile
from collections import Counter, defaultdict
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
import zstandard

from corpus import SHARED
from moat.errors import MoatError
from moat.vulndb.store import Store
from moat.vulndb.update import default_locations, update_db

DATA = SHARED / "vulndata"
OSV = DATA / "osv"
KEV = DATA / "enrichment" / "known_exploited_vulnerabilities.json"
EPSS = DATA / "enrichment" / "epss-scores-by-cve-year.tar.zst"
DEBIAN = DATA / "raw" / "debian-security-tracker-DSA-DLA-lists-2023-04.tar.zst"
ALPINE = DATA / "raw" / "alpine-secdb-v3.3-v3.11-legacy.tar.zst"


def tar_members(path: Path) -> dict[str, bytes]:
    out = {}
    with (
        open(path, "rb") as handle,
        tarfile.open(fileobj=zstandard.ZstdDecompressor().stream_reader(handle), mode="r|") as tar,
    ):
        for member in tar:
            data = tar.extractfile(member) if member.isreg() else None
            if data is not None:
                out[member.name] = data.read()
    return out


def expected_osv(zip_path: Path) -> dict[str, Any]:
    """Per zip: records, withdrawn ids, and ids per ecosystem (Ubuntu's ':LTS'/'Pro' folded)."""
    records = 0
    withdrawn: set[str] = set()
    per_ecosystem: dict[str, set[str]] = defaultdict(set)
    with zipfile.ZipFile(zip_path) as archive:
        for name in archive.namelist():
            doc = json.loads(archive.read(name))
            records += 1
            if doc.get("withdrawn"):
                withdrawn.add(doc["id"])
            for affected in doc.get("affected", []):
                eco = affected["package"]["ecosystem"]
                if eco.startswith("Ubuntu:"):
                    eco = "Ubuntu:" + re.search(r"\d+\.\d+", eco).group(0)  # type: ignore[union-attr]
                per_ecosystem[eco].add(doc["id"])
    return {"records": records, "withdrawn": withdrawn, "ecosystems": per_ecosystem}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def counts(db: Path) -> dict[str, Any]:
    with Store(db) as store:
        return {
            "sources": [(s.name, s.records, s.skipped) for s in store.sources()],
            "ecosystems": store.counts_by_ecosystem(),
            "built_at": store.meta()["built_at"],
        }


@pytest.fixture(scope="module")
def full_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("full")
    db = root / "db" / "vuln.db"
    update_db(db, [str(OSV), str(KEV), str(EPSS), str(DEBIAN), str(ALPINE)], cache_dir=root)
    return db


def test_every_osv_zip_is_ingested_whole(full_db: Path) -> None:
    ids: set[str] = set()
    withdrawn: set[str] = set()
    ecosystems: dict[str, set[str]] = defaultdict(set)
    with Store(full_db) as store:
        sources = {s.name: s for s in store.sources()}
        for zip_path in sorted(OSV.glob("*.zip")):
            want = expected_osv(zip_path)
            source = sources[f"osv:{zip_path.stem}"]
            assert (source.records, source.skipped) == (want["records"], 0), zip_path.name
            assert source.location == str(zip_path)
            with zipfile.ZipFile(zip_path) as archive:
                ids |= {name.removesuffix(".json") for name in archive.namelist()}
            withdrawn |= want["withdrawn"]
            for ecosystem, members in want["ecosystems"].items():
                ecosystems[ecosystem] |= members
        eco_counts = store.counts_by_ecosystem()
    # AlmaLinux exports share identical records (an ALSA for 9 and 10 is in both zips): stored once.
    db = sqlite3.connect(full_db)
    stored = db.execute("SELECT COUNT(*), COUNT(withdrawn) FROM advisories WHERE source LIKE 'osv:%'").fetchone()
    db.close()
    assert stored == (len(ids), len(withdrawn))
    assert len(withdrawn) == 269 + 17 + 13  # README: PyPI, Go, crates.io
    assert {eco: eco_counts[eco] for eco in ecosystems} == {eco: len(v) for eco, v in ecosystems.items()}


def test_worked_examples_from_the_readme(full_db: Path) -> None:
    with Store(full_db) as store:
        [requests] = [r for r in store.affected("PyPI", "requests") if r.advisory_id == "PYSEC-2023-74"]
        ecosystem_ranges = [r for r in requests.ranges if r["type"] == "ECOSYSTEM"]  # GIT ranges are kept too
        assert ecosystem_ranges == [{"type": "ECOSYSTEM", "events": [{"introduced": "2.3.0"}, {"fixed": "2.31.0"}]}]
        assert store.advisory("PYSEC-2023-74").aliases[0] == "CVE-2023-32681"  # type: ignore[union-attr]
        assert store.epss("CVE-2023-32681") == pytest.approx((0.02974, 0.861), abs=1e-3)
        assert not store.kev("CVE-2023-32681")
        assert store.kev("CVE-2020-11651") and store.epss("CVE-2020-11651")[0] == pytest.approx(0.96614)  # type: ignore[index]
        assert "ALSA-2023:4412" in store.advisories_aliasing("CVE-2023-38408")
        go = {r.package: r.fixed_versions() for r in store.affected("Go", "stdlib") if r.advisory_id == "GO-2024-2687"}
        assert go == {"stdlib": ["1.21.9", "1.22.2"]}


def test_kev_and_epss_counts(full_db: Path) -> None:
    kev = json.loads(KEV.read_bytes())
    epss_lines = sum(len(text.splitlines()) for text in tar_members(EPSS).values())
    db = sqlite3.connect(full_db)
    assert db.execute("SELECT COUNT(*) FROM kev").fetchone() == (len(kev["vulnerabilities"]),)
    assert db.execute("SELECT COUNT(*) FROM epss").fetchone() == (epss_lines,)
    db.close()
    sources = {s.name: s for s in Store(full_db).sources()}
    assert (sources["kev"].records, sources["epss"].records) == (1404, 360142)


def test_debian_lists_and_alpine_secdb(full_db: Path) -> None:
    members = tar_members(DEBIAN)
    headers = {
        kind: len(
            re.findall(
                rb"(?m)^\[\d{1,2} \w{3} \d{4}\] " + kind.encode() + rb"-",
                members[f"debian-security-tracker/data/{kind}/list"],
            )
        )
        for kind in ("DSA", "DLA")
    }
    with Store(full_db) as store:
        sources = {s.name: s for s in store.sources()}
        assert sources["debian-dsa"].records == headers["DSA"]
        assert sources["debian-dla"].records == headers["DLA"]
        assert (sources["debian-dsa"].location, sources["debian-dla"].location) == (str(DEBIAN), str(DEBIAN))
        openssl = [r for r in store.affected("Debian:11", "openssl") if r.advisory_id == "DSA-5343-1"]
        assert [r.fixed_versions() for r in openssl] == [["1.1.1n-0+deb11u4"]]

        secdb = yaml.safe_load(tar_members(ALPINE)["alpine-secdb/v3.11/main.yaml"])
        [pkg] = [p["pkg"] for p in secdb["packages"] if p["pkg"]["name"] == "openssl"]
        fixes = {cve: version for version, cves in pkg["secfixes"].items() for cve in cves}
        rows = store.affected("Alpine:v3.11", "openssl")
        for cve, version in fixes.items():
            matching = [r for r in rows if cve in [*store.advisory(r.advisory_id).aliases, r.advisory_id]]  # type: ignore[union-attr]
            assert [r.fixed_versions() for r in matching] == [[version]], cve
        assert sources["alpine-secdb"].records > 0


# --- a real HTTP server -------------------------------------------------------------------------


class Feeds(ThreadingHTTPServer):
    files: dict[str, tuple[bytes, str]]
    mode: str
    log: list[tuple[str, int]]


class Handler(BaseHTTPRequestHandler):
    server: Feeds

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.path not in self.server.files:
            self.send_error(404)
            self.server.log.append((self.path, 404))
            return
        if self.server.mode == "500":
            self.send_error(500)
            self.server.log.append((self.path, 500))
            return
        body, etag = self.server.files[self.path]
        if self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            self.server.log.append((self.path, 304))
            return
        self.send_response(200)
        self.send_header("ETag", etag)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.server.mode == "truncate":
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
        else:
            self.wfile.write(body)
        self.server.log.append((self.path, 200))


@pytest.fixture()
def server() -> Iterator[Feeds]:
    srv = Feeds(("127.0.0.1", 0), Handler)
    srv.files = {
        "/Go/all.zip": ((OSV / "Go.zip").read_bytes(), '"go-1"'),
        "/kev.json": (KEV.read_bytes(), '"kev-1"'),
    }
    srv.mode, srv.log = "ok", []
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def urls(srv: Feeds) -> list[str]:
    return [f"http://127.0.0.1:{srv.server_address[1]}{p}" for p in ("/Go/all.zip", "/kev.json")]


def test_urls_and_incremental_etag_updates(server: Feeds, tmp_path: Path) -> None:
    db = tmp_path / "db" / "vuln.db"
    first = update_db(db, urls(server), cache_dir=tmp_path)
    assert first.downloaded == (OSV / "Go.zip").stat().st_size + KEV.stat().st_size
    before = counts(db)
    assert ("osv:Go", expected_osv(OSV / "Go.zip")["records"], 0) in before["sources"]
    assert ("kev", 1404, 0) in before["sources"]
    with Store(db) as store:
        assert {s.etag for s in store.sources()} == {'"go-1"', '"kev-1"'}

    server.log.clear()
    second = update_db(db, urls(server), cache_dir=tmp_path)
    assert second.downloaded == 0
    assert sorted(status for _, status in server.log) == [304, 304]
    assert all(f.carried for f in second.feeds)
    after = counts(db)
    assert (after["sources"], after["ecosystems"]) == (before["sources"], before["ecosystems"])
    assert Store(db).kev("CVE-2020-11651")

    server.files["/kev.json"] = (KEV.read_bytes(), '"kev-2"')  # a new KEV: only it is downloaded again
    server.log.clear()
    third = update_db(db, urls(server), cache_dir=tmp_path)
    assert sorted(server.log) == [("/Go/all.zip", 304), ("/kev.json", 200)]
    assert third.downloaded == KEV.stat().st_size
    assert counts(db)["sources"] == before["sources"]


@pytest.mark.parametrize("mode", ["500", "truncate"])
def test_http_failures_leave_the_previous_db_intact(server: Feeds, tmp_path: Path, mode: str) -> None:
    db = tmp_path / "db" / "vuln.db"
    update_db(db, urls(server), cache_dir=tmp_path)
    digest, before = sha(db), counts(db)
    server.mode = mode
    server.files["/Go/all.zip"] = (server.files["/Go/all.zip"][0], '"go-2"')  # changed, so not a 304
    with pytest.raises(MoatError, match=r"cannot download http://127\.0\.0\.1:\d+/Go/all\.zip") as info:
        update_db(db, urls(server), cache_dir=tmp_path)
    assert "\n" not in str(info.value)
    assert sha(db) == digest and counts(db) == before
    leftovers = [p.name for p in db.parent.rglob("*") if p.name.startswith(".vuln-") or p.name.endswith(".part")]
    assert leftovers == []


def test_offline_keeps_url_feeds_and_fetches_nothing(server: Feeds, tmp_path: Path) -> None:
    db = tmp_path / "db" / "vuln.db"
    with pytest.raises(MoatError, match=r"--offline: .* was never downloaded"):
        update_db(db, urls(server), cache_dir=tmp_path, offline=True)
    assert not db.exists() and server.log == []
    update_db(db, urls(server), cache_dir=tmp_path)
    server.log.clear()
    result = update_db(db, urls(server), cache_dir=tmp_path, offline=True)
    assert server.log == [] and all(f.carried for f in result.feeds)
    assert ("osv:Go", 4291, 0) in counts(db)["sources"]


def test_default_sources_unreachable_fail_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "db" / "vuln.db"
    update_db(db, [str(OSV / "npm.zip")], cache_dir=tmp_path)
    digest = sha(db)
    closed = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = closed.server_address[1]
    closed.server_close()  # nothing listens there: the proxy refuses every connection
    for var in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy"):
        monkeypatch.setenv(var, f"http://127.0.0.1:{port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with pytest.raises(MoatError, match=r"cannot download https://osv-vulnerabilities\.storage\.googleapis\.com/"):
        update_db(db, default_locations(), cache_dir=tmp_path)
    assert sha(db) == digest


# --- local files: carry-over, broken and hostile input ------------------------------------------


def test_unchanged_local_files_are_carried_over(tmp_path: Path) -> None:
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    for name in ("crates.io.zip", "npm.zip"):
        (feeds / name).write_bytes((OSV / name).read_bytes())
    db = tmp_path / "db" / "vuln.db"
    update_db(db, [str(feeds)], cache_dir=tmp_path)
    before = counts(db)
    result = update_db(db, [str(feeds)], cache_dir=tmp_path)
    assert [f.carried for f in result.feeds] == [True, True]
    assert counts(db)["ecosystems"] == before["ecosystems"]
    (feeds / "npm.zip").write_bytes((OSV / "Maven.zip").read_bytes())  # same name, new content
    result = update_db(db, [str(feeds)], cache_dir=tmp_path)
    assert [(f.name, f.carried) for f in result.feeds] == [("osv:crates.io", True), ("osv:npm", False)]
    assert "npm" not in counts(db)["ecosystems"] and counts(db)["ecosystems"]["Maven"] == 5


def test_a_source_broken_halfway_leaves_the_previous_db(tmp_path: Path) -> None:
    db = tmp_path / "db" / "vuln.db"
    update_db(db, [str(OSV / "npm.zip")], cache_dir=tmp_path)
    digest = sha(db)
    truncated = tmp_path / "Go.zip"
    data = (OSV / "Go.zip").read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(MoatError, match="not a readable zip archive"):
        update_db(db, [str(OSV / "crates.io.zip"), str(truncated)], cache_dir=tmp_path)
    assert sha(db) == digest
    assert Store(db).counts_by_ecosystem() == {"npm": 6}


def test_hostile_zip(tmp_path: Path) -> None:
    good = json.loads(zipfile.ZipFile(OSV / "npm.zip").read("GHSA-35jh-r3h4-6jhm.json"))
    bad_types = dict(good, id="GHSA-bad", aliases="CVE-2021-23337")
    hostile = tmp_path / "hostile.zip"
    with zipfile.ZipFile(hostile, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("GHSA-35jh-r3h4-6jhm.json", json.dumps(good))
        archive.writestr("not-json.json", b"\x00\x01 this is not json")
        archive.writestr("README.md", "hello")
        archive.writestr("bad-types.json", json.dumps(bad_types))
        archive.writestr("deep.json", "[" * 100_000 + "]" * 100_000)
        with archive.open("bomb.json", "w", force_zip64=True) as member:
            zeros = b"0" * (1 << 20)
            for _ in range(1024):  # 1 GiB that deflates to about 1 MB
                member.write(zeros)
    assert hostile.stat().st_size < 16 << 20
    db = tmp_path / "db" / "vuln.db"
    result = update_db(db, [str(hostile)], cache_dir=tmp_path)
    [feed] = result.feeds
    assert (feed.records, feed.skipped) == (1, 5)
    assert feed.reasons == Counter(
        {
            "invalid JSON": 2,
            "oversized members": 1,
            "members that are not .json": 1,
            "'aliases' is not a list of strings": 1,
        }
    )
    assert feed.warning() is not None and "skipped 5 records" in feed.warning()  # type: ignore[operator]
    assert Store(db).counts_by_ecosystem() == {"npm": 1}


def test_a_zip_of_nothing_usable_is_an_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.zip"
    with zipfile.ZipFile(junk, "w") as archive:
        archive.writestr("a.json", "{")
        archive.writestr("b.json", "[]")
    with pytest.raises(MoatError, match="no usable records"):
        update_db(tmp_path / "db" / "vuln.db", [str(junk)], cache_dir=tmp_path)


def test_directory_of_json_records_and_unknown_files(tmp_path: Path) -> None:
    records = tmp_path / "records"
    (records / "nested").mkdir(parents=True)
    with zipfile.ZipFile(OSV / "Maven.zip") as archive:
        names = archive.namelist()
        for i, name in enumerate(names):
            (records / ("nested" if i % 2 else "") / name).write_bytes(archive.read(name))
    (records / "schema.json").write_text('{"$schema": "https://json-schema.org/draft/2020-12/schema"}')
    (records / "notes.txt.csv").write_text("just,some,text\n")
    db = tmp_path / "db" / "vuln.db"
    result = update_db(db, [str(records)], cache_dir=tmp_path)
    assert [(f.name, f.records, f.skipped) for f in result.feeds] == [("osv:records", len(names), 0)]
    assert len(result.ignored) == 1 and "notes.txt.csv" in result.ignored[0]
    with pytest.raises(MoatError, match="not a recognised feed"):
        update_db(db, [str(records / "notes.txt.csv")], cache_dir=tmp_path)
    with pytest.raises(MoatError, match="no such file"):
        update_db(db, [str(tmp_path / "missing.zip")], cache_dir=tmp_path)


def test_epss_as_first_publishes_it_gzipped(tmp_path: Path) -> None:
    text = "#model_version:v2023.03.01,score_date:2023-06-05T00:00:00+0000\ncve,epss,percentile\n"
    text += "CVE-2023-32681,0.02974,0.86100\nCVE-2020-11651,0.96614,0.99880\n"
    path = tmp_path / "epss_scores-current.csv.gz"
    path.write_bytes(gzip.compress(text.encode()))
    db = tmp_path / "db" / "vuln.db"
    result = update_db(db, [str(path)], cache_dir=tmp_path)
    assert [(f.name, f.records) for f in result.feeds] == [("epss", 2)]
    assert Store(db).epss("CVE-2020-11651") == (0.96614, 0.9988)


def test_a_debian_list_and_alpine_document_as_plain_files(tmp_path: Path) -> None:
    members = tar_members(DEBIAN)
    dsa = tmp_path / "list"
    dsa.write_bytes(members["debian-security-tracker/data/DSA/list"])
    secdb = tmp_path / "main.yaml"
    secdb.write_bytes(tar_members(ALPINE)["alpine-secdb/v3.11/main.yaml"])
    db = tmp_path / "db" / "vuln.db"
    result = update_db(db, [str(dsa), str(secdb)], cache_dir=tmp_path)
    assert {f.name for f in result.feeds} == {"debian-dsa", "alpine-secdb"}
    assert set(Store(db).counts_by_ecosystem()) >= {"Alpine:v3.11", "Debian:11"}
