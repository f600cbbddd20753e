"""Time ``moat db update`` on the shared real feeds and report the resulting database size.

Usage: .venv/bin/python bench/db_update.py [SHARED_DIR]

Runs the real command line three times into a fresh cache: a cold build from every feed, the same
update again (every file unchanged: OSV, KEV and EPSS are carried over, Debian and Alpine re-read),
and an export of the result. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared"
DATA = SHARED / "vulndata"
SOURCES = [
    DATA / "osv",
    DATA / "raw" / "debian-security-tracker-DSA-DLA-lists-2023-04.tar.zst",
    DATA / "raw" / "alpine-secdb-v3.3-v3.11-legacy.tar.zst",
    DATA / "enrichment" / "known_exploited_vulnerabilities.json",
    DATA / "enrichment" / "epss-scores-by-cve-year.tar.zst",
]
MOAT = [str(ROOT / ".venv" / "bin" / "moat")]


def run(args: list[str], cache: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        [*MOAT, *args, "--cache-dir", str(cache)],
        check=True,
        capture_output=True,
        env={**os.environ, "MOAT_CACHE_DIR": str(cache)},
    )
    return time.perf_counter() - start


def main() -> None:
    froms = [arg for source in SOURCES for arg in ("--from", str(source))]
    input_bytes = sum(
        p.stat().st_size for s in SOURCES for p in ([s] if s.is_file() else sorted(s.glob("*"))) if p.is_file()
    )
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp)
        cold = run(["db", "update", *froms, "-q"], cache)
        db = cache / "db" / "vuln.db"
        size = db.stat().st_size
        warm = run(["db", "update", *froms, "-q"], cache)
        export = cache / "export.tar"
        exported = run(["db", "export", str(export)], cache)
        imported = run(["db", "import", str(export)], cache)
        status = subprocess.run(
            [*MOAT, "db", "status", "--cache-dir", str(cache)], check=True, capture_output=True, text=True
        ).stdout
    print(f"inputs: {len(SOURCES)} --from, {input_bytes / 1e6:.1f} MB compressed")
    print(f"cold update:               {cold:6.1f} s")
    print(f"unchanged update (carry):  {warm:6.1f} s")
    print(f"export / import:           {exported:6.1f} s / {imported:.1f} s")
    print(f"database size:             {size / 1e6:6.1f} MB")
    print(status)


if __name__ == "__main__":
    main()
