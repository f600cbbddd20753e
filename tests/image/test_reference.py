"""Image references must mean what they mean to docker: same registry, repository, tag, digest."""

from __future__ import annotations

import pytest

from moat.errors import SourceError
from moat.image.reference import Reference, is_loopback, parse_reference, split_host_port

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("alpine", "docker.io", "library/alpine", "latest", None),
        ("alpine:3.19", "docker.io", "library/alpine", "3.19", None),
        ("library/alpine", "docker.io", "library/alpine", "latest", None),
        ("bitnami/redis:7.2", "docker.io", "bitnami/redis", "7.2", None),
        ("docker.io/alpine", "docker.io", "library/alpine", "latest", None),
        ("index.docker.io/library/alpine:3", "docker.io", "library/alpine", "3", None),
        ("registry-1.docker.io/foo/bar", "docker.io", "foo/bar", "latest", None),
        ("ghcr.io/owner/app:v1.2.3", "ghcr.io", "owner/app", "v1.2.3", None),
        ("quay.io/org/team/app", "quay.io", "org/team/app", "latest", None),
        ("localhost/app", "localhost", "app", "latest", None),
        ("localhost:5000/app:dev", "localhost:5000", "app", "dev", None),
        ("127.0.0.1:5000/moat/test:1", "127.0.0.1:5000", "moat/test", "1", None),
        ("[::1]:5000/moat/test", "[::1]:5000", "moat/test", "latest", None),
        (f"alpine@{DIGEST}", "docker.io", "library/alpine", None, DIGEST),
        (f"ghcr.io/o/a:1.0@{DIGEST}", "ghcr.io", "o/a", "1.0", DIGEST),
        (f"host:5000/a@{DIGEST}", "host:5000", "a", None, DIGEST),
        ("docker://alpine:edge", "docker.io", "library/alpine", "edge", None),
        (
            "my-registry.local/a_b/c__d/e-f/g.h:Tag_1.0-rc",
            "my-registry.local",
            "a_b/c__d/e-f/g.h",
            "Tag_1.0-rc",
            None,
        ),
        # Without a dot, colon or "localhost" the first component is a namespace on the Hub.
        ("myhost/app", "docker.io", "myhost/app", "latest", None),
        ("localhost:5000", "docker.io", "library/localhost", "5000", None),
    ],
)
def test_parse(text: str, registry: str, repository: str, tag: str | None, digest: str | None) -> None:
    assert parse_reference(text) == Reference(registry, repository, tag, digest)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty image reference"),
        ("   ", "empty image reference"),
        ("Alpine", "must be lowercase"),
        ("ghcr.io/Owner/app", "must be lowercase"),
        ("alpine:", "invalid tag"),
        ("alpine:-bad", "invalid tag"),
        ("alpine:" + "t" * 129, "invalid tag"),
        ("alpine@sha256:abc", "invalid digest"),
        ("alpine@md5:" + "a" * 32, "invalid digest"),
        ("alpine@" + "sha256:" + "AB" * 32, "invalid digest"),
        ("ghcr.io/", "no repository after the registry host"),
        ("a//b", "invalid repository name component ''"),
        ("a/../b", "invalid repository name component '..'"),
        ("a/-b", "invalid repository name component"),
        ("a b", "whitespace"),
        ("bad_host.io:99999999/a", "invalid registry host"),
        ("ex.com/" + "a" * 260, "longer than 255"),
    ],
)
def test_invalid(text: str, message: str) -> None:
    with pytest.raises(SourceError, match=message) as caught:
        parse_reference(text)
    assert "\n" not in str(caught.value)


def test_manifest_ref_prefers_digest() -> None:
    assert parse_reference("alpine").manifest_ref == "latest"
    assert parse_reference("alpine:3").manifest_ref == "3"
    assert parse_reference(f"alpine:3@{DIGEST}").manifest_ref == DIGEST


def test_api_host_and_familiar_names() -> None:
    hub = parse_reference("alpine:3")
    assert (hub.api_host, hub.familiar_repository, str(hub)) == (
        "registry-1.docker.io",
        "alpine",
        "docker.io/library/alpine:3",
    )
    assert parse_reference("user/app").familiar_repository == "user/app"
    local = parse_reference("127.0.0.1:5000/moat/test:1")
    assert (local.api_host, local.hostname, local.familiar_repository) == (
        "127.0.0.1:5000",
        "127.0.0.1",
        "127.0.0.1:5000/moat/test",
    )
    assert parse_reference("[::1]:5000/a").hostname == "::1"


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("ghcr.io", ("ghcr.io", None)),
        ("h:5000", ("h", 5000)),
        ("[::1]:443", ("::1", 443)),
        ("[::1]", ("::1", None)),
    ],
)
def test_split_host_port(host: str, expected: tuple[str, int | None]) -> None:
    assert split_host_port(host) == expected


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("localhost:5000", True),
        ("LOCALHOST", True),
        ("127.0.0.1:5000", True),
        ("127.1.2.3", True),
        ("[::1]:5000", True),
        ("10.0.0.1:5000", False),
        ("registry.example.com", False),
        ("localhost.example.com", False),
        ("docker.io", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
