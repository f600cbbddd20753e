"""What every version scheme shares: the error type and a sign helper.

Kept apart from ``__init__`` so scheme modules can import it without importing the dispatcher.
"""

from __future__ import annotations

from moat.errors import ParseError


class VersionError(ParseError):
    """A version string that is not valid in its ecosystem's scheme (bad input: exit 2, one line)."""

    def __init__(self, scheme: str, version: str, reason: str) -> None:
        self.scheme = scheme
        self.version = version
        self.reason = reason
        super().__init__(f"invalid {scheme} version {version!r}: {reason}")


def sign(value: int) -> int:
    """-1, 0 or 1, the shape every ``compare`` returns."""
    return (value > 0) - (value < 0)
