"""Ruby analyzers against the corpus, Debian's installed gems and lockfiles made by Bundler.

Ground truth comes from Ruby itself: ``Gem::Specification.load`` (which evaluates the gemspec; fine for
the trusted Debian files and for specs RubyGems wrote in the test) and ``Bundler::LockfileParser``,
plus the Debian package version and the NAME-VERSION file name RubyGems gives each spec.
"""

from __future__ import annotations

import io
import json
import subprocess
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import pytest

from corpus import Case, cases, check_case, prefilter_accepts
from moat.errors import ParseError
from moat.inventory.analyzer import FileInput
from moat.inventory.analyzers.ruby_bundler import GemfileLockAnalyzer
from moat.inventory.analyzers.ruby_gemspec import GemspecAnalyzer
from moat.model import Package

SPEC_ROOTS = (
    Path("/usr/share/rubygems-integration"),
    Path("/usr/lib/ruby/gems"),
    Path("/usr/lib/x86_64-linux-gnu/rubygems-integration"),
)

LOAD_SPECS = """
require "json"
out = ARGV.map do |path|
  spec = Gem::Specification.load(path)
  {"path" => path, "name" => spec.name, "version" => spec.version.to_s, "platform" => spec.platform.to_s,
   "licenses" => spec.licenses}
end
puts JSON.generate(out)
"""

PARSE_LOCK = """
require "json"
require "bundler"
lock = Bundler::LockfileParser.new(File.read(ARGV[0]))
specs = lock.specs.map do |s|
  {"name" => s.name, "version" => s.version.to_s, "platform" => s.platform.to_s,
   "deps" => s.dependencies.map(&:name)}
end
puts JSON.generate({"specs" => specs, "direct" => lock.dependencies.keys})
"""


def ruby(script: str, *args: str | Path) -> Any:
    """Run a Ruby script in a scratch directory with an empty Gemfile (Bundler insists on one)."""
    with tempfile.TemporaryDirectory() as scratch:
        (Path(scratch) / "Gemfile").write_text("")
        env = {"HOME": scratch, "PATH": "/usr/bin:/bin", "BUNDLE_GEMFILE": f"{scratch}/Gemfile"}
        result = subprocess.run(["ruby", "-e", script, *map(str, args)], capture_output=True, text=True,
                                cwd=scratch, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def analyze(analyzer: GemspecAnalyzer | GemfileLockAnalyzer, path: str, data: bytes) -> list[Package]:
    return analyzer.analyze(FileInput(path, io.BytesIO(data), len(data))).packages


# ---------------------------------------------------------------- gemspecs


def installed_specs() -> list[Path]:
    return sorted(p for root in SPEC_ROOTS if root.is_dir() for p in root.rglob("*.gemspec"))


def test_debian_installed_gemspecs_match_rubygems() -> None:
    paths = installed_specs()
    assert len(paths) > 50, "ruby and ruby-* packages are required (scripts/install-system-deps)"
    expected = ruby(LOAD_SPECS, *paths)
    analyzer = GemspecAnalyzer()
    for item in expected:
        image_path = item["path"].lstrip("/")
        assert prefilter_accepts(analyzer, image_path), image_path
        [package] = analyze(analyzer, image_path, Path(item["path"]).read_bytes())
        assert (package.name, package.version, package.licenses) == (item["name"], item["version"], item["licenses"])
        assert package.purl == f"pkg:gem/{item['name']}@{item['version']}"
        assert package.found_in == image_path and package.type == "gem"
        assert Path(item["path"]).name == f"{package.name}-{package.version}.gemspec"


def test_rack_gemspec_matches_debian_version() -> None:
    version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "ruby-rack"], capture_output=True, text=True,
                             check=True).stdout
    upstream = version.split(":")[-1].rsplit("-", 1)[0]
    [path] = Path("/usr/share/rubygems-integration/all/specifications").glob("rack-*.gemspec")
    [package] = analyze(GemspecAnalyzer(), "usr/share/rubygems-integration/all/specifications/" + path.name,
                        path.read_bytes())
    assert (package.name, package.version, package.licenses) == ("rack", upstream, ["MIT"])


WRITE_SPEC = """
spec = Gem::Specification.new do |s|
  s.name = ARGV[0]
  s.version = ARGV[1]
  s.platform = ARGV[2]
  s.licenses = ARGV[3].split(",")
  s.summary = "A \\"quoted\\" summary with \\#{not interpolated}"
  s.authors = ["O'Brien"]
  s.files = []
end
File.write(File.join(ARGV[4], spec.spec_name), spec.to_ruby)
puts spec.spec_name
"""


@pytest.mark.parametrize(
    ("name", "version", "platform", "licenses"),
    [
        ("nokogiri", "1.15.4", "x86_64-linux", "MIT"),
        ("my_gem-ext", "2.0.0.pre.3", "ruby", "Apache-2.0,BSD-2-Clause"),
        ("grpc", "1.60.0", "x86_64-linux-musl", ""),
    ],
)
def test_gemspecs_written_by_rubygems(tmp_path: Path, name: str, version: str, platform: str, licenses: str) -> None:
    directory = tmp_path / "specifications"
    directory.mkdir()
    spec_name = subprocess.run(["ruby", "-e", WRITE_SPEC, name, version, platform, licenses, directory],
                               capture_output=True, text=True, check=True).stdout.strip()
    path = directory / spec_name
    [expected] = ruby(LOAD_SPECS, path)
    [package] = analyze(GemspecAnalyzer(), f"usr/local/bundle/specifications/{spec_name}", path.read_bytes())
    assert (package.name, package.version, package.licenses) == (expected["name"], expected["version"],
                                                                 expected["licenses"])
    assert package.extra.get("platform", "ruby") == expected["platform"]
    suffix = "" if expected["platform"] == "ruby" else f"?platform={expected['platform']}"
    assert package.purl == f"pkg:gem/{expected['name']}@{expected['version']}{suffix}"


def test_gemspec_code_is_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    spec = textwrap.dedent(f"""
        # -*- encoding: utf-8 -*-
        Gem::Specification.new do |s|
          s.name = "evil#{{`touch {marker}`}}"
          s.version = File.read("/etc/hostname").strip
          s.licenses = [%x(touch {marker})]
          s.name = "rack".freeze; system("touch {marker}")
        end
    """).encode()
    [package] = analyze(GemspecAnalyzer(), "specifications/trojan-6.6.6.gemspec", spec)
    assert (package.name, package.version, package.licenses) == ("trojan", "6.6.6", [])
    assert not marker.exists()


LITERAL_FORMS = [
    """
    Gem::Specification.new do |spec|
      spec.name    = %q{multi_json}
      spec.version = Gem::Version.new('1.15.0') if spec.respond_to? :version=
      spec.licenses = [
        "MIT".freeze, # first
        'Ruby',
      ]
    end
    """,
    """
    Gem::Specification.new do |spec|
      spec.name = 'rack_test'.freeze
      spec.version = "2.0"
      spec.licenses = ["MIT"]
      spec.license = "GPL-2.0" # the later setter wins, as in RubyGems
    end
    """,
    """
    Gem::Specification.new do |s|
      s.name = "a"
      s.version = %q<1.0.0.rc1>
      s.licenses = %w[MIT GPL-2.0]
    end
    """,
]


@pytest.mark.parametrize("source", LITERAL_FORMS)
def test_gemspec_literal_forms_agree_with_rubygems(tmp_path: Path, source: str) -> None:
    path = tmp_path / "spec.gemspec"
    path.write_text(textwrap.dedent(source))
    [expected] = ruby(LOAD_SPECS, path)
    [package] = analyze(GemspecAnalyzer(), "specifications/whatever.gemspec", path.read_bytes())
    assert (package.name, package.version, package.licenses) == (expected["name"], expected["version"],
                                                                 expected["licenses"])


def test_gemspec_stub_line_is_used_when_values_are_code() -> None:
    spec = b"# stub: thor 1.2.1 ruby lib\nGem::Specification.new do |s|\n  s.name = NAME\n"
    spec += b"  s.version = Thor::VERSION\nend\n"
    [package] = analyze(GemspecAnalyzer(), "specifications/unknown.gemspec", spec)
    assert (package.name, package.version) == ("thor", "1.2.1")


@pytest.mark.parametrize(
    "data",
    [b"\x00\x01binary\xff\xfe" * 50, b'Gem::Specification.new do |s|\n  s.name = "a#{1}"\nend\n', b""],
)
def test_unidentifiable_gemspec_raises_parse_error(data: bytes) -> None:
    with pytest.raises(ParseError, match="no literal gem name and version"):
        analyze(GemspecAnalyzer(), "specifications/broken.gemspec", data)


def test_unterminated_literal_is_bounded() -> None:
    spec = b'Gem::Specification.new do |s|\n  s.name = "' + b"a" * (4 * 1024 * 1024)
    with pytest.raises(ParseError):
        analyze(GemspecAnalyzer(), "specifications/x.gemspec", spec)


def test_blank_runs_do_not_backtrack() -> None:
    """Runs of blanks where a careless pattern would try every split (this test would hang)."""
    blanks = " " * 200_000
    spec = f"Gem::Specification.new{blanks}x\n  s.name ={blanks}x\n  s.version = \"1\"{blanks}; x\n".encode()
    [package] = analyze(GemspecAnalyzer(), "specifications/ok-2.0.gemspec", spec)
    assert (package.name, package.version) == ("ok", "2.0")


@pytest.mark.parametrize(
    ("path", "wanted"),
    [
        ("usr/lib/ruby/gems/3.1.0/specifications/rake-13.0.6.gemspec", True),
        ("usr/lib/ruby/gems/3.1.0/specifications/default/cgi-0.3.5.gemspec", True),
        ("usr/local/bundle/specifications/rails-7.0.0.gemspec", True),
        ("app/vendor/mygem/mygem.gemspec", False),
        ("app/default/x.gemspec", False),
    ],
)
def test_gemspec_wants(path: str, wanted: bool) -> None:
    assert prefilter_accepts(GemspecAnalyzer(), path) is wanted


# ---------------------------------------------------------------- Gemfile.lock


@pytest.mark.parametrize("case", cases("packages", "bundler"), ids=lambda c: c.name)
def test_corpus(case: Case) -> None:
    check_case(GemfileLockAnalyzer(), case, "bundler")


def assert_matches_bundler(lock_path: Path, found: list[Package]) -> None:
    """Same gems, dependency names and direct set as Bundler's own LockfileParser."""
    truth = ruby(PARSE_LOCK, lock_path)
    by_name: dict[str, list[dict[str, Any]]] = {}
    for spec in truth["specs"]:
        by_name.setdefault(spec["name"], []).append(spec)
    assert {(s["name"], s["version"]) for s in truth["specs"]} == {(p.name, p.version) for p in found}
    assert len(found) == len({(p.name, p.version) for p in found})
    locked = {p.name for p in found}
    for package in found:
        wanted = {d for s in by_name[package.name] if s["version"] == package.version for d in s["deps"]}
        assert {d.rsplit("@", 1)[0] for d in package.depends_on} == wanted & locked, package.id
        assert package.relationship == ("direct" if package.name in truth["direct"] else "indirect")


@pytest.mark.parametrize("case", cases("packages", "bundler"), ids=lambda c: c.name)
def test_corpus_lockfiles_agree_with_bundler(case: Case) -> None:
    found = analyze(GemfileLockAnalyzer(), "Gemfile.lock", case.input_path.read_bytes())
    assert_matches_bundler(case.input_path, found)


def test_real_bundle_lock(tmp_path: Path) -> None:
    """``bundle lock --local`` against the gems Debian installed: a Gemfile.lock Bundler itself wrote."""
    (tmp_path / "vendor" / "mylib").mkdir(parents=True)
    (tmp_path / "vendor" / "mylib" / "mylib.gemspec").write_text(textwrap.dedent("""
        Gem::Specification.new do |s|
          s.name = "mylib"
          s.version = "0.3.0"
          s.summary = "local gem"
          s.authors = ["Moat"]
          s.files = []
          s.add_dependency "rack"
        end
    """))
    (tmp_path / "Gemfile").write_text(textwrap.dedent("""
        source "https://rubygems.org"
        gem "i18n"
        gem "mylib", path: "vendor/mylib"
        group :development do
          gem "rake"
        end
    """))
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "BUNDLE_USER_HOME": str(tmp_path / ".bundle")}
    subprocess.run(["bundle", "lock", "--local"], cwd=tmp_path, env=env, check=True, capture_output=True, timeout=300)
    lock_path = tmp_path / "Gemfile.lock"
    text = lock_path.read_text()
    assert "PATH\n" in text and "GEM\n" in text and "mylib!" in text
    found = analyze(GemfileLockAnalyzer(), "srv/app/Gemfile.lock", lock_path.read_bytes())
    assert_matches_bundler(lock_path, found)
    by_name = {p.name: p for p in found}
    assert {"i18n", "concurrent-ruby", "rack", "rake", "mylib"} <= set(by_name)
    assert by_name["mylib"].depends_on == [by_name["rack"].id]
    assert all(p.found_in == "srv/app/Gemfile.lock" and p.type == "gem" for p in found)
    assert by_name["i18n"].purl == f"pkg:gem/i18n@{by_name['i18n'].version}"


HAND_LOCK = """\
GIT
  remote: https://example.invalid/rails.git
  revision: 0123456789abcdef
  branch: main
  specs:
    actionpack (7.1.0.alpha)
      rack (>= 2.2.4)

GEM
  remote: https://rubygems.org/
  specs:
    mini_portile2 (2.8.5)
    nokogiri (1.15.4)
      mini_portile2 (~> 2.8.2)
      racc (~> 1.4)
    nokogiri (1.15.4-arm64-darwin)
      racc (~> 1.4)
    nokogiri (1.15.4-x86_64-linux)
      racc (~> 1.4)
    racc (1.7.3)
    rack (3.0.8)

PLATFORMS
  arm64-darwin
  ruby
  x86_64-linux

DEPENDENCIES
  actionpack!
  nokogiri (~> 1.15)

BUNDLED WITH
   2.4.22
"""


def test_hand_lock_with_git_source_and_platform_variants(tmp_path: Path) -> None:
    lock_path = tmp_path / "Gemfile.lock"
    lock_path.write_text(HAND_LOCK)
    found = analyze(GemfileLockAnalyzer(), "Gemfile.lock", HAND_LOCK.encode())
    assert [p.id for p in found] == ["actionpack@7.1.0.alpha", "mini_portile2@2.8.5", "nokogiri@1.15.4",
                                     "racc@1.7.3", "rack@3.0.8"]
    truth = ruby(PARSE_LOCK, lock_path)
    assert {(s["name"], s["version"]) for s in truth["specs"]} == {(p.name, p.version) for p in found}
    assert set(truth["direct"]) == {p.name for p in found if p.relationship == "direct"}
    by_name = {p.name: p for p in found}
    assert by_name["nokogiri"].depends_on == ["mini_portile2@2.8.5", "racc@1.7.3"]
    assert by_name["actionpack"].depends_on == ["rack@3.0.8"]


def test_platform_only_gem_keeps_platform() -> None:
    lock = b"GEM\n  remote: https://rubygems.org/\n  specs:\n    grpc (1.60.0-x86_64-linux)\n\nDEPENDENCIES\n  grpc\n"
    [package] = analyze(GemfileLockAnalyzer(), "Gemfile.lock", lock)
    assert (package.version, package.extra, package.purl) == (
        "1.60.0", {"platform": "x86_64-linux"}, "pkg:gem/grpc@1.60.0?platform=x86_64-linux"
    )
    assert package.relationship == "direct"


def test_gem_with_huge_dependency_list_stays_linear() -> None:
    lines = ["GEM", "  specs:", "    big (1.0)"] + [f"      dep{n} (>= 0)" for n in range(200_000)]
    lines += [f"    dep{n} (2.0)" for n in range(0, 200_000, 1000)]
    found = analyze(GemfileLockAnalyzer(), "Gemfile.lock", "\n".join(lines).encode())
    assert len(found) == 201
    assert len(found[0].depends_on) == 200


@pytest.mark.parametrize(
    "data", [b"\x00\xff" * 1000, b"GEM\n  specs:\n    bad name (1.0)\n    x (not a version)\n", b"{}"]
)
def test_garbage_lockfile_is_a_warning_not_a_crash(data: bytes) -> None:
    result = GemfileLockAnalyzer().analyze(FileInput("Gemfile.lock", io.BytesIO(data), len(data)))
    assert result.packages == []
    assert result.warnings


def test_gemfile_lock_wants() -> None:
    analyzer = GemfileLockAnalyzer()
    assert prefilter_accepts(analyzer, "app/Gemfile.lock") and prefilter_accepts(analyzer, "app/gems.locked")
    assert not prefilter_accepts(analyzer, "app/Gemfile")
