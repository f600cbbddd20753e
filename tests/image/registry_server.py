"""Real registries and tiny hostile servers on 127.0.0.1, for the registry source's tests.

The registry is Debian's ``docker-registry`` (distribution 2.8), the one most private registries
are built on; images are built with ``umoci`` and pushed with ``skopeo``, so the bytes under test
are what real tools produce. Everything lives under the test's tmp dir: skopeo runs in a user
namespace (``unshare -U``) so that, no longer root, it keeps its blob-info cache under our $HOME
instead of /var/lib/containers.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import os
import secrets
import socket
import subprocess
import tarfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

LOOPBACK = "127.0.0.1"
SERVICE = "moat-test-registry"
ISSUER = "moat-test-issuer"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
REF_NAME = "org.opencontainers.image.ref.name"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
    """Run a tool, failing the test with its stderr when it fails."""
    result = subprocess.run(args, capture_output=True, check=False, **kwargs)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {result.stderr.decode(errors='replace')[-2000:]}")
    return result


# --------------------------------------------------------------------------- certificates, htpasswd


def self_signed_cert(workdir: Path, name: str) -> tuple[Path, Path]:
    """An RSA 2048 self-signed certificate valid for 127.0.0.1 (serves TLS and signs tokens)."""
    cert, key = workdir / f"{name}.crt", workdir / f"{name}.key"
    run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", f"/CN={name}", "-addext", f"subjectAltName=IP:{LOOPBACK}",
            "-keyout", str(key), "-out", str(cert),
        ]
    )  # fmt: skip
    return cert, key


def htpasswd_file(path: Path, users: dict[str, str]) -> Path:
    lines = [
        run(["htpasswd", "-Bbn", user, password]).stdout.decode().strip() for user, password in users.items()
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


# --------------------------------------------------------------------------- docker-registry


@dataclass
class Registry:
    host: str
    """``127.0.0.1:PORT``"""
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_registry(
    workdir: Path,
    storage: Path,
    *,
    htpasswd: Path | None = None,
    token: TokenServer | None = None,
    tls: tuple[Path, Path] | None = None,
    readonly: bool = False,
) -> Registry:
    """``docker-registry serve`` on a free loopback port, storing blobs under ``storage``."""
    workdir.mkdir(parents=True, exist_ok=True)
    for _ in range(5):
        port = free_port()
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(storage)},
                "maintenance": {"uploadpurging": {"enabled": False}, "readonly": {"enabled": readonly}},
            },
            "http": {"addr": f"{LOOPBACK}:{port}", "secret": secrets.token_hex(16)},
        }
        if tls:
            config["http"]["tls"] = {"certificate": str(tls[0]), "key": str(tls[1])}
        if htpasswd:
            config["auth"] = {"htpasswd": {"realm": "moat-test", "path": str(htpasswd)}}
        if token:
            config["auth"] = {
                "token": {
                    "realm": token.realm,
                    "service": SERVICE,
                    "issuer": ISSUER,
                    "rootcertbundle": str(token.cert),
                }
            }
        config_path = workdir / "config.yml"
        config_path.write_text(json.dumps(config, indent=2))  # JSON is YAML
        log = workdir / "registry.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                ["docker-registry", "serve", str(config_path)],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=workdir,
            )
        registry = Registry(f"{LOOPBACK}:{port}", process, log)
        scheme = "https" if tls else "http"
        if _wait_until_up(f"{scheme}://{registry.host}/v2/", process):
            return registry
        registry.stop()
        if b"address already in use" not in log.read_bytes():
            break
    raise RuntimeError(f"docker-registry did not start: {log.read_text(errors='replace')[-2000:]}")


def _wait_until_up(url: str, process: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            httpx.get(url, verify=False, timeout=2, trust_env=False)
            return True
        except httpx.HTTPError:
            time.sleep(0.1)
    return False


# --------------------------------------------------------------------------- images


@dataclass
class BuiltImages:
    """An OCI layout holding ``amd64`` and ``arm64`` images and a ``multi`` index of both."""

    layout: Path
    files: dict[str, set[str]]
    """Regular files each platform's image holds (paths relative to the root)."""


def _layer_tar(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if name.startswith("usr/bin/") else 0o644
            info.mtime = 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return path


def build_images(workdir: Path) -> BuiltImages:
    """Two small real images made by umoci (two layers each), and an index listing both."""
    workdir.mkdir(parents=True, exist_ok=True)
    layout = workdir / "oci"
    run(["umoci", "init", "--layout", str(layout)])
    base = _layer_tar(
        workdir / "base.tar",
        {"etc/os-release": b"ID=moat\nVERSION_ID=1\n", "usr/bin/hello": b"#!/bin/sh\necho hello\n"},
    )
    files: dict[str, set[str]] = {}
    for arch in ("amd64", "arm64"):
        extra = {f"opt/{arch}/README": f"built for {arch}\n".encode(), "etc/arch": arch.encode() + b"\n"}
        top = _layer_tar(workdir / f"{arch}.tar", extra)
        image = f"{layout}:{arch}"
        run(["umoci", "new", "--image", image])
        run(["umoci", "raw", "add-layer", "--image", image, str(base)])
        run(["umoci", "raw", "add-layer", "--image", image, str(top)])
        run(
            [
                "umoci", "config", "--image", image, "--os", "linux", "--architecture", arch,
                "--config.cmd", "/usr/bin/hello", "--config.env", f"MOAT_ARCH={arch}",
                "--config.label", "org.example.test=moat",
            ]
        )  # fmt: skip
        files[arch] = {"etc/os-release", "usr/bin/hello", *extra}
    _add_index(layout, "multi", ["amd64", "arm64"])
    return BuiltImages(layout, files)


def _add_index(layout: Path, tag: str, members: list[str]) -> None:
    """Write by hand an OCI index over tagged manifests and tag it, as ``docker buildx`` would push."""
    index_path = layout / "index.json"
    index = json.loads(index_path.read_text())
    entries = []
    for descriptor in index["manifests"]:
        name = descriptor.get("annotations", {}).get(REF_NAME)
        if name in members:
            entries.append(
                {
                    "mediaType": descriptor["mediaType"],
                    "digest": descriptor["digest"],
                    "size": descriptor["size"],
                    "platform": {"os": "linux", "architecture": name},
                }
            )
    nested = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()
    digest = hashlib.sha256(nested).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(nested)
    index["manifests"].append(
        {
            "mediaType": OCI_INDEX,
            "digest": f"sha256:{digest}",
            "size": len(nested),
            "annotations": {REF_NAME: tag},
        }
    )
    index_path.write_text(json.dumps(index))


def push(
    workdir: Path,
    layout: Path,
    tag: str,
    destination: str,
    *,
    all_images: bool = False,
    docker_format: bool = False,
) -> str:
    """``skopeo copy`` a layout tag to ``docker://destination``; returns the pushed manifest digest."""
    home = workdir / "skopeo-home"
    home.mkdir(parents=True, exist_ok=True)
    policy = workdir / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    digest_file = workdir / f"digest-{secrets.token_hex(4)}"
    args = ["unshare", "-U", "skopeo", "--policy", str(policy), "copy", "--dest-tls-verify=false"]
    args += ["--digestfile", str(digest_file)]
    if all_images:
        args.append("--all")
    if docker_format:
        args += ["--format", "v2s2"]
    args += [f"oci:{layout}:{tag}", f"docker://{destination}"]
    env = {**os.environ, "HOME": str(home), "XDG_DATA_HOME": str(home), "XDG_CONFIG_HOME": str(home)}
    env["TMPDIR"] = str(home)
    run(args, env=env)
    return digest_file.read_text().strip()


def layout_image(layout: Path, tag: str) -> tuple[bytes, dict[str, bytes]]:
    """A tagged manifest's bytes and every blob it names (config and layers), from the layout."""
    index = json.loads((layout / "index.json").read_text())
    descriptor = next(d for d in index["manifests"] if d.get("annotations", {}).get(REF_NAME) == tag)

    def blob(digest: str) -> bytes:
        return (layout / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()

    manifest = blob(descriptor["digest"])
    document = json.loads(manifest)
    blobs = {item["digest"]: blob(item["digest"]) for item in [document["config"], *document["layers"]]}
    return manifest, blobs


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- token server


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class TokenServer:
    """A docker token server of our own: Basic or refresh-token login in, RS256 JWT out.

    The JWT carries the signing certificate in ``x5c``; the registry trusts it through
    ``rootcertbundle``. Signing is done by the openssl CLI, so the tests need no crypto library.
    """

    def __init__(
        self, workdir: Path, users: dict[str, str], refresh_tokens: dict[str, str] | None = None
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.cert, self.key = self_signed_cert(workdir, "token-signer")
        pem = self.cert.read_text()
        body = pem.split("-----BEGIN CERTIFICATE-----")[1].split("-----END CERTIFICATE-----")[0]
        self._x5c = "".join(body.split())
        self.users = users
        self.refresh_tokens = refresh_tokens or {}
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.server = TinyServer(self._handle)
        self.realm = f"http://{self.server.host}/token"

    def stop(self) -> None:
        self.server.stop()

    def sign(self, subject: str, access: list[dict[str, Any]], lifetime: int = 300) -> str:
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self._x5c]}
        claims = {
            "iss": ISSUER,
            "sub": subject,
            "aud": SERVICE,
            "exp": now + lifetime,
            "nbf": now - 30,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        signing_input = _b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(claims).encode())
        signature = run(
            ["openssl", "dgst", "-sha256", "-sign", str(self.key)], input=signing_input.encode()
        ).stdout
        return signing_input + "." + _b64url(signature)

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        if parts.path != "/token":
            handler.send_response(404)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        query = parse_qs(parts.query)
        user: str | None = None
        refused = False
        if handler.command == "POST":
            length = int(handler.headers.get("Content-Length") or 0)
            form = parse_qs(handler.rfile.read(length).decode())
            query = {**query, **form}
            if form.get("grant_type") == ["refresh_token"]:
                user = self.refresh_tokens.get((form.get("refresh_token") or [""])[0])
                refused = user is None
        authorization = handler.headers.get("Authorization", "")
        if authorization.startswith("Basic "):
            name, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
            if self.users.get(name) == password:
                user = name
            else:
                refused = True
        scopes = [s for value in query.get("scope", []) for s in value.split()]
        with self._lock:
            self.requests.append(
                {"method": handler.command, "user": user, "scopes": scopes, "basic": bool(authorization)}
            )
        if refused:
            reply(handler, 401, b'{"details":"bad credentials"}', "application/json")
            return
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            if user and kind == "repository":
                access.append({"type": kind, "name": name, "actions": actions.split(",")})
        token = self.sign(user or "", access)
        answer = {"token": token, "access_token": token, "expires_in": 300}
        reply(handler, 200, json.dumps(answer).encode(), "application/json")


# --------------------------------------------------------------------------- tiny servers


def reply(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: bytes,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body)


class TinyServer:
    """``http.server`` in a thread on a free loopback port, every request handed to ``handle``.

    ``release`` is set on stop so a handler that hangs on purpose lets go of its thread.
    """

    def __init__(self, handle: Callable[[BaseHTTPRequestHandler], None]) -> None:
        self.release = threading.Event()
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                outer.seen.append((self.command, self.path, dict(self.headers.items())))
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    handle(self)

            do_GET = do_POST = do_HEAD = do_PUT = _any

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self._server.daemon_threads = True
        self.host = f"{LOOPBACK}:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def paths(self, prefix: str = "") -> list[str]:
        return [path for _, path, _ in self.seen if path.startswith(prefix)]

    def stop(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()


@dataclass
class TinyRegistry:
    """A minimal read-only v2 registry over in-memory content, with a hook to misbehave.

    ``hook(handler, path)`` runs first for every request; it returns True when it answered.
    """

    manifests: dict[str, tuple[str, bytes]]
    """tag or digest → (media type, bytes)"""
    blobs: dict[str, bytes]
    hook: Callable[[BaseHTTPRequestHandler, str], bool] | None = None
    server: TinyServer = field(init=False)

    def __post_init__(self) -> None:
        self.server = TinyServer(self._handle)

    @property
    def host(self) -> str:
        return self.server.host

    def stop(self) -> None:
        self.server.stop()

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        path = urlsplit(handler.path).path
        if self.hook and self.hook(handler, path):
            return
        if path == "/v2/":
            reply(handler, 200, b"{}")
            return
        _, kind, reference = split_api_path(path)
        if kind == "manifests" and reference in self.manifests:
            media_type, body = self.manifests[reference]
            reply(handler, 200, body, media_type, {"Docker-Content-Digest": sha256(body)})
            return
        if kind == "blobs" and reference in self.blobs:
            reply(handler, 200, self.blobs[reference], "application/octet-stream")
            return
        error = {"errors": [{"code": f"{kind.upper()}_UNKNOWN", "message": f"{kind} unknown"}]}
        reply(handler, 404, json.dumps(error).encode())


def split_api_path(path: str) -> tuple[str, str, str]:
    """``/v2/NAME/manifests/REF`` → (NAME, manifests, REF)."""
    inner = path.removeprefix("/v2/")
    for kind in ("manifests", "blobs"):
        marker = f"/{kind}/"
        if marker in inner:
            repository, _, reference = inner.rpartition(marker)
            return repository, kind, reference
    return inner, "", ""
