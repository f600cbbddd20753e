"""PHP Composer: ``composer.lock`` (what a project locked) and ``vendor/composer/installed.json``
(what ``composer install`` really put in ``vendor/``, the better evidence inside an image).

Both hold Composer package objects (name, version, license, require). composer.lock splits them
into ``packages`` and ``packages-dev``; installed.json is a bare list (Composer 1) or
``{"packages": [...], "dev-package-names": [...]}`` (Composer 2). ``require`` entries that name
another locked package become ``depends_on``; platform requirements (php, ext-*) have no package.
"""

from __future__ import annotations

import json
import re
from typing import Any

from moat.errors import ParseError
from moat.inventory.analyzer import AnalysisResult, Analyzer, FileInput, register
from moat.inventory.purl import make_purl
from moat.model import Package

MAX_JSON_SIZE = 64 * 1024 * 1024
_LICENSE_SPLIT = re.compile(r"\s+(?:or|and)\s+|\s*[,;/]\s*", re.IGNORECASE)


@register
class ComposerAnalyzer(Analyzer):
    name = "composer"
    version = 1
    basenames = frozenset({"composer.lock", "installed.json"})
    max_file_size = MAX_JSON_SIZE

    def wants(self, path: str, mode: int) -> bool:
        if path.rsplit("/", 1)[-1] == "installed.json":
            return path == "vendor/composer/installed.json" or path.endswith("/vendor/composer/installed.json")
        return True

    def analyze(self, file: FileInput) -> AnalysisResult:
        try:
            document = json.loads(file.read())
        except (ValueError, RecursionError) as exc:
            raise ParseError(f"{file.path.rsplit('/', 1)[-1]} is not valid JSON: {exc}") from exc
        if file.path.endswith("installed.json"):
            runtime, dev = _installed_sections(document)
        else:
            runtime, dev = _lock_sections(document)
        return AnalysisResult(packages=packages_from_entries(runtime, dev, file.path))


def _lock_sections(document: Any) -> tuple[list[Any], list[Any]]:
    if not isinstance(document, dict):
        raise ParseError("composer.lock: top level is not an object")
    runtime = document.get("packages") or []
    dev = document.get("packages-dev") or []
    if not isinstance(runtime, list) or not isinstance(dev, list):
        raise ParseError("composer.lock: 'packages' and 'packages-dev' must be lists")
    return runtime, dev


def _installed_sections(document: Any) -> tuple[list[Any], list[Any]]:
    if isinstance(document, list):  # Composer 1
        return document, []
    if not isinstance(document, dict) or not isinstance(document.get("packages"), list):
        raise ParseError("installed.json: expected a list of packages or an object with 'packages'")
    dev_names = document.get("dev-package-names") or []
    if not isinstance(dev_names, list):
        raise ParseError("installed.json: 'dev-package-names' must be a list")
    dev_set = {name for name in dev_names if isinstance(name, str)}
    runtime = [p for p in document["packages"] if not (isinstance(p, dict) and p.get("name") in dev_set)]
    dev = [p for p in document["packages"] if isinstance(p, dict) and p.get("name") in dev_set]
    return runtime, dev


def packages_from_entries(runtime: list[Any], dev: list[Any], found_in: str) -> list[Package]:
    entries = [(_entry(item), False) for item in runtime] + [(_entry(item), True) for item in dev]
    # Composer names are case-insensitive: a require key may differ in case from the locked name.
    locked = {entry["name"].lower(): f"{entry['name']}@{entry['version']}" for entry, _ in entries}
    packages = []
    for entry, is_dev in entries:
        vendor, _, short = entry["name"].rpartition("/")
        depends_on = sorted({locked[key] for required in entry["require"] if (key := required.lower()) in locked})
        packages.append(
            Package(
                name=entry["name"],
                version=entry["version"],
                type="composer",
                purl=make_purl("composer", short, entry["version"], namespace=vendor or None),
                licenses=entry["licenses"],
                found_in=found_in,
                dev=is_dev,
                depends_on=depends_on,
            )
        )
    return packages


def _entry(item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise ParseError("composer: a package entry is not an object")
    name, version = item.get("name"), item.get("version")
    if not isinstance(name, str) or not name or not isinstance(version, str) or not version:
        raise ParseError("composer: a package entry lacks a name or version")
    require = item.get("require") or {}
    if not isinstance(require, dict):
        raise ParseError(f"composer: 'require' of {name} is not an object")
    return {"name": name, "version": version, "licenses": _licenses(item.get("license")), "require": list(require)}


def _licenses(value: Any) -> list[str]:
    """``["MIT"]``, ``"MIT"`` or ``"MIT or BSD-2-Clause"`` → ``["MIT", "BSD-2-Clause"]``."""
    raw = value if isinstance(value, list) else [value] if isinstance(value, str) else []
    found: list[str] = []
    for item in raw:
        if not isinstance(item, str):
            continue
        for part in _LICENSE_SPLIT.split(item.strip().strip("()")):
            part = part.strip().strip("()")
            if part and part not in found:
                found.append(part)
    return found
