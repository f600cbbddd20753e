"""One call from a target string to an inventory, shared by every command that reads images."""

from __future__ import annotations

from dataclasses import dataclass

from moat.image.source import SourceOptions, make_source, split_target
from moat.inventory.scan import LayerCallback, scan_image
from moat.model import Inventory
from moat.paths import cache_dir, scratch_dir


@dataclass(slots=True)
class ScanSettings:
    cache_dir: str | None = None
    use_cache: bool = True


def inventory_target(
    target: str,
    options: SourceOptions | None = None,
    settings: ScanSettings | None = None,
    on_layer: LayerCallback | None = None,
) -> Inventory:
    """Inventory an image, directory or SBOM named the way users write targets."""
    options = options or SourceOptions()
    settings = settings or ScanSettings()
    scheme, rest = split_target(target)
    if scheme == "sbom":
        from moat.sbom.reader import read_sbom

        return read_sbom(rest)
    root = cache_dir(settings.cache_dir)
    scratch = scratch_dir(root)
    if options.tmp_dir is None:
        options.tmp_dir = str(scratch)
    opened = make_source(target, options).open()
    try:
        return scan_image(
            opened, root if settings.use_cache else None, on_layer=on_layer, tmp_root=scratch
        )
    finally:
        opened.close()
