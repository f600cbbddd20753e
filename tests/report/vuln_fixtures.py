"""Hand-made findings for the report tests (ids, CVSS vectors and fixes as the real advisories state them)."""

from __future__ import annotations

from moat.model import CVSS, Artifact, Inventory, OSInfo, Package, Vulnerability

SITE = "usr/lib/python3/dist-packages"


def inventory() -> Inventory:
    return Inventory(
        artifact=Artifact(name="app:1.0", type="container_image"),
        os=OSInfo("debian", "12"),
        packages=[
            Package("Jinja2", "2.10", "pypi", "pkg:pypi/jinja2@2.10",
                    found_in=f"{SITE}/Jinja2-2.10.dist-info/METADATA"),
            Package("PyYAML", "5.1", "pypi", "pkg:pypi/pyyaml@5.1", found_in=f"{SITE}/PyYAML-5.1.dist-info/METADATA"),
            Package("libssl3", "3.0.7-1", "deb", "pkg:deb/debian/libssl3@3.0.7-1", found_in="var/lib/dpkg/status"),
            Package("idna", "3.7", "pypi", "pkg:pypi/idna@3.7", found_in=f"{SITE}/idna-3.7.dist-info/METADATA"),
        ],
    )


def findings() -> list[Vulnerability]:
    jinja = dict(package_name="Jinja2", package_version="2.10", package_type="pypi", purl="pkg:pypi/jinja2@2.10",
                 found_in=f"{SITE}/Jinja2-2.10.dist-info/METADATA")
    yaml = dict(package_name="PyYAML", package_version="5.1", package_type="pypi", purl="pkg:pypi/pyyaml@5.1",
                found_in=f"{SITE}/PyYAML-5.1.dist-info/METADATA")
    return [
        Vulnerability("CVE-2019-10906", "PYSEC-2019-217", aliases=["CVE-2019-10906", "GHSA-462w-v97r-4m45"],
                      fixed_versions=["2.10.1"], status="fixed", severity="UNKNOWN",
                      title="In Pallets Jinja before 2.10.1, str.format_map allows a sandbox escape.",
                      references=["https://nvd.nist.gov/vuln/detail/CVE-2019-10906"], **jinja),  # type: ignore[arg-type]
        Vulnerability("CVE-2024-56326", "PYSEC-2026-1475", fixed_versions=["3.1.5"], status="fixed",
                      severity="HIGH", title="Jinja has a sandbox breakout through indirect reference to format method",
                      cvss=[CVSS("3.1", "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8, "ghsa")],
                      description="A | pipe and *stars* in <markdown>",
                      **jinja),  # type: ignore[arg-type]
        Vulnerability("CVE-2020-14343", "PYSEC-2021-142", fixed_versions=["5.4"], status="fixed",
                      severity="CRITICAL", cvss=[CVSS("3.1", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8)],
                      title="PyYAML full_load arbitrary code execution", **yaml),  # type: ignore[arg-type]
        Vulnerability("CVE-2023-0286", "DSA-5343-1", "libssl3", "3.0.7-1", "deb", purl="pkg:deb/debian/libssl3@3.0.7-1",
                      found_in="var/lib/dpkg/status", status="affected", severity="MEDIUM",
                      title="X.400 address type confusion\x07 in X.509 GeneralName"),
    ]
