"""What every SBOM writer needs from an inventory: stable references, the dependency graph, and the
image's own purl. Shared by the CycloneDX and SPDX writers so both describe the same graph."""

from __future__ import annotations

from collections.abc import Sequence

from packageurl import PackageURL

from moat.model import Artifact, Package


def package_refs(packages: Sequence[Package]) -> list[str]:
    """One stable, unique reference per package: its purl plus the file it was found in.

    The same package found in two files (two copies of a wheel, say) must stay two entries, so the
    file is part of the reference; a counter separates true duplicates.
    """
    refs: list[str] = []
    seen: set[str] = set()
    for package in packages:
        base = package.purl or f"{package.type}:{package.name}@{package.version}"
        ref = f"{base}#{package.found_in}" if package.found_in else base
        candidate, count = ref, 1
        while candidate in seen:
            count += 1
            candidate = f"{ref}~{count}"
        seen.add(candidate)
        refs.append(candidate)
    return refs


def resolve_dependencies(packages: Sequence[Package]) -> tuple[dict[int, list[int]], dict[int, list[str]]]:
    """Map each package's ``depends_on`` ids (``name@version``) to package indexes.

    An id is looked up among packages found in the same file first (a lockfile's graph stays inside
    the lockfile), then anywhere. Ids that match no other package are returned separately so a writer
    can keep them: nothing Moat read is dropped on the way to an SBOM.
    """
    by_id: dict[str, list[int]] = {}
    for index, package in enumerate(packages):
        by_id.setdefault(package.id, []).append(index)
    resolved: dict[int, list[int]] = {}
    unresolved: dict[int, list[str]] = {}
    for index, package in enumerate(packages):
        for dep in dict.fromkeys(package.depends_on):
            candidates = [other for other in by_id.get(dep, []) if other != index]
            if not candidates:
                unresolved.setdefault(index, []).append(dep)
                continue
            same_file = [other for other in candidates if packages[other].found_in == package.found_in]
            target = (same_file or candidates)[0]
            if target not in resolved.setdefault(index, []):
                resolved[index].append(target)
    return resolved, unresolved


def oci_purl(artifact: Artifact) -> str | None:
    """``pkg:oci/NAME@DIGEST`` for an image with a digest (purl-spec's oci type), else None."""
    if artifact.type != "container_image" or not artifact.digest:
        return None
    reference = artifact.name.split("@", 1)[0]
    repository, _, last = reference.rpartition("/")
    tag = None
    if ":" in last:
        last, tag = last.split(":", 1)
    name = last.lower()
    if not name:
        return None
    qualifiers: dict[str, str] = {}
    full_repository = f"{repository}/{last}" if repository else last
    if full_repository.lower() != name:
        qualifiers["repository_url"] = full_repository
    if tag:
        qualifiers["tag"] = tag
    if artifact.architecture:
        qualifiers["arch"] = artifact.architecture
    purl = PackageURL(type="oci", name=name, version=artifact.digest, qualifiers=qualifiers or None)
    return purl.to_string()


