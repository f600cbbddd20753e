"""The real Debian test image pushed to a real registry (Debian's docker-registry on loopback, basic
auth) and scanned with ``moat sbom registry:…``: the inventory must equal the one read from the OCI
layout it was pushed from, and the layer cache must be shared between the two transports."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.conftest import moat_executable
from fixtures.images import debian_image
from image.registry_server import Registry, htpasswd_file, push, start_registry

pytestmark = [pytest.mark.images, pytest.mark.registry, pytest.mark.xdist_group("images")]

USER, PASSWORD = "alice", "s3cret-moat"


@pytest.fixture(scope="module")
def registry_with_debian(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Registry, str]]:
    work = tmp_path_factory.mktemp("e2e-registry")
    image = debian_image()
    # Push anonymously first, then serve the same storage with basic auth required.
    open_registry = start_registry(work / "open", work / "storage")
    try:
        digest = push(work, image.layout, "full", f"{open_registry.host}/moat/debian:12")
    finally:
        open_registry.stop()
    secured = start_registry(
        work / "secured", work / "storage", htpasswd=htpasswd_file(work / "htpasswd", {USER: PASSWORD})
    )
    try:
        yield secured, digest
    finally:
        secured.stop()


def sbom(target: str, cache: Path, out: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], dict]:  # type: ignore[type-arg]
    env = {"HOME": str(cache.parent), "PATH": "/usr/bin:/bin", "MOAT_REGISTRY_TIMEOUT": "20"}
    done = subprocess.run(
        [moat_executable(), "sbom", target, "--format", "json", "-o", str(out), "--cache-dir", str(cache), *extra],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    report = json.loads(out.read_text()) if done.returncode == 0 else {}
    return done, report


def package_ids(report: dict) -> list[tuple[str, str, str, str | None]]:  # type: ignore[type-arg]
    return sorted((p["type"], p["name"], p["version"], p["layer"]) for p in report["packages"])


def test_registry_scan_equals_the_layout_and_shares_its_cache(
    registry_with_debian: tuple[Registry, str], tmp_path: Path
) -> None:
    registry, digest = registry_with_debian
    image = debian_image()
    cache = tmp_path / "cache"
    local, from_layout = sbom(image.target("oci-dir"), cache, tmp_path / "layout.json")
    assert local.returncode == 0, local.stderr
    remote, from_registry = sbom(
        f"registry:{registry.host}/moat/debian:12",
        cache,
        tmp_path / "registry.json",
        "--username",
        USER,
        "--password",
        PASSWORD,
    )
    assert remote.returncode == 0, remote.stderr
    assert package_ids(from_registry) == package_ids(from_layout)
    assert from_registry["os"] == from_layout["os"]
    assert from_registry["artifact"]["digest"] == digest
    # The same diff ids: every layer was already analyzed when the layout was scanned.
    assert [layer["cached"] for layer in from_registry["artifact"]["layers"]] == [True] * 4


def test_registry_without_credentials_is_a_clear_error(
    registry_with_debian: tuple[Registry, str], tmp_path: Path
) -> None:
    registry, _ = registry_with_debian
    done, _ = sbom(f"registry:{registry.host}/moat/debian:12", tmp_path / "cache", tmp_path / "out.json")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out.json").exists()
