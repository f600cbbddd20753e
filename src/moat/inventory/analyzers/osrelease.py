"""What one OS-identification file says: os-release and the older per-distribution release files.

Each file is read on its own; which file wins when an image has several (os-release over
redhat-release, Debian's point release from debian_version, …) is decided after the layers are
merged, by :func:`moat.inventory.osdetect.detect_os`.

Families are the identifiers the vulnerability feeds are keyed by (Trivy's spelling: ``redhat``,
``alma``, ``oracle``, ``sles``, ``slem``, ``opensuse-leap``, ``cbl-mariner``, …). An os-release that
names a distribution Moat has no family for yields ``family=""`` rather than nothing, so that
detect_os knows the image is *not* the Debian or Red Hat its leftover legacy files suggest.
"""

from __future__ import annotations

import re

from moat.errors import ParseError
from moat.inventory.analyzer import AnalysisResult, Analyzer, FileInput, register
from moat.model import OSInfo

MAX_SIZE = 64 * 1024
"""These files are a few hundred bytes; anything larger is not one of them."""

OS_RELEASE_PATHS = (
    "etc/os-release",
    "usr/lib/os-release",
    # Bottlerocket keeps its os-release inside the sys-root of its host SDK layout
    "x86_64-bottlerocket-linux-gnu/sys-root/usr/lib/os-release",
    "aarch64-bottlerocket-linux-gnu/sys-root/usr/lib/os-release",
)
"""In order of precedence."""

REDHAT_STYLE_FILES = (
    "etc/oracle-release",
    "etc/rocky-release",
    "etc/almalinux-release",
    "etc/centos-release",
    "etc/fedora-release",
    "etc/redhat-release",
    "etc/system-release",
    "usr/lib/system-release",
)
"""One line, ``<distribution> release <version> (<codename>)``. Derivatives keep a redhat-release
(Oracle Linux 7 even with RHEL's text), so the distribution-specific file comes first."""

LEGACY_PATHS = (
    "etc/alpine-release",
    "etc/photon-release",
    "etc/mariner-release",
    "etc/azurelinux-release",
    "usr/lib/azurelinux-release",
    "etc/SuSE-release",
    *REDHAT_STYLE_FILES,
    # Ubuntu ships a debian_version too ("bookworm/sid"), so lsb-release must be asked first
    "etc/lsb-release",
    "etc/debian_version",
)
"""The files older than os-release, in the order detect_os consults them."""

ALL_PATHS = frozenset(OS_RELEASE_PATHS + LEGACY_PATHS)

OS_RELEASE_IDS = {
    "alpine": "alpine",
    "debian": "debian",
    "ubuntu": "ubuntu",
    "rhel": "redhat",
    "centos": "centos",
    "almalinux": "alma",
    "rocky": "rocky",
    "ol": "oracle",
    "fedora": "fedora",
    "amzn": "amazon",
    "sles": "sles",
    "sle-micro": "slem",
    "sl-micro": "slem",
    "sle-micro-rancher": "slem",
    "opensuse-leap": "opensuse-leap",
    "opensuse-tumbleweed": "opensuse-tumbleweed",
    "photon": "photon",
    "mariner": "cbl-mariner",
    "azurelinux": "azurelinux",
    "wolfi": "wolfi",
    "chainguard": "chainguard",
    "bottlerocket": "bottlerocket",
    "echo": "echo",
    "minimos": "minimos",
    "coreos": "coreos",
    "activestate": "activestate",
}
"""os-release ``ID`` → family. ``opensuse`` (Leap 42 and the releases before Leap) is decided by NAME."""

REDHAT_STYLE_NAMES = (
    ("red hat enterprise linux coreos", None),  # its version is OpenShift's, not RHEL's
    ("red hat enterprise linux", "redhat"),
    ("centos stream", "centos-stream"),
    ("centos", "centos"),
    ("rocky", "rocky"),
    ("almalinux", "alma"),
    ("alma linux", "alma"),
    ("oracle linux", "oracle"),
    ("fedora", "fedora"),
    ("amazon linux", "amazon"),
)
"""Prefix of the distribution part of a redhat-release style line → family (first match wins)."""

_KEY_VALUE_RE = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*")
_REDHAT_LINE_RE = re.compile(r"(.*?)\s+release\s+(\d[\d.]*)\b.*")
_TOKEN_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+~/-]*")
_ALPINE_RE = re.compile(r"[0-9][0-9A-Za-z._-]*")
_PHOTON_RE = re.compile(r"Photon (?:OS|Linux)\s+(\d+\.\d+)")
_MARINER_RE = re.compile(r"CBL-Mariner\s+(\d+\.\d+)")
_AZURE_RE = re.compile(r"(?:Azure Linux\s+|AZURELINUX_BUILD_NUMBER=)(\d+\.\d+)")
_ESCAPED_RE = re.compile(r"\\(.)")


def _unquote(value: str) -> str:
    """A shell-style os-release value: ``"a \\"b\\""`` → ``a "b"``; unquoted values as they are."""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        inner = value[1:-1]
        return _ESCAPED_RE.sub(r"\1", inner) if value[0] == '"' else inner
    return value


def parse_key_values(text: str) -> dict[str, str]:
    """``KEY=value`` lines (os-release, lsb-release, SuSE-release); comments and other lines ignored."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        match = _KEY_VALUE_RE.fullmatch(line)
        if match and match.group(1) not in values:
            values[match.group(1)] = _unquote(match.group(2))
    return values


def parse_os_release(text: str) -> OSInfo | None:
    """os-release(5). None without an ID; ``name=""`` when VERSION_ID is missing (Debian sid)."""
    values = parse_key_values(text)
    os_id = values.get("ID", "").strip().lower()
    if not os_id:
        return None
    version = values.get("VERSION_ID", "").strip()
    pretty = values.get("PRETTY_NAME", "").strip() or values.get("NAME", "").strip()
    name_field = values.get("NAME", "")
    family = OS_RELEASE_IDS.get(os_id, "")
    if os_id == "opensuse":
        family = "opensuse-leap" if "leap" in name_field.lower() else ""
    elif family == "centos" and "stream" in name_field.lower():
        family = "centos-stream"
    distroless = family == "debian" and values.get("PRETTY_NAME", "").startswith("Distroless")
    return OSInfo(family=family, name=version, pretty_name=pretty, distroless=distroless)


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    raise ParseError("the file is empty")


def parse_redhat_style(text: str) -> OSInfo | None:
    """``CentOS Linux release 7.9.2009 (Core)`` → centos 7.9.2009; None for other distributions.

    Derivatives reuse these file names with text of their own (ALT Linux's fedora-release says
    ``ALT Server 10.1 (Mendelevium)``), so a line without the convention is simply not ours.
    """
    line = _first_line(text)
    match = _REDHAT_LINE_RE.fullmatch(line)
    if not match:
        return None
    distribution, version = match.group(1).strip(), match.group(2).rstrip(".")
    lowered = distribution.lower()
    for prefix, family in REDHAT_STYLE_NAMES:
        if lowered.startswith(prefix):
            return OSInfo(family=family, name=version, pretty_name=line) if family else None
    return None


def parse_debian_version(text: str) -> OSInfo:
    """``12.5``, or ``trixie/sid`` on testing and unstable."""
    line = _first_line(text)
    if not _TOKEN_RE.fullmatch(line):
        raise ParseError(f"not a Debian version: {line[:80]!r}")
    return OSInfo(family="debian", name=line)


def parse_alpine_release(text: str) -> OSInfo:
    """``3.19.1`` (or ``3.20.0_alpha20240329`` on edge)."""
    line = _first_line(text)
    if not _ALPINE_RE.fullmatch(line):
        raise ParseError(f"not an Alpine release: {line[:80]!r}")
    return OSInfo(family="alpine", name=line)


def parse_lsb_release(text: str) -> OSInfo | None:
    """Only Ubuntu's is used (derivatives such as Linux Mint write their own DISTRIB_ID)."""
    values = parse_key_values(text)
    if values.get("DISTRIB_ID", "").strip().lower() != "ubuntu":
        return None
    release = values.get("DISTRIB_RELEASE", "").strip()
    if not release:
        raise ParseError("Ubuntu lsb-release without DISTRIB_RELEASE")
    return OSInfo(family="ubuntu", name=release, pretty_name=values.get("DISTRIB_DESCRIPTION", ""))


def parse_suse_release(text: str) -> OSInfo | None:
    """The SuSE-release of SLES 11/12 and openSUSE up to Leap 42: a title, then VERSION and PATCHLEVEL."""
    title = _first_line(text)
    values = parse_key_values(text)
    version = values.get("VERSION", "").strip()
    if not version:
        # some copies keep only the title line, "openSUSE 42.1 (x86_64)"
        in_title = re.search(r"\s(\d+(?:\.\d+)?)\s", title + " ")
        version = in_title.group(1) if in_title else ""
    if not re.fullmatch(r"\d+(\.\d+)?", version):
        raise ParseError(f"SuSE-release without a VERSION: {title[:80]!r}")
    if title.startswith("SUSE Linux Enterprise Server"):
        patch = values.get("PATCHLEVEL", "0").strip()
        name = version if patch in ("", "0") or "." in version else f"{version}.{patch}"
        return OSInfo(family="sles", name=name, pretty_name=title)
    if title.startswith("openSUSE"):
        # Leap began at 42.1; the openSUSE releases before it (up to 13.2) are a family of their own
        family = "opensuse-leap" if int(version.split(".")[0]) >= 42 else "opensuse"
        return OSInfo(family=family, name=version, pretty_name=title)
    return None


def _version_file(pattern: re.Pattern[str], family: str, what: str, text: str) -> OSInfo:
    match = pattern.search(text)
    if not match:
        raise ParseError(f"not a {what} release file: {_first_line(text)[:80]!r}")
    return OSInfo(family=family, name=match.group(1), pretty_name=_first_line(text))


def parse_file(path: str, text: str) -> OSInfo | None:
    """What the file at ``path`` (one of :data:`ALL_PATHS`) says about the OS."""
    base = path.rsplit("/", 1)[-1]
    if path in OS_RELEASE_PATHS:
        return parse_os_release(text)
    if path in REDHAT_STYLE_FILES:
        return parse_redhat_style(text)
    if base == "debian_version":
        return parse_debian_version(text)
    if base == "alpine-release":
        return parse_alpine_release(text)
    if base == "lsb-release":
        return parse_lsb_release(text)
    if base == "SuSE-release":
        return parse_suse_release(text)
    if base == "photon-release":
        return _version_file(_PHOTON_RE, "photon", "Photon OS", text)
    if base == "mariner-release":
        return _version_file(_MARINER_RE, "cbl-mariner", "CBL-Mariner", text)
    if base == "azurelinux-release":
        return _version_file(_AZURE_RE, "azurelinux", "Azure Linux", text)
    return None


def read_text(file: FileInput) -> str:
    """The file as text, refusing what cannot be a release file (too big, binary)."""
    data = file.open().read(MAX_SIZE + 1)
    if len(data) > MAX_SIZE:
        raise ParseError(f"larger than {MAX_SIZE} bytes; not a release file")
    if b"\x00" in data:
        raise ParseError("binary content (NUL bytes); not a release file")
    return data.decode("utf-8", errors="replace")


@register
class OSReleaseAnalyzer(Analyzer):
    """os-release, lsb-release, debian_version, alpine-release and the redhat-release family."""

    name = "os-release"
    version = 1
    max_file_size = MAX_SIZE
    basenames = frozenset(path.rsplit("/", 1)[-1] for path in ALL_PATHS)

    def wants(self, path: str, mode: int) -> bool:
        return path in ALL_PATHS

    def analyze(self, file: FileInput) -> AnalysisResult:
        return AnalysisResult(os=parse_file(file.path, read_text(file)))
