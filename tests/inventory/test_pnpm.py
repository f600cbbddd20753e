"""pnpm-lock.yaml, versions 5.x, 6.x and 9.x.

Checked against the shared corpus (Trivy's pnpm fixtures), against a real pnpm workspace that pnpm
itself installs (``pnpm list`` is the ground truth), and against hostile files.
"""

from __future__ import annotations

import copy
import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from corpus import Case, cases, check_case, compare, file_input, known_differences, prefilter_accepts, run_case
from moat.errors import ParseError
from moat.inventory.analyzer import AnalysisResult, FileInput
from moat.inventory.analyzers.npm_package_json import NpmPackageJsonAnalyzer
from moat.inventory.analyzers.pnpm_lock import PnpmLockAnalyzer
from moat.model import Package

PNPM = PnpmLockAnalyzer()


def _file(content: str | bytes, path: str = "app/pnpm-lock.yaml") -> FileInput:
    data = content.encode() if isinstance(content, str) else content
    return FileInput(path, io.BytesIO(data), len(data))


def _by_id(packages: list[Package]) -> dict[str, Package]:
    found = {p.id: p for p in packages}
    assert len(found) == len(packages), "a package was reported twice"
    return found


# --- the shared corpus ------------------------------------------------------------------------


def _in_moat_terms(case: Case) -> Case:
    """The case with Trivy's package ids turned into Moat's ``name@version``.

    Trivy's pnpm ids keep pnpm's key, peers and URLs included (``debug@4.3.4(supports-color@8.1.1)``,
    ``asynckit@https://…/tarball/v0.4.0``); Moat identifies a package by ``name@version``, so copies
    that differ only in resolved peers are one package: dev-only if every copy is, direct if any
    is, their dependencies united. Trivy also keeps the edges of a package it does not report (a
    ``file:`` directory without a version); with no package to hang them on, they are dropped.
    """
    view = copy.deepcopy(case)
    ids = {p["id"]: f"{p['name']}@{p['version']}" for p in view.expected.get("packages", [])}
    merged: dict[str, dict[str, Any]] = {}
    for item in view.expected.get("packages", []):
        key = ids[item["id"]]
        item = {**item, "id": key}
        if key in merged:
            known = merged[key]
            if "dev" in known or "dev" in item:
                known["dev"] = bool(known.get("dev")) and bool(item.get("dev"))
            if item.get("relationship") == "direct":
                known["relationship"] = "direct"
        else:
            merged[key] = item
    view.expected["packages"] = list(merged.values())
    graph: dict[str, set[str]] = {}
    for dep in view.expected.get("dependencies", []):
        if dep["id"] in ids:
            graph.setdefault(ids[dep["id"]], set()).update(ids.get(d, d) for d in dep.get("depends_on", []))
    view.expected["dependencies"] = [{"id": k, "depends_on": sorted(v)} for k, v in graph.items()]
    return view


PNPM_CASES = cases("packages", "pnpm")
KNOWN = known_differences("pnpm")


def test_corpus_has_the_pnpm_cases() -> None:
    assert len(PNPM_CASES) == 11


@pytest.mark.parametrize("case", PNPM_CASES, ids=lambda c: c.name)
def test_corpus_case(case: Case) -> None:
    check_case(PNPM, _in_moat_terms(case), "pnpm")


@pytest.mark.parametrize("case", [c for c in PNPM_CASES if c.name in KNOWN], ids=lambda c: c.name)
def test_known_differences_are_only_the_dev_packages(case: Case) -> None:
    """Trivy leaves out what pnpm 5/6 marks ``dev: true``; Moat reports it flagged dev.

    Without those, the result must be exactly Trivy's; and the dev packages must be exactly the
    entries the file marks ``dev: true``.
    """
    outcome = run_case(PNPM, case)
    assert isinstance(outcome, AnalysisResult)
    production = AnalysisResult(packages=[p for p in outcome.packages if not p.dev])
    assert compare(_in_moat_terms(case), production) == []
    marked = len(re.findall(r"^    dev: true$", case.input_path.read_text(), re.MULTILINE))
    assert marked > 0
    assert len([p for p in outcome.packages if p.dev]) == marked


def test_corpus_same_version_different_peers_is_one_package() -> None:
    case = next(c for c in PNPM_CASES if c.name == "trivy-pnpm-lock_v9_same-vers-diff-peers")
    found = _by_id(PNPM.analyze(file_input(case.input_path, case.input)).packages)
    resolver = found["jest-pnp-resolver@1.2.3"]
    # one copy serves the production jest-config, the other only the dev jest-runner@27
    assert resolver.dev is False and resolver.relationship == "indirect"
    assert resolver.depends_on == ["jest-resolve@27.5.1", "jest-resolve@30.0.2"]
    assert found["jest-resolve@27.5.1"].dev is True


def test_corpus_purls_and_found_in() -> None:
    case = next(c for c in PNPM_CASES if c.name == "trivy-pnpm-lock_v9")
    found = _by_id(PNPM.analyze(file_input(case.input_path, "srv/pnpm-lock.yaml")).packages)
    assert found["@babel/helper-string-parser@7.24.1"].purl == "pkg:npm/%40babel/helper-string-parser@7.24.1"
    assert found["debug@4.3.5"].purl == "pkg:npm/debug@4.3.5"  # a tarball with a version of its own
    assert {p.found_in for p in found.values()} == {"srv/pnpm-lock.yaml"}


# --- a real pnpm workspace ----------------------------------------------------------------------

ROOT_MANIFEST = {
    "name": "moat-probe",
    "version": "1.0.0",
    "private": True,
    "dependencies": {
        "debug": "2.6.9",
        "ms": "2.1.3",
        "@types/node": "18.0.0",
        "chalk": "2.4.2",
        "lodash-old": "npm:lodash@4.17.20",
        "lib": "workspace:*",
    },
    "devDependencies": {"is-number": "7.0.0", "has-flag": "3.0.0"},
}
LIB_MANIFEST = {
    "name": "lib",
    "version": "0.1.0",
    "dependencies": {"is-number": "6.0.0"},
    "devDependencies": {"minimist": "1.2.0"},
}


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"{args[:3]} failed: {done.stdout[-1500:]} {done.stderr[-1500:]}"
    return done.stdout


@pytest.fixture(scope="session")
def pnpm_workspace(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    """A two-project workspace installed by pnpm 9, and ``pnpm list`` of it."""
    npm = shutil.which("npm")
    assert npm, "Node.js 20 and npm are part of this machine kind"
    base = tmp_path_factory.mktemp("pnpm")
    # CI=true makes yarn berry and pnpm refuse to write lockfiles; these tests create them.
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update({"npm_config_cache": str(base / "npm-cache"), "npm_config_update_notifier": "false"})
    env["YARN_ENABLE_IMMUTABLE_INSTALLS"] = "false"
    tools = base / "tools"
    tools.mkdir()
    (tools / "package.json").write_text('{"private": true}')
    _run([npm, "install", "--ignore-scripts", "--no-audit", "--no-fund", "pnpm@9.15.9"], tools, env)
    pnpm = str(tools / "node_modules/.bin/pnpm")
    project = base / "app"
    (project / "packages/lib").mkdir(parents=True)
    (project / "package.json").write_text(json.dumps(ROOT_MANIFEST))
    (project / "packages/lib/package.json").write_text(json.dumps(LIB_MANIFEST))
    (project / "pnpm-workspace.yaml").write_text('packages:\n  - "packages/*"\n')
    _run([pnpm, "install", "--ignore-scripts", "--store-dir", str(base / "store")], project, env)
    listing = _run([pnpm, "list", "--recursive", "--depth", "Infinity", "--json"], project, env)
    return project, json.loads(listing)


def _pnpm_truth(importers: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """id → {children, direct, production} from ``pnpm list``; links to workspaces are not packages."""
    truth: dict[str, dict[str, Any]] = {}

    def visit(node: dict[str, Any], top: bool, production: bool) -> str | None:
        children = [visit(c, False, production) for c in node.get("dependencies", {}).values()]
        if str(node["version"]).startswith("link:"):
            return None
        node_id = f"{node['from']}@{node['version']}"
        info = truth.setdefault(node_id, {"children": set(), "direct": False, "production": False})
        info["children"].update(c for c in children if c)
        info["direct"] = info["direct"] or top
        info["production"] = info["production"] or production
        return node_id

    for importer in importers:
        for field, production in (("dependencies", True), ("optionalDependencies", True), ("devDependencies", False)):
            for node in importer.get(field, {}).values():
                visit(node, True, production)
    return truth


def test_real_lockfile_matches_pnpm_list(pnpm_workspace: tuple[Path, list[dict[str, Any]]]) -> None:
    project, listing = pnpm_workspace
    truth = _pnpm_truth(listing)
    assert {"lodash@4.17.20", "is-number@6.0.0", "is-number@7.0.0", "minimist@1.2.0"} <= set(truth)
    assert prefilter_accepts(PNPM, "app/pnpm-lock.yaml")
    result = PNPM.analyze(file_input(project / "pnpm-lock.yaml", "app/pnpm-lock.yaml"))
    assert result.warnings == []
    found = _by_id(result.packages)
    assert set(found) == set(truth)
    for package_id, info in truth.items():
        package = found[package_id]
        assert set(package.depends_on) == info["children"], package_id
        assert package.relationship == ("direct" if info["direct"] else "indirect"), package_id
        assert package.dev is (not info["production"]), package_id
    assert found["@types/node@18.0.0"].purl == "pkg:npm/%40types/node@18.0.0"


def test_real_pnpm_store_layout_is_read_by_the_installed_package_analyzer(
    pnpm_workspace: tuple[Path, list[dict[str, Any]]],
) -> None:
    """node_modules/.pnpm/<key>/node_modules/<name>/package.json: one real directory per package.

    The walk does not follow symlinks, like the image walker, so each package is seen once.
    """
    project, listing = pnpm_workspace
    analyzer = NpmPackageJsonAnalyzer()
    seen: list[str] = []
    for directory, _dirs, files in os.walk(project):
        if "package.json" not in files:
            continue
        image_path = "app/" + (Path(directory) / "package.json").relative_to(project).as_posix()
        if prefilter_accepts(analyzer, image_path):
            result = analyzer.analyze(file_input(Path(directory) / "package.json", image_path))
            seen.extend(p.id for p in result.packages)
    assert sorted(seen) == sorted(_pnpm_truth(listing))


# --- hostile and unusual files --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lockfileVersion: '9.0'\npackages: [\n", "invalid YAML"),
        ("lockfileVersion: '9.0'\nimporters: &i {}\nx: *i\n", "aliases"),
        ("lockfileVersion: '9.0'\npackages:\n  " + "a: {" * 40 + "}" * 40 + "\n", "nested deeper"),
        ("- 1\n- 2\n", "expected YAML mappings"),
        ("", "expected YAML mappings"),
        ("packages: {}\n", "no lockfileVersion"),
        ("lockfileVersion: [9]\n", "no lockfileVersion"),
        ("lockfileVersion: 'nine'\n", "unreadable lockfileVersion"),
        ("lockfileVersion: '9.0'\n---\n- x\n", "expected YAML mappings"),
        ("lockfileVersion: '9.0'\n" + "---\nlockfileVersion: '9.0'\n" * 20, "documents"),
        (b"lockfileVersion: '9.0'\n\x00\x01", "invalid YAML"),
        ("lockfileVersion: '9.0'\n? [a, b]\n: c\n", "plain scalars"),
    ],
)
def test_bad_files_raise_parse_error(text: str | bytes, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        PNPM.analyze(_file(text))


def test_empty_documents_are_ignored() -> None:
    text = "---\n---\nlockfileVersion: '9.0'\nimporters:\n  .: {}\npackages:\n  a@1.0.0: {}\nsnapshots:\n---\n"
    assert [(p.id, p.dev, p.relationship) for p in PNPM.analyze(_file(text)).packages] == [
        ("a@1.0.0", True, "indirect")
    ]


def test_wrong_types_are_skipped() -> None:
    text = """lockfileVersion: '9.0'
importers:
  .:
    dependencies:
      a: {specifier: '1', version: [1]}
      b: {specifier: '1', version: 1.0.0}
      c: 7
  broken: [1, 2]
packages:
  b@1.0.0: [not, a, mapping]
  'bad name@1.0.0': {}
snapshots:
  b@1.0.0:
    dependencies: [x, y]
  d@2.0.0:
    dependencies:
      b: {nested: mapping}
      e: 1.0.0
"""
    found = _by_id(PNPM.analyze(_file(text)).packages)
    assert set(found) == {"b@1.0.0", "d@2.0.0"}
    assert found["b@1.0.0"].relationship == "direct" and found["b@1.0.0"].depends_on == []
    assert found["d@2.0.0"].relationship == "indirect" and found["d@2.0.0"].dev is True
    assert found["d@2.0.0"].depends_on == []  # e@1.0.0 is not in the lockfile


def test_large_dependency_cycle_terminates() -> None:
    size = 2000
    snapshots = "".join(f"  p{i}@1.0.0:\n    dependencies:\n      p{(i + 1) % size}: 1.0.0\n" for i in range(size))
    text = (
        "lockfileVersion: '9.0'\nimporters:\n  .:\n    dependencies:\n      p0: {specifier: '1', version: 1.0.0}\n"
        f"snapshots:\n{snapshots}"
    )
    found = _by_id(PNPM.analyze(_file(text)).packages)
    assert len(found) == size
    assert found[f"p{size - 1}@1.0.0"].depends_on == ["p0@1.0.0"]
    assert not any(p.dev for p in found.values())


def test_v5_peer_suffixes_aliases_links_and_tarballs() -> None:
    text = """lockfileVersion: 5.4
importers:
  .:
    specifiers: {}
    dependencies:
      react-dom: 18.2.0_react@18.2.0
      old: /lodash/4.17.20
      sibling: link:../sibling
    devDependencies:
      tool: registry.example.invalid/tool/-/tool-1.0.0.tgz
packages:
  /react-dom/18.2.0_react@18.2.0:
    dependencies:
      react: 18.2.0
      scheduler: 0.23.0
    dev: false
  /react/18.2.0:
    dev: false
  /scheduler/0.23.0:
    dev: false
  /lodash/4.17.20:
    dev: false
  registry.example.invalid/tool/-/tool-1.0.0.tgz:
    resolution: {tarball: https://registry.example.invalid/tool/-/tool-1.0.0.tgz}
    name: tool
    version: 1.0.0
    dev: true
"""
    found = _by_id(PNPM.analyze(_file(text)).packages)
    assert set(found) == {"react-dom@18.2.0", "react@18.2.0", "scheduler@0.23.0", "lodash@4.17.20", "tool@1.0.0"}
    assert found["react-dom@18.2.0"].depends_on == ["react@18.2.0", "scheduler@0.23.0"]
    assert found["lodash@4.17.20"].relationship == "direct"
    assert found["tool@1.0.0"].dev and found["tool@1.0.0"].relationship == "direct"
    assert found["react@18.2.0"].relationship == "indirect"


def test_v6_scoped_peers_and_aliases() -> None:
    text = """lockfileVersion: '6.0'
dependencies:
  '@scope/a':
    specifier: ^1.0.0
    version: 1.0.0(react@18.2.0)
  cjs:
    specifier: npm:string-width@^4
    version: /string-width@4.2.3
packages:
  /@scope/a@1.0.0(react@18.2.0):
    resolution: {integrity: sha512-x}
    peerDependencies:
      react: '*'
    dependencies:
      react: 18.2.0
  /react@18.2.0:
    resolution: {integrity: sha512-y}
  /string-width@4.2.3:
    resolution: {integrity: sha512-z}
"""
    found = _by_id(PNPM.analyze(_file(text)).packages)
    assert set(found) == {"@scope/a@1.0.0", "react@18.2.0", "string-width@4.2.3"}
    assert found["@scope/a@1.0.0"].purl == "pkg:npm/%40scope/a@1.0.0"
    assert found["@scope/a@1.0.0"].depends_on == ["react@18.2.0"]
    assert found["string-width@4.2.3"].relationship == "direct"
    assert all(not p.dev for p in found.values())  # no dev field: computed, all reachable from production


@pytest.mark.parametrize(
    ("path", "wanted"),
    [
        ("app/pnpm-lock.yaml", True),
        ("pnpm-lock.yaml", True),
        ("app/node_modules/x/pnpm-lock.yaml", False),
        ("app/node_modules/.pnpm/lock.yaml", False),
        ("app/pnpm-lock.yml", False),
    ],
)
def test_paths(path: str, wanted: bool) -> None:
    assert prefilter_accepts(PNPM, path) is wanted
