"""How fast the vulnerability scan is: building the database, matching, and ``moat image`` end to end.

Run from the repository root with the project venv (see bench/README.md):

    .venv/bin/python bench/vuln_scan.py [--runs 3] [--packages 10000] [--work DIR]

Three tables, no asserts (numbers depend on the machine):

1. ``moat db update`` from every file of ../shared/vulndata (``$MOAT_SHARED_DIR/vulndata``): wall
   time, peak RSS, and the size of the database it writes.
2. Matching a synthetic SBOM of ``--packages`` packages (10,000 by default) against that database.
   The packages carry real names from the advisory data (so every lookup hits real rows) across
   PyPI, Go, crates.io, npm, Maven, RubyGems, NuGet, Packagist and AlmaLinux 9 rpms, in two loads:
   ``typical`` (each at the newest version the data names, so few are affected) and ``worst``
   (versions the records themselves name, so most are affected many times over). Measured twice:
   the matcher alone in this process (a new ``Store`` and matcher per run, so no warm matcher
   caches), and ``moat sbom-scan`` as a process. The goal for the matcher alone is under one second.
3. ``moat image`` on the Debian test images (``debian`` from tests/fixtures/images.py and
   ``vuln-debian`` from tests/fixtures/vulnimages.py) with a cold and a warm layer cache, next to
   ``moat sbom`` on the same image: the difference is the cost of matching and reporting.

Every command runs as its own process, measured like bench/inventory_speed.py does (``/usr/bin/time``
for peak RSS, wall time from this process).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from packageurl import PackageURL  # noqa: E402

from fixtures import images, vulnimages  # noqa: E402
from inventory_speed import measure, print_table  # noqa: E402
from moat.match.matcher import match_inventory  # noqa: E402
from moat.model import Artifact, Inventory, OSInfo, Package  # noqa: E402
from moat.report.json_report import inventory_to_report  # noqa: E402
from moat.vulndb.store import Store  # noqa: E402
from moat.vulndb.versions import VersionError  # noqa: E402
from moat.vulndb.versions import compare as compare_versions  # noqa: E402

SHARED = Path(os.environ.get("MOAT_SHARED_DIR", ROOT.parent / "shared"))
VULNDATA = SHARED / "vulndata"

OSV_TYPES = {
    "PyPI": "pypi",
    "Go": "golang",
    "crates.io": "cargo",
    "npm": "npm",
    "Maven": "maven",
    "RubyGems": "gem",
    "NuGet": "nuget",
    "Packagist": "composer",
    "AlmaLinux:9": "rpm",
}
"""OSV ecosystem → the purl type Moat's packages carry."""


def moat_bin() -> str:
    return str(Path(sys.executable).with_name("moat"))


def sources() -> list[str]:
    """The feed files ``moat db update --from vulndata`` reads (for the input size column)."""
    wanted = (".zip", ".zst", ".json")
    return sorted(str(p) for p in VULNDATA.rglob("*") if p.is_file() and p.name.endswith(wanted))


# --------------------------------------------------------------------------------------- 1: db update


def build_db(work: Path, runs: int) -> tuple[Path, list[list[str]]]:
    """Time ``moat db update`` ``runs`` times into fresh cache dirs; keep the last database."""
    walls, rss = [], []
    db = work / "db-cache" / "db" / "vuln.db"
    for _ in range(runs):
        shutil.rmtree(work / "db-cache", ignore_errors=True)
        command = [moat_bin(), "db", "update", "--from", str(VULNDATA), "--cache-dir", str(work / "db-cache"), "-q"]
        wall, peak = measure(command)
        walls.append(wall)
        rss.append(peak)
    with Store(db) as store:
        advisories = sum(store.counts_by_ecosystem().values())
        source_count = len(store.sources())
    row = [
        f"{len(sources())} files, {sum(Path(s).stat().st_size for s in sources()) / 1e6:.1f} MB",
        f"{statistics.median(walls):.2f}",
        f"{min(walls):.2f}-{max(walls):.2f}",
        f"{max(rss):.0f}",
        f"{db.stat().st_size / 1e6:.1f}",
        str(source_count),
        str(advisories),
    ]
    return db, [row]


# --------------------------------------------------------------------------------------- 2: matching


def _osv_triples() -> Iterator[tuple[str, str, str]]:
    """(ecosystem, name, version) for every version an OSV record names: listed versions and events."""
    for zip_path in sorted((VULNDATA / "osv").glob("*.zip")):
        with zipfile.ZipFile(zip_path) as archive:
            for member in sorted(archive.namelist()):
                record = json.loads(archive.read(member))
                for entry in record.get("affected") or []:
                    package = entry.get("package") or {}
                    ecosystem, name = package.get("ecosystem", ""), package.get("name", "")
                    if ecosystem not in OSV_TYPES or not name:
                        continue
                    for version in entry.get("versions") or []:
                        yield ecosystem, name, version
                    for rng in entry.get("ranges") or []:
                        if rng.get("type") == "GIT":
                            continue
                        for event in rng.get("events") or []:
                            for value in event.values():
                                if isinstance(value, str) and value not in ("0", "*"):
                                    yield ecosystem, name, value


def _purl(kind: str, name: str, version: str) -> str:
    """The Package URL an analyzer would give the package (namespace split as each type wants)."""
    namespace = None
    if kind == "maven" and ":" in name:
        namespace, name = name.split(":", 1)
    elif kind in ("golang", "composer", "npm") and "/" in name:
        namespace, name = name.rsplit("/", 1)
    elif kind == "rpm":
        namespace = "almalinux"
    return PackageURL(type=kind, namespace=namespace, name=name, version=version).to_string()


def _package(ecosystem: str, name: str, version: str) -> Package:
    kind = OSV_TYPES[ecosystem]
    if kind == "rpm":
        epoch, _, evr = version.rpartition(":")
        release = evr.rsplit("-", 1)[1] if "-" in evr else None
        return Package(name=name, version=version, type="rpm", purl=_purl(kind, name, version),
                       epoch=int(epoch) if epoch else None, release=release)
    if kind == "golang" and version[:1].isdigit():
        version = "v" + version
    return Package(name=name, version=version, type=kind, purl=_purl(kind, name, version))


def _triple(package: Package) -> tuple[str, str, str]:
    ecosystem = next(e for e, kind in OSV_TYPES.items() if kind == package.type)
    version = package.version.removeprefix("v") if package.type == "golang" else package.version
    return ecosystem, package.name, version


def _newest(ecosystem: str, versions: list[str]) -> str:
    """The highest version the data names for a package (Moat's comparator; unparseable ones skipped)."""
    best = versions[0]
    for version in versions[1:]:
        try:
            if compare_versions(ecosystem, version, best) > 0:
                best = version
        except VersionError:
            continue
    return best


def synthetic_inventory(count: int, load: str) -> Inventory:
    """``count`` packages with real names from the advisory data, one per (ecosystem, name) first.

    ``load="worst"``: versions as the records name them (introduced, fixed, listed), further versions
    of the same names once every name is used; most packages are affected by many advisories.
    ``load="typical"``: each name at the highest version the data names (at or past its last fix), so
    every lookup hits real rows but few packages are affected, as in a maintained image. There are
    fewer distinct names than 10,000, so the typical load repeats packages at other paths to fill up.
    """
    by_name: dict[tuple[str, str], list[str]] = {}
    for ecosystem, name, version in _osv_triples():
        versions = by_name.setdefault((ecosystem, name), [])
        if version not in versions:
            versions.append(version)
    if load == "typical":
        by_name = {key: [_newest(key[0], versions)] for key, versions in by_name.items()}
    chosen: list[Package] = []
    depth = 0
    while len(chosen) < count and any(len(v) > depth for v in by_name.values()):
        for (ecosystem, name), versions in by_name.items():
            if len(versions) > depth:
                chosen.append(_package(ecosystem, name, versions[depth]))
                if len(chosen) == count:
                    break
        depth += 1
    distinct = len(chosen)
    while chosen and len(chosen) < count:  # the same package again elsewhere (another venv, another jar)
        original = chosen[len(chosen) % distinct]
        chosen.append(_package(*_triple(original)))
    for index, package in enumerate(chosen):
        package.found_in = f"synthetic/{index}"
    artifact = Artifact(name=f"synthetic-{count}-{load}", type="sbom")
    return Inventory(artifact=artifact, os=OSInfo(family="alma", name="9.2"), packages=chosen)


def match_in_process(db: Path, inventory: Inventory, runs: int) -> tuple[list[float], int, dict[str, int]]:
    """The matcher alone: a fresh Store and matcher per run, packages already in memory."""
    walls = []
    found = 0
    for _ in range(runs):
        copy = Inventory(artifact=inventory.artifact, os=inventory.os, packages=list(inventory.packages))
        start = time.perf_counter()
        with Store(db) as store:
            findings = match_inventory(copy, store)
        walls.append(time.perf_counter() - start)
        found = len(findings)
    mix: dict[str, int] = {}
    for package in inventory.packages:
        mix[package.type] = mix.get(package.type, 0) + 1
    return walls, found, mix


def match_rows(db: Path, work: Path, count: int, runs: int) -> list[list[str]]:
    rows = []
    for load in ("typical", "worst"):
        inventory = synthetic_inventory(count, load)
        walls, found, mix = match_in_process(db, inventory, runs)
        sbom = work / f"synthetic-{count}-{load}.json"
        sbom.write_text(json.dumps(inventory_to_report(inventory, sbom.name)))
        out = work / "sbom-scan.json"
        command = [moat_bin(), "sbom-scan", str(sbom), "--format", "json", "-o", str(out), "--db", str(db), "--quiet"]
        samples = [measure(command) for _ in range(runs)]
        reported = len(json.loads(out.read_text())["vulnerabilities"])
        process = [s[0] for s in samples]
        mix_text = " ".join(f"{k}:{v}" for k, v in sorted(mix.items()))
        print(f"\n{load} SBOM: {mix_text}; {len({(p.type, p.name, p.version) for p in inventory.packages})} distinct")
        rows.append([load, "matcher in process", str(len(inventory.packages)), f"{statistics.median(walls):.3f}",
                     f"{min(walls):.3f}-{max(walls):.3f}", "-", str(found)])
        rows.append([load, "moat sbom-scan (whole process)", str(len(inventory.packages)),
                     f"{statistics.median(process):.3f}", f"{min(process):.3f}-{max(process):.3f}",
                     f"{max(s[1] for s in samples):.0f}", str(reported)])
    return rows


# --------------------------------------------------------------------------------------- 3: moat image


def image_rows(db: Path, work: Path, runs: int) -> list[list[str]]:
    rows = []
    for image in (images.debian_image(), vulnimages.vuln_debian_image()):
        target = image.target("oci-dir")
        for command_name in ("sbom", "image"):
            for cache_state in ("cold", "warm"):
                samples = []
                report: dict[str, Any] = {}
                cache = work / f"cache-{image.name}-{command_name}"
                out = work / "out.json"
                command = [moat_bin(), command_name, target, "--format", "json", "-o", str(out),
                           "--cache-dir", str(cache), "--quiet"]
                if command_name == "image":
                    command += ["--db", str(db)]
                if cache_state == "warm":
                    measure(command)  # fill the layer cache, untimed
                for _ in range(runs):
                    if cache_state == "cold":
                        shutil.rmtree(cache, ignore_errors=True)
                    samples.append(measure(command))
                    report = json.loads(out.read_text())
                shutil.rmtree(cache, ignore_errors=True)
                walls = [s[0] for s in samples]
                rows.append([
                    f"{image.name}:{image.tag}",
                    f"moat {command_name}",
                    cache_state,
                    f"{statistics.median(walls):.2f}",
                    f"{min(walls):.2f}-{max(walls):.2f}",
                    f"{max(s[1] for s in samples):.0f}",
                    str(len(report.get("packages", []))),
                    str(len(report["vulnerabilities"])) if "vulnerabilities" in report else "-",
                ])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--packages", type=int, default=10_000)
    parser.add_argument("--work", type=Path, help="keep scratch files here instead of a deleted temp dir")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="moat-bench-vuln-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        db, db_rows = build_db(work, args.runs)
        print_table(
            "1. moat db update --from (all of vulndata)",
            ["input", "median s", "range s", "peak RSS MB", "db MB", "sources", "advisories"],
            db_rows,
        )
        print_table(
            f"2. matching a {args.packages}-package SBOM against the full database",
            ["load", "what", "packages", "median s", "range s", "peak RSS MB", "findings"],
            match_rows(db, work, args.packages, args.runs),
        )
        print_table(
            "3. moat image vs moat sbom (oci-dir), cold and warm layer cache",
            ["image", "command", "cache", "median s", "range s", "peak RSS MB", "packages", "findings"],
            image_rows(db, work, args.runs),
        )
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
