"""KEV, EPSS and CVSS enrichment on the real files in ../shared/vulndata/enrichment."""

from __future__ import annotations

import io
import json
import tarfile

import pytest
import zstandard

from corpus import SHARED
from moat.vulndb import enrich

ENRICHMENT = SHARED / "vulndata" / "enrichment"


def test_kev_catalog() -> None:
    data = json.loads((ENRICHMENT / "known_exploited_vulnerabilities.json").read_bytes())
    entries, skipped = enrich.read_kev(data)
    assert skipped == 0 and len(entries) == data["count"] == 1404
    salt = next(e for e in entries if e.cve == "CVE-2020-11651")
    assert salt.date_added == "2021-11-03"
    assert salt.name == "SaltStack Salt Authentication Bypass Vulnerability"


def test_kev_refuses_other_json_and_counts_bad_entries() -> None:
    with pytest.raises(enrich.EnrichError):
        enrich.read_kev({"vulnerabilities": []})
    entries, skipped = enrich.read_kev({"catalogVersion": "x", "vulnerabilities": [{"cveID": "nope"}, 3, {}]})
    assert (entries, skipped) == ([], 3)


def epss_members() -> dict[str, str]:
    out = {}
    with (
        open(ENRICHMENT / "epss-scores-by-cve-year.tar.zst", "rb") as handle,
        tarfile.open(fileobj=zstandard.ZstdDecompressor().stream_reader(handle), mode="r|") as tar,
    ):
        for member in tar:
            handle = tar.extractfile(member) if member.isreg() else None
            if handle is not None:
                out[member.name] = handle.read().decode()
    return out


def test_epss_per_year_files_without_header() -> None:
    members = epss_members()
    total = 0
    for text in members.values():
        rows, skipped = enrich.read_epss(text)
        got = list(rows)
        assert skipped == [0]
        assert len(got) == len([line for line in text.splitlines() if line.strip()])
        total += len(got)
    assert total == 360142  # the README's count
    rows, _ = enrich.read_epss(members["epss/EPSS_CVE_data/CVE_2020_EPSS.csv"])
    assert ("CVE-2020-11651", 0.96614, 0.9988) in list(rows)


def test_epss_as_first_publishes_it() -> None:
    text = (
        "#model_version:v2023.03.01,score_date:2023-06-05T00:00:00+0000\n"
        "cve,epss,percentile\n"
        "CVE-2023-32681,0.02974,0.86100\n"
        "CVE-2020-11651,0.97,1.5\n"  # percentile out of range
        "not,a,row\n"
    )
    assert enrich.looks_like_epss(text)
    rows, skipped = enrich.read_epss(text)
    assert list(rows) == [("CVE-2023-32681", 0.02974, 0.861)]
    assert skipped == [2]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("CVE-2020-9999;0.076320000;0.940390000\n", True),
        ("cve,epss,percentile\n", True),
        ("{}", False),
        ("[01 Jan 2020] DSA-1-1 x\n", False),
    ],
)
def test_epss_sniffing(text: str, expected: bool) -> None:
    assert enrich.looks_like_epss(text) is expected


@pytest.mark.parametrize(
    ("vector", "kind", "version", "score"),
    [
        # Published base scores: NVD's 10.0 for CVE-2021-44228 (v3.1); 7.5 for the network-DoS v3.0 vector and
        # the partial/partial/partial v2 vector, as NVD scores them; 9.3 from FIRST's CVSS 4.0 calculator.
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", "CVSS_V3", "3.1", 10.0),
        ("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", "CVSS_V3", "3.0", 7.5),
        ("AV:N/AC:L/Au:N/C:P/I:P/A:P", "CVSS_V2", "2.0", 7.5),
        ("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", "CVSS_V4", "4.0", 9.3),
    ],
)
def test_cvss_base_scores(vector: str, kind: str, version: str, score: float) -> None:
    cvss = enrich.make_cvss(vector, kind, "nvd")
    assert cvss is not None
    assert (cvss.version, cvss.score, cvss.source) == (version, score, "nvd")


def test_cvss_garbage() -> None:
    assert enrich.make_cvss("not a vector") is None
    assert enrich.cvss_base_score("CVSS:3.1/AV:N", "3.1") is None


@pytest.mark.parametrize(
    ("score", "version", "level"),
    [
        (10.0, "3.1", "CRITICAL"),
        (9.0, "3.1", "CRITICAL"),
        (8.9, "3.1", "HIGH"),
        (4.0, "4.0", "MEDIUM"),
        (0.1, "3.1", "LOW"),
        (0.0, "3.1", "UNKNOWN"),
        (None, "3.1", "UNKNOWN"),
        (10.0, "2.0", "HIGH"),
        (3.9, "2.0", "LOW"),
    ],
)
def test_severity_bands(score: float | None, version: str, level: str) -> None:
    assert enrich.severity_from_score(score, version) == level


@pytest.mark.parametrize(
    ("word", "level"),
    [
        ("Important", "HIGH"),
        ("MODERATE", "MEDIUM"),
        ("negligible", "LOW"),
        ("critical", "CRITICAL"),
        ("unimportant", "LOW"),
        ("whatever", ""),
        (None, ""),
        (3, ""),
    ],
)
def test_vendor_words(word: object, level: str) -> None:
    assert enrich.vendor_severity(word) == level


def test_kev_json_bytes_error() -> None:
    with pytest.raises(enrich.EnrichError):
        enrich.load_json_bytes(io.BytesIO(b"{").read())
