"""Rust executables built with cargo-auditable: the crate graph in the ``.dep-v0`` section.

The section holds zlib-compressed JSON, ``{"packages": [{"name", "version", "source", "kind",
"dependencies": [indices], "root"}]}``. Only runtime crates are reported (build-time crates such as
proc-macros are not in the program), as Trivy does; the graph gives ``depends_on`` and lets the
root's own dependencies be called direct and the rest indirect.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from moat.errors import ParseError
from moat.inventory.analyzer import AnalysisResult, Analyzer, FileInput, register
from moat.inventory.binfmt.executable import executable_of
from moat.inventory.purl import make_purl
from moat.model import Package

SECTION = ".dep-v0"
MAX_COMPRESSED = 8 * 1024 * 1024
MAX_JSON = 32 * 1024 * 1024
"""cargo-auditable data is kilobytes; the cap stops a zlib bomb from filling memory."""
MAX_PACKAGES = 100_000


@register
class RustBinaryAnalyzer(Analyzer):
    """Dependency lists that cargo-auditable embedded in ELF, PE or Mach-O executables."""

    name = "rustbinary"
    version = 1
    executables = True

    def analyze(self, file: FileInput) -> AnalysisResult:
        exe = executable_of(file)
        if exe is None:
            return AnalysisResult()
        section = exe.section(SECTION)
        if section is None:
            return AnalysisResult()
        compressed = exe.section_data(section, MAX_COMPRESSED)
        return AnalysisResult(packages=parse_audit_data(decompress(compressed), file.path))


def decompress(data: bytes) -> bytes:
    """Inflate the zlib stream, refusing output past :data:`MAX_JSON`."""
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, MAX_JSON)
    except zlib.error as exc:
        raise ParseError(f"cargo-auditable: section is not zlib data ({exc})") from exc
    if inflater.unconsumed_tail:
        raise ParseError(f"cargo-auditable: dependency data inflates past {MAX_JSON} bytes")
    return out


def parse_audit_data(raw: bytes, found_in: str) -> list[Package]:
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ParseError(f"cargo-auditable: dependency data is not JSON ({exc})") from exc
    entries = document.get("packages") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ParseError("cargo-auditable: no 'packages' list")
    if len(entries) > MAX_PACKAGES:
        raise ParseError(f"cargo-auditable: {len(entries)} packages is over the {MAX_PACKAGES} limit")
    crates = [_crate(entry, index) for index, entry in enumerate(entries)]
    runtime = [crate["kind"] == "runtime" for crate in crates]
    direct: set[int] = set()
    for crate in crates:
        if crate["root"]:
            direct.update(crate["dependencies"])
    packages: list[Package] = []
    for index, crate in enumerate(crates):
        if not runtime[index]:
            continue
        depends_on = []
        for dep in crate["dependencies"]:
            if dep >= len(crates):
                raise ParseError(f"cargo-auditable: dependency index {dep} is out of range")
            if runtime[dep]:
                depends_on.append(f"{crates[dep]['name']}@{crates[dep]['version']}")
        relationship = _relationship(crate["root"], index in direct)
        source = crate["source"]
        packages.append(
            Package(
                name=crate["name"],
                version=crate["version"],
                type="cargo",
                purl=make_purl("cargo", crate["name"], crate["version"]),
                found_in=found_in,
                relationship=relationship,
                depends_on=sorted(set(depends_on)),
                extra={"source": source} if source and source != "crates.io" else {},
            )
        )
    return packages


def _relationship(root: bool, direct: bool) -> str:
    if root:
        return "root"
    return "direct" if direct else "indirect"


def _crate(entry: Any, index: int) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise ParseError(f"cargo-auditable: package {index} is not an object")
    name, version = entry.get("name"), entry.get("version")
    if not isinstance(name, str) or not name or not isinstance(version, str) or not version:
        raise ParseError(f"cargo-auditable: package {index} lacks a name or version")
    dependencies = entry.get("dependencies") or []
    if not isinstance(dependencies, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in dependencies
    ):
        raise ParseError(f"cargo-auditable: package {index} has bad dependency indices")
    source = entry.get("source")
    if isinstance(source, dict):  # {"Other": "..."} in the schema's extensible form
        source = next((str(v) for v in source.values()), "")
    return {
        "name": name,
        "version": version,
        "kind": "build" if entry.get("kind") == "build" else "runtime",
        "root": entry.get("root") is True,
        "dependencies": dependencies,
        "source": source if isinstance(source, str) else "",
    }
