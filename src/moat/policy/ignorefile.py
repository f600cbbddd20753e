"""The ignore file (``--ignorefile``, default ``.moatignore``): accepted risks, each with a reason.

A YAML list of entries::

    - id: CVE-2023-30861          # the finding's id, advisory id or any alias
      package: flask              # optional: a name or a purl (pkg:pypi/flask, pkg:pypi/flask@2.2.0)
      reason: no session cookies behind a caching proxy here
      expires: 2025-06-30         # optional: last day the entry applies

The reason is required so an accepted risk is always explained in review. An expired entry stops
suppressing (the gate fails again, which is the point of an expiry) and the scan says so on stderr.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml

from moat.errors import MoatError
from moat.model import Vulnerability
from moat.policy import Suppressed, purl_matches, vulnerability_ids

DEFAULT_IGNOREFILE = ".moatignore"
MAX_BYTES = 4 * 1024 * 1024


@dataclass(slots=True, frozen=True)
class IgnoreRule:
    id: str
    reason: str
    package: str | None = None
    expires: date | None = None

    def applies_to(self, vuln: Vulnerability) -> bool:
        if self.id not in vulnerability_ids(vuln):
            return False
        if self.package is None:
            return True
        if self.package.startswith("pkg:"):
            return bool(vuln.purl) and purl_matches(self.package, vuln.purl)
        return self.package.casefold() == vuln.package_name.casefold()

    def expired(self, today: date) -> bool:
        return self.expires is not None and today > self.expires


def load_ignorefile(path: Path) -> list[IgnoreRule]:
    """Read and check the file; any mistake is one :class:`MoatError` naming the file and the entry."""
    try:
        if path.stat().st_size > MAX_BYTES:
            raise MoatError(f"ignore file {path}: larger than {MAX_BYTES} bytes")
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MoatError(f"ignore file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise MoatError(f"ignore file {path}: not UTF-8 text") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise MoatError(f"ignore file {path}: not valid YAML{where}") from None
    if data is None:
        return []
    if not isinstance(data, list):
        raise MoatError(f"ignore file {path}: expected a YAML list of entries (- id: …, reason: …)")
    return [_rule(item, f"ignore file {path}: entry {index + 1}") for index, item in enumerate(data)]


def _rule(item: Any, where: str) -> IgnoreRule:
    if not isinstance(item, dict):
        raise MoatError(f"{where}: expected a mapping with id and reason")
    unknown = sorted(str(key) for key in item if key not in ("id", "package", "reason", "expires"))
    if unknown:
        raise MoatError(f"{where}: unknown key {', '.join(unknown)}")
    ident, reason, package = item.get("id"), item.get("reason"), item.get("package")
    if not isinstance(ident, str) or not ident.strip():
        raise MoatError(f"{where}: 'id' must be a non-empty string")
    if not isinstance(reason, str) or not reason.strip():
        raise MoatError(f"{where} ({ident}): 'reason' is required")
    if package is not None and (not isinstance(package, str) or not package.strip()):
        raise MoatError(f"{where} ({ident}): 'package' must be a name or a purl")
    return IgnoreRule(ident.strip(), reason.strip(), package.strip() if package else None,
                      _expiry(item.get("expires"), f"{where} ({ident})"))


def _expiry(value: Any, where: str) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise MoatError(f"{where}: 'expires' must be a date written YYYY-MM-DD")


def apply_ignores(
    vulns: Iterable[Vulnerability], rules: list[IgnoreRule], source: str, today: date | None = None
) -> tuple[list[Vulnerability], list[Suppressed], list[str]]:
    """(kept, suppressed, warnings): one warning per expired entry, whether or not it matched anything."""
    today = today or date.today()
    live = [rule for rule in rules if not rule.expired(today)]
    warnings = [
        f"{source}: entry {rule.id} expired on {rule.expires}; it no longer suppresses findings"
        for rule in rules
        if rule.expired(today)
    ]
    kept: list[Vulnerability] = []
    suppressed: list[Suppressed] = []
    for vuln in vulns:
        rule = next((r for r in live if r.applies_to(vuln)), None)
        if rule is None:
            kept.append(vuln)
        else:
            suppressed.append(Suppressed(vuln, source, rule.reason, state="ignored"))
    return kept, suppressed, warnings
