"""Alpine secdb: the real legacy YAML documents (v3.3 to v3.11) and the JSON form secdb.alpinelinux.org serves.

The expectations come from reading the YAML *text* line by line (indentation and ``- `` items),
not from PyYAML or the parser under test, so a parser that lost or invented rows would disagree.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
from collections import defaultdict
from pathlib import Path

import pytest
import yaml
import zstandard

from corpus import SHARED
from moat.errors import ParseError
from moat.vulndb import alpine
from moat.vulndb.alpine import merge_records, read_secdb
from moat.vulndb.debian import FeedStats
from moat.vulndb.store import AdvisoryRecord, AffectedRecord, Store, StoreWriter

SECDB = SHARED / "vulndata" / "raw" / "alpine-secdb-v3.3-v3.11-legacy.tar.zst"

Records = list[tuple[AdvisoryRecord, list[AffectedRecord]]]


@pytest.fixture(scope="module")
def documents() -> dict[str, bytes]:
    with SECDB.open("rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as stream:
        tar_bytes = stream.read()
    found: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:") as tar:
        for member in tar.getmembers():
            if member.isfile() and member.name.endswith(".yaml"):
                handle = tar.extractfile(member)
                assert handle is not None
                found[member.name.split("alpine-secdb/", 1)[-1]] = handle.read()
    return found


@pytest.fixture(scope="module")
def parsed(documents: dict[str, bytes]) -> tuple[Records, FeedStats]:
    stats = FeedStats()
    records: Records = []
    for name, data in sorted(documents.items()):
        records.extend(read_secdb(data, name, stats=stats))
    return records, stats


def scan_text(data: bytes) -> tuple[str, list[tuple[str, str, str]]]:
    """(branch, [(package, fixed version, item text)]) from the YAML text alone."""
    branch = ""
    package = version = ""
    in_secfixes = False
    items: list[tuple[str, str, str]] = []
    for line in data.decode().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if line.startswith("distroversion:"):
            branch = stripped.split(":", 1)[1].strip()
        elif stripped == "- pkg:":
            in_secfixes = False
        elif stripped.startswith("name:"):
            package = stripped.split(":", 1)[1].strip()
        elif stripped == "secfixes:":
            in_secfixes = True
        elif in_secfixes and stripped.startswith("- "):
            items.append((package, version, stripped[2:].strip()))
        elif in_secfixes and stripped.endswith(":"):
            version = stripped[:-1].strip("\"'")
    return branch, items


def test_real_package_entries_and_refs_match_the_readme(documents: dict[str, bytes]) -> None:
    entries = sum(data.decode().count("\n  - pkg:") for data in documents.values())
    items = sum(len(scan_text(data)[1]) for data in documents.values())
    assert len(documents) == 18
    assert (entries, items) == (1652, 12028)


def test_every_plain_cve_item_becomes_a_fixed_row(
    documents: dict[str, bytes], parsed: tuple[Records, FeedStats]
) -> None:
    expected = set()
    for data in documents.values():
        branch, items = scan_text(data)
        for package, version, item in items:
            if re.fullmatch(r"CVE-\d{4}-\d{4,}", item) and version != "0":
                expected.add((f"Alpine:{branch}", package, version, item))
    assert len(expected) > 10_000
    found = {
        (row.ecosystem, row.package, fixed, advisory.aliases[0])
        for advisory, rows in parsed[0]
        for row in rows
        for fixed in row.fixed_versions()
    }
    assert expected <= found
    # and nothing was invented: every row's (package, version) pair exists in the text with its id
    item_texts: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for data in documents.values():
        branch, items = scan_text(data)
        for package, version, item in items:
            item_texts[(f"Alpine:{branch}", package, version)].append(
                item.replace("CVE_", "CVE-").replace("CVE 2", "CVE-2")
            )
    for advisory, rows in parsed[0]:
        primary = advisory.aliases[0]
        for row in rows:
            version = row.fixed_versions()[0] if row.fixed_versions() else "0"
            assert (row.ecosystem, row.package, version) in item_texts
            assert any(primary in text for text in item_texts[(row.ecosystem, row.package, version)]), (
                advisory.id,
                row,
            )


def test_real_document_fields(parsed: tuple[Records, FeedStats]) -> None:
    records, stats = parsed
    assert all(advisory.source == "alpine-secdb" for advisory, _ in records)
    assert all(advisory.id == "ALPINE-" + advisory.aliases[0] for advisory, _ in records)
    # the one broken entry: heimdal 7.4.0-r0 on v3.6 has no list of ids
    assert stats.skipped == 1
    assert stats.warnings == ["v3.6/main.yaml: packages[34] heimdal 7.4.0-r0: expected a list of ids"]


def test_real_spot_checks(parsed: tuple[Records, FeedStats]) -> None:
    merged = {advisory.id: (advisory, rows) for advisory, rows in merge_records(parsed[0])}

    def fixes(advisory_id: str, ecosystem: str, package: str) -> list[str]:
        return sorted(v for r in merged[advisory_id][1] if (r.ecosystem, r.package) == (ecosystem, package)
                      for v in r.fixed_versions())

    assert fixes("ALPINE-CVE-2019-1551", "Alpine:v3.11", "openssl") == ["1.1.1d-r3"]
    assert fixes("ALPINE-CVE-2019-1547", "Alpine:v3.11", "openssl") == ["1.1.1d-r1"]
    # Xen items carry the XSA number as an alias
    xsa = merged["ALPINE-CVE-2016-9932"][0]
    assert xsa.aliases == ["CVE-2016-9932", "XSA-200"]
    assert merged["ALPINE-XSA-207"][0].aliases == ["XSA-207"]
    # hand-written typos still name the CVE: "CVE_2019-2426", "CVE 2018-16859", "CVE-2017-17434-1"
    assert {r.ecosystem for r in merged["ALPINE-CVE-2019-2426"][1]} == {
        "Alpine:v3.6", "Alpine:v3.7", "Alpine:v3.8", "Alpine:v3.9", "Alpine:v3.10", "Alpine:v3.11"
    }
    assert "ALPINE-CVE-2018-16859" in merged
    assert "ALPINE-CVE-2017-17434" in merged
    # "0": Berkeley DB issues whitelisted on v3.8 — never affected
    db_rows = [r for r in merged["ALPINE-CVE-2016-0682"][1] if r.ecosystem == "Alpine:v3.8"]
    assert [(r.package, r.status, r.ranges) for r in db_rows] == [("db", "not_affected", [])]


def test_merge_joins_one_cve_across_branches(parsed: tuple[Records, FeedStats]) -> None:
    records = parsed[0]
    before = [rows for advisory, rows in records if advisory.id == "ALPINE-CVE-2018-6789"]
    assert len(before) == 5  # one record per document that mentions it (v3.7 to v3.11 main)
    merged = {advisory.id: rows for advisory, rows in merge_records(records)}
    rows = merged["ALPINE-CVE-2018-6789"]
    assert len(rows) == sum(len(r) for r in before)
    assert {(r.ecosystem, r.package) for r in rows} == {
        (f"Alpine:v3.{n}", "exim") for n in (7, 8, 9, 10, 11)
    }
    assert len(merged) == len({advisory.id for advisory, _ in records})


def test_json_form_reads_like_the_yaml(documents: dict[str, bytes]) -> None:
    data = documents["v3.11/main.yaml"]
    as_json = json.dumps(yaml.safe_load(data)).encode()
    from_yaml = [(a.id, a.aliases, [(r.ecosystem, r.package, r.status, r.ranges) for r in rows])
                 for a, rows in read_secdb(data, "v3.11/main.yaml")]
    from_json = [(a.id, a.aliases, [(r.ecosystem, r.package, r.status, r.ranges) for r in rows])
                 for a, rows in read_secdb(as_json, "v3.11/main.json")]
    assert from_json == from_yaml
    assert len(from_yaml) > 1000


PUBLISHED = {
    "apkurl": "{{urlprefix}}/{{distroversion}}/{{reponame}}/{{arch}}/{{pkg.name}}-{{pkg.ver}}.apk",
    "archs": ["aarch64", "x86_64"],
    "reponame": "main",
    "urlprefix": "https://dl-cdn.alpinelinux.org/alpine",
    "distroversion": "v3.19",
    "packages": [
        {"pkg": {"name": "openssl", "secfixes": {
            "3.1.4-r1": ["CVE-2023-5363"],
            "3.1.4-r3": ["CVE-2023-5678"],
            "0": ["CVE-2022-1343"],
        }}},
        {"pkg": {"name": "xen", "secfixes": {"4.18.0-r2": ["CVE-2023-46835 XSA-445", "XSA-446"]}}},
        {"pkg": {"name": "busybox", "secfixes": {}}},
    ],
}


def test_published_json_document() -> None:
    records = {a.id: (a, rows) for a, rows in read_secdb(json.dumps(PUBLISHED).encode(), "v3.19/main.json")}
    assert sorted(records) == [
        "ALPINE-CVE-2022-1343", "ALPINE-CVE-2023-46835", "ALPINE-CVE-2023-5363", "ALPINE-CVE-2023-5678",
        "ALPINE-XSA-446",
    ]
    openssl = records["ALPINE-CVE-2023-5363"][1][0]
    assert (openssl.ecosystem, openssl.package, openssl.status) == ("Alpine:v3.19", "openssl", "fixed")
    assert openssl.ranges == [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.1.4-r1"}]}]
    assert records["ALPINE-CVE-2022-1343"][1][0].status == "not_affected"
    assert records["ALPINE-CVE-2023-46835"][0].aliases == ["CVE-2023-46835", "XSA-445"]
    assert records["ALPINE-CVE-2023-46835"][0].references == ["https://security.alpinelinux.org/vuln/CVE-2023-46835"]


def test_bad_entries_are_counted() -> None:
    document = {
        "distroversion": "v3.19",
        "packages": [
            "not a mapping",
            {"pkg": {"name": "Bad Name!", "secfixes": {"1.0-r0": ["CVE-2023-0001"]}}},
            {"pkg": {"name": "ok", "secfixes": ["1.0-r0"]}},
            {"pkg": {"name": "ok2", "secfixes": {
                "1.0-r0": ["CVE-2023-0002", 7, "no id here"],
                "not-a-version": ["CVE-2023-0003"],
                "1.1-r0": None,
                "1.2-r0": ["CVE-2023-0004"],
            }}},
        ],
    }
    stats = FeedStats()
    records = {a.id: rows for a, rows in read_secdb(json.dumps(document).encode(), "x.json", stats=stats)}
    assert sorted(records) == ["ALPINE-CVE-2023-0002", "ALPINE-CVE-2023-0004"]
    assert stats.skipped == 7


def test_yaml_float_and_int_version_keys() -> None:
    data = (
        b"distroversion: v3.10\npackages:\n  - pkg:\n      name: db\n      secfixes:\n"
        b"        0:\n          - CVE-2016-0682\n        1.10:\n          - CVE-2016-9999\n"
    )
    stats = FeedStats()
    records = {a.id: rows for a, rows in read_secdb(data, "keys.yaml", stats=stats)}
    assert records["ALPINE-CVE-2016-0682"][0].status == "not_affected"
    assert "ALPINE-CVE-2016-9999" not in records  # 1.10 became the float 1.1: refused, not guessed
    assert stats.skipped == 1


BOMB = b"""distroversion: v3.11
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
packages: [*d, *d, *d, *d, *d, *d, *d, *d, *d]
"""


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (BOMB, "more than 10 aliases"),
        (b"distroversion: v3.11\npackages: " + b"[" * 100 + b"]" * 100, "nests deeper than 32"),
        (b"distroversion: v3.11\npackages: [\n", "not valid secdb YAML"),
        (b"distroversion: v3.11\n---\ndistroversion: v3.12\n", "more than one document"),
        (b'{"distroversion": "v3.11", "packages": [', "not valid secdb JSON"),
        (b'{"a": ' * 100_000, "not valid secdb JSON"),
        (b"[" * 100_000, "not valid secdb YAML"),
        (b"- just\n- a list\n", "top level is list"),
        (b"distroversion: 3.11\npackages: []\n", "'distroversion' is"),
        (b"reponame: main\n", "'distroversion' is missing"),
        (b"distroversion: v3.11\npackages: {a: 1}\n", "'packages' is dict"),
        (b"distroversion: v3.11\nx: !!python/object/apply:os.system ['true']\n", "not valid secdb YAML"),
        (b"distroversion: \x80\x81\n", "not valid secdb YAML"),
    ],
)
def test_malformed_documents_are_one_line_errors(data: bytes, message: str) -> None:
    with pytest.raises(ParseError, match=re.escape(message)) as info:
        list(read_secdb(data, "hostile.yaml"))
    assert "\n" not in str(info.value)
    assert str(info.value).startswith("hostile.yaml: ")


def test_size_limit(monkeypatch: pytest.MonkeyPatch, documents: dict[str, bytes]) -> None:
    monkeypatch.setattr(alpine, "MAX_DOCUMENT_BYTES", 1000)
    with pytest.raises(ParseError, match="over the 1000 byte secdb limit"):
        list(read_secdb(documents["v3.11/main.yaml"], "v3.11/main.yaml"))


def test_merged_records_round_trip_through_the_store(tmp_path: Path, parsed: tuple[Records, FeedStats]) -> None:
    db = tmp_path / "vuln.db"
    with StoreWriter(db) as writer:
        for advisory, rows in merge_records(parsed[0]):
            writer.add_advisory(advisory, rows)
    with Store(db) as store:
        exim = {row.advisory_id: row for row in store.affected("Alpine:v3.7", "exim")}
        assert exim["ALPINE-CVE-2018-6789"].fixed_versions() == ["4.90.1-r0"]
        assert {r.ecosystem for r in store.affected("Alpine:v3.11", "exim")} == {"Alpine:v3.11"}
        assert store.advisories_aliasing("XSA-200") == ["ALPINE-CVE-2016-9932"]
        assert set(store.counts_by_ecosystem()) == {f"Alpine:v3.{n}" for n in range(3, 12)}
