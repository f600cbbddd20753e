"""Composer analyzer: the shared corpus, and lockfiles/installed.json written by Debian's real Composer.

The project installs three local path-repository packages (no network needed), so
``composer.lock`` and ``vendor/composer/installed.json`` come from Composer itself, and
``composer licenses --format=json`` is the ground truth for names, versions, licenses and dev.
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

from corpus import cases, check_case, prefilter_accepts
from moat.errors import ParseError
from moat.inventory.analyzer import FileInput
from moat.inventory.analyzers.composer import ComposerAnalyzer
from moat.model import Package

CORPUS_COMPOSER = cases("packages", "composer")

LOCAL_PACKAGES: dict[str, dict[str, Any]] = {
    "log": {"name": "acme/log", "version": "1.13.3", "license": "MIT",
            "require": {"php": ">=7.0", "ext-json": "*", "acme/util": "^2.0"}},
    "util": {"name": "acme/util", "version": "v2.1.0", "license": ["MIT", "BSD-2-Clause"]},
    "devtool": {"name": "acme/devtool", "version": "0.4.0", "license": "(LGPL-2.1-only or GPL-3.0-or-later)",
                "require": {"ACME/Util": "^2.0"}},
}


def analyze(data: bytes, path: str) -> list[Package]:
    return ComposerAnalyzer().analyze(FileInput(path, io.BytesIO(data), len(data))).packages


def composer(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("composer")
    assert tool, "Composer is missing: run scripts/install-system-deps (composer)"
    env = {**os.environ, "COMPOSER_HOME": str(project.parent / "home"), "COMPOSER_ALLOW_SUPERUSER": "1",
           "COMPOSER_DISABLE_NETWORK": "1"}
    return subprocess.run([tool, *args, "--no-interaction"], cwd=project, env=env, capture_output=True, text=True,
                          check=True)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("composer")
    for directory, manifest in LOCAL_PACKAGES.items():
        (root / "pkgs" / directory).mkdir(parents=True)
        (root / "pkgs" / directory / "composer.json").write_text(json.dumps(manifest))
    app = root / "app"
    app.mkdir()
    (app / "composer.json").write_text(json.dumps({
        "name": "acme/app",
        "require": {"acme/log": "^1.13"},
        "require-dev": {"acme/devtool": "^0.4"},
        "config": {"platform": {"ext-json": "8.2.0"}},
        "repositories": [{"packagist.org": False},
                         {"type": "path", "url": "../pkgs/*", "options": {"symlink": False}}],
    }))
    composer(app, "update", "--no-plugins", "--no-scripts", "--no-audit")
    return app


def ground_truth(project: Path, *flags: str) -> dict[str, Any]:
    return dict(json.loads(composer(project, "licenses", "--format=json", *flags).stdout)["dependencies"])


@pytest.mark.parametrize("case", CORPUS_COMPOSER, ids=[c.name for c in CORPUS_COMPOSER])
def test_composer_corpus(case) -> None:  # type: ignore[no-untyped-def]
    check_case(ComposerAnalyzer(), case, "composer")


@pytest.mark.parametrize("name", ["composer.lock", "vendor/composer/installed.json"])
def test_real_composer_files_match_composer_licenses(project: Path, name: str) -> None:
    packages = analyze((project / name).read_bytes(), f"var/www/app/{name}")
    everything = ground_truth(project)
    runtime = ground_truth(project, "--no-dev")
    assert {(p.name, p.version) for p in packages} == {(n, d["version"]) for n, d in everything.items()}
    assert {p.name for p in packages if not p.dev} == set(runtime)
    by_name = {p.name: p for p in packages}
    assert by_name["acme/util"].licenses == everything["acme/util"]["license"] == ["MIT", "BSD-2-Clause"]
    assert by_name["acme/log"].licenses == ["MIT"]
    assert by_name["acme/devtool"].licenses == ["LGPL-2.1-only", "GPL-3.0-or-later"]  # SPDX "or" split up
    # platform requirements (php, ext-json) are no packages; a differently cased name still resolves
    assert by_name["acme/log"].depends_on == ["acme/util@v2.1.0"]
    assert by_name["acme/devtool"].depends_on == ["acme/util@v2.1.0"]
    assert by_name["acme/log"].purl == "pkg:composer/acme/log@1.13.3"
    assert all(p.found_in == f"var/www/app/{name}" and p.type == "composer" for p in packages)


def test_composer_1_installed_json_list_form() -> None:
    document = [
        {"name": "monolog/monolog", "version": "1.27.1", "version_normalized": "1.27.1.0", "type": "library",
         "license": ["MIT"], "require": {"php": ">=5.3.0", "psr/log": "~1.0"}},
        {"name": "psr/log", "version": "1.1.4", "version_normalized": "1.1.4.0", "license": ["MIT"]},
    ]
    packages = analyze(json.dumps(document).encode(), "app/vendor/composer/installed.json")
    assert [(p.name, p.version, p.dev, p.depends_on) for p in packages] == [
        ("monolog/monolog", "1.27.1", False, ["psr/log@1.1.4"]),
        ("psr/log", "1.1.4", False, []),
    ]


def test_prefilter_only_takes_installed_json_under_vendor_composer() -> None:
    analyzer = ComposerAnalyzer()
    assert prefilter_accepts(analyzer, "composer.lock")
    assert prefilter_accepts(analyzer, "srv/app/vendor/composer/installed.json")
    assert prefilter_accepts(analyzer, "vendor/composer/installed.json")
    assert not prefilter_accepts(analyzer, "usr/share/something/installed.json")


@pytest.mark.parametrize(
    ("data", "path", "message"),
    [
        (b"{not json", "composer.lock", "not valid JSON"),
        (b"[]", "composer.lock", "not an object"),
        (b'{"packages": {"a": 1}}', "composer.lock", "must be lists"),
        (b'{"packages": [{"name": "a/b"}]}', "composer.lock", "lacks a name or version"),
        (b'{"packages": [{"name": "a/b", "version": "1", "require": ["x"]}]}', "composer.lock", "require"),
        (b'{"dev": true}', "vendor/composer/installed.json", "expected a list"),
        (b"[" * 100_000 + b"]" * 100_000, "composer.lock", "not valid JSON"),
    ],
)
def test_bad_composer_files_are_parse_errors(data: bytes, path: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        analyze(data, path)
