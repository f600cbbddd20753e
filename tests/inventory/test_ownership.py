"""Language packages that dpkg, apk or rpm installed are reported once, as the OS package.

Every root here is made of real data: this machine's own dpkg database and the files its
python3-* and umoci debs installed, the shared corpus apk database, CentOS rpm databases. What must
be owned comes from the package managers themselves (``dpkg-query``, the .list files, ``rpm -qa``)
and what must be found from ``importlib.metadata``, never from Moat.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from corpus import CORPUS
from moat.image.layers import TarLayerReader
from moat.image.source import Layer, OpenedImage
from moat.inventory.analyzer import FileInput, all_analyzers
from moat.inventory.analyzers.dpkg_files import DpkgFilesAnalyzer
from moat.inventory.analyzers.rpm import RpmDatabaseAnalyzer
from moat.inventory.layer_analysis import FileFinding, LayerResult
from moat.inventory.ownership import OS_ANALYZERS, language_readable, owned_paths
from moat.inventory.reconcile import drop_os_owned
from moat.inventory.scan import scan_image
from moat.inventory.target import ScanSettings, inventory_target
from moat.model import Artifact, Inventory, LayerInfo, Package

DPKG_INFO = Path("/var/lib/dpkg/info")
DEBS = ["python3-six", "python3-yaml", "python3-jwt", "umoci"]
"""Installed here by scripts/install-system-deps (umoci is a Go binary with build info)."""
SITE = Path(".venv/lib/python3.11/site-packages")
PIP_DIST = "typer"
"""A distribution pip installed into the project venv; no .list mentions it."""
PIP_TARGET = "usr/local/lib/python3.11/dist-packages"
APK_DB = CORPUS / "packages" / "apk" / "trivy-apk-installed" / "lib" / "apk" / "db" / "installed"
GO_RPMDB = Path("/usr/share/gocode/src/github.com/knqyf263/go-rpmdb/pkg/testdata")


def listed(package: str) -> list[str]:
    return (DPKG_INFO / f"{package}.list").read_text().splitlines()


def dpkg_versions(admindir: Path, packages: list[str]) -> dict[str, str]:
    out = subprocess.run(
        ["dpkg-query", f"--admindir={admindir}", "-W", "-f", "${Package} ${Version}\\n", *packages],
        capture_output=True, text=True, check=True,
    ).stdout
    return dict(line.split() for line in out.splitlines())


def distributions(directory: Path) -> set[str]:
    """name@version of every Python distribution in a directory, as the standard library finds them."""
    return {f"{d.metadata['Name']}@{d.version}" for d in importlib.metadata.distributions(path=[str(directory)])}


def copy_in(root: Path, absolute: str) -> None:
    target = root / absolute.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(absolute, target)


def scan_dir(root: Path, cache: Path) -> Inventory:
    return inventory_target(f"dir:{root}", settings=ScanSettings(str(cache), use_cache=False))


def by_type(inventory: Inventory, kind: str) -> list[Package]:
    return [p for p in inventory.packages if p.type == kind]


@pytest.fixture(scope="module")
def debian_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This machine's dpkg database, the metadata and binaries of DEBS, and a pip-installed dist-info."""
    root = tmp_path_factory.mktemp("debian-root")
    (root / "var/lib/dpkg/info").mkdir(parents=True)
    shutil.copy2("/var/lib/dpkg/status", root / "var/lib/dpkg/status")
    for package in DEBS:
        shutil.copy2(DPKG_INFO / f"{package}.list", root / "var/lib/dpkg/info")
        for path in listed(package):
            in_metadata = "/dist-packages/" in path and (".egg-info/" in path or ".dist-info/" in path)
            if (in_metadata or path.startswith("/usr/bin/")) and Path(path).is_file():
                copy_in(root, path)
    # the same Go binary where no package database puts it: its modules stay reported
    (root / "usr/local/bin").mkdir(parents=True)
    shutil.copy2("/usr/bin/umoci", root / "usr/local/bin/umoci-copy")
    repo = Path(__file__).resolve().parents[2]
    dist = next((repo / SITE).glob(f"{PIP_DIST}-*.dist-info"))
    shutil.copytree(dist, root / PIP_TARGET / dist.name)
    return root


def test_debian_owned_python_and_go_packages_are_dropped(debian_root: Path, tmp_path: Path) -> None:
    inventory = scan_dir(debian_root, tmp_path)
    debs = {p.name: p.version for p in by_type(inventory, "deb")}
    expected_debs = dpkg_versions(debian_root / "var/lib/dpkg", DEBS)
    assert expected_debs.keys() == set(DEBS)
    assert {name: debs.get(name) for name in DEBS} == expected_debs
    # only the pip-installed distribution is left, as importlib.metadata names it
    assert {p.id for p in by_type(inventory, "pypi")} == distributions(debian_root / PIP_TARGET)
    go_found_in = {p.found_in for p in by_type(inventory, "golang")}
    assert go_found_in == {"usr/local/bin/umoci-copy"}


def test_without_the_file_lists_the_debian_packages_are_reported_twice(debian_root: Path, tmp_path: Path) -> None:
    """The control: the same root minus var/lib/dpkg/info reports every copied distribution."""
    root = tmp_path / "root"
    shutil.copytree(debian_root, root, symlinks=True)
    shutil.rmtree(root / "var/lib/dpkg/info")
    inventory = scan_dir(root, tmp_path / "cache")
    expected = distributions(root / "usr/lib/python3/dist-packages") | distributions(root / PIP_TARGET)
    assert len(expected) == 4  # six, PyYAML, PyJWT and the pip one
    assert {p.id for p in by_type(inventory, "pypi")} == expected
    assert {p.found_in for p in by_type(inventory, "golang")} == {"usr/bin/umoci", "usr/local/bin/umoci-copy"}


def test_dpkg_files_keeps_only_what_language_analyzers_read() -> None:
    lines = listed("python3-six")
    data = "\n".join(lines).encode() + b"\n"
    result = DpkgFilesAnalyzer().analyze(FileInput("var/lib/dpkg/info/python3-six.list", io.BytesIO(data), len(data)))
    metadata = [p.lstrip("/") for p in lines if p.endswith(".egg-info/PKG-INFO")]
    assert len(metadata) == 1
    assert metadata[0] in result.owned_paths
    assert "usr/lib/python3/dist-packages/six.py" not in result.owned_paths
    assert not any(p.startswith("usr/share/doc/") or p in ("", ".") for p in result.owned_paths)


def test_dpkg_files_wants_only_list_files() -> None:
    analyzer = DpkgFilesAnalyzer()
    assert analyzer.wants("var/lib/dpkg/info/python3-six.list", 0o644)
    assert not analyzer.wants("var/lib/dpkg/info/python3-six.md5sums", 0o644)


def test_every_os_analyzer_name_is_real() -> None:
    """A renamed OS analyzer would silently count its database as a language file."""
    assert {a.name for a in all_analyzers()} >= OS_ANALYZERS


@pytest.mark.parametrize(
    ("path", "readable"),
    [
        ("usr/lib/python3/dist-packages/six-1.16.0.egg-info/PKG-INFO", True),
        ("usr/share/java/commons-io.jar", True),
        ("usr/bin/umoci", True),
        ("usr/lib/go-1.19/bin/go", True),
        ("usr/libexec/docker/cli-plugins/docker-buildx", True),
        ("usr/lib/python3/dist-packages/six.py", False),
        ("usr/share/doc/python3-six/copyright", False),
        ("var/lib/dpkg/status", False),
    ],
)
def test_language_readable(path: str, readable: bool) -> None:
    assert language_readable(path) is readable


def test_nested_jars_and_merged_usr_twins_follow_their_file() -> None:
    packages = [
        Package(name="inner", version="1", type="maven", found_in="usr/share/java/outer.jar:lib/inner.jar"),
        Package(name="tool", version="v1", type="golang", found_in="usr/bin/tool"),
        Package(name="kept", version="1", type="pypi", found_in="usr/local/lib/x.dist-info/METADATA"),
        Package(name="tool", version="1-1", type="deb", found_in="var/lib/dpkg/status"),
    ]
    kept = drop_os_owned(packages, {"usr/share/java/outer.jar", "bin/tool", "var/lib/dpkg/status"})
    assert [p.name for p in kept] == ["kept", "tool"]
    assert kept[1].type == "deb"


def test_apk_owned_go_binary_is_dropped(tmp_path: Path) -> None:
    """apk's database owns usr/bin/scanelf (R: under F:usr/bin); a Go binary put there is apk's."""
    owned_by_db = set()
    directory = ""
    for line in APK_DB.read_text().splitlines():
        if line.startswith("F:"):
            directory = line[2:]
        elif line.startswith("R:"):
            owned_by_db.add(f"{directory}/{line[2:]}")
    assert "usr/bin/scanelf" in owned_by_db and "usr/local/bin/tool" not in owned_by_db
    root = tmp_path / "root"
    (root / "lib/apk/db").mkdir(parents=True)
    shutil.copy2(APK_DB, root / "lib/apk/db/installed")
    for target in ("usr/bin/scanelf", "usr/local/bin/tool"):
        (root / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2("/usr/bin/umoci", root / target)
    inventory = scan_dir(root, tmp_path / "cache")
    assert "scanelf" in {p.name for p in by_type(inventory, "apk")}
    assert {p.found_in for p in by_type(inventory, "golang")} == {"usr/local/bin/tool"}


def rpm_metadata_files(dbpath: Path) -> list[str]:
    out = subprocess.run(
        ["rpm", "--dbpath", str(dbpath), "--define", "_db_backend bdb_ro", "-qa", "--qf", "[%{FILENAMES}\\n]"],
        capture_output=True, text=True, check=True,
    ).stdout
    return sorted(
        p.lstrip("/") for p in out.splitlines()
        if p.endswith(".dist-info/METADATA") or p.endswith(".egg-info/PKG-INFO")
    )


@pytest.mark.parametrize("case", ["centos7-python35", "centos7-many", "centos8-modularitylabel"])
def test_rpm_owns_the_python_metadata_rpm_lists(case: str) -> None:
    db = GO_RPMDB / case / "Packages"
    expected = rpm_metadata_files(db.parent)
    assert expected
    data = db.read_bytes()
    result = RpmDatabaseAnalyzer().analyze(FileInput("var/lib/rpm/Packages", io.BytesIO(data), len(data)))
    assert set(expected) <= set(result.owned_paths)
    assert all(language_readable(p) for p in result.owned_paths)


def test_rpm_owned_distribution_is_dropped(tmp_path: Path) -> None:
    db = GO_RPMDB / "centos7-python35" / "Packages"
    owned = rpm_metadata_files(db.parent)[0]  # pip-7.1.0.dist-info/METADATA of rh-python35-python-pip
    root = tmp_path / "root"
    (root / "var/lib/rpm").mkdir(parents=True)
    shutil.copy2(db, root / "var/lib/rpm/Packages")
    name, version = Path(owned).parent.name.removesuffix(".dist-info").rsplit("-", 1)
    for path in (owned, f"{PIP_TARGET}/{name}-{version}.dist-info/METADATA"):
        (root / path).parent.mkdir(parents=True)
        (root / path).write_text(f"Metadata-Version: 2.0\nName: {name}\nVersion: {version}\n\n")
    inventory = scan_dir(root, tmp_path / "cache")
    assert by_type(inventory, "rpm")
    assert [p.found_in for p in by_type(inventory, "pypi")] == [f"{PIP_TARGET}/{name}-{version}.dist-info/METADATA"]


# ----------------------------------------------------------------------- layers, whiteouts, cache


def make_tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def image_of(tars: list[bytes]) -> OpenedImage:
    layers = []
    for blob in tars:
        diff_id = "sha256:" + hashlib.sha256(blob).hexdigest()
        layers.append(
            Layer(
                diff_id=diff_id,
                reader_factory=lambda b=blob, d=diff_id: TarLayerReader(
                    lambda: io.BytesIO(b), name="test", expected_diff_id=d
                ),
                digest=diff_id,
            )
        )
    infos = [LayerInfo(diff_id=layer.diff_id or "", media_type="application/vnd.oci.image.layer.v1.tar")
             for layer in layers]
    return OpenedImage(artifact=Artifact(name="test", type="container_image", layers=infos), layers=layers)


def six_stanza() -> bytes:
    stanzas = Path("/var/lib/dpkg/status").read_text().split("\n\n")
    return next(s for s in stanzas if s.startswith("Package: python3-six\n")).encode() + b"\n"


@pytest.fixture(scope="module")
def six_layers() -> tuple[bytes, bytes]:
    """A base layer with python3-six installed the way dpkg leaves it, and a layer deleting its .list."""
    files = {"var/lib/dpkg/status": six_stanza(), "var/lib/dpkg/info/python3-six.list": (
        DPKG_INFO / "python3-six.list").read_bytes()}
    for path in listed("python3-six"):
        if ".egg-info/" in path:
            files[path.lstrip("/")] = Path(path).read_bytes()
    upper = make_tar({"var/lib/dpkg/info/.wh.python3-six.list": b""})
    return make_tar(files), upper


def pypi_ids(inventory: Inventory) -> set[str]:
    return {p.id for p in by_type(inventory, "pypi")}


def test_whiteout_of_the_list_file_makes_the_package_reported_again(
    six_layers: tuple[bytes, bytes], tmp_path: Path
) -> None:
    base, upper = six_layers
    six = {d for d in distributions(Path("/usr/lib/python3/dist-packages")) if d.startswith("six@")}
    assert len(six) == 1
    deb = "python3-six@" + dpkg_versions(Path("/var/lib/dpkg"), ["python3-six"])["python3-six"]
    for cache in (tmp_path / "cache", None):  # the second round of the cached scan reads the cache
        for _ in range(2 if cache else 1):
            owned = scan_image(image_of([base]), cache)
            assert [p.id for p in by_type(owned, "deb")] == [deb]
            assert pypi_ids(owned) == set()
            deleted = scan_image(image_of([base, upper]), cache)
            assert pypi_ids(deleted) == six
    assert all(info.cached for info in scan_image(image_of([base, upper]), tmp_path / "cache").artifact.layers)


def test_owned_paths_survive_the_cache_format() -> None:
    result = LayerResult(
        files={"var/lib/dpkg/info/x.list": [FileFinding(analyzer="dpkg-files", owned_paths=["usr/bin/x"])]}
    )
    data = result.to_dict()
    assert data["files"]["var/lib/dpkg/info/x.list"][0]["owned_paths"] == ["usr/bin/x"]
    assert LayerResult.from_dict(data).files["var/lib/dpkg/info/x.list"][0].owned_paths == ["usr/bin/x"]
    empty = FileFinding(analyzer="dpkg").to_dict()
    assert "owned_paths" not in empty


def test_owned_paths_normalise_and_deduplicate() -> None:
    assert owned_paths(["/.", "/usr/bin/x", "/usr/bin/x", "/usr/share/doc/x/copyright", ""]) == ["usr/bin/x"]
