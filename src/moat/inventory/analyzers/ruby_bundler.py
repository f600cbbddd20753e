"""Bundler's ``Gemfile.lock``: locked gems, their dependency graph, and which are direct.

The format is indentation-based: a section header at column 0 (``GEM``, ``GIT``, ``PATH``,
``PLUGIN SOURCE``, ``DEPENDENCIES``, …); under a source section, ``specs:`` lists each locked gem at
four spaces as ``name (version[-platform])`` with its own dependencies at six spaces. ``DEPENDENCIES``
lists the Gemfile's gems (two spaces, ``!`` marks a non-default source): those are ``direct``, the
rest ``indirect``. A gem locked for several platforms is reported once; the platform goes to
``extra`` and the purl's ``platform`` qualifier.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from moat.inventory.analyzer import AnalysisResult, Analyzer, FileInput, register
from moat.inventory.analyzers.ruby_gemspec import GEM_NAME, GEM_VERSION
from moat.inventory.purl import make_purl
from moat.model import Package

MAX_LOCK_SIZE = 32 * 1024 * 1024
MAX_GEMS = 50_000

_SOURCES = frozenset({"GEM", "GIT", "PATH", "PLUGIN SOURCE"})
_SPEC = re.compile(r"^ {4}([^\s(]+) \(([^)\s]+)\)$")
_SPEC_DEP = re.compile(r"^ {6}([^\s(]+)(?: \([^)]*\))?$")
_DIRECT = re.compile(r"^ {2}([^\s(!]+)!?(?: \([^)]*\))?$")


@dataclass(slots=True)
class _Spec:
    package: Package
    deps: dict[str, None] = field(default_factory=dict)
    """Names this gem depends on (an ordered set)."""


@register
class GemfileLockAnalyzer(Analyzer):
    name = "gemfile-lock"
    version = 1
    max_file_size = MAX_LOCK_SIZE
    basenames = frozenset({"Gemfile.lock", "gems.locked"})

    def analyze(self, file: FileInput) -> AnalysisResult:
        specs: dict[str, _Spec] = {}
        direct: set[str] = set()
        has_dependencies = False
        section = ""
        in_specs = False
        current: _Spec | None = None
        for line in file.text().splitlines():
            line = line.rstrip("\r")
            if line and not line[0].isspace():
                section, in_specs, current = line.strip(), False, None
                has_dependencies = has_dependencies or section == "DEPENDENCIES"
                continue
            if section == "DEPENDENCIES":
                match = _DIRECT.match(line)
                if match:
                    direct.add(match[1])
                continue
            if section not in _SOURCES:
                continue
            if line == "  specs:":
                in_specs = True
                continue
            if not in_specs:
                continue
            current = self._line(line, current, specs, file.path)
        if not specs:
            return AnalysisResult(warnings=[f"{file.path}: no locked gems found, not a Gemfile.lock?"])
        return AnalysisResult(packages=_finish(specs, direct if has_dependencies else None))

    def _line(self, line: str, current: _Spec | None, specs: dict[str, _Spec], path: str) -> _Spec | None:
        """One line under ``specs:``; returns the spec later six-space lines belong to."""
        spec = _SPEC.match(line)
        if spec:
            name, locked = spec[1], spec[2]
            version, _, platform = locked.partition("-")
            if not GEM_NAME.match(name) or not GEM_VERSION.match(version) or len(specs) >= MAX_GEMS:
                return None
            key = f"{name}@{version}"
            if key in specs:
                return specs[key]
            package = Package(
                name=name,
                version=version,
                type="gem",
                purl=make_purl("gem", name, version, qualifiers={"platform": platform}),
                found_in=path,
            )
            if platform:
                package.extra["platform"] = platform
            specs[key] = _Spec(package)
            return specs[key]
        dep = _SPEC_DEP.match(line)
        if dep and current is not None:
            current.deps[dep[1]] = None
        return current


def _finish(specs: dict[str, _Spec], direct: set[str] | None) -> list[Package]:
    """Resolve dependency names to locked ids and set relationships (None when no DEPENDENCIES)."""
    by_name: dict[str, list[str]] = {}
    for key, spec in specs.items():
        by_name.setdefault(spec.package.name, []).append(key)
    packages = []
    for key, spec in specs.items():
        ids = {dep_id for name in spec.deps for dep_id in by_name.get(name, []) if dep_id != key}
        spec.package.depends_on = sorted(ids)
        if direct is not None:
            spec.package.relationship = "direct" if spec.package.name in direct else "indirect"
        packages.append(spec.package)
    return packages
