"""Every item of CIS Docker 1.6 sections 1-5 and CIS Kubernetes 1.9 sections 1-5 has a Moat rule,
automated or manual (with its verification steps). The item lists are the peers' own listings in
the shared corpus (docker-bench-security and kube-bench), read here only."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest

from corpus import SHARED
from moat.checks.rule import Rule, builtin_rules

BENCHMARKS = SHARED / "corpus/benchmarks"


def _mapped(framework: str) -> dict[str, list[Rule]]:
    by_item: dict[str, list[Rule]] = defaultdict(list)
    for item in builtin_rules().values():
        for control in item.controls:
            name, _, local = control.partition(":")
            if name == framework:
                by_item[local].append(item)
    return by_item


def _leaves(ids: list[str]) -> list[str]:
    """Item ids without the section headings (an id that prefixes another is a heading)."""
    return [i for i in ids if not any(other.startswith(i + ".") for other in ids)]


def _docker_items() -> list[str]:
    listing = json.loads((BENCHMARKS / "docker-bench-security-check-ids.json").read_text())
    ids = [str(check["id"]) for section in listing["sections"] for check in section.get("checks", [])]
    return [i for i in _leaves(ids) if i.split(".")[0] in {"1", "2", "3", "4", "5"}]


def _kubernetes_items() -> dict[str, str]:
    listing = json.loads((BENCHMARKS / "kube-bench/kube-bench-check-ids.json").read_text())
    # the benchmark's own word, "(Automated)" or "(Manual)" at the end of the title: kube-bench's type
    # field sometimes differs from it (4.2.8 says Manual, typed automated)
    return {str(check["id"]): "automated" if check["text"].rstrip().endswith("(Automated)") else "manual"
            for group in listing["benchmarks"]["cis-1.9"] for check in group["checks"]}


@pytest.mark.parametrize("section", ["1", "2", "3", "4", "5"])
def test_every_cis_docker_16_item_has_a_rule(section: str) -> None:
    mapped = _mapped("cis-docker-1.6")
    items = [i for i in _docker_items() if i.split(".")[0] == section]
    assert items
    assert [i for i in items if i not in mapped] == []
    for item in items:
        for rule in mapped[item]:
            assert rule.verification.strip() and rule.remediation.strip(), rule.id


@pytest.mark.parametrize("section", ["1", "2", "3", "4", "5"])
def test_every_cis_kubernetes_19_item_has_a_rule(section: str) -> None:
    mapped = _mapped("cis-kubernetes-1.9")
    items = [i for i in _kubernetes_items() if i.split(".")[0] == section]
    assert items
    assert [i for i in items if i not in mapped] == []


def test_items_the_benchmark_calls_automated_are_automated_in_moat() -> None:
    """Items the benchmark calls Automated are answerable from files; Moat must not fall back to manual
    for them (it may automate items the benchmark leaves manual, e.g. RBAC in section 5)."""
    mapped = _mapped("cis-kubernetes-1.9")
    manual_only = [i for i, kind in _kubernetes_items().items()
                   if kind == "automated" and all(rule.manual for rule in mapped[i])]
    assert manual_only == []


def test_no_rule_names_an_item_the_benchmarks_do_not_have() -> None:
    docker = set(_docker_items())
    kubernetes = set(_kubernetes_items())
    assert sorted(set(_mapped("cis-docker-1.6")) - docker) == []
    assert sorted(set(_mapped("cis-kubernetes-1.9")) - kubernetes) == []
