"""One version comparator per ecosystem, each checked against that ecosystem's own tool.

Ecosystems are named as OSV names them (``Debian:12``, ``Alpine:v3.19``, ``PyPI``, ...); only the part
before the first ``:`` chooses the scheme, because a distribution release never changes how its
versions order. Each scheme lives in its own module with a cached ``parse`` (matching compares the
same installed version against many range events) and a ``compare``; this module only dispatches.

Why not the PyPI library ``univers``: evaluated (32.0.1) on the same seeded and real pairs the tests
use, it agreed with the real tools for dpkg, rpm, RubyGems and npm, but disagreed with apk-tools 3
(leading-zero rules; it also rejected 1,423 of 2,000 valid apk versions), with Maven 3.8.7's
ComparableVersion (57 of 4,000 pairs) and with composer/semver (27 of 3,619). Where it is right it
would add a dependency tree for 50-100 line modules that the tests check against the ecosystems' own
tools anyway, so every scheme is written here; PyPI uses ``packaging``, the library pip vendors.
"""

from __future__ import annotations

import importlib
from functools import cache
from types import ModuleType
from typing import Protocol, cast

from moat.vulndb.versions.base import VersionError

__all__ = ["VersionError", "compare", "is_valid", "scheme_of", "supports"]

_SCHEMES: dict[str, str] = {
    "debian": "dpkg",
    "ubuntu": "dpkg",
    "alpine": "apk",
    "wolfi": "apk",
    "chainguard": "apk",
    "almalinux": "rpm",
    "rocky linux": "rpm",
    "red hat": "rpm",
    "redhat": "rpm",
    "centos": "rpm",
    "fedora": "rpm",
    "opensuse": "rpm",
    "suse": "rpm",
    "mageia": "rpm",
    "openeuler": "rpm",
    "azure linux": "rpm",
    "amazon linux": "rpm",
    "oracle linux": "rpm",
    "pypi": "pep440",
    "npm": "semver_npm",
    "go": "semver_go",
    "crates.io": "semver_cargo",
    "maven": "maven",
    "nuget": "nuget",
    "rubygems": "rubygems",
    "packagist": "composer",
}
"""OSV ecosystem (lower-cased, before any ``:``) to the module that orders its versions."""


class _Scheme(Protocol):
    def parse(self, version: str) -> object: ...
    def compare(self, a: str, b: str) -> int: ...


def scheme_of(ecosystem: str) -> str | None:
    """The scheme module name for an OSV ecosystem, or None when Moat has no comparator for it."""
    return _SCHEMES.get(ecosystem.split(":", 1)[0].strip().lower())


@cache
def _module(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"{__name__}.{name}":
            return None
        raise


@cache
def _scheme(ecosystem: str) -> _Scheme:
    name = scheme_of(ecosystem)
    module = _module(name) if name else None
    if module is None:
        raise VersionError("unknown", ecosystem, "no version comparator for this ecosystem")
    return cast(_Scheme, module)


def supports(ecosystem: str) -> bool:
    """Whether versions of this OSV ecosystem can be ordered."""
    name = scheme_of(ecosystem)
    return name is not None and _module(name) is not None


def compare(ecosystem: str, a: str, b: str) -> int:
    """-1, 0 or 1 as ``a`` orders before, equal to or after ``b`` in that ecosystem.

    Raises VersionError (a one-line ParseError) when either string is not a valid version there or
    the ecosystem has no comparator.
    """
    return _scheme(ecosystem).compare(a, b)


def is_valid(ecosystem: str, version: str) -> bool:
    """Whether ``version`` parses in that ecosystem's scheme (False for unsupported ecosystems)."""
    if not supports(ecosystem):
        return False
    try:
        _scheme(ecosystem).parse(version)
    except VersionError:
        return False
    return True
