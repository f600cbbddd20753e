"""Helpers the Python analyzers share: name normalisation, Package construction, bounded decoding.

Kept apart so each Python analyzer module stays about one file format; this module registers nothing.
"""

from __future__ import annotations

import re
import tomllib
from typing import Any

from moat.errors import ParseError
from moat.inventory.purl import make_purl
from moat.model import Package

_SEPARATORS = re.compile(r"[-_.]+")
# PEP 508 project names: letters, digits and . _ - inside, alphanumeric at both ends.
_VALID_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
MAX_NAME_LENGTH = 256
MAX_VERSION_LENGTH = 128


def normalize_name(name: str) -> str:
    """PEP 503 normalisation, which is also what the pypi purl type asks for."""
    return _SEPARATORS.sub("-", name).lower()


def is_valid_name(name: str) -> bool:
    return len(name) <= MAX_NAME_LENGTH and bool(_VALID_NAME.match(name))


def is_valid_version(version: str) -> bool:
    """Loose on purpose: lockfiles carry legacy versions; only reject what cannot be a version at all."""
    return 0 < len(version) <= MAX_VERSION_LENGTH and not any(c.isspace() for c in version)


def pypi_package(name: str, version: str, found_in: str, **fields: object) -> Package:
    """A pypi Package with its purl; the name keeps the file's spelling, the purl is normalised."""
    package = Package(
        name=name,
        version=version,
        type="pypi",
        purl=make_purl("pypi", normalize_name(name), version),
        found_in=found_in,
    )
    for key, value in fields.items():
        setattr(package, key, value)
    return package


def decode_text(data: bytes, what: str) -> str:
    """Decode a text file the way Python tooling writes them.

    UTF-8 is the norm; a BOM may announce UTF-16 (pip reads those, Windows editors write them); old
    distributions wrote Latin-1, which cannot fail, so it is the last resort rather than
    replacement characters that would corrupt names.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise ParseError(f"{what}: invalid UTF-16 text") from exc
    if b"\x00" in data[:4096]:
        raise ParseError(f"{what}: binary data, not a text file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def load_toml(data: bytes, path: str) -> dict[str, Any]:
    """A TOML lockfile; tomllib recurses on nesting, so a hostile depth surfaces as RecursionError."""
    try:
        return tomllib.loads(decode_text(data, path))
    except tomllib.TOMLDecodeError as exc:
        raise ParseError(f"{path}: invalid TOML: {exc}") from exc
    except RecursionError as exc:
        raise ParseError(f"{path}: TOML nested too deeply") from exc
