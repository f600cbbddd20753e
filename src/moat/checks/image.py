"""Configuration checks of an image (``moat image --scanners config``): the image config, its
history and the setuid/setgid files of its layers against the image-config rules (CIS Docker
section 4 and the secrets-in-config rules)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from moat.checks.document import TargetKind
from moat.checks.engine import CheckRun, evaluate
from moat.checks.rule import builtin_rules, rules_for
from moat.checks.targets.image_config import image_config_document
from moat.model import Inventory


def check_image(
    inv: Inventory,
    label: str,
    setuid_files: Sequence[Mapping[str, Any]] | None,
    *,
    include_manual: bool = False,
) -> CheckRun:
    """Evaluate the built-in image-config rules on one inventoried image.

    ``setuid_files`` None means the layers were not walked (an SBOM target): rules that need the
    file list then see none and say nothing, rather than pass the image.
    """
    document = image_config_document(inv, label, setuid_files)
    rules = [item for item in rules_for([TargetKind.IMAGE_CONFIG], builtin_rules().values())
             if include_manual or not item.manual]
    return evaluate([document], rules)
