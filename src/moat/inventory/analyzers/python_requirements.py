"""pip requirements files (``requirements*.txt``, and ``*.txt`` in a ``requirements/`` directory).

Only pinned requirements (``name==version``, or the exact ``name===version``) name a package version;
ranges, wildcards (``==1.*``), URLs, paths and editable installs do not and are skipped. Extras and
environment markers are kept in ``extra`` (markers are not evaluated: the image may run any Python).
``-r``/``-c`` includes are not followed (the other file is analysed on its own if the image has it),
and per-requirement options such as ``--hash`` are ignored. Backslash continuations and comments
follow pip's rules.
"""

from __future__ import annotations

import re

from moat.errors import ParseError
from moat.inventory.analyzer import AnalysisResult, Analyzer, FileInput, register
from moat.inventory.analyzers.python_common import decode_text, is_valid_name, is_valid_version, pypi_package
from moat.model import Package

MAX_REQUIREMENTS_SIZE = 16 * 1024 * 1024
MAX_LINE = 64 * 1024

# pip strips a comment that starts the line or follows whitespace.
_COMMENT = re.compile(r"(^|\s)#.*$")
# Per-requirement options (--hash=…, --config-settings …) start at the first dash after whitespace.
# Patterns are written so that no two repeats can match the same run of blanks: no quadratic backtracking.
_OPTIONS = re.compile(r"(?<!\S)--?[A-Za-z]")
_PINNED = re.compile(
    r"""^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*
        (?:\[(?P<extras>[A-Za-z0-9._,\s-]*)\]\s*)?
        ===?\s*(?P<version>[^\s;,*]+)\s*
        (?:;\s*(?P<markers>.*))?$""",
    re.VERBOSE,
)


@register
class RequirementsAnalyzer(Analyzer):
    name = "pip-requirements"
    version = 1
    max_file_size = MAX_REQUIREMENTS_SIZE
    suffixes = (".txt",)

    def wants(self, path: str, mode: int) -> bool:
        parts = path.rsplit("/", 2)
        base = parts[-1]
        parent = parts[-2] if len(parts) > 1 else ""
        return base.startswith("requirements") or parent == "requirements"

    def analyze(self, file: FileInput) -> AnalysisResult:
        text = decode_text(file.read(), file.path)
        packages: list[Package] = []
        seen: set[str] = set()
        for line in logical_lines(text, file.path):
            package = _parse_requirement(line, file.path)
            if package is not None and package.id not in seen:
                seen.add(package.id)
                packages.append(package)
        return AnalysisResult(packages=packages)


def logical_lines(text: str, path: str) -> list[str]:
    """Lines with comments removed and backslash continuations joined, as pip reads them."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = _COMMENT.sub("", raw)
        if len(pending) + len(line) > MAX_LINE:
            raise ParseError(f"{path}: a (continued) line longer than {MAX_LINE} characters")
        if line.endswith("\\"):
            pending += line[:-1]
        else:
            lines.append((pending + line).strip())
            pending = ""
    if pending:
        lines.append(pending.strip())
    return [line for line in lines if line]


def _parse_requirement(line: str, path: str) -> Package | None:
    if line.startswith("-"):
        return None  # -r/-c includes, -e editables, --index-url and other global options
    options = _OPTIONS.search(line)
    requirement = line[: options.start()].rstrip() if options else line
    match = _PINNED.match(requirement)
    if match is None:
        return None
    name, version = match["name"], match["version"]
    if not is_valid_name(name) or not is_valid_version(version) or "$" in version:
        return None
    package = pypi_package(name, version, path)
    extras = ",".join(sorted({e.strip() for e in (match["extras"] or "").split(",") if e.strip()}))
    if extras:
        package.extra["extras"] = extras
    if match["markers"]:
        package.extra["markers"] = match["markers"].strip()
    return package
