"""npm, Go and crates.io ordering checked against each ecosystem's own implementation:
node-semver (``semver.compare``, installed from the npm registry into a temp dir), Go's
golang.org/x/mod/semver (Debian's golang-golang-x-mod-dev, built in GOPATH mode) and Rust's ``semver``
crate (Debian's librust-semver-dev, built offline with cargo).

Each oracle answers -1/0/1, or ``x`` when it rejects a version, so the same runs check validity:
the generator deliberately produces near-misses (leading zeros, missing parts, ``v``/``=`` prefixes,
empty identifiers) as well as valid versions.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest
from test_versions_common import SEED, osv_versions, pairs_from_groups

from moat.vulndb import versions

NODE_ORACLE = r"""
const semver = require(process.argv[2]);
const lines = require("fs").readFileSync(0, "utf8").split("\n").filter(Boolean);
const out = lines.map((line) => {
  const [a, b] = line.split("\t");
  if (semver.valid(a) === null || semver.valid(b) === null) return "x";
  return String(semver.compare(a, b));
});
process.stdout.write(out.join("\n") + "\n");
"""

GO_ORACLE = r"""package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"golang.org/x/mod/semver"
)

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	for in.Scan() {
		f := strings.SplitN(in.Text(), "\t", 2)
		if !semver.IsValid(f[0]) || !semver.IsValid(f[1]) {
			fmt.Println("x")
			continue
		}
		fmt.Println(semver.Compare(f[0], f[1]))
	}
}
"""

RUST_ORACLE = r"""use std::io::BufRead;

fn main() {
    for line in std::io::stdin().lock().lines() {
        let line = line.unwrap();
        let (a, b) = line.split_once('\t').unwrap();
        match (semver::Version::parse(a), semver::Version::parse(b)) {
            // Precedence: the crate's Ord also compares build metadata, SemVer precedence does not.
            (Ok(x), Ok(y)) => {
                let order = (x.major, x.minor, x.patch, &x.pre).cmp(&(y.major, y.minor, y.patch, &y.pre));
                println!("{}", order as i8)
            }
            _ => println!("x"),
        }
    }
}
"""


Oracle = list[str]


def run_oracle(command: list[str], pairs: list[tuple[str, str]], **kwargs: object) -> list[int | None]:
    feed = "".join(f"{a}\t{b}\n" for a, b in pairs)
    out = subprocess.run(command, input=feed, capture_output=True, text=True, check=True, **kwargs)  # type: ignore[call-overload]
    answers = out.stdout.split()
    assert len(answers) == len(pairs), out.stderr[:500]
    return [None if answer == "x" else int(answer) for answer in answers]


@pytest.fixture(scope="module")
def node_semver(tmp_path_factory: pytest.TempPathFactory) -> Oracle:
    where = tmp_path_factory.mktemp("node-semver")
    subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(where), "semver@7"],
                   check=True, capture_output=True)
    script = where / "oracle.js"
    script.write_text(NODE_ORACLE)
    return ["node", str(script), str(where / "node_modules/semver")]


@pytest.fixture(scope="module")
def go_semver(tmp_path_factory: pytest.TempPathFactory) -> Oracle:
    where = tmp_path_factory.mktemp("go-semver")
    (where / "main.go").write_text(GO_ORACLE)
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": "/usr/share/gocode", "GOCACHE": str(where / "cache")}
    subprocess.run(["go", "build", "-o", str(where / "oracle"), str(where / "main.go")], check=True, env=env,
                   capture_output=True)
    return [str(where / "oracle")]


@pytest.fixture(scope="module")
def rust_semver(tmp_path_factory: pytest.TempPathFactory) -> Oracle:
    where = tmp_path_factory.mktemp("rust-semver")
    (where / "src").mkdir()
    (where / "src/main.rs").write_text(RUST_ORACLE)
    (where / "Cargo.toml").write_text('[package]\nname = "oracle"\nversion = "0.1.0"\nedition = "2021"\n\n'
                                      '[dependencies]\nsemver = "1"\n')
    (where / ".cargo").mkdir()
    (where / ".cargo/config.toml").write_text('[source.crates-io]\nreplace-with = "debian"\n\n'
                                              '[source.debian]\ndirectory = "/usr/share/cargo/registry"\n')
    cargo = shutil.which("cargo") or str(Path.home() / ".cargo/bin/cargo")
    subprocess.run([cargo, "build", "--offline", "-q", "--release"], cwd=where, check=True, capture_output=True)
    return [str(where / "target/release/oracle")]


def generated(rng: random.Random, *, dirty: bool) -> str:
    core = ".".join(rng.choice(["0", "1", "2", "10", "11"]) for _ in range(3))
    if rng.random() < 0.5:
        ids = [rng.choice(["alpha", "beta", "rc", "0", "1", "2", "10", "a-b", "-", "0a", "x.y", "RC"])
               for _ in range(rng.randint(1, 3))]
        core += "-" + ".".join(ids)
    if rng.random() < 0.2:
        core += "+" + rng.choice(["build", "001", "sha.5114f85", "incompatible", "exp.sha.1"])
    if dirty and rng.random() < 0.4:
        edits = [
            lambda v: "v" + v, lambda v: "=" + v, lambda v: "0" + v, lambda v: v.replace(".", ".0", 1),
            lambda v: v.split(".", 1)[0], lambda v: ".".join(v.split(".")[:2]), lambda v: v + "-",
            lambda v: v + "-01", lambda v: v + "..", lambda v: v + "+", lambda v: v.upper(), lambda v: v + "-a_b",
        ]
        core = rng.choice(edits)(core)
    return core


def generated_pairs(*, dirty: bool, count: int = 3000) -> list[tuple[str, str]]:
    rng = random.Random(SEED)
    pairs = []
    for _ in range(count):
        a = generated(rng, dirty=dirty)
        b = generated(rng, dirty=dirty) if rng.random() < 0.6 else a.split("+")[0] + rng.choice(
            ["-0", "-alpha", ".1", "-1.a", "+b", "-rc.1"])
        pairs.append((a, b))
    return pairs


def check(pairs: list[tuple[str, str]], answers: list[int | None], ecosystem: str) -> None:
    wrong = []
    for (a, b), answer in zip(pairs, answers, strict=True):
        if answer is None:
            if versions.is_valid(ecosystem, a) and versions.is_valid(ecosystem, b):
                wrong.append((a, b, "oracle rejects", "moat accepts"))
        elif not (versions.is_valid(ecosystem, a) and versions.is_valid(ecosystem, b)):
            wrong.append((a, b, answer, "moat rejects"))
        elif (got := versions.compare(ecosystem, a, b)) != answer:
            wrong.append((a, b, answer, got))
    assert not wrong, f"{len(wrong)} of {len(pairs)} disagree, e.g. {wrong[:8]}"
    assert sum(answer is not None for answer in answers) > len(pairs) // 2


def test_npm_generated(node_semver: Oracle) -> None:
    pairs = generated_pairs(dirty=True)
    check(pairs, run_oracle(node_semver, pairs), "npm")


def test_npm_osv_versions(node_semver: Oracle) -> None:
    pairs = pairs_from_groups(osv_versions("npm.zip"), 3000)
    check(pairs, run_oracle(node_semver, pairs), "npm")


def test_go_generated(go_semver: Oracle) -> None:
    pairs = generated_pairs(dirty=True)
    go_pairs = [(a if a.startswith("v") else "v" + a, b if b.startswith("v") else "v" + b) for a, b in pairs]
    check(go_pairs, run_oracle(go_semver, go_pairs), "Go")


def test_go_osv_versions_with_and_without_v(go_semver: Oracle) -> None:
    pairs = pairs_from_groups(osv_versions("Go.zip"), 3000)
    go_pairs = [("v" + a, "v" + b) for a, b in pairs]
    answers = run_oracle(go_semver, go_pairs)
    check(go_pairs, answers, "Go")
    check(pairs, answers, "Go")  # OSV writes Go versions without the v; the order is the same


def test_crates_generated(rust_semver: Oracle) -> None:
    pairs = generated_pairs(dirty=True)
    check(pairs, run_oracle(rust_semver, pairs), "crates.io")


def test_crates_osv_versions(rust_semver: Oracle) -> None:
    pairs = pairs_from_groups(osv_versions("crates.io.zip"), 3000)
    check(pairs, run_oracle(rust_semver, pairs), "crates.io")


def test_go_pseudo_versions_and_incompatible() -> None:
    assert versions.compare("Go", "v0.0.0-20191109021931-daa7c04131f5", "v0.0.1") == -1
    assert versions.compare("Go", "v1.2.4-0.20191109021931-daa7c04131f5", "v1.2.3") == 1
    assert versions.compare("Go", "v2.0.0+incompatible", "2.0.0") == 0
    assert versions.compare("Go", "v1", "1.0.0") == 0
