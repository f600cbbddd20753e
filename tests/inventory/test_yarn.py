"""yarn.lock, classic (v1) and berry (v2+).

Checked against the shared corpus (Trivy's yarn fixtures), against real lockfiles written by real
yarn classic and yarn berry installs (with Node's own module resolution over the installed tree as
the ground truth), and against hostile files.
"""

from __future__ import annotations

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
from moat.inventory.analyzers.yarn_lock import YarnLockAnalyzer
from moat.inventory.js import yarn_v1
from moat.model import Package

YARN = YarnLockAnalyzer()


def _file(content: str | bytes, path: str = "app/yarn.lock") -> FileInput:
    data = content.encode() if isinstance(content, str) else content
    return FileInput(path, io.BytesIO(data), len(data))


def _by_id(packages: list[Package]) -> dict[str, Package]:
    found = {p.id: p for p in packages}
    assert len(found) == len(packages), "a package was reported twice"
    return found


# --- the shared corpus ------------------------------------------------------------------------

YARN_CASES = cases("packages", "yarn")


def test_corpus_has_the_yarn_cases() -> None:
    assert len(YARN_CASES) == 7


@pytest.mark.parametrize("case", YARN_CASES, ids=lambda c: c.name)
def test_corpus_case(case: Case) -> None:
    check_case(YARN, case, "yarn")


def test_corpus_purls_found_in_and_bad_protocol_warning() -> None:
    happy = next(c for c in YARN_CASES if c.name == "trivy-yarn_happy")
    packages = _by_id(YARN.analyze(file_input(happy.input_path, "web/yarn.lock")).packages)
    assert packages["@babel/helper-regex@7.4.4"].purl == "pkg:npm/%40babel/helper-regex@7.4.4"
    assert {p.found_in for p in packages.values()} == {"web/yarn.lock"}
    assert {p.relationship for p in packages.values()} == {None}  # classic cannot tell

    bad = next(c for c in YARN_CASES if c.name == "trivy-yarn_with_bad_protocol")
    result = YARN.analyze(file_input(bad.input_path, bad.input))
    assert [w for w in result.warnings if "unsupported" in w]


def test_corpus_berry_workspace_gives_direct_dependencies() -> None:
    case = next(c for c in YARN_CASES if c.name == "trivy-yarn_v2_deps_with_protocol")
    packages = _by_id(YARN.analyze(file_input(case.input_path, case.input)).packages)
    assert packages["debug@4.3.4"].relationship == "direct"
    assert packages["ms@2.1.2"].relationship == "indirect"


# --- real lockfiles from real yarn ------------------------------------------------------------

# Node's own answer to "which packages are installed, and what does require() reach from each":
# every real package directory under node_modules, and for each declared dependency the first
# directory in Module._nodeModulePaths (the lookup list Node itself walks) that holds it.
NODE_TRUTH = r"""
const fs = require("fs"), path = require("path"), Module = require("module");
const found = {};
const idOf = (dir) => { const m = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
                        return [m, `${m.name}@${m.version}`]; };
function pkg(dir) {
  if (!fs.existsSync(path.join(dir, "package.json"))) return;
  const [manifest, id] = idOf(dir);
  const entry = (found[id] ??= { deps: [], paths: [] });
  entry.paths.push(dir);
  const names = Object.keys({ ...manifest.dependencies, ...manifest.optionalDependencies,
                              ...manifest.peerDependencies });
  for (const name of names) {
    const hit = Module._nodeModulePaths(dir).map((p) => path.join(p, name))
                      .find((p) => fs.existsSync(path.join(p, "package.json")));
    const dep = hit && idOf(fs.realpathSync(hit))[1];
    if (dep && !entry.deps.includes(dep)) entry.deps.push(dep);
  }
  visit(path.join(dir, "node_modules"));
}
function visit(dir) {
  let entries; try { entries = fs.readdirSync(dir, { withFileTypes: true }); } catch { return; }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (!e.isDirectory()) continue;  // a symlink points at a real directory visited elsewhere
    if (e.name === ".pnpm") fs.readdirSync(p).forEach((k) => visit(path.join(p, k, "node_modules")));
    else if (e.name.startsWith("@")) visit(p);
    else if (!e.name.startsWith(".")) pkg(p);
  }
}
visit(path.join(process.argv[1], "node_modules"));
process.stdout.write(JSON.stringify(found));
"""

DEPENDENCIES = {
    "debug": "2.6.9",  # ms@2.0.0 nested under it, ms@2.1.3 at the top
    "ms": "2.1.3",
    "@types/node": "18.0.0",
    "chalk": "2.4.2",
    "lodash-old": "npm:lodash@4.17.20",
}
DEV_DEPENDENCIES = {"is-number": "7.0.0", "has-flag": "3.0.0"}
MANIFEST = {
    "name": "moat-probe",
    "version": "1.0.0",
    "private": True,
    "dependencies": DEPENDENCIES,
    "devDependencies": DEV_DEPENDENCIES,
}


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"{args[:3]} failed: {done.stdout[-1500:]} {done.stderr[-1500:]}"
    return done.stdout


@pytest.fixture(scope="session")
def yarn_projects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same project installed by yarn classic and by yarn berry (node-modules linker)."""
    npm, node = shutil.which("npm"), shutil.which("node")
    assert npm and node, "Node.js 20 and npm are part of this machine kind"
    base = tmp_path_factory.mktemp("yarn")
    # CI=true makes yarn berry and pnpm refuse to write lockfiles; these tests create them.
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update({"npm_config_cache": str(base / "npm-cache"), "npm_config_update_notifier": "false"})
    env["YARN_ENABLE_IMMUTABLE_INSTALLS"] = "false"
    tools = base / "tools"
    tools.mkdir()
    (tools / "package.json").write_text('{"private": true}')
    _run([npm, "install", "--ignore-scripts", "--no-audit", "--no-fund", "yarn@1.22.22", "@yarnpkg/cli-dist@4.5.3"],
         tools, env)
    projects = {}
    for flavour in ("classic", "berry"):
        project = base / flavour
        project.mkdir()
        (project / "package.json").write_text(json.dumps(MANIFEST))
        if flavour == "classic":
            # Both packages install a "yarn" bin, so each CLI is run by its own script path.
            command = [node, str(tools / "node_modules/yarn/bin/yarn.js"), "install", "--ignore-scripts",
                       "--non-interactive", "--no-progress", "--cache-folder", str(base / "classic-cache")]
        else:
            (project / ".yarnrc.yml").write_text(
                f"nodeLinker: node-modules\nenableGlobalCache: false\ncacheFolder: {base / 'berry-cache'}\n"
                "enableTelemetry: false\nenableScripts: false\n"
            )
            (project / "yarn.lock").write_text("")
            command = [node, str(tools / "node_modules/@yarnpkg/cli-dist/bin/yarn.js"), "install"]
        _run(command, project, {**env, "YARN_ENABLE_PROGRESS_BARS": "false", "YARN_IGNORE_PATH": "1"})
        projects[flavour] = project
    return projects


def _node_truth(project: Path) -> dict[str, Any]:
    node = shutil.which("node")
    assert node
    return json.loads(_run([node, "-e", NODE_TRUTH, str(project)], project, dict(os.environ)))


@pytest.mark.parametrize("flavour", ["classic", "berry"])
def test_real_lockfile_matches_the_installed_tree(yarn_projects: dict[str, Path], flavour: str) -> None:
    project = yarn_projects[flavour]
    lock_text = (project / "yarn.lock").read_text()
    assert ("__metadata:" in lock_text) is (flavour == "berry")
    truth = _node_truth(project)
    assert {"lodash@4.17.20", "ms@2.0.0", "ms@2.1.3", "@types/node@18.0.0"} <= set(truth)

    result = YARN.analyze(file_input(project / "yarn.lock", "app/yarn.lock"))
    assert result.warnings == []
    found = _by_id(result.packages)
    assert set(found) == set(truth)
    for package_id, info in truth.items():
        assert sorted(found[package_id].depends_on) == sorted(info["deps"]), package_id
    assert found["@types/node@18.0.0"].purl == "pkg:npm/%40types/node@18.0.0"
    declared = {f"{n}@{v}" for n, v in {**DEPENDENCIES, **DEV_DEPENDENCIES}.items()}
    declared = {"lodash@4.17.20" if d.startswith("lodash-old@") else d for d in declared}
    for package in found.values():
        if flavour == "berry":  # berry records the workspace's dependencies; classic does not
            assert package.relationship == ("direct" if package.id in declared else "indirect"), package.id
        else:
            assert package.relationship is None
        assert package.dev is False  # yarn.lock does not record dev-only


# --- the yarn v1 parser on its own -------------------------------------------------------------


def test_v1_parser_quoting_and_nesting() -> None:
    text = (
        '# yarn lockfile v1\n\n'
        '"@a/b@^1.0.0", "@a/b@1.x || 2", c@1:\n'
        '  version "1.2.3"\n'
        '  resolved "https://example.invalid/b.tgz#abc"\n'
        '  dependencies:\n'
        '    "@x/y" "^2.0.0"\n'
        '    z "1 - 2"\n'
        '  optionalDependencies:\n'
        '    o "\\"quoted\\""\n'
        '\r\n'
        'z@1 - 2:\n'
        '  version "2.0.0"\n'
    )
    entries = yarn_v1.parse(text)
    assert [e.patterns for e in entries] == [["@a/b@^1.0.0", "@a/b@1.x || 2", "c@1"], ["z@1 - 2"]]
    assert entries[0].fields == {
        "version": "1.2.3",
        "resolved": "https://example.invalid/b.tgz#abc",
        "dependencies": {"@x/y": "^2.0.0", "z": "1 - 2"},
        "optionalDependencies": {"o": '"quoted"'},
    }
    assert entries[1].line == 12


def test_v1_aliases_and_dependency_edges() -> None:
    text = (
        '"string-width-cjs@npm:string-width@^4.2.0", string-width@^4.1.0:\n'
        '  version "4.2.3"\n'
        '  dependencies:\n'
        '    strip-ansi "^6.0.1"\n'
        '    gone "^1.0.0"\n\n'
        'strip-ansi@^6.0.1:\n'
        '  version "6.0.1"\n\n'
        'wrap@^1:\n'
        '  version "1.0.0"\n'
        '  dependencies:\n'
        '    string-width-cjs "npm:string-width@^4.2.0"\n'
        '    local "file:../local"\n\n'
        '"local@file:../local":\n'
        '  version "0.0.1"\n'
    )
    found = _by_id(YARN.analyze(_file(text)).packages)
    assert set(found) == {"string-width@4.2.3", "strip-ansi@6.0.1", "wrap@1.0.0"}
    assert found["string-width@4.2.3"].depends_on == ["strip-ansi@6.0.1"]
    assert found["wrap@1.0.0"].depends_on == ["string-width@4.2.3"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("  version \"1\"\n", "before the first entry"),
        ("a@1\n  version \"1\"\n", "entry header"),
        ('"a@1:\n  version "1"\n', "unterminated"),
        ('a@1:\n  version "1\n', "bad quoted"),
        ('a@1:\n\tversion "1"\n', "tab"),
        ('a@1:\n  version "\\x"\n', "bad quoted"),
        (":\n", "without a pattern"),
        ("a@1:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 20)), "nested deeper"),
    ],
)
def test_v1_bad_files_raise_parse_error(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        YARN.analyze(_file(text))


def test_v1_entry_without_version_is_skipped_with_warning() -> None:
    result = YARN.analyze(_file('a@^1:\n  resolved "x"\n\nb@^1:\n  version "1.0.0"\n'))
    assert [p.id for p in result.packages] == ["b@1.0.0"]
    assert len(result.warnings) == 1 and "line 1" in result.warnings[0]


def test_v1_line_count_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yarn_v1, "MAX_LINES", 50)
    text = "".join(f'p{i}@^1:\n  version "1.0.{i}"\n' for i in range(40))
    with pytest.raises(ParseError, match="more than 50 lines"):
        YARN.analyze(_file(text))


def test_empty_and_comment_only_files_have_no_packages() -> None:
    assert YARN.analyze(_file("")).packages == []
    assert YARN.analyze(_file("# yarn lockfile v1\n\n")).packages == []


# --- berry on its own ---------------------------------------------------------------------------


def test_berry_patch_entries_point_at_the_patched_package() -> None:
    text = (
        "__metadata:\n  version: 6\n\n"
        '"app@workspace:.":\n  version: 0.0.0-use.local\n  resolution: "app@workspace:."\n'
        "  dependencies:\n    resolve: ^1.20.0\n    lib: \"workspace:packages/lib\"\n\n"
        '"lib@workspace:packages/lib":\n  version: 0.0.0-use.local\n  resolution: "lib@workspace:packages/lib"\n'
        "  dependencies:\n    is-core-module: ^2.9.0\n\n"
        '"resolve@npm:^1.20.0":\n  version: 1.22.1\n  resolution: "resolve@npm:1.22.1"\n'
        "  dependencies:\n    is-core-module: ^2.9.0\n\n"
        '"resolve@patch:resolve@^1.20.0#~builtin<compat/resolve>":\n  version: 1.22.1\n'
        '  resolution: "resolve@patch:resolve@npm%3A1.22.1#~builtin<compat/resolve>::version=1.22.1&hash=07638b"\n'
        "  dependencies:\n    is-core-module: ^2.9.0\n\n"
        '"is-core-module@npm:^2.9.0":\n  version: 2.11.0\n  resolution: "is-core-module@npm:2.11.0"\n\n'
        '"tool@git+https://example.invalid/tool.git#commit=abc":\n  version: 1.0.0\n'
        '  resolution: "tool@git+https://example.invalid/tool.git#commit=abc"\n\n'
        '"weird@foo:1":\n  version: 1.0.0\n  resolution: "weird@foo:1"\n'
    )
    result = YARN.analyze(_file(text))
    found = _by_id(result.packages)
    assert set(found) == {"resolve@1.22.1", "is-core-module@2.11.0"}
    assert found["resolve@1.22.1"].depends_on == ["is-core-module@2.11.0"]
    assert found["resolve@1.22.1"].relationship == "direct"
    assert found["is-core-module@2.11.0"].relationship == "direct"  # lib is a workspace too
    assert len(result.warnings) == 1 and "'foo'" in result.warnings[0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("__metadata:\n  version: 6\n\"a@npm:1\": [\n", "invalid YAML"),
        ("__metadata:\n  version: 6\nx: &x {a: 1}\ny: *x\n", "aliases"),
        ("__metadata:\n  version: 6\n" + "a: [" * 40 + "]" * 40 + "\n", "nested deeper"),
    ],
)
def test_berry_bad_files_raise_parse_error(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        YARN.analyze(_file(text))


def test_berry_wrong_types_are_skipped() -> None:
    text = (
        "__metadata:\n  version: 6\n"
        '"a@npm:1":\n  version: [1]\n  resolution: "a@npm:1.0.0"\n'
        '"b@npm:1":\n  - list\n'
        '"c@npm:1":\n  version: 1.0.0\n  resolution: "c@npm:1.0.0"\n  dependencies: [a, b]\n'
    )
    result = YARN.analyze(_file(text))
    assert [(p.id, p.depends_on) for p in result.packages] == [("c@1.0.0", [])]
    assert len(result.warnings) == 2


@pytest.mark.parametrize(
    ("path", "wanted"),
    [
        ("app/yarn.lock", True),
        ("yarn.lock", True),
        ("app/node_modules/x/yarn.lock", False),
        ("app/yarn.lock.bak", False),
    ],
)
def test_paths(path: str, wanted: bool) -> None:
    assert prefilter_accepts(YARN, path) is wanted
