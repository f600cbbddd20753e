"""``moat sbom`` as a user runs it: formats, output files, exit codes and one-line errors."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from corpus import CORPUS
from moat import __version__
from moat.cli.main import app

try:  # click < 8.2 mixes stderr into stdout unless told not to; 8.2 keeps them apart and drops the flag
    runner = CliRunner(mix_stderr=False)  # type: ignore[call-arg]
except TypeError:
    runner = CliRunner()


@pytest.fixture()
def rootfs(tmp_path: Path) -> Path:
    """A small real root: an Alpine apk database from the corpus and Debian's os-release."""
    root = tmp_path / "rootfs"
    (root / "lib/apk/db").mkdir(parents=True)
    shutil.copy(CORPUS / "packages/apk/trivy-apk-installed/lib/apk/db/installed", root / "lib/apk/db/installed")
    (root / "etc").mkdir()
    (root / "etc/os-release").write_text('ID=alpine\nVERSION_ID=3.4.6\nPRETTY_NAME="Alpine Linux v3.4"\n')
    return root


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_version() -> None:
    assert invoke("version")[:2] == (0, f"{__version__}\n")


def test_every_format_describes_the_same_packages(rootfs: Path, tmp_path: Path) -> None:
    cache = str(tmp_path / "cache")
    code, out, _ = invoke("sbom", f"dir:{rootfs}", "--format", "json", "--cache-dir", cache, "-q")
    assert code == 0
    report = json.loads(out)
    assert report["schema"] == "moat.report/v1"
    names = sorted(p["name"] for p in report["packages"])
    records = (rootfs / "lib/apk/db/installed").read_text().split("\n\n")
    fields = [dict(line.split(":", 1) for line in record.splitlines() if ":" in line) for record in records]
    assert names == sorted(f["P"] for f in fields if "P" in f and "V" in f)  # apk skips versionless records
    assert report["os"]["family"] == "alpine"

    code, out, _ = invoke("sbom", f"dir:{rootfs}", "-f", "cyclonedx-json", "--cache-dir", cache, "-q")
    assert code == 0
    bom = json.loads(out)
    assert sorted(c["name"] for c in bom["components"] if c["type"] == "library") == names

    code, out, _ = invoke("sbom", f"dir:{rootfs}", "-f", "spdx-json", "--cache-dir", cache, "-q")
    assert code == 0
    spdx = json.loads(out)
    assert {p["name"] for p in spdx["packages"]} >= set(names)

    code, out, _ = invoke("sbom", f"dir:{rootfs}", "--cache-dir", cache, "-q")
    assert code == 0
    assert "musl" in out and f"{len(names)} packages" in out


def test_output_file_is_written_whole_with_the_usual_mode(rootfs: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.cdx.json"
    code, out, _ = invoke("sbom", f"dir:{rootfs}", "-f", "cyclonedx-json", "-o", str(target), "-q")
    assert code == 0 and out == ""
    assert json.loads(target.read_text())["bomFormat"] == "CycloneDX"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".moat-")] == []


def test_sbom_file_reads_back_as_a_target(rootfs: Path, tmp_path: Path) -> None:
    sbom = tmp_path / "a.cdx.json"
    assert invoke("sbom", f"dir:{rootfs}", "-f", "cyclonedx-json", "-o", str(sbom), "-q")[0] == 0
    direct = json.loads(invoke("sbom", f"dir:{rootfs}", "-f", "json", "-q")[1])
    back = json.loads(invoke("sbom", f"sbom:{sbom}", "-f", "json", "-q")[1])
    key = [(p["name"], p["version"], p["purl"], p["found_in"]) for p in direct["packages"]]
    assert [(p["name"], p["version"], p["purl"], p["found_in"]) for p in back["packages"]] == key
    plain = json.loads(invoke("sbom", str(sbom), "-f", "json", "-q")[1])  # detected without the prefix
    assert len(plain["packages"]) == len(key)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sbom", "/no/such/image.tar"], "no such file or directory"),
        (["sbom", "oci-dir:/tmp"], "not an OCI layout"),
        (["sbom", "docker:x", "--docker-host", "tcp://127.0.0.1:1"], "only unix://"),
        (["sbom", "registry:bad//ref"], "bad//ref: invalid repository name"),
        (["sbom", "oci-dir:/tmp", "--platform", "linux"], "not an OCI layout"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str, tmp_path: Path) -> None:
    code, out, err = invoke(*args, "--cache-dir", str(tmp_path), "-q")
    assert code == 2
    assert out == ""
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_failed_scan_leaves_no_output_file(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    code, _, _ = invoke("sbom", "oci-dir:/tmp", "-o", str(target), "--cache-dir", str(tmp_path / "c"))
    assert code == 2
    assert not target.exists()


def test_output_into_a_missing_directory_is_refused(rootfs: Path, tmp_path: Path) -> None:
    code, _, err = invoke("sbom", f"dir:{rootfs}", "-o", str(tmp_path / "nope" / "x.json"), "-q")
    assert code == 2 and "does not exist" in err


def test_help_names_every_target_kind() -> None:
    code, out, _ = invoke("sbom", "--help")
    assert code == 0
    for word in ("oci-dir:", "oci-archive:", "docker-archive:", "registry:", "docker:", "dir:", "sbom:"):
        assert word in out
