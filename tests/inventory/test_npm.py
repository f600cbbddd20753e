"""npm: package-lock.json / npm-shrinkwrap.json and installed node_modules package.json files.

Checked three ways: the shared corpus (Trivy's package-lock fixtures), a real project that npm
itself installs from the registry (with ``npm ls`` as the ground truth), and hostile files.
"""

from __future__ import annotations

import copy
import io
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from corpus import Case, cases, check_case, file_input, prefilter_accepts
from moat.errors import ParseError
from moat.inventory.analyzer import FileInput
from moat.inventory.analyzers.npm_lock import NpmLockAnalyzer
from moat.inventory.analyzers.npm_package_json import NpmPackageJsonAnalyzer
from moat.model import Package

LOCK = NpmLockAnalyzer()
INSTALLED = NpmPackageJsonAnalyzer()


def _file(path: str, content: bytes | str | dict[str, Any]) -> FileInput:
    if isinstance(content, dict):
        content = json.dumps(content)
    data = content.encode() if isinstance(content, str) else content
    return FileInput(path, io.BytesIO(data), len(data))


def _by_id(packages: list[Package]) -> dict[str, Package]:
    found: dict[str, Package] = {}
    for package in packages:
        assert package.id not in found, f"{package.id} reported twice"
        found[package.id] = package
    return found


# --- the shared corpus ------------------------------------------------------------------------


def _in_moat_terms(case: Case) -> Case:
    """The case with Trivy's spellings turned into Moat's, nothing else changed.

    Trivy says ``relationship: unknown`` where Moat leaves the field unset (lockfile v1 cannot
    tell), and Trivy's id of a package without a version is the bare name where Moat's
    :attr:`Package.id` is ``name@``.
    """
    view = copy.deepcopy(case)
    for item in view.expected.get("packages", []):
        if item.get("relationship") == "unknown":
            item["relationship"] = None
    versionless = {p["name"] for p in view.expected.get("packages", []) if p.get("version") == ""}
    for dep in view.expected.get("dependencies", []):
        if dep["id"] in versionless:
            dep["id"] += "@"
        dep["depends_on"] = [d + "@" if d in versionless else d for d in dep.get("depends_on", [])]
    return view


NPM_CASES = cases("packages", "npm")


def test_corpus_has_the_npm_cases() -> None:
    assert len(NPM_CASES) == 10


@pytest.mark.parametrize("case", NPM_CASES, ids=lambda c: c.name)
def test_corpus_case(case: Case) -> None:
    check_case(LOCK, _in_moat_terms(case), "npm")


def test_corpus_scoped_purl_and_found_in() -> None:
    case = next(c for c in NPM_CASES if c.name == "trivy-package-lock_v3")
    packages = _by_id(LOCK.analyze(file_input(case.input_path, "srv/app/package-lock.json")).packages)
    scoped = packages["@babel/helper-string-parser@7.19.4"]
    assert scoped.purl == "pkg:npm/%40babel/helper-string-parser@7.19.4"
    assert packages["body-parser@1.18.3"].purl == "pkg:npm/body-parser@1.18.3"
    assert {p.found_in for p in packages.values()} == {"srv/app/package-lock.json"}
    assert {p.type for p in packages.values()} == {"npm"}


def test_corpus_broken_link_is_reported_as_warning() -> None:
    case = next(c for c in NPM_CASES if c.name == "trivy-package-lock_v3_broken_link")
    result = LOCK.analyze(file_input(case.input_path, case.input))
    assert result.packages == []
    assert any("node_modules/func1" in w for w in result.warnings)


# --- a real project installed by npm ----------------------------------------------------------

PRODUCTION = [
    "debug@2.6.9",  # needs ms@2.0.0, which lands nested because ms@2.1.3 is at the top
    "ms@2.1.3",
    "@types/node@18.0.0",  # scoped
    "minimist@1.2.0",
    "lodash-old@npm:lodash@4.17.20",  # an alias
    "chalk@2.4.2",  # a small tree: ansi-styles → color-convert → color-name, supports-color → has-flag
    "supports-color@5.5.0",
]
DEVELOPMENT = ["is-number@7.0.0", "has-flag@3.0.0"]  # has-flag is also needed by production: not dev


def _npm(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    npm = shutil.which("npm")
    assert npm, "npm is part of this machine kind (Node.js 20 with npm 11); see .library env docs"
    env = {
        **os.environ,
        "npm_config_cache": str(project.parent / f"{project.name}-cache"),
        "npm_config_update_notifier": "false",
        "npm_config_fund": "false",
        "npm_config_audit": "false",
    }
    return subprocess.run(
        [npm, *args], cwd=project, env=env, capture_output=True, text=True, timeout=600, check=False
    )


@pytest.fixture(scope="session")
def npm_project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A project npm installed from the registry, and npm's own account of it (``npm ls``)."""
    project = tmp_path_factory.mktemp("npm") / "app"
    project.mkdir()
    (project / "package.json").write_text(json.dumps({"name": "moat-probe", "version": "1.0.0", "private": True}))
    for extra in ([], ["--save-dev"]):
        specs = DEVELOPMENT if extra else PRODUCTION
        done = _npm(project, "install", "--ignore-scripts", *extra, *specs)
        assert done.returncode == 0, done.stderr[-2000:]
    listing = _npm(project, "ls", "--all", "--json", "--long")
    assert listing.returncode == 0, listing.stderr[-2000:]
    return project, json.loads(listing.stdout)


def _npm_truth(tree: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """id → {dev, licenses, children, direct, paths} from ``npm ls --all --json --long``."""
    truth: dict[str, dict[str, Any]] = {}
    todo = [(child, True) for child in tree.get("dependencies", {}).values()]
    while todo:
        node, top = todo.pop()
        node_id = f"{node['name']}@{node['version']}"
        info = truth.setdefault(node_id, {"dev": True, "licenses": set(), "children": set(), "direct": False,
                                          "paths": set()})
        info["dev"] = info["dev"] and bool(node.get("dev"))
        info["direct"] = info["direct"] or top
        if node.get("license"):
            info["licenses"].add(node["license"])
        if node.get("path"):
            info["paths"].add(node["path"])
        for child in node.get("dependencies", {}).values():
            info["children"].add(f"{child['name']}@{child['version']}")
            todo.append((child, False))
    return truth


def test_npm_ls_ground_truth_is_the_expected_shape(npm_project: tuple[Path, dict[str, Any]]) -> None:
    truth = _npm_truth(npm_project[1])
    assert "lodash@4.17.20" in truth
    assert "ms@2.0.0" in truth and "ms@2.1.3" in truth
    assert truth["is-number@7.0.0"]["dev"] and not truth["has-flag@3.0.0"]["dev"]


def test_lockfile_matches_npm_ls(npm_project: tuple[Path, dict[str, Any]]) -> None:
    project, tree = npm_project
    truth = _npm_truth(tree)
    assert prefilter_accepts(LOCK, "app/package-lock.json")
    result = LOCK.analyze(file_input(project / "package-lock.json", "app/package-lock.json"))
    assert result.warnings == []
    found = _by_id(result.packages)
    assert set(found) == set(truth)
    for package_id, info in truth.items():
        package = found[package_id]
        assert package.dev == info["dev"], package_id
        assert package.relationship == ("direct" if info["direct"] else "indirect"), package_id
        assert set(package.depends_on) == info["children"], package_id
        assert set(package.licenses) == info["licenses"], package_id
        assert package.found_in == "app/package-lock.json"
    assert found["@types/node@18.0.0"].purl == "pkg:npm/%40types/node@18.0.0"
    assert found["lodash@4.17.20"].purl == "pkg:npm/lodash@4.17.20"


def test_node_modules_match_npm_ls(npm_project: tuple[Path, dict[str, Any]]) -> None:
    project, tree = npm_project
    truth = _npm_truth(tree)
    packages: list[Package] = []
    for path in sorted(project.rglob("package.json")):
        image_path = "app/" + path.relative_to(project).as_posix()
        if prefilter_accepts(INSTALLED, image_path):
            result = INSTALLED.analyze(file_input(path, image_path))
            assert len(result.packages) == 1, image_path
            packages.extend(result.packages)
    # Every directory npm installed is one package.json, one package.
    assert sorted(p.id for p in packages) == sorted(i for i, info in truth.items() for _ in info["paths"])
    for package in packages:
        info = truth[package.id]
        directory = package.found_in.removeprefix("app/").removesuffix("/package.json")
        assert str(project / directory) in info["paths"], package.found_in
        assert set(package.licenses) == info["licenses"]
        assert package.type == "npm" and package.depends_on == [] and package.relationship is None
    assert not prefilter_accepts(INSTALLED, "app/package.json")
    assert not prefilter_accepts(INSTALLED, "app/node_modules/.package-lock.json")


# --- the installed-package analyzer on its own ------------------------------------------------


@pytest.mark.parametrize(
    ("path", "wanted"),
    [
        ("usr/lib/node_modules/npm/package.json", True),
        ("app/node_modules/@types/node/package.json", True),
        ("app/node_modules/a/node_modules/b/package.json", True),
        ("app/node_modules/.pnpm/lodash@4.17.21/node_modules/lodash/package.json", True),
        ("node_modules/x/package.json", True),
        ("app/package.json", False),
        ("app/node_modules/a/lib/package.json", False),
        ("app/node_modules/@types/package.json", False),
        ("app/node_modules/.bin/package.json", False),
        ("app/node_modules/a/package.json.bak", False),
    ],
)
def test_installed_package_paths(path: str, wanted: bool) -> None:
    assert prefilter_accepts(INSTALLED, path) is wanted


@pytest.mark.parametrize(
    ("manifest", "licenses"),
    [
        ({"license": "MIT"}, ["MIT"]),
        ({"license": "(MIT OR Apache-2.0)"}, ["(MIT OR Apache-2.0)"]),
        ({"license": {"type": "ISC", "url": "https://example.invalid/isc"}}, ["ISC"]),
        ({"licenses": [{"type": "MIT"}, {"type": "GPL-2.0"}]}, ["MIT", "GPL-2.0"]),
        ({"licenses": ["BSD-2-Clause"]}, ["BSD-2-Clause"]),
        ({"license": 7, "licenses": [None, {"type": 3}, "Apache-2.0"]}, ["Apache-2.0"]),
        ({}, []),
    ],
)
def test_installed_package_licenses(manifest: dict[str, Any], licenses: list[str]) -> None:
    document = {"name": "@scope/pkg", "version": "1.2.3", **manifest}
    result = INSTALLED.analyze(_file("node_modules/@scope/pkg/package.json", document))
    [package] = result.packages
    assert package.licenses == licenses
    assert package.purl == "pkg:npm/%40scope/pkg@1.2.3"
    assert package.found_in == "node_modules/@scope/pkg/package.json"


def test_installed_package_uses_the_manifest_name_for_aliases() -> None:
    result = INSTALLED.analyze(_file("node_modules/lodash-old/package.json", {"name": "lodash", "version": "4.17.20"}))
    assert [p.id for p in result.packages] == ["lodash@4.17.20"]


@pytest.mark.parametrize(
    "document",
    [
        {"main": "index.js"},  # a test fixture or build marker
        {"name": "x"},
        {"version": "1.0.0"},
    ],
)
def test_installed_package_without_identity_is_not_a_package(document: dict[str, Any]) -> None:
    result = INSTALLED.analyze(_file("node_modules/x/package.json", document))
    assert result.packages == [] and result.warnings == []


@pytest.mark.parametrize(
    "document",
    [
        {"name": ["x"], "version": "1.0.0"},
        {"name": "x", "version": 1},
        {"name": "x y", "version": "1.0.0"},
        {"name": "x", "version": "file:../x"},
    ],
)
def test_installed_package_with_wrong_types_is_skipped_with_a_warning(document: dict[str, Any]) -> None:
    result = INSTALLED.analyze(_file("node_modules/x/package.json", document))
    assert result.packages == []
    assert len(result.warnings) == 1 and "node_modules/x/package.json" in result.warnings[0]


@pytest.mark.parametrize(
    "content",
    [b"", b"{", b"[1, 2]", b'"text"', b"\xff\xfe{\x00", b"[" * 100_000 + b"]" * 100_000],
)
def test_installed_package_bad_json_raises_parse_error(content: bytes) -> None:
    with pytest.raises(ParseError, match=r"node_modules/x/package\.json"):
        INSTALLED.analyze(_file("node_modules/x/package.json", content))


# --- the lockfile analyzer on its own ---------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "wanted"),
    [
        ("app/package-lock.json", True),
        ("package-lock.json", True),
        ("srv/npm-shrinkwrap.json", True),
        ("app/node_modules/x/package-lock.json", False),
        ("app/node_modules/.package-lock.json", False),
        ("app/package-lock.json.orig", False),
    ],
)
def test_lockfile_paths(path: str, wanted: bool) -> None:
    assert prefilter_accepts(LOCK, path) is wanted


def test_v1_aliases_local_directories_and_nested_resolution() -> None:
    lock = {
        "lockfileVersion": 1,
        "dependencies": {
            "lodash-old": {"version": "npm:lodash@4.17.20"},
            "local": {"version": "file:../local", "requires": {"a": "^1"}},
            "a": {
                "version": "1.0.0",
                "requires": {"b": "^2", "lodash-old": "npm:lodash@^4", "missing": "^1"},
                "dependencies": {"b": {"version": "2.0.0", "requires": {"a": "^1", "c": "^1"}}},
            },
            "b": {"version": "1.0.0", "dev": True},
            "c": {"version": "3.0.0", "license": "MIT"},
        },
    }
    found = _by_id(LOCK.analyze(_file("package-lock.json", lock)).packages)
    assert set(found) == {"lodash@4.17.20", "a@1.0.0", "b@2.0.0", "b@1.0.0", "c@3.0.0"}
    assert found["a@1.0.0"].depends_on == ["b@2.0.0", "lodash@4.17.20"]
    assert found["b@2.0.0"].depends_on == ["a@1.0.0", "c@3.0.0"]  # a cycle, found walking up
    assert found["b@1.0.0"].dev and not found["b@2.0.0"].dev
    assert found["c@3.0.0"].licenses == ["MIT"]
    assert all(p.relationship is None for p in found.values())


def test_v3_workspace_link_and_dev_merge() -> None:
    lock = {
        "lockfileVersion": 3,
        "packages": {
            "": {"name": "root", "workspaces": ["packages/*"], "devDependencies": {"t": "^1"}},
            "packages/web": {"name": "@me/web", "version": "0.1.0", "dependencies": {"t": "^1", "u": "^1"}},
            "packages/web/node_modules/u": {"version": "1.0.0"},
            "node_modules/@me/web": {"resolved": "packages/web", "link": True},
            "node_modules/t": {"version": "1.0.0", "dev": True},
            "node_modules/x/node_modules/t": {"version": "1.0.0"},
            "node_modules/x": {"version": "9.0.0", "dev": True, "dependencies": {"t": "1.0.0"}},
        },
    }
    found = _by_id(LOCK.analyze(_file("package-lock.json", lock)).packages)
    assert set(found) == {"@me/web@0.1.0", "u@1.0.0", "t@1.0.0", "x@9.0.0"}
    assert found["@me/web@0.1.0"].relationship == "direct"
    assert found["@me/web@0.1.0"].depends_on == ["t@1.0.0", "u@1.0.0"]
    assert found["u@1.0.0"].relationship == "indirect"
    assert found["t@1.0.0"].relationship == "direct"
    assert not found["t@1.0.0"].dev  # one of its two installs is not dev-only
    assert found["x@9.0.0"].dev and found["x@9.0.0"].relationship == "indirect"


@pytest.mark.parametrize(
    "content",
    [b"", b"{not json", b"[]", b'{"name": "x"}', b"[" * 50_000],
)
def test_lockfile_bad_files_raise_parse_error(content: bytes) -> None:
    with pytest.raises(ParseError, match=r"package-lock\.json"):
        LOCK.analyze(_file("package-lock.json", content))


def test_lockfile_wrong_types_are_skipped() -> None:
    lock = {
        "lockfileVersion": 3,
        "packages": {
            "": ["not", "a", "root"],
            "node_modules/a": "not an object",
            "node_modules/b": {"version": 2, "dependencies": ["c"], "license": {"type": None}},
            "node_modules/c": {"version": "1.0.0", "dependencies": {"d": 5, "b": "*"}, "dev": "yes"},
            "node_modules/bad name": {"version": "1.0.0"},
            "node_modules/l": {"link": True, "resolved": 7},
        },
    }
    result = LOCK.analyze(_file("package-lock.json", lock))
    found = _by_id(result.packages)
    assert set(found) == {"b@", "c@1.0.0"}
    assert found["c@1.0.0"].depends_on == ["b@"] and not found["c@1.0.0"].dev
    assert found["b@"].licenses == []
    assert len(result.warnings) == 2  # the dangling link and the unusable name


def test_v1_deep_nesting_is_bounded() -> None:
    inner: dict[str, Any] = {"version": "1.0.0"}
    for level in range(300):
        inner = {"version": f"{level}.0.0", "dependencies": {"p": inner}}
    result = LOCK.analyze(_file("package-lock.json", {"lockfileVersion": 1, "dependencies": {"p": inner}}))
    assert 100 <= len(result.packages) <= 130
    assert any("nested deeper" in w for w in result.warnings)


def test_empty_lockfile_has_no_packages() -> None:
    result = LOCK.analyze(_file("package-lock.json", {"name": "x", "lockfileVersion": 3, "packages": {"": {}}}))
    assert result.packages == []
