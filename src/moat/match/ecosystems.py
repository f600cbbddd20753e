"""Which advisories can speak about a package: its OSV ecosystem, lookup name and comparable version.

Distribution packages are judged only by their distribution's own advisories. A distro rebuilds and
patches upstream code (a Debian ``1.1.1n-0+deb11u4`` carries fixes upstream shipped in 1.1.1t), so an
upstream or language-ecosystem advisory would flag fixes the distro already backported. Each distro
also names its advisories after a different unit: Debian, Ubuntu and Alpine after the source package
(and the source version), AlmaLinux and Rocky after the binary rpm.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from packageurl import PackageURL

from moat.model import OSInfo, Package
from moat.vulndb.store import normalize_package

OS_TYPES = frozenset({"deb", "apk", "rpm"})
"""Package types that belong to the operating system and are matched against distro feeds only."""

LANGUAGE_ECOSYSTEMS: dict[str, str] = {
    "pypi": "PyPI",
    "npm": "npm",
    "golang": "Go",
    "cargo": "crates.io",
    "maven": "Maven",
    "gem": "RubyGems",
    "composer": "Packagist",
    "nuget": "NuGet",
}
"""Package URL type to OSV ecosystem for packages that are not the OS's own."""

_RPM_DISTROS: dict[str, str] = {
    "alma": "AlmaLinux",
    "almalinux": "AlmaLinux",
    "rocky": "Rocky Linux",
    "redhat": "Red Hat",
    "rhel": "Red Hat",
    "centos": "Red Hat",
}
"""os-release families whose rpms have an OSV feed, to that feed's ecosystem prefix. CentOS Linux is a
RHEL rebuild that Red Hat's own data covers (as Trivy treats it); AlmaLinux and Rocky publish their own."""

_APK_DISTROS: dict[str, str] = {"wolfi": "Wolfi", "chainguard": "Chainguard"}
"""Rolling apk distros whose OSV ecosystem has no release suffix."""

_MAJOR = re.compile(r"^(\d+)")
_MAJOR_MINOR = re.compile(r"^(\d+)\.(\d+)")


@dataclass(frozen=True, slots=True)
class Lookup:
    """How one package is looked up in the store and compared with an advisory's ranges."""

    ecosystem: str
    """OSV ecosystem, e.g. ``PyPI`` or ``Debian:12``; for Red Hat a prefix (see :attr:`prefix`)."""
    name: str
    """Package name as the feed names it (normalised by the store on lookup)."""
    version: str
    """The version the feed's ranges speak about (the source version for Debian)."""
    os_package: bool = False
    prefix: bool = False
    """True when ``ecosystem`` is a prefix of several store ecosystems (Red Hat product streams)."""


def distro_ecosystem(os_info: OSInfo | None, package_type: str) -> str | None:
    """The OSV ecosystem of the OS's own packages of ``package_type``, or None when no feed exists.

    Release numbers are cut to what each feed keys on: Debian and the RHEL family by major version
    ("12.5" → "Debian:12"), Ubuntu by YY.MM, Alpine by branch ("3.19.1" → "Alpine:v3.19").
    """
    if os_info is None:
        return None
    family = os_info.family.lower()
    release = os_info.name.strip()
    if package_type == "deb":
        if family == "debian":
            major = _MAJOR.match(release)
            return f"Debian:{major.group(1)}" if major else None
        if family == "ubuntu":
            pair = _MAJOR_MINOR.match(release)
            return f"Ubuntu:{pair.group(1)}.{pair.group(2)}" if pair else None
        return None
    if package_type == "apk":
        if family == "alpine":
            if release.startswith("edge"):
                return "Alpine:edge"
            pair = _MAJOR_MINOR.match(release.removeprefix("v"))
            return f"Alpine:v{pair.group(1)}.{pair.group(2)}" if pair else None
        rolling = _APK_DISTROS.get(family)
        return rolling
    if package_type == "rpm":
        prefix = _RPM_DISTROS.get(family)
        major = _MAJOR.match(release)
        if prefix is None or major is None:
            return None
        if prefix == "Red Hat":
            # Red Hat's OSV ecosystems are CPE product streams: "Red Hat:enterprise_linux:9::appstream".
            return f"Red Hat:enterprise_linux:{major.group(1)}:"
        return f"{prefix}:{major.group(1)}"
    return None


def lookup_for(package: Package, os_info: OSInfo | None) -> Lookup | None:
    """The store lookup for ``package``, or None when no feed can speak about it.

    None is returned for packages without a version and for OS packages of a distro with no feed;
    the matcher reports the latter once per distro.
    """
    if not package.version:
        return None
    if package.type in OS_TYPES:
        return _os_lookup(package, os_info)
    ecosystem = LANGUAGE_ECOSYSTEMS.get(package.type)
    if ecosystem is None:
        return None
    name = _language_name(package, ecosystem)
    if not name:
        return None
    version = package.version
    if ecosystem in ("Go", "Packagist"):
        # Go module versions and many composer tags carry a "v" that OSV's ranges leave out.
        version = version.removeprefix("v") if version[1:2].isdigit() else version
    return Lookup(ecosystem, normalize_package(ecosystem, name), version)


def _os_lookup(package: Package, os_info: OSInfo | None) -> Lookup | None:
    ecosystem = distro_ecosystem(os_info, package.type)
    if ecosystem is None:
        return None
    if package.type == "deb":
        # Debian and Ubuntu advisories are about source packages, and fixed versions are source versions.
        name = package.source_name or package.name
        version = package.source_version or package.version
    elif package.type == "apk":
        # secdb keys the aport (origin); subpackages share its pkgver-rN.
        name = package.source_name or package.name
        version = package.version
    else:
        name = package.name
        version = _rpm_evr(package)
    return Lookup(ecosystem, name, version, os_package=True, prefix=ecosystem.endswith(":"))


def _rpm_evr(package: Package) -> str:
    """``[epoch:]version-release`` as the rpm feeds write fixed versions; an epoch of 0 is left out, as they do."""
    version = package.version
    if ":" in version:
        epoch, _, rest = version.partition(":")
        return rest if epoch == "0" else version
    if package.epoch:
        return f"{package.epoch}:{version}"
    return version


def _language_name(package: Package, ecosystem: str) -> str:
    """The package name as the ecosystem's advisories write it.

    Analyzers already name packages that way (npm ``@scope/name``, Go module paths, composer
    ``vendor/name``, Maven ``group:artifact``); only a Maven package read from an SBOM may carry its
    group in the purl alone, and one without a group cannot be matched.
    """
    if ecosystem == "Maven" and ":" not in package.name:
        purl = _parse_purl(package.purl)
        return f"{purl.namespace}:{purl.name}" if purl is not None and purl.namespace else ""
    return package.name


def _parse_purl(purl: str) -> PackageURL | None:
    if not purl:
        return None
    try:
        return PackageURL.from_string(purl)
    except ValueError:
        return None
