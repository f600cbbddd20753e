"""RPM ordering checked against rpm 4.18 itself (``rpm.vercmp`` in rpm's embedded Lua).

Pairs come from real rpm databases (CentOS 5-8, go-rpmdb's test data, read with ``rpm -qa``), the
AlmaLinux 8/9/10 OSV zips, and a seeded generator heavy on ``~``, ``^``, separators, letters against
digits, leading zeros and epochs. One rpm process answers all pairs of a test.
"""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest
from test_versions_common import SEED, check_agreement, osv_versions, pairs_from_groups

from moat.vulndb import versions

RPMDB_TESTDATA = Path("/usr/share/gocode/src/github.com/knqyf263/go-rpmdb/pkg/testdata")
LUA = r"""%{lua:
for line in io.lines(rpm.expand("%{pairs_file}")) do
  local a, b = line:match("^(.-)\t(.*)$")
  print(rpm.vercmp(a, b) .. " ")
end
}"""


def rpm_compare(pairs: list[tuple[str, str]], tmp_path: Path) -> list[int]:
    feed = tmp_path / "pairs.tsv"
    feed.write_text("".join(f"{a}\t{b}\n" for a, b in pairs))
    out = subprocess.run(
        ["rpm", "--define", f"pairs_file {feed}", "--eval", LUA], capture_output=True, text=True, check=True
    )
    return [int(x) for x in out.stdout.split()]


def installed_versions() -> dict[str, tuple[str, ...]]:
    groups: dict[str, set[str]] = {}
    for db in sorted(RPMDB_TESTDATA.iterdir()):
        out = subprocess.run(
            ["rpm", "--dbpath", str(db), "--define", "_db_backend bdb_ro", "-qa", "--qf",
             r"%{NAME}\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\n"],
            capture_output=True, text=True, check=True,
        )
        for line in out.stdout.splitlines():
            name, evr = line.split("\t")
            groups.setdefault(name, set()).add(evr)
    return {name: tuple(sorted(found)) for name, found in sorted(groups.items())}


def generated(rng: random.Random) -> str:
    def part() -> str:
        text = rng.choice(["0", "1", "2", "10", "01", "a", "rc", ""])
        for _ in range(rng.randint(0, 4)):
            text += rng.choice([".", ".", "~", "^", "_", "+", "", "..", "~~"])
            text += rng.choice(["0", "1", "9", "10", "001", "a", "b", "B", "el9", "fc38", "git1", ""])
        return text

    epoch = rng.choice(["", "", "", "0:", "1:", "10:"])
    version = part() or "1"
    if rng.random() < 0.7:
        return f"{epoch}{version}-{part()}"
    return epoch + version


def test_rpmdb_versions_order_as_rpm_orders_them(tmp_path: Path) -> None:
    groups = installed_versions()
    assert sum(map(len, groups.values())) > 1000
    pairs = pairs_from_groups(groups, 3000)
    check_agreement(pairs, rpm_compare(pairs, tmp_path), "Red Hat")


@pytest.mark.parametrize("release", ["8", "9", "10"])
def test_almalinux_osv_versions_order_as_rpm_orders_them(release: str, tmp_path: Path) -> None:
    groups = osv_versions(f"AlmaLinux-{release}.zip")
    assert all(versions.is_valid(f"AlmaLinux:{release}", v) for found in groups.values() for v in found)
    pairs = pairs_from_groups(groups, 2000)
    check_agreement(pairs, rpm_compare(pairs, tmp_path), f"AlmaLinux:{release}")


def test_generated_versions_order_as_rpm_orders_them(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    pairs = []
    for _ in range(5000):
        a = generated(rng)
        b = generated(rng) if rng.random() < 0.5 else a + rng.choice(["~", "^", ".0", "a", "~1", "^1", "-1", "."])
        pairs.append((a, b))
    check_agreement(pairs, rpm_compare(pairs, tmp_path), "Rocky Linux:9")


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        # Each checked with rpm.vercmp; these are the rules that surprise people.
        ("1.0", "1.0-0", -1),  # a release, even "0", beats none
        ("1.0-", "1.0", 1),
        ("1.0~rc1", "1.0", -1),
        ("1.0^git1", "1.0", 1),
        ("1.0^git1", "1.0.1", -1),
        ("1.01", "1.1", 0),
        ("1_0", "1.0", 0),
        ("a:1", "1", -1),  # not an epoch: "a:1" is a version beginning with letters
        ("1:", "1", 1),
    ],
)
def test_documented_corners(a: str, b: str, expected: int, tmp_path: Path) -> None:
    assert rpm_compare([(a, b)], tmp_path) == [expected]
    assert versions.compare("AlmaLinux:9", a, b) == expected


def test_validity() -> None:
    assert versions.is_valid("AlmaLinux:9", "2:1.2.3-4.el9_2.1")
    assert not versions.is_valid("AlmaLinux:9", "")
    assert not versions.is_valid("AlmaLinux:9", "1.0 1")
    with pytest.raises(versions.VersionError, match="invalid rpm version ''"):
        versions.compare("Red Hat", "", "1")
