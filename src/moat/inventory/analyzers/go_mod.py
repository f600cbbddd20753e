"""Go module manifests: ``go.mod`` (the requirements) and ``go.sum`` (the checksummed modules).

go.mod is read the way Trivy's default analyzer reads it: every ``require`` is a package, direct
or ``// indirect``; ``replace`` directives are applied (a local-directory replacement removes the
module, a versioned one swaps it in, a left-hand version that does not match leaves it alone).
Before Go 1.17 go.mod did not list the indirect modules, so its ``// indirect`` lines are partial
and are skipped, again as Trivy does; the ``go``/``toolchain`` line is not a ``stdlib`` package
(that is Trivy's opt-in "comprehensive" mode: a minimum version, not the toolchain that built
anything). go.sum gives one package per module, at the last (highest) version it lists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from moat.errors import ParseError
from moat.inventory.analyzer import AnalysisResult, Analyzer, FileInput, register
from moat.inventory.analyzers.go_binary import golang_purl
from moat.model import Package

MAX_MANIFEST_SIZE = 16 * 1024 * 1024
DIRECTIVES = frozenset(
    {"module", "go", "toolchain", "godebug", "require", "exclude", "replace", "retract", "tool", "ignore"}
)
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|`[^`]*`|=>|[()]|[^\s"`()]+')
_GO_VERSION = re.compile(r"^(\d+)\.(\d+)")


@dataclass(slots=True)
class Requirement:
    path: str
    version: str
    indirect: bool


@dataclass(slots=True)
class Replacement:
    old_path: str
    old_version: str
    new_path: str
    new_version: str


@dataclass(slots=True)
class GoMod:
    module: str = ""
    go: str = ""
    toolchain: str = ""
    requires: list[Requirement] = field(default_factory=list)
    replaces: list[Replacement] = field(default_factory=list)


@register
class GoModAnalyzer(Analyzer):
    """go.mod requirements with replace directives applied."""

    name = "gomod"
    version = 2
    basenames = frozenset({"go.mod"})
    max_file_size = MAX_MANIFEST_SIZE

    def analyze(self, file: FileInput) -> AnalysisResult:
        return AnalysisResult(packages=packages_from_gomod(parse_gomod(file.text()), file.path))


@register
class GoSumAnalyzer(Analyzer):
    """go.sum: every module a build of the main module may verify, at its highest listed version."""

    name = "gosum"
    version = 1
    basenames = frozenset({"go.sum"})
    max_file_size = MAX_MANIFEST_SIZE

    def analyze(self, file: FileInput) -> AnalysisResult:
        latest: dict[str, str] = {}
        for number, line in enumerate(file.text().splitlines(), 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 3 or not fields[1].startswith("v") or ":" not in fields[2]:
                raise ParseError(f"go.sum line {number} is not '<module> <version> <hash>'")
            latest[fields[0]] = fields[1].removesuffix("/go.mod")
        return AnalysisResult(
            packages=[
                Package(name=path, version=version, type="golang", purl=golang_purl(path, version),
                        found_in=file.path)
                for path, version in latest.items()
            ]
        )


def packages_from_gomod(mod: GoMod, found_in: str) -> list[Package]:
    skip_indirect = _older_than_117(mod.go)
    chosen: dict[str, Requirement] = {}
    for requirement in mod.requires:
        if skip_indirect and requirement.indirect:
            continue
        chosen[requirement.path] = requirement
    replaced_from: dict[str, str] = {}
    for rep in mod.replaces:
        current = chosen.get(rep.old_path)
        if current is None or (rep.old_version and rep.old_version != current.version):
            continue
        del chosen[rep.old_path]
        if not rep.new_version:  # a local directory: not a module anyone publishes advisories for
            continue
        chosen[rep.new_path] = Requirement(rep.new_path, rep.new_version, current.indirect)
        replaced_from[rep.new_path] = f"{current.path}@{current.version}"
    packages = []
    for requirement in chosen.values():
        package = Package(
            name=requirement.path,
            version=requirement.version,
            type="golang",
            purl=golang_purl(requirement.path, requirement.version),
            found_in=found_in,
            relationship="indirect" if requirement.indirect else "direct",
        )
        if requirement.path in replaced_from:
            package.extra["replaces"] = replaced_from[requirement.path]
        if mod.go:
            package.extra["go"] = mod.go  # lets the go.sum beside it be reconciled after the merge
        packages.append(package)
    return packages


def _older_than_117(go: str) -> bool:
    """go.mod files before 1.17 (or without a go line, which predates it) list indirect deps partially."""
    if not go:
        return True
    match = _GO_VERSION.match(go)
    if match is None:
        return False
    return (int(match.group(1)), int(match.group(2))) < (1, 17)


def parse_gomod(text: str) -> GoMod:
    """Parse go.mod syntax: directives, one per line or in ``directive ( … )`` blocks."""
    mod = GoMod()
    block: str | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        tokens, comment = _tokenize(raw, number)
        if not tokens:
            continue
        if block is not None:
            if tokens == [")"]:
                block = None
                continue
            _directive(mod, block, tokens, comment, number)
            continue
        verb = tokens[0]
        if verb not in DIRECTIVES:
            if not re.fullmatch(r"[a-z]+", verb):
                raise ParseError(f"go.mod line {number}: unexpected {verb[:40]!r}")
            continue  # a directive newer than this parser
        if tokens[1:] == ["("]:
            block = verb
            continue
        if tokens[1:] == ["(", ")"]:
            continue
        _directive(mod, verb, tokens[1:], comment, number)
    if block is not None:
        raise ParseError(f"go.mod: '{block} (' block is never closed")
    return mod


def _tokenize(line: str, number: int) -> tuple[list[str], str]:
    tokens: list[str] = []
    position = 0
    while position < len(line):
        if line[position].isspace():
            position += 1
            continue
        if line.startswith("//", position):
            return tokens, line[position + 2 :].strip()
        match = _TOKEN.match(line, position)
        if match is None:
            raise ParseError(f"go.mod line {number}: unterminated quoted string")
        token = match.group(0)
        if token.startswith("//"):
            return tokens, line[position + 2 :].strip()
        tokens.append(_unquote(token))
        position = match.end()
    return tokens, ""


def _unquote(token: str) -> str:
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "\"`":
        body = token[1:-1]
        return body.replace('\\"', '"').replace("\\\\", "\\") if token[0] == '"' else body
    return token


def _directive(mod: GoMod, verb: str, args: list[str], comment: str, number: int) -> None:
    if verb == "module":
        if len(args) != 1:
            raise ParseError(f"go.mod line {number}: module takes one path")
        mod.module = args[0]
    elif verb == "go":
        if len(args) != 1:
            raise ParseError(f"go.mod line {number}: go takes one version")
        mod.go = args[0]
    elif verb == "toolchain":
        mod.toolchain = args[0] if args else ""
    elif verb == "require":
        if len(args) != 2:
            raise ParseError(f"go.mod line {number}: require needs a module path and a version")
        indirect = comment == "indirect" or comment.startswith("indirect;")
        mod.requires.append(Requirement(args[0], args[1], indirect))
    elif verb == "replace":
        mod.replaces.append(_replacement(args, number))


def _replacement(args: list[str], number: int) -> Replacement:
    if "=>" not in args:
        raise ParseError(f"go.mod line {number}: replace without '=>'")
    arrow = args.index("=>")
    old, new = args[:arrow], args[arrow + 1 :]
    if len(old) not in (1, 2) or len(new) not in (1, 2):
        raise ParseError(f"go.mod line {number}: replace needs 'path [version] => path [version]'")
    return Replacement(
        old_path=old[0],
        old_version=old[1] if len(old) == 2 else "",
        new_path=new[0],
        new_version=new[1] if len(new) == 2 else "",
    )
