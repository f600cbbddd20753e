"""The analyzer contract and registry.

Shaped like Trivy's analyzer registry: one analyzer per file type, each declaring which paths it
wants. The layer walker streams every layer once and hands an analyzer only the files it asked for,
so nothing else is ever read into memory or written to disk.

Every module in ``moat.inventory.analyzers`` is imported by :func:`all_analyzers`; a module adds
its analyzer with the :func:`register` decorator. Nothing else needs editing to add one.
"""

from __future__ import annotations

import importlib
import pkgutil
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import IO, Any, ClassVar, TypeVar

from moat.model import OSInfo, Package

DEFAULT_MAX_FILE_SIZE = 256 * 1024 * 1024


class FileInput:
    """One file an analyzer asked for, readable once the walker has kept it.

    ``content`` is bounded by the analyzer's ``max_file_size``; large files (jars, binaries, rpm
    databases) are held in a spooled temporary file rather than in memory.
    """

    def __init__(self, path: str, stream: IO[bytes], size: int, mode: int = 0o644) -> None:
        self.path = path
        self.size = size
        self.mode = mode
        self._stream = stream
        self.memo: dict[str, Any] = {}
        """What one analyzer parsed that another analyzer of the same file can reuse (an executable's
        headers, read by both the Go and the Rust analyzers)."""

    def open(self) -> IO[bytes]:
        """A binary stream positioned at the start of the file."""
        self._stream.seek(0)
        return self._stream

    def read(self) -> bytes:
        return self.open().read()

    def text(self) -> str:
        """The content decoded as UTF-8, with undecodable bytes replaced (package DBs are not always clean)."""
        return self.read().decode("utf-8", errors="replace")


@dataclass(slots=True)
class AnalysisResult:
    """What one analyzer found in one file."""

    packages: list[Package] = field(default_factory=list)
    os: OSInfo | None = None
    warnings: list[str] = field(default_factory=list)
    package_licenses: dict[str, list[str]] = field(default_factory=dict)
    """Licenses that this file declares for packages recorded elsewhere, keyed ``type:name``
    (Debian keeps them in usr/share/doc/<pkg>/copyright, not in the status database)."""
    owned_paths: list[str] = field(default_factory=list)
    """Paths, relative to the root, that an OS package database says it installed; only those a
    language analyzer could read (see :mod:`moat.inventory.ownership`). The packages found in them
    are already reported as OS packages, so the merged scan drops their language duplicates."""


class Analyzer(ABC):
    """Turns one kind of file into packages (or OS facts).

    ``name`` is stable (it keys the layer cache); bump ``version`` whenever the output for the same
    input changes, so cached layer results are recomputed.
    """

    name: ClassVar[str]
    version: ClassVar[int] = 1
    max_file_size: ClassVar[int] = DEFAULT_MAX_FILE_SIZE

    # The walker's cheap pre-filter: an entry reaches ``wants`` only if its base name is in
    # ``basenames``, its name ends with one of ``suffixes``, its parent directory is in ``dirnames``,
    # or (with ``executables``) it is a regular file with an execute bit. Declare at least one.
    basenames: ClassVar[frozenset[str]] = frozenset()
    suffixes: ClassVar[tuple[str, ...]] = ()
    dirnames: ClassVar[frozenset[str]] = frozenset()
    executables: ClassVar[bool] = False

    def wants(self, path: str, mode: int) -> bool:
        """Final say on a pre-filtered entry (``path`` relative to the root, no leading slash).

        Override to narrow the pre-filter, e.g. to insist on a ``site-packages`` parent.
        """
        return True

    @abstractmethod
    def analyze(self, file: FileInput) -> AnalysisResult:
        """Parse the file. Raise :class:`moat.errors.ParseError` for a file that is not what it claims."""


_REGISTRY: dict[str, type[Analyzer]] = {}
_LOADED = False

A = TypeVar("A", bound=type[Analyzer])


def register(cls: A) -> A:
    """Class decorator that adds an analyzer to the registry."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise RuntimeError(f"two analyzers are named {cls.name!r}")
    _REGISTRY[cls.name] = cls
    return cls


def all_analyzers() -> list[Analyzer]:
    """A fresh instance of every registered analyzer, in name order."""
    global _LOADED
    if not _LOADED:
        from moat.inventory import analyzers as package

        for module in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{package.__name__}.{module.name}")
        _LOADED = True
    return [_REGISTRY[name]() for name in sorted(_REGISTRY)]


def analyzer_versions(analyzers: list[Analyzer]) -> str:
    """A compact, order-independent description of analyzer versions, used in cache keys."""
    return ",".join(f"{a.name}:{a.version}" for a in sorted(analyzers, key=lambda a: a.name))
