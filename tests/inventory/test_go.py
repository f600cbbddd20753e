"""Go analyzers against the real Go toolchain: binaries it builds, ``go version -m``, ``go mod edit -json``.

Needs Debian's golang-go and binutils (scripts/install-system-deps installs them).
"""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from packageurl import PackageURL

from corpus import cases, check_case, prefilter_accepts
from moat.errors import ParseError
from moat.inventory.analyzer import FileInput
from moat.inventory.analyzers.go_binary import GoBinaryAnalyzer, ldflags_version, stdlib_version
from moat.inventory.analyzers.go_mod import GoModAnalyzer, GoSumAnalyzer, parse_gomod
from moat.inventory.binfmt.executable import open_executable
from moat.model import Package

CORPUS_GOMOD = cases("packages", "gomod")
CORPUS_GOSUM = cases("packages", "gosum")
DEBIAN_GO_BINARIES = ["/usr/bin/skopeo", "/usr/bin/umoci", "/usr/bin/docker-registry"]
MODINFO_START = bytes.fromhex("3077af0c9274080241e1c107e6d618e6")
MODINFO_END = bytes.fromhex("f932433186182072008242104116d8f2")


def go_tool() -> str:
    found = shutil.which("go")
    assert found, "the Go toolchain is missing: run scripts/install-system-deps (golang-go)"
    return found


def go_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(GOFLAGS="-mod=vendor", GOPROXY="off", GO111MODULE="on", CGO_ENABLED="0", GOTOOLCHAIN="local")
    return env


def analyze_path(path: Path | str, image_path: str = "usr/bin/app", mode: int = 0o755) -> list[Package]:
    data = Path(path).read_bytes()
    return GoBinaryAnalyzer().analyze(FileInput(image_path, io.BytesIO(data), len(data), mode)).packages


def analyze_bytes(data: bytes, image_path: str = "usr/bin/app") -> list[Package]:
    return GoBinaryAnalyzer().analyze(FileInput(image_path, io.BytesIO(data), len(data), 0o755)).packages


def expected_from_go_version_m(binary: Path | str) -> set[tuple[str, str]]:
    """What ``go version -m`` says is in the binary, as (module, version) pairs Moat should report."""
    out = subprocess.run([go_tool(), "version", "-m", str(binary)], capture_output=True, text=True, check=True)
    lines = out.stdout.splitlines()
    go_version = lines[0].rsplit(": ", 1)[1].split()[0]
    found = {("stdlib", "v" + go_version.removeprefix("go"))}
    rows = [line.strip("\t").split("\t") for line in lines[1:]]
    for index, row in enumerate(rows):
        if row[0] == "mod":
            found.add((row[1], "" if row[2] == "(devel)" else row[2]))
        if row[0] != "dep":
            continue
        replaced = index + 1 < len(rows) and rows[index + 1][0] == "=>"
        if not replaced:
            found.add((row[1], row[2]))
            continue
        new = rows[index + 1] + [""] * 3
        if new[2] in ("", "(devel)"):
            found.add((row[1], ""))  # a local directory stands in for the module
        else:
            found.add((new[1], new[2]))
    return found


def pairs(packages: list[Package]) -> set[tuple[str, str]]:
    return {(p.name, p.version) for p in packages}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A module with vendored, replaced and locally replaced deps, built for four targets."""
    root = tmp_path_factory.mktemp("goapp")
    files = {
        "go.mod": "module example.com/app\n\ngo 1.19\n\nrequire (\n\texample.com/greet v1.2.3\n"
        "\texample.com/old v1.0.0\n\texample.com/local v0.0.0\n)\n\n"
        "replace example.com/old => example.com/new v0.4.0\n\nreplace example.com/local => ./local\n",
        "vendor/example.com/greet/greet.go": 'package greet\n\nfunc Hello() string { return "hi" }\n',
        "vendor/example.com/old/old.go": 'package old\n\nfunc Name() string { return "new" }\n',
        "vendor/example.com/local/local.go": 'package local\n\nfunc Name() string { return "local" }\n',
        "local/go.mod": "module example.com/local\n",
        "vendor/modules.txt": "# example.com/greet v1.2.3\n## explicit\nexample.com/greet\n"
        "# example.com/local v0.0.0 => ./local\n## explicit\nexample.com/local\n"
        "# example.com/old v1.0.0 => example.com/new v0.4.0\n## explicit\nexample.com/old\n"
        "# example.com/local => ./local\n# example.com/old => example.com/new v0.4.0\n",
        "main.go": 'package main\n\nimport (\n\t"fmt"\n\n\t"example.com/greet"\n\t"example.com/local"\n'
        '\t"example.com/old"\n)\n\nvar version = "dev"\n\n'
        "func main() { fmt.Println(greet.Hello(), old.Name(), local.Name(), version) }\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    targets = {
        "linux-amd64": ({"GOOS": "linux", "GOARCH": "amd64"}, []),
        "linux-386": ({"GOOS": "linux", "GOARCH": "386"}, []),
        "windows-amd64.exe": ({"GOOS": "windows", "GOARCH": "amd64"}, []),
        "darwin-amd64": ({"GOOS": "darwin", "GOARCH": "amd64"}, []),
        "ldflags": ({"GOOS": "linux", "GOARCH": "amd64"}, ["-ldflags", "-s -w -X main.version=v0.3.1"]),
    }
    out = {}
    for name, (extra_env, flags) in targets.items():
        target = root / "bin" / name
        subprocess.run(
            [go_tool(), "build", *flags, "-o", str(target), "."],
            cwd=root, env={**go_env(), **extra_env}, check=True, capture_output=True,
        )
        out[name] = target
    stripped = root / "bin" / "stripped"
    shutil.copy(out["linux-amd64"], stripped)
    subprocess.run(["strip", "--strip-all", str(stripped)], check=True)
    out["stripped"] = stripped
    return out


# --- Go binaries -------------------------------------------------------------------------------


@pytest.mark.parametrize("binary", [*DEBIAN_GO_BINARIES, "go"])
def test_debian_go_binaries_match_go_version_m(binary: str) -> None:
    path = os.path.realpath(go_tool()) if binary == "go" else binary
    packages = analyze_path(path, image_path=path.lstrip("/"))
    assert pairs(packages) == expected_from_go_version_m(path)
    stdlib = [p for p in packages if p.name == "stdlib"]
    assert len(stdlib) == 1 and stdlib[0].version.startswith("v1.")
    assert all(p.found_in == path.lstrip("/") and p.type == "golang" for p in packages)


@pytest.mark.parametrize("target", ["linux-amd64", "linux-386", "windows-amd64.exe", "darwin-amd64", "stripped"])
def test_built_binaries_match_go_version_m(built: dict[str, Path], target: str) -> None:
    packages = analyze_path(built[target])
    assert pairs(packages) == expected_from_go_version_m(built[target])
    by_name = {p.name: p for p in packages}
    # the replacement is what is compiled in; the local directory keeps the module's own path
    assert by_name["example.com/new"].version == "v0.4.0"
    assert by_name["example.com/new"].extra["replaces"] == "example.com/old@v1.0.0"
    assert by_name["example.com/local"].extra["replaced_by"] == "./local"
    assert "example.com/old" not in by_name
    root = by_name["example.com/app"]
    assert root.relationship == "root" and root.version == ""
    assert set(root.depends_on) == {p.id for p in packages if p is not root}
    assert by_name["example.com/greet"].purl == "pkg:golang/example.com/greet@v1.2.3"


def test_main_module_version_from_ldflags(built: dict[str, Path]) -> None:
    out = subprocess.run([go_tool(), "version", "-m", str(built["ldflags"])], capture_output=True, text=True)
    assert '-ldflags="-s -w -X main.version=v0.3.1"' in out.stdout  # the setting really is recorded quoted
    by_name = {p.name: p for p in analyze_path(built["ldflags"])}
    assert by_name["example.com/app"].version == "v0.3.1"
    assert by_name["example.com/app"].purl == "pkg:golang/example.com/app@v0.3.1"


def _link_old_format_binary(tmp_path: Path, pointer_size: int, modinfo: str, go_version: str) -> Path:
    """An ELF linked by the real ``ld`` whose build info uses the pre-Go-1.18 pointer layout."""
    base = 0x800000
    framed = MODINFO_START + modinfo.encode() + MODINFO_END
    word = "<I" if pointer_size == 4 else "<Q"
    version = go_version.encode()
    version_header, modinfo_header = base + 32, base + 32 + 2 * pointer_size
    version_data = modinfo_header + 2 * pointer_size
    modinfo_data = version_data + len(version)
    header = b"\xff Go buildinf:" + bytes([pointer_size, 0])
    header += struct.pack(word, version_header) + struct.pack(word, modinfo_header)
    header = header.ljust(32, b"\0")
    pair = word[0] + word[1] * 2
    blob = header + struct.pack(pair, version_data, len(version))
    blob += struct.pack(pair, modinfo_data, len(framed)) + version + framed
    (tmp_path / "blob.bin").write_bytes(blob)
    target, arch, emulation = (
        ("elf32-i386", "i386", "elf_i386") if pointer_size == 4 else ("elf64-x86-64", "i386:x86-64", "elf_x86_64")
    )
    subprocess.run(
        ["objcopy", "-I", "binary", "-O", target, "-B", arch,
         "--rename-section", ".data=.go.buildinfo,alloc,load,data,contents", "blob.bin", "blob.o"],
        cwd=tmp_path, check=True,
    )
    subprocess.run(
        ["ld", "-m", emulation, "-e", hex(base), f"--section-start=.go.buildinfo={hex(base)}", "-o", "prog",
         "blob.o"],
        cwd=tmp_path, check=True,
    )
    return tmp_path / "prog"


@pytest.mark.parametrize("pointer_size", [8, 4])
def test_pre_go118_pointer_format(tmp_path: Path, pointer_size: int) -> None:
    modinfo = (
        "path\texample.com/tool\nmod\texample.com/tool\tv1.4.0\th1:abc=\n"
        "dep\tgolang.org/x/sys\tv0.1.0\th1:def=\n=>\tgolang.org/x/sys\tv0.2.0\th1:ghi=\n"
        "dep\tgithub.com/pkg/errors\tv0.9.1\th1:jkl=\n"
    )
    binary = _link_old_format_binary(tmp_path, pointer_size, modinfo, "go1.16.15")
    expected = expected_from_go_version_m(binary)  # Go's own reader accepts the file
    assert expected == {
        ("stdlib", "v1.16.15"), ("example.com/tool", "v1.4.0"), ("golang.org/x/sys", "v0.2.0"),
        ("github.com/pkg/errors", "v0.9.1"),
    }
    assert pairs(analyze_path(binary)) == expected


def test_section_headers_removed_falls_back_to_first_writable_segment(built: dict[str, Path]) -> None:
    data = bytearray(built["stripped"].read_bytes())
    data[0x28:0x30] = bytes(8)  # e_shoff = 0: no section headers, as sstrip leaves a binary
    data[0x3C:0x40] = bytes(4)  # e_shnum = 0, e_shstrndx = 0
    assert pairs(analyze_bytes(bytes(data))) == expected_from_go_version_m(built["stripped"])


def test_non_go_executables_give_nothing(tmp_path: Path) -> None:
    assert analyze_path("/bin/ls") == []
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\necho hello\n")
    assert analyze_path(script) == []
    assert analyze_bytes(b"") == []
    assert analyze_bytes(b"MZ" + bytes(100)) == []  # a DOS program without a PE header


def test_prefilter_takes_executables_only() -> None:
    analyzer = GoBinaryAnalyzer()
    assert prefilter_accepts(analyzer, "usr/local/bin/tool", 0o755)
    assert not prefilter_accepts(analyzer, "usr/share/doc/readme", 0o644)


def test_purls_parse_back() -> None:
    packages = analyze_path("/usr/bin/skopeo")
    for package in packages:
        parsed = PackageURL.from_string(package.purl)
        assert parsed.type == "golang"
        assert "/".join(x for x in (parsed.namespace, parsed.name) if x) == package.name
        assert parsed.version == package.version


def test_stdlib_version_forms() -> None:
    assert stdlib_version("go1.21.3") == "v1.21.3"
    assert stdlib_version("go1.22.3 X:boringcrypto") == "v1.22.3"
    assert stdlib_version("go1.21rc2") == "v1.21rc2"
    assert stdlib_version("devel go1.23-4fc0e1 Tue Jan 2 2024") == ""


def test_ldflags_version_ranking() -> None:
    assert ldflags_version("github.com/a/b", "-s -w -X main.version=1.2.3") == "1.2.3"
    assert ldflags_version("github.com/a/b", "-X 'main.Version=v2.0.0-rc.1'") == "v2.0.0-rc.1"
    assert ldflags_version("github.com/a/b", "-X=github.com/a/b/internal/version.ver=0.9.0") == "0.9.0"
    # the module's own cmd/ tree outranks the conventional package names
    flags = "-X github.com/a/b/cmd/b/app.version=1.0.0 -X main.version=2.0.0"
    assert ldflags_version("github.com/a/b", flags) == "1.0.0"
    assert ldflags_version("github.com/a/b", "-X main.version=1.0.0 -X common.version=2.0.0") == ""  # ambiguous
    assert ldflags_version("github.com/a/b", "-X main.version=dev") == ""  # not a semantic version
    assert ldflags_version("github.com/a/b", "-X main.commit=1.0.0") == ""  # not a version key
    assert ldflags_version("github.com/a/b", "-X 'main.version=1.0") == ""  # unbalanced quote


def _elf_samples() -> list[str]:
    libs = sorted(str(p) for p in Path("/usr/lib/x86_64-linux-gnu").glob("libc.so.*"))
    return ["/bin/true", "/bin/ls", *DEBIAN_GO_BINARIES, *libs]


@pytest.mark.parametrize("path", [*_elf_samples(), "linux-386", "stripped"])
def test_elf_tables_agree_with_pyelftools(built: dict[str, Path], path: str) -> None:
    """The struct-based ELF reader sees the same sections and loaded segments as pyelftools."""
    real = built[path] if path in built else Path(path)
    with real.open("rb") as stream:
        exe = open_executable(stream, real.stat().st_size)
        assert exe is not None
        elf = ELFFile(stream)
        want_sections = [
            (s.name, s["sh_addr"] if s["sh_flags"] & 2 else 0, s["sh_offset"],
             0 if s["sh_type"] == "SHT_NOBITS" else s["sh_size"])
            for s in elf.iter_sections()
        ]
        want_segments = [
            (p["p_vaddr"], p["p_offset"], p["p_filesz"]) for p in elf.iter_segments() if p["p_type"] == "PT_LOAD"
        ]
    assert [(r.name, r.addr, r.offset, r.size) for r in exe.sections] == want_sections
    assert [(r.addr, r.offset, r.size) for r in exe.segments] == want_segments
    assert exe.pointer_size == (4 if path == "linux-386" else 8)


# --- hostile binaries --------------------------------------------------------------------------


def _buildinfo_offset(data: bytes) -> int:
    position = data.find(b"\xff Go buildinf:")
    while position % 16:
        position = data.find(b"\xff Go buildinf:", position + 1)
    return position


def test_varint_length_past_the_section_is_a_parse_error(built: dict[str, Path]) -> None:
    data = bytearray(built["linux-amd64"].read_bytes())
    start = _buildinfo_offset(bytes(data)) + 32
    data[start : start + 4] = bytes([0xFF, 0xFF, 0xFF, 0x0F])  # 32 MiB, far past the section
    with pytest.raises(ParseError, match=r"limit|past the end"):
        analyze_bytes(bytes(data))
    data[start : start + 10] = bytes([0xFF] * 10)  # never terminates
    with pytest.raises(ParseError, match="varint"):
        analyze_bytes(bytes(data))


def test_old_format_pointer_to_nowhere_is_a_parse_error(tmp_path: Path) -> None:
    binary = _link_old_format_binary(tmp_path, 8, "path\tx\n", "go1.16")
    data = bytearray(binary.read_bytes())
    start = _buildinfo_offset(bytes(data))
    data[start + 16 : start + 24] = struct.pack("<Q", 0x7FFF_0000_0000)
    with pytest.raises(ParseError, match="not mapped"):
        analyze_bytes(bytes(data))


def test_huge_section_table_is_a_parse_error() -> None:
    data = bytearray(Path("/bin/true").read_bytes())
    data[0x3C:0x3E] = struct.pack("<H", 0xFFFF)  # e_shnum: more headers than the file holds
    with pytest.raises(ParseError, match="section header"):
        analyze_bytes(bytes(data))


def test_extended_section_count_is_bounded() -> None:
    data = bytearray(Path("/bin/true").read_bytes())
    (shoff,) = struct.unpack("<Q", data[0x28:0x30])
    data[0x3C:0x3E] = bytes(2)  # e_shnum = 0: the real count is in section 0's sh_size
    data[shoff + 32 : shoff + 40] = struct.pack("<Q", 2**62)
    with pytest.raises(ParseError, match="section headers"):
        analyze_bytes(bytes(data))


@pytest.mark.parametrize("target", ["linux-amd64", "linux-386", "windows-amd64.exe", "darwin-amd64"])
def test_mutated_headers_never_escape_as_other_errors(built: dict[str, Path], target: str) -> None:
    """Random byte flips in the headers and the build info give packages or ParseError, nothing else."""
    original = built[target].read_bytes()
    buildinfo = _buildinfo_offset(original)
    hot = [*range(0, 4096), *range(buildinfo, buildinfo + 256)]
    if target.endswith("amd64") and not target.startswith(("windows", "darwin")):
        (shoff,) = struct.unpack("<Q", original[0x28:0x30])
        hot += list(range(shoff, min(shoff + 4096, len(original))))
    rng = random.Random(target)
    outcomes = {"packages": 0, "empty": 0, "error": 0}
    for _ in range(200):
        data = bytearray(original)
        for position in rng.sample(hot, 4):
            data[position] = rng.randrange(256)
        try:
            found = analyze_bytes(bytes(data))
        except ParseError:
            outcomes["error"] += 1
        else:
            outcomes["packages" if found else "empty"] += 1
    assert outcomes["packages"] > 0  # most flips land in padding or unused fields


def test_truncated_and_garbage_elf_are_parse_errors() -> None:
    data = Path("/bin/true").read_bytes()
    with pytest.raises(ParseError):
        analyze_bytes(data[:200])
    with pytest.raises(ParseError):
        analyze_bytes(b"\x7fELF" + bytes(range(256)) * 4)


def test_hostile_pe_and_macho_are_parse_errors(built: dict[str, Path]) -> None:
    pe = bytearray(built["windows-amd64.exe"].read_bytes())
    (pe_offset,) = struct.unpack("<I", pe[0x3C:0x40])
    pe[pe_offset + 6 : pe_offset + 8] = struct.pack("<H", 0xFFFF)  # NumberOfSections
    with pytest.raises(ParseError, match="sections"):
        analyze_bytes(bytes(pe))
    macho = bytearray(built["darwin-amd64"].read_bytes())
    macho[16:20] = struct.pack("<I", 1_000_000)  # ncmds
    with pytest.raises(ParseError, match="load commands"):
        analyze_bytes(bytes(macho))
    macho = bytearray(built["darwin-amd64"].read_bytes())
    macho[20:24] = struct.pack("<I", 0x7FFFFFFF)  # sizeofcmds past the end of the file
    with pytest.raises(ParseError, match="past the end"):
        analyze_bytes(bytes(macho))


# --- go.mod / go.sum ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", CORPUS_GOMOD, ids=[c.name for c in CORPUS_GOMOD])
def test_gomod_corpus(case) -> None:  # type: ignore[no-untyped-def]
    check_case(GoModAnalyzer(), case, "gomod")


@pytest.mark.parametrize("case", CORPUS_GOSUM, ids=[c.name for c in CORPUS_GOSUM])
def test_gosum_corpus(case) -> None:  # type: ignore[no-untyped-def]
    check_case(GoSumAnalyzer(), case, "gosum")


def _gomod_files() -> list[Path]:
    # Debian's go 1.19 predates the toolchain directive, so files using it cannot be compared here.
    found = sorted({c.input_path for c in CORPUS_GOMOD if "toolchain" not in c.input_path.read_text()})
    found += sorted(Path("/usr/share/gocode/src").glob("*/*/*/go.mod"))[:40]
    return found


@pytest.mark.parametrize("gomod", _gomod_files(), ids=str)
def test_gomod_parser_agrees_with_go_mod_edit_json(gomod: Path, tmp_path: Path) -> None:
    """Requirements, indirect marks, replacements and the go line, as the go command reads them."""
    copy = tmp_path / "go.mod"
    shutil.copy(gomod, copy)
    raw = subprocess.run([go_tool(), "mod", "edit", "-json", str(copy)], capture_output=True, text=True)
    assert raw.returncode == 0, raw.stderr
    truth = json.loads(raw.stdout)
    mod = parse_gomod(gomod.read_text())
    assert mod.module == truth["Module"]["Path"]
    assert mod.go == truth.get("Go", "")
    assert [(r.path, r.version, r.indirect) for r in mod.requires] == [
        (r["Path"], r["Version"], bool(r.get("Indirect"))) for r in truth.get("Require") or []
    ]
    assert [(r.old_path, r.old_version, r.new_path, r.new_version) for r in mod.replaces] == [
        (r["Old"]["Path"], r["Old"].get("Version", ""), r["New"]["Path"], r["New"].get("Version", ""))
        for r in truth.get("Replace") or []
    ]


def test_debian_gomod_files_were_found() -> None:
    assert len(_gomod_files()) > len(CORPUS_GOMOD), "golang-github-knqyf263-go-rpmdb-dev ships go.mod files"


GOMOD_SYNTAX = """// leading comment
module "example.com/quoted"

go 1.21

require (
\tgithub.com/a/direct v1.0.0
\tgithub.com/b/indirect v2.1.0+incompatible // indirect
\t"github.com/c/quoted" v0.3.0 // indirect; needed by tests
)

require ()

replace (
\tgithub.com/a/direct v1.0.0 => github.com/fork/direct v1.0.1 // pinned fork
\tgithub.com/b/indirect => ../indirect
)

exclude github.com/x/bad v0.0.1

retract [v0.1.0, v0.1.5]
"""


def test_gomod_syntax_and_trivy_semantics(tmp_path: Path) -> None:
    (tmp_path / "go.mod").write_text(GOMOD_SYNTAX)
    truth = json.loads(
        subprocess.run([go_tool(), "mod", "edit", "-json", str(tmp_path / "go.mod")], capture_output=True,
                       text=True, check=True).stdout
    )
    mod = parse_gomod(GOMOD_SYNTAX)
    want = [(r["Path"], bool(r.get("Indirect"))) for r in truth["Require"]]
    assert [(r.path, r.indirect) for r in mod.requires] == want
    data = GOMOD_SYNTAX.encode()
    packages = GoModAnalyzer().analyze(FileInput("src/app/go.mod", io.BytesIO(data), len(data))).packages
    assert {(p.name, p.version, p.relationship) for p in packages} == {
        ("github.com/fork/direct", "v1.0.1", "direct"),
        ("github.com/c/quoted", "v0.3.0", "indirect"),
    }
    fork = next(p for p in packages if p.name == "github.com/fork/direct")
    assert fork.extra["replaces"] == "github.com/a/direct@v1.0.0"
    assert fork.purl == "pkg:golang/github.com/fork/direct@v1.0.1"
    assert all(p.found_in == "src/app/go.mod" for p in packages)


def test_gomod_directives_newer_than_the_parser_are_tolerated() -> None:
    text = "module x\n\ngo 1.23.1\n\ntoolchain go1.23.4\n\ngodebug (\n\tdefault=go1.21\n)\n\n"
    text += "tool golang.org/x/tools/cmd/stringer\n\nfuturedirective something\n\n"
    text += "require github.com/a/b v1.0.0 // indirect\n"
    mod = parse_gomod(text)
    assert (mod.go, mod.toolchain) == ("1.23.1", "go1.23.4")
    data = text.encode()
    packages = GoModAnalyzer().analyze(FileInput("go.mod", io.BytesIO(data), len(data))).packages
    assert [(p.name, p.relationship) for p in packages] == [("github.com/a/b", "indirect")]


def test_gomod_before_117_skips_partial_indirect_list() -> None:
    text = "module x\ngo 1.16\nrequire (\n\tgithub.com/a/b v1.0.0\n\tgithub.com/c/d v1.0.0 // indirect\n)\n"
    data = text.encode()
    packages = GoModAnalyzer().analyze(FileInput("go.mod", io.BytesIO(data), len(data))).packages
    assert [(p.name, p.relationship) for p in packages] == [("github.com/a/b", "direct")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("module x\nrequire (\n\tgithub.com/a v1.0.0\n", "never closed"),
        ("module x\nrequire github.com/a\n", "require needs"),
        ("module x\nreplace github.com/a v1.0.0 github.com/b v1.0.0\n", "without '=>'"),
        ('module x\nrequire "github.com/a v1.0.0\n', "unterminated"),
        ("\x7fELF\x02\x01\x01\x00garbage\n", "unexpected"),
    ],
)
def test_bad_gomod_is_a_parse_error(text: str, message: str) -> None:
    data = text.encode()
    with pytest.raises(ParseError, match=message):
        GoModAnalyzer().analyze(FileInput("go.mod", io.BytesIO(data), len(data)))


def test_bad_gosum_is_a_parse_error() -> None:
    data = b"github.com/a/b v1.0.0 h1:abc=\nthis is not a go.sum line\n"
    with pytest.raises(ParseError, match="line 2"):
        GoSumAnalyzer().analyze(FileInput("go.sum", io.BytesIO(data), len(data)))


def test_gosum_keeps_the_last_listed_version() -> None:
    data = (
        b"github.com/a/b v1.0.0 h1:x=\ngithub.com/a/b v1.0.0/go.mod h1:y=\n"
        b"github.com/a/b v1.2.0/go.mod h1:z=\n"
    )
    packages = GoSumAnalyzer().analyze(FileInput("app/go.sum", io.BytesIO(data), len(data))).packages
    assert [(p.name, p.version, p.purl) for p in packages] == [
        ("github.com/a/b", "v1.2.0", "pkg:golang/github.com/a/b@v1.2.0")
    ]
