"""Packagist ordering checked against composer/semver itself (Debian's php-composer-semver 3.3, PHP):
``VersionParser::normalize`` on each side, then ``Comparator`` on the normalized versions, which is
what Composer does when it matches a constraint.

Pairs come from the Packagist OSV zip and a seeded generator (``v`` prefixes, 1-4 numbers, stability
suffixes in every spelling, ``-dev``, ``.x-dev`` branches, build metadata, date versions, near-misses).
The oracle answers ``x`` where normalize throws or the result is a named ``dev-`` branch.
"""

from __future__ import annotations

import random
import subprocess

from test_versions_common import SEED, osv_versions, pairs_from_groups

from moat.vulndb import versions

ORACLE = r"""<?php
require "/usr/share/php/Composer/Semver/autoload.php";
use Composer\Semver\Comparator;
use Composer\Semver\VersionParser;
$parser = new VersionParser();
while (($line = fgets(STDIN)) !== false) {
    [$a, $b] = explode("\t", rtrim($line, "\n"), 2);
    try {
        $na = $parser->normalize($a);
        $nb = $parser->normalize($b);
    } catch (UnexpectedValueException $e) {
        echo "x\n";
        continue;
    }
    if (strpos($na, "dev-") === 0 || strpos($nb, "dev-") === 0) { echo "x\n"; continue; }
    echo Comparator::lessThan($na, $nb) ? "-1" : (Comparator::equalTo($na, $nb) ? "0" : "1"), "\n";
}
"""


def php_compare(pairs: list[tuple[str, str]]) -> list[int | None]:
    feed = "".join(f"{a}\t{b}\n" for a, b in pairs)
    out = subprocess.run(["php", "-r", ORACLE.removeprefix("<?php\n")], input=feed, capture_output=True,
                         text=True, check=True)
    answers = out.stdout.split()
    assert len(answers) == len(pairs), out.stderr[:300]
    return [None if answer == "x" else int(answer) for answer in answers]


def check(pairs: list[tuple[str, str]], answers: list[int | None]) -> None:
    wrong = []
    for (a, b), answer in zip(pairs, answers, strict=True):
        valid = versions.is_valid("Packagist", a) and versions.is_valid("Packagist", b)
        if answer is None or not valid:
            if (answer is None) == valid:
                wrong.append((a, b, answer, valid))
        elif (got := versions.compare("Packagist", a, b)) != answer:
            wrong.append((a, b, answer, got))
    assert not wrong, f"{len(wrong)} of {len(pairs)} disagree, e.g. {wrong[:8]}"


def generated(rng: random.Random) -> str:
    text = rng.choice(["", "", "v", "V"]) + ".".join(
        rng.choice(["0", "1", "2", "10", "01", "12345"]) for _ in range(rng.randint(1, 4)))
    if rng.random() < 0.5:
        text += rng.choice(["-", ".", "_", ""]) + rng.choice(
            ["alpha", "a", "beta", "b", "RC", "rc", "patch", "pl", "p", "stable", "dev", "ALPHA", "Beta"])
        text += rng.choice(["", "1", "2", "10", ".1", "-2", "1.2"])
    if rng.random() < 0.15:
        text += rng.choice(["-dev", ".x-dev", "+build.1", "@beta", "-foo", "..1", " as 1.0.0"])
    if rng.random() < 0.05:
        text = rng.choice(["2010-01-02", "20100102", "2010.01.02.5", "dev-master", "master", "1.x-dev", "x"])
    return text


def test_osv_versions_order_as_composer_orders_them() -> None:
    pairs = pairs_from_groups(osv_versions("Packagist.zip"), 3000)
    check(pairs, php_compare(pairs))


def test_generated_versions_order_as_composer_orders_them() -> None:
    rng = random.Random(SEED)
    pairs = [(generated(rng), generated(rng)) for _ in range(4000)]
    answers = php_compare(pairs)
    assert 100 < sum(answer is None for answer in answers) < 2000
    check(pairs, answers)


def test_corners() -> None:
    assert versions.compare("Packagist", "v1.2", "1.2.0.0") == 0
    assert versions.compare("Packagist", "1.0.0-p1", "1.0.0-patch1") == 0
    assert versions.compare("Packagist", "1.0.0-stable", "1.0.0") == 0
    assert versions.compare("Packagist", "1.0.0-dev", "1.0.0-alpha1") == -1
    assert versions.compare("Packagist", "1.0.0-RC2", "1.0.0") == -1
    assert versions.compare("Packagist", "1.0.0-pl1", "1.0.0") == 1
    assert not versions.is_valid("Packagist", "dev-main")
