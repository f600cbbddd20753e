"""Workload hardening beyond the Pod Security Standards (MOAT-K8S-040..099), and a kubesec-style score.

These are the pod-level items of CIS Kubernetes 1.9 sections 5.2, 5.4 and 5.7, of the NSA/CISA
Kubernetes Hardening Guidance (non-root, immutable filesystems, resource limits, service account
tokens), and the workload checks Trivy (KSV) and kubescape run that the Pod Security Standards do not
cover: resource requests and limits, read-only root filesystem, image tags and pull policy, probes,
secrets in environment variables, high UIDs/GIDs, Windows identity settings.

:func:`kubesec_score` reproduces how kubesec scores an object (critical items subtract, hardening
items add), so Moat can answer "would kubesec pass this?" without kubesec; see its docstring for the
item list and how it maps onto Moat's rules.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from moat.checks.document import Document, TargetKind
from moat.checks.rule import Hit, RuleContext, rule
from moat.checks.rules.k8s_pss import (
    APPARMOR_ANNOTATION,
    CIS_URL,
    CONTEXT_URL,
    NSA_POD_SECURITY,
    NSA_URL,
    SECCOMP_CONTAINER_ANNOTATION,
    SECCOMP_POD_ANNOTATION,
    capability_name,
)
from moat.checks.targets.kubernetes import (
    ContainerRef,
    Workload,
    effective,
    mapping,
    pod_spec,
    security_context,
    user_namespaced,
    workload,
)

K8S = (TargetKind.KUBERNETES,)
NSA_NON_ROOT = "nsa-cisa-k8s:non-root-containers"
NSA_IMMUTABLE = "nsa-cisa-k8s:immutable-filesystems"
NSA_RESOURCES = "nsa-cisa-k8s:resource-policies"
NSA_TOKENS = "nsa-cisa-k8s:service-account-tokens"
NSA_IMAGES = "nsa-cisa-k8s:secure-images"
CIS_CONTEXT = "cis-kubernetes-1.9:5.7.3"
RESOURCES_URL = "https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/"
PROBES_URL = "https://kubernetes.io/docs/tasks/configure-pod-container/configure-liveness-readiness-startup-probes/"
WINDOWS_URL = "https://kubernetes.io/docs/tasks/configure-pod-container/configure-runasusername/"
GMSA_URL = "https://kubernetes.io/docs/tasks/configure-pod-container/configure-gmsa/"
SERVICE_ACCOUNT_TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
LONG_RUNNING_KINDS = frozenset({"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController"})
"""Kinds whose containers serve until stopped, so probes are expected (Jobs run to completion)."""


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _app_containers(pod: Workload) -> Iterator[ContainerRef]:
    """Init and regular containers: the ones that carry resources, probes and a lasting identity
    (ephemeral debug containers cannot set resources or probes)."""
    return (ref for ref in pod.containers if ref.kind != "ephemeralContainers")


@rule(
    id="MOAT-K8S-040",
    title="Container does not drop NET_RAW",
    severity="MEDIUM",
    targets=K8S,
    description=(
        "NET_RAW is in the runtime's default capability set. It lets a process craft raw packets: ARP and "
        "DNS spoofing of other pods on the node, and a long list of kernel bugs reachable through raw "
        "sockets. CIS asks for it to be dropped unless needed."
    ),
    remediation=(
        "Drop it (or ALL) and never add it back:\n  securityContext:\n    capabilities:\n      drop: [\"ALL\"]"
    ),
    verification=(
        "kubectl get pod NAME -o jsonpath='{range .spec.containers[*]}{.name}: drop={.securityContext."
        "capabilities.drop} add={.securityContext.capabilities.add}{\"\\n\"}{end}' — drop must hold NET_RAW "
        "or ALL, and add must not hold NET_RAW."
    ),
    references=(CIS_URL, "https://man7.org/linux/man-pages/man7/capabilities.7.html"),
    controls=("cis-kubernetes-1.9:5.2.8", CIS_CONTEXT, NSA_POD_SECURITY),
    aliases=("drop-capability-netraw", "C-0211"),
)
def net_raw(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    pod = workload(doc)
    if pod is None or pod.is_windows:
        return
    for ref in pod.containers:
        capabilities = mapping(security_context(ref).get("capabilities"))
        added = _as_list(capabilities.get("add"))
        dropped = _as_list(capabilities.get("drop"))
        if any(capability_name(value) in ("NET_RAW", "ALL") for value in added):
            yield Hit(f'container "{ref.name}" adds NET_RAW',
                      path=(*ref.path, "securityContext", "capabilities", "add"), container=ref.name)
        elif not any(capability_name(value) in ("NET_RAW", "ALL") for value in dropped):
            yield Hit(f'container "{ref.name}" keeps NET_RAW (drop neither NET_RAW nor ALL)', path=ref.path,
                      container=ref.name)


@rule(
    id="MOAT-K8S-063",
    title="Container adds capabilities",
    severity="LOW",
    targets=K8S,
    description=(
        "CIS 5.2.9 asks that containers not be admitted with added capabilities at all: every added "
        "capability widens what a compromised process can do to the kernel, and an application that "
        "needs one (even NET_BIND_SERVICE, which a non-privileged port avoids) deserves a review. The Pod "
        "Security Standards are looser: MOAT-K8S-006 flags only capabilities beyond the runtime's default "
        "set."
    ),
    remediation=(
        "Remove `securityContext.capabilities.add`; listen on a port above 1024 instead of adding "
        "NET_BIND_SERVICE.\n  securityContext:\n    capabilities:\n      drop: [\"ALL\"]"
    ),
    verification=(
        "kubectl get pods -A -o json | jq -r '.items[] | .metadata.name as $p | (.spec.containers[],"
        ".spec.initContainers[]?) | select(.securityContext.capabilities.add) | $p+\" \"+.name' — expect "
        "no output, or only reviewed exceptions."
    ),
    references=(CIS_URL, "https://man7.org/linux/man-pages/man7/capabilities.7.html"),
    controls=("cis-kubernetes-1.9:5.2.9",),
    aliases=("KSV-0022", "KSV022", "no-non-default-capabilities"),
)
def added_capabilities(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    pod = workload(doc)
    if pod is None:
        return
    for ref in pod.containers:
        added = [str(value) for value in _as_list(mapping(security_context(ref).get("capabilities")).get("add"))]
        if added:
            yield Hit(f'container "{ref.name}" adds capabilities {", ".join(added)}',
                      path=(*ref.path, "securityContext", "capabilities", "add"), container=ref.name,
                      evidence=", ".join(added))


@rule(
    id="MOAT-K8S-041",
    title="Container root filesystem is writable",
    severity="LOW",
    targets=K8S,
    description=(
        "A writable root filesystem lets an intruder drop tools and binaries, alter the application or "
        "persist changes for the life of the container. A read-only root with explicit writable volumes for "
        "scratch data removes that foothold."
    ),
    remediation=(
        "Make the root read-only and mount an emptyDir where the application writes:\n"
        "  securityContext:\n    readOnlyRootFilesystem: true\n  volumeMounts:\n    - name: tmp\n"
        "      mountPath: /tmp"
    ),
    verification=(
        "kubectl get pod NAME -o jsonpath='{range .spec.containers[*]}{.name}={.securityContext."
        "readOnlyRootFilesystem}{\"\\n\"}{end}' — every container must print true."
    ),
    references=(CONTEXT_URL, NSA_URL),
    controls=(CIS_CONTEXT, NSA_IMMUTABLE),
    aliases=("KSV-0014", "KSV014", "use-readonly-filesystem", "immutable-container-filesystem", "C-0017",
             "ReadOnlyRootFilesystem"),
)
def read_only_root(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    pod = workload(doc)
    if pod is None:
        return
    for ref in pod.containers:
        value = security_context(ref).get("readOnlyRootFilesystem")
        if value is not True:
            path = (*ref.path, "securityContext", "readOnlyRootFilesystem") if value is not None else ref.path
            yield Hit(f'container "{ref.name}" has a writable root filesystem', path=path, container=ref.name)


def _positive(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


@rule(
    id="MOAT-K8S-042",
    title="Container may run as root user or root group",
    severity="MEDIUM",
    targets=K8S,
    description=(
        "NSA/CISA ask for containers that run as a non-root user and a non-root group. A container is "
        "non-root here when runAsNonRoot is true or runAsUser is above 0 (container value, else pod value) "
        "and runAsGroup is above 0; anything else may run with UID or GID 0, whose file access on shared "
        "volumes and after an escape is root's."
    ),
    remediation=(
        "  spec:\n    securityContext:\n      runAsNonRoot: true\n      runAsUser: 10001\n      runAsGroup: 10001"
    ),
    verification=(
        "kubectl get pod NAME -o yaml — for each container, the effective runAsNonRoot/runAsUser (container, "
        "else pod) must be true/above 0, and the effective runAsGroup above 0."
    ),
    references=(NSA_URL, CONTEXT_URL),
    controls=(NSA_NON_ROOT, CIS_CONTEXT),
    aliases=("non-root-containers", "C-0013"),
)
def non_root_user_and_group(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    pod = workload(doc)
    if pod is None or pod.is_windows:
        return
    for ref in _app_containers(pod):
        non_root, _ = effective(pod, ref, "runAsNonRoot")
        user, _ = effective(pod, ref, "runAsUser")
        group, _ = effective(pod, ref, "runAsGroup")
        problems = []
        if non_root is not True and not _positive(user):
            problems.append("runAsNonRoot is not true and runAsUser is not above 0")
        if not _positive(group):
            problems.append("runAsGroup is not above 0")
        if problems:
            yield Hit(f'container "{ref.name}" may run as root: {"; ".join(problems)}', path=ref.path,
                      container=ref.name)


@rule(
    id="MOAT-K8S-043",
    title="Pod or container uses the root group (GID 0)",
    severity="LOW",
    targets=K8S,
    description=(
        "runAsGroup 0, supplementalGroups holding 0 or fsGroup 0 give the processes root's group: files "
        "group-owned by root on the image and on mounted volumes become readable or writable to them."
    ),
    remediation=(
        "Use non-zero group ids:\n  securityContext:\n    runAsGroup: 10001\n    fsGroup: 10001\n"
        "    supplementalGroups: [10001]"
    ),
    verification=(
        "kubectl get pod NAME -o jsonpath='{.spec.securityContext}' and each container's securityContext — "
        "runAsGroup, fsGroup and every supplementalGroups entry must be non-zero."
    ),
    references=(NSA_URL, CONTEXT_URL),
    controls=(NSA_NON_ROOT, CIS_CONTEXT),
    aliases=("KSV-0029", "KSV029", "set-supplementalgroups-values", "C-0211"),
)
def root_group(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    pod = workload(doc)
    if pod is None or user_namespaced(pod):
        return
    context = pod.security_context
    for field in ("runAsGroup", "fsGroup"):
        if context.get(field) == 0:
            yield Hit(f"pod sets {field}: 0", path=(*pod.security_context_path, field))
    groups = context.get("supplementalGroups")
    if isinstance(groups, list) and 0 in groups:
        yield Hit("pod lists group 0 in supplementalGroups", path=(*pod.security_context_path, "supplementalGroups"))
    for ref in pod.containers:
        if security_context(ref).get("runAsGroup") == 0:
            yield Hit(f'container "{ref.name}" sets runAsGroup: 0', path=(*ref.path, "securityContext", "runAsGroup"),
                      container=ref.name)


@rule(
    id="MOAT-K8S-044",
    title="Pod does not set a non-root fsGroup",
    severity="LOW",
    targets=K8S,
    description=(
        "fsGroup makes the kubelet give mounted volumes a dedicated group, so a non-root container can use "
        "them without the volume being world-writable or root-owned. Without it, workloads tend to fall "
        "back to running as root to write their volumes."
    ),
    remediation="  spec:\n    securityContext:\n      fsGroup: 10001",
    verification="kubectl get pod NAME -o jsonpath='{.spec.securityContext.fsGroup}' — must print a number above 0.",
    references=(CONTEXT_URL,),
    controls=(CIS_CONTEXT,),
    aliases=("set-fsgroup-value", "C-0211"),
)
def fs_group(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    pod = workload(doc)
    if pod is None or pod.is_windows:
        return
    value = pod.security_context.get("fsGroup")
    if not _positive(value):
        path = (*pod.security_context_path, "fsGroup") if value is not None else pod.spec_path
        shown = f" (fsGroup: {value})" if value is not None else ""
        yield Hit(f"pod does not set fsGroup to a non-root group{shown}", path=path)


@rule(
    id="MOAT-K8S-045",
    title="Pod does not set fsGroupChangePolicy",
    severity="LOW",
    targets=K8S,
    description=(
        "fsGroupChangePolicy says when the kubelet re-owns a volume to the pod's fsGroup. Set explicitly "
        "(OnRootMismatch or Always) the ownership of volume data is predictable instead of depending on the "
        "kubelet's default for each volume type."
    ),
    remediation="  spec:\n    securityContext:\n      fsGroup: 10001\n      fsGroupChangePolicy: OnRootMismatch",
    verification=(
        "kubectl get pod NAME -o jsonpath='{.spec.securityContext.fsGroupChangePolicy}' — must print "
        "OnRootMismatch or Always."
    ),
    references=(CONTEXT_URL,),
    controls=(CIS_CONTEXT,),
    aliases=("set-fsgroupchangepolicy-value", "C-0211"),
)
def fs_group_change_policy(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    pod = workload(doc)
    if pod is None or pod.is_windows:
        return
    value = pod.security_context.get("fsGroupChangePolicy")
    if value not in ("OnRootMismatch", "Always"):
        path = (*pod.security_context_path, "fsGroupChangePolicy") if value is not None else pod.spec_path
        yield Hit("pod does not set fsGroupChangePolicy to OnRootMismatch or Always", path=path)


@rule(
    id="MOAT-K8S-046",
    title="Container has no SELinux options",
    severity="LOW",
    targets=K8S,
    description=(
        "On SELinux nodes an explicit SELinux level (MCS categories) keeps pods that share a volume type "
        "from reading each other's files; without it the runtime picks a random level per container, and "
        "containers meant to share data get relabelled volumes or run without separation."
    ),
    remediation="  spec:\n    securityContext:\n      seLinuxOptions:\n        level: \"s0:c123,c456\"",
    verification=(
        "kubectl get pod NAME -o yaml — seLinuxOptions must be set at pod level or on every container."
    ),
    references=(CONTEXT_URL, "https://kubernetes.io/docs/tasks/configure-pod-container/security-context/"
                "#assign-selinux-labels-to-a-container"),
    controls=(CIS_CONTEXT,),
    aliases=("set-seLinuxOptions", "C-0211"),
)
def selinux_unset(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    pod = workload(doc)
    if pod is None or pod.is_windows:
        return
    for ref in _app_containers(pod):
        if effective(pod, ref, "seLinuxOptions")[0] is None:
            yield Hit(f'container "{ref.name}" has no seLinuxOptions (none at pod level either)', path=ref.path,
                      container=ref.name)


@rule(
    id="MOAT-K8S-047",
    title="Seccomp profile is not RuntimeDefault",
    severity="LOW",
    targets=K8S,
    description=(
        "CIS 5.7.2 asks for the container runtime's default seccomp profile on every pod: it blocks the "
        "rarely used system calls behind most container escapes while keeping applications working. A "
        "missing profile runs unfiltered; a custom one needs its own review."
    ),
    remediation="  spec:\n    securityContext:\n      seccompProfile:\n        type: RuntimeDefault",
    verification=(
        "kubectl get pod NAME -o jsonpath='{.spec.securityContext.seccompProfile.type} {range "
        ".spec.containers[*]}{.securityContext.seccompProfile.type} {end}' — the effective type of every "
        "container must be RuntimeDefault."
    ),
    references=(CIS_URL, "https://kubernetes.io/docs/tutorials/security/seccomp/"),
    controls=("cis-kubernetes-1.9:5.7.2",),
    aliases=("set-seccomp-profile-RuntimeDefault", "C-0210"),
)
def seccomp_runtime_default(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    pod = workload(doc)
    if pod is None or pod.is_windows:
        return
    pod_profile = pod.security_context.get("seccompProfile")
    pod_type = mapping(pod_profile).get("type")
    if pod_profile is not None and pod_type != "RuntimeDefault":
        yield Hit(f'pod sets seccompProfile type "{pod_type}"',
                  path=(*pod.security_context_path, "seccompProfile", "type"))
    for ref in _app_containers(pod):
        own = security_context(ref).get("seccompProfile")
        if own is not None:
            own_type = mapping(own).get("type")
            if own_type != "RuntimeDefault":
                yield Hit(f'container "{ref.name}" sets seccompProfile type "{own_type}"',
                          path=(*ref.path, "securityContext", "seccompProfile", "type"), container=ref.name)
        elif pod_profile is None:
            yield Hit(f'container "{ref.name}" has no seccomp profile', path=ref.path, container=ref.name)


def _windows_option(pod: Workload, ref: ContainerRef, field: str) -> Any:
    own = mapping(security_context(ref).get("windowsOptions")).get(field)
    return own if own is not None else mapping(pod.security_context.get("windowsOptions")).get(field)


@rule(
    id="MOAT-K8S-048",
    title="Windows container has no gMSA credential spec",
    severity="LOW",
    targets=K8S,
    description=(
        "Windows containers that talk to Active Directory should authenticate with a group Managed Service "
        "Account (gMSA) named by gmsaCredentialSpecName, instead of credentials baked into the image or "
        "passed in the environment."
    ),
    remediation=(
        "  securityContext:\n    windowsOptions:\n      gmsaCredentialSpecName: webapp1-credspec"
    ),
    verification=(
        "kubectl get pod NAME -o jsonpath='{.spec.securityContext.windowsOptions.gmsaCredentialSpecName} "
        "{range .spec.containers[*]}{.securityContext.windowsOptions.gmsaCredentialSpecName} {end}' — set for "
        "every container of a Windows pod."
    ),
    references=(GMSA_URL,),
    controls=(CIS_CONTEXT,),
    aliases=("set-gmsacredentialspecname-value", "C-0211"),
)
def windows_gmsa(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    pod = workload(doc)
    if pod is None or not pod.is_windows:
        return
    for ref in _app_containers(pod):
        if not _windows_option(pod, ref, "gmsaCredentialSpecName"):
            yield Hit(f'Windows container "{ref.name}" has no gmsaCredentialSpecName', path=ref.path,
                      container=ref.name)


@rule(
    id="MOAT-K8S-049",
    title="Windows container does not set a non-administrator user",
    severity="MEDIUM",
    targets=K8S,
    description=(
        "Without windowsOptions.runAsUserName a Windows container runs as the image's default user, often "
        "ContainerAdministrator, the Windows counterpart of root."
    ),
    remediation="  securityContext:\n    windowsOptions:\n      runAsUserName: ContainerUser",
    verification=(
        "kubectl get pod NAME -o yaml — the effective windowsOptions.runAsUserName of every container of a "
        "Windows pod must be set and not ContainerAdministrator."
    ),
    references=(WINDOWS_URL,),
    controls=(CIS_CONTEXT, NSA_NON_ROOT),
    aliases=("set-runasusername-value", "C-0211"),
)
def windows_user(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    pod = workload(doc)
    if pod is None or not pod.is_windows:
        return
    for ref in _app_containers(pod):
        user = _windows_option(pod, ref, "runAsUserName")
        if not user:
            yield Hit(f'Windows container "{ref.name}" has no runAsUserName', path=ref.path, container=ref.name)
        elif str(user).lower() == "containeradministrator":
            yield Hit(f'Windows container "{ref.name}" runs as ContainerAdministrator', path=ref.path,
                      container=ref.name)


@rule(
    id="MOAT-K8S-050",
    title="Secret exposed through environment variables",
    severity="MEDIUM",
    targets=K8S,
    description=(
        "Environment variables leak: they appear in crash dumps, debug endpoints, `kubectl describe`, child "
        "processes and logs of careless applications. CIS prefers secrets mounted as files."
    ),
    remediation=(
        "Mount the Secret as a volume and read the file:\n  volumes:\n    - name: creds\n      secret:\n"
        "        secretName: db\n  containers:\n    - volumeMounts:\n        - name: creds\n"
        "          mountPath: /var/run/secrets/db\n          readOnly: true"
    ),
    verification=(
        "kubectl get pods -A -o json | jq -r '.items[] | .metadata.name as $p | (.spec.containers[],"
        ".spec.initContainers[]?) | select(.env[]?.valueFrom.secretKeyRef or .envFrom[]?.secretRef) | "
        "$p+\" \"+.name' — expect no output."
    ),
    references=(CIS_URL, "https://kubernetes.io/docs/concepts/configuration/secret/#using-secrets-as-files-from-a-pod"),
    controls=("cis-kubernetes-1.9:5.4.1", "nsa-cisa-k8s:secrets"),
    aliases=("rule-secrets-in-env-var", "C-0207", "SecretsAsEnvironmentVariables"),
)
def secrets_in_env(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    pod = workload(doc)
    if pod is None:
        return
    for ref in pod.containers:
        env = ref.data.get("env")
        for index, item in enumerate(env if isinstance(env, list) else []):
            secret = mapping(mapping(mapping(item).get("valueFrom")).get("secretKeyRef"))
            if secret:
                variable = mapping(item).get("name")
                yield Hit(f'container "{ref.name}" reads secret "{secret.get("name")}" into ${variable}',
                          path=(*ref.path, "env", index, "valueFrom", "secretKeyRef"), container=ref.name)
        env_from = ref.data.get("envFrom")
        for index, item in enumerate(env_from if isinstance(env_from, list) else []):
            secret = mapping(mapping(item).get("secretRef"))
            if secret:
                yield Hit(f'container "{ref.name}" loads every key of secret "{secret.get("name")}" as variables',
                          path=(*ref.path, "envFrom", index, "secretRef"), container=ref.name)


def _resource_rule(kind: str, resource: str) -> Any:
    def check(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
        pod = workload(doc)
        if pod is None:
            return
        for ref in _app_containers(pod):
            resources = mapping(ref.data.get("resources"))
            if mapping(resources.get(kind)).get(resource) in (None, ""):
                path = (*ref.path, "resources") if "resources" in ref.data else ref.path
                yield Hit(f'container "{ref.name}" has no {resource} {kind[:-1]}', path=path, container=ref.name)
    check.__name__ = f"{kind}_{resource}"
    check.__doc__ = f"Containers must set resources.{kind}.{resource}."
    return check


_RESOURCE_RULES = (
    ("MOAT-K8S-051", "limits", "cpu", "CPU limit not set", ("KSV-0011", "KSV011", "limit-cpu", "LimitsCPU"),
     "A container without a CPU limit can take every core of its node, starving its neighbours."),
    ("MOAT-K8S-052", "requests", "cpu", "CPU request not set",
     ("KSV-0015", "KSV015", "no-unspecified-cpu-requests", "RequestsCPU"),
     "Without a CPU request the scheduler places the pod blind and the pod gets the lowest share under contention."),
    ("MOAT-K8S-053", "limits", "memory", "Memory limit not set",
     ("KSV-0018", "KSV018", "limit-memory", "LimitsMemory"),
     "A container without a memory limit can exhaust its node's memory, getting other pods OOM-killed."),
    ("MOAT-K8S-054", "requests", "memory", "Memory request not set",
     ("KSV-0016", "KSV016", "no-unspecified-memory-requests", "RequestsMemory"),
     "Without a memory request the scheduler may overcommit the node, and the pod is first to be evicted."),
)

for _id, _kind, _resource, _title, _aliases, _risk in _RESOURCE_RULES:
    rule(
        id=_id,
        title=_title,
        severity="LOW",
        targets=K8S,
        description=_risk + " Resource requests and limits are the NSA/CISA resource-policy control for pods.",
        remediation=(
            f"Set it on every container (values sized for the workload):\n  resources:\n    {_kind}:\n"
            f"      {_resource}: {'500m' if _resource == 'cpu' else '256Mi'}"
        ),
        verification=(
            f"kubectl get pod NAME -o jsonpath='{{range .spec.containers[*]}}{{.name}}={{.resources.{_kind}."
            f"{_resource}}}{{\"\\n\"}}{{end}}' — every container must print a value (a LimitRange may also "
            "supply defaults: kubectl get limitrange -n NAMESPACE)."
        ),
        references=(RESOURCES_URL, NSA_URL),
        controls=(NSA_RESOURCES,),
        aliases=(*_aliases, "resources-cpu-limit-and-request" if _resource == "cpu" else
                 "resources-memory-limit-and-request", "C-0050" if _resource == "cpu" else "C-0004"),
    )(_resource_rule(_kind, _resource))


def image_reference(image: str) -> tuple[str, str, str]:
    """``(repository, tag, digest)`` of an image reference; tag and digest are "" when absent."""
    name, _, digest = image.partition("@")
    last_slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > last_slash:
        return name[:colon], name[colon + 1:], digest
    return name, "", digest


@rule(
    id="MOAT-K8S-055",
    title="Image uses the latest tag or no tag",
    severity="MEDIUM",
    targets=K8S,
    description=(
        "`latest` (or no tag, which means latest) is a moving target: nodes run whatever the registry "
        "served when they pulled, so the running code cannot be traced to a reviewed and scanned build, and "
        "a rollback may not roll back."
    ),
    remediation="Pin a version tag, or better a digest:\n  image: registry.example.com/web:1.4.2@sha256:<digest>",
    verification=(
        "kubectl get pods -A -o jsonpath='{range .items[*].spec.containers[*]}{.image}{\"\\n\"}{end}' | "
        "grep -E ':latest$|^[^:@]+$' — expect no output."
    ),
    references=("https://kubernetes.io/docs/concepts/containers/images/#image-names", NSA_URL),
    controls=(NSA_IMAGES,),
    aliases=("KSV-0013", "KSV013", "use-specific-tags"),
)
def latest_tag(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    pod = workload(doc)
    if pod is None:
        return
    for ref in pod.containers:
        image = ref.data.get("image")
        if not isinstance(image, str) or not image.strip():
            continue
        _, tag, digest = image_reference(image.strip())
        if not digest and tag in ("", "latest"):
            how = "the latest tag" if tag else "no tag (latest)"
            yield Hit(f'container "{ref.name}" image "{image}" uses {how}', path=(*ref.path, "image"),
                      container=ref.name, evidence=image)


@rule(
    id="MOAT-K8S-056",
    title="Image not pinned by digest",
    severity="LOW",
    targets=K8S,
    description=(
        "A tag can be moved to different content at any time by whoever can push to the repository; only a "
        "digest guarantees that every node runs the exact image that was scanned and approved."
    ),
    remediation="  image: registry.example.com/web:1.4.2@sha256:<digest>",
    verification=(
        "kubectl get pods -A -o jsonpath='{range .items[*].spec.containers[*]}{.image}{\"\\n\"}{end}' | "
        "grep -v '@sha256:' — expect no output."
    ),
    references=("https://kubernetes.io/docs/concepts/containers/images/#image-names",),
    controls=(NSA_IMAGES,),
    aliases=(),
)
def image_digest(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    pod = workload(doc)
    if pod is None:
        return
    for ref in pod.containers:
        image = ref.data.get("image")
        if isinstance(image, str) and image.strip() and not image_reference(image.strip())[2]:
            yield Hit(f'container "{ref.name}" image "{image}" has no digest', path=(*ref.path, "image"),
                      container=ref.name, evidence=image)


@rule(
    id="MOAT-K8S-057",
    title="Image pull policy is not Always",
    severity="LOW",
    targets=K8S,
    description=(
        "With IfNotPresent or Never a node reuses an image it already has: a pod can start from an image "
        "another tenant pulled with its own credentials, and a re-pushed tag is not picked up. Always makes "
        "the kubelet check the registry (and the pull credentials) on every start."
    ),
    remediation="  imagePullPolicy: Always   # or pin by digest, which makes the policy moot",
    verification=(
        "kubectl get pod NAME -o jsonpath='{range .spec.containers[*]}{.name}={.imagePullPolicy}{\"\\n\"}{end}'"
        " — every container must print Always (or use a digest-pinned image)."
    ),
    references=("https://kubernetes.io/docs/concepts/containers/images/#image-pull-policy",),
    controls=(NSA_IMAGES,),
    aliases=(),
)
def pull_policy(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    pod = workload(doc)
    if pod is None:
        return
    for ref in pod.containers:
        image = ref.data.get("image")
        if not isinstance(image, str) or not image.strip():
            continue
        _, tag, digest = image_reference(image.strip())
        policy = ref.data.get("imagePullPolicy")
        if policy is None:
            policy = "Always" if tag in ("", "latest") and not digest else "IfNotPresent"
        if policy != "Always" and not digest:
            where = (*ref.path, "imagePullPolicy") if "imagePullPolicy" in ref.data else (*ref.path, "image")
            yield Hit(f'container "{ref.name}" pulls with policy {policy}', path=where, container=ref.name)


def _probe_rule(probe: str) -> Any:
    def check(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
        pod = workload(doc)
        if pod is None or doc.data.get("kind") not in LONG_RUNNING_KINDS:
            return
        for ref in pod.containers:
            if ref.kind == "containers" and not isinstance(ref.data.get(probe), dict):
                yield Hit(f'container "{ref.name}" has no {probe}', path=ref.path, container=ref.name)
    check.__name__ = probe
    return check


rule(
    id="MOAT-K8S-058",
    title="Long-running container has no liveness probe",
    severity="LOW",
    targets=K8S,
    description=(
        "Without a liveness probe a hung process keeps its pod 'Running' forever: the service degrades "
        "silently and is never restarted. Only long-running kinds are checked (not Jobs or CronJobs)."
    ),
    remediation="  livenessProbe:\n    httpGet:\n      path: /healthz\n      port: 8080\n    periodSeconds: 10",
    verification=("kubectl get pod NAME -o jsonpath='{range .spec.containers[*]}{.name}: {.livenessProbe}"
                  "{\"\\n\"}{end}' — every container must show a probe."),
    references=(PROBES_URL,),
    controls=(),
    aliases=("configured-liveness-probe", "C-0056"),
)(_probe_rule("livenessProbe"))

rule(
    id="MOAT-K8S-059",
    title="Long-running container has no readiness probe",
    severity="LOW",
    targets=K8S,
    description=(
        "Without a readiness probe a Service sends traffic to a container as soon as it starts and keeps "
        "sending it while the container cannot serve, turning restarts and overloads into errors."
    ),
    remediation="  readinessProbe:\n    httpGet:\n      path: /ready\n      port: 8080\n    periodSeconds: 5",
    verification=("kubectl get pod NAME -o jsonpath='{range .spec.containers[*]}{.name}: {.readinessProbe}"
                  "{\"\\n\"}{end}' — every container must show a probe."),
    references=(PROBES_URL,),
    controls=(),
    aliases=("configured-readiness-probe", "C-0018"),
)(_probe_rule("readinessProbe"))


@rule(
    id="MOAT-K8S-060",
    title="Pod mounts its service account token",
    severity="MEDIUM",
    targets=K8S,
    description=(
        "A mounted service account token lets anything that compromises the pod call the Kubernetes API "
        "with the pod's identity. Pods that do not talk to the API should not get the token: this rule "
        "fires when a container mounts the token path itself (MOAT-K8S-207 reports a pod that sets "
        "automountServiceAccountToken: true or inherits it from its service account)."
    ),
    remediation=(
        "  spec:\n    automountServiceAccountToken: false\n(and, for pods that need the API, a dedicated "
        "least-privilege ServiceAccount)"
    ),
    verification=(
        "kubectl get pod NAME -o jsonpath='{.spec.automountServiceAccountToken}' — must print false for pods "
        "that do not use the API; kubectl get sa NAME -o yaml for the account's own setting."
    ),
    references=("https://kubernetes.io/docs/tasks/configure-pod-container/configure-service-account/"
                "#opt-out-of-api-credential-automounting", CIS_URL),
    controls=("cis-kubernetes-1.9:5.1.6", NSA_TOKENS),
    aliases=("KSV-0036", "KSV036", "no-auto-mount-service-token", "AutomountServiceAccountToken"),
)
def service_account_token(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    pod = workload(doc)
    if pod is None:
        return
    setting = pod.spec.get("automountServiceAccountToken")
    if setting is not None:
        return  # true is reported once, by MOAT-K8S-207 (with the service account's own setting); false is fine
    for ref in pod.containers:
        mounts = ref.data.get("volumeMounts")
        for index, mount in enumerate(mounts if isinstance(mounts, list) else []):
            if str(mapping(mount).get("mountPath", "")).rstrip("/") == SERVICE_ACCOUNT_TOKEN_PATH:
                yield Hit(f'container "{ref.name}" mounts the service account token path',
                          path=(*ref.path, "volumeMounts", index, "mountPath"), container=ref.name)


def _low_id_rule(field: str, what: str) -> Any:
    def check(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
        pod = workload(doc)
        if pod is None or pod.is_windows:
            return
        minimum = ctx.params["min_id"]
        for ref in _app_containers(pod):
            value, path = effective(pod, ref, field)
            if not (isinstance(value, int) and not isinstance(value, bool) and value >= minimum):
                if value is None:
                    message = f'container "{ref.name}" does not set {field} (the image decides; want {minimum}+)'
                else:
                    message = f'container "{ref.name}" runs with {what} {value} (below {minimum})'
                yield Hit(message, path=path or ref.path, container=ref.name)
    check.__name__ = f"low_{field}"
    return check


for _id, _field, _what, _aliases in (
    ("MOAT-K8S-061", "runAsUser", "UID", ("KSV-0020", "KSV020", "use-high-uid", "RunAsUser")),
    ("MOAT-K8S-062", "runAsGroup", "GID", ("KSV-0021", "KSV021", "use-high-gid", "RunAsGroup")),
):
    rule(
        id=_id,
        title=f"Container runs with a low {_what}",
        severity="LOW",
        targets=K8S,
        description=(
            f"{_what}s below 10000 are the ones host accounts and system services use. A container process "
            f"with such a {_what} that escapes, or that shares a hostPath or NFS volume, acts with the rights "
            f"of that host account. A high {_what} keeps container identities apart from the host's."
        ),
        remediation=f"  securityContext:\n    {_field}: 10001",
        verification=(
            f"kubectl get pod NAME -o jsonpath='{{.spec.securityContext.{_field}}} {{range .spec.containers[*]}}"
            f"{{.securityContext.{_field}}} {{end}}' — the effective value of each container must be >= 10000."
        ),
        references=(CONTEXT_URL,),
        controls=(NSA_NON_ROOT,),
        aliases=_aliases,
        params={"min_id": 10000},
    )(_low_id_rule(_field, _what))


# ---------------------------------------------------------------- kubesec-style score

KUBESEC_KINDS = frozenset({"Pod", "Deployment", "StatefulSet", "DaemonSet"})


def kubesec_score(obj: Any) -> int:
    """The score kubesec would give ``obj``: negative when a critical item is present.

    Critical items (subtract): privileged container -30, SYS_ADMIN added -30, hostNetwork / hostPID /
    hostIPC -9 each, docker.sock hostPath -9, allowPrivilegeEscalation: true -7, hostAliases -3,
    AppArmor unconfined -3, seccomp unconfined -1, procMount Unmasked -1. Hardening items (add, once
    each however many containers match): readOnlyRootFilesystem, runAsNonRoot, runAsUser > 10000,
    runAsGroup > 10000 (pod or container level), a capabilities drop list, dropping ALL, CPU/memory
    requests and limits (+1 each), serviceAccountName +3, a non-unconfined seccomp profile +1, a
    non-unconfined AppArmor profile +3, automountServiceAccountToken: false +1, hostUsers: false +1,
    and for StatefulSets volume claim templates with ReadWriteOnce access and a storage request (+1
    each; a StatefulSet without templates gets both). Kinds kubesec does not score give 0.

    Each critical item is also a Moat rule with the kubesec id in its aliases (Privileged →
    MOAT-K8S-005, CapSysAdmin → 006, HostPID/HostIPC/HostNetwork → 002-004, DockerSock → 010,
    AllowPrivilegeEscalation → 021, SeccompUnconfined → 015, ApparmorUnconfined → 012).
    """
    if not isinstance(obj, dict) or obj.get("kind") not in KUBESEC_KINDS:
        return 0
    found = pod_spec(obj)
    if found is None:
        return 0
    spec = found[1]
    metadata_path = (*found[0][:-1], "metadata")
    node: Any = obj
    for key in metadata_path:
        node = mapping(node).get(str(key))
    annotations = mapping(mapping(node).get("annotations"))
    pod_context = mapping(spec.get("securityContext"))
    refs = [item for kind in ("initContainers", "containers", "ephemeralContainers")
            for item in _as_list(spec.get(kind)) if isinstance(item, dict)]
    contexts = [mapping(item.get("securityContext")) for item in refs]
    all_contexts = [pod_context, *contexts]

    def any_context(test: Any) -> bool:
        return any(test(context) for context in contexts)

    def caps(context: dict[str, Any], which: str) -> list[Any]:
        values = mapping(context.get("capabilities")).get(which)
        return values if isinstance(values, list) else []

    def resources(kind: str, name: str) -> bool:
        return any(mapping(mapping(item.get("resources")).get(kind)).get(name) not in (None, "") for item in refs)

    def high(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value > 10000

    apparmor_types = [mapping(context.get("appArmorProfile")).get("type") for context in all_contexts]
    apparmor_annotations = [str(v) for k, v in annotations.items() if k.startswith(APPARMOR_ANNOTATION)]
    seccomp_types = [mapping(context.get("seccompProfile")).get("type") for context in all_contexts]
    seccomp_annotations = [str(v) for k, v in annotations.items()
                           if k == SECCOMP_POD_ANNOTATION or k.startswith(SECCOMP_CONTAINER_ANNOTATION)]
    host_paths = [str(mapping(mapping(volume).get("hostPath")).get("path", ""))
                  for volume in _as_list(spec.get("volumes"))]

    score = 0
    score -= 30 if any_context(lambda c: c.get("privileged") is True) else 0
    score -= 30 if any_context(lambda c: any(capability_name(v) == "SYS_ADMIN" for v in caps(c, "add"))) else 0
    score -= sum(9 for field in ("hostNetwork", "hostPID", "hostIPC") if spec.get(field) is True)
    score -= 9 if any(path.rstrip("/") == "/var/run/docker.sock" for path in host_paths) else 0
    score -= 7 if any_context(lambda c: c.get("allowPrivilegeEscalation") is True) else 0
    score -= 3 if spec.get("hostAliases") else 0
    unconfined_apparmor = "Unconfined" in apparmor_types or "unconfined" in apparmor_annotations
    score -= 3 if unconfined_apparmor else 0
    score -= 1 if "Unconfined" in seccomp_types or "unconfined" in seccomp_annotations else 0
    score -= 1 if any_context(lambda c: c.get("procMount") == "Unmasked") else 0

    score += 1 if any_context(lambda c: c.get("readOnlyRootFilesystem") is True) else 0
    score += 1 if any(context.get("runAsNonRoot") is True for context in all_contexts) else 0
    score += 1 if any(high(context.get("runAsUser")) for context in all_contexts) else 0
    score += 1 if any(high(context.get("runAsGroup")) for context in all_contexts) else 0
    score += 1 if any_context(lambda c: bool(caps(c, "drop"))) else 0
    score += 1 if any_context(lambda c: "ALL" in caps(c, "drop")) else 0
    score += sum(1 for kind in ("requests", "limits") for name in ("cpu", "memory") if resources(kind, name))
    score += 3 if spec.get("serviceAccountName") else 0
    confined_seccomp = [t for t in seccomp_types if t not in (None, "Unconfined")]
    score += 1 if confined_seccomp or any(v != "unconfined" for v in seccomp_annotations) else 0
    confined_apparmor = [t for t in apparmor_types if t not in (None, "Unconfined")]
    score += 3 if confined_apparmor or any(v != "unconfined" for v in apparmor_annotations) else 0
    score += 1 if spec.get("automountServiceAccountToken") is False else 0
    score += 1 if spec.get("hostUsers") is False else 0
    if obj.get("kind") == "StatefulSet":
        score += _volume_claim_points(mapping(obj.get("spec")).get("volumeClaimTemplates"))
    return score


def _volume_claim_points(templates: Any) -> int:
    """kubesec's two StatefulSet items: every claim template ReadWriteOnce, and requesting storage."""
    claims = [mapping(mapping(template).get("spec")) for template in (templates if isinstance(templates, list) else [])]
    if not claims:
        return 2
    read_write_once = any(claim.get("accessModes") == ["ReadWriteOnce"] for claim in claims)
    storage = any(mapping(mapping(claim.get("resources")).get("requests")).get("storage") for claim in claims)
    return int(read_write_once) + int(storage)
