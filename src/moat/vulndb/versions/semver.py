"""Semantic Versioning 2.0.0 precedence, shared by npm, Go modules and crates.io.

The three ecosystems agree on how versions *order* (major, minor, patch numerically; a pre-release
before its release; pre-release identifiers compared one by one, numeric ones numerically and before
alphanumeric ones, which compare as ASCII strings; a longer identifier list after its prefix; build
metadata ignored) but not on which strings are versions. So parsing is per ecosystem
(``semver_npm``, ``semver_go``, ``semver_cargo``) and produces the same sort key, compared here.

Written here (small) rather than depending on a library per ecosystem because the precedence is
the same everywhere and the tests check each grammar against the ecosystem's own tool.
"""

from __future__ import annotations

import re

from moat.vulndb.versions.base import VersionError

Identifier = tuple[int, int | str]
"""(0, number) or (1, text): numeric identifiers sort before alphanumeric ones."""
Key = tuple[int, int, int, int, tuple[Identifier, ...]]
"""(major, minor, patch, 1 for a release or 0 for a pre-release, pre-release identifiers)."""

NUMBER = r"0|[1-9][0-9]*"
PRE_ID = r"0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*"
BUILD_ID = r"[0-9A-Za-z-]+"
STRICT = re.compile(
    rf"(?P<major>{NUMBER})\.(?P<minor>{NUMBER})\.(?P<patch>{NUMBER})"
    rf"(?:-(?P<pre>(?:{PRE_ID})(?:\.(?:{PRE_ID}))*))?(?:\+(?P<build>{BUILD_ID}(?:\.{BUILD_ID})*))?"
)


def key_from(scheme: str, version: str, match: re.Match[str] | None) -> Key:
    """The sort key of a version matched by a grammar with major/minor/patch/pre groups."""
    if match is None:
        raise VersionError(scheme, version, "not a semantic version (MAJOR.MINOR.PATCH[-PRE][+BUILD])")
    pre = match["pre"]
    identifiers = tuple((0, int(p)) if p.isdigit() else (1, p) for p in pre.split(".")) if pre else ()
    return int(match["major"]), int(match["minor"] or 0), int(match["patch"] or 0), 0 if pre else 1, identifiers


def compare_keys(a: Key, b: Key) -> int:
    """-1, 0 or 1 by SemVer precedence."""
    return (a > b) - (a < b)
