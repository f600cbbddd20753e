"""Coverage of the CIS Kubernetes Benchmark 1.9, sections 1 to 4: every item kube-bench lists for cis-1.9
has exactly one MOAT-KN rule mapped to it, and nothing else is mapped.

The item list is the shared corpus's transcription of kube-bench's cfg/cis-1.9 (ids, titles, types);
the product never reads it.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

import pytest

from corpus import CORPUS
from moat.checks.document import TargetKind
from moat.checks.rule import Rule, builtin_rules
from moat.checks.rules.k8s_node import CIS, ROLE_OF_RULE

LISTING = CORPUS / "benchmarks" / "kube-bench" / "kube-bench-check-ids.json"
NODE_TYPE_ROLE = {"master": "master", "controlplane": "master", "etcd": "etcd", "node": "worker"}


def _items() -> dict[str, dict[str, Any]]:
    data = json.loads(LISTING.read_text())
    items: dict[str, dict[str, Any]] = {}
    for group in data["benchmarks"]["cis-1.9"]:
        for check in group["checks"]:
            cis_id = str(check["id"])  # etcd's ids (2.1 …) are stored as JSON numbers
            if cis_id.split(".")[0] in ("1", "2", "3", "4"):
                items[cis_id] = {**check, "node_type": group["node_type"]}
    return items


def _node_rules() -> list[Rule]:
    return [item for item in builtin_rules().values() if item.id.startswith("MOAT-KN-")]


def _cis_ids(item: Rule) -> list[str]:
    return [control.split(":", 1)[1] for control in item.controls if control.startswith(f"{CIS}:")]


def _plain(title: str) -> str:
    return re.sub(r"\s*\((Automated|Manual)\)\s*$", "", title).strip()


def test_every_item_of_sections_1_to_4_has_exactly_one_rule() -> None:
    items = _items()
    assert len(items) == 95  # the listing itself: a changed corpus must be looked at
    mapped = Counter(cis_id for item in _node_rules() for cis_id in _cis_ids(item))
    missing = sorted(set(items) - set(mapped))
    doubled = sorted(cis_id for cis_id, count in mapped.items() if count > 1)
    unknown = sorted(set(mapped) - set(items))
    assert not missing, f"CIS items without a rule: {missing}"
    assert not doubled, f"CIS items with more than one rule: {doubled}"
    assert not unknown, f"rules mapped to items the benchmark does not have: {unknown}"


def test_each_rule_maps_to_one_item_with_the_benchmarks_title_and_role() -> None:
    items = _items()
    for item in _node_rules():
        ids = _cis_ids(item)
        assert len(ids) == 1, f"{item.id} maps to {ids}"
        listed = items[ids[0]]
        assert item.title == _plain(listed["text"]), item.id
        assert ROLE_OF_RULE[item.id] == NODE_TYPE_ROLE[listed["node_type"]], item.id
        assert item.targets == (TargetKind.K8S_NODE,)


def test_automated_and_manual_counts(capsys: pytest.CaptureFixture[str]) -> None:
    items = _items()
    rules = _node_rules()
    automated = [item for item in rules if not item.manual]
    manual = sorted(_cis_ids(item)[0] for item in rules if item.manual)
    with capsys.disabled():
        print(f"\nCIS Kubernetes 1.9 sections 1-4: {len(items)} items, {len(automated)} automated, "
              f"{len(manual)} manual ({', '.join(manual)})")
    assert len(automated) + len(manual) == len(items)
    # What kube-bench itself cannot audit (type manual) is manual here too; the rest Moat automates
    # wherever a file answers the question.
    kube_bench_manual = {cis_id for cis_id, item in items.items() if item["type"] == "manual"}
    assert kube_bench_manual <= set(manual)
    assert manual == ["1.2.20", "3.1.1", "3.1.2", "3.1.3", "3.2.2", "4.2.8"]


def test_every_rule_carries_what_a_finding_needs() -> None:
    for item in _node_rules():
        assert item.verification and item.remediation and item.description, item.id
        assert any(ref.startswith("https://kubernetes.io/") or ref.startswith("https://etcd.io/")
                   for ref in item.references), item.id
        assert re.fullmatch(r"MOAT-KN-\d{3}", item.id)
        for alias in item.aliases:
            assert re.fullmatch(r"(AVD-)?KCV-?\d{4}|C-\d{4}", alias), (item.id, alias)


def test_peer_ids_point_at_one_rule_each() -> None:
    owners: dict[str, list[str]] = {}
    for item in _node_rules():
        for alias in item.aliases:
            owners.setdefault(alias, []).append(item.id)
    shared = {alias: ids for alias, ids in owners.items() if len(ids) > 1}
    assert not shared
    assert owners["KCV-0048"] == ["MOAT-KN-001"] and owners["KCV0048"] == ["MOAT-KN-001"]
    assert owners["C-0172"] == owners["KCV-0079"]  # kubelet --anonymous-auth, CIS 4.2.1
