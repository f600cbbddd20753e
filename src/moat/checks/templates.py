"""Templates: a named selection of rules with parameters and severity overrides, written in YAML.

Shipped templates live in ``moat/checks/templates/*.yaml``; ``moat templates export NAME`` writes one
out for a user to copy and edit, and ``--template FILE`` reads the edited copy back. The format::

    id: cis-docker
    title: CIS Docker Benchmark v1.6.0
    description: ...
    framework: cis-docker-1.6        # the framework a compliance report is organised by
    select:
      frameworks: [cis-docker-1.6]   # every rule mapped to these frameworks; or a control
                                     # pattern such as pss:baseline/*
      rules: [MOAT-K8S-001]          # plus these rule ids
      exclude: []                    # minus these
    params:                          # rule parameters (see ``moat templates show``)
      allowed_registries: [registry.example.com]
    severity:                        # per-rule severity overrides
      MOAT-IMG-004: HIGH
    controls:                        # control id -> title, for the compliance report
      "4.1": Ensure a user for the container has been created
    rules_file: acme-rules.yaml      # custom CEL rules (moat.checks.custom), relative to this file;
                                     # select.rules may then name their ids

A template that names a rule Moat does not have is an error (a typo would otherwise silently drop a
check from an audit).

Frameworks derived from the benchmarks (PCI DSS, HIPAA, SOC 2, …; :mod:`moat.checks.mappings`) are
selected like any other: :meth:`Template.select` adds the derived controls to the rules it is given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from importlib import resources
from pathlib import Path
from typing import Any

from moat.checks.rule import Rule
from moat.checks.yamlload import load_yaml_documents, read_text
from moat.errors import MoatError
from moat.model import SEVERITIES

_KEYS = {"id", "title", "description", "framework", "select", "params", "severity", "controls", "rules_file"}
_SELECT_KEYS = {"frameworks", "rules", "exclude"}


@dataclass(slots=True)
class Template:
    id: str
    title: str
    description: str = ""
    framework: str = ""
    frameworks: list[str] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    severity: dict[str, str] = field(default_factory=dict)
    controls: dict[str, str] = field(default_factory=dict)
    source: str = ""
    """The file it was read from (``builtin:NAME`` for shipped ones)."""
    rules_file: str = ""
    """A custom CEL rules file (already resolved against the template's directory), or empty."""

    def custom_rules(self) -> dict[str, Rule]:
        """The rules of ``rules_file`` by id (empty without one); errors name the file."""
        if not self.rules_file:
            return {}
        from moat.checks.custom import load_custom_rules

        return {item.id: item for item in load_custom_rules(Path(self.rules_file))}

    def select(self, rules: Mapping[str, Rule]) -> list[Rule]:
        """The rules this template runs, in id order; unknown rule ids raise MoatError. Built-in and
        custom rules come back with their derived compliance controls (PCI DSS, HIPAA, …), and the
        custom rules of ``rules_file`` are available to select."""
        rules = _with_mappings(rules, self.custom_rules())
        unknown = sorted({*self.rules, *self.exclude, *self.severity} - set(rules))
        if unknown:
            raise MoatError(f"template {self.source or self.id}: unknown rule {', '.join(unknown)}")
        chosen = {rid for rid, item in rules.items() if any(_selects(entry, item) for entry in self.frameworks)}
        chosen |= set(self.rules)
        chosen -= set(self.exclude)
        return [rules[rid] for rid in sorted(chosen)]


def _with_mappings(rules: Mapping[str, Rule], custom: Mapping[str, Rule]) -> dict[str, Rule]:
    """Built-in and custom rules with their derived compliance controls; rules that are neither (built by
    a caller for its own purpose) are left as they are."""
    from moat.checks.mappings import add_derived_controls
    from moat.checks.rule import builtin_rules

    builtin = builtin_rules()
    result = {rid: add_derived_controls(item) if builtin.get(rid) is item else item for rid, item in rules.items()}
    result.update({rid: add_derived_controls(item) for rid, item in custom.items()})
    return result


def _selects(entry: str, item: Rule) -> bool:
    """``cis-docker-1.6`` selects every rule mapped to that framework; an entry with a colon is a
    control pattern (``pss:baseline/*``, ``cis-kubernetes-1.9:5.2.*``) matched against each mapping."""
    if ":" not in entry:
        return entry in item.frameworks()
    return any(fnmatchcase(control, entry) for control in item.controls)


def builtin_template_names() -> list[str]:
    folder = resources.files("moat.checks") / "templates"
    return sorted(entry.name[:-5] for entry in folder.iterdir() if entry.name.endswith(".yaml"))


def builtin_template_text(name: str) -> str:
    if name not in builtin_template_names():
        raise MoatError(f"unknown template {name!r} (available: {', '.join(builtin_template_names())})")
    return (resources.files("moat.checks") / "templates" / f"{name}.yaml").read_text(encoding="utf-8")


def load_template(name_or_path: str) -> Template:
    """A shipped template by name, or a template file by path (a path wins when the file exists)."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise MoatError(f"template {name_or_path}: no such file")
        template = parse_template(read_text(path), str(path))
        if template.rules_file:
            template.rules_file = str(path.parent / template.rules_file)
            if not Path(template.rules_file).is_file():
                raise MoatError(f"template {path}: rules_file {template.rules_file} does not exist")
        return template
    template = parse_template(builtin_template_text(name_or_path), f"builtin:{name_or_path}")
    if template.rules_file:
        raise MoatError(f"template builtin:{name_or_path}: a shipped template cannot name a rules_file")
    return template


def parse_template(text: str, label: str) -> Template:
    documents = load_yaml_documents(text, label)
    if len(documents) != 1 or not isinstance(documents[0].data, dict):
        raise MoatError(f"template {label}: expected one YAML mapping")
    data = documents[0].data
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise MoatError(f"template {label}: unknown key {', '.join(unknown)} (known: {', '.join(sorted(_KEYS))})")
    select = data.get("select") or {}
    if not isinstance(select, dict) or set(select) - _SELECT_KEYS:
        raise MoatError(f"template {label}: select takes {', '.join(sorted(_SELECT_KEYS))}")
    template = Template(
        id=_text(data, "id", label, required=True),
        title=_text(data, "title", label, required=True),
        description=_text(data, "description", label),
        framework=_text(data, "framework", label),
        frameworks=_strings(select.get("frameworks"), "select.frameworks", label),
        rules=_strings(select.get("rules"), "select.rules", label),
        exclude=_strings(select.get("exclude"), "select.exclude", label),
        params=_mapping(data.get("params"), "params", label),
        severity={str(k): str(v).upper() for k, v in _mapping(data.get("severity"), "severity", label).items()},
        controls={str(k): str(v) for k, v in _mapping(data.get("controls"), "controls", label).items()},
        source=label,
        rules_file=_text(data, "rules_file", label),
    )
    bad = {rid: sev for rid, sev in template.severity.items() if sev not in SEVERITIES}
    if bad:
        raise MoatError(f"template {label}: severity must be one of {', '.join(SEVERITIES)} (got {bad})")
    if not template.frameworks and not template.rules:
        raise MoatError(f"template {label}: select names no frameworks and no rules")
    return template


def _text(data: dict[str, Any], key: str, label: str, *, required: bool = False) -> str:
    value = data.get(key)
    if value is None:
        if required:
            raise MoatError(f"template {label}: missing {key}")
        return ""
    if not isinstance(value, str | int | float):
        raise MoatError(f"template {label}: {key} must be text")
    return str(value)


def _strings(value: Any, key: str, label: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise MoatError(f"template {label}: {key} must be a list of names")
    return list(value)


def _mapping(value: Any, key: str, label: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MoatError(f"template {label}: {key} must be a mapping")
    return dict(value)
