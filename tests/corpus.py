"""Running the shared conformance corpus (../shared/corpus) against Moat's analyzers.

Every case's ``expected.json`` is compared field by field with what the analyzer found. A case
that Moat deliberately answers differently is listed, with its reason, in
``tests/known_differences/<ecosystem>.yaml``; the tests check that a listed case really still
differs, so the list cannot go stale.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from moat.errors import ParseError
from moat.inventory.analyzer import AnalysisResult, Analyzer, FileInput
from moat.model import Package

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("MOAT_SHARED_DIR", ROOT.parent / "shared"))
CORPUS = SHARED / "corpus"
KNOWN_DIR = Path(__file__).resolve().parent / "known_differences"


@dataclass(slots=True)
class Case:
    name: str
    directory: Path
    kind: str
    input: str
    expected: dict[str, Any]
    raw: dict[str, Any]

    @property
    def input_path(self) -> Path:
        return self.directory / self.input


def cases(category: str, ecosystem: str) -> list[Case]:
    """All cases under corpus/<category>/<ecosystem>/, sorted by name."""
    base = CORPUS / category / ecosystem
    found = []
    for expected_file in sorted(base.glob("*/expected.json")):
        data = json.loads(expected_file.read_text())
        found.append(
            Case(
                name=expected_file.parent.name,
                directory=expected_file.parent,
                kind=data.get("kind", ""),
                input=data.get("input", ""),
                expected=data.get("expected", {}),
                raw=data,
            )
        )
    return found


def known_differences(ecosystem: str) -> dict[str, str]:
    """Case name → reason, from tests/known_differences/<ecosystem>.yaml (empty when absent)."""
    path = KNOWN_DIR / f"{ecosystem}.yaml"
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text()) or {}
    return {str(k): str(v) for k, v in data.items()}


def file_input(real_path: Path, image_path: str) -> FileInput:
    data = real_path.read_bytes()
    return FileInput(image_path, io.BytesIO(data), len(data), real_path.stat().st_mode & 0o7777)


def prefilter_accepts(analyzer: Analyzer, path: str, mode: int = 0o644) -> bool:
    """The walker's pre-filter and ``wants`` together, as the engine applies them."""
    base = path.rsplit("/", 1)[-1]
    parent = path.rsplit("/", 1)[0] if "/" in path else ""
    hit = (
        base in analyzer.basenames
        or (bool(analyzer.suffixes) and base.endswith(analyzer.suffixes))
        or parent in analyzer.dirnames
        or (analyzer.executables and bool(mode & 0o111))
    )
    return hit and analyzer.wants(path, mode)


def run_case(analyzer: Analyzer, case: Case) -> AnalysisResult | ParseError:
    """Analyze the case's input the way the walker would; a ParseError is returned, not raised."""
    image_path = case.input
    try:
        return analyzer.analyze(file_input(case.input_path, image_path))
    except ParseError as exc:
        return exc


FIELD_MAP = {
    "src_name": "source_name",
    "src_version": "source_version",
}


def _actual_field(package: Package, key: str) -> Any:
    if key in FIELD_MAP:
        return getattr(package, FIELD_MAP[key])
    if key in ("arch", "epoch", "release", "dev", "relationship", "purl"):
        return getattr(package, key)
    if key == "licenses":
        return package.licenses
    if key == "license":
        return " ".join(package.licenses) if package.licenses else None
    if key == "depends_on":
        return sorted(package.depends_on)
    if key == "indirect":
        return package.relationship == "indirect"
    if key == "file_path":
        return package.found_in
    return package.extra.get(key)


COMPARED_FIELDS = (
    "src_name",
    "src_version",
    "arch",
    "epoch",
    "release",
    "licenses",
    "license",
    "depends_on",
    "dev",
    "indirect",
    "relationship",
    "source_rpm",
    "vendor",
    "purl",
    "file_path",
)


def _expected_version(expected: dict[str, Any]) -> str:
    """The full version Moat reports: rpm puts ``epoch:version-release`` together."""
    version = str(expected.get("version", ""))
    if expected.get("release"):
        version = f"{version}-{expected['release']}"
    if expected.get("epoch") not in (None, 0, "0", "") and expected.get("release"):
        version = f"{expected['epoch']}:{version}"
    return version


def compare(case: Case, outcome: AnalysisResult | ParseError, fields: tuple[str, ...] = COMPARED_FIELDS) -> list[str]:
    """Differences between the corpus expectation and Moat's result, as readable lines."""
    expected = case.expected
    if expected.get("error"):
        return [] if isinstance(outcome, ParseError) or not outcome.packages else ["expected a parse error"]
    if isinstance(outcome, ParseError):
        return [f"unexpected parse error: {outcome}"]
    problems: list[str] = []
    packages = outcome.packages
    by_key: dict[tuple[str, str], list[Package]] = {}
    for package in packages:
        by_key.setdefault((package.name, package.version), []).append(package)
    wanted = expected.get("packages", [])
    for item in wanted:
        key = (str(item["name"]), _expected_version(item))
        candidates = by_key.get(key, [])
        if not candidates:
            problems.append(f"missing {key[0]}@{key[1]}")
            continue
        best: list[str] | None = None
        for candidate in candidates:
            diffs = []
            for name in fields:
                if name not in item:
                    continue
                want = item[name]
                have = _actual_field(candidate, name)
                if name == "depends_on":
                    want = sorted(want or [])
                if name == "licenses":
                    want = list(want or [])
                if want != have and not (want in (None, False, [], "") and have in (None, False, [], "")):
                    diffs.append(f"{key[0]}@{key[1]} {name}: want {want!r}, have {have!r}")
            if best is None or len(diffs) < len(best):
                best = diffs
        problems.extend(best or [])
    if expected.get("match") == "exact" and "packages" in expected:
        want_ids = sorted(f"{p['name']}@{_expected_version(p)}" for p in wanted)
        have_ids = sorted(p.id for p in packages)
        if want_ids != have_ids:
            extra = sorted(set(have_ids) - set(want_ids))
            if extra:
                problems.append(f"unexpected packages: {extra[:10]}")
            if len(have_ids) != len(want_ids):
                problems.append(f"count: want {len(want_ids)}, have {len(have_ids)}")
        if expected.get("ordered") and not problems:
            order = [f"{p['name']}@{_expected_version(p)}" for p in wanted]
            if [p.id for p in packages] != order:
                problems.append("order differs from the file's order")
    if "package_count" in expected and len(packages) != expected["package_count"]:
        problems.append(f"package_count: want {expected['package_count']}, have {len(packages)}")
    if "dependencies" in expected and "dependencies" in fields_for_graph(fields):
        have_graph = {p.id: sorted(p.depends_on) for p in packages}
        for dep in expected["dependencies"]:
            if sorted(dep.get("depends_on", [])) != have_graph.get(dep["id"], []):
                problems.append(f"dependencies of {dep['id']}: want {sorted(dep.get('depends_on', []))}, "
                                f"have {have_graph.get(dep['id'])}")
    return problems


def fields_for_graph(fields: tuple[str, ...]) -> tuple[str, ...]:
    return (*fields, "dependencies") if "depends_on" in fields else fields


def check_case(analyzer: Analyzer, case: Case, ecosystem: str) -> None:
    """Assert a case passes, or, when it is a listed known difference, that it still differs."""
    if not case.expected.get("error"):
        assert prefilter_accepts(analyzer, case.input), f"{analyzer.name} does not want {case.input}"
    problems = compare(case, run_case(analyzer, case))
    known = known_differences(ecosystem)
    if case.name in known:
        assert problems, f"{case.name} is listed as a known difference but now passes: remove it"
    else:
        assert not problems, f"{case.name}:\n  " + "\n  ".join(problems)
