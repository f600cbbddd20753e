"""Pipenv's ``Pipfile.lock`` (JSON): the ``default`` section is production, ``develop`` is dev-only.

A package in both sections is reported once, as production. Entries without a pinned ``==`` version
(editable checkouts, VCS and path requirements) cannot be matched against advisories and are skipped.
Pipfile.lock records no dependency graph and no direct/indirect split.
"""

from __future__ import annotations

import json
from typing import Any

from moat.errors import ParseError
from moat.inventory.analyzer import AnalysisResult, Analyzer, FileInput, register
from moat.inventory.analyzers.python_common import decode_text, is_valid_name, is_valid_version, pypi_package
from moat.model import Package

MAX_LOCK_SIZE = 64 * 1024 * 1024
MAX_PACKAGES = 50_000


@register
class PipfileLockAnalyzer(Analyzer):
    name = "pipfile-lock"
    version = 1
    max_file_size = MAX_LOCK_SIZE
    basenames = frozenset({"Pipfile.lock"})

    def analyze(self, file: FileInput) -> AnalysisResult:
        document = _load(file.read(), file.path)
        packages: dict[str, Package] = {}
        for section, dev in (("default", False), ("develop", True)):
            entries = document.get(section, {})
            if not isinstance(entries, dict):
                raise ParseError(f"{file.path}: section {section!r} is not an object")
            if len(entries) > MAX_PACKAGES:
                raise ParseError(f"{file.path}: more than {MAX_PACKAGES} packages in {section!r}")
            for name, entry in entries.items():
                version = _pinned_version(entry)
                if version is None or not is_valid_name(name) or not is_valid_version(version):
                    continue
                key = f"{name}@{version}"
                if key not in packages:
                    packages[key] = pypi_package(name, version, file.path, dev=dev)
        return AnalysisResult(packages=list(packages.values()))


def _load(data: bytes, path: str) -> dict[str, Any]:
    try:
        document = json.loads(decode_text(data, path))
    except json.JSONDecodeError as exc:
        raise ParseError(f"{path}: invalid JSON: {exc}") from exc
    except RecursionError as exc:
        raise ParseError(f"{path}: JSON nested too deeply") from exc
    if not isinstance(document, dict) or not ({"default", "develop", "_meta"} & document.keys()):
        raise ParseError(f"{path}: not a Pipfile.lock (no default/develop sections)")
    return document


def _pinned_version(entry: Any) -> str | None:
    if not isinstance(entry, dict):
        return None
    version = entry.get("version")
    if not isinstance(version, str) or not version.startswith("=="):
        return None
    return version.lstrip("=").strip()
