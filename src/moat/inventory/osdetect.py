"""Deciding an image's OS from what each identification file said (after the layers are merged).

Images routinely carry several of these files and they disagree: Ubuntu has a debian_version
("bookworm/sid"), Oracle Linux 7 a redhat-release with RHEL's text, Rocky a centos-release. The
rules, in order:

1. os-release is authoritative (``etc/`` before ``usr/lib/``). If it names a distribution Moat has no
   family for (Kali, Raspbian, Arch …), the answer is None: the leftover Debian or Red Hat files of
   a derivative must not make it look like its parent, whose advisories do not apply to it.
2. Debian's os-release says only "12"; debian_version gives the point release "12.5". Likewise an
   Alpine os-release without the patch level is completed by alpine-release. When os-release has no
   VERSION_ID at all (Debian testing/sid), the family's own file supplies the release.
3. Without an os-release, the distribution-specific files are asked in a fixed order
   (:data:`moat.inventory.analyzers.osrelease.LEGACY_PATHS`).

A result always has both a family and a release; otherwise there is no result.
"""

from __future__ import annotations

from moat.inventory.analyzers.osrelease import LEGACY_PATHS, OS_RELEASE_PATHS
from moat.model import OSInfo

REFINING_FILES = {
    "debian": "etc/debian_version",
    "alpine": "etc/alpine-release",
}
"""Family → the file that carries a more precise release than os-release's VERSION_ID."""


def _normalise(path: str) -> str:
    while path.startswith(("/", "./")):
        path = path[1:] if path.startswith("/") else path[2:]
    return path


def detect_os(results: dict[str, OSInfo]) -> OSInfo | None:
    """The image's OS, given path → what the file at that path said (paths relative to the root)."""
    found = {_normalise(path): info for path, info in results.items() if info is not None}
    primary = next((found[path] for path in OS_RELEASE_PATHS if path in found), None)
    if primary is not None:
        return _from_os_release(primary, found)
    for path in LEGACY_PATHS:
        info = found.get(path)
        if info is not None and info.family and info.name:
            return OSInfo(info.family, info.name, info.pretty_name, info.distroless)
    return None


def _from_os_release(primary: OSInfo, found: dict[str, OSInfo]) -> OSInfo | None:
    if not primary.family:
        return None
    name = primary.name
    refining = found.get(REFINING_FILES.get(primary.family, ""))
    if refining is not None and refining.family == primary.family and refining.name.startswith(name + "."):
        name = refining.name
    if not name:
        same_family = (found.get(path) for path in LEGACY_PATHS)
        name = next((info.name for info in same_family if info and info.family == primary.family), "")
    if not name:
        return None
    return OSInfo(primary.family, name, primary.pretty_name, primary.distroless)
