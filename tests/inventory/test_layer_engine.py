"""The layer walker, the merge and the cache, on real tar layers built here.

A small analyzer that reads ``name version`` lines from files named ``pkgs.txt`` stands in for the
real ones, so these tests pin down the engine's own behaviour: whiteouts, opaque directories,
hard links, the layer that introduced a package, digest checks and hostile entries.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
import zstandard

from moat.errors import LayerError, ParseError
from moat.image.layers import DirLayerReader, TarLayerReader
from moat.inventory.analyzer import AnalysisResult, Analyzer, FileInput
from moat.inventory.cache import LayerCache
from moat.inventory.layer_analysis import AnalyzerIndex, LayerResult, analyze_layer
from moat.inventory.merge import merge_layers
from moat.model import Package


class LinesAnalyzer(Analyzer):
    name = "test-lines"
    basenames = frozenset({"pkgs.txt"})

    def analyze(self, file: FileInput) -> AnalysisResult:
        text = file.text()
        if text.startswith("BROKEN"):
            raise ParseError("broken on purpose")
        packages = []
        for line in text.splitlines():
            name, version = line.split()
            packages.append(Package(name=name, version=version, type="generic", found_in=file.path))
        return AnalysisResult(packages=packages)


class ExecAnalyzer(Analyzer):
    """Counts ELF executables, like the Go and Rust binary analyzers select them."""

    name = "test-exec"
    executables = True

    def analyze(self, file: FileInput) -> AnalysisResult:
        data = file.read()
        if not data.startswith(b"\x7fELF"):
            return AnalysisResult()
        return AnalysisResult(packages=[Package(name=file.path, version=str(len(data)), type="generic")])


INDEX = AnalyzerIndex([LinesAnalyzer(), ExecAnalyzer()])
Member = tuple[str, str, bytes | str]  # (kind, name, content or link target)


def make_tar(members: list[Member]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for kind, name, payload in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                data = payload if isinstance(payload, bytes) else payload.encode()
                info.size = len(data)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(data))
            elif kind == "exec":
                data = payload if isinstance(payload, bytes) else payload.encode()
                info.size = len(data)
                info.mode = 0o755
                tar.addfile(info, io.BytesIO(data))
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = str(payload)
                tar.addfile(info)
            elif kind == "hardlink":
                info.type = tarfile.LNKTYPE
                info.linkname = str(payload)
                tar.addfile(info)
            elif kind == "chardev":
                info.type = tarfile.CHRTYPE
                info.devmajor, info.devminor = 1, 3
                tar.addfile(info)
    return buffer.getvalue()


def reader(blob: bytes, digest: str | None = None, diff_id: str | None = None) -> TarLayerReader:
    return TarLayerReader(lambda: io.BytesIO(blob), name="test", expected_digest=digest, expected_diff_id=diff_id)


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def analyze(members: list[Member], compress: Callable[[bytes], bytes] = lambda b: b) -> LayerResult:
    tar = make_tar(members)
    return analyze_layer(reader(compress(tar), diff_id=sha(tar)), INDEX)


def names(packages: list[Package]) -> set[str]:
    return {p.id for p in packages}


@pytest.mark.parametrize(
    "compress",
    [lambda b: b, gzip.compress, lambda b: zstandard.ZstdCompressor().compress(b)],
    ids=["plain", "gzip", "zstd"],
)
def test_every_compression_yields_the_same_findings(compress: Callable[[bytes], bytes]) -> None:
    result = analyze([("file", "var/lib/x/pkgs.txt", "a 1\nb 2\n")], compress)
    assert names(result.files["var/lib/x/pkgs.txt"][0].packages) == {"a@1", "b@2"}
    assert result.diff_id is not None


def test_whiteout_opaque_dir_and_replacement_follow_overlay_rules() -> None:
    base = analyze(
        [
            ("file", "app/one/pkgs.txt", "one 1\n"),
            ("file", "app/two/pkgs.txt", "two 1\n"),
            ("file", "opt/three/pkgs.txt", "three 1\n"),
            ("file", "srv/pkgs.txt", "srv 1\n"),
        ]
    )
    upper = analyze(
        [
            ("file", "app/one/.wh.pkgs.txt", b""),
            ("file", "opt/.wh..wh..opq", b""),
            ("file", "opt/four/pkgs.txt", "four 1\n"),
            ("file", "srv/pkgs.txt", "srv 2\n"),
        ]
    )
    tree = merge_layers([("sha256:base", base), ("sha256:upper", upper)])
    assert names(tree.packages()) == {"two@1", "four@1", "srv@2"}


def test_a_package_is_credited_to_the_layer_that_installed_it() -> None:
    first = analyze([("file", "db/pkgs.txt", "a 1\nb 1\n")])
    second = analyze([("file", "db/pkgs.txt", "a 1\nb 2\nc 1\n")])
    packages = {p.id: p.layer for p in merge_layers([("L1", first), ("L2", second)]).packages()}
    assert packages == {"a@1": "L1", "b@2": "L2", "c@1": "L2"}


def test_an_emptied_database_hides_the_packages_below() -> None:
    first = analyze([("file", "db/pkgs.txt", "a 1\n")])
    second = analyze([("file", "db/pkgs.txt", "")])
    assert merge_layers([("L1", first), ("L2", second)]).packages() == []


def test_whiteout_then_readd_credits_the_later_layer() -> None:
    first = analyze([("file", "db/pkgs.txt", "a 1\n")])
    second = analyze([("file", "db/.wh.pkgs.txt", b"")])
    third = analyze([("file", "db/pkgs.txt", "a 1\n")])
    packages = merge_layers([("L1", first), ("L2", second), ("L3", third)]).packages()
    assert [(p.id, p.layer) for p in packages] == [("a@1", "L3")]


def test_hard_link_to_a_wanted_file_is_analyzed_under_its_own_name() -> None:
    result = analyze(
        [
            ("file", "data/original.bin", "x 1\n"),
            ("hardlink", "db/pkgs.txt", "data/original.bin"),
        ]
    )
    assert names(result.files["db/pkgs.txt"][0].packages) == {"x@1"}


def test_hard_link_to_an_analyzed_file_is_resolved_from_memory() -> None:
    result = analyze(
        [
            ("file", "a/pkgs.txt", "y 1\n"),
            ("hardlink", "b/pkgs.txt", "a/pkgs.txt"),
        ]
    )
    assert names(result.files["b/pkgs.txt"][0].packages) == {"y@1"}


def test_hard_link_to_a_missing_target_is_a_warning() -> None:
    result = analyze([("hardlink", "db/pkgs.txt", "nowhere/file")])
    assert "db/pkgs.txt" not in result.files
    assert any("not in the layer" in w for w in result.warnings)


def test_executables_are_sniffed_and_scripts_are_not_kept() -> None:
    result = analyze(
        [
            ("exec", "usr/bin/tool", b"\x7fELF" + b"\0" * 60),
            ("exec", "usr/bin/script", b"#!/bin/sh\necho hi\n"),
            ("file", "usr/share/notexec", b"\x7fELF" + b"\0" * 10),
        ]
    )
    assert set(result.files) == {"usr/bin/tool"}


def test_entries_escaping_the_root_are_skipped_with_a_warning() -> None:
    result = analyze(
        [
            ("file", "../../etc/pkgs.txt", "evil 1\n"),
            ("file", "/abs/pkgs.txt", "abs 1\n"),
            ("hardlink", "db/pkgs.txt", "../../etc/passwd"),
            ("symlink", "etc/pkgs.txt", "/etc/shadow"),
            ("chardev", "dev/pkgs.txt", b""),
        ]
    )
    # An absolute name is relative to the image root; "../" names never are.
    assert set(result.files) == {"abs/pkgs.txt"}
    assert any("escaping the root" in w for w in result.warnings)
    assert any("hard link out of the root" in w for w in result.warnings)


def test_parse_errors_become_warnings_and_do_not_stop_the_layer() -> None:
    result = analyze([("file", "a/pkgs.txt", "BROKEN"), ("file", "b/pkgs.txt", "ok 1\n")])
    assert any("broken on purpose" in w for w in result.warnings)
    assert names(result.files["b/pkgs.txt"][0].packages) == {"ok@1"}


def test_wrong_blob_digest_fails_the_layer() -> None:
    tar = make_tar([("file", "a/pkgs.txt", "a 1\n")])
    with pytest.raises(LayerError, match="blob digest"):
        analyze_layer(reader(gzip.compress(tar), digest=sha(b"something else")), INDEX)


def test_wrong_diff_id_fails_the_layer() -> None:
    tar = make_tar([("file", "a/pkgs.txt", "a 1\n")])
    with pytest.raises(LayerError, match="uncompressed digest"):
        analyze_layer(reader(tar, diff_id=sha(b"other")), INDEX)


def test_truncated_gzip_is_a_clear_error() -> None:
    blob = gzip.compress(make_tar([("file", "a/pkgs.txt", "a 1\n" * 5000)]))
    with pytest.raises(LayerError, match="corrupt or truncated"):
        analyze_layer(reader(blob[: len(blob) // 2]), INDEX)


def test_garbage_blob_is_a_clear_error() -> None:
    with pytest.raises(LayerError, match="corrupt or truncated"):
        analyze_layer(reader(b"\x1f\x8b" + b"\xff" * 1000), INDEX)


def test_decompression_bomb_stops_at_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOAT_MAX_LAYER_BYTES", str(1_000_000))
    blob = gzip.compress(make_tar([("file", "zeros", b"\0" * 5_000_000)]))
    assert len(blob) < 20_000
    with pytest.raises(LayerError, match="decompression bomb"):
        analyze_layer(reader(blob), INDEX)


def test_cache_round_trip_and_damaged_entries_are_misses(tmp_path: Path) -> None:
    tar = make_tar([("file", "db/pkgs.txt", "a 1\n")])
    result = analyze_layer(reader(tar), INDEX)
    cache = LayerCache(tmp_path, "test-lines:1")
    assert result.diff_id == sha(tar)
    cache.put(result.diff_id, result)
    again = cache.get(result.diff_id)
    assert again is not None and names(again.files["db/pkgs.txt"][0].packages) == {"a@1"}
    assert LayerCache(tmp_path, "test-lines:2").get(result.diff_id) is None
    for entry in (tmp_path / "layers").rglob("*.json"):
        entry.write_text("{not json")
    assert cache.get(result.diff_id) is None


def test_directory_walk_does_not_follow_symlinks(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "db").mkdir(parents=True)
    (root / "db" / "pkgs.txt").write_text("real 1\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "pkgs.txt").write_text("outside 1\n")
    (root / "escape").symlink_to(outside)
    (root / "loop").symlink_to(root / "loop")
    result = analyze_layer(DirLayerReader(str(root)), INDEX)
    assert set(result.files) == {"db/pkgs.txt"}


def test_symlinked_os_file_is_answered_by_its_target() -> None:
    class OsAnalyzer(Analyzer):
        name = "test-os"
        basenames = frozenset({"os-release"})

        def analyze(self, file: FileInput) -> AnalysisResult:
            from moat.model import OSInfo

            return AnalysisResult(os=OSInfo(family="debian", name=file.text().strip()))

    index = AnalyzerIndex([OsAnalyzer()])
    tar = make_tar([("file", "usr/lib/os-release", "12"), ("symlink", "etc/os-release", "../usr/lib/os-release")])
    tree = merge_layers([("L1", analyze_layer(reader(tar), index))])
    found = tree.os_findings()
    assert found["etc/os-release"].name == "12"


def test_analyzer_is_subclassable_without_wants() -> None:
    assert isinstance(LinesAnalyzer(), Analyzer)
    assert LinesAnalyzer().wants("x/pkgs.txt", 0o644)


def test_mutated_layers_only_ever_fail_cleanly() -> None:
    """Seeded random damage to real tar and gzip bytes: findings or LayerError, nothing else."""
    import random

    tar = make_tar(
        [
            ("file", "a/pkgs.txt", "a 1\nb 2\n"),
            ("file", "x" * 150 + "/pkgs.txt", "long 1\n"),  # forces a pax or GNU long name
            ("symlink", "l/pkgs.txt", "../a/pkgs.txt"),
            ("hardlink", "h/pkgs.txt", "a/pkgs.txt"),
            ("exec", "bin/tool", b"\x7fELF" + bytes(range(256)) * 4),
        ]
    )
    rng = random.Random(20261128)
    outcomes = {"ok": 0, "error": 0}
    for blob in (tar, gzip.compress(tar)):
        for _ in range(150):
            damaged = bytearray(blob)
            for _ in range(rng.randint(1, 8)):
                damaged[rng.randrange(len(damaged))] = rng.randrange(256)
            if rng.random() < 0.3:
                damaged = damaged[: rng.randrange(len(damaged))]
            try:
                analyze_layer(reader(bytes(damaged)), INDEX)
                outcomes["ok"] += 1
            except LayerError:
                outcomes["error"] += 1
    assert outcomes["ok"] and outcomes["error"]
