"""``docker:NAME``: an image held by a running Docker-compatible engine (Docker, podman).

The engine's ``GET /images/{name}/get`` streams the image as a ``docker save`` archive; it is
written to Moat's scratch directory and read as a docker-archive, so the engine path shares every
check of the archive path. The socket comes from --docker-host, ``DOCKER_HOST`` (unix:// only:
Moat does not talk to remote engines over TCP without TLS), or /var/run/docker.sock.
"""

from __future__ import annotations

import os
import tempfile
import urllib.parse

import httpx

from moat.errors import SourceError
from moat.image.archive import DockerArchiveSource
from moat.image.source import ImageSource, OpenedImage, SourceOptions

DEFAULT_SOCKET = "/var/run/docker.sock"
MAX_IMAGE_BYTES = 64 * 1024**3


def engine_socket(options: SourceOptions) -> str:
    host = options.docker_host or os.environ.get("DOCKER_HOST") or f"unix://{DEFAULT_SOCKET}"
    if host.startswith("unix://"):
        return host[len("unix://") :]
    if host.startswith("/"):
        return host
    raise SourceError(f"docker host {host!r}: only unix:// sockets are supported")


class DockerEngineSource(ImageSource):
    scheme = "docker"

    def __init__(self, name: str, options: SourceOptions) -> None:
        self.name = name
        self.options = options

    def open(self) -> OpenedImage:
        socket = engine_socket(self.options)
        if not os.path.exists(socket):
            raise SourceError(f"docker:{self.name}: no engine socket at {socket}")
        quoted = urllib.parse.quote(self.name, safe="")
        fd, archive = tempfile.mkstemp(prefix="engine-", suffix=".tar", dir=self.options.tmp_dir)
        try:
            transport = httpx.HTTPTransport(uds=socket)
            with (
                httpx.Client(transport=transport, base_url="http://engine", timeout=60.0) as client,
                client.stream("GET", f"/images/{quoted}/get") as response,
                os.fdopen(fd, "wb") as out,
            ):
                if response.status_code == 404:
                    raise SourceError(f"docker:{self.name}: no such image in the engine")
                if response.status_code != 200:
                    raise SourceError(f"docker:{self.name}: engine answered HTTP {response.status_code}")
                written = 0
                for chunk in response.iter_bytes(1024 * 1024):
                    written += len(chunk)
                    if written > MAX_IMAGE_BYTES:
                        raise SourceError(f"docker:{self.name}: image export exceeds {MAX_IMAGE_BYTES} bytes")
                    out.write(chunk)
            opened = DockerArchiveSource(archive, self._tag(), self.options).open()
        except httpx.HTTPError as exc:
            os.unlink(archive)
            raise SourceError(f"docker:{self.name}: engine request failed ({exc})") from exc
        except BaseException:
            os.unlink(archive)
            raise
        opened.artifact.name = self.name
        opened.cleanup.append(lambda: _remove(archive))
        return opened

    def _tag(self) -> str | None:
        """The archive holds one image; naming no tag lets the archive source take it."""
        return None


def _remove(path: str) -> None:
    if os.path.exists(path):
        os.unlink(path)
