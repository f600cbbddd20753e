"""PyPI ordering. Moat uses ``packaging.version``, so checking it against the same library would prove
nothing; instead the checks are (1) the ordering example and the normalization rules written in
PEP 440 itself, copied out by hand, and (2) pip's own vendored copy of packaging (the code that picks
what pip installs, a separately pinned release) on real PyPI OSV versions.
"""

from __future__ import annotations

import itertools

import pytest
from pip._vendor.packaging.version import InvalidVersion
from pip._vendor.packaging.version import Version as PipVersion
from test_versions_common import check_agreement, osv_versions, pairs_from_groups

from moat.vulndb import versions

# PEP 440, "Summary of permitted suffixes and relative ordering", oldest first.
PEP_ORDER = ["1.dev0", "1.0.dev456", "1.0a1", "1.0a2.dev456", "1.0a12.dev456", "1.0a12", "1.0b1.dev456", "1.0b2",
             "1.0b2.post345.dev456", "1.0b2.post345", "1.0rc1.dev456", "1.0rc1", "1.0", "1.0+abc.5", "1.0+abc.7",
             "1.0+5", "1.0.post456.dev34", "1.0.post456", "1.0.15", "1.1.dev1"]


def test_pep_440_example_order() -> None:
    for older, newer in itertools.pairwise(PEP_ORDER):
        assert versions.compare("PyPI", older, newer) == -1, (older, newer)
        assert versions.compare("PyPI", newer, older) == 1


@pytest.mark.parametrize(
    ("spelling", "normal"),
    [("1.0", "1.0.0"), ("1.0A1", "1.0a1"), ("1.0-alpha1", "1.0a1"), ("1.0.beta.2", "1.0b2"), ("1.0c1", "1.0rc1"),
     ("1.0pre1", "1.0rc1"), ("1.0preview1", "1.0rc1"), ("1.0a", "1.0a0"), ("1.0-1", "1.0.post1"),
     ("1.0_r1", "1.0.post1"), ("1.0rev", "1.0.post0"), ("1.0.dev", "1.0.dev0"), ("1.0-dev-2", "1.0.dev2"),
     ("v1.0", "1.0"), ("  1.0\n", "1.0"), ("01.002", "1.2"), ("1.0+ubuntu-1", "1.0+ubuntu.1"), ("0!1.0", "1.0")],
)
def test_pep_440_normalization(spelling: str, normal: str) -> None:
    assert versions.compare("PyPI", spelling, normal) == 0


def test_epoch_beats_everything() -> None:
    assert versions.compare("PyPI", "1!0.1", "2024.1") == 1


@pytest.mark.parametrize("bad", ["", "1.0-", "1.0..1", "french toast", "1.0+", "1.0+a_", "2.0.0-beta+exp.sha.5114f85",
                                 "1.0~rc1", "1.0.0.post"])
def test_invalid_versions_agree_with_pip(bad: str) -> None:
    valid = versions.is_valid("PyPI", bad)
    try:
        PipVersion(bad)
        pip_valid = True
    except InvalidVersion:
        pip_valid = False
    assert valid == pip_valid


def test_osv_versions_order_as_pips_packaging_orders_them() -> None:
    groups = osv_versions("PyPI.zip")
    valid = {}
    rejected = 0
    for name, found in groups.items():
        keep = []
        for v in found:
            try:
                PipVersion(v)
                keep.append(v)
            except InvalidVersion:
                rejected += 1
                assert not versions.is_valid("PyPI", v)
        if keep:
            valid[name] = tuple(keep)
    assert sum(map(len, valid.values())) > 10000
    pairs = pairs_from_groups(valid, 20000)
    expected = [(PipVersion(a) > PipVersion(b)) - (PipVersion(a) < PipVersion(b)) for a, b in pairs]
    check_agreement(pairs, expected, "PyPI")
