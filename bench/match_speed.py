"""How fast the matcher turns a 10,000-package inventory into vulnerabilities against the full database.

Run from the repository root with the project venv:

    .venv/bin/python bench/match_speed.py [--packages 10000] [--runs 3] [--db PATH]

The database is built once from ../shared/vulndata with the ingest's own parsers (every OSV zip, the
Debian DSA/DLA lists, KEV and EPSS) into a temp dir, or reused from ``--db``. The
inventory is made of real names and versions taken from the same OSV data (PyPI, Go, crates.io, npm,
Maven, RubyGems, NuGet, Packagist) plus Debian 11 packages from the DSA list's bullseye lines, with a
fixed random seed so every run matches the same inventory. It prints numbers and asserts nothing.

Wall and CPU time are both printed: on a shared machine the CPU time is the steadier number.
"first" is a cold run in a fresh process state (version parse caches empty); the others reuse the
process's parse caches but open a new Store and Matcher each time.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VULNDATA = ROOT.parent / "shared" / "vulndata"

from moat.match.matcher import match_inventory  # noqa: E402
from moat.model import Artifact, Inventory, OSInfo, Package  # noqa: E402
from moat.vulndb.debian import read_dsa_list  # noqa: E402
from moat.vulndb.enrich import read_epss, read_kev  # noqa: E402
from moat.vulndb.osv import RecordError, parse_record  # noqa: E402
from moat.vulndb.store import Store, StoreWriter  # noqa: E402

TYPES = {
    "PyPI": "pypi", "Go": "golang", "crates.io": "cargo", "npm": "npm", "Maven": "maven",
    "RubyGems": "gem", "NuGet": "nuget", "Packagist": "composer",
}  # fmt: skip


def build_db(target: Path) -> float:
    """Every OSV zip, the Debian DSA and DLA lists, KEV and EPSS, through the ingest's parsers."""
    started = time.perf_counter()
    with StoreWriter(target) as writer:
        for archive_path in sorted((VULNDATA / "osv").glob("*.zip")):
            with zipfile.ZipFile(archive_path) as archive:
                for member in archive.namelist():
                    try:
                        writer.add_advisory(*parse_record(json.loads(archive.read(member)), f"osv:{archive_path.stem}"))
                    except RecordError:
                        continue
        for kind in ("DSA", "DLA"):
            for advisory, rows in read_dsa_list(debian_list(kind), kind):
                writer.add_advisory(advisory, rows)
        kev, _ = read_kev(json.loads((VULNDATA / "enrichment" / "known_exploited_vulnerabilities.json").read_bytes()))
        for entry in kev:
            writer.add_kev(entry.cve, entry.date_added, entry.due_date, entry.ransomware, entry.name)
        epss = subprocess.run(
            ["tar", "--zstd", "-xOf", str(VULNDATA / "enrichment" / "epss-scores-by-cve-year.tar.zst")],
            check=True, capture_output=True, text=True,
        ).stdout
        rows, _ = read_epss(epss)
        writer.add_epss(rows)
    return time.perf_counter() - started


def debian_list(kind: str) -> str:
    return subprocess.run(
        ["tar", "--zstd", "-xOf", str(VULNDATA / "raw" / "debian-security-tracker-DSA-DLA-lists-2023-04.tar.zst"),
         f"debian-security-tracker/data/{kind}/list"], check=True, capture_output=True, text=True,
    ).stdout


def language_candidates() -> list[tuple[str, str, str]]:
    """(ecosystem, name, version) triples as the advisories themselves name them."""
    out: list[tuple[str, str, str]] = []
    for archive_path in sorted((VULNDATA / "osv").glob("*.zip")):
        with zipfile.ZipFile(archive_path) as archive:
            for member in archive.namelist():
                record = json.loads(archive.read(member))
                for entry in record.get("affected", []):
                    ecosystem, name = entry["package"]["ecosystem"], entry["package"]["name"]
                    if ecosystem not in TYPES:
                        continue
                    versions = list(entry.get("versions") or [])
                    for rng in entry.get("ranges", []):
                        if rng["type"] != "GIT":
                            versions += [v for e in rng["events"] for v in e.values() if v != "0"]
                    out += [(ecosystem, name, v) for v in versions[:20]]
    return out


def debian_candidates() -> list[tuple[str, str]]:
    text = debian_list("DSA")
    return sorted(set(re.findall(r"^\t\[bullseye\] - (\S+) ([0-9][^\s]*)", text, re.M)))


def make_inventory(count: int, seed: int = 0) -> Inventory:
    """``count`` packages shaped like a big real image: mostly distinct names, a few in two versions.

    A fifth are Debian 11 packages (half at their DSA's fixed version, half just below it); the rest
    are language packages at versions the advisories name (so the matcher has real work to do), one
    or two versions per name, each in its own lockfile.
    """
    rng = random.Random(seed)
    debian = debian_candidates()
    by_name: dict[tuple[str, str], list[str]] = {}
    for ecosystem, name, version in language_candidates():
        by_name.setdefault((ecosystem, name), []).append(version)
    packages: list[Package] = []
    for source, fixed in rng.sample(debian, min(len(debian), count // 5)):
        # dpkg orders "~" before anything, so "+deb11u0~" is below every "+deb11uN"
        version = fixed if rng.random() < 0.5 else fixed.replace("+deb11u", "+deb11u0~", 1)
        packages.append(Package(f"lib{source}", version, "deb", source_name=source, source_version=version,
                                found_in="var/lib/dpkg/status"))
    names = sorted(by_name)
    rng.shuffle(names)
    index = 0
    while len(packages) < count:
        ecosystem, name = names[index % len(names)]
        version = rng.choice(by_name[(ecosystem, name)])
        kind = TYPES[ecosystem]
        packages.append(Package(name, f"v{version}" if ecosystem == "Go" else version, kind,
                                found_in=f"app{index}/{kind}.lock"))
        index += 1
    return Inventory(Artifact("bench", "sbom"), os=OSInfo("debian", "11.7"), packages=packages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--packages", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--db", type=Path, help="reuse (or build into) this database file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="moat-match-bench-") as scratch:
        db = args.db or Path(scratch) / "db" / "vuln.db"
        if not db.exists():
            print(f"building the database from {VULNDATA} …", flush=True)
            print(f"  built in {build_db(db):.1f} s ({db.stat().st_size / 1e6:.0f} MB)")
        with Store(db) as store:
            rows = sum(store.counts_by_ecosystem().values())
        inventory = make_inventory(args.packages)
        distinct = len({(p.type, p.source_name or p.name) for p in inventory.packages})
        print(f"database: {db} ({rows:,} advisory/ecosystem pairs)")
        print(f"inventory: {len(inventory.packages):,} packages, {distinct:,} distinct names")
        times: list[float] = []
        cpu: list[float] = []
        for run in range(args.runs):
            inventory.warnings.clear()
            with Store(db) as store:
                started, started_cpu = time.perf_counter(), time.process_time()
                found = match_inventory(inventory, store)
                times.append(time.perf_counter() - started)
                cpu.append(time.process_time() - started_cpu)
            if run == 0:
                by_type: dict[str, int] = {}
                for vuln in found:
                    by_type[vuln.package_type] = by_type.get(vuln.package_type, 0) + 1
                print(f"findings: {len(found):,} ({', '.join(f'{k} {v:,}' for k, v in sorted(by_type.items()))})")
                for warning in inventory.warnings:
                    print(f"warning: {warning}")
        print(f"match time: first {times[0]:.3f} s, best {min(times):.3f} s over {args.runs} run(s) "
              f"(CPU: first {cpu[0]:.3f} s, best {min(cpu):.3f} s)")


if __name__ == "__main__":
    sys.exit(main())
