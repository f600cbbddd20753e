"""Java archives (jar, war, ear, par, sar, Jenkins jpi/hpi): Maven coordinates of what they contain.

Every ``META-INF/maven/<groupId>/<artifactId>/pom.properties`` in an archive is one package (a shaded
or fat jar holds several); the licenses come from the ``<licenses>`` of the ``pom.xml`` next to it.
When no pom.properties describes the archive itself, its identity falls back to ``META-INF/MANIFEST.MF``
(``Implementation-Vendor-Id`` as groupId, ``Implementation-Version``/``Bundle-Version``) and the file
name (``artifactId-version.jar``); a package without a known groupId is named by its artifactId alone.

Archives inside archives (``WEB-INF/lib``, Spring Boot ``BOOT-INF/lib``, ear modules) are opened in
turn. A nested package's ``found_in`` is the chain of archive paths joined with ``:``, e.g.
``app/app.jar:BOOT-INF/lib/inner.jar``: each ``:`` marks one step into a nested archive.

Archives are hostile input: nesting depth, entries per archive, the size of each nested archive and
of each metadata file, and the total decompressed bytes are all bounded. Nothing is ever extracted
to a path taken from the archive. A damaged nested archive is a warning; a damaged top-level
archive is a ParseError.
"""

from __future__ import annotations

import io
import re
import struct
import tempfile
import xml.etree.ElementTree as ElementTree
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import IO

from moat.errors import ParseError
from moat.inventory.analyzer import AnalysisResult, Analyzer, FileInput, register
from moat.inventory.purl import make_purl
from moat.model import Package

ARCHIVE_SUFFIXES = (".jar", ".war", ".ear", ".par", ".sar", ".jpi", ".hpi")
MAX_DEPTH = 4
"""Archives nested inside the scanned one, at most this many levels deep."""
MAX_ENTRIES = 200_000
MAX_CENTRAL_DIRECTORY = 64 * 1024 * 1024
MAX_NESTED_ARCHIVES = 5_000
MAX_NESTED_SIZE = 512 * 1024 * 1024
MAX_TOTAL_DECOMPRESSED = 2 * 1024 * 1024 * 1024
MAX_PROPERTIES_SIZE = 64 * 1024
MAX_METADATA_SIZE = 2 * 1024 * 1024
MAX_WARNINGS = 50
SPOOL_IN_MEMORY = 16 * 1024 * 1024
_CHUNK = 1024 * 1024

_ARCHIVE_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    EOFError,
    OSError,
    RuntimeError,
    NotImplementedError,
    ValueError,
    struct.error,
)


class _Refused(Exception):
    """An archive or member broke a limit or could not be read; the message says which."""


@register
class JavaArchiveAnalyzer(Analyzer):
    name = "java-archive"
    version = 1
    suffixes = ARCHIVE_SUFFIXES

    def analyze(self, file: FileInput) -> AnalysisResult:
        scan = _Scan(budget=MAX_TOTAL_DECOMPRESSED)
        stream = file.open()
        try:
            check_central_directory(stream)
            with zipfile.ZipFile(stream) as archive:
                scan.archive(archive, file.path, file.path, 0)
        except _Refused as exc:
            raise ParseError(f"{file.path}: {exc}") from exc
        except _ARCHIVE_ERRORS as exc:
            raise ParseError(f"{file.path}: not a readable zip archive: {_describe(exc)}") from exc
        return AnalysisResult(packages=scan.packages, warnings=scan.warnings)


@dataclass(slots=True)
class _Pom:
    group_id: str
    artifact_id: str
    version: str
    licenses: list[str]


@dataclass(slots=True)
class _Scan:
    """State of one analysis: the packages found so far and the budgets left."""

    packages: list[Package] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    budget: int = 0
    """Decompressed bytes still allowed; set per analysis so the limit is read at call time."""
    nested: int = 0

    def archive(self, archive: zipfile.ZipFile, location: str, filename: str, depth: int) -> None:
        """Record the packages of one open archive, then descend into its nested archives."""
        poms: list[_Pom] = []
        manifest: dict[str, str] = {}
        children: list[zipfile.ZipInfo] = []
        for info in archive.infolist():
            if info.is_dir():
                continue
            name = info.filename
            try:
                if name.endswith("/pom.properties") and "META-INF/maven/" in name:
                    pom = self._pom(archive, info, location)
                    if pom is not None:
                        poms.append(pom)
                elif name.upper() == "META-INF/MANIFEST.MF":
                    manifest = parse_manifest(self.read(archive, info, MAX_METADATA_SIZE))
                elif name.lower().endswith(ARCHIVE_SUFFIXES):
                    children.append(info)
            except _Refused as exc:
                self.warn(f"{location}: {exc}")
            except _ARCHIVE_ERRORS as exc:
                self.warn(f"{location}: cannot read {name[:200]}: {_describe(exc)}")
        seen: set[tuple[str, str]] = set()
        for pom in poms:
            self._add(f"{pom.group_id}:{pom.artifact_id}", pom.version, pom.group_id, pom.artifact_id,
                      location, pom.licenses, "pom.properties", seen)
        self._add_own_identity(poms, manifest, filename, location, seen)
        for info in children:
            self._nested(archive, info, location, depth)

    def _add_own_identity(
        self, poms: list[_Pom], manifest: dict[str, str], filename: str, location: str,
        seen: set[tuple[str, str]],
    ) -> None:
        """The archive's own package from the manifest and file name, unless a pom.properties gave it."""
        artifact, file_version = parse_file_name(filename)
        if poms and (artifact is None or any(p.artifact_id == artifact for p in poms)):
            return
        if artifact is None:
            return
        version = (
            manifest.get("Implementation-Version")
            or file_version
            or manifest.get("Bundle-Version")
            or manifest.get("Specification-Version")
        )
        if not version or not _is_token(version):
            return
        group = manifest.get("Implementation-Vendor-Id", "")
        group = group if _is_token(group) else ""
        name = f"{group}:{artifact}" if group else artifact
        source = "manifest" if manifest.get("Implementation-Version") or group else "filename"
        self._add(name, version, group, artifact, location, bundle_licenses(manifest), source, seen)

    def _add(
        self, name: str, version: str, group: str, artifact: str, location: str, licenses: list[str],
        source: str, seen: set[tuple[str, str]],
    ) -> None:
        if (name, version) in seen:
            return
        seen.add((name, version))
        self.packages.append(
            Package(
                name=name,
                version=version,
                type="maven",
                purl=make_purl("maven", artifact, version, namespace=group or None),
                licenses=licenses,
                found_in=location,
                extra={"identified_by": source},
            )
        )

    def _pom(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, location: str) -> _Pom | None:
        properties = parse_properties(self.read(archive, info, MAX_PROPERTIES_SIZE))
        group = properties.get("groupId", "")
        artifact = properties.get("artifactId", "")
        version = properties.get("version", "")
        if not (_is_token(group) and _is_token(artifact) and _is_token(version)):
            self.warn(f"{location}: {info.filename} lacks groupId, artifactId or version")
            return None
        licenses: list[str] = []
        pom_xml = info.filename[: -len("pom.properties")] + "pom.xml"
        try:
            pom_info = archive.getinfo(pom_xml)
        except KeyError:
            pom_info = None
        if pom_info is not None:
            licenses = pom_licenses(self.read(archive, pom_info, MAX_METADATA_SIZE))
        return _Pom(group, artifact, version, licenses)

    def _nested(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, location: str, depth: int) -> None:
        child = f"{location}:{info.filename}"
        if depth + 1 > MAX_DEPTH:
            self.warn(f"{child}: not opened, archives nested deeper than {MAX_DEPTH} levels")
            return
        self.nested += 1
        if self.nested > MAX_NESTED_ARCHIVES:
            if self.nested == MAX_NESTED_ARCHIVES + 1:
                self.warn(f"{location}: more than {MAX_NESTED_ARCHIVES} nested archives, the rest skipped")
            return
        try:
            with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as spool:
                self.copy(archive, info, MAX_NESTED_SIZE, spool)
                check_central_directory(spool)
                with zipfile.ZipFile(spool) as inner:
                    self.archive(inner, child, info.filename.rsplit("/", 1)[-1], depth + 1)
        except _Refused as exc:
            self.warn(f"{child}: {exc}")
        except _ARCHIVE_ERRORS as exc:
            self.warn(f"{child}: not a readable zip archive: {_describe(exc)}")

    def read(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
        """A small member's bytes, refusing more than ``limit`` (whatever its header claims)."""
        buffer = io.BytesIO()
        self.copy(archive, info, limit, buffer)
        return buffer.getvalue()

    def warn(self, message: str) -> None:
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(message)
        elif len(self.warnings) == MAX_WARNINGS:
            self.warnings.append("further warnings about this archive suppressed")

    def copy(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, out: IO[bytes]) -> None:
        """Decompress a member into ``out`` in chunks, charging the total budget as it goes."""
        if info.file_size > limit:
            raise _Refused(f"member {info.filename} is larger than {limit} bytes")
        if info.file_size > self.budget:
            raise _Refused(f"more than {MAX_TOTAL_DECOMPRESSED} decompressed bytes in total")
        written = 0
        with archive.open(info) as member:
            while chunk := member.read(_CHUNK):
                written += len(chunk)
                self.budget -= len(chunk)
                if written > limit:
                    raise _Refused(f"member {info.filename} is larger than {limit} bytes")
                if self.budget < 0:
                    raise _Refused(f"more than {MAX_TOTAL_DECOMPRESSED} decompressed bytes in total")
                out.write(chunk)
        out.seek(0)


def check_central_directory(stream: IO[bytes]) -> None:
    """Refuse archives whose central directory is too large before zipfile loads it all into memory.

    Reads the end-of-central-directory record (and its ZIP64 form) the way the zip specification
    (APPNOTE 4.3.14 to 4.3.16) lays them out. A missing record is left to zipfile to report.
    """
    end = stream.seek(0, 2)
    tail_size = min(end, 22 + 65535)
    stream.seek(end - tail_size)
    tail = stream.read(tail_size)
    position = tail.rfind(b"PK\x05\x06")
    if position < 0 or len(tail) - position < 22:
        return
    (_, _, _, _, entries, cd_size, _, _) = struct.unpack("<4s4HLLH", tail[position : position + 22])
    record_offset = end - tail_size + position
    if (entries == 0xFFFF or cd_size == 0xFFFFFFFF) and record_offset >= 20:
        stream.seek(record_offset - 20)
        locator = stream.read(20)
        if locator[:4] == b"PK\x06\x07":
            (zip64_offset,) = struct.unpack("<Q", locator[8:16])
            if zip64_offset < end:
                stream.seek(zip64_offset)
                record = stream.read(56)
                if len(record) == 56 and record[:4] == b"PK\x06\x06":
                    entries, cd_size = struct.unpack("<QQ", record[32:48])
    stream.seek(0)
    if entries > MAX_ENTRIES:
        raise _Refused(f"{entries} entries, more than the {MAX_ENTRIES} allowed")
    if cd_size > MAX_CENTRAL_DIRECTORY:
        raise _Refused(f"central directory of {cd_size} bytes, more than {MAX_CENTRAL_DIRECTORY}")


def parse_properties(data: bytes) -> dict[str, str]:
    """A Java ``.properties`` file: ``key=value``, ``key: value`` or ``key value``, with escapes.

    Maven writes pom.properties in ISO-8859-1 with ``\\uXXXX`` escapes; UTF-8 is tried first because
    many tools write that instead.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    result: dict[str, str] = {}
    logical = ""
    for raw in text.splitlines():
        line = raw.lstrip() if not logical else raw.lstrip(" \t\f")
        if not logical and (not line or line[0] in "#!"):
            continue
        trailing = len(line) - len(line.rstrip("\\"))
        if trailing % 2 == 1:
            logical += line[:-1]
            continue
        logical += line
        key, value = _split_property(logical)
        result[key] = value
        logical = ""
    if logical:
        key, value = _split_property(logical)
        result[key] = value
    return result


def _split_property(line: str) -> tuple[str, str]:
    index = 0
    while index < len(line):
        char = line[index]
        if char == "\\":
            index += 2
            continue
        if char in "=: \t\f":
            break
        index += 1
    key = line[:index]
    rest = line[index:].lstrip(" \t\f")
    if rest[:1] in ("=", ":") and (index >= len(line) or line[index] in " \t\f=:"):
        rest = rest[1:].lstrip(" \t\f")
    return _unescape(key), _unescape(rest).strip()


_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text
    out: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char != "\\" or index + 1 >= len(text):
            out.append(char)
            index += 1
            continue
        nxt = text[index + 1]
        if nxt == "u" and re.fullmatch(r"[0-9A-Fa-f]{4}", text[index + 2 : index + 6]):
            out.append(chr(int(text[index + 2 : index + 6], 16)))
            index += 6
            continue
        out.append(_ESCAPES.get(nxt, nxt))
        index += 2
    return "".join(out)


def parse_manifest(data: bytes) -> dict[str, str]:
    """The main section of a JAR manifest (``Name: value``; a line starting with a space continues)."""
    text = data.decode("utf-8", errors="replace")
    result: dict[str, str] = {}
    last: str | None = None
    for line in re.split(r"\r\n|\r|\n", text):
        if not line:
            break  # the main section ends at the first blank line
        if line.startswith(" ") and last is not None:
            result[last] += line[1:]
            continue
        key, sep, value = line.partition(":")
        if not sep:
            last = None
            continue
        last = key.strip()
        result[last] = value.strip()
    return {key: value.strip() for key, value in result.items()}


def pom_licenses(data: bytes) -> list[str]:
    """License names declared by the project's own ``<licenses>`` in a pom.xml.

    DTDs and entities are refused outright (no legitimate pom needs them), so no entity expansion
    can happen; a pom that does not parse simply yields no licenses.
    """
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        return []
    try:
        root = ElementTree.fromstring(data)
    except (ElementTree.ParseError, ValueError):
        return []
    names: dict[str, None] = {}  # ordered set
    for child in root:
        if _local(child.tag) != "licenses":
            continue
        for item in child:
            if _local(item.tag) != "license":
                continue
            for part in item:
                if _local(part.tag) == "name" and part.text and part.text.strip():
                    names[" ".join(part.text.split())] = None
    return list(names)


def bundle_licenses(manifest: dict[str, str]) -> list[str]:
    """OSGi ``Bundle-License``: comma-separated licenses, each optionally followed by ``;attributes``."""
    value = manifest.get("Bundle-License", "")
    if not value:
        return []
    if value.startswith(("http://", "https://")) and "," not in value:
        return [value.split(";", 1)[0].strip()]
    return [item.split(";", 1)[0].strip() for item in value.split(",") if item.split(";", 1)[0].strip()]


_NAME_PART = re.compile(r"^[A-Za-z]")
_VERSION_START = re.compile(r"^\d")


def parse_file_name(filename: str) -> tuple[str | None, str | None]:
    """``artifactId-version.jar`` → (artifactId, version).

    The artifactId is the leading dash-separated parts that start with a letter; the version is the
    rest if it starts with a digit. ``commons-lang3.jar`` gives no version.
    """
    base = filename.rsplit("/", 1)[-1]
    stem = base.rsplit(".", 1)[0] if "." in base else base
    parts = stem.split("-")
    count = 0
    while count < len(parts) and _NAME_PART.match(parts[count]):
        count += 1
    if count == 0:
        return None, None
    artifact = "-".join(parts[:count])
    rest = "-".join(parts[count:])
    version = rest if rest and _VERSION_START.match(rest) else None
    return artifact, version


def _is_token(value: str) -> bool:
    return 0 < len(value) <= 256 and not any(c.isspace() or c in "/\\" for c in value)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _describe(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]
