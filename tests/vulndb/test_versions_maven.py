"""Maven ordering checked against Maven's own ``ComparableVersion`` (Debian's maven-artifact jar).

Its ``main`` prints how each argument compares with the one before it, so one JVM answers a few
thousand pairs. Pairs come from the Maven OSV zip and a seeded generator over qualifiers, aliases,
separators, leading zeros and digit/letter switches.
"""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest
from test_versions_common import SEED, check_agreement, osv_versions, pairs_from_groups

from moat.vulndb import versions

JAR = Path("/usr/share/maven/lib/maven-artifact-3.x.jar")
OPS = {"<": -1, "==": 0, ">": 1}


def maven_compare(pairs: list[tuple[str, str]]) -> list[int]:
    """One JVM per 2000 pairs; each pair is two consecutive arguments, the answer the line comparing them."""
    answers: list[int] = []
    for start in range(0, len(pairs), 2000):
        chunk = pairs[start : start + 2000]
        args = [v for pair in chunk for v in pair]
        out = subprocess.run(["java", "-cp", str(JAR), "org.apache.maven.artifact.versioning.ComparableVersion", *args],
                             capture_output=True, text=True, check=True)
        lines = [line.split() for line in out.stdout.splitlines() if line.startswith("   ")]
        assert len(lines) == len(args) - 1
        answers += [OPS[lines[i][1]] for i in range(0, len(lines), 2)]
    return answers


def generated(rng: random.Random) -> str:
    text = rng.choice(["1", "2", "0", "01", "10"])
    for _ in range(rng.randint(0, 4)):
        text += rng.choice([".", ".", "-", ""])
        text += rng.choice(["0", "1", "2", "00", "10", "alpha", "a1", "b", "beta", "m2", "milestone", "rc", "cr",
                            "SNAPSHOT", "ga", "final", "release", "sp", "sp1", "foo", "RC1", "Final", "jre", "", "x",
                            "12345678901", "00000000000000000000001", "1234567890123456789012"])
    return text


def test_osv_versions_order_as_maven_orders_them() -> None:
    pairs = pairs_from_groups(osv_versions("Maven.zip"), 4000)
    check_agreement(pairs, maven_compare(pairs), "Maven")


def test_generated_versions_order_as_maven_orders_them() -> None:
    rng = random.Random(SEED)
    pairs = []
    for _ in range(4000):
        a = generated(rng)
        b = generated(rng) if rng.random() < 0.5 else a + rng.choice(["-1", ".0", "-SNAPSHOT", "-sp", "a", ".1", "-0"])
        pairs.append((a, b))
    check_agreement(pairs, maven_compare(pairs), "Maven")


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [("1.0.0", "1", 0), ("1.0-final", "1", 0), ("1-ga", "1-release", 0), ("1-cr1", "1-rc1", 0),
     ("1-alpha", "1-a1", -1), ("1.0-alpha", "1-alpha", 0), ("1-snapshot", "1", -1), ("1-sp", "1", 1),
     ("1-foo", "1-sp", 1), ("1.1", "1-1", 1), ("1-1", "1-sp", 1), ("1.0.RELEASE", "1.0", 0)],
)
def test_documented_rules(a: str, b: str, expected: int) -> None:
    assert maven_compare([(a, b)]) == [expected]
    assert versions.compare("Maven", a, b) == expected


def test_empty_version_is_invalid() -> None:
    assert not versions.is_valid("Maven", "")
    assert versions.is_valid("Maven", "anything-at-all.1")
