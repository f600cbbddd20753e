"""Go executables: the modules compiled in, and the Go release whose standard library they carry.

Reported the way Trivy reports Go binaries, so Go advisories (which name modules and ``stdlib``)
match: every ``dep`` (its replacement when ``=>`` replaced it), ``stdlib`` at the Go version with
a ``v`` prefix (``go1.21.3`` → ``v1.21.3``), and the main module with ``(devel)`` turned into an
empty version unless ``-ldflags -X …version=`` stamped a semantic version into the binary.
"""

from __future__ import annotations

import re
import shlex

from moat.inventory.analyzer import AnalysisResult, Analyzer, FileInput, register
from moat.inventory.binfmt.executable import executable_of
from moat.inventory.binfmt.gobuildinfo import BuildInfo, Module, read_build_info
from moat.inventory.purl import make_purl
from moat.model import Package

DEVEL = "(devel)"
LDFLAGS_VERSION_PREFIXES = frozenset({"main", "common", "version", "cmd"})
_SEMVER = re.compile(
    r"^v(0|[1-9]\d*)(\.(0|[1-9]\d*)(\.(0|[1-9]\d*)"
    r"(-(0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(\.(0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*)?"
    r"(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?)?)?$"
)
_GO_RELEASE = re.compile(r"^go(\d+(\.\d+)*([a-z]+\d+)?)")


@register
class GoBinaryAnalyzer(Analyzer):
    """Build info of any executable the Go toolchain linked (ELF, PE and thin Mach-O)."""

    name = "gobinary"
    version = 1
    executables = True

    def analyze(self, file: FileInput) -> AnalysisResult:
        exe = executable_of(file)
        if exe is None:
            return AnalysisResult()
        info = read_build_info(exe)
        if info is None:
            return AnalysisResult()
        return AnalysisResult(packages=packages_from_build_info(info, file.path))


def packages_from_build_info(info: BuildInfo, found_in: str) -> list[Package]:
    packages: list[Package] = []
    stdlib = stdlib_version(info.go_version)
    if stdlib:
        packages.append(_package("stdlib", stdlib, found_in, relationship="direct"))
    for dep in info.deps:
        package = _dependency(dep, found_in)
        if package is not None:
            packages.append(package)
    if info.main is not None and info.main.path:
        version = "" if info.main.version == DEVEL else info.main.version
        stamped = ldflags_version(info.main.path, info.settings.get("-ldflags", ""))
        if stamped and (not version or version.startswith("v0.0.0")):
            version = stamped
        root = _package(info.main.path, version, found_in, relationship="root")
        root.depends_on = sorted(p.id for p in packages)
        packages.append(root)
    return packages


def _dependency(dep: Module, found_in: str) -> Package | None:
    if not dep.path:  # very old toolchains listed the main module as a pathless dep
        return None
    replacement = dep.replace
    if replacement is None:
        return _package(dep.path, _clean(dep.version), found_in)
    if replacement.version in ("", DEVEL):
        # Replaced by a local directory: the module keeps its identity but has no released version.
        package = _package(dep.path, "", found_in)
        package.extra["replaced_by"] = replacement.path
        return package
    package = _package(replacement.path, replacement.version, found_in)
    package.extra["replaces"] = f"{dep.path}@{dep.version}" if dep.version else dep.path
    return package


def _clean(version: str) -> str:
    return "" if version == DEVEL else version


def _package(name: str, version: str, found_in: str, relationship: str | None = None) -> Package:
    return Package(
        name=name,
        version=version,
        type="golang",
        purl=golang_purl(name, version),
        found_in=found_in,
        relationship=relationship,
    )


def golang_purl(module_path: str, version: str) -> str:
    """``pkg:golang/<namespace>/<name>@<version>``, the module path split at its last slash."""
    namespace, _, name = module_path.rpartition("/")
    return make_purl("golang", name, version or None, namespace=namespace or None)


def stdlib_version(go_version: str) -> str:
    """``go1.21.3 X:boringcrypto`` → ``v1.21.3``; empty for development toolchains (``devel …``)."""
    match = _GO_RELEASE.match(go_version.strip())
    return f"v{match.group(1)}" if match else ""


def ldflags_version(main_path: str, ldflags: str) -> str:
    """A semantic version stamped with ``-X <pkg>.version=…`` (or ``.ver``), if exactly one is clear.

    Keys under the main module's ``cmd/`` tree win, then the conventional packages (main, common,
    version, cmd), then any other package; two different stamps at the same rank are ambiguous.
    """
    if not ldflags:
        return ""
    try:
        words = shlex.split(ldflags)
    except ValueError:
        return ""
    stamps: dict[str, str] = {}
    for index, word in enumerate(words):
        assignment = None
        if word in ("-X", "--X"):
            if index + 1 < len(words):
                assignment = words[index + 1]
        elif word.startswith(("-X=", "--X=")):
            assignment = word.split("=", 1)[1]
        elif word.startswith("-X") and not word.startswith("--"):
            assignment = word[2:]
        if assignment and "=" in assignment:
            key, _, value = assignment.partition("=")
            stamps[key.strip("'\"")] = value.strip("'\"")
    ranked: list[list[str]] = [[], [], []]
    for key, value in stamps.items():
        if not key.lower().endswith((".version", ".ver")) or not _is_semver(value):
            continue
        if key.startswith(main_path + "/cmd/"):
            ranked[0].append(value)
        elif _package_of(key) in LDFLAGS_VERSION_PREFIXES:
            ranked[1].append(value)
        else:
            ranked[2].append(value)
    for values in ranked:
        if values:
            return values[0] if len(values) == 1 else ""
    return ""


def _package_of(key: str) -> str:
    """``github.com/x/y/internal/version.Version`` → ``version``."""
    return key.rpartition("/")[2].partition(".")[0].lower()


def _is_semver(value: str) -> bool:
    return bool(_SEMVER.match(value) or _SEMVER.match("v" + value))

