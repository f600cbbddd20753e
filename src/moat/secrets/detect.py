"""Finding secrets in text: the rules of :mod:`moat.secrets.rules`, a cheap pre-filter, allow-lists.

Speed: an image holds tens of thousands of files and almost none contain a credential. Before any
regex runs, each rule's keywords are looked up in the lower-cased text (a substring search in C); a
rule none of whose keywords occur is skipped. :func:`find_secrets_in_bytes` does that on the raw
bytes, so a file that no rule could match is never even decoded.

What is *not* reported, and why (the allow-lists):

* **Documentation values.** AWS publishes ``AKIAIOSFODNN7EXAMPLE`` /
  ``wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY`` as its example key pair and every SDK, man page and
  tutorial copies them; any token containing ``EXAMPLE`` in capitals is such a documentation value.
  Reporting them would bury real findings under every copy of the AWS CLI docs.
* **Placeholders, for free-text rules only** (``password=``, ``user:pass@host``, ``_authToken=``):
  references that are resolved elsewhere (``${DB_PASSWORD}``, ``$(cat /run/secrets/x)``,
  ``{{ .Values.password }}``, ``%(password)s``), angle-bracket or all-same-character fillers
  (``<password>``, ``********``, ``xxxxxxxx``), and the handful of words documentation uses
  (``changeme``, ``password``, ``your-token-here``). A vendor format with a fixed prefix is reported
  even when it looks made up: a token that *parses* as a GitHub token is worth a look.
* **Low-entropy free text**: ``password=password1`` style assignments must reach the rule's entropy
  floor, so code such as ``token = get_token`` is not a finding.
* **Binary files** (a NUL byte in the first 8 KiB) and **files over the size cap**
  (:data:`MAX_SCAN_BYTES`): credentials live in text; scanning compiled code finds noise.

A match keeps the secret itself (``SecretMatch.secret``, excluded from ``repr``) so callers can
redact precisely; only :meth:`SecretMatch.to_finding` output, which is masked, may leave the process.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from moat.model import SecretFinding
from moat.secrets.redact import mask, masked_excerpt
from moat.secrets.rules import RULES, SecretRule, shannon_entropy

MAX_SCAN_BYTES = 8 * 1024 * 1024
"""Largest file scanned (override: ``MOAT_SECRET_MAX_FILE_BYTES``). Key files and configs are kilobytes;
bigger files are data, archives or bundles."""
BINARY_SNIFF_BYTES = 8192

KNOWN_EXAMPLES = frozenset(
    {
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "AKIAI44QH8DHBEXAMPLE",
        "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
    }
)
"""The key pairs AWS uses throughout its documentation."""

PLACEHOLDER_WORDS = frozenset(
    {
        "password", "passwd", "pass", "pwd", "pw", "secret", "token", "changeme", "changeit", "change_me", "change-me",
        "placeholder", "redacted", "removed", "none", "null", "undefined", "empty", "required",
        "optional", "mypassword", "yourpassword", "your_password", "your-password", "secretpassword",
        "notasecret", "not-a-secret", "replaceme", "replace_me", "replace-me", "default",
    }
)
_PLACEHOLDER_MARKERS = ("${", "$(", "{{", "}}", "%(", "<", ">", "your_", "your-", "xxxx", "****", "example",
                        "placeholder", "redacted", "_here", "-here", "dummy")
_REFERENCE = re.compile(r"^\$[A-Za-z_][A-Za-z0-9_]*$|^%[A-Za-z_][A-Za-z0-9_]*%$|^env[.:(]", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class SecretMatch:
    """One secret in one text: which rule, where, and (kept out of ``repr``) the secret itself."""

    rule: SecretRule
    path: str
    line: int
    """1-based line of the first character of the secret."""
    start: int
    """Offset of the secret in the text that was scanned."""
    end: int
    secret: str = field(repr=False)
    excerpt: str = ""
    """The line with every secret on it masked (safe to show)."""

    @property
    def redacted(self) -> str:
        """The secret itself, masked: a few leading characters, then asterisks."""
        return mask(self.secret)

    def to_finding(self, *, source: str = "file", layer: str | None = None, file: str | None = None) -> SecretFinding:
        return SecretFinding(
            rule_id=self.rule.id,
            category=self.rule.category,
            title=self.rule.title,
            severity=self.rule.severity,
            file=file if file is not None else self.path,
            line=self.line,
            match=self.excerpt,
            layer=layer,
            source=source,
        )


def max_scan_bytes() -> int:
    value = os.environ.get("MOAT_SECRET_MAX_FILE_BYTES", "")
    return int(value) if value.isdigit() else MAX_SCAN_BYTES


def is_binary(head: bytes) -> bool:
    """Text files have no NUL bytes; executables, images, archives and compiled bytecode do."""
    return b"\0" in head[:BINARY_SNIFF_BYTES]


def is_placeholder(value: str) -> bool:
    """A value that stands for a secret rather than being one (see the module docstring)."""
    stripped = value.strip().strip("\"'`")
    lowered = stripped.lower()
    if not stripped or lowered in PLACEHOLDER_WORDS or stripped.startswith("$"):
        return True
    if any(marker in lowered for marker in _PLACEHOLDER_MARKERS):
        return True
    if _REFERENCE.match(stripped):
        return True
    return len(set(lowered)) <= 2


def is_documentation_value(secret: str) -> bool:
    return secret in KNOWN_EXAMPLES or "EXAMPLE" in secret


def _accepts(item: SecretRule, secret: str) -> bool:
    if is_documentation_value(secret):
        return False
    if item.check_placeholders and is_placeholder(secret):
        return False
    if item.min_entropy and shannon_entropy(secret) < item.min_entropy:
        return False
    if item.validate is not None and not item.validate(secret):
        return False
    body = secret[4:] if len(secret) > 12 else secret  # past a vendor prefix such as ghp_ or AKIA
    return len(set(body)) > 2  # ghp_xxxxxxxx…, AKIA0000…: fillers, not credentials


_KEYWORDS_BYTES = {item.id: (tuple(k.encode() for k in item.keywords), tuple(c.encode() for c in item.context))
                   for item in RULES}


def candidate_rules(lowered: str | bytes, rules: tuple[SecretRule, ...] = RULES) -> list[SecretRule]:
    """The rules whose keywords (and context words) occur in the lower-cased text.

    Each distinct keyword is looked up once per text, however many rules share it.
    """
    present: dict[str | bytes, bool] = {}

    def has(word: str | bytes) -> bool:
        found = present.get(word)
        if found is None:
            found = present[word] = word in lowered  # type: ignore[operator]
        return found

    chosen = []
    for item in rules:
        words: tuple[tuple[str, ...], tuple[str, ...]] | tuple[tuple[bytes, ...], tuple[bytes, ...]]
        if isinstance(lowered, bytes):
            words = _KEYWORDS_BYTES.get(item.id) or (
                tuple(k.encode() for k in item.keywords), tuple(c.encode() for c in item.context))
        else:
            words = (item.keywords, item.context)
        keywords, context = words
        if any(has(k) for k in keywords) and all(has(c) for c in context):
            chosen.append(item)
    return chosen


def find_secrets(text: str, path: str, rules: tuple[SecretRule, ...] = RULES) -> list[SecretMatch]:
    """Every secret in ``text`` (the content of ``path``), in order of position.

    Overlapping matches of two rules are reported once, by the rule listed first in ``rules``.
    """
    candidates = candidate_rules(text.lower(), rules)
    return _scan(text, path, candidates) if candidates else []


def find_secrets_in_bytes(
    data: bytes, path: str, rules: tuple[SecretRule, ...] = RULES, *, limit: int | None = None
) -> list[SecretMatch]:
    """Like :func:`find_secrets` for raw file content: binary and oversized files give nothing.

    The keyword pre-filter runs on the bytes, so a file no rule can match is never decoded.
    """
    if len(data) > (limit if limit is not None else max_scan_bytes()) or is_binary(data):
        return []
    candidates = candidate_rules(data.lower(), rules)
    if not candidates:
        return []
    return _scan(data.decode("utf-8", errors="replace"), path, candidates)


def _scan(text: str, path: str, candidates: list[SecretRule]) -> list[SecretMatch]:
    spans: list[tuple[int, int, SecretRule, str]] = []
    lowered: str | None = None
    for item in candidates:
        if item.anchored and lowered is None:
            lowered = text.lower()
        for found in _matches(item, text, lowered):
            start, end = found.span("secret")
            if start < 0 or any(start < taken_end and taken_start < end for taken_start, taken_end, _, _ in spans):
                continue
            secret = found.group("secret")
            if _accepts(item, secret):
                spans.append((start, end, item, secret))
    if not spans:
        return []
    spans.sort(key=lambda span: span[0])
    all_spans = [(start, end) for start, end, _, _ in spans]
    matches = []
    for start, end, item, secret in spans:
        line_start = text.rfind("\n", 0, start) + 1
        line_end = text.find("\n", start)
        if line_end < 0:
            line_end = len(text)
        line = text.count("\n", 0, start) + 1
        excerpt = masked_excerpt(text, line_start, line_end, start, all_spans)
        matches.append(SecretMatch(item, path, line, start, end, secret, excerpt))
    return matches


def _matches(item: SecretRule, text: str, lowered: str | None) -> Iterator[re.Match[str]]:
    """The rule's regex matches: at keyword offsets for an anchored rule, else everywhere."""
    if not item.anchored or lowered is None or len(lowered) != len(text):
        yield from item.regex.finditer(text)  # lower() changed some lengths: offsets would not line up
        return
    offsets: set[int] = set()
    for keyword in item.keywords:
        position = lowered.find(keyword)
        while position >= 0:
            offsets.add(position)
            position = lowered.find(keyword, position + 1)
    covered = -1
    for offset in sorted(offsets):
        if offset < covered:
            continue
        found = item.regex.match(text, offset)
        if found is not None:
            covered = found.end()
            yield found
