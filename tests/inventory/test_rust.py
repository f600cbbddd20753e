"""Cargo.lock against the shared corpus; cargo-auditable data in ELF files made with the real objcopy.

crates.io is out of reach, so no cargo-auditable binary can be built here: the tests add a
``.dep-v0`` section, zlib-compressed JSON in the documented cargo-auditable format, to a copy of
/bin/true with binutils' ``objcopy --add-section``.
"""

from __future__ import annotations

import io
import json
import shutil
import struct
import subprocess
import zlib
from pathlib import Path
from typing import Any

import pytest
from elftools.elf.elffile import ELFFile

from corpus import cases, check_case, prefilter_accepts
from moat.errors import ParseError
from moat.inventory.analyzer import FileInput
from moat.inventory.analyzers.cargo_lock import CargoLockAnalyzer
from moat.inventory.analyzers.rust_binary import RustBinaryAnalyzer
from moat.model import Package

CORPUS_CARGO = cases("packages", "cargo")

AUDIT_DATA: dict[str, Any] = {
    "packages": [
        {"name": "app", "version": "0.1.0", "source": "local", "dependencies": [1, 2, 4], "root": True},
        {"name": "regex", "version": "1.7.3", "source": "crates.io", "dependencies": [3]},
        {"name": "serde", "version": "1.0.152", "source": "crates.io", "dependencies": [5]},
        {"name": "memchr", "version": "2.5.0", "source": "crates.io"},
        {"name": "cc", "version": "1.0.79", "source": "crates.io", "kind": "build"},
        {"name": "serde_derive", "version": "1.0.152", "source": "crates.io", "kind": "build"},
        {"name": "fork", "version": "0.2.0", "source": "git", "dependencies": [], "kind": "runtime"},
    ]
}


def objcopy_with_section(tmp_path: Path, payload: bytes, name: str = ".dep-v0") -> Path:
    """A copy of /bin/true with ``payload`` added as a section by the real objcopy."""
    (tmp_path / "section.bin").write_bytes(payload)
    shutil.copy("/bin/true", tmp_path / "plain")
    subprocess.run(
        ["objcopy", "--add-section", f"{name}={tmp_path / 'section.bin'}", str(tmp_path / "plain"),
         str(tmp_path / "audited")],
        check=True,
    )
    return tmp_path / "audited"


def analyze(path: Path | str, image_path: str = "usr/local/bin/app") -> list[Package]:
    data = Path(path).read_bytes()
    return RustBinaryAnalyzer().analyze(FileInput(image_path, io.BytesIO(data), len(data), 0o755)).packages


def analyze_bytes(data: bytes) -> list[Package]:
    return RustBinaryAnalyzer().analyze(FileInput("usr/bin/x", io.BytesIO(data), len(data), 0o755)).packages


# --- Cargo.lock --------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CORPUS_CARGO, ids=[c.name for c in CORPUS_CARGO])
def test_cargo_corpus(case) -> None:  # type: ignore[no-untyped-def]
    check_case(CargoLockAnalyzer(), case, "cargo")


def test_cargo_lock_purls_and_sources() -> None:
    text = """version = 3

[[package]]
name = "app"
version = "0.1.0"
dependencies = ["rand 0.8.5", "mylib"]

[[package]]
name = "mylib"
version = "0.2.0"
source = "git+https://example.invalid/mylib?rev=abc#abc"

[[package]]
name = "rand"
version = "0.8.5"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "34af8d1a0e25924bc5b7c43c079c942339d8f0a8b57c39049bef581b46327404"
"""
    data = text.encode()
    packages = CargoLockAnalyzer().analyze(FileInput("src/Cargo.lock", io.BytesIO(data), len(data))).packages
    by_name = {p.name: p for p in packages}
    assert by_name["app"].depends_on == ["mylib@0.2.0", "rand@0.8.5"]
    assert by_name["rand"].purl == "pkg:cargo/rand@0.8.5"
    assert "source" not in by_name["rand"].extra
    assert by_name["mylib"].extra["source"].startswith("git+")
    assert all(p.found_in == "src/Cargo.lock" and p.type == "cargo" for p in packages)
    assert prefilter_accepts(CargoLockAnalyzer(), "src/Cargo.lock")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[package]]\nname = "x"\nversion =\n', "not valid TOML"),
        ('[[package]]\nname = "x"\n', "lacks a name or version"),
        ('package = "x"\n', "not an array"),
        ('[[package]]\nname = "x"\nversion = "1"\ndependencies = [1]\n', "not a list of strings"),
        ("a = " + "[" * 5000 + "]" * 5000 + "\n", "not valid TOML"),
    ],
)
def test_bad_cargo_lock_is_a_parse_error(text: str, message: str) -> None:
    data = text.encode()
    with pytest.raises(ParseError, match=message):
        CargoLockAnalyzer().analyze(FileInput("Cargo.lock", io.BytesIO(data), len(data)))


# --- cargo-auditable ---------------------------------------------------------------------------


def test_auditable_section_from_objcopy(tmp_path: Path) -> None:
    binary = objcopy_with_section(tmp_path, zlib.compress(json.dumps(AUDIT_DATA).encode()))
    with binary.open("rb") as stream:  # the section really is there, as objcopy wrote it
        assert ELFFile(stream).get_section_by_name(".dep-v0") is not None
    packages = analyze(binary)
    by_name = {p.name: p for p in packages}
    # build-time crates (cc, serde_derive) are not part of the program
    assert set(by_name) == {"app", "regex", "serde", "memchr", "fork"}
    assert by_name["app"].relationship == "root"
    assert by_name["app"].depends_on == ["regex@1.7.3", "serde@1.0.152"]
    assert by_name["regex"].relationship == "direct"
    assert by_name["regex"].depends_on == ["memchr@2.5.0"]
    assert by_name["memchr"].relationship == "indirect"
    assert by_name["serde"].depends_on == []  # its only dependency is a build-time proc-macro
    assert by_name["fork"].extra == {"source": "git"}
    assert by_name["regex"].purl == "pkg:cargo/regex@1.7.3"
    assert all(p.found_in == "usr/local/bin/app" and p.type == "cargo" for p in packages)


def test_plain_binaries_and_scripts_give_nothing(tmp_path: Path) -> None:
    assert analyze("/bin/true") == []
    script = tmp_path / "run"
    script.write_text("#!/bin/sh\nexit 0\n")
    assert analyze(script) == []
    assert prefilter_accepts(RustBinaryAnalyzer(), "usr/bin/x", 0o755)
    assert not prefilter_accepts(RustBinaryAnalyzer(), "usr/share/x", 0o644)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"not zlib at all", "not zlib"),
        (zlib.compress(b"{not json"), "not JSON"),
        (zlib.compress(b"[]"), "no 'packages'"),
        (zlib.compress(json.dumps({"packages": [{"name": "a"}]}).encode()), "lacks a name or version"),
        (
            zlib.compress(json.dumps({"packages": [{"name": "a", "version": "1", "dependencies": [7]}]}).encode()),
            "out of range",
        ),
        (zlib.compress(json.dumps({"packages": [{"name": "a", "version": "1", "dependencies": [-1]}]}).encode()),
         "bad dependency"),
        (zlib.compress(b" " * (40 * 1024 * 1024)), "inflates past"),  # a zlib bomb: 40 MiB of spaces
        (zlib.compress(b"[" * 100_000 + b"]" * 100_000), "not JSON"),
    ],
)
def test_bad_audit_data_is_a_parse_error(tmp_path: Path, payload: bytes, message: str) -> None:
    binary = objcopy_with_section(tmp_path, payload)
    with pytest.raises(ParseError, match=message):
        analyze(binary)


def test_section_size_past_the_file_is_a_parse_error(tmp_path: Path) -> None:
    binary = objcopy_with_section(tmp_path, zlib.compress(json.dumps(AUDIT_DATA).encode()))
    data = bytearray(binary.read_bytes())
    with binary.open("rb") as stream:
        elf = ELFFile(stream)
        index = next(i for i, s in enumerate(elf.iter_sections()) if s.name == ".dep-v0")
        header_at = elf["e_shoff"] + index * elf["e_shentsize"]
    data[header_at + 32 : header_at + 40] = struct.pack("<Q", 2**40)  # sh_size: a terabyte
    with pytest.raises(ParseError, match="over the"):
        analyze_bytes(bytes(data))
    data[header_at + 32 : header_at + 40] = struct.pack("<Q", 4 * 1024 * 1024)  # within limits, past EOF
    with pytest.raises(ParseError, match="past the end"):
        analyze_bytes(bytes(data))
