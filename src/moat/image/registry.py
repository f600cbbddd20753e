"""Images straight from a registry, over the OCI Distribution v2 API.

Nothing is pulled to disk: manifests and the config are small and read into memory (bounded), and
each layer is streamed from the HTTP response through the tar walker, which checks the blob digest
and the diff id as the bytes go by. Every reply is treated as hostile: sizes are capped, digests are
verified, a ``@sha256:`` reference must match the manifest that comes back, and any failure is one
line of :class:`~moat.errors.SourceError`.

Transport follows docker: HTTPS with certificate checks; for ``--insecure`` registries and for
loopback ones (``localhost``, ``127.0.0.0/8``, ``::1``) HTTPS without checks is tried first and
plain HTTP after it. Failed requests are retried a few times with exponential backoff on 429, 5xx
and dropped connections (``Retry-After`` is honoured, capped); a registry that goes silent is given
up on after ``MOAT_REGISTRY_TIMEOUT`` seconds (30 by default), without retrying.
"""

from __future__ import annotations

import email.utils
import functools
import hashlib
import io
import json
import os
import ssl
import time
from datetime import UTC, datetime
from typing import IO, Any, cast
from urllib.parse import urljoin, urlsplit

import httpx

from moat import __version__
from moat.errors import LayerError, SourceError
from moat.image.layers import TarLayerReader
from moat.image.manifest import (
    INDEX_TYPES,
    MANIFEST_TYPES,
    MAX_JSON_BYTES,
    Descriptor,
    build_artifact,
    describe_layers,
    parse_json,
    parse_platform,
    resolve_image,
    verify_blob,
)
from moat.image.reference import Reference, is_loopback, parse_reference
from moat.image.registry_auth import MAX_TOKEN_BYTES, Authenticator, one_line
from moat.image.source import ImageSource, OpenedImage, SourceOptions

MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
"""Distribution itself refuses manifests over 4 MiB; anything larger is not a real one."""
MAX_ERROR_BYTES = 64 * 1024
DEFAULT_TIMEOUT = 30.0
MAX_TRIES = 4
BACKOFF_START = 0.5
MAX_RETRY_AFTER = 20.0
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
CHUNK_BYTES = 256 * 1024


def registry_timeout() -> float:
    """Seconds a registry may stay silent (connect or read): ``$MOAT_REGISTRY_TIMEOUT`` or 30."""
    raw = os.environ.get("MOAT_REGISTRY_TIMEOUT", "").strip()
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 3600:
        raise SourceError(f"MOAT_REGISTRY_TIMEOUT={raw!r}: expected seconds between 0 and 3600")
    return value


class _NoConnection(Exception):
    """The HTTPS probe of an insecure registry failed to connect; plain HTTP is tried next."""


class RegistryClient:
    """HTTP to one registry: scheme choice, retries, timeouts, redirects and authentication."""

    def __init__(self, reference: Reference, options: SourceOptions) -> None:
        self.host = reference.api_host
        self.insecure = options.insecure or is_loopback(self.host)
        self.timeout = registry_timeout()
        self.base_url = ""
        self._http = httpx.Client(
            verify=not self.insecure,
            timeout=httpx.Timeout(self.timeout),
            follow_redirects=False,
            # Proxies from the environment make no sense for a registry on this machine.
            trust_env=not is_loopback(self.host),
            headers={"User-Agent": f"moat/{__version__}", "Accept-Encoding": "identity"},
        )
        self.auth = Authenticator(
            reference.registry,
            self._plain,
            username=options.username,
            password=options.password,
            docker_config=options.docker_config,
            insecure=self.insecure,
        )

    def close(self) -> None:
        self._http.close()

    # ------------------------------------------------------------------ public operations

    def ping(self) -> None:
        """``GET /v2/``: picks https or http, and learns the auth scheme from a 401."""
        schemes = ("https", "http") if self.insecure else ("https",)
        failures: list[str] = []
        for scheme in schemes:
            url = f"{scheme}://{self.host}/v2/"
            probing = scheme == "https" and self.insecure
            try:
                response, body, _ = self._follow("GET", url, {}, None, MAX_ERROR_BYTES, self.host, probing)
            except _NoConnection as exc:
                failures.append(f"https: {exc}")
                continue
            except SourceError as exc:
                if failures:
                    raise SourceError(f"{exc} (and {'; '.join(failures)})") from exc
                raise
            self.base_url = f"{scheme}://{self.host}"
            if response.status_code == 401:
                if self.auth.observe(response) is None:
                    raise SourceError(f"{self.host}: HTTP 401 without a Basic or Bearer challenge")
                return
            if response.status_code == 404:
                raise SourceError(f"{self.host}: not a registry (GET /v2/ answered HTTP 404)")
            if response.status_code != 200:
                raise SourceError(
                    f"{self.host}: GET /v2/ answered HTTP {response.status_code}{_detail(body)}"
                )
            return

    def manifest(
        self, repository: str, reference: str, scope: str, what: str
    ) -> tuple[bytes, str, httpx.Headers]:
        """A manifest's bytes (bounded), its media type from Content-Type, and the reply's headers."""
        path = f"/v2/{repository}/manifests/{reference}"
        response, body = self._authorized(path, scope, MANIFEST_ACCEPT, MAX_MANIFEST_BYTES, what)
        _check_status(response, body, what)
        media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type == "text/html" or body.lstrip()[:1] == b"<":
            raise SourceError(f"{what}: the registry answered with an HTML page, not a manifest")
        return body, media_type, response.headers

    def blob_bytes(self, repository: str, digest: str, scope: str, limit: int, what: str) -> bytes:
        """A small blob (the config) read into memory, at most ``limit`` bytes."""
        response, body = self._authorized(f"/v2/{repository}/blobs/{digest}", scope, "*/*", limit, what)
        _check_status(response, body, what)
        return body

    def open_blob(self, repository: str, descriptor: Descriptor, scope: str, what: str) -> BlobStream:
        """A layer blob as a stream; the caller's tar walk verifies its digest as it reads."""
        path = f"/v2/{repository}/blobs/{descriptor.digest}"
        response, body = self._authorized(path, scope, "*/*", None, what)
        _check_status(response, body, what)
        declared = _content_length(response)
        if declared is not None and descriptor.size is not None and declared != descriptor.size:
            response.close()
            raise LayerError(f"{what}: registry sends {declared} bytes, the manifest says {descriptor.size}")
        return BlobStream(response, descriptor.size, what, self.timeout)

    # ------------------------------------------------------------------ plumbing

    def _authorized(
        self, path: str, scope: str, accept: str, read_limit: int | None, what: str
    ) -> tuple[httpx.Response, bytes]:
        url = self.base_url + path
        for _ in range(4):
            headers = {"Accept": accept, **self.auth.authorization(scope)}
            response, body, final_url = self._follow("GET", url, headers, None, read_limit, what)
            if response.status_code != 401 or _origin(final_url) != _origin(url):
                return response, body
            response.close()
            self.auth.challenged(response, scope, headers)
        raise SourceError(f"{what}: still unauthorized after authenticating")

    def _plain(
        self, method: str, url: str, headers: dict[str, str], form: dict[str, str] | None
    ) -> tuple[httpx.Response, bytes]:
        """Unauthenticated request with a bounded body: what the token flow uses."""
        response, body, _ = self._follow(method, url, headers, form, MAX_TOKEN_BYTES, "token server")
        return response, body

    def _follow(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        form: dict[str, str] | None,
        read_limit: int | None,
        what: str,
        probing: bool = False,
    ) -> tuple[httpx.Response, bytes, str]:
        """Send, following redirects; credentials never travel to another origin.

        Bodies of non-200 replies are always read (bounded) so their error text can be shown."""
        origin = _origin(url)
        for _ in range(MAX_REDIRECTS + 1):
            response, body = self._send(method, url, headers, form, read_limit, what, probing)
            location = response.headers.get("location")
            if response.status_code not in REDIRECT_STATUSES or not location:
                return response, body, url
            response.close()
            target = urljoin(url, location)
            scheme = urlsplit(target).scheme
            if scheme not in ("http", "https"):
                raise SourceError(f"{what}: redirected to a non-HTTP URL")
            if scheme == "http" and urlsplit(url).scheme == "https" and not self.insecure:
                raise SourceError(
                    f"{what}: refusing a redirect from https to plain http ({one_line(target, 80)})"
                )
            if _origin(target) != origin:
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            if response.status_code == 303:
                method, form = "GET", None
            url = target
        raise SourceError(f"{what}: more than {MAX_REDIRECTS} redirects")

    def _send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        form: dict[str, str] | None,
        read_limit: int | None,
        what: str,
        probing: bool,
    ) -> tuple[httpx.Response, bytes]:
        """One request with retries. With ``read_limit`` the body is read here (so a cut-off body
        is retried too); without it the response is returned open for streaming."""
        delay = BACKOFF_START
        for attempt in range(1, MAX_TRIES + 1):
            response: httpx.Response | None = None
            try:
                request = self._http.build_request(method, url, headers=headers, data=form)
                response = self._http.send(request, stream=True)
                if response.status_code in RETRY_STATUSES and attempt < MAX_TRIES:
                    wait = _retry_after(response, delay)
                    response.close()
                    time.sleep(wait)
                    delay *= 2
                    continue
                if response.status_code != 200:
                    return response, _read_some(response)
                if read_limit is None:
                    return response, b""
                return response, _read_limited(response, read_limit, what)
            except httpx.TimeoutException as exc:
                _close(response)
                raise SourceError(
                    f"{what}: {self.host} sent nothing for {self.timeout:g}s "
                    "(timed out; see MOAT_REGISTRY_TIMEOUT)"
                ) from exc
            except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
                _close(response)
                raise SourceError(f"{what}: bad URL {one_line(url, 80)} ({exc})") from exc
            except httpx.TransportError as exc:
                _close(response)
                if probing and isinstance(exc, httpx.ConnectError):
                    raise _NoConnection(_describe(exc)) from exc
                tls = _ssl_error(exc)
                if isinstance(tls, ssl.SSLCertVerificationError):
                    raise SourceError(
                        f"{what}: TLS certificate of {urlsplit(url).netloc} not trusted "
                        f"({tls.verify_message}); "
                        "use --insecure or point SSL_CERT_FILE at its CA"
                    ) from exc
                if attempt == MAX_TRIES or tls is not None:
                    raise SourceError(f"{what}: {_describe(exc)} (after {attempt} tries)") from exc
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")


class BlobStream(io.RawIOBase):
    """A layer download as a file: reads the response as it arrives, never holding the whole blob.

    It also enforces the size the manifest gives, so a registry cannot feed an endless blob.
    """

    def __init__(
        self, response: httpx.Response, expected_size: int | None, what: str, timeout: float
    ) -> None:
        super().__init__()
        self._response = response
        self._chunks = response.iter_raw(CHUNK_BYTES)
        self._pending = memoryview(b"")
        self._count = 0
        self._expected = expected_size
        self._what = what
        self._timeout = timeout

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self._pending:
            chunk = self._next_chunk()
            if chunk is None:
                return 0
            self._pending = memoryview(chunk)
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def _next_chunk(self) -> bytes | None:
        while True:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                if self._expected is not None and self._count != self._expected:
                    raise LayerError(
                        f"{self._what}: download ended after {self._count} of {self._expected} bytes"
                    ) from None
                return None
            except httpx.TimeoutException as exc:
                raise LayerError(
                    f"{self._what}: the registry stopped sending for {self._timeout:g}s"
                ) from exc
            except httpx.HTTPError as exc:
                raise LayerError(f"{self._what}: download failed ({_describe(exc)})") from exc
            if not chunk:
                continue
            self._count += len(chunk)
            if self._expected is not None and self._count > self._expected:
                raise LayerError(
                    f"{self._what}: blob is larger than the {self._expected} bytes the manifest says"
                )
            return chunk

    def close(self) -> None:
        if not self.closed:
            self._response.close()
        super().close()


class RegistrySource(ImageSource):
    """``registry:HOST/REPO[:TAG|@DIGEST]``: one image (one platform of an index) from a registry."""

    scheme = "registry"

    def __init__(self, ref: str, options: SourceOptions) -> None:
        self.text = ref.strip()
        self.reference = parse_reference(ref)
        self.options = options
        self.endpoint: str | None = None
        """``https://host`` or ``http://host`` once :meth:`open` has reached the registry."""

    def open(self) -> OpenedImage:
        platform = parse_platform(self.options.platform)
        client = RegistryClient(self.reference, self.options)
        try:
            client.ping()
            self.endpoint = client.base_url
            return self._open(client, platform)
        except BaseException:
            client.close()
            raise

    def _open(self, client: RegistryClient, platform: dict[str, str] | None) -> OpenedImage:
        ref = self.reference
        where = self.text
        scope = f"repository:{ref.repository}:pull"
        body, media_type, headers = client.manifest(ref.repository, ref.manifest_ref, scope, where)
        top_digest = _manifest_digest(body, ref, headers, where)
        document = parse_json(body, f"{where}: manifest")
        if not isinstance(document, dict):
            raise SourceError(f"{where}: manifest is not a JSON object")
        media_type = str(document.get("mediaType") or media_type)
        top = Descriptor(media_type=media_type, digest=top_digest, size=len(body), annotations={})

        def fetch(descriptor: Descriptor) -> bytes:
            what = f"{where}: {descriptor.digest[:19]}"
            if descriptor.media_type in MANIFEST_TYPES or descriptor.media_type in INDEX_TYPES:
                data, _, _ = client.manifest(ref.repository, descriptor.digest, scope, what)
            else:
                data = client.blob_bytes(ref.repository, descriptor.digest, scope, MAX_JSON_BYTES, what)
            verify_blob(data, descriptor.digest, what)
            if descriptor.size is not None and len(data) != descriptor.size:
                raise SourceError(f"{what}: {len(data)} bytes, the descriptor says {descriptor.size}")
            return data

        resolved = resolve_image(top, fetch, platform, where, top_document=document)
        if platform and resolved.manifest_digest == top_digest:
            _check_platform(resolved.config, platform, where)
        layers, infos = describe_layers(
            resolved,
            where,
            lambda descriptor, diff_id: functools.partial(
                _layer_reader, client, ref.repository, scope, descriptor, diff_id
            ),
        )
        familiar = ref.familiar_repository
        artifact = build_artifact(
            self.text,
            resolved.config,
            infos,
            resolved.manifest_digest,
            repo_tags=[f"{familiar}:{ref.tag}"] if ref.tag else [],
            repo_digests=[f"{familiar}@{top_digest}"],
        )
        return OpenedImage(artifact=artifact, layers=layers, cleanup=[client.close])


def _layer_reader(
    client: RegistryClient, repository: str, scope: str, descriptor: Descriptor, diff_id: str | None
) -> TarLayerReader:
    name = descriptor.digest[:19]

    def open_blob() -> IO[bytes]:
        return cast(IO[bytes], client.open_blob(repository, descriptor, scope, f"layer {name}"))

    return TarLayerReader(
        open_blob,
        name=name,
        expected_digest=descriptor.digest,
        expected_diff_id=diff_id,
    )


def _manifest_digest(body: bytes, ref: Reference, headers: httpx.Headers, where: str) -> str:
    """The digest of the bytes received; it must equal the one asked for, and the one the registry states."""
    if ref.digest:
        algorithm = ref.digest.split(":", 1)[0]
        actual = f"{algorithm}:{hashlib.new(algorithm, body).hexdigest()}"
        if actual != ref.digest:
            raise SourceError(
                f"{where}: the registry sent a manifest with digest {actual}, not the one requested"
            )
        return actual
    actual = "sha256:" + hashlib.sha256(body).hexdigest()
    stated = headers.get("docker-content-digest", "").strip()
    if stated.startswith("sha256:") and stated != actual:
        raise SourceError(
            f"{where}: manifest digest is {actual} but the registry states {one_line(stated, 80)}"
        )
    return actual


def _check_platform(config: dict[str, Any], platform: dict[str, str], where: str) -> None:
    """A single-platform image asked for with --platform must be that platform, as docker insists."""
    have_os, have_arch = config.get("os"), config.get("architecture")
    if not have_os or not have_arch:
        return
    if have_os != platform["os"] or have_arch != platform["architecture"]:
        asked = "/".join(platform.values())
        raise SourceError(f"{where}: image is {have_os}/{have_arch}, not {asked} (no index to choose from)")


def _check_status(response: httpx.Response, body: bytes, what: str) -> None:
    code = response.status_code
    if code == 200:
        return
    if code == 404:
        raise SourceError(f"{what}: not found (HTTP 404{_detail(body)})")
    if code in (401, 403):
        raise SourceError(f"{what}: access denied (HTTP {code}{_detail(body)})")
    raise SourceError(f"{what}: registry answered HTTP {code}{_detail(body)}")


def _detail(body: bytes) -> str:
    """The registry's own error code and message, when the body carries the v2 error form."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return ""
    errors = data.get("errors") if isinstance(data, dict) else None
    if not isinstance(errors, list) or not errors or not isinstance(errors[0], dict):
        return ""
    first = errors[0]
    text = " ".join(str(first.get(key)) for key in ("code", "message") if first.get(key))
    return f": {one_line(text, 120)}" if text else ""


def _read_limited(response: httpx.Response, limit: int, what: str) -> bytes:
    declared = _content_length(response)
    if declared is not None and declared > limit:
        response.close()
        raise SourceError(f"{what}: reply of {declared} bytes is larger than the {limit} allowed")
    chunks: list[bytes] = []
    total = 0
    try:
        for chunk in response.iter_raw(CHUNK_BYTES):
            total += len(chunk)
            if total > limit:
                raise SourceError(f"{what}: reply is larger than the {limit} bytes allowed")
            chunks.append(chunk)
    finally:
        response.close()
    return b"".join(chunks)


def _read_some(response: httpx.Response) -> bytes:
    """Up to MAX_ERROR_BYTES of an error reply, for its message; errors reading it are ignored."""
    data = b""
    try:
        for chunk in response.iter_raw(CHUNK_BYTES):
            data += chunk
            if len(data) >= MAX_ERROR_BYTES:
                break
    except httpx.HTTPError:
        pass
    finally:
        response.close()
    return data[:MAX_ERROR_BYTES]


def _content_length(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length", "")
    return int(value) if value.isdigit() else None


def _retry_after(response: httpx.Response, fallback: float) -> float:
    """Seconds to wait before the next try: the server's ``Retry-After`` (capped), else the backoff."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return fallback
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return fallback
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, min((when - datetime.now(UTC)).total_seconds(), MAX_RETRY_AFTER))


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc.lower()


def _ssl_error(exc: BaseException) -> ssl.SSLError | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _describe(exc: BaseException) -> str:
    text = one_line(str(exc), 160)
    return text or type(exc).__name__


def _close(response: httpx.Response | None) -> None:
    if response is not None:
        response.close()
