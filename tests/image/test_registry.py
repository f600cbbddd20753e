"""The registry source against a real docker-registry on loopback, and against hostile servers.

Images are built with umoci and pushed with skopeo once per session into one storage root, which
several registries then serve: anonymous, htpasswd (Basic), token (Bearer, our own token server)
and TLS. Every test that opens an image walks every layer to the end, which is what verifies the
blob digests and diff ids.
"""

from __future__ import annotations

import base64
import json
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from registry_server import (
    OCI_INDEX,
    OCI_MANIFEST,
    BuiltImages,
    Registry,
    TinyRegistry,
    TinyServer,
    TokenServer,
    build_images,
    free_port,
    htpasswd_file,
    layout_image,
    push,
    reply,
    self_signed_cert,
    sha256,
    split_api_path,
    start_registry,
)

from moat.errors import LayerError, SourceError
from moat.image.registry import MAX_TRIES, RegistrySource
from moat.image.registry_auth import (
    find_credentials,
    normalize_registry_key,
    parse_challenges,
)
from moat.image.source import OpenedImage, SourceOptions, make_source

pytestmark = [pytest.mark.registry, pytest.mark.xdist_group("registry")]

USER, PASSWORD = "alice", "s3cret"
REFRESH_TOKEN = "refresh-7f3a"


# --------------------------------------------------------------------------- session fixtures


@dataclass
class Pushed:
    images: BuiltImages
    storage: Path
    host: str
    test_digest: str
    multi_digest: str
    docker_digest: str


@pytest.fixture(scope="session")
def pushed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pushed]:
    root = tmp_path_factory.mktemp("registry")
    images = build_images(root / "build")
    storage = root / "storage"
    registry = start_registry(root / "anonymous", storage)
    try:
        work = root / "push"
        test_digest = push(work, images.layout, "amd64", f"{registry.host}/moat/test:1")
        multi_digest = push(work, images.layout, "multi", f"{registry.host}/moat/multi:1", all_images=True)
        docker_digest = push(
            work, images.layout, "amd64", f"{registry.host}/moat/docker:1", docker_format=True
        )
        yield Pushed(images, storage, registry.host, test_digest, multi_digest, docker_digest)
    finally:
        registry.stop()


@pytest.fixture(scope="session")
def basic_registry(pushed: Pushed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    work = tmp_path_factory.mktemp("basic")
    htpasswd = htpasswd_file(work / "htpasswd", {USER: PASSWORD})
    registry = start_registry(work, pushed.storage, htpasswd=htpasswd, readonly=True)
    yield registry
    registry.stop()


@dataclass
class TokenSetup:
    registry: Registry
    tokens: TokenServer


@pytest.fixture(scope="session")
def token_setup(pushed: Pushed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenSetup]:
    work = tmp_path_factory.mktemp("token")
    tokens = TokenServer(work / "tokens", {USER: PASSWORD}, {REFRESH_TOKEN: USER})
    registry = start_registry(work / "registry", pushed.storage, token=tokens, readonly=True)
    yield TokenSetup(registry, tokens)
    registry.stop()
    tokens.stop()


@pytest.fixture(scope="session")
def tls_registry(pushed: Pushed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    work = tmp_path_factory.mktemp("tls")
    registry = start_registry(work, pushed.storage, tls=self_signed_cert(work, "registry"), readonly=True)
    yield registry
    registry.stop()


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No real docker login leaks in, and silence is an error after 2 s rather than 30."""
    config_dir = tmp_path / "docker-config"
    config_dir.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(config_dir))
    monkeypatch.setenv("MOAT_REGISTRY_TIMEOUT", "2")
    return config_dir


# --------------------------------------------------------------------------- helpers


def open_image(ref: str, **options: object) -> tuple[RegistrySource, OpenedImage]:
    source = make_source(f"registry:{ref}", SourceOptions(**options))  # type: ignore[arg-type]
    assert isinstance(source, RegistrySource)
    return source, source.open()


def walk(opened: OpenedImage) -> set[str]:
    """Read every layer to the end (file contents too); return the regular files seen."""
    files: set[str] = set()
    for layer in opened.layers:
        reader = layer.reader()
        for entry in reader.entries():
            if entry.kind == "file":
                with entry.open() as handle:
                    assert len(handle.read()) == entry.size
                files.add(entry.path)
        assert reader.diff_id == layer.diff_id
    return files


def layout_config(images: BuiltImages, tag: str) -> dict[str, object]:
    manifest, blobs = layout_image(images.layout, tag)
    config_digest = json.loads(manifest)["config"]["digest"]
    config: dict[str, object] = json.loads(blobs[config_digest])
    return config


def layout_digest(images: BuiltImages, tag: str) -> str:
    manifest, _ = layout_image(images.layout, tag)
    return sha256(manifest)


def write_docker_config(directory: Path, content: dict[str, object]) -> None:
    (directory / "config.json").write_text(json.dumps(content))


def basic_auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


# --------------------------------------------------------------------------- anonymous, real registry


def test_anonymous_oci_image_walks_and_describes(pushed: Pushed) -> None:
    source, opened = open_image(f"{pushed.host}/moat/test:1")
    try:
        assert walk(opened) == pushed.images.files["amd64"]
        artifact = opened.artifact
        config = layout_config(pushed.images, "amd64")
        assert artifact.digest == pushed.test_digest == layout_digest(pushed.images, "amd64")
        assert artifact.repo_tags == [f"{pushed.host}/moat/test:1"]
        assert artifact.repo_digests == [f"{pushed.host}/moat/test@{pushed.test_digest}"]
        assert (artifact.os, artifact.architecture) == ("linux", "amd64")
        assert [layer.diff_id for layer in artifact.layers] == config["rootfs"]["diff_ids"]  # type: ignore[index]
        assert [layer.diff_id for layer in opened.layers] == config["rootfs"]["diff_ids"]  # type: ignore[index]
        assert all(
            layer.media_type == "application/vnd.oci.image.layer.v1.tar+gzip" for layer in artifact.layers
        )
        assert "MOAT_ARCH=amd64" in artifact.config["Env"]
        assert artifact.config["Labels"] == {"org.example.test": "moat"}
        assert artifact.config["Cmd"] == ["/usr/bin/hello"]
        # Loopback registries are insecure like docker's: https is tried, then plain http answers.
        assert source.endpoint == f"http://{pushed.host}"
        # A layer can be walked a second time (a fresh download each time).
        assert walk(opened) == pushed.images.files["amd64"]
    finally:
        opened.close()


def test_docker_v2_manifest(pushed: Pushed) -> None:
    _, opened = open_image(f"{pushed.host}/moat/docker:1")
    try:
        assert walk(opened) == pushed.images.files["amd64"]
        assert opened.artifact.digest == pushed.docker_digest != pushed.test_digest
        assert {layer.media_type for layer in opened.layers} == {
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
        }
    finally:
        opened.close()


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_platform_selection_from_index(pushed: Pushed, arch: str) -> None:
    _, opened = open_image(f"{pushed.host}/moat/multi:1", platform=f"linux/{arch}")
    try:
        files = walk(opened)
        assert files == pushed.images.files[arch]
        assert f"opt/{arch}/README" in files
        assert opened.artifact.architecture == arch
        # The artifact is the platform's manifest; the repo digest is the index one pulls by.
        assert opened.artifact.digest == layout_digest(pushed.images, arch)
        assert opened.artifact.repo_digests == [f"{pushed.host}/moat/multi@{pushed.multi_digest}"]
    finally:
        opened.close()


def test_absent_platform_lists_available(pushed: Pushed) -> None:
    with pytest.raises(SourceError, match=r"linux/s390x.*available: linux/amd64, linux/arm64"):
        open_image(f"{pushed.host}/moat/multi:1", platform="linux/s390x")


def test_platform_mismatch_on_single_image(pushed: Pushed) -> None:
    with pytest.raises(SourceError, match="image is linux/amd64, not linux/arm64"):
        open_image(f"{pushed.host}/moat/test:1", platform="linux/arm64")


def test_digest_reference(pushed: Pushed) -> None:
    _, opened = open_image(f"{pushed.host}/moat/multi@{pushed.multi_digest}", platform="linux/arm64")
    try:
        assert walk(opened) == pushed.images.files["arm64"]
        assert opened.artifact.repo_tags == []
        assert opened.artifact.repo_digests == [f"{pushed.host}/moat/multi@{pushed.multi_digest}"]
    finally:
        opened.close()


def test_unknown_tag_and_digest(pushed: Pushed) -> None:
    with pytest.raises(SourceError, match=r"not found \(HTTP 404: MANIFEST_UNKNOWN"):
        open_image(f"{pushed.host}/moat/test:nope")
    with pytest.raises(SourceError, match="not found"):
        open_image(f"{pushed.host}/moat/test@sha256:{'0' * 64}")
    with pytest.raises(SourceError, match="HTTP 404"):
        open_image(f"{pushed.host}/moat/absent:1")


def test_tls_registry_over_https(tls_registry: Registry, pushed: Pushed) -> None:
    source, opened = open_image(f"{tls_registry.host}/moat/test:1")
    try:
        assert source.endpoint == f"https://{tls_registry.host}"
        assert walk(opened) == pushed.images.files["amd64"]
    finally:
        opened.close()


def test_unreachable_registry_is_a_clear_error() -> None:
    port = free_port()
    with pytest.raises(SourceError, match=f"127.0.0.1:{port}.*after {MAX_TRIES} tries"):
        open_image(f"127.0.0.1:{port}/moat/test:1")


# --------------------------------------------------------------------------- basic auth


def test_basic_auth_with_options(basic_registry: Registry, pushed: Pushed) -> None:
    _, opened = open_image(f"{basic_registry.host}/moat/test:1", username=USER, password=PASSWORD)
    try:
        assert walk(opened) == pushed.images.files["amd64"]
        assert opened.artifact.digest == pushed.test_digest
    finally:
        opened.close()


def test_basic_auth_wrong_password(basic_registry: Registry) -> None:
    with pytest.raises(SourceError, match="credentials rejected for user 'alice'"):
        open_image(f"{basic_registry.host}/moat/test:1", username=USER, password="wrong")


def test_basic_auth_without_credentials(basic_registry: Registry) -> None:
    with pytest.raises(SourceError, match="authentication required and no credentials found"):
        open_image(f"{basic_registry.host}/moat/test:1")


@pytest.mark.parametrize("form", ["auth", "fields", "url-key"])
def test_basic_auth_from_docker_config(
    basic_registry: Registry, pushed: Pushed, isolated_env: Path, form: str
) -> None:
    host = basic_registry.host
    entry: dict[str, str] = (
        {"auth": basic_auth(USER, PASSWORD)} if form != "fields" else {"username": USER, "password": PASSWORD}
    )
    key = f"http://{host}/v2/" if form == "url-key" else host
    write_docker_config(isolated_env, {"auths": {"other.example:5000": {"auth": "eDp5"}, key: entry}})
    _, opened = open_image(f"{host}/moat/test:1")
    try:
        assert walk(opened) == pushed.images.files["amd64"]
    finally:
        opened.close()


def test_docker_config_path_option_wins(basic_registry: Registry, tmp_path: Path, isolated_env: Path) -> None:
    write_docker_config(isolated_env, {"auths": {basic_registry.host: {"auth": basic_auth(USER, "wrong")}}})
    other = tmp_path / "elsewhere.json"
    other.write_text(json.dumps({"auths": {basic_registry.host: {"auth": basic_auth(USER, PASSWORD)}}}))
    _, opened = open_image(f"{basic_registry.host}/moat/test:1", docker_config=str(other))
    opened.close()
    with pytest.raises(SourceError, match="credentials rejected"):
        open_image(f"{basic_registry.host}/moat/test:1")


def _helper(bin_dir: Path, name: str, log: Path, script_body: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    helper = bin_dir / f"docker-credential-{name}"
    helper.write_text(
        f'#!/bin/sh\n[ "$1" = get ] || exit 3\nread -r server\necho "$server" >> "{log}"\n{script_body}\n'
    )
    helper.chmod(helper.stat().st_mode | stat.S_IXUSR)


@pytest.mark.parametrize("where", ["credHelpers", "credsStore"])
def test_basic_auth_from_credential_helper(
    basic_registry: Registry,
    pushed: Pushed,
    tmp_path: Path,
    isolated_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    where: str,
) -> None:
    log = tmp_path / "helper.log"
    answer = json.dumps({"ServerURL": basic_registry.host, "Username": USER, "Secret": PASSWORD})
    _helper(tmp_path / "bin", "moattest", log, f"echo '{answer}'")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    config: dict[str, object] = (
        {"credHelpers": {basic_registry.host: "moattest"}}
        if where == "credHelpers"
        else {"credsStore": "moattest"}
    )
    write_docker_config(isolated_env, config)
    _, opened = open_image(f"{basic_registry.host}/moat/test:1")
    try:
        assert walk(opened) == pushed.images.files["amd64"]
    finally:
        opened.close()
    assert log.read_text().split() == [basic_registry.host]


def test_credential_helper_without_entry_and_missing_helper(
    basic_registry: Registry, tmp_path: Path, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "helper.log"
    _helper(tmp_path / "bin", "empty", log, 'echo "credentials not found in native keychain"; exit 1')
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    write_docker_config(isolated_env, {"credsStore": "empty"})
    with pytest.raises(SourceError, match="no credentials found"):
        open_image(f"{basic_registry.host}/moat/test:1")
    assert log.read_text().split() == [basic_registry.host]
    write_docker_config(isolated_env, {"credsStore": "moat-absent-helper"})
    with pytest.raises(SourceError, match=r"docker-credential-moat-absent-helper .* is not on PATH"):
        open_image(f"{basic_registry.host}/moat/test:1")


def test_public_registry_never_reads_docker_config(pushed: Pushed, isolated_env: Path) -> None:
    """Credentials are looked up only on a challenge: a broken config does not stop anonymous pulls."""
    (isolated_env / "config.json").write_text("{not json")
    _, opened = open_image(f"{pushed.host}/moat/test:1")
    opened.close()


def test_broken_docker_config_is_one_line_error(basic_registry: Registry, isolated_env: Path) -> None:
    (isolated_env / "config.json").write_text("{not json")
    with pytest.raises(SourceError, match="docker config is not valid JSON") as caught:
        open_image(f"{basic_registry.host}/moat/test:1")
    assert "\n" not in str(caught.value)


# --------------------------------------------------------------------------- token auth


def test_token_auth_with_password(token_setup: TokenSetup, pushed: Pushed) -> None:
    token_setup.tokens.requests.clear()
    _, opened = open_image(f"{token_setup.registry.host}/moat/test:1", username=USER, password=PASSWORD)
    try:
        assert walk(opened) == pushed.images.files["amd64"]
        assert opened.artifact.digest == pushed.test_digest
    finally:
        opened.close()
    requests = token_setup.tokens.requests
    # One token for the repository scope serves the manifest, the config and every layer.
    assert [r["scopes"] for r in requests] == [["repository:moat/test:pull"]]
    assert requests[0]["user"] == USER and requests[0]["method"] == "GET"


def test_token_auth_index_with_password(token_setup: TokenSetup, pushed: Pushed) -> None:
    _, opened = open_image(
        f"{token_setup.registry.host}/moat/multi:1", username=USER, password=PASSWORD, platform="linux/arm64"
    )
    try:
        assert walk(opened) == pushed.images.files["arm64"]
    finally:
        opened.close()


def test_token_auth_anonymous_is_denied(token_setup: TokenSetup) -> None:
    with pytest.raises(SourceError, match=r"access to repository:moat/test:pull denied for anonymous access"):
        open_image(f"{token_setup.registry.host}/moat/test:1")


def test_token_auth_wrong_password(token_setup: TokenSetup) -> None:
    with pytest.raises(SourceError, match="token server rejected the credentials for user 'alice'"):
        open_image(f"{token_setup.registry.host}/moat/test:1", username=USER, password="nope")


def test_token_auth_identity_token_from_docker_config(
    token_setup: TokenSetup, pushed: Pushed, isolated_env: Path
) -> None:
    write_docker_config(
        isolated_env, {"auths": {token_setup.registry.host: {"identitytoken": REFRESH_TOKEN}}}
    )
    token_setup.tokens.requests.clear()
    _, opened = open_image(f"{token_setup.registry.host}/moat/test:1")
    try:
        assert walk(opened) == pushed.images.files["amd64"]
    finally:
        opened.close()
    assert [(r["method"], r["user"]) for r in token_setup.tokens.requests] == [("POST", USER)]


# --------------------------------------------------------------------------- hostile servers


@pytest.fixture()
def content(pushed: Pushed) -> tuple[bytes, dict[str, bytes]]:
    """The amd64 image's manifest and blobs, for tiny servers to serve (or twist)."""
    return layout_image(pushed.images.layout, "amd64")


@pytest.fixture()
def tiny() -> Iterator[list[TinyRegistry | TinyServer]]:
    servers: list[TinyRegistry | TinyServer] = []
    yield servers
    for server in servers:
        server.stop()


def serve(
    tiny: list[TinyRegistry | TinyServer],
    manifest: bytes,
    blobs: dict[str, bytes],
    hook: Callable[[BaseHTTPRequestHandler, str], bool] | None = None,
    media_type: str = OCI_MANIFEST,
) -> TinyRegistry:
    registry = TinyRegistry(
        {"1": (media_type, manifest), sha256(manifest): (media_type, manifest)}, blobs, hook
    )
    tiny.append(registry)
    return registry


def test_tiny_registry_serves_the_real_image(tiny: list, content: tuple[bytes, dict[str, bytes]]) -> None:
    """The baseline the hostile variants twist: served faithfully, the image opens and walks."""
    manifest, blobs = content
    registry = serve(tiny, manifest, blobs)
    _, opened = open_image(f"{registry.host}/moat/test:1")
    try:
        assert len(walk(opened)) == 4
    finally:
        opened.close()


def test_layer_digest_lie_fails_the_walk(tiny: list, content: tuple[bytes, dict[str, bytes]]) -> None:
    manifest, blobs = content
    document = json.loads(manifest)
    layer = document["layers"][1]
    real = blobs[layer["digest"]]
    liar = sha256(b"some other bytes")
    layer["digest"] = liar
    twisted = json.dumps(document).encode()
    registry = serve(tiny, twisted, {**blobs, liar: real})
    _, opened = open_image(f"{registry.host}/moat/test:1")
    try:
        list(opened.layers[0].reader().entries())
        with pytest.raises(LayerError, match=f"blob digest is {sha256(real)}, manifest says {liar}"):
            list(opened.layers[1].reader().entries())
    finally:
        opened.close()


def test_config_digest_lie(tiny: list, content: tuple[bytes, dict[str, bytes]]) -> None:
    manifest, blobs = content
    config_digest = json.loads(manifest)["config"]["digest"]
    registry = serve(
        tiny, manifest, {**blobs, config_digest: blobs[config_digest].replace(b"amd64", b"arm64")}
    )
    with pytest.raises(SourceError, match="does not match"):
        open_image(f"{registry.host}/moat/test:1")


@pytest.mark.parametrize(
    ("body", "media_type", "message"),
    [
        (b'{"schemaVersion": 2, "config": {"mediaType": "app', OCI_MANIFEST, "not valid JSON"),
        (b"<html><body>Welcome to nginx!</body></html>", "text/html", "HTML page, not a manifest"),
        (b"[1, 2, 3]", OCI_MANIFEST, "not a JSON object"),
        (b'{"schemaVersion": 1, "fsLayers": []}', "application/json", "schema 1"),
        (b'{"schemaVersion": 2, "layers": []}', OCI_MANIFEST, "not an image manifest"),
        (b'{"schemaVersion": 2, "manifests": "nope"}', OCI_INDEX, "no manifests list"),
    ],
)
def test_garbage_manifests(tiny: list, body: bytes, media_type: str, message: str) -> None:
    registry = serve(tiny, body, {}, media_type=media_type)
    with pytest.raises(SourceError, match=message) as caught:
        open_image(f"{registry.host}/moat/test:1")
    assert "\n" not in str(caught.value)


def test_wrong_content_length(tiny: list, content: tuple[bytes, dict[str, bytes]]) -> None:
    manifest, blobs = content

    def short(handler: BaseHTTPRequestHandler, path: str) -> bool:
        if "/manifests/" not in path:
            return False
        handler.send_response(200)
        handler.send_header("Content-Type", OCI_MANIFEST)
        handler.send_header("Content-Length", str(len(manifest) + 500))
        handler.end_headers()
        handler.wfile.write(manifest)
        handler.close_connection = True
        return True

    registry = serve(tiny, manifest, blobs, short)
    with pytest.raises(
        SourceError,
        match=f"peer closed connection without sending complete message body.*after {MAX_TRIES} tries",
    ):
        open_image(f"{registry.host}/moat/test:1")
    assert len(registry.server.paths("/v2/moat/test/manifests/")) == MAX_TRIES


def test_layer_longer_than_manifest_says(tiny: list, content: tuple[bytes, dict[str, bytes]]) -> None:
    manifest, blobs = content
    layer_digest = json.loads(manifest)["layers"][0]["digest"]
    registry = serve(tiny, manifest, {**blobs, layer_digest: blobs[layer_digest] + b"\0" * 4096})
    _, opened = open_image(f"{registry.host}/moat/test:1")
    try:
        with pytest.raises(LayerError, match=r"registry sends .* bytes, the manifest says"):
            list(opened.layers[0].reader().entries())
    finally:
        opened.close()


def test_endless_layer_is_cut_off(tiny: list, content: tuple[bytes, dict[str, bytes]]) -> None:
    """Without a Content-Length the size bound is enforced while streaming."""
    manifest, blobs = content
    layer_digest = json.loads(manifest)["layers"][0]["digest"]

    def endless(handler: BaseHTTPRequestHandler, path: str) -> bool:
        if path.endswith(layer_digest):
            handler.send_response(200)
            handler.send_header("Connection", "close")
            handler.end_headers()
            handler.wfile.write(blobs[layer_digest] + b"\0" * (1024 * 1024))
            handler.close_connection = True
            return True
        return False

    registry = serve(tiny, manifest, blobs, endless)
    _, opened = open_image(f"{registry.host}/moat/test:1")
    try:
        size = len(blobs[layer_digest])
        with pytest.raises(LayerError, match=f"blob is larger than the {size} bytes the manifest says"):
            list(opened.layers[0].reader().entries())
    finally:
        opened.close()


def test_server_error_then_success_is_retried(tiny: list, content: tuple[bytes, dict[str, bytes]]) -> None:
    manifest, blobs = content
    failed: set[str] = set()

    def flaky(handler: BaseHTTPRequestHandler, path: str) -> bool:
        if path != "/v2/" and path not in failed:
            failed.add(path)
            reply(handler, 500, b'{"errors": [{"code": "UNKNOWN", "message": "try again"}]}')
            return True
        return False

    registry = serve(tiny, manifest, blobs, flaky)
    _, opened = open_image(f"{registry.host}/moat/test:1")
    try:
        assert len(walk(opened)) == 4
    finally:
        opened.close()
    # Manifest, config and both layers each failed once and then succeeded.
    assert len(failed) == 4
    assert len(registry.server.paths("/v2/moat/test/manifests/1")) == 2


def test_rate_limit_honours_retry_after(tiny: list, content: tuple[bytes, dict[str, bytes]]) -> None:
    manifest, blobs = content
    limited: list[str] = []

    def rate_limited(handler: BaseHTTPRequestHandler, path: str) -> bool:
        if "/manifests/" in path and not limited:
            limited.append(path)
            reply(handler, 429, b'{"errors": [{"code": "TOOMANYREQUESTS"}]}', headers={"Retry-After": "1"})
            return True
        return False

    registry = serve(tiny, manifest, blobs, rate_limited)
    _, opened = open_image(f"{registry.host}/moat/test:1")
    opened.close()
    assert registry.server.paths("/v2/moat/test/manifests/") == ["/v2/moat/test/manifests/1"] * 2


def test_persistent_server_error_gives_up(tiny: list, content: tuple[bytes, dict[str, bytes]]) -> None:
    manifest, blobs = content

    def down(handler: BaseHTTPRequestHandler, path: str) -> bool:
        if "/manifests/" in path:
            body = b'{"errors": [{"code": "UNAVAILABLE", "message": "down for maintenance"}]}'
            reply(handler, 503, body, headers={"Retry-After": "0"})
            return True
        return False

    registry = serve(tiny, manifest, blobs, down)
    with pytest.raises(SourceError, match="registry answered HTTP 503: UNAVAILABLE down for maintenance"):
        open_image(f"{registry.host}/moat/test:1")
    assert len(registry.server.paths("/v2/moat/test/manifests/")) == MAX_TRIES


def test_hanging_registry_times_out(tiny: list, content: tuple[bytes, dict[str, bytes]]) -> None:
    manifest, blobs = content
    registry: TinyRegistry | None = None

    def hang(handler: BaseHTTPRequestHandler, path: str) -> bool:
        if "/manifests/" in path:
            assert registry is not None
            registry.server.release.wait(60)
            return True
        return False

    registry = serve(tiny, manifest, blobs, hang)
    with pytest.raises(SourceError, match=r"sent nothing for 2s .*MOAT_REGISTRY_TIMEOUT"):
        open_image(f"{registry.host}/moat/test:1")
    # Silence is not retried: one try, one error.
    assert len(registry.server.paths("/v2/moat/test/manifests/")) == 1


def test_layer_download_stalls(tiny: list, content: tuple[bytes, dict[str, bytes]]) -> None:
    manifest, blobs = content
    layer_digest = json.loads(manifest)["layers"][0]["digest"]
    registry: TinyRegistry | None = None

    def stall(handler: BaseHTTPRequestHandler, path: str) -> bool:
        if path.endswith(layer_digest):
            assert registry is not None
            data = blobs[layer_digest]
            handler.send_response(200)
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data[: len(data) // 2])
            handler.wfile.flush()
            registry.server.release.wait(60)
            return True
        return False

    registry = serve(tiny, manifest, blobs, stall)
    _, opened = open_image(f"{registry.host}/moat/test:1")
    try:
        with pytest.raises(LayerError, match="stopped sending for 2s"):
            list(opened.layers[0].reader().entries())
    finally:
        opened.close()


def test_oversized_manifest(tiny: list) -> None:
    huge = b'{"schemaVersion": 2, "pad": "' + b"x" * (5 * 1024 * 1024) + b'"}'
    registry = serve(tiny, huge, {})
    with pytest.raises(SourceError, match="larger than the 4194304"):
        open_image(f"{registry.host}/moat/test:1")


def test_digest_reference_must_match(tiny: list, content: tuple[bytes, dict[str, bytes]]) -> None:
    manifest, blobs = content
    wanted = sha256(b"the manifest I asked for")
    registry = serve(tiny, manifest, blobs)
    registry.manifests[wanted] = (OCI_MANIFEST, manifest)
    with pytest.raises(SourceError, match=f"digest {sha256(manifest)}, not the one requested"):
        open_image(f"{registry.host}/moat/test@{wanted}")


def test_stated_digest_must_match(tiny: list, content: tuple[bytes, dict[str, bytes]]) -> None:
    manifest, blobs = content

    def lying_header(handler: BaseHTTPRequestHandler, path: str) -> bool:
        if "/manifests/" in path:
            reply(handler, 200, manifest, OCI_MANIFEST, {"Docker-Content-Digest": sha256(b"other")})
            return True
        return False

    registry = serve(tiny, manifest, blobs, lying_header)
    with pytest.raises(SourceError, match="but the registry states"):
        open_image(f"{registry.host}/moat/test:1")


def test_not_a_registry(tiny: list) -> None:
    server = TinyServer(lambda handler: reply(handler, 404, b"<html>nothing here</html>", "text/html"))
    tiny.append(server)
    with pytest.raises(SourceError, match=r"not a registry \(GET /v2/ answered HTTP 404\)"):
        open_image(f"{server.host}/moat/test:1")


def test_redirect_to_other_host_drops_credentials(
    tiny: list, content: tuple[bytes, dict[str, bytes]]
) -> None:
    """Blobs redirected to storage elsewhere (S3 style) are fetched there without our Authorization."""
    manifest, blobs = content
    layers = {item["digest"] for item in json.loads(manifest)["layers"]}

    def storage(handler: BaseHTTPRequestHandler) -> None:
        digest = handler.path.rsplit("/", 1)[-1]
        reply(handler, 200, blobs[digest], "application/octet-stream")

    blob_host = TinyServer(storage)
    tiny.append(blob_host)
    expected = "Basic " + basic_auth(USER, PASSWORD)

    def front(handler: BaseHTTPRequestHandler, path: str) -> bool:
        if handler.headers.get("Authorization") != expected:
            reply(handler, 401, b"{}", headers={"WWW-Authenticate": 'Basic realm="tiny"'})
            return True
        _, kind, reference = split_api_path(path)
        if kind == "blobs" and reference in layers:
            handler.send_response(307)
            handler.send_header("Location", f"http://{blob_host.host}/storage/{reference}")
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return True
        return False

    registry = serve(tiny, manifest, blobs, front)
    _, opened = open_image(f"{registry.host}/moat/test:1", username=USER, password=PASSWORD)
    try:
        assert len(walk(opened)) == 4
    finally:
        opened.close()
    assert len(blob_host.seen) == 2
    assert all("Authorization" not in headers for _, _, headers in blob_host.seen)
    assert all(headers.get("Authorization") == expected for _, path, headers in registry.server.seen[1:])


# --------------------------------------------------------------------------- pieces without a server


def test_parse_challenges() -> None:
    header = (
        'Bearer realm="https://auth.example/token",service="registry.example",'
        'scope="repository:a/b:pull,push repository:c:pull", Basic realm="x\\"y"'
    )
    bearer, basic = parse_challenges(header)
    assert bearer.scheme == "bearer"
    assert bearer.params == {
        "realm": "https://auth.example/token",
        "service": "registry.example",
        "scope": "repository:a/b:pull,push repository:c:pull",
    }
    assert basic.scheme == "basic" and basic.params == {"realm": 'x"y'}
    assert parse_challenges("") == []


@pytest.mark.parametrize(
    ("key", "normalized"),
    [
        ("https://index.docker.io/v1/", "docker.io"),
        ("index.docker.io", "docker.io"),
        ("http://127.0.0.1:5000/v2/", "127.0.0.1:5000"),
        ("Registry.Example.com", "registry.example.com"),
    ],
)
def test_normalize_registry_key(key: str, normalized: str) -> None:
    assert normalize_registry_key(key) == normalized


def test_docker_hub_credentials_under_legacy_key(isolated_env: Path) -> None:
    write_docker_config(
        isolated_env, {"auths": {"https://index.docker.io/v1/": {"auth": basic_auth("bob", "pw")}}}
    )
    found = find_credentials("docker.io", None, None, None)
    assert found is not None and (found.username, found.password) == ("bob", "pw")
    assert "pw" not in repr(found)
    assert find_credentials("quay.io", None, None, None) is None


def test_credentials_options_must_come_in_pairs() -> None:
    with pytest.raises(SourceError, match="--username and --password must be given together"):
        find_credentials("quay.io", "bob", None, None)


def test_bad_auth_field(isolated_env: Path) -> None:
    write_docker_config(isolated_env, {"auths": {"quay.io": {"auth": "%%%"}}})
    with pytest.raises(SourceError, match="not base64"):
        find_credentials("quay.io", None, None, None)


def test_bad_timeout_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOAT_REGISTRY_TIMEOUT", "soon")
    with pytest.raises(SourceError, match="MOAT_REGISTRY_TIMEOUT"):
        open_image("127.0.0.1:1/moat/test:1")
