"""A rule: data (id, title, severity, risk, remediation, audit steps, control mappings) plus one small
function that looks at a :class:`~moat.checks.document.Document` and yields :class:`Hit` objects.

Built-in rules register themselves with :func:`rule` in the modules of :mod:`moat.checks.rules`;
:func:`builtin_rules` imports them all. Custom rules (CEL, :mod:`moat.checks.custom`) build the same
:class:`Rule` objects, so the engine, templates and reports never tell the two apart.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from moat.model import SEVERITIES

if TYPE_CHECKING:
    from moat.checks.document import Document, JsonPath


@dataclass(frozen=True, slots=True)
class Hit:
    """One thing a rule found wrong in one document."""

    message: str
    """What is wrong here, specifically: ``container "web" runs privileged``."""
    path: JsonPath = ()
    """Where in ``Document.data`` (gives the line); empty means the object as a whole."""
    container: str = ""
    """The container (Kubernetes, compose service) the hit is about, when it is about one."""
    line: int = 0
    """An explicit line, for parsers whose data has no path to it (Dockerfile instructions)."""
    resource: str = ""
    """Overrides the document's name, e.g. the file a host check found with a bad mode."""
    evidence: str = ""
    """What was seen, already redacted when it could hold a secret."""
    end_line: int = 0
    """Last line of what the hit is about (a multi-line ``RUN``); 0 means the same as the line."""


class NotAssessable(Exception):
    """Raised by a check that cannot judge this document (the facts it needs were not collected, e.g.
    setuid files of an SBOM target): the document does not count as evaluated, so the rule cannot
    pass on it, and no warning is shown."""


@dataclass(slots=True)
class RuleContext:
    """What a check function may read besides the document itself."""

    params: Mapping[str, Any]
    """The rule's parameters: its defaults, overridden by the template's ``params``."""
    documents: Sequence[Document] = ()
    """Every document of this run, for rules that relate objects (a RoleBinding to its Role, a Pod
    to the NetworkPolicies that select it)."""


CheckFunction = Callable[["Document", RuleContext], Iterable[Hit]]


@dataclass(frozen=True, slots=True)
class Rule:
    """A check, with everything a person needs to understand and fix a finding."""

    id: str
    title: str
    severity: str
    targets: tuple[str, ...]
    """The :class:`~moat.checks.document.TargetKind` values this rule reads."""
    description: str
    """The risk: why this matters."""
    remediation: str
    """What to change, with a concrete example."""
    verification: str
    """How an auditor confirms it by hand: the command to run and what to look for."""
    check: CheckFunction | None = None
    """None for a manual rule: the engine reports it as MANUAL with its verification steps."""
    references: tuple[str, ...] = ()
    controls: tuple[str, ...] = ()
    """Compliance mappings written ``framework:control`` (DESIGN.md), e.g. ``cis-docker-1.6:4.1``."""
    aliases: tuple[str, ...] = ()
    """The ids peers give the same check (``DS-0002``, ``KSV-0017``, a kubescape rule name, ``C-0057``),
    so users can find Moat's rule from theirs and ignore files written for them keep working."""
    params: Mapping[str, Any] = field(default_factory=dict)
    """Parameters and their defaults; a template may set them."""
    source: str = "builtin"
    """``builtin`` or the file a custom rule came from."""

    @property
    def manual(self) -> bool:
        return self.check is None

    def frameworks(self) -> set[str]:
        return {control.split(":", 1)[0] for control in self.controls}

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "severity": self.severity,
            "targets": list(self.targets),
            "manual": self.manual,
            "description": self.description,
            "remediation": self.remediation,
            "verification": self.verification,
            "references": list(self.references),
            "controls": list(self.controls),
            "aliases": list(self.aliases),
            "params": dict(self.params),
            "source": self.source,
        }


_REGISTRY: dict[str, Rule] = {}


def rule(
    *,
    id: str,
    title: str,
    severity: str,
    targets: Sequence[str],
    description: str,
    remediation: str,
    verification: str,
    references: Sequence[str] = (),
    controls: Sequence[str] = (),
    aliases: Sequence[str] = (),
    params: Mapping[str, Any] | None = None,
) -> Callable[[CheckFunction], CheckFunction]:
    """Register the decorated function as the check of a built-in rule."""

    def decorate(function: CheckFunction) -> CheckFunction:
        register(
            Rule(id, title, severity, tuple(targets), description, remediation, verification, function,
                 tuple(references), tuple(controls), tuple(aliases), dict(params or {}))
        )
        return function

    return decorate


def manual_rule(
    *,
    id: str,
    title: str,
    severity: str,
    targets: Sequence[str],
    description: str,
    remediation: str,
    verification: str,
    references: Sequence[str] = (),
    controls: Sequence[str] = (),
    aliases: Sequence[str] = (),
) -> None:
    """Register a benchmark item that no file, manifest or API answer can settle: it is reported as
    MANUAL, with the steps an auditor follows."""
    register(Rule(id, title, severity, tuple(targets), description, remediation, verification, None,
                  tuple(references), tuple(controls), tuple(aliases)))


def register(item: Rule) -> None:
    """Add a rule to the built-in registry; ids are unique and every field a report shows is set."""
    if item.id in _REGISTRY:
        raise ValueError(f"rule {item.id} registered twice")
    validate_rule(item)
    _REGISTRY[item.id] = item


def validate_rule(item: Rule) -> None:
    """Raise ValueError when a rule lacks what every finding must carry."""
    from moat.checks.document import TargetKind

    if item.severity not in SEVERITIES:
        raise ValueError(f"rule {item.id}: severity {item.severity!r} is not one of {', '.join(SEVERITIES)}")
    for name in ("title", "description", "remediation", "verification"):
        if not getattr(item, name).strip():
            raise ValueError(f"rule {item.id}: {name} is empty")
    unknown = [target for target in item.targets if target not in TargetKind.ALL]
    if unknown or not item.targets:
        raise ValueError(f"rule {item.id}: unknown target kind {unknown or '(none)'}")
    bad = [control for control in item.controls if ":" not in control]
    if bad:
        raise ValueError(f"rule {item.id}: controls must be framework:control, got {bad}")


def builtin_rules() -> dict[str, Rule]:
    """Every built-in rule by id (importing the rule modules once)."""
    import moat.checks.rules as package
    from moat.checks.mappings import with_derived_controls

    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")
    # PCI DSS, HIPAA, SOC 2, NIST 800-190 and NSA/CISA controls are derived from the technical ones
    # (checks/mappings/*.yaml), so every finding carries them without each rule repeating them.
    return with_derived_controls(_REGISTRY)


def rules_for(kinds: Iterable[str], rules: Iterable[Rule]) -> list[Rule]:
    """The rules that read any of these target kinds."""
    wanted = set(kinds)
    return [item for item in rules if wanted.intersection(item.targets)]
