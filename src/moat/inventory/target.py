"""One call from a target string to an inventory, shared by every command that reads images."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from moat.image.source import OpenedImage, SourceOptions, make_source, split_target
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
    with opened_target(target, options, settings) as opened:
        return inventory_opened(target, opened, settings, on_layer)


@contextmanager
def opened_target(target: str, options: SourceOptions | None = None,
                  settings: ScanSettings | None = None) -> Iterator[OpenedImage | None]:
    """The opened image of ``target`` (None for an ``sbom:`` target, which has no layers), for
    commands that walk the layers more than once (inventory, then secrets and setuid files) and must
    fetch a registry image only once."""
    options = options or SourceOptions()
    settings = settings or ScanSettings()
    scheme, _ = split_target(target)
    if scheme == "sbom":
        yield None
        return
    if options.tmp_dir is None:
        options.tmp_dir = str(scratch_dir(cache_dir(settings.cache_dir)))
    opened = make_source(target, options).open()
    try:
        yield opened
    finally:
        opened.close()


def inventory_opened(
    target: str, opened: OpenedImage | None, settings: ScanSettings | None = None,
    on_layer: LayerCallback | None = None,
) -> Inventory:
    """Inventory an image opened by :func:`opened_target` (``opened`` None: read the SBOM)."""
    settings = settings or ScanSettings()
    if opened is None:
        from moat.sbom.reader import read_sbom

        return read_sbom(split_target(target)[1])
    root = cache_dir(settings.cache_dir)
    return scan_image(opened, root if settings.use_cache else None, on_layer=on_layer, tmp_root=scratch_dir(root))
