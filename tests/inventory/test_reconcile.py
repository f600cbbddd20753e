"""go.mod and go.sum together, through the whole pipeline (dir: targets of the corpus cases)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corpus import CORPUS
from moat.inventory.target import ScanSettings, inventory_target

GOMOD_CASES = sorted(p.parent for p in (CORPUS / "packages" / "gomod").glob("*/expected.json"))


def golang_ids(directory: Path, tmp_path: Path) -> set[str]:
    inventory = inventory_target(f"dir:{directory}", settings=ScanSettings(str(tmp_path), use_cache=False))
    return {p.id for p in inventory.packages if p.type == "golang"}


def go_sum_modules(path: Path) -> dict[str, str]:
    """Module → the last version go.sum lists for it (its ``/go.mod`` lines included)."""
    modules: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            module, version, _ = line.split()
            modules[module] = version.removesuffix("/go.mod")
    return modules


@pytest.mark.parametrize("case", GOMOD_CASES, ids=[c.name for c in GOMOD_CASES])
def test_go_sum_only_fills_in_what_an_old_go_mod_omits(case: Path, tmp_path: Path) -> None:
    data = json.loads((case / "expected.json").read_text())
    options = data.get("peer_parser_options", {})
    if options.get("replace") == "false" or options.get("useMinVersion") == "true":
        return  # parser options the pipeline does not use; the analyzer tests cover these cases
    expected = {f"{p['name']}@{p['version']}" for p in data["expected"]["packages"]}
    go_line = next((ln.split()[1] for ln in (case / "go.mod").read_text().splitlines() if ln.startswith("go ")), "")
    old = not go_line or tuple(int(x) for x in go_line.split(".")[:2]) < (1, 17)
    if old and (case / "go.sum").exists():
        named = {i.rsplit("@", 1)[0] for i in expected}
        expected |= {f"{m}@{v}" for m, v in go_sum_modules(case / "go.sum").items() if m not in named}
    assert golang_ids(case, tmp_path) == expected


def test_go_sum_alone_is_reported(tmp_path: Path) -> None:
    case = CORPUS / "packages" / "gosum" / "trivy-gomod_normal"
    expected = {f"{m}@{v}" for m, v in go_sum_modules(case / "go.sum").items()}
    assert golang_ids(case, tmp_path) == expected
