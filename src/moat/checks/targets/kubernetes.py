"""Kubernetes manifests as documents: one :class:`Document` per object, with helpers rules share.

A manifest file may hold many objects (``---`` separated) and a ``List`` (``kind: List`` or any
``*List`` with ``items``, as ``kubectl get -o yaml`` writes) holds more. Each object becomes its own
document so findings name the object (``prod/Deployment/web``) and rules never walk lists of objects.
A list item keeps its source lines: its line map is the list's map with the ``("items", i)`` prefix
stripped, so ``doc.line_of(("spec", "hostPID"))`` is the line in the original file.

Rules about pods read the pod spec wherever the workload kind keeps it (:func:`pod_spec`) and its
containers in all three lists (:func:`containers`). :func:`workload` computes both once per document
and keeps them in ``doc.facts`` (rules run one after another on the same document, so forty rules
share one walk).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from moat.checks.document import Document, JsonPath, TargetKind
from moat.checks.yamlload import YamlDocument

POD_SPEC_PATHS: Mapping[str, JsonPath] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "PodTemplate": ("template", "spec"),
}
"""Where each workload kind keeps its pod spec. The pod's metadata (annotations such as the AppArmor
ones) sits beside it: the same path with ``metadata`` instead of the last ``spec``."""

CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")
"""The pod spec's container lists, in the order the kubelet starts them."""

_FACTS_KEY = "k8s.workload"
MAX_LIST_DEPTH = 4
"""A ``List`` inside a ``List`` is legal but rare; deeper nesting is not expanded."""


class ContainerRef(NamedTuple):
    """One container of a pod spec: where it is, what it says, which list it is in."""

    path: JsonPath
    data: dict[str, Any]
    kind: str
    """``initContainers``, ``containers`` or ``ephemeralContainers``."""

    @property
    def name(self) -> str:
        name = self.data.get("name")
        return name if isinstance(name, str) and name else f"{self.kind}[{self.path[-1]}]"


@dataclass(frozen=True, slots=True)
class Workload:
    """A pod-running object's pod spec, pod metadata and containers, computed once per document."""

    spec_path: JsonPath
    spec: dict[str, Any]
    metadata_path: JsonPath
    metadata: dict[str, Any]
    """The pod template's metadata (for a Pod, the object's own)."""
    containers: tuple[ContainerRef, ...]
    security_context: dict[str, Any]
    """The pod-level ``securityContext`` ({} when absent or not a mapping)."""
    security_context_path: JsonPath
    is_windows: bool
    """``spec.os.name: windows`` or a ``kubernetes.io/os: windows`` node selector."""

    @property
    def annotations(self) -> dict[str, Any]:
        return mapping(self.metadata.get("annotations"))


def mapping(value: Any) -> dict[str, Any]:
    """``value`` when it is a mapping, else an empty one: manifests put ``null`` or junk anywhere."""
    return value if isinstance(value, dict) else {}


def looks_like_kubernetes(data: Any) -> bool:
    """A Kubernetes object: a mapping with a string ``apiVersion`` and ``kind``."""
    return isinstance(data, dict) and isinstance(data.get("apiVersion"), str) and isinstance(data.get("kind"), str)


def is_list_kind(data: dict[str, Any]) -> bool:
    """``kind: List`` or ``*List`` (``PodList``, ``DeploymentList``) with an ``items`` list."""
    kind = data.get("kind")
    return isinstance(kind, str) and kind.endswith("List") and isinstance(data.get("items"), list)


def object_name(data: dict[str, Any]) -> str:
    """``Kind/name``, or ``namespace/Kind/name`` when the object names its namespace."""
    kind = str(data.get("kind", ""))
    metadata = mapping(data.get("metadata"))
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        generate = metadata.get("generateName")
        name = f"{generate}*" if isinstance(generate, str) and generate else ""
    label = f"{kind}/{name}" if name else kind
    namespace = namespace_of(data)
    return f"{namespace}/{label}" if namespace else label


def namespace_of(obj: Any) -> str:
    """``metadata.namespace``, or "" when the manifest leaves it to ``kubectl``'s context."""
    namespace = mapping(mapping(obj).get("metadata")).get("namespace")
    return namespace if isinstance(namespace, str) else ""


def kubernetes_documents(yaml_docs: list[YamlDocument], label: str) -> list[Document]:
    """One document per Kubernetes object in ``yaml_docs`` (List kinds expanded)."""
    documents: list[Document] = []
    for yaml_doc in yaml_docs:
        if looks_like_kubernetes(yaml_doc.data):
            _expand(yaml_doc.data, yaml_doc.lines, yaml_doc.start_line, yaml_doc.end_line, label, documents, 0)
    return documents


def _expand(data: dict[str, Any], lines: Mapping[JsonPath, int], start: int, end: int, label: str,
            out: list[Document], depth: int) -> None:
    if not (is_list_kind(data) and depth < MAX_LIST_DEPTH):
        out.append(Document(TargetKind.KUBERNETES, label, data, name=object_name(data), lines=lines,
                            start_line=start, end_line=end))
        return
    items: list[Any] = data["items"]
    per_item = _split_lines(lines, len(items))
    starts = [lines.get(("items", index), 0) for index in range(len(items))]
    for index, item in enumerate(items):
        if not looks_like_kubernetes(item):
            continue
        item_start = starts[index] or start
        following = next((line for line in starts[index + 1:] if line), 0)
        item_end = following - 1 if following else end
        _expand(item, per_item[index], item_start, max(item_start, item_end), label, out, depth + 1)


def _split_lines(lines: Mapping[JsonPath, int], count: int) -> list[dict[JsonPath, int]]:
    """The line map of each ``items[i]``, re-keyed without the ``("items", i)`` prefix (one pass)."""
    per_item: list[dict[JsonPath, int]] = [{} for _ in range(count)]
    for path, line in lines.items():
        if len(path) > 2 and path[0] == "items":
            index = path[1]
            if isinstance(index, int) and 0 <= index < count:
                per_item[index][path[2:]] = line
    return per_item


def pod_spec(obj: Any) -> tuple[JsonPath, dict[str, Any]] | None:
    """The pod spec of a workload object and its path, or None (not a workload, or no spec)."""
    if not isinstance(obj, dict):
        return None
    path = POD_SPEC_PATHS.get(str(obj.get("kind")))
    if path is None:
        return None
    node: Any = obj
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return (path, node) if isinstance(node, dict) else None


def containers(obj: Any) -> list[ContainerRef]:
    """Every container of a workload (init, regular, ephemeral) with its path, data and list name."""
    found = pod_spec(obj)
    return _containers(*found) if found else []


def _containers(spec_path: JsonPath, spec: dict[str, Any]) -> list[ContainerRef]:
    result: list[ContainerRef] = []
    for kind in CONTAINER_LISTS:
        items = spec.get(kind)
        if not isinstance(items, list):
            continue
        for index, item in enumerate(items):
            if isinstance(item, dict):
                result.append(ContainerRef((*spec_path, kind, index), item, kind))
    return result


def workload(doc: Document) -> Workload | None:
    """The document's pod spec and containers, computed on first use and kept in ``doc.facts``."""
    if _FACTS_KEY in doc.facts:
        cached: Workload | None = doc.facts[_FACTS_KEY]
        return cached
    result: Workload | None = None
    found = pod_spec(doc.data)
    if found is not None:
        spec_path, spec = found
        metadata_path = (*spec_path[:-1], "metadata")
        node: Any = doc.data
        for key in metadata_path:
            node = mapping(node).get(str(key))
        os_name = mapping(spec.get("os")).get("name")
        selector = mapping(spec.get("nodeSelector")).get("kubernetes.io/os")
        result = Workload(spec_path, spec, metadata_path, mapping(node), tuple(_containers(spec_path, spec)),
                          mapping(spec.get("securityContext")), (*spec_path, "securityContext"),
                          os_name == "windows" or selector == "windows")
    doc.facts[_FACTS_KEY] = result
    return result


def security_context(ref: ContainerRef) -> dict[str, Any]:
    """A container's ``securityContext`` ({} when absent or not a mapping)."""
    context = ref.data.get("securityContext")
    return context if isinstance(context, dict) else {}


def effective(pod: Workload, ref: ContainerRef, key: str) -> tuple[Any, JsonPath]:
    """The value of a ``securityContext`` field that both levels carry (``runAsUser``, ``runAsNonRoot``,
    ``runAsGroup``, ``seccompProfile``, ``seLinuxOptions``, ``appArmorProfile``, ``windowsOptions``) as
    the kubelet applies it: the container's own value when set, else the pod's; with the path it was
    read from. ``(None, ())`` when neither level sets it."""
    own = security_context(ref).get(key)
    if own is not None:
        return own, (*ref.path, "securityContext", key)
    inherited = pod.security_context.get(key)
    if inherited is not None:
        return inherited, (*pod.security_context_path, key)
    return None, ()


def user_namespaced(pod: Workload) -> bool:
    """``hostUsers: false``: the pod runs in its own user namespace, so UID 0 inside is not root on the
    node (Pod Security Standards relax the non-root controls for such pods)."""
    return pod.spec.get("hostUsers") is False
