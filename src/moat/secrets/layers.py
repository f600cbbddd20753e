"""Secrets and setuid/setgid files in every layer of an image.

Why every layer, not just the final filesystem: ``COPY id_rsa`` followed by ``RUN rm id_rsa`` leaves
the key in the image: anyone who pulls it can read the first layer's tarball. That is the point of
CIS Docker 4.10, so a secret in a file that a later layer deletes (whiteout) or overwrites is still
reported, with the layer that removed it (:attr:`LayerSecretFinding.removed_in`). Setuid and setgid
files (CIS Docker 4.8) are the opposite: what matters is what a container can execute, so only files
present in the final filesystem are listed.

Why a separate walk rather than a hook in the inventory walk (:mod:`moat.inventory.layer_analysis`):
the inventory reads a few hundred files an analyzer asked for; the secret scan reads every text
file. Keeping them apart leaves the inventory engine, its pre-filter and its cache format untouched,
and a scan without ``--scanners secret`` pays nothing. The price is decompressing each layer a
second time on a cold scan; ``bench/secret_scan.py`` measures both, and the per-layer cache below
(keyed by diff id and :data:`moat.secrets.rules.RULES_VERSION`, like the inventory's) makes a warm
scan read no layer at all.

A layer's cached result keeps the paths it adds (files and directories), its whiteouts and opaque
directories, so the overlay questions (is this file still there at the top?) are answered from the
cache without re-reading a layer.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moat.image.layers import AUFS_META_PREFIX, OPAQUE_MARKER, WHITEOUT_PREFIX, Entry
from moat.image.source import LayerReader, OpenedImage, SourceOptions
from moat.model import SecretFinding
from moat.secrets.detect import BINARY_SNIFF_BYTES, find_secrets_in_bytes, is_binary, max_scan_bytes
from moat.secrets.rules import RULES_VERSION

CACHE_FORMAT = 1
SETUID = 0o4000
SETGID = 0o2000

SKIP_PREFIXES = (
    "usr/share/doc/",
    "usr/share/man/",
    "usr/share/info/",
    "usr/share/locale/",
    "usr/share/i18n/",
    "usr/share/zoneinfo/",
    "usr/share/common-licenses/",
    "usr/share/mime/",
    "usr/share/icons/",
    "usr/share/lintian/",
    "proc/",
    "sys/",
    "dev/",
)
"""Documentation, translations and time zones: megabytes of text with example tokens and no credentials."""
SKIP_SUFFIXES = (
    ".pyc", ".pyo", ".so", ".a", ".o", ".mo", ".png", ".jpg", ".jpeg", ".gif", ".ico", ".svg", ".gz", ".xz",
    ".bz2", ".zst", ".zip", ".jar", ".whl", ".woff", ".woff2", ".ttf", ".otf", ".deb", ".rpm",
)
"""Compiled code, media and archives: their bytes are not text a regex can read."""
SKIP_PATTERN = re.compile(
    r"^usr/(?:local/)?lib/python3[^/]*/test/"
    r"|^usr/share/perl/\d|^usr/lib/[^/]+/perl(?:-base/|/\d)"
    r"|^var/lib/dpkg/info/[^/]+\.(?:md5sums|list|triggers|shlibs|symbols)$"
)
"""CPython's own test suite (deliberately fake keys and passwords); the core Perl library as Debian ships
it (about 30 MB of modules and C headers on a minimal image, 80 % of its text, and no credentials);
dpkg's file lists and checksums. Applications' own Perl and Python code, under ``/usr/local``,
``/opt``, ``/app`` or ``/usr/share/perl5``, is still read."""

LayerCallback = Callable[[int, int, str, bool], None]
"""Called as (index, total, layer name, cached) when a layer starts, like the inventory's."""


@dataclass(slots=True)
class LayerSecretFinding(SecretFinding):
    """A secret in a layer's file, with what later layers did to that file."""

    removed_in: str | None = None
    """Diff id of the later layer that deleted (whiteout) or overwrote the file; None when the file
    is still in the final filesystem. The secret is leaked either way: the layer still holds it."""
    removal: str = ""
    """``deleted`` or ``replaced`` when ``removed_in`` is set."""

    def to_dict(self) -> dict[str, Any]:
        data = SecretFinding.to_dict(self)
        data["location"]["removed_in"] = self.removed_in
        if self.removal:
            data["location"]["removal"] = self.removal
            data["note"] = (
                f"the file was {self.removal} by layer {self.removed_in}, but this layer still holds it: "
                "anyone who pulls the image can read it"
            )
        return data


@dataclass(slots=True)
class LayerFacts:
    """What the layer walk found, for the image scanner and the image-config rules."""

    secrets: list[SecretFinding] = field(default_factory=list)
    setuid_files: list[dict[str, Any]] = field(default_factory=list)
    """``{"path", "mode", "mode_octal", "layer", "setuid", "setgid"}`` for every regular file with
    mode bit 04000 or 02000 in the final filesystem; ``mode`` is the integer permission bits."""
    warnings: list[str] = field(default_factory=list)
    layers: int = 0
    cached_layers: int = 0
    scanned_files: int = 0
    """Files whose content was read for secrets on this run (cached layers count 0)."""


@dataclass(slots=True)
class LayerScan:
    """One layer's facts, cacheable by diff id."""

    diff_id: str | None = None
    secrets: list[dict[str, Any]] = field(default_factory=list)
    setuid: list[dict[str, Any]] = field(default_factory=list)
    dirs: list[str] = field(default_factory=list)
    others: list[str] = field(default_factory=list)
    """Every non-directory path the layer adds (files, links, devices): each replaces what was below."""
    whiteouts: list[str] = field(default_factory=list)
    opaque_dirs: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    secrets_scanned: bool = False
    scanned_files: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "diff_id": self.diff_id,
            "secrets": self.secrets,
            "setuid": self.setuid,
            "dirs": self.dirs,
            "others": self.others,
            "whiteouts": self.whiteouts,
            "opaque_dirs": self.opaque_dirs,
            "warnings": self.warnings,
            "secrets_scanned": self.secrets_scanned,
            "scanned_files": self.scanned_files,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LayerScan:
        return cls(
            diff_id=data["diff_id"],
            secrets=[dict(item) for item in data["secrets"]],
            setuid=[dict(item) for item in data["setuid"]],
            dirs=[str(x) for x in data["dirs"]],
            others=[str(x) for x in data["others"]],
            whiteouts=[str(x) for x in data["whiteouts"]],
            opaque_dirs=[str(x) for x in data["opaque_dirs"]],
            warnings=[str(x) for x in data["warnings"]],
            secrets_scanned=bool(data["secrets_scanned"]),
            scanned_files=int(data.get("scanned_files", 0)),
        )


class SecretLayerCache:
    """One JSON file per (diff id, rules version, size cap) under ``<cache>/secret-layers``."""

    def __init__(self, root: Path) -> None:
        self.root = root / "secret-layers"

    def _path(self, diff_id: str) -> Path:
        material = f"{CACHE_FORMAT}|{diff_id}|{RULES_VERSION}|{max_scan_bytes()}"
        key = hashlib.sha256(material.encode()).hexdigest()
        return self.root / key[:2] / f"{key}.json"

    def get(self, diff_id: str) -> LayerScan | None:
        try:
            data = json.loads(self._path(diff_id).read_text(encoding="utf-8"))
            if data.get("diff_id") != diff_id:
                return None
            return LayerScan.from_dict(data)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None  # a damaged entry is a miss, never a result

    def put(self, diff_id: str, scan: LayerScan) -> None:
        path = self._path(diff_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(scan.to_dict(), handle, separators=(",", ":"))
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


# --------------------------------------------------------------------------------------------- one layer


def wants_content(path: str) -> bool:
    """Whether a regular file at ``path`` is read for secrets (see the skip lists above)."""
    return not (path.startswith(SKIP_PREFIXES) or path.endswith(SKIP_SUFFIXES) or SKIP_PATTERN.match(path))


def scan_layer(reader: LayerReader, *, secrets: bool) -> LayerScan:
    """Walk one layer once: setuid/setgid files and the overlay facts always, file contents when
    ``secrets`` is set."""
    scan = LayerScan(secrets_scanned=secrets)
    limit = max_scan_bytes()
    too_big = 0
    for entry in reader.entries():
        if _overlay_entry(entry, scan):
            continue
        if entry.kind in ("file", "hardlink") and entry.mode & (SETUID | SETGID):
            scan.setuid.append({"path": entry.path, "mode": entry.mode & 0o7777})
        if not secrets or entry.kind != "file" or not wants_content(entry.path):
            continue  # a hard link's content is scanned under its target's name, in this same layer
        if entry.size > limit:
            too_big += 1
            continue
        data = _read_text_file(entry)
        if data is None:
            continue
        scan.scanned_files += 1
        for match in find_secrets_in_bytes(data, entry.path, limit=limit):
            finding = match.to_finding()
            scan.secrets.append(
                {
                    "rule_id": finding.rule_id,
                    "category": finding.category,
                    "title": finding.title,
                    "severity": finding.severity,
                    "path": entry.path,
                    "line": finding.line,
                    "match": finding.match,
                }
            )
    scan.warnings.extend(reader.warnings)
    if too_big:
        scan.warnings.append(
            f"layer {reader.name}: {too_big} file(s) larger than {limit} bytes not scanned for secrets "
            "(MOAT_SECRET_MAX_FILE_BYTES raises the limit)"
        )
    scan.diff_id = reader.diff_id
    return scan


def _overlay_entry(entry: Entry, scan: LayerScan) -> bool:
    """Record what the entry does to the layers below; True when it is a whiteout marker."""
    base = posixpath.basename(entry.path)
    if base.startswith(WHITEOUT_PREFIX):
        parent = posixpath.dirname(entry.path)
        if base == OPAQUE_MARKER:
            scan.opaque_dirs.append(parent)
        elif not base.startswith(AUFS_META_PREFIX):
            scan.whiteouts.append(posixpath.join(parent, base[len(WHITEOUT_PREFIX) :]))
        return True
    if entry.kind == "dir":
        scan.dirs.append(entry.path)
    else:
        scan.others.append(entry.path)
    return False


def _read_text_file(entry: Entry) -> bytes | None:
    """The file's bytes, or None for a binary file (read no further than its first 8 KiB)."""
    with entry.open() as handle:
        head = handle.read(BINARY_SNIFF_BYTES)
        if is_binary(head):
            return None
        rest = handle.read()
    return head + rest if rest else head


# --------------------------------------------------------------------------------------------- the image


@dataclass(slots=True)
class _Overlay:
    """The layers' overlay facts as sets, to answer "what later removed this path?"."""

    diff_ids: list[str | None]
    dirs: list[set[str]]
    others: list[set[str]]
    whiteouts: list[set[str]]
    opaque: list[set[str]]

    @classmethod
    def of(cls, scans: list[LayerScan], diff_ids: list[str | None]) -> _Overlay:
        return cls(
            diff_ids,
            [set(s.dirs) for s in scans],
            [set(s.others) for s in scans],
            [{posixpath.normpath(p) for p in s.whiteouts} for s in scans],
            [set(s.opaque_dirs) for s in scans],
        )

    def removed_after(self, path: str, layer: int) -> tuple[int, str] | None:
        """The first layer above ``layer`` that deletes or replaces ``path``, and how."""
        ancestors = _ancestors(path)
        for index in range(layer + 1, len(self.diff_ids)):
            if path in self.whiteouts[index] or any(a in self.whiteouts[index] for a in ancestors):
                return index, "deleted"
            if any(a in self.opaque[index] for a in ancestors):
                return index, "deleted"
            if any(a in self.others[index] for a in ancestors):
                return index, "deleted"  # a parent directory became a file or a symlink
            if path in self.others[index] or path in self.dirs[index]:
                return index, "replaced"
        return None


def _ancestors(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:n]) for n in range(1, len(parts))] + [""]


def scan_layers(
    image: OpenedImage,
    cache_root: Path | None,
    *,
    secrets: bool = True,
    setuid: bool = True,
    on_layer: LayerCallback | None = None,
) -> LayerFacts:
    """Secrets in every layer and setuid/setgid files of the final filesystem of an opened image.

    ``cache_root`` None disables the per-layer cache. A layer is cached only once its walk verified
    its digests (the reader raises otherwise), so a layer whose bytes lie is never remembered.
    """
    cache = SecretLayerCache(cache_root) if cache_root is not None else None
    facts = LayerFacts(layers=len(image.layers))
    scans: list[LayerScan] = []
    diff_ids: list[str | None] = []
    total = len(image.layers)
    for position, layer in enumerate(image.layers):
        cached = cache.get(layer.diff_id) if cache and layer.diff_id else None
        if cached is not None and secrets and not cached.secrets_scanned:
            cached = None  # a setuid-only entry cannot answer a secret scan
        name = layer.diff_id or layer.digest or f"layer {position + 1}"
        if on_layer:
            on_layer(position, total, name, cached is not None)
        if cached is not None:
            scan = cached
            facts.cached_layers += 1
        else:
            scan = scan_layer(layer.reader(), secrets=secrets)
            facts.scanned_files += scan.scanned_files
            if cache and scan.diff_id:
                cache.put(scan.diff_id, scan)
        scans.append(scan)
        diff_ids.append(scan.diff_id or layer.diff_id)
        facts.warnings.extend(scan.warnings)
    overlay = _Overlay.of(scans, diff_ids)
    if secrets:
        facts.secrets = _secret_findings(scans, overlay)
    if setuid:
        facts.setuid_files = _final_setuid_files(scans, overlay)
    return facts


def _secret_findings(scans: list[LayerScan], overlay: _Overlay) -> list[SecretFinding]:
    findings: list[SecretFinding] = []
    for index, scan in enumerate(scans):
        for item in scan.secrets:
            removed = overlay.removed_after(item["path"], index)
            findings.append(
                LayerSecretFinding(
                    rule_id=item["rule_id"],
                    category=item["category"],
                    title=item["title"],
                    severity=item["severity"],
                    file=item["path"],
                    line=int(item["line"]),
                    match=item["match"],
                    layer=overlay.diff_ids[index],
                    source="layer",
                    removed_in=overlay.diff_ids[removed[0]] if removed else None,
                    removal=removed[1] if removed else "",
                )
            )
    return findings


def _final_setuid_files(scans: list[LayerScan], overlay: _Overlay) -> list[dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for index, scan in enumerate(scans):
        for item in scan.setuid:
            if overlay.removed_after(item["path"], index) is not None:
                continue
            mode = int(item["mode"])
            found[item["path"]] = {
                "path": item["path"],
                "mode": mode,
                "mode_octal": f"{mode:04o}",
                "layer": overlay.diff_ids[index],
                "setuid": bool(mode & SETUID),
                "setgid": bool(mode & SETGID),
            }
    return [found[path] for path in sorted(found)]


def scan_image_layers(
    target: str,
    source_options: SourceOptions | None = None,
    settings: Any = None,
    *,
    secrets: bool = True,
    setuid: bool = True,
    on_layer: LayerCallback | None = None,
) -> LayerFacts:
    """Open ``target`` (any image target string) and run :func:`scan_layers` on it.

    ``settings`` is a :class:`moat.inventory.target.ScanSettings` (cache dir, ``use_cache``).
    An ``sbom:`` target has no layers: the result is empty with a warning saying so.
    """
    from moat.inventory.target import ScanSettings, opened_target
    from moat.paths import cache_dir

    settings = settings or ScanSettings()
    with opened_target(target, source_options, settings) as opened:
        if opened is None:
            return LayerFacts(warnings=[f"{target}: an SBOM has no layers to scan for secrets or setuid files"])
        root = cache_dir(settings.cache_dir)
        return scan_layers(
            opened, root if settings.use_cache else None, secrets=secrets, setuid=setuid, on_layer=on_layer
        )
