"""Debian package licenses, from ``usr/share/doc/<package>/copyright``.

dpkg's status database records no license; Debian policy puts it in the package's copyright file.
Machine-readable files (DEP-5) name each license on a ``License:`` line; older free-form files
usually point at ``/usr/share/common-licenses/<NAME>``. Both are read; names are kept as Debian
writes them (``GPL-2+``, ``BSD-3-clause``) rather than guessed into SPDX ids.
"""

from __future__ import annotations

import re

from moat.inventory.analyzer import AnalysisResult, Analyzer, FileInput, register

DOC_PREFIX = "usr/share/doc/"
MAX_COPYRIGHT_BYTES = 4 * 1024 * 1024
_LICENSE_LINE = re.compile(r"^License:[ \t]*(\S.*?)\s*$", re.MULTILINE)
_COMMON_LICENSE = re.compile(r"/usr/share/common-licenses/([A-Za-z0-9][A-Za-z0-9.+_-]*[A-Za-z0-9+])")
_SPLIT = re.compile(r"\s+(?:and|or)\s+|\s*,\s*", re.IGNORECASE)


def licenses_in(text: str) -> list[str]:
    """License names in first-seen order, expressions split into their terms."""
    found: list[str] = []
    for match in _LICENSE_LINE.finditer(text):
        for term in _SPLIT.split(match.group(1)):
            term = term.strip().strip("()")
            if term and term not in found:
                found.append(term)
    if not found:
        for match in _COMMON_LICENSE.finditer(text):
            if match.group(1) not in found:
                found.append(match.group(1))
    return found


@register
class DpkgCopyrightAnalyzer(Analyzer):
    name = "dpkg-copyright"
    version = 1
    max_file_size = MAX_COPYRIGHT_BYTES
    basenames = frozenset({"copyright"})

    def wants(self, path: str, mode: int) -> bool:
        return path.startswith(DOC_PREFIX) and path.count("/") == 4

    def analyze(self, file: FileInput) -> AnalysisResult:
        package = file.path.split("/")[3]
        licenses = licenses_in(file.text())
        if not licenses:
            return AnalysisResult()
        return AnalysisResult(package_licenses={f"deb:{package}": licenses})
