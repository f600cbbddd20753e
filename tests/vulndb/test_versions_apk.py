"""Alpine ordering checked against apk-tools 3 itself: ``apk version -t`` inside the Alpine 3.23 root
filesystem of the test image (tests/fixtures/images.py), run with chroot.

Pairs come from that image's /lib/apk/db/installed, the fixed versions of Alpine's secdb (v3.3-v3.11)
and a seeded generator over apk's grammar (suffixes, letters, leading zeros, hashes, revisions).
"""

from __future__ import annotations

import io
import json
import random
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml
import zstandard
from test_versions_common import SEED, check_agreement, pairs_from_groups

from corpus import SHARED
from fixtures.images import alpine_image
from moat.vulndb import versions

ORACLE = r"""
while read -r a b; do
  r=$(/sbin/apk --no-network version -t "$a" "$b")
  echo "${r:-?}"
done
"""
SYMBOL = {"<": -1, "=": 0, ">": 1}


@pytest.fixture(scope="module")
def alpine_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The image's single layer unpacked into a directory apk can be chrooted into."""
    image = alpine_image()
    index = json.loads((image.layout / "index.json").read_text())
    digest = index["manifests"][0]["digest"].split(":", 1)[1]
    manifest = json.loads((image.layout / "blobs/sha256" / digest).read_text())
    (layer,) = manifest["layers"]
    root = tmp_path_factory.mktemp("alpine-root")
    blob = image.layout / "blobs/sha256" / layer["digest"].split(":", 1)[1]
    subprocess.run(["tar", "-xzf", str(blob), "-C", str(root)], check=True)
    assert (root / "sbin/apk").exists()
    return root


def apk_compare(root: Path, pairs: list[tuple[str, str]]) -> list[int | None]:
    """The oracle's answers; None where apk prints nothing (it considers a version invalid)."""
    feed = "".join(f"{a} {b}\n" for a, b in pairs)
    out = subprocess.run(["chroot", str(root), "/bin/sh", "-c", ORACLE], input=feed, capture_output=True,
                         text=True, check=True)
    return [SYMBOL.get(line) for line in out.stdout.split()]


def secdb_versions() -> dict[str, tuple[str, ...]]:
    groups: dict[str, set[str]] = {}
    raw = SHARED / "vulndata" / "raw" / "alpine-secdb-v3.3-v3.11-legacy.tar.zst"
    with raw.open("rb") as fh, zstandard.ZstdDecompressor().stream_reader(fh) as stream:
        data = io.BytesIO(stream.read())
    with tarfile.open(fileobj=data) as archive:
        for member in archive.getmembers():
            extracted = archive.extractfile(member) if member.name.endswith(".yaml") else None
            if extracted is None:
                continue
            for entry in yaml.safe_load(extracted).get("packages") or []:
                package = entry["pkg"]
                groups.setdefault(package["name"], set()).update(str(v) for v in package.get("secfixes") or {})
    return {name: tuple(sorted(found)) for name, found in sorted(groups.items()) if found}


def generated(rng: random.Random) -> str:
    text = rng.choice(["0", "1", "2", "10", "01", "3"])
    for _ in range(rng.randint(0, 3)):
        text += "." + rng.choice(["0", "1", "2", "9", "10", "00", "01", "05", "5", "010"])
    if rng.random() < 0.2:
        text += rng.choice("abz")
    for _ in range(rng.choice([0, 0, 1, 1, 2])):
        text += "_" + rng.choice(["alpha", "beta", "pre", "rc", "cvs", "svn", "git", "hg", "p"])
        text += rng.choice(["", "", "0", "1", "2", "01", "10", "20240101"])
    if rng.random() < 0.1:
        text += "~" + rng.choice(["a", "ab", "0f", "1", "deadbeef"])
    if rng.random() < 0.6:
        text += "-r" + rng.choice(["0", "1", "2", "10", "01"])
    return text


def test_installed_versions_order_as_apk_orders_them(alpine_root: Path) -> None:
    installed = (alpine_root / "lib/apk/db/installed").read_text()
    found = sorted({line[2:] for line in installed.splitlines() if line.startswith("V:")})
    assert len(found) > 30
    pairs = pairs_from_groups({"all": tuple(found)}, 600)
    check_agreement(pairs, apk_compare(alpine_root, pairs), "Alpine:v3.23")  # type: ignore[arg-type]


def test_secdb_fixed_versions_order_as_apk_orders_them(alpine_root: Path) -> None:
    groups = secdb_versions()
    every = sorted({v for found in groups.values() for v in found})
    assert len(every) > 1000
    # Validity agrees with apk for every real version, including any typos in the feed.
    verdicts = apk_compare(alpine_root, [(v, v) for v in every])
    disagree = [v for v, ok in zip(every, verdicts, strict=True) if (ok is not None) != versions.is_valid("Alpine", v)]
    assert disagree == []
    valid = {name: tuple(v for v in found if versions.is_valid("Alpine", v)) for name, found in groups.items()}
    pairs = pairs_from_groups({k: v for k, v in valid.items() if v}, 2000)
    check_agreement(pairs, apk_compare(alpine_root, pairs), "Alpine:v3.11")  # type: ignore[arg-type]


def test_generated_versions_order_as_apk_orders_them(alpine_root: Path) -> None:
    rng = random.Random(SEED)
    pairs = []
    for _ in range(3000):
        a = generated(rng)
        b = generated(rng) if rng.random() < 0.5 else a.split("-r")[0] + rng.choice(
            ["_rc1", "_p1", ".0", "a", "~ab", "-r0", "_p", "_alpha", ".00"])
        pairs.append((a, b))
    answers = apk_compare(alpine_root, pairs)
    # Some edits make invalid versions (".0" after a suffix): apk rejects exactly those that Moat rejects.
    rejected = [pair for pair, answer in zip(pairs, answers, strict=True) if answer is None]
    assert 0 < len(rejected) < len(pairs) // 4
    assert not any(versions.is_valid("Alpine", a) and versions.is_valid("Alpine", b) for a, b in rejected)
    kept = [(pair, answer) for pair, answer in zip(pairs, answers, strict=True) if answer is not None]
    check_agreement([pair for pair, _ in kept], [answer for _, answer in kept], "Alpine:v3.19")


INVALID = ["", "a", "v1.0", "1.0A", "1.0ab", "1.0a1", "1..0", "1.0.", "1.0_", "1.0-r", "1.0-1", "1.0_foo",
           "1.0_preview", "1.0~", "1.0~xyz", "1.0~ABC", "1.0-r1_p1", "1.0~abc_p1", "1.0-r1~abc", "1.0 ", "1.0.a"]


def test_invalid_versions_are_the_ones_apk_rejects(alpine_root: Path) -> None:
    # (The oracle's shell loop cannot pass "" or a trailing space, so those two are checked on Moat only.)
    probe = [v for v in INVALID if v and v == v.strip()]
    assert apk_compare(alpine_root, [(v, "1") for v in probe]) == [None] * len(probe)
    for version in INVALID:
        assert not versions.is_valid("Alpine:v3.19", version), version
    with pytest.raises(versions.VersionError, match=r"invalid apk version '1.0_foo'"):
        versions.compare("Alpine:v3.19", "1.0_foo", "1.0")
