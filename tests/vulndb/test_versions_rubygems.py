"""RubyGems ordering checked against Ruby's own ``Gem::Version`` (Debian's ruby 3.1, RubyGems 3.3).

One ruby process answers every pair (``x`` when ``Gem::Version.correct?`` rejects a side). Pairs come
from the RubyGems OSV zip, the gems installed on this machine and a seeded generator (pre-release
letters, ``-`` parts, trailing zeros, case, near-misses such as ``1..0`` or a leading letter).
"""

from __future__ import annotations

import random
import subprocess

from test_versions_common import SEED, osv_versions, pairs_from_groups

from moat.vulndb import versions

ORACLE = r"""
STDIN.each_line do |line|
  a, b = line.chomp("\n").split("\t", 2)
  if Gem::Version.correct?(a) && Gem::Version.correct?(b)
    puts(Gem::Version.new(a) <=> Gem::Version.new(b))
  else
    puts "x"
  end
end
"""


def ruby_compare(pairs: list[tuple[str, str]]) -> list[int | None]:
    feed = "".join(f"{a}\t{b}\n" for a, b in pairs)
    out = subprocess.run(["ruby", "-e", ORACLE], input=feed, capture_output=True, text=True, check=True)
    answers = out.stdout.split()
    assert len(answers) == len(pairs)
    return [None if answer == "x" else int(answer) for answer in answers]


def check(pairs: list[tuple[str, str]], answers: list[int | None]) -> None:
    wrong = []
    for (a, b), answer in zip(pairs, answers, strict=True):
        valid = versions.is_valid("RubyGems", a) and versions.is_valid("RubyGems", b)
        if answer is None or not valid:
            if (answer is None) == valid:
                wrong.append((a, b, answer, valid))
        elif (got := versions.compare("RubyGems", a, b)) != answer:
            wrong.append((a, b, answer, got))
    assert not wrong, f"{len(wrong)} of {len(pairs)} disagree, e.g. {wrong[:8]}"


def installed_gem_versions() -> dict[str, tuple[str, ...]]:
    out = subprocess.run(["ruby", "-e", "Gem::Specification.each { |s| puts s.version.to_s }"],
                         capture_output=True, text=True, check=True)
    return {"installed": tuple(sorted(set(out.stdout.split())))}


def generated(rng: random.Random) -> str:
    text = rng.choice(["0", "1", "2", "10", "01"])
    for _ in range(rng.randint(0, 4)):
        text += rng.choice([".", ".", ".", "-", ""]) + rng.choice(
            ["0", "1", "2", "00", "10", "a", "b", "pre", "rc", "rc1", "beta2", "A", "Z", "0a", "x-y"])
    if rng.random() < 0.1:
        text = rng.choice(["v", " ", "", "1..", "-"]) + text + rng.choice(["", " ", "_1", "."])
    return text


def test_osv_versions_order_as_ruby_orders_them() -> None:
    pairs = pairs_from_groups(osv_versions("RubyGems.zip"), 3000)
    check(pairs, ruby_compare(pairs))


def test_installed_gem_versions_order_as_ruby_orders_them() -> None:
    groups = installed_gem_versions()
    assert len(groups["installed"]) > 10
    pairs = pairs_from_groups(groups, 500)
    check(pairs, ruby_compare(pairs))


def test_generated_versions_order_as_ruby_orders_them() -> None:
    rng = random.Random(SEED)
    pairs = []
    for _ in range(4000):
        a = generated(rng)
        b = generated(rng) if rng.random() < 0.5 else a + rng.choice([".0", ".a", "-1", ".1", "a", ".pre"])
        pairs.append((a, b))
    answers = ruby_compare(pairs)
    assert sum(answer is None for answer in answers) > 50  # the near-misses really are rejected by Ruby
    check(pairs, answers)


def test_corners() -> None:
    assert versions.compare("RubyGems", "1.0.a", "1.0") == -1
    assert versions.compare("RubyGems", "1.0-1", "1.0.pre.1") == 0
    assert versions.compare("RubyGems", " 1.0 ", "1") == 0
    assert not versions.is_valid("RubyGems", "")  # Ruby would read "" as "0"; empty is broken data here
