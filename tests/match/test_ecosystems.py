"""Which feed, name and version each kind of package is matched with.

Expected ecosystem strings are the OSV schema's (https://ossf.github.io/osv-schema/#affectedpackage-field)
and the ones the real data in ../shared/vulndata uses.
"""

from __future__ import annotations

import json
import zipfile

import pytest

from corpus import SHARED
from moat.match.ecosystems import Lookup, distro_ecosystem, lookup_for
from moat.model import OSInfo, Package

DEBIAN_12 = OSInfo("debian", "12.5")
UBUNTU = OSInfo("ubuntu", "22.04")
ALPINE = OSInfo("alpine", "3.19.1")
ALMA = OSInfo("alma", "9.3")


@pytest.mark.parametrize(
    ("os_info", "package_type", "expected"),
    [
        (DEBIAN_12, "deb", "Debian:12"),
        (OSInfo("debian", "11"), "deb", "Debian:11"),
        (OSInfo("debian", ""), "deb", None),  # testing/sid without a number: no release feed
        (UBUNTU, "deb", "Ubuntu:22.04"),
        (OSInfo("ubuntu", "24.04.1"), "deb", "Ubuntu:24.04"),
        (ALPINE, "apk", "Alpine:v3.19"),
        (OSInfo("alpine", "3.20.0_alpha20240329"), "apk", "Alpine:v3.20"),
        (OSInfo("wolfi", "20230201"), "apk", "Wolfi"),
        (ALMA, "rpm", "AlmaLinux:9"),
        (OSInfo("rocky", "8.9"), "rpm", "Rocky Linux:8"),
        (OSInfo("redhat", "9.4"), "rpm", "Red Hat:enterprise_linux:9:"),
        (OSInfo("amazon", "2023"), "rpm", None),
        (DEBIAN_12, "rpm", None),
        (ALPINE, "deb", None),
        (None, "deb", None),
    ],
)
def test_distro_ecosystem(os_info: OSInfo | None, package_type: str, expected: str | None) -> None:
    assert distro_ecosystem(os_info, package_type) == expected


def test_debian_binary_is_looked_up_by_source_name_and_source_version() -> None:
    # libssl3 is built from openssl; a binNMU gives the binary "+b1" that the source never had.
    package = Package("libssl3", "3.0.11-1~deb12u2+b1", "deb", source_name="openssl", source_version="3.0.11-1~deb12u2")
    assert lookup_for(package, DEBIAN_12) == Lookup("Debian:12", "openssl", "3.0.11-1~deb12u2", os_package=True)


def test_debian_binary_without_source_falls_back_to_itself() -> None:
    package = Package("bash", "5.2.15-2+b2", "deb")
    assert lookup_for(package, DEBIAN_12) == Lookup("Debian:12", "bash", "5.2.15-2+b2", os_package=True)


def test_ubuntu_uses_the_source_package_as_the_usn_names_it() -> None:
    with zipfile.ZipFile(SHARED / "vulndata" / "osv" / "Ubuntu.zip") as archive:
        usn = json.loads(archive.read("USN-6854-1.json"))
    (entry,) = usn["affected"]
    package = Package("libssl3", "3.0.2-0ubuntu1.15", "deb", source_name="openssl", source_version="3.0.2-0ubuntu1.15")
    lookup = lookup_for(package, UBUNTU)
    assert lookup is not None
    assert lookup.name == entry["package"]["name"]
    assert entry["package"]["ecosystem"].startswith(lookup.ecosystem)  # the store drops ":LTS"


def test_alpine_subpackage_uses_its_origin() -> None:
    package = Package("libcrypto3", "3.1.4-r5", "apk", source_name="openssl", source_version="3.1.4-r5")
    assert lookup_for(package, ALPINE) == Lookup("Alpine:v3.19", "openssl", "3.1.4-r5", os_package=True)


@pytest.mark.parametrize(
    ("package", "version"),
    [
        (Package("grub2-common", "1:2.06-27.el9_0.7.alma", "rpm", epoch=1, release="27.el9_0.7.alma"),
         "1:2.06-27.el9_0.7.alma"),
        (Package("openssh", "8.7p1-29.el9_2", "rpm", release="29.el9_2"), "8.7p1-29.el9_2"),
        (Package("bash", "0:5.1.8-6.el9_1", "rpm", epoch=0), "5.1.8-6.el9_1"),
        # an epoch only in its own field is put back, as AlmaLinux writes fixed versions
        (Package("grub2-tools", "2.06-27.el9_0.7.alma", "rpm", epoch=1), "1:2.06-27.el9_0.7.alma"),
    ],
)
def test_rpm_binary_name_and_evr(package: Package, version: str) -> None:
    assert lookup_for(package, ALMA) == Lookup("AlmaLinux:9", package.name, version, os_package=True)


def test_almalinux_feed_names_binary_packages() -> None:
    """The assumption behind binary-name lookup, on the real ALSA record."""
    with zipfile.ZipFile(SHARED / "vulndata" / "osv" / "AlmaLinux-9.zip") as archive:
        record = json.loads(archive.read("ALSA-2023:4412.json"))
    names = {entry["package"]["name"] for entry in record["affected"]}
    assert {"openssh", "openssh-clients", "openssh-server"} <= names


def test_red_hat_is_a_prefix_over_product_streams() -> None:
    lookup = lookup_for(Package("openssl-libs", "1:3.0.7-27.el9", "rpm", epoch=1), OSInfo("redhat", "9.4"))
    assert lookup is not None and lookup.prefix and lookup.ecosystem == "Red Hat:enterprise_linux:9:"


@pytest.mark.parametrize(
    ("package", "expected"),
    [
        (Package("Jinja2", "2.10", "pypi", purl="pkg:pypi/jinja2@2.10"), Lookup("PyPI", "jinja2", "2.10")),
        (Package("zope.interface", "5.0", "pypi"), Lookup("PyPI", "zope-interface", "5.0")),
        (Package("@babel/traverse", "7.22.5", "npm", purl="pkg:npm/%40babel/traverse@7.22.5"),
         Lookup("npm", "@babel/traverse", "7.22.5")),
        (Package("stdlib", "v1.21.3", "golang", purl="pkg:golang/stdlib@v1.21.3"), Lookup("Go", "stdlib", "1.21.3")),
        (Package("golang.org/x/net", "v0.17.0", "golang"), Lookup("Go", "golang.org/x/net", "0.17.0")),
        (Package("golang.org/x/crypto", "v0.0.0-20201216223049-8b5274cf687f", "golang"),
         Lookup("Go", "golang.org/x/crypto", "0.0.0-20201216223049-8b5274cf687f")),
        (Package("h2", "0.3.16", "cargo"), Lookup("crates.io", "h2", "0.3.16")),
        (Package("org.apache.logging.log4j:log4j-core", "2.14.1", "maven"),
         Lookup("Maven", "org.apache.logging.log4j:log4j-core", "2.14.1")),
        # from an SBOM: the group only in the purl
        (Package("log4j-core", "2.14.1", "maven", purl="pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1"),
         Lookup("Maven", "org.apache.logging.log4j:log4j-core", "2.14.1")),
        (Package("rack", "3.0.9", "gem"), Lookup("RubyGems", "rack", "3.0.9")),
        (Package("guzzlehttp/guzzle", "v7.4.3", "composer"), Lookup("Packagist", "guzzlehttp/guzzle", "7.4.3")),
        (Package("Newtonsoft.Json", "12.0.3", "nuget"), Lookup("NuGet", "newtonsoft.json", "12.0.3")),
    ],
)
def test_language_packages(package: Package, expected: Lookup) -> None:
    # Language packages match their own ecosystem whatever the image's OS is.
    assert lookup_for(package, DEBIAN_12) == expected
    assert lookup_for(package, None) == expected


@pytest.mark.parametrize(
    "package",
    [
        Package("log4j-core", "2.14.1", "maven"),  # no group anywhere: no Maven name to look up
        Package("mystery", "1.0", "generic"),
        Package("stdlib", "", "golang"),  # a devel toolchain has no version
        Package("bash", "5.2", "deb"),  # no OS: no distro feed
    ],
)
def test_unmatchable_packages(package: Package) -> None:
    assert lookup_for(package, None) is None


def test_lookup_names_exist_in_the_real_data() -> None:
    """The names produced for real packages are the names the feeds really use."""
    wanted = {
        ("Go.zip", "Go", "stdlib"),
        ("Maven.zip", "Maven", "org.apache.logging.log4j:log4j-core"),
        ("npm.zip", "npm", "lodash"),
        ("Packagist.zip", "Packagist", "guzzlehttp/guzzle"),
        ("NuGet.zip", "NuGet", "Newtonsoft.Json"),
        ("RubyGems.zip", "RubyGems", "rack"),
        ("crates.io.zip", "crates.io", "h2"),
    }
    for zip_name, ecosystem, name in wanted:
        with zipfile.ZipFile(SHARED / "vulndata" / "osv" / zip_name) as archive:
            found = {
                (entry["package"]["ecosystem"], entry["package"]["name"])
                for member in archive.namelist()
                for entry in json.loads(archive.read(member)).get("affected", [])
            }
        assert (ecosystem, name) in found, (zip_name, name)
