"""The Kubernetes object model: one document per object, List kinds expanded with their lines right,
and the pod-spec / container helpers every workload kind goes through."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from moat.checks.document import TargetKind
from moat.checks.targets.kubernetes import (
    containers,
    kubernetes_documents,
    looks_like_kubernetes,
    namespace_of,
    pod_spec,
    workload,
)
from moat.checks.yamlload import load_yaml_documents, load_yaml_file

MULTI = textwrap.dedent("""\
    apiVersion: v1
    kind: Namespace
    metadata:
      name: shop
    ---
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: web
      namespace: shop
    spec:
      template:
        metadata:
          annotations:
            container.apparmor.security.beta.kubernetes.io/app: runtime/default
        spec:
          initContainers:
            - name: migrate
              image: shop/migrate:1.2
          containers:
            - name: app
              image: shop/web:1.2
              securityContext:
                privileged: true
            - name: sidecar
              image: envoyproxy/envoy:v1.30
    ---
    # a comment-only document is dropped by the loader
    ---
    apiVersion: batch/v1
    kind: CronJob
    metadata:
      name: report
    spec:
      schedule: "0 * * * *"
      jobTemplate:
        spec:
          template:
            spec:
              containers:
                - name: report
                  image: shop/report:2
              ephemeralContainers:
                - name: debug
                  image: busybox
    """)

LIST = textwrap.dedent("""\
    apiVersion: v1
    kind: List
    items:
      - apiVersion: v1
        kind: Pod
        metadata:
          name: first
        spec:
          hostPID: true
          containers:
            - name: a
              image: nginx
      - "not an object"
      - apiVersion: v1
        kind: Pod
        metadata:
          name: second
          namespace: ops
        spec:
          containers:
            - name: b
              image: nginx
              securityContext:
                privileged: true
    """)


def _docs(text: str, label: str = "manifests.yaml"):
    return kubernetes_documents(load_yaml_documents(text, label), label)


def test_one_document_per_object_with_names_and_ranges() -> None:
    docs = _docs(MULTI)
    assert [doc.name for doc in docs] == ["Namespace/shop", "shop/Deployment/web", "CronJob/report"]
    assert all(doc.kind == TargetKind.KUBERNETES and doc.path == "manifests.yaml" for doc in docs)
    assert (docs[0].start_line, docs[1].start_line, docs[2].start_line) == (1, 6, 30)
    assert docs[1].end_line == 26


def test_line_of_a_nested_field_is_the_source_line() -> None:
    deployment = _docs(MULTI)[1]
    path = ("spec", "template", "spec", "containers", 0, "securityContext", "privileged")
    assert deployment.line_of(path) == 24
    assert MULTI.splitlines()[23].strip() == "privileged: true"


def test_list_items_become_documents_with_rebased_lines() -> None:
    docs = _docs(LIST)
    assert [doc.name for doc in docs] == ["Pod/first", "ops/Pod/second"]
    first, second = docs
    assert first.line_of(("spec", "hostPID")) == 9
    assert LIST.splitlines()[8].strip() == "hostPID: true"
    privileged = ("spec", "containers", 0, "securityContext", "privileged")
    assert LIST.splitlines()[second.line_of(privileged) - 1].strip() == "privileged: true"
    assert first.start_line == 4 and first.end_line == 12
    assert second.start_line == 14
    assert ("items", 2, "kind") not in second.lines and ("kind",) in second.lines


def test_typed_list_kind_is_expanded() -> None:
    text = LIST.replace("kind: List", "kind: PodList", 1)
    assert [doc.name for doc in _docs(text)] == ["Pod/first", "ops/Pod/second"]


def test_list_without_items_is_an_ordinary_object() -> None:
    docs = _docs("apiVersion: v1\nkind: ConfigMapList\nmetadata: {}\n")
    assert [doc.name for doc in docs] == ["ConfigMapList"]


@pytest.mark.parametrize(("data", "expected"), [
    ({"apiVersion": "v1", "kind": "Pod"}, True),
    ({"apiVersion": 1, "kind": "Pod"}, False),
    ({"kind": "Pod"}, False),
    (["apiVersion", "kind"], False),
    ("apiVersion: v1", False),
])
def test_looks_like_kubernetes(data: object, expected: bool) -> None:
    assert looks_like_kubernetes(data) is expected


def test_pod_spec_for_every_workload_kind() -> None:
    template = {"template": {"spec": {"containers": []}}}
    cases = {
        "Pod": ({"spec": {"containers": []}}, ("spec",)),
        "Deployment": ({"spec": template}, ("spec", "template", "spec")),
        "StatefulSet": ({"spec": template}, ("spec", "template", "spec")),
        "DaemonSet": ({"spec": template}, ("spec", "template", "spec")),
        "ReplicaSet": ({"spec": template}, ("spec", "template", "spec")),
        "ReplicationController": ({"spec": template}, ("spec", "template", "spec")),
        "Job": ({"spec": template}, ("spec", "template", "spec")),
        "CronJob": ({"spec": {"jobTemplate": {"spec": template}}}, ("spec", "jobTemplate", "spec", "template", "spec")),
    }
    for kind, (body, path) in cases.items():
        found = pod_spec({"apiVersion": "v1", "kind": kind, **body})
        assert found is not None and found[0] == path, kind
    assert pod_spec({"apiVersion": "v1", "kind": "Service", "spec": {}}) is None
    assert pod_spec({"apiVersion": "apps/v1", "kind": "Deployment", "spec": None}) is None
    assert pod_spec({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"template": ["x"]}}) is None


def test_containers_cover_all_three_lists_in_start_order() -> None:
    deployment, cronjob = _docs(MULTI)[1:]
    refs = containers(deployment.data)
    assert [(ref.name, ref.kind) for ref in refs] == [
        ("migrate", "initContainers"), ("app", "containers"), ("sidecar", "containers")]
    assert refs[1].path == ("spec", "template", "spec", "containers", 0)
    assert [ref.name for ref in containers(cronjob.data)] == ["report", "debug"]
    assert containers({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [None, "x", {}]}})[0].name \
        == "containers[2]"


def test_workload_is_computed_once_and_cached() -> None:
    deployment = _docs(MULTI)[1]
    first = workload(deployment)
    assert first is not None and first is workload(deployment)
    assert first.metadata_path == ("spec", "template", "metadata")
    assert "container.apparmor.security.beta.kubernetes.io/app" in first.annotations
    namespace = _docs(MULTI)[0]
    assert workload(namespace) is None and workload(namespace) is None


def test_namespace_of() -> None:
    assert namespace_of({"metadata": {"namespace": "prod"}}) == "prod"
    assert namespace_of({"metadata": None}) == ""
    assert namespace_of("junk") == ""


def test_hostile_shapes_do_not_raise(tmp_path: Path) -> None:
    manifest = tmp_path / "odd.yaml"
    manifest.write_text(textwrap.dedent("""\
        apiVersion: v1
        kind: Pod
        metadata: [1, 2]
        spec:
          containers: {name: not-a-list}
        ---
        apiVersion: v1
        kind: List
        items: [1, null, {apiVersion: v1, kind: Pod}]
        """))
    docs = kubernetes_documents(load_yaml_file(manifest), str(manifest))
    assert [doc.name for doc in docs] == ["Pod", "Pod"]
    assert containers(docs[0].data) == []
    assert docs[1].line_of(("kind",)) == 9
