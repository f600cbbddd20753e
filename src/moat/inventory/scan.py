"""From an opened image to an inventory: analyze (or recall) each layer, merge, finish purls."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from moat.image.source import OpenedImage
from moat.inventory.analyzer import Analyzer, all_analyzers, analyzer_versions
from moat.inventory.cache import LayerCache
from moat.inventory.layer_analysis import AnalyzerIndex, LayerResult, analyze_layer
from moat.inventory.merge import merge_layers
from moat.inventory.osdetect import detect_os
from moat.inventory.purl import distro_qualifier, make_purl
from moat.inventory.reconcile import OS_PACKAGE_TYPES, reconcile
from moat.model import Inventory, OSInfo, Package

LayerCallback = Callable[[int, int, str, bool], None]
"""Called as (index, total, layer name, cached) when a layer starts; drives the progress display."""

PURL_NAMESPACE = {
    "redhat": "redhat",
    "alma": "almalinux",
    "centos-stream": "centos",
    "sles": "suse",
    "slem": "suse",
    "opensuse-leap": "opensuse",
    "opensuse-tumbleweed": "opensuse",
    "cbl-mariner": "mariner",
}
"""OS family (as detect_os names it) → purl namespace, where the two differ."""
DEFAULT_NAMESPACE = {"deb": "debian", "apk": "alpine", "rpm": "redhat", "opkg": "openwrt"}


def scan_image(
    image: OpenedImage,
    cache_root: Path | None,
    *,
    on_layer: LayerCallback | None = None,
    analyzers: list[Analyzer] | None = None,
    tmp_root: Path | None = None,
) -> Inventory:
    """Inventory every package in the image. ``cache_root`` None disables the layer cache."""
    analyzers = analyzers if analyzers is not None else all_analyzers()
    index = AnalyzerIndex(analyzers)
    cache = LayerCache(cache_root, analyzer_versions(analyzers)) if cache_root else None
    tmp_dir = tempfile.mkdtemp(prefix="scan-", dir=tmp_root)
    warnings: list[str] = []
    results: list[tuple[str | None, LayerResult]] = []
    try:
        total = len(image.layers)
        for position, layer in enumerate(image.layers):
            info = image.artifact.layers[position] if position < len(image.artifact.layers) else None
            cached = cache.get(layer.diff_id) if cache and layer.diff_id else None
            name = layer.diff_id or layer.digest or f"layer {position + 1}"
            if on_layer:
                on_layer(position, total, name, cached is not None)
            if cached is not None:
                result = cached
            else:
                result = analyze_layer(layer.reader(), index, tmp_dir)
                if cache and result.diff_id:
                    cache.put(result.diff_id, result)
            if info is not None:
                info.cached = cached is not None
                if not info.diff_id and result.diff_id:
                    info.diff_id = result.diff_id
            warnings.extend(result.warnings)
            results.append((result.diff_id or layer.diff_id, result))
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    tree = merge_layers(results)
    os_info = detect_os(tree.os_findings())
    packages = reconcile(tree.packages(), tree.owned_paths())
    declared = tree.package_licenses()
    for package in packages:
        if not package.licenses:
            package.licenses = list(declared.get(f"{package.type}:{package.name}", []))
        if package.type in OS_PACKAGE_TYPES and not package.purl:
            package.purl = os_package_purl(package, os_info)
    return Inventory(artifact=image.artifact, os=os_info, packages=packages, warnings=warnings)


def os_package_purl(package: Package, os_info: OSInfo | None) -> str:
    """A purl for a deb/apk/rpm package, namespaced by the distro it was built for."""
    family = os_info.family if os_info else None
    namespace = PURL_NAMESPACE.get(family or "", family or DEFAULT_NAMESPACE[package.type])
    qualifiers = {
        "arch": package.arch or "",
        "distro": distro_qualifier(family, os_info.name if os_info else None),
    }
    if package.type == "rpm" and package.epoch:
        qualifiers["epoch"] = str(package.epoch)
    if package.type == "rpm":
        qualifiers["upstream"] = package.extra.get("source_rpm", "")
    elif package.source_name and package.source_name != package.name:
        qualifiers["upstream"] = package.source_name
    version = package.version
    if package.type == "rpm" and package.epoch and ":" in version:
        version = version.split(":", 1)[1]
    return make_purl(package.type, package.name, version, namespace=namespace, qualifiers=qualifiers)
