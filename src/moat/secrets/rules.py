"""The built-in secret rules: what each kind of credential looks like.

A rule is data: a stable id, a category, a title, a severity, the keywords that must appear in a file
before its regex is worth running, and the regex. The regex names the credential itself with the
group ``secret``; everything around it (``AccountKey=``, ``aws_secret_access_key =``) is context that
may be shown. Rules whose format alone is ambiguous also carry a ``validate`` function (a JWT must
decode to a JSON header; a PEM body must hold base64) or an entropy floor.

Formats come from the vendors' own documentation: GitHub's token prefixes (``ghp_``, ``gho_``,
``ghu_``, ``ghs_``, ``ghr_``: 36 characters of ``[A-Za-z0-9]`` after the prefix; ``github_pat_`` with
22 + 59), GitLab's ``glpat-`` prefix, Slack's ``xox?-`` tokens and ``hooks.slack.com`` webhooks,
Stripe's ``sk_live_``/``rk_live_`` keys, Twilio's ``SK`` + 32 hex API key SIDs, SendGrid's
``SG.<22>.<43>``, npm's ``npm_`` + 36, PyPI's macaroon tokens (``pypi-`` + the base64 of the
``pypi.org`` location caveat), Docker Hub's ``dckr_pat_`` tokens, HashiCorp Vault's ``hvs.``/
``hvb.``/``hvr.`` tokens, AWS's documented access key id prefixes (``AKIA``, ``ASIA`` …) and Azure
Storage connection strings (``AccountKey=`` + the base64 of a 64-byte key).

Order matters: when two rules match the same characters the earlier rule wins, so specific formats
come before the generic ones (a Kubernetes service-account token before any JWT, every vendor format
before ``password=`` assignments).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

RULES_VERSION = "2"
"""Bumped whenever a rule changes what it finds; part of the layer cache key (:mod:`moat.secrets.layers`)."""

CRITICAL = "CRITICAL"
HIGH = "HIGH"
MEDIUM = "MEDIUM"
LOW = "LOW"


@dataclass(frozen=True, slots=True)
class SecretRule:
    """One credential format."""

    id: str
    """Stable, lower-case slug (``aws-access-key-id``); ignore files and reports use it."""
    category: str
    """The vendor or kind: ``AWS``, ``GitHub``, ``PrivateKey``, ``Password`` …"""
    title: str
    severity: str
    keywords: tuple[str, ...]
    """Lower-case strings of which at least one must occur in the (lower-cased) text before the regex
    runs. The regex is the expensive part; most files of an image contain none of these."""
    regex: re.Pattern[str]
    """Must define the group ``secret``: the characters that are the credential."""
    min_entropy: float = 0.0
    """Shannon entropy (bits per character) the secret must reach: weeds out ``password=password``."""
    validate: Callable[[str], bool] | None = None
    """Extra check on the secret text, for formats a regex cannot pin down."""
    check_placeholders: bool = False
    """Apply the placeholder allow-list (``${VAR}``, ``<password>``, ``changeme`` …), for rules whose
    format is free text. Vendor formats with fixed prefixes skip it."""
    context: tuple[str, ...] = field(default=())
    """Lower-case strings that must *all* occur in the text too (e.g. ``service_account``)."""
    anchored: bool = False
    """Every match starts exactly where one of the keywords occurs: the detector then tries the regex
    only at those offsets (``regex.match(text, offset)``) instead of at every character. Worth it for
    case-insensitive alternations, which Python's ``re`` cannot skip through quickly."""


# --------------------------------------------------------------------------------------------- helpers


def shannon_entropy(text: str) -> float:
    """Bits per character: random base64 is near 6, English words near 3, ``aaaa`` is 0."""
    if not text:
        return 0.0
    length = len(text)
    return -sum(n / length * math.log2(n / length) for n in Counter(text).values())


def _b64url_json(part: str) -> dict[str, object] | None:
    try:
        raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        value = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def _jwt_parts(token: str) -> tuple[dict[str, object], dict[str, object]] | None:
    pieces = token.split(".")
    if len(pieces) != 3:
        return None
    header = _b64url_json(pieces[0])
    payload = _b64url_json(pieces[1])
    if header is None or payload is None or "alg" not in header:
        return None
    return header, payload


def is_jwt(token: str) -> bool:
    """A JSON Web Token whose header decodes to JSON with an ``alg`` (not just three dotted strings)."""
    return _jwt_parts(token) is not None


def is_kubernetes_token(token: str) -> bool:
    """A JWT that the Kubernetes token controller or the TokenRequest API issued for a service account."""
    parts = _jwt_parts(token)
    if parts is None:
        return False
    payload = parts[1]
    issuer = str(payload.get("iss", ""))
    subject = str(payload.get("sub", ""))
    return (
        issuer == "kubernetes/serviceaccount"
        or "kubernetes.io" in payload
        or "kubernetes.io/serviceaccount/service-account.name" in payload
        or subject.startswith("system:serviceaccount:")
    )


def is_basic_auth(value: str) -> bool:
    """Base64 of ``user:password`` with both parts set, as ``docker login`` writes into ``auths``."""
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return False
    user, colon, password = decoded.partition(":")
    return bool(colon and user and password)


_BASE64_RUN = re.compile(r"[A-Za-z0-9+/=]{64,}")


def looks_like_pem_body(body: str) -> bool:
    """A PEM body holds lines of base64: at least 64 of them once line breaks are removed.

    Source code that merely names the marker (``b"-----BEGIN PRIVATE KEY-----"`` in a crypto
    library) is followed by code, not base64, and is not reported.
    """
    flat = body.replace("\\n", "").replace("\\r", "").replace("\n", "").replace("\r", "")
    flat = flat.replace(" ", "").replace('"', "").replace("'", "").replace("\t", "")
    return _BASE64_RUN.search(flat) is not None


def _rule(
    id: str,
    category: str,
    title: str,
    severity: str,
    keywords: tuple[str, ...],
    pattern: str,
    **extra: object,
) -> SecretRule:
    return SecretRule(id, category, title, severity, keywords, re.compile(pattern), **extra)  # type: ignore[arg-type]


# Characters that may not touch a token on either side: a token glued to other word characters is
# part of some longer identifier, not a credential.
_L = r"(?<![A-Za-z0-9_])"
_R = r"(?![A-Za-z0-9_])"
_ASSIGN = r"""["']?\s*(?:[:=]|:=|=>)\s*["']?"""
"""``key = value``, ``key: value``, ``"key": "value"``, ``key := value``, ``key => value``."""

_GENERIC_ASSIGN = r"""["']?\s*(?:=|:=|=>|:(?=[\s"']))\s*["']?"""
"""Like ``_ASSIGN``, but a colon must be followed by a space or a quote (YAML, JSON), so ``a::b`` and
``scheme:path`` are not assignments."""

_CODE_VALUE = re.compile(r"^(?:self|this|cls|os|config|settings|request|args|params|options|env|process)\.", re.I)


def looks_like_generated_value(value: str) -> bool:
    """A value of a free-text assignment that could be a generated secret rather than code or a word.

    Letters alone (``development``, ``key_password``, ``elevated-privileges``) are far more often a
    word or an identifier than a credential, so a value must mix letters with digits or symbols;
    attribute access on well-known objects (``self.password``, ``os.environ``) is code.
    """
    if _CODE_VALUE.match(value) or value.startswith(("/", "./", "~/")) or "://" in value:
        return False  # code, a file path, or a URL (a URL's own password is url-password's business)
    has_letter = any(c.isalpha() for c in value)
    has_other = any(c.isdigit() or not (c.isalnum() or c in "_-.") for c in value)
    return has_letter and has_other


_GENERIC_KEYS = (
    r"(?:pass(?:word|wd|phrase)|(?<=[_.\-])pwd|secret|api[_.\-]?key|apikey|token|private[_.\-]?key|credentials?)"
)
"""The names that make an assignment a credential; a prefix is allowed (``DB_PASSWORD``,
``client_secret``, ``access_token``), and ``pwd`` needs one (``db_pwd``): bare ``PWD`` is the shell's
working directory. Each alternative starts with one of the rule's keywords (the rule is anchored)."""

RULES: tuple[SecretRule, ...] = (
    # ------------------------------------------------------------------------------- private keys
    _rule(
        "private-key",
        "PrivateKey",
        "Private key",
        CRITICAL,
        ("private key",),
        r"-----BEGIN[ A-Z0-9]{0,20} PRIVATE KEY(?: BLOCK)?-----"
        r"(?P<secret>(?:(?!-----END)[\s\S]){32,32768})",
        validate=looks_like_pem_body,
    ),
    # ------------------------------------------------------------------------------- cloud providers
    _rule(
        "aws-access-key-id",
        "AWS",
        "AWS access key ID",
        CRITICAL,
        ("akia", "asia", "abia", "acca", "a3t"),
        r"(?<![A-Z0-9])(?P<secret>(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16})(?![A-Z0-9])",
        anchored=True,
    ),
    _rule(
        "aws-secret-access-key",
        "AWS",
        "AWS secret access key",
        CRITICAL,
        ("aws",),
        r"(?i)aws[_.\-]?(?:secret[_.\-]?(?:access[_.\-]?)?key|secret)" + _ASSIGN
        + r"(?P<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])",
        min_entropy=3.5,
    ),
    _rule(
        "gcp-service-account-key",
        "GCP",
        "Google Cloud service account key file",
        CRITICAL,
        ("private_key_id",),
        r'"private_key_id"\s*:\s*"(?P<secret>[0-9a-f]{40})"',
        context=("service_account",),
    ),
    _rule(
        "gcp-api-key",
        "GCP",
        "Google API key",
        HIGH,
        ("aiza",),
        _L + r"(?P<secret>AIza[0-9A-Za-z_\-]{35})(?![0-9A-Za-z_\-])",
    ),
    _rule(
        "azure-storage-connection-string",
        "Azure",
        "Azure Storage account key in a connection string",
        CRITICAL,
        ("accountkey",),
        r"(?i)AccountKey=(?P<secret>[A-Za-z0-9+/]{86}==)",
    ),
    _rule(
        "azure-storage-account-key",
        "Azure",
        "Azure Storage account key",
        CRITICAL,
        ("azure", "storage"),
        r"(?i)(?:azure|storage)[a-z0-9_.\-]*[_.\-]?key" + _ASSIGN + r"(?P<secret>[A-Za-z0-9+/]{86}==)",
        anchored=True,
    ),
    # ------------------------------------------------------------------------------- code hosting
    _rule(
        "github-fine-grained-pat",
        "GitHub",
        "GitHub fine-grained personal access token",
        CRITICAL,
        ("github_pat_",),
        _L + r"(?P<secret>github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})" + _R,
    ),
    _rule(
        "github-pat",
        "GitHub",
        "GitHub personal access token",
        CRITICAL,
        ("ghp_",),
        _L + r"(?P<secret>ghp_[A-Za-z0-9]{36,251})" + _R,
    ),
    _rule(
        "github-oauth-token",
        "GitHub",
        "GitHub OAuth access token",
        CRITICAL,
        ("gho_",),
        _L + r"(?P<secret>gho_[A-Za-z0-9]{36,251})" + _R,
    ),
    _rule(
        "github-app-token",
        "GitHub",
        "GitHub App token",
        CRITICAL,
        ("ghu_", "ghs_"),
        _L + r"(?P<secret>gh[us]_[A-Za-z0-9]{36,251})" + _R,
    ),
    _rule(
        "github-refresh-token",
        "GitHub",
        "GitHub refresh token",
        CRITICAL,
        ("ghr_",),
        _L + r"(?P<secret>ghr_[A-Za-z0-9]{36,251})" + _R,
    ),
    _rule(
        "gitlab-pat",
        "GitLab",
        "GitLab personal access token",
        CRITICAL,
        ("glpat-",),
        r"(?<![A-Za-z0-9_\-])(?P<secret>glpat-[0-9A-Za-z_\-]{20}(?:[0-9A-Za-z_\-.]{0,80}[0-9A-Za-z_\-])?)"
        r"(?![0-9A-Za-z_\-])",
    ),
    # ------------------------------------------------------------------------------- messaging, payments, email
    _rule(
        "slack-webhook-url",
        "Slack",
        "Slack incoming webhook URL",
        HIGH,
        ("hooks.slack.com",),
        r"https://hooks\.slack\.com/(?P<secret>(?:services|workflows)/T[A-Z0-9]{6,12}/B[A-Z0-9]{6,12}"
        r"/[A-Za-z0-9]{20,32})",
    ),
    _rule(
        "slack-token",
        "Slack",
        "Slack API token",
        HIGH,
        ("xox",),
        _L + r"(?P<secret>xox(?:[abposr]|e(?:\.xox[bp])?)-[0-9]{1,13}-[0-9A-Za-z\-]{8,240})" + _R,
    ),
    _rule(
        "stripe-live-key",
        "Stripe",
        "Stripe live secret or restricted key",
        CRITICAL,
        ("k_live_",),
        _L + r"(?P<secret>[sr]k_live_[0-9A-Za-z]{24,247})" + _R,
    ),
    _rule(
        "stripe-test-key",
        "Stripe",
        "Stripe test-mode secret key",
        LOW,
        ("k_test_",),
        _L + r"(?P<secret>[sr]k_test_[0-9A-Za-z]{24,247})" + _R,
    ),
    _rule(
        "twilio-api-key",
        "Twilio",
        "Twilio API key SID",
        MEDIUM,
        ("sk",),
        r"(?<![0-9A-Za-z])(?P<secret>SK[0-9a-f]{32})(?![0-9A-Za-z])",
        context=("twilio",),
    ),
    _rule(
        "twilio-auth-token",
        "Twilio",
        "Twilio auth token",
        HIGH,
        ("twilio",),
        r"(?i)twilio[a-z0-9_.\-]*(?:auth[_.\-]?)?token" + _ASSIGN + r"(?P<secret>[0-9a-f]{32})(?![0-9a-f])",
    ),
    _rule(
        "sendgrid-api-key",
        "SendGrid",
        "SendGrid API key",
        HIGH,
        ("sg.",),
        _L + r"(?P<secret>SG\.[0-9A-Za-z_\-]{22}\.[0-9A-Za-z_\-]{43})(?![0-9A-Za-z_\-])",
    ),
    # ------------------------------------------------------------------------------- package registries
    _rule(
        "npm-access-token",
        "npm",
        "npm access token",
        CRITICAL,
        ("npm_",),
        _L + r"(?P<secret>npm_[A-Za-z0-9]{36})" + _R,
    ),
    _rule(
        "npmrc-auth-token",
        "npm",
        "npm registry auth token in .npmrc",
        HIGH,
        ("_authtoken",),
        r"_authToken\s*=\s*[\"']?(?P<secret>[A-Za-z0-9_\-.+/=]{16,512})",
        check_placeholders=True,
    ),
    _rule(
        "pypi-upload-token",
        "PyPI",
        "PyPI upload token",
        CRITICAL,
        ("pypi-age",),
        _L + r"(?P<secret>pypi-(?:AgEIcHlwaS5vcmc|AgENdGVzdC5weXBpLm9yZw)[A-Za-z0-9_\-]{50,})" + r"(?![A-Za-z0-9_\-])",
    ),
    _rule(
        "dockerhub-pat",
        "Docker",
        "Docker Hub access token",
        CRITICAL,
        ("dckr_",),
        _L + r"(?P<secret>dckr_(?:pat|oat)_[A-Za-z0-9_\-]{27,})(?![A-Za-z0-9_\-])",
    ),
    _rule(
        "docker-config-auth",
        "Docker",
        "Registry credentials in a Docker config.json",
        CRITICAL,
        ("auths",),
        r'"auth"\s*:\s*"(?P<secret>[A-Za-z0-9+/]{6,}={0,2})"',
        validate=is_basic_auth,
    ),
    _rule(
        "netrc-password",
        "Password",
        "Password in a .netrc file",
        HIGH,
        ("machine",),
        r"\bmachine[ \t]+\S+(?:[ \t\r\n]+login[ \t]+\S+)?[ \t\r\n]+password[ \t]+(?P<secret>\S{4,200})",
        check_placeholders=True,
        anchored=True,
    ),
    # ------------------------------------------------------------------------------- tokens
    _rule(
        "vault-token",
        "HashiCorp",
        "HashiCorp Vault token",
        CRITICAL,
        ("hvs.", "hvb.", "hvr."),
        r"(?<![A-Za-z0-9_.\-])(?P<secret>hv[sbr]\.[A-Za-z0-9_\-]{24,})(?![A-Za-z0-9_\-])",
    ),
    _rule(
        "vault-token-legacy",
        "HashiCorp",
        "HashiCorp Vault token (pre-1.10 format)",
        CRITICAL,
        ("vault",),
        r"(?i)vault[_.\-]?token" + _ASSIGN + r"(?P<secret>[sb]\.[A-Za-z0-9]{24})(?![A-Za-z0-9])",
    ),
    _rule(
        "kubernetes-service-account-token",
        "Kubernetes",
        "Kubernetes service account token",
        CRITICAL,
        ("eyj",),
        _L + r"(?P<secret>eyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,})" + r"(?![A-Za-z0-9_\-])",
        validate=is_kubernetes_token,
    ),
    _rule(
        "jwt",
        "JWT",
        "JSON Web Token",
        MEDIUM,
        ("eyj",),
        _L + r"(?P<secret>eyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,})" + r"(?![A-Za-z0-9_\-])",
        validate=is_jwt,
    ),
    # ------------------------------------------------------------------------------- free-form
    _rule(
        "url-password",
        "Password",
        "Password in a URL",
        HIGH,
        ("://",),
        r"(?<=[A-Za-z0-9])://[^\s:/@\"'<>`]{1,128}:(?P<secret>[^\s/@\"'<>`]{3,128})@"
        r"(?!(?:[A-Za-z0-9\-]+\.)*example\.(?:com|org|net)(?![A-Za-z0-9\-]))[A-Za-z0-9.\-\[\]_]+",
        check_placeholders=True,
        anchored=True,
    ),
    _rule(
        "generic-password",
        "Password",
        "Password or secret assigned in configuration",
        HIGH,
        ("pass", "pwd", "secret", "api", "token", "private", "credential"),
        r"(?i)(?<![$@%&*])" + _GENERIC_KEYS + r"(?![A-Za-z0-9])" + _GENERIC_ASSIGN
        + r"(?P<secret>[^\s\"'`;,<>(){}\[\]|&$]{8,200})(?=[\s\"'`;,)}\]>]|\Z)",
        min_entropy=3.0,
        check_placeholders=True,
        validate=looks_like_generated_value,
        anchored=True,
    ),
)
"""Every built-in rule, most specific first."""


def rules_by_id() -> dict[str, SecretRule]:
    return {item.id: item for item in RULES}
