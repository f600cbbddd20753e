"""The rpm database readers and the rpm analyzer, against rpm itself and the shared corpus.

Ground truth comes from the real tool: Debian's ``rpm`` reads the BerkeleyDB databases (read-only
backend) and SQLite databases; ndb is not built into Debian's rpm, so the SUSE ndb database is
checked against the corpus's complete, ordered expectation. A SQLite database is also built here
from scratch with rpmbuild + rpm, so its content is known by construction.
"""

from __future__ import annotations

import io
import shutil
import sqlite3
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from packageurl import PackageURL

from corpus import (
    COMPARED_FIELDS,
    CORPUS,
    Case,
    cases,
    compare,
    known_differences,
    prefilter_accepts,
    run_case,
)
from moat.errors import ParseError
from moat.inventory import rpmdb
from moat.inventory.analyzer import AnalysisResult, FileInput, all_analyzers
from moat.inventory.analyzers.rpm import RpmDatabaseAnalyzer, split_source_rpm
from moat.inventory.rpmdb import detect_format, parse_header, read_rpmdb
from moat.inventory.rpmdb.header import RpmHeaderInfo

GO_RPMDB = Path("/usr/share/gocode/src/github.com/knqyf263/go-rpmdb/pkg/testdata")
RPM_CORPUS = CORPUS / "packages" / "rpm"
MARINER = RPM_CORPUS / "gorpmdb-cbl-mariner-2.0-sqlite" / "var/lib/rpm/rpmdb.sqlite"
LIBUUID = RPM_CORPUS / "gorpmdb-libuuid-bdb" / "var/lib/rpm/Packages"
DIVE = RPM_CORPUS / "syft-bdb-dive" / "var/lib/rpm/Packages"
SLES_NDB = RPM_CORPUS / "gorpmdb-sle15-bci-ndb" / "var/lib/rpm/Packages.db"

SEP = "\t|\t"
QUERY_FIELDS = (
    "NAME", "EPOCH", "VERSION", "RELEASE", "ARCH", "SOURCERPM", "LICENSE", "VENDOR", "SIZE", "SIGMD5",
    "MODULARITYLABEL",
)
QUERY_FORMAT = SEP.join(f"%{{{tag}}}" for tag in QUERY_FIELDS) + "\n"


# ---------------------------------------------------------------------------- helpers


def _decode(raw: bytes) -> str:
    """rpm prints header strings as raw bytes; decode each field as Moat promises to (UTF-8, else Latin-1)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def rpm_qa(dbpath: Path, backend: str, query: str = QUERY_FORMAT) -> list[list[str]]:
    """``rpm -qa --qf`` split into fields, one list per package, in rpm's own order."""
    out = subprocess.run(
        ["rpm", "--dbpath", str(dbpath), "--define", f"_db_backend {backend}", "-qa", "--qf", query],
        capture_output=True,
        check=True,
    ).stdout
    return [[_decode(field) for field in line.split(SEP.encode())] for line in out.splitlines()]


def moat_rows(headers: list[RpmHeaderInfo]) -> list[list[str]]:
    def show(value: object) -> str:
        return "(none)" if value is None else str(value)

    return [
        [h.name, show(h.epoch), h.version, h.release, show(h.arch), show(h.source_rpm), show(h.license),
         show(h.vendor), show(h.size), show(h.sigmd5), show(h.modularity_label)]
        for h in headers
    ]


def read_path(path: Path) -> rpmdb.RpmDatabase:
    with path.open("rb") as stream:
        return read_rpmdb(stream)


def analyze_bytes(data: bytes, image_path: str = "var/lib/rpm/Packages") -> AnalysisResult:
    return RpmDatabaseAnalyzer().analyze(FileInput(image_path, io.BytesIO(data), len(data)))


def writable_copy(source: Path, directory: Path, name: str | None = None) -> Path:
    """rpm wants to create lock and -shm files next to a database; give it a private copy."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / (name or source.name)
    shutil.copyfile(source, target)
    target.chmod(0o644)
    return directory


def package_id(name: str, epoch: str, version: str, release: str) -> str:
    return f"{name}@{'' if epoch == '(none)' else epoch + ':'}{version}-{release}"


# ---------------------------------------------------------------------------- corpus


RPM_CASES = cases("packages", "rpm")
# Moat leaves OS package purls to the engine (the distro qualifier is not known yet), so the corpus's
# purl is checked separately below rather than compared with the analyzer's empty field.
ANALYZER_FIELDS = tuple(name for name in COMPARED_FIELDS if name != "purl")


def _extra_field_problems(case: Case, result: AnalysisResult) -> list[str]:
    """size and sigmd5, which corpus.compare leaves out; Moat keeps them as strings in ``extra``."""
    problems = []
    by_id = {p.id: p for p in result.packages}
    for item in case.expected.get("packages", []):
        epoch = "(none)" if item.get("epoch") is None else str(item["epoch"])
        package = by_id.get(package_id(item["name"], epoch, item["version"], item["release"]))
        if package is None:
            continue  # compare() already reports it missing
        for key in ("size", "sigmd5"):
            if key in item and package.extra.get(key) != str(item[key]):
                problems.append(f"{package.id} {key}: want {item[key]!r}, have {package.extra.get(key)!r}")
    return problems


def test_corpus_has_all_rpm_cases() -> None:
    assert [c.name for c in RPM_CASES] == [
        "gorpmdb-cbl-mariner-2.0-sqlite", "gorpmdb-libuuid-bdb", "gorpmdb-sle15-bci-ndb", "syft-bdb-dive",
    ]


@pytest.mark.parametrize("case", RPM_CASES, ids=lambda c: c.name)
def test_corpus_case(case: Case) -> None:
    analyzer = RpmDatabaseAnalyzer()
    assert prefilter_accepts(analyzer, case.input)
    outcome = run_case(analyzer, case)
    problems = compare(case, outcome, ANALYZER_FIELDS)
    if isinstance(outcome, AnalysisResult):
        problems += _extra_field_problems(case, outcome)
    if case.name in known_differences("rpm"):
        assert problems, f"{case.name} is listed as a known difference but now passes: remove it"
    else:
        assert not problems, f"{case.name}:\n  " + "\n  ".join(problems)


def test_corpus_purl_facts_are_carried() -> None:
    """Syft's purl for dive names arch and upstream (the source rpm): the package carries both."""
    (case,) = [c for c in RPM_CASES if c.name == "syft-bdb-dive"]
    (expected,) = case.expected["packages"]
    purl = PackageURL.from_string(expected["purl"])
    (package,) = analyze_bytes(case.input_path.read_bytes()).packages
    assert (package.name, package.version) == (purl.name, purl.version)
    assert isinstance(purl.qualifiers, dict)
    assert package.arch == purl.qualifiers["arch"]
    assert package.extra["source_rpm"] == purl.qualifiers["upstream"]
    assert package.purl == ""  # filled by the engine once the distro is known


# ---------------------------------------------------------------------------- rpm itself as the oracle


BDB_DATABASES = [*sorted(p.parent for p in GO_RPMDB.glob("*/Packages")), LIBUUID.parent, DIVE.parent]


def test_go_rpmdb_testdata_is_installed() -> None:
    assert len(BDB_DATABASES) >= 12, "run scripts/install-system-deps (golang-github-knqyf263-go-rpmdb-dev)"


def _db_id(path: Path) -> str:
    return path.name if path.parent == GO_RPMDB else path.parts[-4]


@pytest.mark.parametrize("dbpath", BDB_DATABASES, ids=_db_id)
def test_bdb_matches_rpm(dbpath: Path) -> None:
    expected = rpm_qa(dbpath, "bdb_ro")
    database = read_path(dbpath / "Packages")
    assert database.format == "bdb"
    assert database.warnings == []
    assert expected, "rpm listed nothing"
    assert moat_rows(database.headers) == expected


def test_sqlite_corpus_matches_rpm(tmp_path: Path) -> None:
    dbpath = writable_copy(MARINER, tmp_path / "db")
    expected = rpm_qa(dbpath, "sqlite")
    database = read_path(MARINER)
    assert database.format == "sqlite"
    assert len(expected) == 129
    assert moat_rows(database.headers) == expected


def test_centos8_modularity_labels_match_rpm() -> None:
    dbpath = GO_RPMDB / "centos8-modularitylabel"
    labelled = [row for row in rpm_qa(dbpath, "bdb_ro") if row[-1] != "(none)"]
    assert labelled, "the fixture should hold modular packages"
    result = analyze_bytes((dbpath / "Packages").read_bytes())
    have = {(p.name, p.extra["modularity_label"]) for p in result.packages if "modularity_label" in p.extra}
    assert have == {(row[0], row[-1]) for row in labelled}


def test_analyzer_matches_rpm_without_gpg_pubkeys() -> None:
    dbpath = GO_RPMDB / "centos7-httpd24"
    rows = rpm_qa(dbpath, "bdb_ro")
    assert sum(row[0] == "gpg-pubkey" for row in rows) == 3, "fixture should hold three imported keys"
    result = analyze_bytes((dbpath / "Packages").read_bytes())
    wanted = [row for row in rows if row[0] != "gpg-pubkey"]
    assert [p.id for p in result.packages] == [package_id(*row[:4]) for row in wanted]
    for package, row in zip(result.packages, wanted, strict=True):
        assert package.type == "rpm"
        assert package.purl == ""
        assert package.found_in == "var/lib/rpm/Packages"
        assert package.arch == row[4]
        assert package.release == row[3]
        assert package.epoch == (None if row[1] == "(none)" else int(row[1]))
        assert package.licenses == [row[6]]
        assert package.extra["source_rpm"] == row[5]
        assert package.extra["vendor"] == row[7]
        assert package.extra["size"] == row[8]
        assert package.extra["sigmd5"] == row[9]
        # The source rpm file is name-version-release.src.rpm; the binary's epoch carries over.
        source_version = package.source_version or ""
        assert row[5] == f"{package.source_name}-{source_version.split(':')[-1]}.src.rpm"
        assert source_version.startswith(f"{row[1]}:") == (row[1] != "(none)")


def _rpm_dependency_graph(dbpath: Path, backend: str) -> dict[str, list[str]]:
    """Each package's providers, as rpm's own --whatprovides resolves every requirement.

    One rpm call answers all requirements; a sentinel nobody provides separates the answers.
    """
    nevr = SEP.join(["%{NAME}", "%{EPOCH}", "%{VERSION}", "%{RELEASE}"])
    query = f"@{SEP}{nevr}\n[R{SEP}%{{REQUIRENAME}}\n]"
    requires: dict[str, set[str]] = {}
    current = ""
    for fields in rpm_qa(dbpath, backend, query):
        if fields[0] == "@":
            current = package_id(*fields[1:5])
            requires.setdefault(current, set())
        else:
            requires[current].add(fields[1])
    capabilities = sorted(set().union(*requires.values()))
    sentinel = "moat-sentinel-nobody-provides-this"
    args = [arg for capability in capabilities for arg in (capability, sentinel)]
    out = subprocess.run(
        ["rpm", "--dbpath", str(dbpath), "--define", f"_db_backend {backend}", "-q", "--whatprovides",
         "--qf", f"P{SEP}{nevr}\n", *args],
        capture_output=True,
    ).stdout.decode()
    providers: dict[str, set[str]] = {}
    answer: set[str] = set()
    for line in out.splitlines():
        if line == f"no package provides {sentinel}":
            providers[capabilities[len(providers)]] = answer
            answer = set()
        elif line.startswith("P" + SEP):
            answer.add(package_id(*line.split(SEP)[1:5]))
    assert len(providers) == len(capabilities)
    return {
        pkg: sorted(set().union(set(), *(providers[c] for c in caps)) - {pkg})
        for pkg, caps in requires.items()
    }


def test_dependency_graph_matches_rpm_whatprovides(tmp_path: Path) -> None:
    dbpath = writable_copy(MARINER, tmp_path / "db")
    expected = _rpm_dependency_graph(dbpath, "sqlite")
    result = analyze_bytes(MARINER.read_bytes(), "var/lib/rpm/rpmdb.sqlite")
    have = {p.id: p.depends_on for p in result.packages}
    assert have == expected
    assert sum(len(v) for v in have.values()) > 300  # a real graph, not an empty one


# ---------------------------------------------------------------------------- a database built here


@dataclass(frozen=True)
class BuiltDb:
    root: Path
    dbpath: Path
    host_arch: str

    @property
    def sqlite(self) -> Path:
        return self.dbpath / "rpmdb.sqlite"


SPECS = {
    "moat-epoch": """\
Name: moat-epoch
Epoch: 3
Version: 1.2
Release: 4.moat
Summary: A package with an epoch and an installed file
License: MIT
Vendor: Moat Test Vendor
Provides: moat-virtual
%define debug_package %{nil}
%description
test
%install
mkdir -p %{buildroot}/usr/share/moat-epoch
echo hello > %{buildroot}/usr/share/moat-epoch/data.txt
%files
/usr/share/moat-epoch/data.txt
""",
    "moat-noarch": """\
Name: moat-noarch
Version: 0.9
Release: 1
Summary: A noarch package with a virtual and a file requirement
License: Apache-2.0 OR MIT
BuildArch: noarch
Requires: moat-virtual
Requires: /usr/share/moat-zero/zero.txt
%description
test
%files
""",
    "moat-zero": """\
Name: moat-zero
Epoch: 0
Version: 2.0
Release: 7
Summary: A package whose epoch is explicitly zero
License: GPL-2.0-only
BuildArch: noarch
%description
test
%install
mkdir -p %{buildroot}/usr/share/moat-zero
echo zero > %{buildroot}/usr/share/moat-zero/zero.txt
%files
/usr/share/moat-zero/zero.txt
""",
}


@pytest.fixture(scope="session")
def built_db(tmp_path_factory: pytest.TempPathFactory) -> BuiltDb:
    """Three tiny rpms built with rpmbuild and installed into a fresh SQLite rpmdb with rpm."""
    for tool in ("rpm", "rpmbuild"):
        assert shutil.which(tool), f"{tool} is missing: run scripts/install-system-deps"
    base = tmp_path_factory.mktemp("rpmbuild")
    top = base / "top"
    for name, spec in SPECS.items():
        spec_path = base / f"{name}.spec"
        spec_path.write_text(spec)
        subprocess.run(
            ["rpmbuild", "--define", f"_topdir {top}", "--define", "modularitylabel moat:stream:1:abc",
             "-bb", str(spec_path)],
            capture_output=True,
            check=True,
        )
    rpms = sorted(str(p) for p in (top / "RPMS").rglob("*.rpm"))
    assert len(rpms) == 3
    root = base / "root"
    root.mkdir()
    common = ["rpm", "--root", str(root), "--define", "_db_backend sqlite",
              "--define", "_dbpath /var/lib/rpm"]
    subprocess.run([*common, "--initdb"], capture_output=True, check=True)
    # Installed one by one so the database order is known: epoch, then zero, then noarch.
    for name in ("moat-epoch", "moat-zero", "moat-noarch"):
        (path,) = [p for p in rpms if Path(p).name.startswith(name + "-")]
        subprocess.run([*common, "-i", "--nodeps", path], capture_output=True, check=True)
    arch = subprocess.run(["rpm", "--eval", "%{_arch}"], capture_output=True, text=True, check=True).stdout
    return BuiltDb(root=root, dbpath=root / "var/lib/rpm", host_arch=arch.strip())


def test_built_db_is_sqlite_in_wal_mode(built_db: BuiltDb) -> None:
    header = built_db.sqlite.read_bytes()[:20]
    assert header[:16] == b"SQLite format 3\0"
    assert header[18:20] == b"\x02\x02"  # WAL read/write versions: rpm leaves the db in WAL mode


def test_built_db_matches_rpm(built_db: BuiltDb) -> None:
    expected = rpm_qa(built_db.dbpath, "sqlite")
    database = read_path(built_db.sqlite)
    assert moat_rows(database.headers) == expected
    assert [row[0] for row in expected] == ["moat-epoch", "moat-zero", "moat-noarch"]


def test_built_db_versions_as_rpm_prints_evr(built_db: BuiltDb) -> None:
    evr = {row[0]: row[1] for row in rpm_qa(built_db.dbpath, "sqlite", "%{NAME}" + SEP + "%{EVR}\n")}
    result = analyze_bytes(built_db.sqlite.read_bytes(), "usr/lib/sysimage/rpm/rpmdb.sqlite")
    assert {p.name: p.version for p in result.packages} == evr
    assert evr == {"moat-epoch": "3:1.2-4.moat", "moat-zero": "0:2.0-7", "moat-noarch": "0.9-1"}


def test_built_db_packages(built_db: BuiltDb) -> None:
    result = analyze_bytes(built_db.sqlite.read_bytes(), "usr/lib/sysimage/rpm/rpmdb.sqlite")
    assert result.warnings == []
    packages = {p.name: p for p in result.packages}
    epoch, zero, noarch = packages["moat-epoch"], packages["moat-zero"], packages["moat-noarch"]

    assert (epoch.epoch, epoch.release, epoch.arch) == (3, "4.moat", built_db.host_arch)
    assert (epoch.source_name, epoch.source_version) == ("moat-epoch", "3:1.2-4.moat")
    assert epoch.licenses == ["MIT"]
    assert epoch.extra["vendor"] == "Moat Test Vendor"
    assert epoch.extra["source_rpm"] == "moat-epoch-1.2-4.moat.src.rpm"
    assert epoch.extra["modularity_label"] == "moat:stream:1:abc"
    assert epoch.extra["size"] == str(len("hello\n"))
    assert len(epoch.extra["sigmd5"]) == 32

    assert (zero.epoch, zero.source_version) == (0, "0:2.0-7")
    assert (noarch.epoch, noarch.arch, noarch.licenses) == (None, "noarch", ["Apache-2.0 OR MIT"])
    assert "vendor" not in noarch.extra
    assert all(p.found_in == "usr/lib/sysimage/rpm/rpmdb.sqlite" for p in result.packages)
    # One edge through a virtual provide (moat-virtual), one through a file (/usr/share/moat-zero/zero.txt).
    assert noarch.depends_on == ["moat-epoch@3:1.2-4.moat", "moat-zero@0:2.0-7"]
    assert epoch.depends_on == [] and zero.depends_on == []


def test_built_db_graph_matches_rpm_whatprovides(built_db: BuiltDb) -> None:
    expected = _rpm_dependency_graph(built_db.dbpath, "sqlite")
    result = analyze_bytes(built_db.sqlite.read_bytes())
    assert {p.id: p.depends_on for p in result.packages} == expected


def test_built_db_under_another_name_is_recognised_by_magic(built_db: BuiltDb) -> None:
    """A database is read by what it is, not what it is called."""
    result = analyze_bytes(built_db.sqlite.read_bytes(), "var/lib/rpm/Packages")
    assert len(result.packages) == 3


def test_reads_from_a_file_stream_as_the_engine_spools_it() -> None:
    """Big databases reach the analyzer as on-disk streams, read by seeking rather than in one piece."""
    path = GO_RPMDB / "centos7-many" / "Packages"
    with path.open("rb") as stream:
        result = RpmDatabaseAnalyzer().analyze(FileInput("var/lib/rpm/Packages", stream, path.stat().st_size))
    rows = rpm_qa(path.parent, "bdb_ro")
    assert [p.id for p in result.packages] == [package_id(*r[:4]) for r in rows if r[0] != "gpg-pubkey"]


# ---------------------------------------------------------------------------- ndb


def test_ndb_reads_every_package_in_order() -> None:
    database = read_path(SLES_NDB)
    assert database.format == "ndb"
    (case,) = [c for c in RPM_CASES if c.name == "gorpmdb-sle15-bci-ndb"]
    assert [h.name for h in database.headers] == [p["name"] for p in case.expected["packages"]]


# ---------------------------------------------------------------------------- analyzer contract


def test_analyzer_is_registered() -> None:
    assert "rpm" in {a.name for a in all_analyzers()}


@pytest.mark.parametrize(
    ("path", "wanted"),
    [
        ("var/lib/rpm/Packages", True),
        ("var/lib/rpm/rpmdb.sqlite", True),
        ("var/lib/rpm/Packages.db", True),
        ("usr/lib/sysimage/rpm/Packages", True),
        ("usr/lib/sysimage/rpm/rpmdb.sqlite", True),
        ("usr/lib/sysimage/rpm/Packages.db", True),
        ("var/lib/rpm/Name", False),
        ("var/lib/rpm/rpmdb.sqlite-wal", False),
        ("home/user/var/lib/rpm/Packages", False),
        ("usr/share/doc/Packages", False),
        ("var/lib/dpkg/status", False),
    ],
)
def test_wants(path: str, wanted: bool) -> None:
    assert prefilter_accepts(RpmDatabaseAnalyzer(), path) is wanted


@pytest.mark.parametrize(
    ("filename", "parts"),
    [
        ("util-linux-2.32.1-42.el8_8.src.rpm", ("util-linux", "2.32.1", "42.el8_8")),
        ("kernel-default-5.14.21-150500.55.19.1.nosrc.rpm", ("kernel-default", "5.14.21", "150500.55.19.1")),
        ("dive-0.9.2-1.src.rpm", ("dive", "0.9.2", "1")),
        ("noversion.src.rpm", None),
        ("a-1.src.rpm", None),
        ("dive-0.9.2-1.src.tar", None),
        ("", None),
    ],
)
def test_split_source_rpm(filename: str, parts: tuple[str, str, str] | None) -> None:
    assert split_source_rpm(filename) == parts


# ---------------------------------------------------------------------------- hostile input


def real_header_blob() -> bytes:
    """One real header blob, taken from the corpus SQLite database with the sqlite3 module alone."""
    connection = sqlite3.connect(f"{MARINER.as_uri()}?mode=ro&immutable=1", uri=True)
    try:
        (blob,) = connection.execute("SELECT blob FROM Packages WHERE hnum = 1").fetchone()
    finally:
        connection.close()
    return bytes(blob)


def _index(blob: bytes) -> list[tuple[int, int, int, int]]:
    (il,) = struct.unpack_from(">I", blob, 0)
    return [struct.unpack_from(">iIiI", blob, 8 + 16 * i) for i in range(il)]


def _set_entry(blob: bytes, which: int, **changes: int) -> bytes:
    """The blob with some fields of tag ``which``'s index entry replaced."""
    data = bytearray(blob)
    for i, (entry_tag, type_, offset, count) in enumerate(_index(blob)):
        if entry_tag == which:
            values = {"tag": entry_tag, "type": type_, "offset": offset, "count": count, **changes}
            struct.pack_into(">iIiI", data, 8 + 16 * i, values["tag"], values["type"], values["offset"],
                             values["count"])
            return bytes(data)
    raise AssertionError(f"tag {which} not in the blob")


def test_real_header_blob_parses() -> None:
    info = parse_header(real_header_blob())
    assert info.name == "mariner-release"


HEADER_NAME, HEADER_SIZE_TAG = 1000, 1009


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b[:7], "too short"),
        (lambda b: b"", "too short"),
        (lambda b: struct.pack(">I", 0xFFFFFFFF) + b[4:], "index count"),
        (lambda b: struct.pack(">I", 0) + b[4:], "index count"),
        (lambda b: b[:4] + struct.pack(">I", 0x7FFFFFFF) + b[8:], "data size"),
        (lambda b: b[: len(b) - 100], "run past"),
        (lambda b: b[:4] + struct.pack(">I", struct.unpack_from(">I", b, 4)[0] + 1) + b[8:], "run past"),
        (lambda b: _set_entry(b, HEADER_NAME, offset=0x7FFFFFF0), "outside"),
        (lambda b: _set_entry(b, HEADER_NAME, offset=-16), "outside"),
        (lambda b: _set_entry(b, HEADER_NAME, count=0xFFFFFFFF), "count"),
        (lambda b: _set_entry(b, HEADER_NAME, type=99), "unknown type"),
        (lambda b: _set_entry(b, HEADER_NAME, type=4), "not a string"),
        (lambda b: _set_entry(b, HEADER_NAME, tag=999), "no NAME"),
        (lambda b: _set_entry(b, HEADER_SIZE_TAG, count=struct.unpack_from(">I", b, 4)[0]), "run past"),
    ],
    ids=[
        "seven-bytes", "empty", "huge-index-count", "zero-index-count", "huge-data-size", "truncated",
        "data-size-past-end", "offset-past-data", "negative-offset", "huge-count", "bad-type", "wrong-type",
        "no-name", "ints-past-data",
    ],
)
def test_hostile_header(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ParseError, match=message):
        parse_header(mutate(real_header_blob()))


def test_hostile_header_unterminated_string() -> None:
    blob = bytearray(real_header_blob())
    (_il, dl) = struct.unpack_from(">II", blob, 0)
    blob[-1:] = b"x"  # the last byte of the data store is no longer a NUL
    with pytest.raises(ParseError, match="not terminated"):
        parse_header(_set_entry(bytes(blob), HEADER_NAME, offset=dl - 1))


def _u32(data: bytearray, offset: int, value: int) -> None:
    struct.pack_into("<I", data, offset, value)


PAGE = 4096


def _libuuid() -> bytearray:
    return bytearray(LIBUUID.read_bytes())


def _bdb_case(name: str) -> bytes:
    """A hostile variant of the real 23-page libuuid database (bucket pages 1-2, overflow 3-22)."""
    data = _libuuid()
    if name == "truncated":
        return bytes(data[: 10 * PAGE])
    if name == "short-meta":
        return bytes(data[:100])
    if name == "bad-magic":
        _u32(data, 12, 0x12345678)
    elif name == "btree":
        _u32(data, 12, 0x00053162)
    elif name == "huge-last-page":
        _u32(data, 32, 0xFFFFFFF0)
    elif name == "huge-max-bucket":
        _u32(data, 72, 0xFFFFFFF0)
    elif name == "bad-pagesize":
        _u32(data, 20, 1000)
    elif name == "encrypted":
        data[24] = 1
    elif name == "bucket-loop":
        _u32(data, 2 * PAGE + 16, 2)  # bucket 1's page chains to itself
    elif name == "overflow-loop":
        _u32(data, 5 * PAGE + 16, 4)  # overflow page 5 points back to page 4
    elif name == "overflow-huge-length":
        _u32(data, 2 * PAGE + 4079 + 8, 0xFFFFFFFF)
    elif name == "overflow-too-long":
        _u32(data, 2 * PAGE + 4079 + 8, 80880 + 5000)  # more bytes than the chain holds
    elif name == "overflow-past-file":
        _u32(data, 10 * PAGE + 16, 5000)
    elif name == "overflow-not-overflow":
        _u32(data, 2 * PAGE + 4079 + 4, 1)  # the value "starts" on a hash page
    elif name == "huge-item-count":
        struct.pack_into("<H", data, 2 * PAGE + 20, 0xFFFF)
    elif name == "bad-item-offsets":
        struct.pack_into("<H", data, 2 * PAGE + 26, 5)
    elif name == "wrong-page-number":
        _u32(data, 7 * PAGE + 8, 99)
    else:
        raise AssertionError(name)
    return bytes(data)


BDB_CASES = {
    "truncated": "file is truncated",
    "short-meta": "too short for a Berkeley DB metadata page",
    "bad-magic": "unrecognised format",
    "btree": "a btree database",
    "huge-last-page": "file is truncated",
    "huge-max-bucket": "buckets cannot fit",
    "bad-pagesize": "invalid page size",
    "encrypted": "encrypted",
    "bucket-loop": "reached twice",
    "overflow-loop": "overflow chain loops",
    "overflow-huge-length": "overflow value of 4294967295 bytes is out of range",
    "overflow-too-long": "chain ends before the value does",
    "overflow-past-file": "outside the database",
    "overflow-not-overflow": "in an overflow chain has type 13",
    "huge-item-count": "claims 65535 items",
    "bad-item-offsets": "inconsistent offsets",
    "wrong-page-number": "page 7 says it is page 99",
}


def test_bdb_fixture_is_what_the_hostile_cases_assume() -> None:
    data = LIBUUID.read_bytes()
    assert len(data) == 23 * PAGE
    assert struct.unpack_from("<B", data, 2 * PAGE + 4079)[0] == 3  # an off-page value item
    assert struct.unpack_from("<II", data, 2 * PAGE + 4079 + 4) == (3, 80880)
    assert len(read_path(LIBUUID).headers) == 1


@pytest.mark.parametrize(("name", "message"), BDB_CASES.items())
def test_hostile_bdb(name: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        analyze_bytes(_bdb_case(name))


def _sles() -> bytearray:
    return bytearray(SLES_NDB.read_bytes())


def _ndb_case(name: str) -> bytes:
    data = _sles()
    slots = rpmdb.ndb.read_slots(io.BytesIO(bytes(data)))
    first = slots[0]
    if name == "truncated":
        return bytes(data[: len(data) // 2])
    if name == "short":
        return bytes(data[:20])
    if name == "bad-version":
        _u32(data, 4, 7)
    elif name == "huge-slot-pages":
        _u32(data, 12, 0xFFFFFFFF)
    elif name == "zero-slot-pages":
        _u32(data, 12, 0)
    elif name == "bad-slot-magic":
        data[32:36] = b"Junk"
    elif name == "slot-past-end":
        _u32(data, 32 + 12, 0x7FFFFFFF)
    elif name == "slot-inside-slot-pages":
        _u32(data, 32 + 8, 1)
    elif name == "blob-huge-length":
        _u32(data, first.blkoff * 16 + 12, 0xFFFFFFF0)
    elif name == "blob-wrong-package":
        _u32(data, first.blkoff * 16 + 4, 999)
    elif name == "blob-bad-tail":
        tail = (first.blkoff + first.blkcnt) * 16 - 4
        data[tail : tail + 4] = b"Junk"
    elif name == "odd-size":
        return bytes(data + b"x")
    else:
        raise AssertionError(name)
    return bytes(data)


NDB_CASES = {
    "truncated": "lies past the end of the file",
    "short": "too short for a header",
    "bad-version": "unsupported version 7",
    "huge-slot-pages": "4294967295 slot pages do not fit",
    "zero-slot-pages": "0 slot pages do not fit",
    "bad-slot-magic": "bad slot magic",
    "slot-past-end": "lies past the end of the file",
    "slot-inside-slot-pages": "invalid slot",
    "blob-huge-length": "too large",
    "blob-wrong-package": "bad head",
    "blob-bad-tail": "bad tail",
    "odd-size": "not a multiple of 16",
}


def test_ndb_fixture_is_what_the_hostile_cases_assume() -> None:
    data = SLES_NDB.read_bytes()
    assert data[:4] == b"RpmP"
    assert data[32:36] == b"Slot"
    (pkgidx, blkoff) = struct.unpack_from("<II", data, 36)
    assert pkgidx != 0 and blkoff != 0  # the first slot is in use


@pytest.mark.parametrize(("name", "message"), NDB_CASES.items())
def test_hostile_ndb(name: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        analyze_bytes(_ndb_case(name), "usr/lib/sysimage/rpm/Packages.db")


def _make_sqlite(path: Path, statements: list[str], rows: list[tuple[int, object]] | None = None) -> bytes:
    connection = sqlite3.connect(path)
    for statement in statements:
        connection.execute(statement)
    if rows:
        connection.executemany("INSERT INTO Packages VALUES (?, ?)", rows)
    connection.commit()
    connection.close()
    return path.read_bytes()


RPM_TABLE = "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)"


def test_hostile_sqlite_truncated() -> None:
    data = MARINER.read_bytes()[: 64 * 1024]
    with pytest.raises(ParseError, match="rpm sqlite"):
        analyze_bytes(data, "var/lib/rpm/rpmdb.sqlite")


def test_hostile_sqlite_garbage_after_magic() -> None:
    data = b"SQLite format 3\0" + bytes(range(256)) * 64
    with pytest.raises(ParseError, match="rpm sqlite"):
        analyze_bytes(data, "var/lib/rpm/rpmdb.sqlite")


def test_hostile_sqlite_no_packages_table(tmp_path: Path) -> None:
    data = _make_sqlite(tmp_path / "x.sqlite", ["CREATE TABLE Other (x)"])
    with pytest.raises(ParseError, match="no Packages table"):
        analyze_bytes(data, "var/lib/rpm/rpmdb.sqlite")


def test_hostile_sqlite_endless_view(tmp_path: Path) -> None:
    endless = (
        "CREATE VIEW Packages AS WITH RECURSIVE c(hnum, blob) AS "
        "(SELECT 1, x'00' UNION ALL SELECT hnum + 1, blob FROM c) SELECT hnum, blob FROM c"
    )
    data = _make_sqlite(tmp_path / "x.sqlite", [endless])
    with pytest.raises(ParseError, match="not a table"):
        analyze_bytes(data, "var/lib/rpm/rpmdb.sqlite")


def test_hostile_sqlite_text_instead_of_blob(tmp_path: Path) -> None:
    data = _make_sqlite(tmp_path / "x.sqlite", ["CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, blob)"],
                        [(1, "not a header")])
    with pytest.raises(ParseError, match="not stored as a blob"):
        analyze_bytes(data, "var/lib/rpm/rpmdb.sqlite")


def test_corrupt_header_is_skipped_with_a_warning(tmp_path: Path) -> None:
    """rpm -qa skips a header it cannot decode and lists the rest; so does Moat, and says so."""
    good = real_header_blob()
    bad = struct.pack(">I", 0xFFFFFFFF) + good[4:]
    data = _make_sqlite(tmp_path / "x.sqlite", [RPM_TABLE], [(1, good), (2, bad), (3, good)])
    result = analyze_bytes(data, "var/lib/rpm/rpmdb.sqlite")
    assert [p.name for p in result.packages] == ["mariner-release", "mariner-release"]
    assert len(result.warnings) == 1
    assert result.warnings[0].startswith("var/lib/rpm/rpmdb.sqlite: skipped package header #2: ")


def test_too_many_headers_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rpmdb, "MAX_PACKAGES", 50)
    blob = real_header_blob()
    data = _make_sqlite(tmp_path / "x.sqlite", [RPM_TABLE], [(i, blob) for i in range(1, 52)])
    with pytest.raises(ParseError, match="more than 50 packages"):
        analyze_bytes(data, "var/lib/rpm/rpmdb.sqlite")


def test_sqlite_work_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The progress handler stops SQLite once the read costs more than the allowed VM steps."""
    monkeypatch.setattr(rpmdb.sqlite, "MAX_VM_STEPS", 20_000)
    data = _make_sqlite(tmp_path / "x.sqlite", [RPM_TABLE], [(i, b"\0" * 8) for i in range(1, 20_001)])
    with pytest.raises(ParseError, match="too much work"):
        analyze_bytes(data, "var/lib/rpm/rpmdb.sqlite")


def test_many_corrupt_headers_keep_the_warnings_short(tmp_path: Path) -> None:
    data = _make_sqlite(tmp_path / "x.sqlite", [RPM_TABLE], [(i, b"\0" * 8) for i in range(1, 101)])
    result = analyze_bytes(data, "var/lib/rpm/rpmdb.sqlite")
    assert result.packages == []
    assert len(result.warnings) == rpmdb.MAX_WARNINGS + 1
    assert result.warnings[-1].endswith(f"skipped {100 - rpmdb.MAX_WARNINGS} more corrupt package headers")


def test_empty_database_file_holds_no_packages() -> None:
    assert analyze_bytes(b"") == AnalysisResult()


@pytest.mark.parametrize("data", [b"abc", b"\0" * 4096, b"not a database at all, just text\n" * 100])
def test_unrecognised_file(data: bytes) -> None:
    with pytest.raises(ParseError, match="unrecognised format"):
        analyze_bytes(data)


def test_detect_format() -> None:
    for path, kind in ((MARINER, "sqlite"), (LIBUUID, "bdb"), (SLES_NDB, "ndb")):
        with path.open("rb") as stream:
            assert detect_format(stream) == kind


# ---------------------------------------------------------------------------- big-endian Berkeley DB


def _to_big_endian(data: bytes) -> bytes:
    """Rewrite a little-endian hash database the way a big-endian host (s390x, ppc64) stores it.

    Berkeley DB writes its own numbers in host order; the header blobs are big-endian either way.
    """
    out = bytearray(data)

    def swap(offset: int, width: int) -> None:
        out[offset : offset + width] = out[offset : offset + width][::-1]

    for offset in range(8, 224, 4):
        if offset != 24:  # encrypt_alg, type, metaflags, unused: single bytes
            swap(offset, 4)
    for pgno in range(1, len(data) // PAGE):
        base = pgno * PAGE
        page_type = data[base + 25]
        entries = struct.unpack_from("<H", data, base + 20)[0]
        for offset in (8, 12, 16):
            swap(base + offset, 4)
        swap(base + 20, 2)
        swap(base + 22, 2)
        if page_type not in (2, 13):
            continue
        offsets = struct.unpack_from(f"<{entries}H", data, base + 26)
        for i, item in enumerate(offsets):
            swap(base + 26 + 2 * i, 2)
            if data[base + item] == 3:  # off-page: page number and length
                swap(base + item + 4, 4)
                swap(base + item + 8, 4)
            elif i % 2 == 0:  # on-page key: the record number, a host-order int32
                swap(base + item + 1, 4)
    return bytes(out)


def test_big_endian_bdb_reads_the_same() -> None:
    data = LIBUUID.read_bytes()
    swapped = _to_big_endian(data)
    assert swapped != data
    assert swapped[12:16] == struct.pack(">I", 0x00061561)
    little = read_rpmdb(io.BytesIO(data)).headers
    big = read_rpmdb(io.BytesIO(swapped)).headers
    assert moat_rows(big) == moat_rows(little)
    assert big[0].name == "libuuid"
