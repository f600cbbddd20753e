"""Installed npm packages: the package.json of each directory in a node_modules tree.

This is what an image really contains, lockfile or not (``npm ci`` output, globally installed CLIs
under /usr/lib/node_modules, pnpm's .pnpm store). Only ``node_modules/<name>/package.json`` and
``node_modules/@scope/<name>/package.json`` are packages: the application's own package.json is
not installed software, and the package.json files packages carry in sub-directories (``lib/``,
``esm/``) are build markers, not packages.

One file shows one package; which package required it is not recorded there (the ranges in
``dependencies`` are not versions), so ``depends_on`` and ``relationship`` stay empty.
"""

from __future__ import annotations

import re
from typing import ClassVar

from moat.inventory.analyzer import AnalysisResult, Analyzer, FileInput, register
from moat.inventory.js.common import is_version, licenses_from, make_package, valid_name
from moat.inventory.js.loading import load_json_object

# A package directory never starts with "." (.bin, .pnpm, .cache) or "_" (npm's temp dirs).
_INSTALLED = re.compile(r"(?:^|/)node_modules/(?:@[^/.][^/]*/)?[^/._@][^/]*/package\.json$")


@register
class NpmPackageJsonAnalyzer(Analyzer):
    """One installed package per ``node_modules/[@scope/]name/package.json``."""

    name = "npm-package-json"
    version = 1
    max_file_size = 16 * 1024 * 1024
    basenames: ClassVar[frozenset[str]] = frozenset({"package.json"})

    def wants(self, path: str, mode: int) -> bool:
        return bool(_INSTALLED.search(path))

    def analyze(self, file: FileInput) -> AnalysisResult:
        manifest = load_json_object(file.read(), file.path)
        name = manifest.get("name")
        version = manifest.get("version")
        if name is None or version is None:
            # Test fixtures and build markers inside packages look like this; npm would not
            # install such a directory as a dependency, so it is not a package. Not worth a warning.
            return AnalysisResult()
        if not isinstance(name, str) or not isinstance(version, str) or not valid_name(name):
            return AnalysisResult(warnings=[f"{file.path}: package name or version is not a string, skipped"])
        if not is_version(version):
            return AnalysisResult(warnings=[f"{file.path}: version {version[:64]!r} is not a version, skipped"])
        package = make_package(name, version, file.path, licenses=licenses_from(manifest))
        return AnalysisResult(packages=[package])
