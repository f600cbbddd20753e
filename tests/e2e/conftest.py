"""Fixtures for whole-command tests: the built images with their ground truth, a sandbox to run
``moat`` in, and the hostile inputs.

The hostile inputs are made here, per test, from small real tars: the bottom layer is always real
data (this machine's own os-release and the first stanzas of its dpkg status, so ``dpkg-query`` can
say what must be found), and on top of it sits whatever is being tried: names that climb out of the
root, links that point out of it, devices, truncated or lying blobs, a decompression bomb. Whatever
Moat does with them, it must answer with exit code 2 or a warning, never a traceback, and never
write outside its own cache and temp dirs.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import zstandard

from fixtures import groundtruth, images
from fixtures.groundtruth import GroundTruth

MOAT_TIMEOUT = 900
"""Seconds before a hung ``moat`` is killed: a guard against symlink loops, not a speed assertion."""

HOST_DPKG_STANZAS = 6


# ------------------------------------------------------------------------------------- running moat


@dataclass(slots=True)
class MoatRun:
    """One finished ``moat`` process and its parsed JSON report (None when it wrote none)."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    report: dict[str, Any] | None

    def explain(self) -> str:
        return f"moat {' '.join(self.args)} -> {self.returncode}\nstderr:\n{self.stderr[-3000:]}"


def moat_executable() -> str:
    """The ``moat`` console script of the interpreter running the tests (the project venv)."""
    beside = Path(sys.executable).with_name("moat")
    if beside.is_file():
        return str(beside)
    found = shutil.which("moat")
    if not found:
        raise RuntimeError("the moat console script is not installed (pip install -e .)")
    return found


@dataclass(slots=True)
class Sandbox:
    """A directory tree ``moat`` runs in: its cwd, cache, TMPDIR and home all live under ``box``.

    The tree is deep (``box/in/a/b/c``) so that a name like ``../../x`` resolved against any
    working directory Moat might use still lands inside ``box``, where a snapshot can see it.
    """

    box: Path
    inputs: Path
    cache: Path
    tmp: Path
    home: Path
    out: Path
    env: dict[str, str] = field(default_factory=dict)

    def allowed(self) -> list[Path]:
        """Where moat may write: its cache, its temp dir, its home dirs and the report file's dir."""
        return [self.cache, self.tmp, self.home, self.out]

    def sbom(
        self,
        target: str,
        *,
        cache: Path | None = None,
        extra_env: dict[str, str] | None = None,
        report_name: str = "report.json",
    ) -> MoatRun:
        """``moat sbom TARGET --format json -o FILE --cache-dir DIR`` as a subprocess."""
        output = self.out / report_name
        output.unlink(missing_ok=True)
        args = [
            "sbom",
            target,
            "--format",
            "json",
            "-o",
            str(output),
            "--cache-dir",
            str(cache or self.cache),
            "--quiet",
        ]
        env = dict(self.env)
        env.update(extra_env or {})
        proc = subprocess.run(
            [moat_executable(), *args],
            cwd=self.inputs,
            env=env,
            capture_output=True,
            text=True,
            timeout=MOAT_TIMEOUT,
            check=False,
        )
        report = json.loads(output.read_text()) if output.is_file() and output.stat().st_size else None
        return MoatRun(args, proc.returncode, proc.stdout, proc.stderr, report)


def make_sandbox(base: Path) -> Sandbox:
    """Create the sandbox dirs and an environment that points every per-user dir into them."""
    box = base / "box"
    sandbox = Sandbox(
        box=box,
        inputs=box / "in" / "a" / "b" / "c",
        cache=box / "cache",
        tmp=box / "tmp",
        home=box / "home",
        out=box / "out",
    )
    for path in (sandbox.inputs, sandbox.cache, sandbox.tmp, sandbox.home, sandbox.out):
        path.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOAT_")}
    env.update(
        {
            "TMPDIR": str(sandbox.tmp),
            "HOME": str(sandbox.home),
            "XDG_CACHE_HOME": str(sandbox.home / ".cache"),
            "XDG_DATA_HOME": str(sandbox.home / ".local/share"),
            "XDG_CONFIG_HOME": str(sandbox.home / ".config"),
            "NO_COLOR": "1",
        }
    )
    sandbox.env = env
    return sandbox


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    return make_sandbox(tmp_path)


def snapshot(root: Path, skip: list[Path]) -> set[str]:
    """Every path under ``root`` (symlinks not followed), except the ``skip`` subtrees."""
    skipped = {str(p) for p in skip}
    found: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if os.path.join(dirpath, d) not in skipped]
        for name in dirnames + filenames:
            found.add(os.path.relpath(os.path.join(dirpath, name), root))
    return found


# ------------------------------------------------------------------------------------- built images


@dataclass(slots=True)
class ImageCase:
    """A built image, its root filesystem as umoci unpacks it, and what the package managers say."""

    image: images.BuiltImage
    tag: str
    rootfs: Path
    truth: GroundTruth
    diff_ids: list[str]


def _image_case(factory: pytest.TempPathFactory, image: images.BuiltImage, tag: str) -> ImageCase:
    rootfs = groundtruth.unpack(image.layout, tag, factory.mktemp(f"{image.name}-{tag}"))
    return ImageCase(
        image, tag, rootfs, groundtruth.ground_truth(rootfs), groundtruth.image_diff_ids(image.layout, tag)
    )


@pytest.fixture(scope="session")
def debian(tmp_path_factory: pytest.TempPathFactory) -> ImageCase:
    """The four-layer Debian image (tag ``full``)."""
    return _image_case(tmp_path_factory, images.debian_image(), "full")


@pytest.fixture(scope="session")
def debian_base(tmp_path_factory: pytest.TempPathFactory) -> ImageCase:
    """The same layout's tag ``base``: only the two bottom layers of ``debian``."""
    return _image_case(tmp_path_factory, images.debian_image(), "base")


@pytest.fixture(scope="session")
def alpine(tmp_path_factory: pytest.TempPathFactory) -> ImageCase:
    return _image_case(tmp_path_factory, images.alpine_image(), "alpine")


@pytest.fixture(scope="session")
def centos(tmp_path_factory: pytest.TempPathFactory) -> ImageCase:
    return _image_case(tmp_path_factory, images.rpm_image(), "centos")


# ------------------------------------------------------------------------------------- tar helpers


def file_member(name: str, data: bytes, mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = 1_700_000_000
    return info, data


def dir_member(name: str) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    return info, None


def link_member(name: str, target: str, *, hard: bool = False) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
    info.linkname = target
    info.mode = 0o777
    return info, None


def device_member(name: str, kind: bytes = tarfile.CHRTYPE) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.devmajor, info.devminor = 1, 3
    info.mode = 0o666
    return info, None


def tar_bytes(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    """A tar archive (PAX, so any name survives) of the given members, in order."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------------------------- real base layer


@dataclass(slots=True)
class BaseLayer:
    """A small real layer (this machine's os-release and a few dpkg stanzas) and its ground truth."""

    tar: bytes
    files: dict[str, bytes]
    deb: set[tuple[str, str]]


def host_dpkg_stanzas(count: int = HOST_DPKG_STANZAS) -> str:
    text = Path("/var/lib/dpkg/status").read_text()
    stanzas = [s.strip("\n") for s in text.split("\n\n") if s.strip()]
    return "\n\n".join(stanzas[:count]) + "\n"


@pytest.fixture(scope="session")
def base_layer(tmp_path_factory: pytest.TempPathFactory) -> BaseLayer:
    """Real data for the bottom layer of every hostile image; dpkg-query supplies the expected packages."""
    files = {
        "etc/os-release": Path("/etc/os-release").read_bytes(),
        "var/lib/dpkg/status": host_dpkg_stanzas().encode(),
    }
    admin = tmp_path_factory.mktemp("host-dpkg") / "var/lib/dpkg"
    admin.mkdir(parents=True)
    (admin / "status").write_bytes(files["var/lib/dpkg/status"])
    deb = groundtruth.dpkg_packages(admin.parent.parent.parent)
    assert len(deb) >= 3, "the host dpkg status should give a few installed packages"
    members = [dir_member(d) for d in ("etc", "var", "var/lib", "var/lib/dpkg")]
    members += [file_member(name, data) for name, data in files.items()]
    return BaseLayer(tar=tar_bytes(members), files=files, deb=deb)


# ------------------------------------------------------------------------------------- image writers


def _config(diff_ids: list[str], legacy_cmd: str = "/bin/sh") -> dict[str, Any]:
    return {
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": [legacy_cmd], "Env": ["PATH=/usr/bin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": f"layer {i}"} for i in range(len(diff_ids))],
    }


def write_blob(layout: Path, data: bytes, name: str | None = None) -> str:
    digest = sha256(data)
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    (blobs / (name or digest.split(":", 1)[1])).write_bytes(data)
    return digest


def write_oci_layout(
    layout: Path,
    layers: list[bytes],
    *,
    compress: Callable[[bytes], bytes] | None = None,
    config: bytes | None = None,
    tag: str = "latest",
    blob_override: dict[int, bytes] | None = None,
    diff_ids: list[str] | None = None,
) -> Path:
    """An OCI image layout written by hand, so each field can be made wrong on purpose.

    ``blob_override[i]`` replaces the stored bytes of layer ``i`` while the manifest keeps the
    digest and size of the original, which is how a tampered or corrupted blob looks on disk.
    """
    compress = compress or (lambda data: gzip.compress(data, mtime=0))
    layout.mkdir(parents=True, exist_ok=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    descriptors = []
    for index, tar in enumerate(layers):
        blob = compress(tar)
        digest = sha256(blob)
        stored = (blob_override or {}).get(index, blob)
        write_blob(layout, stored, name=digest.split(":", 1)[1])
        media = "application/vnd.oci.image.layer.v1.tar+gzip"
        if blob.startswith(b"\x28\xb5\x2f\xfd"):
            media = "application/vnd.oci.image.layer.v1.tar+zstd"
        descriptors.append({"mediaType": media, "digest": digest, "size": len(blob)})
    config_bytes = (
        config
        if config is not None
        else json.dumps(_config(diff_ids or [sha256(t) for t in layers])).encode()
    )
    config_digest = write_blob(layout, config_bytes)
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": len(config_bytes),
        },
        "layers": descriptors,
    }
    manifest_bytes = json.dumps(manifest).encode()
    manifest_digest = write_blob(layout, manifest_bytes)
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest,
                "size": len(manifest_bytes),
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }
        ],
    }
    (layout / "index.json").write_text(json.dumps(index))
    return layout


def write_docker_archive(path: Path, layers: list[bytes], *, missing: list[str] | None = None) -> Path:
    """A ``docker save`` tarball: manifest.json, the config, and ``<id>/layer.tar`` per layer.

    Names in ``missing`` are listed in manifest.json but not stored, like a truncated copy.
    """
    diff_ids = [sha256(t) for t in layers]
    config = json.dumps(_config(diff_ids)).encode()
    config_name = sha256(config).split(":", 1)[1] + ".json"
    layer_names = [f"{d.split(':', 1)[1]}/layer.tar" for d in diff_ids]
    manifest = [
        {
            "Config": config_name,
            "RepoTags": ["moat/hostile:latest"],
            "Layers": layer_names + list(missing or []),
        }
    ]
    members = [file_member("manifest.json", json.dumps(manifest).encode()), file_member(config_name, config)]
    for name, tar in zip(layer_names, layers, strict=True):
        members += [dir_member(name.split("/")[0]), file_member(name, tar)]
    path.write_bytes(tar_bytes(members))
    return path


def write_legacy_docker_archive(path: Path, layers: list[bytes], repo: str = "moat/legacy") -> Path:
    """The pre-1.10 ``docker save`` form: no manifest.json, only ``repositories`` and a parent chain
    of ``<id>/json`` + ``<id>/layer.tar`` + ``<id>/VERSION``. Members are written top layer first,
    so a reader must follow ``parent`` links rather than archive order."""
    ids = [
        hashlib.sha256(f"legacy-{i}".encode() + sha256(t).encode()).hexdigest() for i, t in enumerate(layers)
    ]
    entries = []
    for position, (layer_id, tar) in enumerate(zip(ids, layers, strict=True)):
        meta: dict[str, Any] = {
            "id": layer_id,
            "created": f"2016-01-0{position + 1}T00:00:00Z",
            "container_config": {"Cmd": ["/bin/sh", "-c", f"#(nop) layer {position}"]},
            "os": "linux",
            "architecture": "amd64",
        }
        if position:
            meta["parent"] = ids[position - 1]
        if position == len(layers) - 1:
            meta["config"] = {"Cmd": ["/bin/sh"], "Env": ["PATH=/usr/bin:/bin"]}
        entries.append(
            [
                dir_member(layer_id),
                file_member(f"{layer_id}/VERSION", b"1.0"),
                file_member(f"{layer_id}/json", json.dumps(meta).encode()),
                file_member(f"{layer_id}/layer.tar", tar),
            ]
        )
    members = [file_member("repositories", json.dumps({repo: {"latest": ids[-1]}}).encode())]
    for group in reversed(entries):
        members += group
    path.write_bytes(tar_bytes(members))
    return path


def zero_stream_tar(name: str, size: int) -> Iterator[bytes]:
    """A tar with one ``size``-byte file of zeros, produced in chunks (never held in memory)."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    yield info.tobuf(format=tarfile.PAX_FORMAT)
    chunk = bytes(1024 * 1024)
    remaining = size
    while remaining:
        step = min(remaining, len(chunk))
        yield chunk[:step]
        remaining -= step
    padding = (512 - size % 512) % 512
    yield bytes(padding) + bytes(1024)


def gzip_bomb(name: str, size: int) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=9, mtime=0) as handle:
        for chunk in zero_stream_tar(name, size):
            handle.write(chunk)
    return buffer.getvalue()


def zstd_bomb(name: str, size: int) -> bytes:
    compressor = zstandard.ZstdCompressor(level=19).compressobj()
    parts = [compressor.compress(chunk) for chunk in zero_stream_tar(name, size)]
    parts.append(compressor.flush())
    return b"".join(parts)
