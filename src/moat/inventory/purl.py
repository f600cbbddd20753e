"""Package URL construction, one place for every analyzer (packageurl-python does the encoding)."""

from __future__ import annotations

from packageurl import PackageURL


def make_purl(
    type_: str,
    name: str,
    version: str | None,
    namespace: str | None = None,
    qualifiers: dict[str, str] | None = None,
    subpath: str | None = None,
) -> str:
    """Build a canonical purl string; empty qualifier values are dropped."""
    clean = {k: v for k, v in (qualifiers or {}).items() if v}
    return PackageURL(
        type=type_,
        namespace=namespace or None,
        name=name,
        version=version or None,
        qualifiers=clean or None,
        subpath=subpath,
    ).to_string()


def distro_qualifier(os_family: str | None, os_version: str | None) -> str:
    """The ``distro`` qualifier of OS package purls, e.g. ``debian-12`` or ``alpine-3.19.1``."""
    if not os_family:
        return ""
    return f"{os_family}-{os_version}" if os_version else os_family
