"""Package construction and manifest facts every JavaScript analyzer needs.

npm, yarn and pnpm all describe the same kind of package (an npm registry package), so the purl,
the ``name@version`` id and the license rules are written once here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from moat.inventory.purl import make_purl
from moat.model import Package

NPM = "npm"

# A version a vulnerability feed can match: semver-ish, optionally with a leading "v". Local
# directories (``file:x``), links and URLs are not versions.
_VERSION = re.compile(r"^v?\d+(\.[0-9A-Za-z-]+)*([-+][0-9A-Za-z.+-]*)?$")

# Bounds on what one manifest may declare, so a hostile file cannot make us build huge lists.
MAX_LICENSES = 32
MAX_LICENSE_LENGTH = 512


def package_id(name: str, version: str) -> str:
    """The ``name@version`` id ``depends_on`` uses (the same form as :attr:`Package.id`)."""
    return f"{name}@{version}"


def is_version(value: str) -> bool:
    """True when ``value`` is a registry version rather than a path, link or URL."""
    return bool(_VERSION.match(value))


def split_spec(spec: str) -> tuple[str, str]:
    """Split ``name@range`` (``@scope/name@range`` too) at the ``@`` that ends the name.

    A spec without a range gives an empty range.
    """
    at = spec.find("@", 1)
    if at < 0:
        return spec, ""
    return spec[:at], spec[at + 1 :]


def npm_purl(name: str, version: str) -> str:
    """``pkg:npm/%40scope/name@version``: the scope is the purl namespace, '@' included."""
    namespace = None
    if name.startswith("@") and "/" in name:
        namespace, name = name.split("/", 1)
    return make_purl(NPM, name, version or None, namespace=namespace)


def valid_name(name: str) -> bool:
    """A name we are willing to report: non-empty, bounded, no whitespace or control characters."""
    return 0 < len(name) <= 214 and not any(ch.isspace() or ord(ch) < 32 for ch in name)


def make_package(
    name: str,
    version: str,
    found_in: str,
    *,
    licenses: Iterable[str] = (),
    dev: bool = False,
    relationship: str | None = None,
    depends_on: Iterable[str] = (),
) -> Package:
    return Package(
        name=name,
        version=version,
        type=NPM,
        purl=npm_purl(name, version),
        licenses=list(licenses),
        found_in=found_in,
        dev=dev,
        relationship=relationship,
        depends_on=sorted(set(depends_on)),
    )


def _license_text(value: Any) -> str | None:
    if isinstance(value, str):
        text = value.strip()
    elif isinstance(value, dict):
        kind = value.get("type") or value.get("name")
        text = kind.strip() if isinstance(kind, str) else ""
    else:
        return None
    return text[:MAX_LICENSE_LENGTH] if text else None


def licenses_from(manifest: dict[str, Any]) -> list[str]:
    """Licenses a package.json (or a lockfile entry copied from one) declares.

    npm has accepted three shapes over time: ``"license": "MIT"`` (an SPDX expression), the
    deprecated ``"license": {"type": "MIT", "url": ...}`` and the legacy ``"licenses"`` array of
    such objects. Arrays of plain strings turn up in the wild too. All are read; the order is the
    file's, duplicates dropped.
    """
    found: list[str] = []
    for key in ("license", "licenses"):
        value = manifest.get(key)
        items = value if isinstance(value, list) else [value]
        for item in items[:MAX_LICENSES]:
            text = _license_text(item)
            if text and text not in found:
                found.append(text)
    return found[:MAX_LICENSES]


def string_map(value: Any) -> dict[str, str]:
    """A ``{name: spec}`` dependency map, keeping only string→string items (others are hostile noise)."""
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}


def mapping(value: Any) -> dict[str, Any]:
    """``value`` when it is a mapping with string keys, else an empty one."""
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str)}
