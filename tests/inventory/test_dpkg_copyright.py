"""Debian licenses from real copyright files: this machine's /usr/share/doc."""

from __future__ import annotations

import re
from pathlib import Path

from corpus import file_input, prefilter_accepts
from moat.inventory.analyzers.dpkg_copyright import DpkgCopyrightAnalyzer, licenses_in

DOC = Path("/usr/share/doc")


def test_selects_only_package_copyright_files() -> None:
    analyzer = DpkgCopyrightAnalyzer()
    assert prefilter_accepts(analyzer, "usr/share/doc/bash/copyright")
    assert not prefilter_accepts(analyzer, "usr/share/doc/bash/examples/copyright")
    assert not prefilter_accepts(analyzer, "opt/app/copyright")


def test_machine_readable_files_give_every_license_line() -> None:
    checked = 0
    for path in sorted(DOC.glob("*/copyright")):
        text = path.read_text(errors="replace")
        if not text.startswith("Format:"):
            continue
        # Independent reading: every first term of a License: line must be reported.
        first_terms = {
            re.split(r"\s+(?:and|or)\s+|,", line.split(":", 1)[1].strip(), flags=re.I)[0].strip().strip("()")
            for line in text.splitlines()
            if line.startswith("License:") and line.split(":", 1)[1].strip()
        }
        result = DpkgCopyrightAnalyzer().analyze(file_input(path, f"usr/share/doc/{path.parent.name}/copyright"))
        found = result.package_licenses.get(f"deb:{path.parent.name}", [])
        assert first_terms <= set(found), path
        checked += 1
    assert checked > 50


def test_known_packages_on_this_machine() -> None:
    def of(package: str) -> list[str]:
        path = DOC / package / "copyright"
        return licenses_in(path.read_text(errors="replace"))

    assert "GPL-2+" in of("dpkg")
    assert "GPL-3+" in of("bash")


def test_free_form_files_fall_back_to_common_licenses() -> None:
    text = (
        "This package is free software; see /usr/share/common-licenses/GPL-2 and\n"
        "/usr/share/common-licenses/LGPL-2.1.\n"
    )
    assert licenses_in(text) == ["GPL-2", "LGPL-2.1"]


def test_no_license_no_result() -> None:
    assert licenses_in("Copyright 2020 nobody\n") == []
