"""Merging the several places one package appears in a lockfile into one Package.

npm installs the same ``name@version`` at several paths of the node_modules tree, and pnpm keeps
one copy per set of resolved peers. Moat reports a package once per file, identified by
``name@version`` (the form ``depends_on`` refers to), so the occurrences are folded together:
dev-only only if every occurrence is, direct if any occurrence is, licenses and dependencies
united.
"""

from __future__ import annotations

from collections.abc import Iterable

from moat.errors import ParseError
from moat.inventory.js.common import make_package, package_id
from moat.model import Package

MAX_PACKAGES = 500_000

_RANK = {None: 0, "indirect": 1, "direct": 2}


class PackageCollector:
    """Accumulates occurrences in first-seen order and merges those with the same id."""

    def __init__(self, found_in: str, what: str) -> None:
        self._found_in = found_in
        self._what = what
        self._packages: dict[str, Package] = {}

    def __len__(self) -> int:
        return len(self._packages)

    def add(
        self,
        name: str,
        version: str,
        *,
        licenses: Iterable[str] = (),
        dev: bool = False,
        relationship: str | None = None,
        depends_on: Iterable[str] = (),
    ) -> Package:
        key = package_id(name, version)
        known = self._packages.get(key)
        if known is None:
            if len(self._packages) >= MAX_PACKAGES:
                raise ParseError(f"{self._what}: more than {MAX_PACKAGES} packages")
            package = make_package(
                name,
                version,
                self._found_in,
                licenses=licenses,
                dev=dev,
                relationship=relationship,
                depends_on=depends_on,
            )
            self._packages[key] = package
            return package
        known.dev = known.dev and dev
        if _RANK.get(relationship, 0) > _RANK.get(known.relationship, 0):
            known.relationship = relationship
        for text in licenses:
            if text not in known.licenses:
                known.licenses.append(text)
        known.depends_on = sorted(set(known.depends_on).union(depends_on))
        return known

    def packages(self) -> list[Package]:
        return list(self._packages.values())
