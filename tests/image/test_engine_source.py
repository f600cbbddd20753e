"""``docker:NAME`` against a real Docker-compatible engine: podman's API service on a unix socket.

The Alpine test image is loaded into a private podman store (rootful, runc, explicit ulimits, as
RECIPES.md says works here), the service is started on a socket in tmp, and Moat's inventory of
``docker:`` must equal its inventory of the very archive that was loaded.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fixtures.images import alpine_image
from moat.errors import SourceError
from moat.image.source import SourceOptions
from moat.inventory.target import ScanSettings, inventory_target

pytestmark = [pytest.mark.images, pytest.mark.xdist_group("images")]

CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
[engine]
runtime = "runc"
"""


@pytest.fixture(scope="module")
def podman_socket(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    podman = shutil.which("podman")
    assert podman, "podman is not installed (scripts/install-system-deps installs it)"
    image = alpine_image()
    base = tmp_path_factory.mktemp("podman")
    conf = base / "containers.conf"
    conf.write_text(CONTAINERS_CONF)
    env = {**os.environ, "CONTAINERS_CONF": str(conf), "HOME": str(base)}
    # podman refuses a runroot path over 50 characters; pytest's tmp paths are longer.
    runroot = Path(tempfile.mkdtemp(prefix="moat-pm-", dir="/tmp"))
    store = [
        "--root", str(base / "root"),
        "--runroot", str(runroot),
        "--tmpdir", str(base / "tmp"),
        "--storage-driver", "vfs",
    ]  # fmt: skip
    loaded = subprocess.run(
        [podman, *store, "load", "-i", str(image.docker_archive)], env=env, capture_output=True, text=True
    )
    assert loaded.returncode == 0, f"podman load failed: {loaded.stderr[-2000:]}"
    socket = base / "podman.sock"
    service = subprocess.Popen(
        [podman, *store, "system", "service", "--time=0", f"unix://{socket}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if socket.exists():
                try:
                    with httpx.Client(transport=httpx.HTTPTransport(uds=str(socket)), timeout=2) as client:
                        if client.get("http://engine/version").status_code == 200:
                            break
                except httpx.HTTPError:
                    pass
            time.sleep(0.2)
        else:
            raise RuntimeError("podman system service did not come up")
        yield f"unix://{socket}"
    finally:
        service.terminate()
        service.wait(timeout=10)
        shutil.rmtree(runroot, ignore_errors=True)


def ids(packages: list) -> list[tuple[str, str, str]]:  # type: ignore[type-arg]
    return sorted((p.type, p.name, p.version) for p in packages)


def test_engine_image_equals_the_archive_it_was_loaded_from(podman_socket: str, tmp_path: Path) -> None:
    image = alpine_image()
    settings = ScanSettings(cache_dir=str(tmp_path / "cache"), use_cache=False)
    from_engine = inventory_target(
        "docker:moat/alpine:alpine", SourceOptions(docker_host=podman_socket), settings
    )
    from_archive = inventory_target(image.target("docker-archive"), SourceOptions(), settings)
    assert from_engine.os is not None and from_engine.os.family == "alpine"
    assert len(from_engine.packages) > 10
    assert ids(from_engine.packages) == ids(from_archive.packages)
    assert from_engine.artifact.name == "moat/alpine:alpine"
    # The exported archive went to Moat's scratch dir and was removed after the scan.
    assert list((tmp_path / "cache" / "tmp").iterdir()) == []


def test_unknown_image_is_a_clear_error(podman_socket: str, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such image"):
        inventory_target(
            "docker:moat/absent:1",
            SourceOptions(docker_host=podman_socket),
            ScanSettings(cache_dir=str(tmp_path)),
        )


def test_missing_socket_and_tcp_hosts_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no engine socket"):
        inventory_target(
            "docker:x", SourceOptions(docker_host=f"unix://{tmp_path}/none.sock"), ScanSettings(str(tmp_path))
        )
    with pytest.raises(SourceError, match="only unix://"):
        inventory_target("docker:x", SourceOptions(docker_host="tcp://127.0.0.1:2375"), ScanSettings(str(tmp_path)))
