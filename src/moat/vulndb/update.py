"""``moat db update``: read vulnerability feeds from files, directories and URLs into a new database.

The procedure, in order:

1. Expand every ``--from`` into *locations*: a URL, a file, or the files of a directory (archives,
   CSVs and ``list`` files each on their own; the loose JSON/YAML files of a directory together).
2. Decide which locations are unchanged since the last update: a URL that answers 304 to its
   stored ETag / Last-Modified, a file whose sha256 is the stored one. The OSV, KEV and EPSS feeds
   of an unchanged location are carried over row for row (:meth:`StoreWriter.copy_from`) without
   reading them again. Distribution feeds (Debian, Alpine) are always read again, from the file or
   the cached download, because one CVE's Alpine record is joined from several documents.
3. Read the rest, dispatching on content, not on names alone: OSV zips (osv.dev's ``all.zip``),
   OSV JSON/YAML records, CISA KEV JSON, FIRST EPSS CSV (plain, gzip, or per-year CSVs in a tar),
   Debian tracker JSON, Debian ``DSA``/``DLA`` lists and Alpine secdb documents, also inside
   ``.tar``/``.tar.gz``/``.tar.zst`` archives.
4. Commit: the new file replaces the old one only when everything above succeeded, so a failed
   download or an unusable source leaves the previous database intact and usable.

A broken record costs that record (counted per source and shown as one warning line); a source
that yields nothing usable fails the update with one line.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import sqlite3
import tarfile
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, unquote, urlsplit

from moat import __version__
from moat.errors import MoatError
from moat.vulndb import enrich
from moat.vulndb.osv import RecordError, parse_record
from moat.vulndb.store import SCHEMA_VERSION, AdvisoryRecord, AffectedRecord, SourceRecord, StoreWriter

OSV_EXPORT = "https://osv-vulnerabilities.storage.googleapis.com"
DEFAULT_ECOSYSTEMS = (
    "PyPI", "npm", "Go", "crates.io", "Maven", "NuGet", "RubyGems", "Packagist",
    "Debian", "Ubuntu", "Alpine", "AlmaLinux", "Rocky Linux", "Red Hat", "Wolfi", "Chainguard",
)  # fmt: skip
KEV_URL = "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json"
EPSS_URL = "https://epss.cyentia.com/epss_scores-current.csv.gz"

MAX_DOWNLOAD = 4 << 30
"""osv.dev's largest export (npm) is about 1 GB; four times that is not a feed."""
MAX_RECORD = 16 << 20
"""One OSV record; the largest real ones (kernel CVEs) are a few hundred KB."""
MAX_FEED_FILE = 512 << 20
"""One whole feed document (Debian tracker JSON ~ 100 MB, an EPSS CSV ~ 15 MB)."""
MAX_MEMBERS = 2_000_000
CARRIED_KINDS = ("osv", "kev", "epss")

_ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.zst", ".tzst", ".gz", ".zst", ".csv")


def default_locations() -> list[str]:
    """osv.dev's per-ecosystem exports plus KEV and EPSS: what ``moat db update`` reads by default."""
    return [f"{OSV_EXPORT}/{quote(eco)}/all.zip" for eco in DEFAULT_ECOSYSTEMS] + [KEV_URL, EPSS_URL]


# --- results ------------------------------------------------------------------------------------


@dataclass(slots=True)
class FeedResult:
    """One row of the sources table, with what the update saw while reading it."""

    name: str
    kind: str
    location: str
    etag: str | None = None
    last_modified: str | None = None
    records: int = 0
    skipped: int = 0
    withdrawn: int = 0
    carried: bool = False
    reasons: Counter[str] = field(default_factory=Counter)

    def skip(self, reason: str, count: int = 1) -> None:
        self.skipped += count
        self.reasons[reason] += count

    def summary(self) -> str:
        what = "carried over (unchanged)" if self.carried else f"{self.records} records"
        if self.withdrawn:
            what += f" ({self.withdrawn} withdrawn)"
        return f"{self.name}: {what} from {self.location}"

    def warning(self) -> str | None:
        if not self.skipped:
            return None
        top = ", ".join(f"{n} {reason}" for reason, n in self.reasons.most_common(3))
        more = "" if len(self.reasons) <= 3 else ", …"
        return f"{self.name}: skipped {self.skipped} records ({top}{more})"


@dataclass(slots=True)
class UpdateResult:
    db_path: Path
    feeds: list[FeedResult]
    downloaded: int = 0
    """Bytes downloaded over HTTP(S) (0 when every URL answered 304)."""
    ignored: list[str] = field(default_factory=list)
    """Files of a ``--from`` directory that hold no feed Moat reads (one message each)."""


# --- locations ----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Location:
    label: str
    """What the sources table records: the URL or the absolute path."""
    path: Path | None = None
    url: str | None = None
    loose: list[Path] = field(default_factory=list)
    """For a directory: its JSON/YAML files, read together as one location."""
    in_directory: bool = False
    """Found by walking a ``--from`` directory: data of no known kind is ignored with a warning."""
    etag: str | None = None
    last_modified: str | None = None


def _is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


def expand(locations: Iterable[str]) -> list[_Location]:
    """Every ``--from`` as the locations it stands for; a missing path is a one-line error."""
    out: list[_Location] = []
    seen: set[str] = set()
    for raw in locations:
        if _is_url(raw):
            items = [_Location(raw, url=raw)]
        elif raw.startswith(("ftp://", "file://", "s3://", "gs://")):
            raise MoatError(f"--from {raw}: only http(s) URLs and local paths are supported")
        else:
            path = Path(raw).expanduser().absolute()
            if path.is_dir():
                items = _expand_dir(path)
            elif path.is_file():
                items = [_Location(str(path), path=path)]
            else:
                raise MoatError(f"--from {raw}: no such file or directory")
        for item in items:
            if item.label not in seen:
                seen.add(item.label)
                out.append(item)
    return out


def _expand_dir(directory: Path) -> list[_Location]:
    files: list[Path] = []
    loose: list[Path] = []
    for root, dirs, names in os.walk(directory):  # never follows symlinked directories
        dirs.sort()
        for name in sorted(names):
            path = Path(root) / name
            if path.is_symlink() or not path.is_file():
                continue
            lower = name.lower()
            if lower.endswith(_ARCHIVE_SUFFIXES) or name == "list":
                files.append(path)
            elif lower.endswith((".json", ".yaml", ".yml")):
                loose.append(path)
            if len(files) + len(loose) > MAX_MEMBERS:
                raise MoatError(f"--from {directory}: more than {MAX_MEMBERS} files")
    items = [_Location(str(p), path=p, in_directory=True) for p in files]
    if loose:
        items.append(_Location(str(directory), path=directory, loose=loose, in_directory=True))
    if not items:
        raise MoatError(f"--from {directory}: no feed files (zip, tar, json, yaml, csv, list) in the directory")
    return items


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


# --- downloads ----------------------------------------------------------------------------------


def download_path(downloads: Path, url: str) -> Path:
    """Where a URL's last body is kept, so a 304 can still be read again when needed."""
    return downloads / hashlib.sha256(url.encode()).hexdigest()[:40]


def fetch(url: str, downloads: Path, etag: str | None, last_modified: str | None) -> tuple[Path | None, int]:
    """GET ``url`` into the download cache, conditionally when validators are known.

    Returns (None, 0) on 304 Not Modified, else (path, bytes). The body is streamed to a ``.part``
    file, bounded by :data:`MAX_DOWNLOAD`, and renamed only when complete: httpx raises on a body
    shorter than its Content-Length, so a truncated download never becomes data.
    """
    import httpx  # deferred: only updates touch the network

    downloads.mkdir(parents=True, exist_ok=True)
    target = download_path(downloads, url)
    part = target.with_name(target.name + ".part")
    headers = {"User-Agent": f"moat/{__version__}"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    try:
        with (
            httpx.Client(timeout=httpx.Timeout(30.0, read=120.0), follow_redirects=True, headers=headers) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code == 304 and (etag or last_modified):
                return None, 0
            if response.status_code != 200:
                raise MoatError(f"cannot download {url}: HTTP {response.status_code} {response.reason_phrase}")
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > MAX_DOWNLOAD:
                raise MoatError(f"cannot download {url}: {declared} bytes is over the {MAX_DOWNLOAD} byte limit")
            size = 0
            with open(part, "wb") as out:
                for chunk in response.iter_bytes(1 << 20):
                    size += len(chunk)
                    if size > MAX_DOWNLOAD:
                        raise MoatError(f"cannot download {url}: over the {MAX_DOWNLOAD} byte limit")
                    out.write(chunk)
            os.replace(part, target)
            _save_validators(target, response.headers.get("ETag"), response.headers.get("Last-Modified"))
            return target, size
    except httpx.HTTPError as exc:
        raise MoatError(f"cannot download {url}: {type(exc).__name__}: {str(exc).splitlines()[0]}") from exc
    except OSError as exc:
        raise MoatError(f"cannot download {url}: {exc.strerror or exc}") from exc
    finally:
        part.unlink(missing_ok=True)


def _save_validators(target: Path, etag: str | None, last_modified: str | None) -> None:
    target.with_name(target.name + ".meta").write_text(json.dumps({"etag": etag, "last_modified": last_modified}))


def _load_validators(target: Path) -> tuple[str | None, str | None]:
    try:
        data = json.loads(target.with_name(target.name + ".meta").read_text())
        return data.get("etag"), data.get("last_modified")
    except (OSError, ValueError, AttributeError):
        return None, None


# --- the previous database ----------------------------------------------------------------------


def _previous_sources(db_path: Path) -> list[SourceRecord]:
    """The sources of the database being replaced; [] when there is none we can use."""
    if not db_path.exists():
        return []
    try:
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        try:
            version = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if not version or version[0] != str(SCHEMA_VERSION):
                return []
            rows = db.execute(
                "SELECT name, location, etag, last_modified, fetched_at, records, skipped FROM sources"
            ).fetchall()
        finally:
            db.close()
    except sqlite3.DatabaseError:
        return []
    return [SourceRecord(r[0], r[1], r[5], r[6], r[2], r[3], r[4]) for r in rows]


def _kind(name: str) -> str:
    return name.split(":", 1)[0] if name.startswith("osv:") else name.split(" ", 1)[0]


# --- the update ---------------------------------------------------------------------------------


def update_db(
    db_path: Path,
    locations: Iterable[str],
    *,
    cache_dir: Path,
    offline: bool = False,
    on_feed: Callable[[FeedResult], None] | None = None,
) -> UpdateResult:
    """Build a new database from ``locations`` and put it in place of ``db_path``.

    ``cache_dir`` holds downloads (``cache_dir/db/downloads``). With ``offline`` no URL is fetched:
    URL feeds are carried over from the previous database, or the update fails if it has none.
    """
    items = expand(locations)
    previous = _previous_sources(db_path)
    by_location: dict[str, list[SourceRecord]] = {}
    for src in previous:
        by_location.setdefault(src.location, []).append(src)
    downloads = cache_dir / "db" / "downloads"

    carried: list[FeedResult] = []
    to_read: list[_Location] = []
    downloaded = 0
    for item in items:
        before = by_location.get(item.label, [])
        old_etag = before[0].etag if before else None
        old_modified = before[0].last_modified if before else None
        carryable = bool(before) and all(_kind(s.name) in CARRIED_KINDS for s in before)
        if item.url is not None:
            if offline:
                if not before:
                    raise MoatError(f"--offline: {item.url} was never downloaded, so there is nothing to keep")
                cached = download_path(downloads, item.url)
                if carryable or not cached.exists():
                    carried += _carry(before, carried)
                    continue
                item.path, item.etag, item.last_modified = cached, old_etag, old_modified
                to_read.append(item)
                continue
            path, size = fetch(item.url, downloads, old_etag if before else None, old_modified if before else None)
            downloaded += size
            if path is None and carryable:
                carried += _carry(before, carried)
                continue
            if path is None:  # unchanged, but a distribution feed: read the cached body again
                cached = download_path(downloads, item.url)
                if not cached.exists():
                    path, size = fetch(item.url, downloads, None, None)
                    downloaded += size
                else:
                    path = cached
            item.path = path
            assert path is not None
            item.etag, item.last_modified = _load_validators(path)
            to_read.append(item)
            continue
        if item.loose:
            to_read.append(item)
            continue
        assert item.path is not None
        item.etag = _sha256(item.path)
        if carryable and old_etag == item.etag:
            carried += _carry(before, carried)
            continue
        to_read.append(item)

    feeds: list[FeedResult] = []
    ignored: list[str] = []
    with StoreWriter(db_path) as writer:
        builder = _Builder(writer, {f.name for f in carried})
        if carried:
            writer.copy_from(db_path, [f.name for f in carried])
        for feed in carried:
            if on_feed:
                on_feed(feed)
        for item in to_read:
            try:
                new = builder.read_location(item)
                if not new:
                    raise _Unrecognised(f"{item.label}: no vulnerability data recognised")
                for feed in new:
                    if feed.records == 0 and feed.skipped and feed.kind != "alpine-secdb":
                        raise _Unrecognised(f"{item.label}: no usable records ({feed.warning()})")
            except _Unrecognised as exc:
                if not item.in_directory:
                    raise MoatError(str(exc)) from None
                ignored.append(str(exc))
                continue
            for feed in new:
                if on_feed and feed.kind != "alpine-secdb":  # reported once merged, below
                    on_feed(feed)
            feeds += new
        for feed in builder.flush_merged():
            if on_feed:
                on_feed(feed)
        for feed in carried + feeds:
            writer.add_source(
                SourceRecord(feed.name, feed.location, feed.records, feed.skipped, feed.etag, feed.last_modified)
            )
    return UpdateResult(db_path, carried + feeds, downloaded, ignored)


def _carry(before: list[SourceRecord], already: list[FeedResult]) -> list[FeedResult]:
    taken = {f.name for f in already}
    return [
        FeedResult(s.name, _kind(s.name), s.location, s.etag, s.last_modified, s.records, s.skipped, carried=True)
        for s in before
        if s.name not in taken
    ]


# --- reading one location -----------------------------------------------------------------------


class _Unrecognised(MoatError):
    """A location that holds no data of a kind Moat reads (not a corrupt one)."""


_DSA_LIST = re.compile(rb"^\[\d{1,2} [A-Z][a-z]{2} \d{4}\] (DSA|DLA)-\d+", re.M)


class _Builder:
    """Reads locations into the writer, one feed (sources row) per kind of data found."""

    def __init__(self, writer: StoreWriter, reserved: set[str]) -> None:
        self.writer = writer
        self.names = set(reserved)
        self.alpine: list[tuple[AdvisoryRecord, list[AffectedRecord]]] = []
        self.alpine_feed: FeedResult | None = None
        self.current_file: str | None = None
        """The loose file being read: KEV, tracker and secdb files of a directory are their own sources."""

    # feeds ---------------------------------------------------------------------------------

    def _feed(self, feeds: dict[str, FeedResult], name: str, kind: str, item: _Location) -> FeedResult:
        if name in feeds:
            return feeds[name]
        unique, n = name, 2
        while unique in self.names:
            unique, n = f"{name} ({n})", n + 1
        self.names.add(unique)
        location = self.current_file if kind != "osv" and self.current_file else item.label
        feed = FeedResult(unique, kind, location, item.etag, item.last_modified)
        feeds[name] = feed
        return feed

    def read_location(self, item: _Location) -> list[FeedResult]:
        feeds: dict[str, FeedResult] = {}
        if item.loose:
            group = _label_name(item.label)
            for path in item.loose:
                try:
                    data = _read_bounded_file(path, MAX_FEED_FILE)
                except MoatError as exc:
                    self._feed(feeds, f"osv:{group}", "osv", item).skip(str(exc).split(": ", 1)[-1])
                    continue
                self.current_file = str(path)
                self._blob(feeds, item, data, path.name, group, loose=True)
                self.current_file = None
            return list(feeds.values())
        assert item.path is not None
        name = _label_name(item.label)
        with open(item.path, "rb") as handle:
            head = handle.read(512)
        if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
            self._zip(feeds, item, name)
        elif head.startswith(b"\x28\xb5\x2f\xfd") or head.startswith(b"\x1f\x8b") or _is_tar(head):
            self._compressed(feeds, item, name, head)
        else:
            data = _read_bounded_file(item.path, MAX_FEED_FILE)
            if not self._blob(feeds, item, data, item.path.name, name, loose=False):
                raise _Unrecognised(f"{item.label}: not a recognised feed (OSV, KEV, EPSS, Debian, Alpine)")
        return list(feeds.values())

    def _zip(self, feeds: dict[str, FeedResult], item: _Location, name: str) -> None:
        assert item.path is not None
        try:
            archive = zipfile.ZipFile(item.path)
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise MoatError(f"{item.label}: not a readable zip archive ({exc}); truncated download?") from exc
        with archive:
            members = [m for m in archive.infolist() if not m.is_dir()]
            if len(members) > MAX_MEMBERS:
                raise MoatError(f"{item.label}: {len(members)} zip members is over the {MAX_MEMBERS} limit")
            feed = self._feed(feeds, f"osv:{name}", "osv", item)
            for member in members:
                if member.file_size > MAX_RECORD:
                    feed.skip("oversized members")
                    continue
                try:
                    with archive.open(member) as stream:
                        data = stream.read(MAX_RECORD + 1)
                except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError, EOFError, ValueError):
                    feed.skip("corrupt members")
                    continue
                except Exception as exc:  # zlib.error and friends from a hostile member
                    feed.skip(f"corrupt members ({type(exc).__name__})")
                    continue
                if len(data) > MAX_RECORD:
                    feed.skip("oversized members")
                    continue
                self._osv_bytes(feed, data, member.filename)

    def _compressed(self, feeds: dict[str, FeedResult], item: _Location, name: str, head: bytes) -> None:
        assert item.path is not None
        raw: IO[bytes] = open(item.path, "rb")  # noqa: SIM115 - closed below, wrapped by decompressors
        try:
            stream = _decompressor(raw, head)
            peek = _peek(stream, 1024)
            if _is_tar(peek.peek_bytes):
                self._tar(feeds, item, name, peek)
            else:
                data = _read_limited(peek, MAX_FEED_FILE + 1)
                if len(data) > MAX_FEED_FILE:
                    raise MoatError(f"{item.label}: decompressed size is over the {MAX_FEED_FILE} byte limit")
                inner = re.sub(r"\.(gz|zst)$", "", item.path.name)
                if not self._blob(feeds, item, data, inner, name, loose=False):
                    raise _Unrecognised(f"{item.label}: not a recognised feed (OSV, KEV, EPSS, Debian, Alpine)")
        except (OSError, EOFError, tarfile.TarError) as exc:
            raise MoatError(f"{item.label}: cannot read the archive ({exc}); truncated?") from exc
        except MoatError:
            raise
        except Exception as exc:  # zstandard.ZstdError, zlib.error: corrupt compressed data
            raise MoatError(f"{item.label}: corrupt compressed data ({type(exc).__name__}: {exc})") from exc
        finally:
            raw.close()

    def _tar(self, feeds: dict[str, FeedResult], item: _Location, name: str, stream: Any) -> None:
        count = 0
        with tarfile.open(fileobj=stream, mode="r|") as archive:
            for member in archive:
                count += 1
                if count > MAX_MEMBERS:
                    raise MoatError(f"{item.label}: more than {MAX_MEMBERS} tar members")
                if not member.isreg():
                    continue
                base = member.name.rsplit("/", 1)[-1]
                lower = base.lower()
                wanted = (
                    lower.endswith((".json", ".yaml", ".yml", ".csv"))
                    or base == "list"
                    or lower.endswith((".csv.gz", ".json.gz"))
                )
                if not wanted:
                    continue
                limit = MAX_FEED_FILE
                if member.size > limit:
                    self._feed(feeds, f"osv:{name}", "osv", item).skip("oversized members")
                    continue
                handle = archive.extractfile(member)
                if handle is None:
                    continue
                data = _read_limited(handle, limit + 1)
                if lower.endswith(".gz"):
                    try:
                        data = _gunzip_bounded(data, MAX_FEED_FILE)
                    except MoatError:
                        continue
                self._blob(feeds, item, data, member.name, name, loose=True)

    # content dispatch ----------------------------------------------------------------------

    def _blob(
        self, feeds: dict[str, FeedResult], item: _Location, data: bytes, member: str, group: str, *, loose: bool
    ) -> bool:
        """Dispatch one document on its content; False when it is not a feed we know."""
        text_head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
        base = member.rsplit("/", 1)[-1]
        listed = _DSA_LIST.search(data[:65536])
        if listed is not None:
            kind = listed.group(1).decode()
            self._distro(feeds, item, f"debian-{kind.lower()}", "read_dsa_list", data.decode("utf-8", "replace"), kind)
            return True
        if text_head.startswith((b"{", b"[")):
            try:
                doc = json.loads(data)
            except (ValueError, RecursionError):
                if loose:
                    self._feed(feeds, f"osv:{group}", "osv", item).skip("invalid JSON")
                    return True
                raise MoatError(f"{item.label}: {member}: invalid JSON") from None
            return self._json(feeds, item, doc, data, member, group, loose=loose)
        try:
            head_text = data[:4096].decode("utf-8", "ignore")
        except UnicodeDecodeError:  # pragma: no cover - "ignore" never raises
            head_text = ""
        if enrich.looks_like_epss(head_text):
            self._epss(feeds, item, data.decode("utf-8", "replace"))
            return True
        if base.lower().endswith((".yaml", ".yml")):
            if b"distroversion" in data[:65536]:
                self._distro(feeds, item, "alpine-secdb", "read_secdb", data, member)
                return True
            return self._yaml_osv(feeds, item, data, member, group)
        return False

    def _json(
        self,
        feeds: dict[str, FeedResult],
        item: _Location,
        doc: Any,
        data: bytes,
        member: str,
        group: str,
        *,
        loose: bool,
    ) -> bool:
        if enrich.is_kev(doc):
            feed = self._feed(feeds, "kev", "kev", item)
            entries, skipped = enrich.read_kev(doc)
            for entry in entries:
                self.writer.add_kev(entry.cve, entry.date_added, entry.due_date, entry.ransomware, entry.name)
            feed.records += len(entries)
            if skipped:
                feed.skip("entries without a CVE id", skipped)
            return True
        if isinstance(doc, dict) and "distroversion" in doc and "packages" in doc:
            self._distro(feeds, item, "alpine-secdb", "read_secdb", data, member)
            return True
        if isinstance(doc, dict) and isinstance(doc.get("id"), str) and ("affected" in doc or "modified" in doc):
            self._osv_doc(self._feed(feeds, f"osv:{group}", "osv", item), doc, member)
            return True
        if isinstance(doc, list) and doc and all(isinstance(d, dict) and "id" in d for d in doc[:10]):
            feed = self._feed(feeds, f"osv:{group}", "osv", item)
            for entry in doc:
                self._osv_doc(feed, entry, member)
            return True
        if isinstance(doc, dict) and doc and _looks_like_tracker(doc):
            self._distro(feeds, item, "debian-tracker", "read_tracker_json", data, None)
            return True
        if isinstance(doc, dict) and ("$schema" in doc or "$id" in doc):
            return False  # a JSON schema lying beside the data (KEV ships one)
        if loose:
            self._feed(feeds, f"osv:{group}", "osv", item).skip("JSON documents of no known feed")
            return True
        return False

    def _yaml_osv(self, feeds: dict[str, FeedResult], item: _Location, data: bytes, member: str, group: str) -> bool:
        import yaml

        feed = self._feed(feeds, f"osv:{group}", "osv", item)
        try:
            loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
            doc = yaml.load(data, Loader=loader)  # a safe loader
        except (yaml.YAMLError, ValueError, RecursionError):
            feed.skip("invalid YAML")
            return True
        self._osv_doc(feed, _stringify_dates(doc), member)
        return True

    def _osv_bytes(self, feed: FeedResult, data: bytes, member: str) -> None:
        if member.lower().endswith((".yaml", ".yml")):
            import yaml

            try:
                doc = yaml.load(data, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
            except (yaml.YAMLError, ValueError, RecursionError):
                feed.skip("invalid YAML")
                return
            self._osv_doc(feed, _stringify_dates(doc), member)
            return
        if not member.lower().endswith(".json"):
            feed.skip("members that are not .json")
            return
        try:
            doc = json.loads(data)
        except (ValueError, RecursionError):
            feed.skip("invalid JSON")
            return
        self._osv_doc(feed, doc, member)

    def _osv_doc(self, feed: FeedResult, doc: Any, member: str) -> None:
        try:
            advisory, rows = parse_record(doc, feed.name)
        except RecordError as exc:
            feed.skip(str(exc).split(" for ", 1)[0])
            return
        self.writer.add_advisory(advisory, rows)
        feed.records += 1
        if advisory.withdrawn:
            feed.withdrawn += 1

    def _epss(self, feeds: dict[str, FeedResult], item: _Location, text: str) -> None:
        feed = self._feed(feeds, "epss", "epss", item)
        rows, skipped = enrich.read_epss(text)
        counted = _Counted(rows)
        self.writer.add_epss(counted)
        feed.records += counted.n
        if skipped[0]:
            feed.skip("malformed EPSS lines", skipped[0])

    def _distro(
        self, feeds: dict[str, FeedResult], item: _Location, kind: str, reader: str, payload: Any, arg: str | None
    ) -> None:
        from moat.vulndb import alpine, debian

        feed = self._feed(feeds, kind, kind, item)
        stats = debian.FeedStats()
        try:
            if reader == "read_secdb":
                records: Iterator[tuple[AdvisoryRecord, list[AffectedRecord]]] = alpine.read_secdb(
                    payload, arg or item.label, stats=stats
                )
            elif reader == "read_dsa_list":
                records = debian.read_dsa_list(payload, arg or "DSA", stats=stats)
            else:
                records = debian.read_tracker_json(payload, stats=stats)
            for advisory, rows in records:
                advisory.source = feed.name
                feed.records += 1
                if kind == "alpine-secdb":
                    self.alpine.append((advisory, rows))
                    if self.alpine_feed is None:
                        self.alpine_feed = feed
                else:
                    self.writer.add_advisory(advisory, rows)
        except MoatError as exc:
            feed.skip(f"unreadable documents ({str(exc).splitlines()[0][:120]})")
        if stats.skipped:
            feed.skip("malformed entries", stats.skipped)

    def flush_merged(self) -> list[FeedResult]:
        """Write the Alpine records, joined by id across every secdb document of the update."""
        if not self.alpine:
            return []
        from moat.vulndb import alpine

        source = self.alpine_feed.name if self.alpine_feed else "alpine-secdb"
        for advisory, rows in alpine.merge_records(self.alpine):
            advisory.source = source
            self.writer.add_advisory(advisory, rows)
        self.alpine = []
        return [self.alpine_feed] if self.alpine_feed else []


# --- small helpers ------------------------------------------------------------------------------


class _Counted:
    """An iterator that counts what passes through it (EPSS rows go straight to executemany)."""

    def __init__(self, rows: Iterator[tuple[str, float, float]]) -> None:
        self.rows = rows
        self.n = 0

    def __iter__(self) -> Iterator[tuple[str, float, float]]:
        for row in self.rows:
            self.n += 1
            yield row


class _Peek(io.RawIOBase):
    """A stream whose first bytes were read to sniff the format, then replayed."""

    def __init__(self, stream: IO[bytes], first: bytes) -> None:
        self.stream = stream
        self.peek_bytes = first
        self._pending = first

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._pending:
            n = min(len(buffer), len(self._pending))
            buffer[:n] = self._pending[:n]
            self._pending = self._pending[n:]
            return n
        data = self.stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _read_limited(stream: Any, n: int) -> bytes:
    """Read up to ``n`` bytes, looping: decompressors and raw streams may return short reads."""
    parts: list[bytes] = []
    got = 0
    while got < n:
        chunk = stream.read(min(n - got, 1 << 20))
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def _peek(stream: IO[bytes], n: int) -> _Peek:
    first = b""
    while len(first) < n:
        chunk = stream.read(n - len(first))
        if not chunk:
            break
        first += chunk
    return _Peek(stream, first)


def _decompressor(raw: IO[bytes], head: bytes) -> Any:
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
    if head.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=raw, mode="rb")
    return raw


def _is_tar(head: bytes) -> bool:
    return len(head) >= 262 and head[257:262] == b"ustar"


def _gunzip_bounded(data: bytes, limit: int) -> bytes:
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as handle:
            out = handle.read(limit + 1)
    except (OSError, EOFError) as exc:
        raise MoatError(f"corrupt gzip ({exc})") from exc
    if len(out) > limit:
        raise MoatError("gzip member over the size limit")
    return out


def _read_bounded_file(path: Path, limit: int) -> bytes:
    size = path.stat().st_size
    if size > limit:
        raise MoatError(f"{path}: {size} bytes is over the {limit} byte limit")
    return path.read_bytes()


def _label_name(label: str) -> str:
    """A short name for a location: ``PyPI`` for …/PyPI/all.zip or PyPI.zip, the stem otherwise."""
    if _is_url(label):
        parts = [unquote(p) for p in urlsplit(label).path.split("/") if p]
        if len(parts) >= 2 and parts[-1] == "all.zip":
            return parts[-2]
        last = parts[-1] if parts else urlsplit(label).netloc
    else:
        last = Path(label).name
    for suffix in (".tar.zst", ".tar.gz", ".zip", ".tgz", ".tzst", ".tar", ".json", ".csv.gz", ".csv", ".gz"):
        if last.lower().endswith(suffix):
            return last[: -len(suffix)]
    return last


def _looks_like_tracker(doc: dict[str, Any]) -> bool:
    """Debian's tracker JSON: source package → {CVE-…|TEMP-…: {releases: …}}."""
    for _, issues in zip(range(5), doc.values(), strict=False):
        if not isinstance(issues, dict) or not issues:
            return False
        key, value = next(iter(issues.items()))
        if not (str(key).startswith(("CVE-", "TEMP-")) and isinstance(value, dict)):
            return False
    return True


def _stringify_dates(doc: Any) -> Any:
    """YAML OSV records hold timestamps the safe loader turns into datetimes; OSV wants strings."""
    import datetime as dt

    if isinstance(doc, dict):
        return {k: _stringify_dates(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_stringify_dates(v) for v in doc]
    if isinstance(doc, dt.datetime):
        return doc.strftime("%Y-%m-%dT%H:%M:%SZ") if doc.tzinfo else doc.isoformat() + "Z"
    if isinstance(doc, dt.date):
        return doc.isoformat()
    return doc
