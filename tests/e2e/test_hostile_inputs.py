"""``moat sbom`` on hostile and broken inputs: a clean exit 2 or a warning, never a traceback, and
never a file written, read or followed outside the scan's own cache and temp dirs.

Each image is written by hand (see conftest) on top of a real bottom layer whose packages
``dpkg-query`` lists, so "the good part of the image was still scanned" is checked against the
package manager and not against Moat's own idea of the answer.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
import json
import os
import secrets
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from e2e.conftest import (
    BaseLayer,
    MoatRun,
    Sandbox,
    device_member,
    dir_member,
    file_member,
    gzip_bomb,
    link_member,
    sha256,
    snapshot,
    tar_bytes,
    write_blob,
    write_docker_archive,
    write_legacy_docker_archive,
    write_oci_layout,
    zero_stream_tar,
    zstd_bomb,
)
from fixtures import groundtruth

MAX_LAYER_BYTES = 50_000_000
BOMB_BYTES = 64 * 1024 * 1024
DECOY = "moat-decoy-outside"


# ------------------------------------------------------------------------------------- helpers


@contextmanager
def nothing_escapes(sandbox: Sandbox, tmp_path: Path, abs_name: str | None = None) -> Iterator[None]:
    """Fail if the run creates anything outside moat's own dirs, touches /etc/passwd, or leaves temp files."""
    passwd = Path("/etc/passwd")
    passwd_before = (hashlib.sha256(passwd.read_bytes()).hexdigest(), passwd.stat().st_mtime_ns)
    box_before = snapshot(sandbox.box, sandbox.allowed())
    siblings_before = set(os.listdir(tmp_path.parent))
    tmp_tree_before = snapshot(tmp_path, [sandbox.box])
    if abs_name:
        assert not Path("/", abs_name).exists()
    yield
    assert (hashlib.sha256(passwd.read_bytes()).hexdigest(), passwd.stat().st_mtime_ns) == passwd_before
    assert snapshot(sandbox.box, sandbox.allowed()) == box_before, "files appeared outside cache/tmp"
    assert set(os.listdir(tmp_path.parent)) == siblings_before, "files appeared beside the test dir"
    assert snapshot(tmp_path, [sandbox.box]) == tmp_tree_before, "files appeared beside the sandbox"
    if abs_name:
        assert not Path("/", abs_name).exists(), "an absolute member name was written to the host root"
    assert list(sandbox.tmp.iterdir()) == [], "moat left temporary files behind"


def assert_input_error(run: MoatRun) -> None:
    """Bad input: exit code 2 with a message, and no Python traceback."""
    assert run.returncode == 2, run.explain()
    assert "Traceback" not in run.stderr, run.explain()
    assert run.stderr.strip(), "an input error must say what was wrong"


def assert_scanned(run: MoatRun) -> dict:
    assert run.returncode == 0, run.explain()
    assert "Traceback" not in run.stderr, run.explain()
    assert run.report is not None, run.explain()
    return run.report


def decoys(tmp_path: Path) -> dict[str, Path]:
    """Package databases outside any image root, in each format, naming a package that must never show up."""
    root = tmp_path / "decoy"
    root.mkdir(exist_ok=True)
    files = {
        "apk": (root / "installed", f"C:Q1AAAA\nP:{DECOY}\nV:6.6.6-r0\nA:x86_64\nL:MIT\n\n"),
        "dpkg": (
            root / "status",
            f"Package: {DECOY}\nStatus: install ok installed\nVersion: 6.6.6\nArchitecture: amd64\n\n",
        ),
        "pypi": (root / "METADATA", f"Metadata-Version: 2.1\nName: {DECOY}\nVersion: 6.6.6\n\n"),
    }
    for path, text in files.values():
        path.write_text(text)
    return {kind: path for kind, (path, _) in files.items()}


def climb(absolute: Path, depth: int = 40) -> str:
    """A relative link target that climbs far above any root, then descends to ``absolute``."""
    return "../" * depth + str(absolute).lstrip("/")


def no_decoy(report: dict) -> None:
    names = {p["name"] for p in report["packages"]}
    assert DECOY not in names, "a link out of the image root was followed"


def hostile_layer(tmp_path: Path, abs_name: str) -> bytes:
    """Every kind of entry that must be skipped or contained, at paths the analyzers look at."""
    bait = decoys(tmp_path)
    site = "usr/local/lib/python3.11/site-packages"
    dirs = [
        "etc",
        "dev",
        "tmp",
        "usr",
        "usr/bin",
        "usr/lib",
        "usr/share",
        "usr/local",
        "usr/local/lib",
        "usr/local/lib/python3.11",
        site,
        f"{site}/decoy-6.6.6.dist-info",
        "lib",
        "lib/apk",
        "lib/apk/db",
        "var",
        "var/lib",
        "var/lib/dpkg",
        "var/lib/dpkg/status.d",
    ]
    members = [dir_member(d) for d in dirs]
    members += [
        file_member("../etc/passwd", b"hostile:x:0:0::/:/bin/sh\n"),
        file_member("/" + abs_name, b"absolute member name\n"),
        link_member("usr/lib/os-release", climb(Path("/etc/shadow"))),
        link_member("etc/shadow-link", "/etc/shadow"),
        link_member("lib/apk/db/installed", str(bait["apk"])),
        link_member("var/lib/dpkg/status.d/decoy", climb(bait["dpkg"])),
        link_member(f"{site}/decoy-6.6.6.dist-info/METADATA", climb(bait["pypi"], depth=12)),
        link_member("var/lib/dpkg/status.d/loop-a", "loop-b"),
        link_member("var/lib/dpkg/status.d/loop-b", "loop-a"),
        link_member("etc/selfloop", "selfloop"),
        link_member("usr/share/loop", "."),
        link_member("usr/bin/hl", "../../x", hard=True),
        device_member("dev/evil-null"),
        device_member("dev/evil-sda", tarfile.BLKTYPE),
        device_member("tmp/evil-fifo", tarfile.FIFOTYPE),
    ]
    return tar_bytes(members)


def shadow_lines() -> list[str]:
    """Lines of this machine's /etc/shadow long enough to recognise if they leaked into a report."""
    try:
        text = Path("/etc/shadow").read_text()
    except OSError:
        return []
    return [line for line in text.splitlines() if len(line) > 12]


# ------------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("transport", ["oci-dir", "docker-archive"])
def test_escaping_entries_are_skipped_with_warnings(
    transport: str, sandbox: Sandbox, tmp_path: Path, base_layer: BaseLayer
) -> None:
    """Traversal names, links out of the root, loops and devices in a layer: the rest still scans."""
    abs_name = f"moat-abs-{secrets.token_hex(6)}"
    layers = [base_layer.tar, hostile_layer(tmp_path, abs_name)]
    if transport == "oci-dir":
        target = f"oci-dir:{write_oci_layout(sandbox.inputs / 'hostile', layers)}:latest"
    else:
        target = f"docker-archive:{write_docker_archive(sandbox.inputs / 'hostile.tar', layers)}"
    with nothing_escapes(sandbox, tmp_path, abs_name):
        run = sandbox.sbom(target)
    report = assert_scanned(run)
    assert groundtruth.report_packages(report, "deb") == base_layer.deb
    no_decoy(report)
    assert report["os"]["family"] == "debian"
    warnings = "\n".join(report["warnings"])
    assert "../etc/passwd" in warnings, report["warnings"]
    assert "../../x" in warnings or "usr/bin/hl" in warnings, report["warnings"]
    text = json.dumps(report)
    assert not [line for line in shadow_lines() if line in text], "/etc/shadow content leaked into the report"


def test_dir_target_never_follows_links_out_or_opens_fifos(
    sandbox: Sandbox, tmp_path: Path, base_layer: BaseLayer
) -> None:
    """A root filesystem directory whose package databases are links to files outside it, or fifos."""
    bait = decoys(tmp_path)
    root = sandbox.inputs / "rootfs"
    for name, data in base_layer.files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    (root / "lib/apk/db").mkdir(parents=True)
    os.symlink(bait["apk"], root / "lib/apk/db/installed")
    (root / "var/lib/dpkg/status.d").mkdir(parents=True)
    os.symlink(climb(bait["dpkg"]), root / "var/lib/dpkg/status.d/decoy")
    site = root / "usr/lib/python3/dist-packages/decoy-6.6.6.dist-info"
    site.mkdir(parents=True)
    os.symlink(bait["pypi"], site / "METADATA")
    os.mkfifo(root / "usr/lib/os-release")  # opening it for reading would block forever
    os.symlink(".", root / "usr/lib/loop")
    os.symlink("/", root / "usr/lib/hostroot")
    with nothing_escapes(sandbox, tmp_path):
        run = sandbox.sbom(f"dir:{root}")
    report = assert_scanned(run)
    assert groundtruth.report_packages(report, "deb") == base_layer.deb
    no_decoy(report)
    assert report["os"]["family"] == "debian"


def test_truncated_gzip_layer(sandbox: Sandbox, tmp_path: Path, base_layer: BaseLayer) -> None:
    blob = gzip.compress(base_layer.tar + bytes(256 * 1024), mtime=0)
    truncated = blob[: len(blob) // 2]
    layout = write_oci_layout(
        sandbox.inputs / "truncated",
        [truncated],
        compress=lambda data: data,
        diff_ids=[sha256(base_layer.tar + bytes(256 * 1024))],
    )
    with nothing_escapes(sandbox, tmp_path):
        run = sandbox.sbom(f"oci-dir:{layout}:latest")
    assert_input_error(run)


def test_layer_blob_that_does_not_match_its_digest(
    sandbox: Sandbox, tmp_path: Path, base_layer: BaseLayer
) -> None:
    """The blob stored under the manifest's digest is another valid layer; its contents must not be used
    now, nor remembered in the cache for the next scan."""
    impostor = tar_bytes(
        [
            dir_member("var"),
            dir_member("var/lib"),
            dir_member("var/lib/dpkg"),
            file_member(
                "var/lib/dpkg/status",
                f"Package: {DECOY}\nStatus: install ok installed\n"
                "Version: 6.6.6\nArchitecture: amd64\n\n".encode(),
            ),
        ]
    )
    layout = write_oci_layout(
        sandbox.inputs / "tampered", [base_layer.tar], blob_override={0: gzip.compress(impostor, mtime=0)}
    )
    for _ in range(2):
        with nothing_escapes(sandbox, tmp_path):
            run = sandbox.sbom(f"oci-dir:{layout}:latest")
        assert_input_error(run)
        assert DECOY not in run.stdout


def test_docker_archive_naming_a_missing_layer(
    sandbox: Sandbox, tmp_path: Path, base_layer: BaseLayer
) -> None:
    archive = write_docker_archive(
        sandbox.inputs / "missing.tar", [base_layer.tar], missing=["0" * 64 + "/layer.tar"]
    )
    with nothing_escapes(sandbox, tmp_path):
        run = sandbox.sbom(f"docker-archive:{archive}")
    assert_input_error(run)


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_decompression_bomb(compression: str, sandbox: Sandbox, tmp_path: Path) -> None:
    """A layer of a few KB that expands past MOAT_MAX_LAYER_BYTES into a 'dpkg status' of zeros."""
    name = "var/lib/dpkg/status"
    blob = gzip_bomb(name, BOMB_BYTES) if compression == "gzip" else zstd_bomb(name, BOMB_BYTES)
    assert len(blob) < 100_000 < MAX_LAYER_BYTES < BOMB_BYTES
    diff = hashlib.sha256()
    for chunk in zero_stream_tar(name, BOMB_BYTES):
        diff.update(chunk)
    layout = write_oci_layout(
        sandbox.inputs / "bomb", [blob], compress=lambda data: data, diff_ids=["sha256:" + diff.hexdigest()]
    )
    with nothing_escapes(sandbox, tmp_path):
        run = sandbox.sbom(
            f"oci-dir:{layout}:latest", extra_env={"MOAT_MAX_LAYER_BYTES": str(MAX_LAYER_BYTES)}
        )
    assert_input_error(run)


def test_image_config_that_is_not_json(sandbox: Sandbox, tmp_path: Path, base_layer: BaseLayer) -> None:
    layout = write_oci_layout(sandbox.inputs / "badconfig", [base_layer.tar], config=b'\x00not json {"os":')
    with nothing_escapes(sandbox, tmp_path):
        run = sandbox.sbom(f"oci-dir:{layout}:latest")
    assert_input_error(run)


def test_oci_index_that_is_not_json(sandbox: Sandbox, tmp_path: Path, base_layer: BaseLayer) -> None:
    layout = write_oci_layout(sandbox.inputs / "badindex", [base_layer.tar])
    (layout / "index.json").write_text('{"schemaVersion": 2, "manifests": [')
    with nothing_escapes(sandbox, tmp_path):
        run = sandbox.sbom(f"oci-dir:{layout}:latest")
    assert_input_error(run)


def test_manifest_pointing_at_a_blob_outside_the_layout(
    sandbox: Sandbox, tmp_path: Path, base_layer: BaseLayer
) -> None:
    """A digest like ``sha256:../../..`` must not become a path that leaves the blobs directory."""
    layout = write_oci_layout(sandbox.inputs / "baddigest", [base_layer.tar])
    index = json.loads((layout / "index.json").read_text())
    manifest_path = layout / "blobs/sha256" / index["manifests"][0]["digest"].split(":", 1)[1]
    manifest = json.loads(manifest_path.read_text())
    outside = tmp_path / "outside-layer.tar"
    outside.write_bytes(base_layer.tar)
    manifest["layers"][0]["digest"] = "sha256:" + "/".join([".."] * 12) + str(outside)
    data = json.dumps(manifest).encode()
    digest = write_blob(layout, data)
    index["manifests"][0].update({"digest": digest, "size": len(data)})
    (layout / "index.json").write_text(json.dumps(index))
    with nothing_escapes(sandbox, tmp_path):
        run = sandbox.sbom(f"oci-dir:{layout}:latest")
    assert_input_error(run)


def _dist_info_layer(distribution: str, site: str) -> tuple[bytes, dict[str, bytes]]:
    """A layer holding the real installed metadata of one distribution of this venv."""
    dist = importlib.metadata.distribution(distribution)
    files: dict[str, bytes] = {}
    for item in dist.files or []:
        if ".dist-info/" in str(item):
            files[f"{site}/{item}"] = Path(str(dist.locate_file(item))).read_bytes()
    assert files, f"{distribution} has no dist-info files"
    parts = site.split("/")
    dirs = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    dirs.append(f"{site}/{next(iter(files)).split('/')[-2]}")
    members = [dir_member(d) for d in dirs] + [file_member(name, data) for name, data in files.items()]
    return tar_bytes(members), files


def test_legacy_docker_archive_scans(sandbox: Sandbox, tmp_path: Path, base_layer: BaseLayer) -> None:
    """Pre-1.10 ``docker save`` output (``repositories``, a parent chain, no manifest.json) is valid."""
    pip_tar, pip_files = _dist_info_layer("iniconfig", "usr/lib/python3/dist-packages")
    archive = write_legacy_docker_archive(sandbox.inputs / "legacy.tar", [base_layer.tar, pip_tar])
    # Ground truth for the pip layer: pip list over the same files laid out in a plain directory.
    rootfs = tmp_path / "legacy-rootfs"
    for name, data in pip_files.items():
        (rootfs / name).parent.mkdir(parents=True, exist_ok=True)
        (rootfs / name).write_bytes(data)
    pypi_truth = groundtruth.pip_packages(rootfs)
    assert len(pypi_truth) == 1
    with nothing_escapes(sandbox, tmp_path):
        run = sandbox.sbom(f"docker-archive:{archive}")
    report = assert_scanned(run)
    assert groundtruth.report_packages(report, "deb") == base_layer.deb
    assert groundtruth.report_packages(report, "pypi") == pypi_truth
    assert report["os"]["family"] == "debian"
    diff_ids = [layer["diff_id"] for layer in report["artifact"]["layers"]]
    assert diff_ids == [sha256(base_layer.tar), sha256(pip_tar)]
    for package in report["packages"]:
        if package["type"] == "deb":
            assert package["layer"] == diff_ids[0]
        if package["type"] == "pypi":
            assert package["layer"] == diff_ids[1]


def test_docker_archive_layer_path_climbing_out(
    sandbox: Sandbox, tmp_path: Path, base_layer: BaseLayer
) -> None:
    """manifest.json names its layer ``../x/layer.tar``, a file outside the tarball: never read it."""
    outside = sandbox.inputs.parent / "x"
    outside.mkdir()
    (outside / "layer.tar").write_bytes(base_layer.tar)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [sha256(base_layer.tar)]},
        }
    ).encode()
    manifest = [{"Config": "config.json", "RepoTags": ["moat/climb:latest"], "Layers": ["../x/layer.tar"]}]
    archive = sandbox.inputs / "climb.tar"
    archive.write_bytes(
        tar_bytes(
            [file_member("manifest.json", json.dumps(manifest).encode()), file_member("config.json", config)]
        )
    )
    with nothing_escapes(sandbox, tmp_path):
        run = sandbox.sbom(f"docker-archive:{archive}")
    assert_input_error(run)
