"""Installed Python distributions: the core-metadata file every installer leaves behind.

``*.dist-info/METADATA`` (wheels, pip), ``*.egg-info/PKG-INFO`` and ``EGG-INFO/PKG-INFO`` (setuptools,
eggs) and ``*.egg-info`` as a plain file (distutils, many Debian python3-* packages) all use the same
RFC 822 header format, so one parser serves them, found in any directory (site-packages,
dist-packages, virtualenvs, vendored copies).

Licenses follow the precedence Trivy uses, so results line up with the shared corpus:
``License-Expression`` (PEP 639) first; then the ``License ::`` trove classifiers (the bare grouping
``License :: OSI Approved`` names no license and is skipped); then the free-text ``License`` field,
when it is a name and not a pasted license text; and finally ``file://<License-File>`` to say the
license is only given as a file.
"""

from __future__ import annotations

from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32

from moat.errors import ParseError
from moat.inventory.analyzer import AnalysisResult, Analyzer, FileInput, register
from moat.inventory.analyzers.python_common import decode_text, is_valid_name, is_valid_version, pypi_package

# Metadata files carry the long description; only the headers matter, and they come first.
MAX_METADATA_SIZE = 16 * 1024 * 1024
MAX_HEADER_CHARS = 1024 * 1024
MAX_LICENSE_NAME = 512
_OSI_GROUPING = "OSI Approved"


@register
class PythonDistAnalyzer(Analyzer):
    name = "python-dist"
    version = 1
    max_file_size = MAX_METADATA_SIZE
    basenames = frozenset({"METADATA", "PKG-INFO"})
    suffixes = (".egg-info",)

    def wants(self, path: str, mode: int) -> bool:
        parts = path.rsplit("/", 2)
        base = parts[-1]
        parent = parts[-2] if len(parts) > 1 else ""
        if base == "METADATA":
            return parent.endswith(".dist-info")
        if base == "PKG-INFO":
            return parent.endswith(".egg-info") or parent == "EGG-INFO"
        return base.endswith(".egg-info")

    def analyze(self, file: FileInput) -> AnalysisResult:
        headers = parse_headers(file.read(), file.path)
        name = _single_line(headers.get("Name"))
        version = _single_line(headers.get("Version"))
        if not name or not version:
            raise ParseError(f"{file.path}: no Name or Version header, not Python package metadata")
        if not is_valid_name(name):
            raise ParseError(f"{file.path}: invalid Python package name {name[:80]!r}")
        if not is_valid_version(version):
            raise ParseError(f"{file.path}: invalid version {version[:80]!r}")
        package = pypi_package(name, version, file.path, licenses=licenses_of(headers))
        return AnalysisResult(packages=[package])


def parse_headers(data: bytes, path: str) -> Message:
    """The header block of a core-metadata file (everything before the first blank line)."""
    text = decode_text(data, path)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    end = text.find("\n\n")
    head = text if end < 0 else text[: end + 1]
    if len(head) > MAX_HEADER_CHARS:
        raise ParseError(f"{path}: metadata headers larger than {MAX_HEADER_CHARS} characters")
    return HeaderParser(policy=compat32).parsestr(head)


def licenses_of(headers: Message) -> list[str]:
    """The declared licenses, in the precedence the module docstring explains."""
    expression = _single_line(headers.get("License-Expression"))
    if expression:
        return [expression]
    classified: dict[str, None] = {}  # an ordered set: no quadratic membership tests on hostile input
    for classifier in headers.get_all("Classifier") or []:
        parts = [part.strip() for part in str(classifier).split("::")]
        name = parts[-1]
        if len(parts) >= 2 and parts[0] == "License" and name and name != _OSI_GROUPING:
            classified[name] = None
    if classified:
        return list(classified)
    declared = _single_line(headers.get("License"))
    if declared and len(declared) <= MAX_LICENSE_NAME:
        return [declared]
    license_file = _single_line(headers.get("License-File"))
    if license_file:
        return [f"file://{license_file}"]
    return []


def _single_line(value: object) -> str:
    """A header value when it is one line; folded multi-line values (pasted texts) count as absent."""
    if value is None:
        return ""
    text = str(value).strip()
    return "" if "\n" in text else text
