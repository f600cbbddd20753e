"""Masking secrets in everything Moat prints.

A report that repeats the credential it warns about leaks it a second time: into CI logs, SARIF
uploads, ticket systems. So every secret is masked before it leaves the detector: a few leading
characters stay (enough to tell ``AKIA…`` from ``ghp_…`` and to find the line), the rest become
``*``. How many stay grows with the length and never exceeds a quarter of the secret, so short
passwords are masked almost entirely.
"""

from __future__ import annotations

MASK = "*"
MAX_KEEP = 4
EXCERPT_CONTEXT = 60
"""Characters of context kept on each side of a secret in an excerpt of a long line (minified files)."""
MAX_MASK_RUN = 32
"""Longest run of ``*`` written for one secret; a 3 KB key body becomes 32 asterisks, not 3,000."""


def mask(secret: str) -> str:
    """``AKIA****************``: at most :data:`MAX_KEEP` leading characters, never more than a quarter."""
    keep = min(MAX_KEEP, len(secret) // 4)
    return secret[:keep] + MASK * min(max(len(secret) - keep, 1), MAX_MASK_RUN)


def mask_spans(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` with each ``(start, end)`` range masked (ranges are offsets into ``text``)."""
    if not spans:
        return text
    pieces = []
    position = 0
    for start, end in sorted(spans):
        start = max(start, position)
        if end <= start:
            continue
        pieces.append(text[position:start])
        pieces.append(mask(text[start:end]))
        position = end
    pieces.append(text[position:])
    return "".join(pieces)


def masked_excerpt(text: str, line_start: int, line_end: int, focus: int, spans: list[tuple[int, int]]) -> str:
    """The line ``text[line_start:line_end]`` with every secret on it masked, cut around ``focus``
    when the line is long. A secret that began on an earlier line is masked from the line's start."""
    window_start, window_end = line_start, line_end
    if line_end - line_start > 2 * EXCERPT_CONTEXT + 80:
        window_start = max(line_start, focus - EXCERPT_CONTEXT)
        window_end = min(line_end, focus + EXCERPT_CONTEXT + 80)
    local = []
    for start, end in spans:
        if end <= window_start or start >= window_end:
            continue
        if start < window_start:  # the secret started before the window: mask all of the visible part
            local.append((0, min(end, window_end) - window_start))
        else:
            local.append((start - window_start, min(end, window_end) - window_start))
    excerpt = mask_spans(text[window_start:window_end], local).rstrip("\r")
    prefix = "…" if window_start > line_start else ""
    suffix = "…" if window_end < line_end else ""
    return f"{prefix}{excerpt}{suffix}".strip()


def redact_text(text: str) -> str:
    """``text`` with every secret the built-in rules find in it masked; for evidence strings."""
    from moat.secrets.detect import find_secrets

    matches = find_secrets(text, "")
    return mask_spans(text, [(m.start, m.end) for m in matches])
