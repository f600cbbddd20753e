"""Alpine's secdb (https://secdb.alpinelinux.org/, one document per branch and repository) as advisory records.

A secdb document lists, per *origin* (source) package, the apk version that fixed each CVE on
that branch: ``secfixes: {"1.1.1g-r0": ["CVE-2020-1967"], "0": ["CVE-2019-…"]}``. The version
``0`` means the branch was never affected. Items are written by hand in APKBUILDs, so besides
``CVE-…`` they carry other ids (``XSA-…``, ``TALOS-…``, ``ZBX-…``, ``wnpa-sec-…``), several ids in
one item, notes in parentheses and the odd typo (``CVE_2018-…``); every CVE found in an item gets
its record and the other ids become aliases.

Advisory ids are ``ALPINE-CVE-…`` (OSV's naming for the same data) with the CVE as alias, not the
bare CVE: the store replaces an advisory whole by id, so a bare id would let another distribution's
record of the same CVE delete Alpine's rows. One CVE on several branches comes from several
documents; :func:`merge_records` joins them before they are written.

The YAML form (the legacy git repository, v3.3 to v3.11) is read with a safe loader after an event
scan that bounds aliases and nesting, so a YAML bomb is refused before anything is built.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

import yaml

from moat.errors import ParseError
from moat.vulndb.debian import FeedStats
from moat.vulndb.store import AdvisoryRecord, AffectedRecord

SOURCE = "alpine-secdb"
ID_PREFIX = "ALPINE-"
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024
MAX_YAML_ALIASES = 10
MAX_YAML_DEPTH = 32

_BRANCH = re.compile(r"v[0-9]+\.[0-9]+|edge")
_PACKAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
_APK_VERSION = re.compile(r"[0-9][A-Za-z0-9._+~-]*")
# Hand-written items: "CVE-2019-1 XSA-2", "CVE_2018-1" (typo), "CVE-2019-5 (BGP)", "CVE-2018-1.patch".
_CVE = re.compile(r"\bCVE[-_ ]([0-9]{4})-([0-9]{4,})\b")
_OTHER_ID = re.compile(r"\b(?:XSA-[0-9]+|TALOS-[0-9]{4}-[0-9]+|ZBX-[0-9]+|wnpa-sec-[0-9]{4}-[0-9]+)\b")

try:  # the C loader when PyYAML was built with libyaml: much faster, same safe constructor
    _Loader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - depends on the PyYAML build
    _Loader = yaml.SafeLoader


def read_secdb(
    data: bytes, name: str, *, stats: FeedStats | None = None
) -> Iterator[tuple[AdvisoryRecord, list[AffectedRecord]]]:
    """One advisory per CVE (or other id) of the document, with one row per (package, fixed version).

    A malformed document is a :class:`ParseError` naming ``name``; a malformed package entry or
    item is skipped and counted in ``stats``.
    """
    stats = stats if stats is not None else FeedStats()
    document = _load(data, name)
    if not isinstance(document, dict):
        raise ParseError(f"{name}: secdb top level is {type(document).__name__}, expected a mapping")
    branch = document.get("distroversion")
    if not isinstance(branch, str) or not _BRANCH.fullmatch(branch):
        found = "missing" if branch is None else repr(str(branch)[:40])
        raise ParseError(f"{name}: secdb 'distroversion' is {found}, expected e.g. 'v3.19'")
    packages = document.get("packages")
    if packages is None:
        packages = []
    if not isinstance(packages, list):
        raise ParseError(f"{name}: secdb 'packages' is {type(packages).__name__}, expected a list")
    ecosystem = f"Alpine:{branch}"

    advisories: dict[str, tuple[AdvisoryRecord, list[AffectedRecord]]] = {}
    for index, entry in enumerate(packages):
        where = f"{name}: packages[{index}]"
        pkg = entry.get("pkg") if isinstance(entry, dict) else None
        if not isinstance(pkg, dict):
            stats.skip(f"{where}: expected {{pkg: {{name, secfixes}}}}")
            continue
        package = pkg.get("name")
        if not isinstance(package, str) or not _PACKAGE.fullmatch(package):
            stats.skip(f"{where}: bad package name {str(package)[:60]!r}")
            continue
        secfixes = pkg.get("secfixes")
        if secfixes is None:
            continue
        if not isinstance(secfixes, dict):
            stats.skip(f"{where} {package}: 'secfixes' is not a mapping")
            continue
        for version_key, items in secfixes.items():
            _add_fix(advisories, ecosystem, package, version_key, items, f"{where} {package}", stats)
    yield from advisories.values()


def merge_records(
    records: Iterable[tuple[AdvisoryRecord, list[AffectedRecord]]],
) -> Iterator[tuple[AdvisoryRecord, list[AffectedRecord]]]:
    """Join records that share an advisory id (one CVE seen in several secdb documents).

    The first record of an id keeps its fields; later ones add their aliases, references and
    affected rows (exact duplicate rows are dropped). Call it over every document of one source
    before writing, because :meth:`StoreWriter.add_advisory` replaces an advisory with its rows.
    """
    merged: dict[str, tuple[AdvisoryRecord, list[AffectedRecord]]] = {}
    seen_rows: dict[str, set[str]] = {}
    for advisory, rows in records:
        entry = merged.get(advisory.id)
        if entry is None:
            entry = (advisory, [])
            merged[advisory.id] = entry
            seen_rows[advisory.id] = set()
        else:
            _extend_unique(entry[0].aliases, advisory.aliases)
            _extend_unique(entry[0].references, advisory.references)
        seen = seen_rows[advisory.id]
        for row in rows:
            key = _row_key(row)
            if key not in seen:
                seen.add(key)
                entry[1].append(row)
    yield from merged.values()


def _add_fix(
    advisories: dict[str, tuple[AdvisoryRecord, list[AffectedRecord]]],
    ecosystem: str,
    package: str,
    version_key: object,
    items: object,
    where: str,
    stats: FeedStats,
) -> None:
    # YAML turns an unquoted 0 into an int; a float key ("1.10" → 1.1) has lost its text and is refused.
    version = str(version_key) if isinstance(version_key, str | int) and not isinstance(version_key, bool) else None
    if version is None or (version != "0" and not _APK_VERSION.fullmatch(version)) or len(version) > 128:
        stats.skip(f"{where}: bad fixed version {str(version_key)[:60]!r}")
        return
    if not isinstance(items, list) or not items:
        stats.skip(f"{where} {version}: expected a list of ids")
        return
    for item in items:
        if not isinstance(item, str):
            stats.skip(f"{where} {version}: item is {type(item).__name__}, expected a string")
            continue
        cves = [f"CVE-{year}-{number}" for year, number in _CVE.findall(item)]
        others = _OTHER_ID.findall(item)
        primaries = cves or others[:1]
        if not primaries:
            stats.skip(f"{where} {version}: no advisory id in {item[:60]!r}")
            continue
        for primary in primaries:
            aliases = [primary, *(other for other in others if other != primary)]
            advisory_id = ID_PREFIX + primary
            entry = advisories.get(advisory_id)
            if entry is None:
                entry = (_advisory(advisory_id, primary), [])
                advisories[advisory_id] = entry
            _extend_unique(entry[0].aliases, aliases)
            row = _row(advisory_id, ecosystem, package, version)
            if all(_row_key(row) != _row_key(existing) for existing in entry[1]):
                entry[1].append(row)


def _advisory(advisory_id: str, primary: str) -> AdvisoryRecord:
    references = [f"https://security.alpinelinux.org/vuln/{primary}"] if primary.startswith("CVE-") else []
    return AdvisoryRecord(id=advisory_id, source=SOURCE, references=references)


def _row(advisory_id: str, ecosystem: str, package: str, version: str) -> AffectedRecord:
    if version == "0":
        return AffectedRecord(advisory_id=advisory_id, ecosystem=ecosystem, package=package, status="not_affected")
    return AffectedRecord(
        advisory_id=advisory_id,
        ecosystem=ecosystem,
        package=package,
        ranges=[{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": version}]}],
        status="fixed",
    )


def _row_key(row: AffectedRecord) -> str:
    return json.dumps([row.ecosystem, row.package, row.status, row.ranges, row.versions], sort_keys=True)


def _extend_unique(target: list[str], values: Iterable[str]) -> None:
    for value in values:
        if value not in target:
            target.append(value)


def _load(data: bytes, name: str) -> Any:
    if len(data) > MAX_DOCUMENT_BYTES:
        raise ParseError(f"{name}: {len(data)} bytes is over the {MAX_DOCUMENT_BYTES} byte secdb limit")
    if data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        try:
            return json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise ParseError(f"{name}: not valid secdb JSON ({_one_line(exc)})") from exc
    try:
        _check_yaml_events(data, name)
        return yaml.load(data, Loader=_Loader)  # a safe loader: CSafeLoader or SafeLoader
    except ParseError:
        raise
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        raise ParseError(f"{name}: not valid secdb YAML ({_one_line(exc)})") from exc


def _check_yaml_events(data: bytes, name: str) -> None:
    """Refuse more than a few aliases, deep nesting and several documents before anything is built.

    Aliases are how a small YAML file expands into a huge structure ("billion laughs"); secdb
    never uses them, so a handful is generous.
    """
    aliases = depth = documents = 0
    for event in yaml.parse(data, Loader=_Loader):
        if isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > MAX_YAML_ALIASES:
                raise ParseError(f"{name}: secdb YAML uses more than {MAX_YAML_ALIASES} aliases (refused)")
        elif isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                raise ParseError(f"{name}: secdb YAML nests deeper than {MAX_YAML_DEPTH} levels (refused)")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
        elif isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            if documents > 1:
                raise ParseError(f"{name}: secdb YAML holds more than one document")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__
