"""Debian/Ubuntu ordering checked against ``dpkg --compare-versions`` itself.

Pairs come from this machine's /var/lib/dpkg/status, the Ubuntu OSV zip and a seeded generator that
favours the tricky characters (``~``, ``+``, ``.``, letters, leading zeros, epochs, hyphens inside
upstream versions). dpkg is the oracle; one bash process runs all comparisons.
"""

from __future__ import annotations

import random
import subprocess
import tarfile
from pathlib import Path

import pytest
import zstandard
from test_versions_common import SEED, check_agreement, osv_versions, pairs_from_groups

from corpus import SHARED
from moat.vulndb import versions

ORACLE = r"""
while IFS=$'\t' read -r a b; do
  if dpkg --compare-versions "$a" lt "$b"; then echo -1
  elif dpkg --compare-versions "$a" eq "$b"; then echo 0
  else echo 1; fi
done
"""


def dpkg_compare(pairs: list[tuple[str, str]]) -> list[int]:
    feed = "".join(f"{a}\t{b}\n" for a, b in pairs)
    out = subprocess.run(["bash", "-c", ORACLE], input=feed, capture_output=True, text=True, check=True)
    assert not out.stderr, out.stderr[:500]
    return [int(line) for line in out.stdout.split()]


def installed_versions() -> dict[str, tuple[str, ...]]:
    groups: dict[str, set[str]] = {}
    package = ""
    for line in Path("/var/lib/dpkg/status").read_text().splitlines():
        if line.startswith("Package: "):
            package = line.split(": ", 1)[1]
        elif line.startswith("Version: "):
            groups.setdefault(package[:3], set()).add(line.split(": ", 1)[1])
    return {key: tuple(sorted(found)) for key, found in groups.items()}


def debian_tracker_versions() -> dict[str, tuple[str, ...]]:
    """Fixed versions from Debian's DSA and DLA lists (``\t[release] - srcpkg version`` lines)."""
    groups: dict[str, set[str]] = {}
    raw = SHARED / "vulndata" / "raw" / "debian-security-tracker-DSA-DLA-lists-2023-04.tar.zst"
    with (
        raw.open("rb") as fh,
        zstandard.ZstdDecompressor().stream_reader(fh) as stream,
        tarfile.open(fileobj=stream, mode="r|") as archive,
    ):
        for member in archive:
            if not member.isfile() or not member.name.endswith("/list"):
                continue
            extracted = archive.extractfile(member)
            assert extracted is not None
            for line in extracted.read().decode().splitlines():
                fields = line.split()
                if len(fields) >= 4 and fields[0].startswith("[") and fields[1] == "-":
                    groups.setdefault(fields[2], set()).add(fields[3])
    return {name: tuple(sorted(found)) for name, found in sorted(groups.items())}


def generated(rng: random.Random) -> str:
    def run() -> str:
        pieces = [rng.choice(["0", "1", "2", "9", "10", "01", "100", "2024"])]
        for _ in range(rng.randint(0, 4)):
            pieces.append(rng.choice([".", ".", "~", "+", "~~", "a", "b", "rc", "-", "Z", ""]))
            pieces.append(rng.choice(["0", "1", "2", "00", "01", "10", "", "deb", "git", "dfsg"]))
        return "".join(pieces)

    upstream = run()
    epoch = rng.choice(["", "", "", "0:", "1:", "2:"])
    if rng.random() < 0.6:
        revision = rng.choice(["0", "1", "1ubuntu1", "2+deb12u1", "1~bpo11+1", "0.1", "1build1", "1.1~"])
        return f"{epoch}{upstream}-{revision}"
    if "-" in upstream:
        upstream += "-1"  # a hyphen in the upstream part makes the text after the last one a revision
    if ":" in upstream and not epoch:
        epoch = "0:"
    return epoch + upstream


def test_installed_versions_order_as_dpkg_orders_them() -> None:
    pairs = pairs_from_groups(installed_versions(), 1500)
    check_agreement(pairs, dpkg_compare(pairs), "Debian:12")


def test_ubuntu_osv_versions_order_as_dpkg_orders_them() -> None:
    groups = osv_versions("Ubuntu.zip")
    valid = {name: tuple(v for v in found if versions.is_valid("Ubuntu", v)) for name, found in groups.items()}
    pairs = pairs_from_groups({k: v for k, v in valid.items() if v}, 3000)
    check_agreement(pairs, dpkg_compare(pairs), "Ubuntu:22.04")


def test_debian_security_tracker_versions_order_as_dpkg_orders_them() -> None:
    groups = debian_tracker_versions()
    assert sum(map(len, groups.values())) > 5000
    invalid = sorted({v for found in groups.values() for v in found if not versions.is_valid("Debian", v)})
    # The version column also holds markers ("<unfixed>", "<not-affected>", "<end-of-life>") and one
    # old typo (a package name); Moat rejects exactly what dpkg rejects.
    assert 0 < len(invalid) < 10
    assert not any(dpkg_accepts(v) for v in invalid)
    valid = {name: tuple(v for v in found if v not in invalid) for name, found in groups.items()}
    pairs = pairs_from_groups({k: v for k, v in valid.items() if v}, 3000)
    check_agreement(pairs, dpkg_compare(pairs), "Debian:11")


def test_generated_versions_order_as_dpkg_orders_them() -> None:
    rng = random.Random(SEED)
    pairs = []
    for _ in range(3000):
        a = generated(rng)
        # Half the pairs are small edits of the first version: those share prefixes and test the details.
        b = generated(rng) if rng.random() < 0.5 else a + rng.choice(["~", "+", ".0", "a", "~1", "0"])
        pairs.append((a, b))
    check_agreement(pairs, dpkg_compare(pairs), "Debian:12")


def dpkg_accepts(version: str) -> bool:
    """dpkg's own verdict: no error and no "bad syntax" warning when comparing the version to itself."""
    out = subprocess.run(["dpkg", "--compare-versions", version, "eq", version], capture_output=True, text=True)
    return out.returncode == 0 and not out.stderr


@pytest.mark.parametrize(
    "version",
    ["1.0", " 1.0 ", "1:", ":1.0", "a:1.0", "-1:1.0", "+1:1.0", "99999999999:1", "1.0-", "-1", "1.0 2",
     "abc", "1.0_1", "1.0-1_2", "1:2:3", "1.0-a~b+c.d", "1.0-1-2", "1:1.0-1:2", "0:0", "1.0-1.0~", "1é"],
)
def test_validity_agrees_with_dpkg(version: str) -> None:
    assert versions.is_valid("Debian", version) == dpkg_accepts(version)


def test_invalid_version_message_names_dpkg_and_reason() -> None:
    with pytest.raises(versions.VersionError, match=r"invalid dpkg version 'a:1': epoch in version is not number"):
        versions.compare("Debian:12", "a:1", "1")


def test_empty_version_is_invalid() -> None:
    # dpkg --compare-versions reads "" as "no version at all" (below every version), not as a version;
    # an advisory or package with an empty version is bad input for Moat.
    assert not versions.is_valid("Debian:12", "")
    with pytest.raises(versions.VersionError, match="version string is empty"):
        versions.compare("Debian:12", "", "1.0")
