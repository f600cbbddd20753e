"""NuGet ordering from the rules in NuGet's documentation ("Package versioning": pre-release sort order,
normalization, SemVer 2.0 labels and metadata). No NuGet client can run here, so each case below is
a statement from those docs or from the SemVer 2.0 spec NuGet follows, written out by hand; the OSV
zip is used to check that the real NuGet versions in it parse.
"""

from __future__ import annotations

import functools
import itertools

import pytest
from test_versions_common import osv_versions

from moat.vulndb import versions

# From the docs' pre-release example, newest first: labels compare as strings, so alpha2 > alpha10.
DOCS_DESCENDING = ["1.0.1", "1.0.1-zzz", "1.0.1-rc", "1.0.1-open", "1.0.1-beta", "1.0.1-alpha2",
                   "1.0.1-alpha10", "1.0.1-aaa"]
# SemVer 2.0.0 item 11's example, oldest first (NuGet 4.3+ follows SemVer 2.0 for labels).
SEMVER_ASCENDING = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
                    "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0"]


def test_docs_pre_release_order() -> None:
    ordered = sorted(DOCS_DESCENDING, key=functools.cmp_to_key(lambda a, b: versions.compare("NuGet", a, b)))
    assert ordered == list(reversed(DOCS_DESCENDING))


def test_semver_spec_order() -> None:
    for older, newer in itertools.pairwise(SEMVER_ASCENDING):
        assert versions.compare("NuGet", older, newer) == -1
        assert versions.compare("NuGet", newer, older) == 1


@pytest.mark.parametrize(
    ("a", "b"),
    [("1.0", "1.0.0"), ("1.0.0.0", "1.0.0"), ("1.01.1", "1.1.1"), ("1.00", "1.0.0"), ("1.0.01.0", "1.0.1"),
     ("1", "1.0.0.0"), ("1.0.0-Beta", "1.0.0-beta"), ("1.0.0-RC.1", "1.0.0-rc.1"), ("1.0.0+githash", "1.0.0"),
     ("1.0.0-beta+a", "1.0.0-beta+b")],
)
def test_docs_normalization_equalities(a: str, b: str) -> None:
    assert versions.compare("NuGet", a, b) == 0


@pytest.mark.parametrize(
    ("older", "newer"),
    [("1.0.0.1", "1.0.1"), ("1.0.0", "1.0.0.1"), ("1.0.0-beta", "1.0.0"), ("1.0.0-2", "1.0.0-10"),
     ("1.0.0-10", "1.0.0-a"), ("1.0.0-a", "1.0.0-a.0"),
     ("2.0.0-preview1", "2.0.0"), ("1.9.9.9", "2.0")],
)
def test_documented_orderings(older: str, newer: str) -> None:
    assert versions.compare("NuGet", older, newer) == -1
    assert versions.compare("NuGet", newer, older) == 1


@pytest.mark.parametrize("bad", ["", "v1.0.0", "1.0.0.0.0", "1.0.0-", "1.0.0-beta..1", "1.0.0+", "1.0.0-be_ta",
                                 "1.a", "2147483648.0.0", ".1"])
def test_invalid_versions(bad: str) -> None:
    assert not versions.is_valid("NuGet", bad)
    with pytest.raises(versions.VersionError, match="invalid NuGet version"):
        versions.compare("NuGet", bad, "1.0.0")


def test_every_osv_nuget_version_parses() -> None:
    every = sorted({v for found in osv_versions("NuGet.zip").values() for v in found})
    assert every  # the stored NuGet OSV sample is small (hand-picked GHSA records)
    assert [v for v in every if not versions.is_valid("NuGet", v)] == []
