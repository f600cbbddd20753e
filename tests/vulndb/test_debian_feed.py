"""The Debian feeds: the tracker JSON (hand-written in the published format) and the real DSA/DLA lists.

The shared data has no tracker JSON (see ../shared/vulndata/README.md, "Gaps"), so the tracker
documents below are written by hand in the exact shape security-tracker.debian.org publishes:
``{source: {issue: {description, scope, debianbug, releases: {codename: {status, repositories,
fixed_version, urgency, nodsa, nodsa_reason}}}}}`` with empty fields left out, as the tracker does.
The DSA/DLA expectations are counted from the list text with plain string handling, not with the
parser under test, and the fixed versions are checked against ``dpkg`` itself.
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest
import zstandard

from corpus import SHARED
from moat.errors import MoatError, ParseError
from moat.vulndb import debian
from moat.vulndb.debian import RELEASES, FeedStats, read_dsa_list, read_tracker_json
from moat.vulndb.store import AdvisoryRecord, AffectedRecord, Store, StoreWriter

LISTS = SHARED / "vulndata" / "raw" / "debian-security-tracker-DSA-DLA-lists-2023-04.tar.zst"

Records = list[tuple[AdvisoryRecord, list[AffectedRecord]]]


@pytest.fixture(scope="module")
def lists() -> dict[str, str]:
    texts: dict[str, str] = {}
    with LISTS.open("rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as stream:
        tar_bytes = stream.read()
    with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:") as tar:
        for kind in ("DSA", "DLA"):
            member = tar.extractfile(f"debian-security-tracker/data/{kind}/list")
            assert member is not None
            texts[kind] = member.read().decode("utf-8")
    return texts


@pytest.fixture(scope="module")
def parsed(lists: dict[str, str]) -> dict[str, tuple[Records, FeedStats]]:
    result = {}
    for kind, text in lists.items():
        stats = FeedStats()
        result[kind] = (list(read_dsa_list(text, kind, stats=stats)), stats)
    return result


def by_id(records: Records) -> dict[str, tuple[AdvisoryRecord, list[AffectedRecord]]]:
    return {advisory.id: (advisory, rows) for advisory, rows in records}


def rows_of(rows: list[AffectedRecord]) -> list[tuple[str, str, str, list[str]]]:
    return [(row.ecosystem, row.package, row.status, row.fixed_versions()) for row in rows]


# --- the tracker JSON ---------------------------------------------------------------------------

TRACKER = {
    "openssl": {
        "CVE-2023-0286": {
            "description": "X.400 address type confusion in X.509 GeneralName",
            "scope": "remote",
            "debianbug": 1031030,
            "releases": {
                "bookworm": {
                    "status": "resolved",
                    "repositories": {"bookworm": "3.0.11-1~deb12u2"},
                    "fixed_version": "3.0.8-1",
                    "urgency": "not yet assigned",
                },
                "bullseye": {
                    "status": "resolved",
                    "repositories": {"bullseye": "1.1.1w-0+deb11u1", "bullseye-security": "1.1.1n-0+deb11u5"},
                    "fixed_version": "1.1.1n-0+deb11u4",
                    "urgency": "high",
                },
                "buster": {
                    "status": "resolved",
                    "repositories": {"buster": "1.1.1n-0+deb10u3"},
                    "fixed_version": "1.1.1n-0+deb10u4",
                    "urgency": "medium",
                },
                "sid": {"status": "resolved", "repositories": {"sid": "3.1.4-2"}, "fixed_version": "3.0.8-1",
                        "urgency": "not yet assigned"},
            },
        },
        "CVE-2023-0464": {
            "description": "Excessive Resource Usage Verifying X.509 Policy Constraints",
            "scope": "remote",
            "releases": {
                "bookworm": {"status": "resolved", "repositories": {"bookworm": "3.0.11-1~deb12u2"},
                             "fixed_version": "3.0.8-1", "urgency": "not yet assigned"},
                "bullseye": {"status": "open", "repositories": {"bullseye": "1.1.1n-0+deb11u4"},
                             "urgency": "low", "nodsa": "Minor issue", "nodsa_reason": "postponed"},
                "buster": {"status": "open", "repositories": {"buster": "1.1.1n-0+deb10u3"},
                           "urgency": "low", "nodsa": "Minor issue", "nodsa_reason": "ignored"},
            },
        },
    },
    "openssl1.0": {
        "CVE-2023-0286": {
            "description": "X.400 address type confusion in X.509 GeneralName",
            "releases": {
                "stretch": {"status": "open", "repositories": {"stretch": "1.0.2u-1~deb9u7"},
                            "urgency": "end-of-life"},
            },
        },
    },
    "glibc": {
        "CVE-2023-4911": {
            "description": "A buffer overflow was discovered in the GNU C Library's dynamic loader ld.so",
            "scope": "local",
            "debianbug": 1053709,
            "releases": {
                "bookworm": {"status": "resolved", "repositories": {"bookworm": "2.36-9+deb12u3"},
                             "fixed_version": "2.36-9+deb12u3", "urgency": "not yet assigned"},
                "bullseye": {"status": "resolved", "repositories": {"bullseye": "2.31-13+deb11u7"},
                             "fixed_version": "0", "urgency": "not yet assigned"},
                "trixie": {"status": "resolved", "repositories": {"trixie": "2.37-12"},
                           "fixed_version": "2.37-12", "urgency": "not yet assigned"},
            },
        },
        "TEMP-0000000-1A2B3C": {
            "description": "glibc: something without a CVE yet",
            "releases": {
                "bookworm": {"status": "undetermined", "repositories": {"bookworm": "2.36-9+deb12u3"},
                             "urgency": "unimportant"},
            },
        },
    },
    "curl": {
        "CVE-2023-38545": {
            "description": "SOCKS5 heap buffer overflow",
            "releases": {
                "bookworm": {"status": "resolved", "repositories": {"bookworm": "7.88.1-10+deb12u4"},
                             "fixed_version": "7.88.1-10+deb12u4", "urgency": "high**"},
                "experimental": {"status": "resolved", "fixed_version": "8.4.0-1", "urgency": "high"},
            },
        },
    },
}


def tracker_records(document: object, stats: FeedStats | None = None) -> Records:
    return list(read_tracker_json(json.dumps(document).encode(), stats=stats))


def test_tracker_one_advisory_per_issue_with_rows_from_every_source_package() -> None:
    stats = FeedStats()
    records = by_id(tracker_records(TRACKER, stats))
    assert sorted(records) == [
        "DEBIAN-CVE-2023-0286", "DEBIAN-CVE-2023-0464", "DEBIAN-CVE-2023-38545", "DEBIAN-CVE-2023-4911",
        "DEBIAN-TEMP-0000000-1A2B3C",
    ]
    advisory, rows = records["DEBIAN-CVE-2023-0286"]
    assert advisory.aliases == ["CVE-2023-0286"]
    assert advisory.source == "debian-tracker"
    assert advisory.details == "X.400 address type confusion in X.509 GeneralName"
    assert "https://bugs.debian.org/1031030" in advisory.references
    assert advisory.severity == "HIGH" and advisory.severity_source == "debian"
    assert sorted(rows_of(rows)) == [
        ("Debian:10", "openssl", "fixed", ["1.1.1n-0+deb10u4"]),
        ("Debian:11", "openssl", "fixed", ["1.1.1n-0+deb11u4"]),
        ("Debian:12", "openssl", "fixed", ["3.0.8-1"]),
        ("Debian:9", "openssl1.0", "end_of_life", []),
    ]
    # sid (openssl) and experimental (curl) have no version number to match an image on
    assert stats.ignored == 2 and stats.skipped == 0


def test_tracker_status_and_urgency_mapping() -> None:
    records = by_id(tracker_records(TRACKER))
    rows = {(r.ecosystem, r.package): r for _, rs in records.values() for r in rs if r.advisory_id.endswith("0464")}
    postponed, ignored = rows[("Debian:11", "openssl")], rows[("Debian:10", "openssl")]
    assert (postponed.status, postponed.severity) == ("affected", "LOW")
    assert (ignored.status, ignored.severity) == ("will_not_fix", "LOW")
    assert postponed.ranges == [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]

    glibc = {r.ecosystem: r for r in records["DEBIAN-CVE-2023-4911"][1]}
    assert glibc["Debian:11"].status == "not_affected" and glibc["Debian:11"].ranges == []
    assert glibc["Debian:12"].ranges == [
        {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.36-9+deb12u3"}]}
    ]
    assert glibc["Debian:13"].fixed_versions() == ["2.37-12"]
    assert records["DEBIAN-CVE-2023-4911"][0].severity == ""  # "not yet assigned" everywhere

    temp, temp_rows = records["DEBIAN-TEMP-0000000-1A2B3C"]
    assert temp.aliases == []
    assert rows_of(temp_rows) == [("Debian:12", "glibc", "affected", [])]
    assert temp_rows[0].severity == "LOW"  # unimportant

    assert records["DEBIAN-CVE-2023-38545"][1][0].severity == "HIGH"  # "high**"


def test_tracker_wrong_types_are_counted_not_fatal() -> None:
    document = {
        "openssl": {
            "CVE-2023-0001": {"releases": {
                "bookworm": {"status": "resolved", "fixed_version": "3.0.8-1"},
                "bullseye": {"status": "resolved"},
                "buster": {"status": "resolved", "fixed_version": "not a version"},
                "stretch": {"status": "fixed?"},
                "hurd": {"status": "open"},
                "jessie": ["open"],
            }},
            "CVE-2023-0002": {"releases": ["bookworm"]},
            "not-an-id": {"releases": {}},
            "CVE-2023-0003": "open",
        },
        "Bad Name": {"CVE-2023-0004": {}},
        "zlib": ["CVE-2023-0005"],
    }
    stats = FeedStats()
    records = by_id(tracker_records(document, stats))
    assert rows_of(records["DEBIAN-CVE-2023-0001"][1]) == [("Debian:12", "openssl", "fixed", ["3.0.8-1"])]
    assert stats.skipped == 10
    assert any("buster" in w and "not a version" in w for w in stats.warnings)
    assert any("hurd" in w and "unknown release" in w for w in stats.warnings)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "top level is list"),
        (b"[" * 200_000 + b"]" * 200_000, "not valid JSON"),
        (b"\xff\xfe\x00garbage", "not valid JSON"),
    ],
)
def test_tracker_malformed_documents_are_one_line_errors(data: bytes, message: str) -> None:
    with pytest.raises(ParseError, match=message) as info:
        list(read_tracker_json(data))
    assert "\n" not in str(info.value)


def test_tracker_size_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(debian, "MAX_TRACKER_BYTES", 100)
    with pytest.raises(ParseError, match="over the 100 byte limit"):
        list(read_tracker_json(json.dumps(TRACKER).encode()))


def test_releases_cover_the_brief_and_osv_names() -> None:
    assert {k: RELEASES[k] for k in ("lenny", "squeeze", "wheezy", "jessie", "stretch", "buster", "bullseye",
                                     "bookworm", "trixie")} == {
        "lenny": "5.0", "squeeze": "6.0", "wheezy": "7", "jessie": "8", "stretch": "9", "buster": "10",
        "bullseye": "11", "bookworm": "12", "trixie": "13",
    }
    assert "sid" not in RELEASES


# --- the real DSA / DLA lists -------------------------------------------------------------------


def independent_counts(text: str, kind: str) -> tuple[int, int, list[str]]:
    """Headers, release lines and release lines whose version is neither a marker nor digit-led."""
    headers = releases = 0
    broken: list[str] = []
    for line in text.split("\n"):
        if line.startswith("[") and f"] {kind}-" in line:
            headers += 1
        elif line[:1] in ("\t", " ") and line.strip().startswith("[") and "] - " in line:
            releases += 1
            fields = line.split()
            version = fields[3]
            if not (version[0].isdigit() or version.startswith("<")):
                broken.append(version)
    return headers, releases, broken


@pytest.mark.parametrize("kind", ["DSA", "DLA"])
def test_every_real_entry_and_release_line_is_read(
    kind: str, lists: dict[str, str], parsed: dict[str, tuple[Records, FeedStats]]
) -> None:
    records, stats = parsed[kind]
    headers, releases, broken = independent_counts(lists[kind], kind)
    assert len(records) == headers
    assert len({advisory.id for advisory, _ in records}) == headers
    assert sum(len(rows) for _, rows in records) == releases - len(broken)
    assert stats.skipped == len(broken)
    assert stats.ignored == 0
    assert all(advisory.id.startswith(f"{kind}-") for advisory, _ in records)
    assert all(advisory.source == f"debian-{kind.lower()}" for advisory, _ in records)


def test_real_counts_match_the_data_readme(parsed: dict[str, tuple[Records, FeedStats]]) -> None:
    assert len(parsed["DSA"][0]) == 5406 and len(parsed["DLA"][0]) == 3534
    assert parsed["DSA"][1].warnings == ["Debian DSA list line 17244: bad version 'kernel-image-2.4.17-ia64'"]


def test_real_cve_aliases_match_the_brace_lines(
    lists: dict[str, str], parsed: dict[str, tuple[Records, FeedStats]]
) -> None:
    for kind in ("DSA", "DLA"):
        expected = {token for line in lists[kind].split("\n") if line.strip().startswith("{")
                    for token in line.strip().strip("{}").split()}
        seen = {alias for advisory, _ in parsed[kind][0] for alias in advisory.aliases}
        assert seen == expected


def test_dsa_spot_checks(parsed: dict[str, tuple[Records, FeedStats]]) -> None:
    dsa = by_id(parsed["DSA"][0])
    advisory, rows = dsa["DSA-5343-1"]
    assert advisory.aliases == ["CVE-2022-2097", "CVE-2022-4304", "CVE-2022-4450", "CVE-2023-0215", "CVE-2023-0286"]
    assert advisory.summary == "openssl - security update"
    assert advisory.published == "2023-02-07T00:00:00Z"
    assert rows_of(rows) == [("Debian:11", "openssl", "fixed", ["1.1.1n-0+deb11u4"])]

    assert rows_of(dsa["DSA-5380-1"][1]) == [("Debian:11", "xorg-server", "fixed", ["2:1.20.11-1+deb11u6"])]
    assert rows_of(dsa["DSA-136"][1]) == [
        ("Debian:3.0", "openssl094", "fixed", ["0.9.4-6.woody.2"]),
        ("Debian:3.0", "openssl095", "fixed", ["0.9.5a-6.woody.1"]),
        ("Debian:3.0", "openssl", "fixed", ["0.9.6c-2.woody.1"]),
    ]
    assert rows_of(dsa["DSA-880-1"][1]) == [
        ("Debian:3.0", "phpmyadmin", "affected", []),
        ("Debian:3.1", "phpmyadmin", "fixed", ["4:2.6.2-3sarge1"]),
    ]
    assert rows_of(dsa["DSA-3699-1"][1]) == [("Debian:8", "virtualbox", "end_of_life", [])]
    assert rows_of(dsa["DSA-736-2"][1])[0] == ("Debian:3.0", "spamassassin", "not_affected", [])
    sudo = dsa["DSA-735-2"]
    assert sudo[1][0].severity == "MEDIUM" and sudo[0].severity == "MEDIUM"
    # a header with only NOTE lines is still an advisory
    glibc = dsa["DSA-1605-1"]
    assert glibc[0].aliases == ["CVE-2008-1447"] and glibc[1] == []
    # a regression update without CVEs
    assert dsa["DSA-5356-2"][0].aliases == [] and rows_of(dsa["DSA-5356-2"][1]) == [
        ("Debian:11", "sox", "fixed", ["14.4.2+git20190427-2+deb11u2"])
    ]


def test_dla_spot_checks(parsed: dict[str, tuple[Records, FeedStats]]) -> None:
    dla = by_id(parsed["DLA"][0])
    advisory, rows = dla["DLA-3372-1"]
    assert advisory.aliases == ["CVE-2023-1393"] and advisory.published == "2023-03-29T00:00:00Z"
    assert rows_of(rows) == [("Debian:10", "xorg-server", "fixed", ["2:1.20.4-1+deb10u9"])]
    assert rows_of(dla["DLA-372-1"][1]) == [("Debian:6.0", "virtualbox-ose", "end_of_life", [])]
    assert dla["DLA-3067-1"][0].summary == "stretch-lts - end-of-life"


def test_real_fixed_versions_are_versions_to_dpkg(parsed: dict[str, tuple[Records, FeedStats]]) -> None:
    """A deterministic sample of the recorded fixed versions, each accepted by dpkg without a warning."""
    versions = sorted({v for kind in ("DSA", "DLA") for _, rows in parsed[kind][0] for r in rows
                       for v in r.fixed_versions()})
    sample = versions[:: max(1, len(versions) // 150)]
    for version in sample:
        done = subprocess.run(["dpkg", "--compare-versions", version, "eq", version], capture_output=True, text=True)
        assert done.returncode == 0 and done.stderr == "", (version, done.stderr)
    bad = subprocess.run(["dpkg", "--compare-versions", "kernel-image-2.4.17-ia64", "eq", "1"],
                         capture_output=True, text=True)
    assert "version" in bad.stderr  # the one version the parser skipped, dpkg complains about too


def test_list_oddities_are_counted() -> None:
    text = (
        "\t[bullseye] - orphan 1.0-1\n"
        "[29 Mar 2023] DSA-9999-1 foo - security update\n"
        "\t{CVE-2023-1111 not-a-cve CVE-2023-1111}\n"
        "\t[bullseye] - foo 1.0-1+deb11u1 (bug #123; high)\n"
        "\t[hurd] - foo 1.0-2\n"
        "\t[sid] - foo 1.0-3\n"
        "\t[bullseye] - Foo_Bar 1.0\n"
        "\tsomething else\n"
        "[31 Foo 2023] DSA-9998-1 bar\n"
        "[01 Apr 2023] DLA-9997-1 baz - in the wrong list\n"
        "\t[buster] - baz 1.0\n"
    )
    stats = FeedStats()
    records = by_id(list(read_dsa_list(text, "DSA", stats=stats)))
    assert sorted(records) == ["DSA-9998-1", "DSA-9999-1"]
    advisory, rows = records["DSA-9999-1"]
    assert advisory.aliases == ["CVE-2023-1111"]
    assert rows_of(rows) == [("Debian:11", "foo", "fixed", ["1.0-1+deb11u1"])]
    assert rows[0].severity == "HIGH"
    assert records["DSA-9998-1"][0].published is None
    # orphan line, not-a-cve, hurd, Foo_Bar, "something else", bad date, DLA header, its release line
    assert stats.skipped == 8 and stats.ignored == 1


def test_list_kind_must_be_dsa_or_dla() -> None:
    with pytest.raises(MoatError, match="kind must be"):
        list(read_dsa_list("", "USN"))


def test_records_round_trip_through_the_store(tmp_path: Path, parsed: dict[str, tuple[Records, FeedStats]]) -> None:
    db = tmp_path / "vuln.db"
    with StoreWriter(db) as writer:
        for kind in ("DSA", "DLA"):
            for advisory, rows in parsed[kind][0]:
                writer.add_advisory(advisory, rows)
        for advisory, rows in tracker_records(TRACKER):
            writer.add_advisory(advisory, rows)
    with Store(db) as store:
        bullseye = {row.advisory_id: row for row in store.affected("Debian:11", "openssl")}
        assert bullseye["DSA-5343-1"].fixed_versions() == ["1.1.1n-0+deb11u4"]
        assert bullseye["DEBIAN-CVE-2023-0286"].fixed_versions() == ["1.1.1n-0+deb11u4"]
        assert "DSA-5343-1" in store.advisories_aliasing("CVE-2023-0286")
        assert "DEBIAN-CVE-2023-0286" in store.advisories_aliasing("CVE-2023-0286")
        assert store.advisory("DLA-3372-1") is not None
        counts = store.counts_by_ecosystem()
        assert counts["Debian:10"] > 900 and counts["Debian:3.0"] > 700
