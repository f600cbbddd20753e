"""Installed rpm packages, from the rpm database in any of its three formats (see moat.inventory.rpmdb).

Every header lists the files its package installed; the ones a language analyzer could read are
returned as owned paths, so the merged scan drops the language packages rpm installed (a
``python3-requests`` rpm's ``requests-*.dist-info``) instead of reporting them twice.
"""

from __future__ import annotations

from moat.inventory.analyzer import AnalysisResult, Analyzer, FileInput, register
from moat.inventory.ownership import owned_paths
from moat.inventory.rpmdb import RpmHeaderInfo, read_rpmdb
from moat.inventory.rpmdb.deps import resolve_requires
from moat.model import Package

_DB_DIRS = ("var/lib/rpm", "usr/lib/sysimage/rpm")
_DB_FILES = ("Packages", "rpmdb.sqlite", "Packages.db")
DB_PATHS = frozenset(f"{directory}/{name}" for directory in _DB_DIRS for name in _DB_FILES)

PSEUDO_PACKAGES = frozenset({"gpg-pubkey"})
"""Imported signing keys that rpm stores as headers; they are not software (Trivy and Syft drop them)."""


def split_source_rpm(filename: str) -> tuple[str, str, str] | None:
    """``name-version-release.src.rpm`` → (name, version, release); None when it has another shape."""
    if not filename.endswith(".rpm"):
        return None
    stem, dot, _arch = filename[: -len(".rpm")].rpartition(".")
    if not dot:
        return None
    rest, dash, release = stem.rpartition("-")
    name, dash2, version = rest.rpartition("-")
    if not (dash and dash2 and name and version and release):
        return None
    return name, version, release


def _package(header: RpmHeaderInfo, found_in: str) -> Package:
    source_name = source_version = None
    if header.source_rpm:
        parts = split_source_rpm(header.source_rpm)
        if parts:
            source_name = parts[0]
            source_version = f"{parts[1]}-{parts[2]}"
            # Source rpms carry no epoch of their own; the binary's is the source's (as Trivy does).
            if header.epoch is not None:
                source_version = f"{header.epoch}:{source_version}"
    extra: dict[str, str] = {}
    if header.source_rpm:
        extra["source_rpm"] = header.source_rpm
    if header.vendor:
        extra["vendor"] = header.vendor
    if header.size is not None:
        extra["size"] = str(header.size)
    if header.sigmd5:
        extra["sigmd5"] = header.sigmd5
    if header.modularity_label:
        extra["modularity_label"] = header.modularity_label
    return Package(
        name=header.name,
        version=header.evr,
        type="rpm",
        licenses=[header.license] if header.license else [],
        found_in=found_in,
        source_name=source_name,
        source_version=source_version,
        arch=header.arch,
        epoch=header.epoch,
        release=header.release,
        extra=extra,
    )


@register
class RpmDatabaseAnalyzer(Analyzer):
    """The rpm database (BerkeleyDB ``Packages``, ndb ``Packages.db`` or ``rpmdb.sqlite``).

    Files are read through seeks on the engine's (possibly disk-spooled) stream, so a database of
    hundreds of MB is never held in memory; hence the large size limit.
    """

    name = "rpm"
    version = 2
    max_file_size = 1024 * 1024 * 1024
    basenames = frozenset(_DB_FILES)

    def wants(self, path: str, mode: int) -> bool:
        return path in DB_PATHS

    def analyze(self, file: FileInput) -> AnalysisResult:
        if file.size == 0:
            return AnalysisResult()  # an emptied database left behind by a migration holds nothing
        database = read_rpmdb(file.open())
        headers = [h for h in database.headers if h.name not in PSEUDO_PACKAGES]
        packages = [_package(header, file.path) for header in headers]
        for package, provider_indexes in zip(packages, resolve_requires(headers), strict=True):
            ids = {packages[i].id for i in provider_indexes} - {package.id}
            package.depends_on = sorted(ids)
        warnings = [f"{file.path}: {warning}" for warning in database.warnings]
        owned = owned_paths(path for header in headers for path in header.files)
        return AnalysisResult(packages=packages, warnings=warnings, owned_paths=owned)
