"""How many version comparisons per second Moat's comparators do, per ecosystem.

Prints numbers, asserts nothing. Per ecosystem: "parse/s" is how fast a version string is parsed
without the cache (what the first sight of each version costs), "compare/s" how fast
``versions.compare`` runs on seeded pairs of realistic versions once their parses are cached (the
matching case: one installed version against many range events).
Run: ``.venv/bin/python bench/version_compare.py [--pairs N]``.
"""

from __future__ import annotations

import argparse
import random
import time

from moat.vulndb import versions

SAMPLES: dict[str, list[str]] = {
    "Debian:12": ["1:2.38.1-5+deb12u1", "2.36.1-8", "7.88.1-10+deb12u5", "1.0~rc1-1", "3.0.11-1~deb12u2",
                  "252.22-1~deb12u1", "5.2.15-2+b2", "1:9.2+dfsg-1", "2.7.4+dfsg-1ubuntu0.1", "0.23.22-1.2"],
    "AlmaLinux:9": ["8.7p1-30.el9_2", "2:4.4.20-1.el9", "1.1.1k-5.el9_0", "3.0.7-24.el9", "0:1.2.11-40.el9",
                    "5.14.0-362.8.1.el9_3", "1.0^git1-1.fc38", "2.35.2-24.el9", "1.4~rc1-2.el9", "4.16.1.3-22.el9"],
    "Alpine:v3.19": ["1.36.1-r15", "3.1.4-r5", "1.2.3_rc1-r0", "2.4.58-r1", "1.0_p20231010-r2", "8.5.0-r0",
                     "1.1.1w-r1", "0.9.8z-r0", "3.0.12_git20231010-r0", "1.2.13-r1"],
    "PyPI": ["2.31.0", "1.26.5", "2.0.0rc1", "1.0.post1", "3.0.0.dev4", "1!2.0", "2.11.2", "0.24.0b1",
             "1.26.18+local.1", "42.0.5"],
    "npm": ["4.17.21", "1.2.3-beta.4", "0.0.0-20191109", "10.2.4", "7.0.0-rc.1", "2.6.9", "18.2.0", "0.21.1",
            "5.0.0-alpha.10", "1.0.0"],
    "Go": ["v1.2.3", "0.0.0-20191109021931-daa7c04131f5", "1.21.5", "v2.0.0+incompatible", "1.9.0-rc.2",
           "0.17.0", "1.4.2", "v0.0.0-20230101000000-abcdef123456", "1.20.12", "0.3.7"],
    "crates.io": ["1.0.197", "0.4.31", "2.0.0-alpha.1", "0.3.28", "1.35.1", "0.11.22", "1.0.0-rc.3", "0.9.8",
                  "0.2.153", "1.6.0"],
    "Maven": ["2.14.1", "5.3.31", "1.0-SNAPSHOT", "2.0.0.Final", "3.2.1-jre", "9.4.51.v20230217", "1.7.36",
              "6.0.0-M1", "2.17.2", "1.0.0-rc1"],
    "NuGet": ["13.0.3", "6.0.0-preview.7.21377.19", "4.3.0", "1.0.0.0", "8.0.0", "2.2.0-beta1", "12.0.1",
              "5.0.17", "7.0.0-rc.2.22472.3", "3.1.32"],
    "RubyGems": ["7.1.3", "2.2.8.1", "1.15.5", "3.0.0.beta2", "6.1.7.7", "1.0.0.pre.rc1", "5.2.8", "0.9.2",
                 "2.8.6", "13.0.6"],
    "Packagist": ["v5.4.21", "1.2.3", "2.0.0-beta2", "6.4.0-RC1", "9.52.16", "1.0.x-dev", "3.3.2", "v2.8.52",
                  "1.0.0-p1", "10.0.0"],
}


def parse_rate(ecosystem: str, samples: list[str], rounds: int) -> float:
    module = __import__(f"moat.vulndb.versions.{versions.scheme_of(ecosystem)}", fromlist=["parse"])
    uncached = module.parse.__wrapped__
    start = time.perf_counter()
    for _ in range(rounds):
        for version in samples:
            uncached(version)
    return rounds * len(samples) / (time.perf_counter() - start)


def compare_rate(ecosystem: str, pairs: list[tuple[str, str]]) -> float:
    start = time.perf_counter()
    for a, b in pairs:
        versions.compare(ecosystem, a, b)
    return len(pairs) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=200_000, help="comparisons per ecosystem and run")
    args = parser.parse_args()
    rng = random.Random(1)
    print(f"{'ecosystem':<14} {'parse/s':>12} {'compare/s':>12}")
    for ecosystem, samples in SAMPLES.items():
        pairs = [(rng.choice(samples), rng.choice(samples)) for _ in range(args.pairs)]
        parsed = parse_rate(ecosystem, samples, max(1, args.pairs // 100))
        compared = compare_rate(ecosystem, pairs)
        print(f"{ecosystem:<14} {parsed:>12,.0f} {compared:>12,.0f}")


if __name__ == "__main__":
    main()
