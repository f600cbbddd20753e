"""Compliance frameworks derived from the technical benchmarks: PCI DSS, HIPAA, SOC 2, and the parts of
NIST SP 800-190 and the NSA/CISA guide that rules do not map themselves.

Rules map only to what they check technically (CIS Docker, CIS Kubernetes, Pod Security Standards).
A regulation's requirement is broader: PCI DSS 2.2.1 ("configuration standards") is evidenced by every
CIS item, HIPAA 164.312(b) ("audit controls") by the audit-logging items. Writing those links once per
framework, in ``moat/checks/mappings/<framework>.yaml``, keeps them reviewable by someone who knows the
regulation but not the code, and keeps rules free of frameworks they cannot settle alone::

    framework: pci-dss-4.0
    title: PCI DSS v4.0
    controls:
      "8.6.2":
        title: Credentials are not hard-coded in scripts or configuration
        requirement: ...                       # our summary of the requirement
        evidence: ["MOAT-SEC-*", "cis-docker-1.6:4.10", "nist-800-190:4.1.4"]

An evidence entry is a control pattern (``cis-docker-1.6:5.*``, ``pss:restricted/*``, with ``*``, ``?``
and ``[…]`` as in shell globs) matched against a rule's own controls, or a rule id pattern
(``MOAT-SEC-*``). Derivation is one step: a derived control is never evidence for another, so the
mapping of a rule can be read off its own controls and id.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from fnmatch import translate
from importlib import resources
from typing import Any

from moat.checks.rule import Rule
from moat.checks.yamlload import load_yaml_documents
from moat.errors import MoatError

BASE_FRAMEWORKS = ("cis-docker-1.6", "cis-kubernetes-1.9", "pss", "nsa-cisa-k8s", "nist-800-190")
"""Frameworks that rules map to themselves; evidence patterns name one of these or a rule id."""
RULE_ID_PREFIX = "MOAT-"


@dataclass(frozen=True, slots=True)
class DerivedControl:
    id: str
    title: str
    requirement: str
    evidence: tuple[str, ...]
    matcher: re.Pattern[str]
    """One regular expression for all evidence patterns, matched against ``rule id`` and controls."""


@dataclass(frozen=True, slots=True)
class FrameworkMapping:
    framework: str
    title: str
    reference: str
    controls: tuple[DerivedControl, ...]
    source: str

    def control_ids(self) -> list[str]:
        return [f"{self.framework}:{control.id}" for control in self.controls]

    def titles(self) -> dict[str, str]:
        """Control id (without the framework) → title, in the file's order."""
        return {control.id: control.title for control in self.controls}

    def derive(self, item: Rule) -> list[str]:
        """The controls of this framework that the rule evidences."""
        probes = (item.id, *item.controls)
        return [f"{self.framework}:{control.id}" for control in self.controls
                if any(control.matcher.fullmatch(probe) for probe in probes)]


def mapping_names() -> list[str]:
    folder = resources.files("moat.checks") / "mappings"
    return sorted(entry.name[:-5] for entry in folder.iterdir() if entry.name.endswith(".yaml"))


@functools.cache
def load_mappings() -> tuple[FrameworkMapping, ...]:
    """Every shipped mapping file, parsed and checked (a broken one is a MoatError naming it)."""
    folder = resources.files("moat.checks") / "mappings"
    return tuple(
        parse_mapping((folder / f"{name}.yaml").read_text(encoding="utf-8"), f"mappings/{name}.yaml")
        for name in mapping_names()
    )


def mapping_for(framework: str) -> FrameworkMapping | None:
    return next((item for item in load_mappings() if item.framework == framework), None)


def parse_mapping(text: str, label: str) -> FrameworkMapping:
    documents = load_yaml_documents(text, label)
    if len(documents) != 1 or not isinstance(documents[0].data, dict):
        raise MoatError(f"{label}: expected one YAML mapping")
    data = documents[0].data
    unknown = sorted(set(data) - {"framework", "title", "reference", "controls"})
    if unknown:
        raise MoatError(f"{label}: unknown key {', '.join(unknown)}")
    framework = data.get("framework")
    if not isinstance(framework, str) or not re.fullmatch(r"[a-z0-9][a-z0-9.-]*", framework):
        raise MoatError(f"{label}: framework must be a lower-case name such as pci-dss-4.0")
    controls = data.get("controls")
    if not isinstance(controls, dict) or not controls:
        raise MoatError(f"{label}: controls must be a mapping of control id to its title and evidence")
    parsed = [_control(str(cid), body, f"{label}: control {cid}") for cid, body in controls.items()]
    return FrameworkMapping(framework, _text(data, "title", label), str(data.get("reference") or ""),
                            tuple(parsed), label)


def _control(cid: str, body: Any, where: str) -> DerivedControl:
    if not isinstance(body, dict):
        raise MoatError(f"{where}: expected title, requirement and evidence")
    unknown = sorted(set(body) - {"title", "requirement", "evidence"})
    if unknown:
        raise MoatError(f"{where}: unknown key {', '.join(unknown)}")
    evidence = body.get("evidence")
    if not isinstance(evidence, list) or not evidence or not all(isinstance(item, str) for item in evidence):
        raise MoatError(f"{where}: evidence must be a non-empty list of control or rule id patterns")
    for pattern in evidence:
        if pattern.startswith(RULE_ID_PREFIX):
            continue
        framework = pattern.split(":", 1)[0]
        if ":" not in pattern or framework not in BASE_FRAMEWORKS:
            raise MoatError(f"{where}: evidence {pattern!r} names neither a rule id ({RULE_ID_PREFIX}…) nor a control "
                            f"of {', '.join(BASE_FRAMEWORKS)}")
    matcher = re.compile("|".join(f"(?:{translate(pattern)})" for pattern in evidence))
    return DerivedControl(cid, _text(body, "title", where), _text(body, "requirement", where), tuple(evidence),
                          matcher)


def _text(data: Mapping[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise MoatError(f"{where}: {key} is missing")
    return " ".join(value.split())


_DERIVED: dict[int, tuple[Rule, Rule]] = {}
"""id(rule) → (rule, the rule with derived controls). Holding the original keeps its id its own;
holding the result lets a second application recognise it (a derived control is never evidence)."""


def with_derived_controls(rules: Mapping[str, Rule]) -> dict[str, Rule]:
    """The rules with every derived control added to their ``controls`` (new Rule objects; a rule
    without any derived control is returned as it is). Cheap to call again on the same rules."""
    return {rid: add_derived_controls(item) for rid, item in rules.items()}


def add_derived_controls(item: Rule) -> Rule:
    """One rule with the controls the mapping files derive from its own controls and id."""
    known = _DERIVED.get(id(item))
    if known is not None and known[0] is item:
        return known[1]
    added = [control for mapping in load_mappings() for control in mapping.derive(item)]
    extra = [control for control in dict.fromkeys(added) if control not in item.controls]
    derived = replace(item, controls=(*item.controls, *extra)) if extra else item
    _DERIVED[id(item)] = (item, derived)
    _DERIVED[id(derived)] = (derived, derived)
    return derived


def derived_frameworks() -> list[str]:
    return [mapping.framework for mapping in load_mappings()]


def evidence_rules(framework: str, control: str, rules: Iterable[Rule]) -> list[Rule]:
    """The rules (already carrying derived controls) that evidence ``framework:control``."""
    wanted = f"{framework}:{control}"
    return [item for item in rules if wanted in item.controls]
