"""Registry credentials and the ``WWW-Authenticate`` challenge flow.

Credentials are looked up only when a registry asks for them, so a scan of a public image never
reads ``config.json`` or runs a credential helper. Lookup order: ``--username``/``--password``,
then docker's ``config.json`` (``credHelpers`` for the host, then ``credsStore``, then the inline
``auths`` entry). The challenge flow is the one docker uses: ``Basic`` sends the credentials as
they are; ``Bearer realm,service,scope`` trades them at the realm for a token scoped to one
repository, which is cached until it expires.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import httpx

from moat.errors import SourceError
from moat.image.reference import DOCKER_HUB, DOCKER_HUB_AUTH_KEY, is_loopback

HELPER_TIMEOUT = 60.0
MAX_TOKEN_BYTES = 1024 * 1024
TOKEN_DEFAULT_LIFETIME = 60
"""Seconds a token lives when the token server does not say (the token spec's default)."""
TOKEN_EXPIRY_MARGIN = 10
_HUB_KEYS = {"docker.io", "index.docker.io", "registry-1.docker.io"}
_HELPER_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_NOT_FOUND_MARKERS = ("credentials not found", "not found in native keychain", "no credentials")

Sender = Callable[[str, str, dict[str, str], dict[str, str] | None], tuple[httpx.Response, bytes]]
"""(method, url, headers, form) → (response, body): the registry client's plain HTTP, no auth."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """A login for one registry. ``identity_token`` is an OAuth2 refresh token (``docker login`` to ACR …)."""

    username: str
    password: str | None = field(default=None, repr=False)
    identity_token: str | None = field(default=None, repr=False)
    origin: str = ""
    """Where the login came from, for error messages (never the secret itself)."""


# --------------------------------------------------------------------------- credential lookup


def docker_config_path(docker_config: str | None) -> Path:
    """``config.json``: the option (a file or a directory), else ``$DOCKER_CONFIG``, else ``~/.docker``."""
    if docker_config:
        path = Path(docker_config).expanduser()
        return path / "config.json" if path.is_dir() else path
    env = os.environ.get("DOCKER_CONFIG")
    if env:
        return Path(env).expanduser() / "config.json"
    return Path.home() / ".docker" / "config.json"


def read_docker_config(path: Path) -> dict[str, object]:
    """The parsed file, or {} when there is none; a present but broken file is an error, as in docker."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise SourceError(f"{path}: cannot read docker config ({exc.strerror or exc})") from exc
    if len(data) > 16 * 1024 * 1024:
        raise SourceError(f"{path}: docker config is implausibly large")
    try:
        config = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SourceError(f"{path}: docker config is not valid JSON ({exc})") from exc
    if not isinstance(config, dict):
        raise SourceError(f"{path}: docker config is not a JSON object")
    return config


def normalize_registry_key(key: str) -> str:
    """``https://index.docker.io/v1/`` → ``docker.io``; ``http://host:5000/x`` → ``host:5000``."""
    text = key.strip().lower()
    if "://" in text:
        text = text.split("://", 1)[1]
    text = text.split("/", 1)[0]
    return DOCKER_HUB if text in _HUB_KEYS else text


def helper_server_url(registry: str) -> str:
    """What docker writes to a credential helper's stdin for this registry."""
    return DOCKER_HUB_AUTH_KEY if registry == DOCKER_HUB else registry


def find_credentials(
    registry: str, username: str | None, password: str | None, docker_config: str | None
) -> Credentials | None:
    """The login to use for ``registry`` (a name as in :class:`~moat.image.reference.Reference`)."""
    if username or password:
        if not username or password is None:
            raise SourceError("--username and --password must be given together")
        return Credentials(username, password, origin="--username/--password")
    path = docker_config_path(docker_config)
    config = read_docker_config(path)
    if not config:
        return None
    wanted = normalize_registry_key(registry)

    helpers = config.get("credHelpers")
    if isinstance(helpers, dict):
        for key, helper in helpers.items():
            if isinstance(key, str) and normalize_registry_key(key) == wanted and isinstance(helper, str):
                found = run_credential_helper(helper, helper_server_url(registry))
                if found:
                    return found
    store = config.get("credsStore")
    if isinstance(store, str) and store:
        found = run_credential_helper(store, helper_server_url(registry))
        if found:
            return found
    return _inline_credentials(config, wanted, path)


def _inline_credentials(config: dict[str, object], wanted: str, path: Path) -> Credentials | None:
    auths = config.get("auths")
    if not isinstance(auths, dict):
        return None
    # An exact key wins over an alias (config files written by old clients hold both forms).
    keys = sorted((k for k in auths if isinstance(k, str)), key=lambda k: k.lower() != wanted)
    for key in keys:
        entry = auths[key]
        if normalize_registry_key(key) != wanted or not isinstance(entry, dict):
            continue
        origin = f"{path} (auths.{key})"
        username = entry.get("username")
        password = entry.get("password")
        encoded = entry.get("auth")
        if isinstance(encoded, str) and encoded:
            try:
                decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError) as exc:
                raise SourceError(f"{origin}: 'auth' is not base64 of user:password") from exc
            user, colon, secret = decoded.partition(":")
            if not colon:
                raise SourceError(f"{origin}: 'auth' does not decode to user:password")
            username, password = user, secret
        token = entry.get("identitytoken")
        if isinstance(token, str) and token:
            return Credentials(str(username or ""), None, token, origin=origin)
        if isinstance(username, str) and username and isinstance(password, str):
            return Credentials(username, password, origin=origin)
    return None


def run_credential_helper(name: str, server_url: str) -> Credentials | None:
    """Run ``docker-credential-NAME get``; None when the helper has nothing for this server."""
    if not _HELPER_NAME_RE.match(name):
        raise SourceError(f"credential helper name {name!r} is not valid")
    program = f"docker-credential-{name}"
    path = shutil.which(program)
    if path is None:
        raise SourceError(f"credential helper {program} (named in docker config.json) is not on PATH")
    try:
        result = subprocess.run(
            [path, "get"],
            input=server_url.encode(),
            capture_output=True,
            timeout=HELPER_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise SourceError(f"credential helper {program} did not answer within {HELPER_TIMEOUT:g}s") from exc
    except OSError as exc:
        raise SourceError(f"credential helper {program} could not run ({exc.strerror or exc})") from exc
    if result.returncode != 0:
        said = (result.stdout + b"\n" + result.stderr).decode("utf-8", "replace")
        if any(marker in said.lower() for marker in _NOT_FOUND_MARKERS):
            return None
        raise SourceError(
            f"credential helper {program} failed: {one_line(said) or 'exit ' + str(result.returncode)}"
        )
    try:
        answer = json.loads(result.stdout)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SourceError(f"credential helper {program} printed something that is not JSON") from exc
    if not isinstance(answer, dict):
        raise SourceError(f"credential helper {program} printed JSON that is not an object")
    username = answer.get("Username")
    secret = answer.get("Secret")
    if not isinstance(secret, str) or not secret:
        return None
    origin = f"credential helper {program}"
    if username == "<token>":
        return Credentials("", None, secret, origin=origin)
    return Credentials(str(username or ""), secret, origin=origin)


# --------------------------------------------------------------------------- challenge flow


@dataclass(frozen=True, slots=True)
class Challenge:
    scheme: str
    """Lower case: basic or bearer."""
    params: dict[str, str]


def parse_challenges(header: str) -> list[Challenge]:
    """Parse ``WWW-Authenticate`` (RFC 7235): schemes followed by ``key=value`` or ``key="value"``."""
    challenges: list[Challenge] = []
    position = 0
    token_re = re.compile(r"\s*,?\s*([A-Za-z0-9!#$%&\'*+.^_`|~-]+)")
    param_re = re.compile(r'\s*,?\s*([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))')
    while position < len(header):
        match = token_re.match(header, position)
        if not match:
            break
        scheme = match.group(1).lower()
        position = match.end()
        params: dict[str, str] = {}
        while True:
            param = param_re.match(header, position)
            if not param:
                break
            value = param.group(2)
            value = re.sub(r"\\(.)", r"\1", value) if value is not None else param.group(3)
            params[param.group(1).lower()] = value
            position = param.end()
        challenges.append(Challenge(scheme, params))
    return challenges


@dataclass(slots=True)
class _Token:
    value: str
    expires: float


class Authenticator:
    """Answers challenges for one registry and hands out Authorization headers per repository scope.

    It learns the registry's scheme from its first 401 (usually the ``/v2/`` ping) and from then on
    authorizes requests up front, so each blob costs one request, not two.
    """

    def __init__(
        self,
        registry: str,
        send: Sender,
        *,
        username: str | None = None,
        password: str | None = None,
        docker_config: str | None = None,
        insecure: bool = False,
    ) -> None:
        self.registry = registry
        self._send = send
        self._username = username
        self._password = password
        self._docker_config = docker_config
        self._insecure = insecure
        self._credentials: Credentials | None = None
        self._looked_up = False
        self._scheme: str | None = None
        self._bearer: dict[str, str] = {}
        self._scope_for: dict[str | None, str] = {}
        self._tokens: dict[tuple[str, str, str], _Token] = {}

    @property
    def credentials(self) -> Credentials | None:
        if not self._looked_up:
            self._credentials = find_credentials(
                self.registry, self._username, self._password, self._docker_config
            )
            self._looked_up = True
        return self._credentials

    def authorization(self, scope: str | None) -> dict[str, str]:
        """Headers for a request needing ``scope`` (``repository:NAME:pull``), from what is known so far."""
        if self._scheme == "basic":
            credentials = self.credentials
            if credentials and credentials.password is not None:
                raw = f"{credentials.username}:{credentials.password}".encode()
                return {"Authorization": "Basic " + base64.b64encode(raw).decode("ascii")}
            return {}
        if self._scheme == "bearer":
            wanted = self._scope_for.get(scope, scope or "")
            return {"Authorization": "Bearer " + self._token(wanted)}
        return {}

    def observe(self, response: httpx.Response) -> Challenge | None:
        """Learn the scheme from a 401 (the ping's), without judging whether a retry can help."""
        challenge = _pick(parse_challenges(response.headers.get("www-authenticate", "")))
        if challenge is None:
            return None
        self._scheme = challenge.scheme
        if challenge.scheme == "bearer":
            realm = challenge.params.get("realm", "")
            self._check_realm(realm)
            self._bearer = {"realm": realm, "service": challenge.params.get("service", "")}
        return challenge

    def challenged(self, response: httpx.Response, scope: str | None, sent: dict[str, str]) -> None:
        """React to a 401 on a real request; raise when another attempt cannot succeed."""
        before = self._scheme
        challenge = self.observe(response)
        if challenge is None:
            raise SourceError(
                f"{self.registry}: HTTP 401 without a Basic or Bearer WWW-Authenticate challenge"
            )
        had_auth = "Authorization" in sent
        who = self._who()
        if challenge.scheme == "basic":
            credentials = self.credentials
            if credentials is None:
                raise SourceError(
                    f"{self.registry}: authentication required and no credentials found "
                    "(use --username/--password, docker login, or a credential helper)"
                )
            if credentials.password is None:
                raise SourceError(
                    f"{self.registry}: Basic auth needs a password; {credentials.origin} has only a token"
                )
            if had_auth and before == "basic":
                raise SourceError(f"{self.registry}: credentials rejected for {who} (HTTP 401)")
            return
        wanted = challenge.params.get("scope") or scope or ""
        if had_auth and before == "bearer" and self._scope_for.get(scope, scope or "") == wanted:
            reason = challenge.params.get("error") or "unauthorized"
            raise SourceError(
                f"{self.registry}: access to {wanted or 'the registry'} denied for {who} ({reason})"
            )
        self._scope_for[scope] = wanted

    def _who(self) -> str:
        credentials = self.credentials if self._looked_up or self._username else None
        if credentials is None:
            return "anonymous access"
        return (
            f"user {credentials.username!r}"
            if credentials.username
            else f"the token from {credentials.origin}"
        )

    def _check_realm(self, realm: str) -> None:
        parts = urlsplit(realm)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise SourceError(f"{self.registry}: token realm {one_line(realm)!r} is not an http(s) URL")

    def _token(self, scope: str) -> str:
        realm, service = self._bearer.get("realm", ""), self._bearer.get("service", "")
        key = (realm, service, scope)
        cached = self._tokens.get(key)
        if cached and cached.expires > time.monotonic():
            return cached.value
        token = self._fetch_token(realm, service, scope)
        self._tokens[key] = token
        return token.value

    def _fetch_token(self, realm: str, service: str, scope: str) -> _Token:
        credentials = self.credentials
        netloc = urlsplit(realm).netloc
        if credentials and realm.startswith("http:") and not (self._insecure or is_loopback(netloc)):
            raise SourceError(
                f"{self.registry}: refusing to send credentials to the plain-HTTP token realm {realm} "
                "(use --insecure to allow it)"
            )
        headers = {"Accept": "application/json"}
        query: list[tuple[str, str]] = []
        if service:
            query.append(("service", service))
        for item in scope.split():
            query.append(("scope", item))
        if credentials and credentials.identity_token:
            form = dict(query)
            form.update(
                grant_type="refresh_token", refresh_token=credentials.identity_token, client_id="moat"
            )
            if len(scope.split()) > 1:
                form["scope"] = scope
            response, body = self._send("POST", realm, headers, form)
        else:
            if credentials and credentials.password is not None:
                query.append(("account", credentials.username))
                raw = f"{credentials.username}:{credentials.password}".encode()
                headers["Authorization"] = "Basic " + base64.b64encode(raw).decode("ascii")
            separator = "&" if urlsplit(realm).query else "?"
            url = realm + (separator + urlencode(query) if query else "")
            response, body = self._send("GET", url, headers, None)
        if response.status_code in (401, 403):
            if credentials is None:
                raise SourceError(
                    f"{self.registry}: token server refused anonymous access (HTTP {response.status_code}); "
                    "credentials are needed"
                )
            raise SourceError(
                f"{self.registry}: token server rejected the credentials for {self._who()} "
                f"(HTTP {response.status_code})"
            )
        if response.status_code != 200:
            raise SourceError(f"{self.registry}: token server answered HTTP {response.status_code}")
        try:
            answer = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise SourceError(f"{self.registry}: token server reply is not JSON") from exc
        if not isinstance(answer, dict):
            raise SourceError(f"{self.registry}: token server reply is not a JSON object")
        value = answer.get("token") or answer.get("access_token")
        if not isinstance(value, str) or not value or any(c.isspace() for c in value):
            raise SourceError(f"{self.registry}: token server reply has no usable token")
        lifetime = answer.get("expires_in")
        seconds = lifetime if isinstance(lifetime, int) and lifetime > 0 else TOKEN_DEFAULT_LIFETIME
        expires = time.monotonic() + max(seconds - TOKEN_EXPIRY_MARGIN, 1)
        return _Token(value, expires)


def _pick(challenges: list[Challenge]) -> Challenge | None:
    """Bearer when offered (it scopes access), else Basic; other schemes are not spoken."""
    for wanted in ("bearer", "basic"):
        for challenge in challenges:
            if challenge.scheme == wanted:
                return challenge
    return None


def one_line(text: str, limit: int = 200) -> str:
    """Server-supplied text made safe for a one-line error: no control characters, bounded."""
    cleaned = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"
