"""The dependency graph an rpm database implies.

A header records what it requires (capability names and file paths) and what it provides, but
not which package satisfies what: rpm works that out at install time. This module does the same
lookup over the installed set, ignoring version constraints (any installed provider counts, as
``rpm -q --whatprovides NAME`` answers): a capability is satisfied by every package that lists it
in PROVIDENAME, a file path also by every package that installs that file.

Requirements on rpm itself (``rpmlib(...)``) and rich dependencies (``(a if b)``) are left out:
no installed package provides the former, and the latter are boolean expressions, not names.
"""

from __future__ import annotations

from moat.inventory.rpmdb.header import RpmHeaderInfo


def _resolvable(requirement: str) -> bool:
    return bool(requirement) and not requirement.startswith(("rpmlib(", "("))


def resolve_requires(headers: list[RpmHeaderInfo]) -> list[list[int]]:
    """For each header, the sorted indexes of the other headers that satisfy its requirements."""
    providers: dict[str, set[int]] = {}
    for index, header in enumerate(headers):
        for capability in header.provides:
            providers.setdefault(capability, set()).add(index)
    wanted_files = {req for header in headers for req in header.requires if req.startswith("/")}
    if wanted_files:
        for index, header in enumerate(headers):
            for path in header.files:
                if path in wanted_files:
                    providers.setdefault(path, set()).add(index)
    graph: list[list[int]] = []
    for index, header in enumerate(headers):
        found: set[int] = set()
        for requirement in header.requires:
            if _resolvable(requirement):
                found |= providers.get(requirement, set())
        found.discard(index)
        graph.append(sorted(found))
    return graph
