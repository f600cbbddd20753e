"""The files dpkg installed: ``var/lib/dpkg/info/<package>.list``, one absolute path a line.

Read so that language packages which came with a deb (``python3-six``'s ``six-1.16.0.egg-info``, a
Go binary in ``usr/bin``) are reported once, as the deb, and not a second time under their upstream
version, which Debian patches without changing (see :func:`moat.inventory.reconcile.drop_os_owned`).
Each .list is its own file, so deleting a package's .list in a later layer (a whiteout) makes its
files count as unowned again, exactly as the merged filesystem says. Distroless ``status.d`` images
ship no file lists, so nothing is owned there.
"""

from __future__ import annotations

from moat.errors import ParseError
from moat.inventory.analyzer import AnalysisResult, Analyzer, FileInput, register
from moat.inventory.ownership import owned_paths

INFO_DIR = "var/lib/dpkg/info"
MAX_LIST_SIZE = 64 * 1024 * 1024
"""The largest real .list files (kernel modules, texlive) are a few MB."""


@register
class DpkgFilesAnalyzer(Analyzer):
    name = "dpkg-files"
    version = 1
    max_file_size = MAX_LIST_SIZE
    dirnames = frozenset({INFO_DIR})

    def wants(self, path: str, mode: int) -> bool:
        return path.endswith(".list")

    def analyze(self, file: FileInput) -> AnalysisResult:
        data = file.read()
        if b"\x00" in data:
            raise ParseError("not a dpkg file list: contains NUL bytes")
        lines = data.decode("utf-8", errors="replace").splitlines()
        return AnalysisResult(owned_paths=owned_paths(line for line in lines if line.startswith("/")))
