"""Workload rules (MOAT-K8S-001..199) on real manifests: where findings point (file, line of the offending
field, object, container), the pod-level vs container-level precedence the Pod Security Standards
define, and hostile shapes that must not break a rule."""

from __future__ import annotations

import copy
import textwrap
from pathlib import Path
from typing import Any

import pytest

from moat.checks.document import Document
from moat.checks.engine import evaluate
from moat.checks.rule import Rule, builtin_rules
from moat.checks.rules.k8s_pss import NSA_CISA_SECTIONS
from moat.checks.rules.k8s_workload import image_reference
from moat.checks.targets.kubernetes import kubernetes_documents
from moat.checks.yamlload import load_yaml_file
from moat.model import Misconfiguration

MANIFEST = textwrap.dedent("""\
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
      replicas: 2
      template:
        metadata:
          annotations:
            container.apparmor.security.beta.kubernetes.io/web: unconfined
        spec:
          securityContext:
            runAsNonRoot: true
            seccompProfile:
              type: RuntimeDefault
          initContainers:
            - name: migrate
              image: registry.example.com/shop/migrate:1.2
              securityContext:
                allowPrivilegeEscalation: false
                runAsNonRoot: false
          containers:
            - name: web
              image: registry.example.com/shop/web:latest
              ports:
                - containerPort: 8080
                  hostPort: 80
              env:
                - name: DB_PASSWORD
                  valueFrom:
                    secretKeyRef:
                      name: db
                      key: password
              securityContext:
                allowPrivilegeEscalation: false
                capabilities:
                  drop: ["ALL"]
                  add: ["NET_ADMIN"]
            - name: cache
              image: redis@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
              securityContext:
                privileged: true
                seccompProfile:
                  type: Unconfined
    ---
    apiVersion: apps/v1
    kind: DaemonSet
    metadata:
      name: agent
    spec:
      template:
        spec:
          hostPID: true
          volumes:
            - name: sock
              hostPath:
                path: /var/run/docker.sock
          containers:
            - name: agent
              image: agent:2
    ---
    apiVersion: v1
    kind: List
    items:
      - apiVersion: v1
        kind: Pod
        metadata:
          name: debug
        spec:
          containers:
            - name: main
              image: busybox:1.36
          ephemeralContainers:
            - name: shell
              image: busybox:1.36
              securityContext:
                privileged: true
    """)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("k8s") / "shop.yaml"
    path.write_text(MANIFEST)
    return path


@pytest.fixture(scope="module")
def rules() -> dict[str, Rule]:
    return builtin_rules()


def _run(documents: list[Document], rules: dict[str, Rule]) -> list[Misconfiguration]:
    return evaluate(documents, list(rules.values())).findings


def _findings(manifest: Path, rules: dict[str, Rule]) -> list[Misconfiguration]:
    return _run(kubernetes_documents(load_yaml_file(manifest), str(manifest)), rules)


def _line(finding: Misconfiguration) -> str:
    return MANIFEST.splitlines()[finding.line - 1].strip()


def _one(findings: list[Misconfiguration], rule_id: str, container: str = "") -> Misconfiguration:
    matches = [f for f in findings if f.rule_id == rule_id and (not container or f.container == container)]
    assert len(matches) == 1, f"{rule_id}/{container}: {[(f.object, f.container, f.message) for f in matches]}"
    return matches[0]


def test_findings_point_at_file_line_object_and_container(manifest: Path, rules: dict[str, Rule]) -> None:
    findings = _findings(manifest, rules)
    privileged = _one(findings, "MOAT-K8S-005", "cache")
    assert (privileged.file, privileged.object, _line(privileged)) == (str(manifest), "shop/Deployment/web",
                                                                       "privileged: true")
    assert privileged.message == 'container "cache" runs privileged'
    host_port = _one(findings, "MOAT-K8S-011", "web")
    assert _line(host_port) == "hostPort: 80"
    caps = _one(findings, "MOAT-K8S-006", "web")
    assert _line(caps) == 'add: ["NET_ADMIN"]' and caps.evidence == "NET_ADMIN"
    secret = _one(findings, "MOAT-K8S-050", "web")
    assert _line(secret) == "secretKeyRef:"
    apparmor = _one(findings, "MOAT-K8S-012", "web")
    assert _line(apparmor) == "container.apparmor.security.beta.kubernetes.io/web: unconfined"
    latest = _one(findings, "MOAT-K8S-055", "web")
    assert _line(latest) == "image: registry.example.com/shop/web:latest"
    socket = _one(findings, "MOAT-K8S-010")
    assert (socket.object, _line(socket)) == ("DaemonSet/agent", "path: /var/run/docker.sock")
    host_pid = _one(findings, "MOAT-K8S-002")
    assert (host_pid.object, _line(host_pid)) == ("DaemonSet/agent", "hostPID: true")
    ephemeral = _one(findings, "MOAT-K8S-005", "shell")
    assert (ephemeral.object, _line(ephemeral)) == ("Pod/debug", "privileged: true")


def test_pod_level_settings_cover_containers_that_leave_them_unset(manifest: Path, rules: dict[str, Rule]) -> None:
    findings = _findings(manifest, rules)
    non_root = [f for f in findings if f.rule_id == "MOAT-K8S-022" and f.object == "shop/Deployment/web"]
    assert [(f.container, _line(f)) for f in non_root] == [("migrate", "runAsNonRoot: false")]
    seccomp = [f for f in findings if f.rule_id == "MOAT-K8S-024" and f.object == "shop/Deployment/web"]
    assert [(f.container, _line(f)) for f in seccomp] == [("cache", "seccompProfile:")]
    unconfined = [f for f in findings if f.rule_id == "MOAT-K8S-015"]
    assert [(f.container, _line(f)) for f in unconfined] == [("cache", "type: Unconfined")]


def test_clean_manifest_passes_baseline_and_restricted(tmp_path: Path, rules: dict[str, Rule]) -> None:
    path = tmp_path / "clean.yaml"
    digest = "sha256:" + "0123456789abcdef" * 4
    path.write_text(textwrap.dedent("""\
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: api
        spec:
          template:
            spec:
              automountServiceAccountToken: false
              securityContext:
                runAsNonRoot: true
                runAsUser: 10001
                runAsGroup: 10001
                fsGroup: 10001
                seccompProfile:
                  type: RuntimeDefault
              containers:
                - name: api
                  image: registry.example.com/api:1.0@DIGEST
                  securityContext:
                    allowPrivilegeEscalation: false
                    readOnlyRootFilesystem: true
                    capabilities:
                      drop: ["ALL"]
                      add: ["NET_BIND_SERVICE"]
              volumes:
                - name: tmp
                  emptyDir: {}
        """).replace("DIGEST", digest))
    findings = _run(kubernetes_documents(load_yaml_file(path), str(path)), rules)
    pss = [f for f in findings if any(c.startswith("pss:") for c in f.controls)]
    assert pss == [], [(f.rule_id, f.message) for f in pss]


def _pod(spec: dict[str, Any], annotations: dict[str, str] | None = None) -> Document:
    data = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "annotations": annotations or {}},
            "spec": spec}
    return Document("kubernetes", "pod.yaml", data, name="Pod/p")


def _fired(rules: dict[str, Rule], rule_id: str, spec: dict[str, Any], **kwargs: Any) -> list[str]:
    return [f.message for f in evaluate([_pod(copy.deepcopy(spec), **kwargs)], [rules[rule_id]]).findings]


def _container(name: str = "c", **context: Any) -> dict[str, Any]:
    return {"name": name, "image": "img:1", "securityContext": context}


@pytest.mark.parametrize(("pod_context", "containers", "fires"), [
    ({"runAsNonRoot": True}, [_container()], False),
    ({"runAsNonRoot": True}, [_container(runAsNonRoot=False)], True),
    ({"runAsNonRoot": False}, [_container(runAsNonRoot=True)], True),
    ({}, [_container(runAsNonRoot=True), _container("d", runAsNonRoot=True)], False),
    ({}, [_container(runAsNonRoot=True), _container("d")], True),
    ({"runAsUser": 1000}, [_container()], True),
])
def test_running_as_non_root_precedence(rules: dict[str, Rule], pod_context: dict[str, Any],
                                         containers: list[dict[str, Any]], fires: bool) -> None:
    spec = {"securityContext": pod_context, "containers": containers}
    assert bool(_fired(rules, "MOAT-K8S-022", spec)) is fires


def test_user_namespaces_relax_the_non_root_controls(rules: dict[str, Rule]) -> None:
    spec = {"hostUsers": False, "securityContext": {"runAsUser": 0}, "containers": [_container()]}
    assert _fired(rules, "MOAT-K8S-022", spec) == []
    assert _fired(rules, "MOAT-K8S-023", spec) == []
    assert _fired(rules, "MOAT-K8S-023", {**spec, "hostUsers": True}) == ["pod sets runAsUser: 0"]


@pytest.mark.parametrize(("pod_profile", "container_profile", "fires"), [
    ({"type": "RuntimeDefault"}, None, False),
    ({"type": "Localhost", "localhostProfile": "p.json"}, None, False),
    ({"type": "RuntimeDefault"}, {"type": "Unconfined"}, True),
    (None, {"type": "RuntimeDefault"}, False),
    (None, None, True),
    ({"type": "Unconfined"}, {"type": "RuntimeDefault"}, True),
])
def test_restricted_seccomp_precedence(rules: dict[str, Rule], pod_profile: Any, container_profile: Any,
                                       fires: bool) -> None:
    context = {"seccompProfile": container_profile} if container_profile else {}
    spec = {"securityContext": {"seccompProfile": pod_profile} if pod_profile else {},
            "containers": [_container(**context)]}
    assert bool(_fired(rules, "MOAT-K8S-024", spec)) is fires


def test_windows_pods_are_exempt_from_linux_only_restricted_controls(rules: dict[str, Rule]) -> None:
    spec = {"os": {"name": "windows"}, "containers": [_container()]}
    for rule_id in ("MOAT-K8S-021", "MOAT-K8S-024", "MOAT-K8S-025"):
        assert _fired(rules, rule_id, spec) == [], rule_id
        assert _fired(rules, rule_id, {**spec, "os": {"name": "linux"}}), rule_id


@pytest.mark.parametrize(("add", "drop", "baseline", "restricted"), [
    (["CHOWN"], ["ALL"], False, True),
    (["NET_BIND_SERVICE"], ["ALL"], False, False),
    (["SYS_ADMIN"], ["ALL"], True, True),
    (["CAP_SYS_ADMIN"], ["ALL"], True, True),
    (["CAP_CHOWN"], ["ALL"], True, True),
    ([], ["all"], False, True),
    ([], [], False, True),
])
def test_capabilities_baseline_and_restricted(rules: dict[str, Rule], add: list[str], drop: list[str],
                                              baseline: bool, restricted: bool) -> None:
    spec = {"containers": [_container(capabilities={"add": add, "drop": drop})]}
    assert bool(_fired(rules, "MOAT-K8S-006", spec)) is baseline
    assert bool(_fired(rules, "MOAT-K8S-025", spec)) is restricted


@pytest.mark.parametrize(("options", "fires"), [
    ({"level": "s0:c1,c2"}, False),
    ({"type": "container_t"}, False),
    ({"type": "container_engine_t"}, False),
    ({"type": "spc_t"}, True),
    ({"user": "system_u"}, True),
    ({"role": "sysadm_r"}, True),
])
def test_selinux_allowed_values(rules: dict[str, Rule], options: dict[str, str], fires: bool) -> None:
    assert bool(_fired(rules, "MOAT-K8S-013", {"containers": [_container(seLinuxOptions=options)]})) is fires
    assert bool(_fired(rules, "MOAT-K8S-013", {"securityContext": {"seLinuxOptions": options},
                                               "containers": [_container()]})) is fires


@pytest.mark.parametrize(("annotation", "profile", "fires"), [
    ("runtime/default", None, False),
    ("localhost/k8s-nginx", None, False),
    ("unconfined", None, True),
    (None, {"type": "Localhost", "localhostProfile": "k8s-nginx"}, False),
    (None, {"type": "Unconfined"}, True),
])
def test_apparmor_allowed_values(rules: dict[str, Rule], annotation: str | None, profile: Any, fires: bool) -> None:
    annotations = {"container.apparmor.security.beta.kubernetes.io/c": annotation} if annotation else {}
    context = {"appArmorProfile": profile} if profile else {}
    spec = {"containers": [_container(**context)]}
    assert bool(_fired(rules, "MOAT-K8S-012", spec, annotations=annotations)) is fires


def test_sysctls_host_ports_and_volume_types(rules: dict[str, Rule]) -> None:
    safe = {"securityContext": {"sysctls": [{"name": "net.ipv4.tcp_keepalive_time", "value": "60"}]},
            "containers": [_container()]}
    assert _fired(rules, "MOAT-K8S-016", safe) == []
    unsafe = {"securityContext": {"sysctls": [{"name": "kernel.msgmax", "value": "1"}]}, "containers": [_container()]}
    assert _fired(rules, "MOAT-K8S-016", unsafe) == ['pod sets unsafe sysctls "kernel.msgmax"']
    ports = {"containers": [{"name": "c", "image": "i:1", "ports": [{"containerPort": 80, "hostPort": 0}]}]}
    assert _fired(rules, "MOAT-K8S-011", ports) == []
    volumes = {"containers": [_container()], "volumes": [{"name": "a", "configMap": {"name": "x"}},
                                                           {"name": "b", "nfs": {"server": "n", "path": "/"}}]}
    assert _fired(rules, "MOAT-K8S-020", volumes) == ['volume "b" uses nfs']


def test_probes_expected_only_on_long_running_kinds(rules: dict[str, Rule]) -> None:
    job = Document("kubernetes", "job.yaml", {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
                                               "spec": {"template": {"spec": {"containers": [_container()]}}}})
    assert evaluate([job], [rules["MOAT-K8S-058"], rules["MOAT-K8S-059"]]).findings == []
    assert len(_fired(rules, "MOAT-K8S-058", {"containers": [_container()], "initContainers": [_container("i")]})) == 1


def test_service_account_token(rules: dict[str, Rule]) -> None:
    assert _fired(rules, "MOAT-K8S-060", {"containers": [_container()]}) == []
    explicit = {"automountServiceAccountToken": True, "containers": [_container()]}
    assert _fired(rules, "MOAT-K8S-060", explicit) == []  # MOAT-K8S-207 reports it, once
    assert _fired(rules, "MOAT-K8S-207", explicit) == ["Pod/p sets automountServiceAccountToken: true"]
    mounted = {"containers": [{"name": "c", "image": "i:1", "volumeMounts": [
        {"name": "t", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]}]}
    assert _fired(rules, "MOAT-K8S-060", mounted) == ['container "c" mounts the service account token path']


@pytest.mark.parametrize(("host_path", "fires"), [
    ("/var/run/docker.sock", True),
    ("/run/containerd/containerd.sock", True),
    ("/var/run/", True),
    ("/", True),
    ("//var//run/crio/./crio.sock", True),
    ("/var/log", False),
    ("/var/run/secrets", False),
])
def test_runtime_socket_through_the_socket_or_a_parent_directory(rules: dict[str, Rule], host_path: str,
                                                                  fires: bool) -> None:
    spec = {"containers": [_container()], "volumes": [{"name": "v", "hostPath": {"path": host_path}}]}
    assert bool(_fired(rules, "MOAT-K8S-010", spec)) is fires
    assert bool(_fired(rules, "MOAT-K8S-009", spec))


@pytest.mark.parametrize(("image", "expected"), [
    ("nginx", ("nginx", "", "")),
    ("nginx:1.25", ("nginx", "1.25", "")),
    ("registry:5000/team/app", ("registry:5000/team/app", "", "")),
    ("registry:5000/team/app:2", ("registry:5000/team/app", "2", "")),
    ("app@sha256:abc", ("app", "", "sha256:abc")),
])
def test_image_reference(image: str, expected: tuple[str, str, str]) -> None:
    assert image_reference(image) == expected


HOSTILE_SPECS: list[dict[str, Any]] = [
    {"containers": "not-a-list"},
    {"containers": [None, 7, {"name": None, "securityContext": []}]},
    {"containers": [{"name": "c", "securityContext": {"capabilities": {"add": "SYS_ADMIN", "drop": None}}}]},
    {"containers": [{"name": "c", "ports": [None, {"hostPort": "80"}], "env": "x", "envFrom": [None]}]},
    {"securityContext": "x", "volumes": [None, {"hostPath": None}, {"hostPath": {"path": 5}}], "containers": []},
    {"securityContext": {"sysctls": [None, {"name": None}], "seLinuxOptions": "x", "runAsUser": "0"},
     "containers": [{"name": "c", "image": 5, "livenessProbe": {"httpGet": None}, "lifecycle": "x"}]},
]


@pytest.mark.parametrize("spec", HOSTILE_SPECS)
def test_hostile_shapes_never_raise(rules: dict[str, Rule], spec: dict[str, Any]) -> None:
    workload_rules = [item for rule_id, item in rules.items() if rule_id < "MOAT-K8S-200"]
    evaluate([_pod(spec)], workload_rules)  # MOAT_STRICT_RULES=1: a rule that raises fails here


PSS_SLUGS = {"host-process", "host-namespaces", "privileged", "capabilities", "hostpath-volumes", "host-ports",
             "apparmor", "selinux", "proc-mount", "seccomp", "sysctls", "host-probes", "volume-types",
             "privilege-escalation", "running-as-non-root", "running-as-non-root-user"}
FRAMEWORKS = {"pss", "cis-kubernetes-1.9", "nsa-cisa-k8s"}
NSA_SLUGS = set(NSA_CISA_SECTIONS)


def test_rule_metadata(rules: dict[str, Rule]) -> None:
    from moat.checks.rule import _REGISTRY

    mine = [item for rule_id, item in rules.items() if "MOAT-K8S-001" <= rule_id < "MOAT-K8S-200"]
    assert len(mine) >= 40
    for item in mine:
        assert item.references and all(ref.startswith("https://") for ref in item.references), item.id
        assert "kubectl" in item.verification, item.id
        derived = {"pci-dss-4.0", "hipaa", "soc2", "nist-800-190"}  # added by checks/mappings
        assert item.frameworks() - derived <= FRAMEWORKS, (item.id, item.controls)
        for control in _REGISTRY[item.id].controls:  # the rule's own mappings, before derivation
            if control.startswith("nsa-cisa-k8s:"):
                assert control.split(":", 1)[1] in NSA_SLUGS, (item.id, control)
            if control.startswith("pss:"):
                profile, slug = control[4:].split("/")
                assert profile in ("baseline", "restricted") and slug in PSS_SLUGS, (item.id, control)
    covered = {control for item in mine for control in item.controls if control.startswith("pss:")}
    assert {f"pss:baseline/{slug}" for slug in ("host-process", "host-namespaces", "privileged", "capabilities",
                                                 "hostpath-volumes", "host-ports", "apparmor", "selinux",
                                                 "proc-mount", "seccomp", "sysctls")} <= covered
    assert {f"pss:restricted/{slug}" for slug in ("volume-types", "privilege-escalation", "running-as-non-root",
                                                   "running-as-non-root-user", "seccomp", "capabilities")} <= covered
