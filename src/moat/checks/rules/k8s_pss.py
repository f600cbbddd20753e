"""Pod Security Standards, Baseline and Restricted, one rule per control (MOAT-K8S-001..029).

Each rule checks exactly the fields and allowed values the Pod Security Standards name, with the same
precedence the Pod Security Admission controller applies: a container-level value wins over the
pod-level one; a restricted control that asks for a value (``runAsNonRoot: true``, a seccomp profile)
is met by the pod level alone when the container leaves the field unset; ``hostUsers: false`` relaxes
the non-root controls; and the Linux-only restricted controls (privilege escalation, seccomp,
capabilities) do not apply to pods with ``spec.os.name: windows``. The controls map to
``pss:baseline/<control>`` and ``pss:restricted/<control>``; the Restricted profile includes every
Baseline control, so a Restricted assessment selects both.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from moat.checks.document import Document, TargetKind
from moat.checks.rule import Hit, RuleContext, rule
from moat.checks.targets.kubernetes import (
    ContainerRef,
    Workload,
    mapping,
    security_context,
    user_namespaced,
    workload,
)

K8S = (TargetKind.KUBERNETES,)
PSS_URL = "https://kubernetes.io/docs/concepts/security/pod-security-standards/"
CONTEXT_URL = "https://kubernetes.io/docs/tasks/configure-pod-container/security-context/"
CIS_URL = "https://www.cisecurity.org/benchmark/kubernetes"
NSA_URL = ("https://media.defense.gov/2022/Aug/29/2003066362/-1/-1/0/"
           "CTR_KUBERNETES_HARDENING_GUIDANCE_1.2_20220829.PDF")
NSA_CISA_SECTIONS = {
    "non-root-containers": "Kubernetes Pod security / \"Non-root\" containers and \"rootless\" container engines",
    "immutable-filesystems": "Kubernetes Pod security / Immutable container file systems",
    "secure-images": "Kubernetes Pod security / Building secure container images",
    "pod-security-enforcement": "Kubernetes Pod security / Pod security enforcement",
    "service-account-tokens": "Kubernetes Pod security / Protecting Pod service account tokens",
    "container-environments": "Kubernetes Pod security / Hardening container environments",
    "namespaces": "Network separation and hardening / Namespaces",
    "network-policies": "Network separation and hardening / Network policies",
    "resource-policies": "Network separation and hardening / Resource policies",
    "secrets": "Network separation and hardening / Secrets",
}
"""The ``nsa-cisa-k8s:<slug>`` controls these rules use: one slug per section of the NSA/CISA Kubernetes
Hardening Guidance v1.2 (slug -> section), so a compliance report can group findings by section."""
NSA_POD_SECURITY = "nsa-cisa-k8s:pod-security-enforcement"

BASELINE_CAPABILITIES = frozenset({
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
    "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
})
"""Capabilities Baseline lets a container add: the container runtimes' default set."""

SAFE_SYSCTLS = frozenset({
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes", "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem",
})
"""The sysctls Baseline allows: namespaced per pod and isolated from other pods (Kubernetes 1.32 list)."""

SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"})
RESTRICTED_VOLUME_SOURCES = frozenset({
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret",
})
"""Volume sources Restricted allows: the ones that cannot reach node storage or arbitrary remote storage."""
APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"
SECCOMP_POD_ANNOTATION = "seccomp.security.alpha.kubernetes.io/pod"
SECCOMP_CONTAINER_ANNOTATION = "container.seccomp.security.alpha.kubernetes.io/"


_pod = workload


def _quoted(values: list[str]) -> str:
    return ", ".join(f'"{value}"' for value in values)


# ---------------------------------------------------------------- Baseline


@rule(
    id="MOAT-K8S-001",
    title="Windows HostProcess container",
    severity="HIGH",
    targets=K8S,
    description=(
        "A Windows HostProcess container runs directly on the node as a host process, with access to "
        "the node's network, filesystem and devices: container isolation does not apply to it. "
        "Baseline forbids it."
    ),
    remediation=(
        "Remove `windowsOptions.hostProcess: true` from the pod and container security contexts (or set "
        "it to false); run node-level Windows agents from a dedicated, tightly controlled namespace.\n"
        "  securityContext:\n    windowsOptions:\n      hostProcess: false"
    ),
    verification=(
        "kubectl get pods -A -o json | jq -r '.items[] | select([.spec.securityContext.windowsOptions.hostProcess,"
        " (.spec.containers[],.spec.initContainers[]?,.spec.ephemeralContainers[]?)"
        ".securityContext.windowsOptions.hostProcess] | any) | .metadata.namespace+\"/\"+.metadata.name' "
        "— every pod listed runs a HostProcess container."
    ),
    references=(PSS_URL, "https://kubernetes.io/docs/tasks/configure-pod-container/create-hostprocess-pod/"),
    controls=("pss:baseline/host-process", "cis-kubernetes-1.9:5.2.11", NSA_POD_SECURITY),
    aliases=("KSV-0103", "KSV103", "no-hostprocess-containers", "set-hostprocess-true", "C-0211"),
)
def host_process(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    pod = _pod(doc)
    if pod is None:
        return
    if mapping(pod.security_context.get("windowsOptions")).get("hostProcess") is True:
        yield Hit("pod sets windowsOptions.hostProcess: true",
                  path=(*pod.security_context_path, "windowsOptions", "hostProcess"))
    for ref in pod.containers:
        if mapping(security_context(ref).get("windowsOptions")).get("hostProcess") is True:
            yield Hit(f'container "{ref.name}" sets windowsOptions.hostProcess: true',
                      path=(*ref.path, "securityContext", "windowsOptions", "hostProcess"), container=ref.name)


def _host_namespace(doc: Document, field: str, what: str) -> Iterator[Hit]:
    pod = _pod(doc)
    if pod is not None and pod.spec.get(field) is True:
        yield Hit(f"pod shares the host's {what} ({field}: true)", path=(*pod.spec_path, field))


@rule(
    id="MOAT-K8S-002",
    title="Pod shares the host PID namespace",
    severity="HIGH",
    targets=K8S,
    description=(
        "With hostPID the pod's containers see every process on the node: they can read other processes' "
        "environment and command lines (often holding secrets) and, with ptrace, attach to them. "
        "Baseline forbids it."
    ),
    remediation="Remove `hostPID: true` from the pod spec (or set it to false).\n  spec:\n    hostPID: false",
    verification=(
        "kubectl get pods -A -o json | jq -r '.items[] | select(.spec.hostPID) | .metadata.namespace+\"/\""
        "+.metadata.name' — expect no output; in a manifest, look for `hostPID: true` in the pod spec."
    ),
    references=(PSS_URL, CIS_URL),
    controls=("pss:baseline/host-namespaces", "cis-kubernetes-1.9:5.2.3", NSA_POD_SECURITY),
    aliases=("KSV-0010", "KSV010", "no-host-pid", "host-pid-privileges", "C-0275", "C-0038", "HostPID"),
)
def host_pid(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    yield from _host_namespace(doc, "hostPID", "process ID namespace")


@rule(
    id="MOAT-K8S-003",
    title="Pod shares the host IPC namespace",
    severity="HIGH",
    targets=K8S,
    description=(
        "With hostIPC the pod's containers share System V IPC and POSIX message queues and shared memory "
        "with every process on the node, so they can read or tamper with the host's shared memory. "
        "Baseline forbids it."
    ),
    remediation="Remove `hostIPC: true` from the pod spec (or set it to false).\n  spec:\n    hostIPC: false",
    verification=(
        "kubectl get pods -A -o json | jq -r '.items[] | select(.spec.hostIPC) | .metadata.namespace+\"/\""
        "+.metadata.name' — expect no output."
    ),
    references=(PSS_URL, CIS_URL),
    controls=("pss:baseline/host-namespaces", "cis-kubernetes-1.9:5.2.4", NSA_POD_SECURITY),
    aliases=("KSV-0008", "KSV008", "no-shared-ipc-namespace", "host-ipc-privileges", "C-0276", "C-0038",
             "HostIPC"),
)
def host_ipc(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    yield from _host_namespace(doc, "hostIPC", "IPC namespace")


@rule(
    id="MOAT-K8S-004",
    title="Pod uses the host network namespace",
    severity="HIGH",
    targets=K8S,
    description=(
        "With hostNetwork the pod binds the node's interfaces: it can reach services listening on the "
        "node's loopback (kubelet, metadata proxies), sniff traffic, and bypass NetworkPolicies. "
        "Baseline forbids it."
    ),
    remediation=(
        "Remove `hostNetwork: true` from the pod spec and expose the workload through a Service instead.\n"
        "  spec:\n    hostNetwork: false"
    ),
    verification=(
        "kubectl get pods -A -o json | jq -r '.items[] | select(.spec.hostNetwork) | .metadata.namespace+\"/\""
        "+.metadata.name' — expect no output outside the node-level system namespaces."
    ),
    references=(PSS_URL, CIS_URL),
    controls=("pss:baseline/host-namespaces", "cis-kubernetes-1.9:5.2.5", NSA_POD_SECURITY),
    aliases=("KSV-0009", "KSV009", "no-host-network", "host-network-access", "C-0041", "HostNetwork"),
)
def host_network(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    yield from _host_namespace(doc, "hostNetwork", "network namespace")


@rule(
    id="MOAT-K8S-005",
    title="Privileged container",
    severity="CRITICAL",
    targets=K8S,
    description=(
        "A privileged container has every capability and every device of the node, with no seccomp or "
        "AppArmor confinement: it is root on the node in all but name, and escaping it is trivial. "
        "Baseline forbids it."
    ),
    remediation=(
        "Remove `privileged: true`; grant only the specific capabilities the process needs.\n"
        "  securityContext:\n    privileged: false"
    ),
    verification=(
        "kubectl get pods -A -o json | jq -r '.items[] | .metadata.namespace+\"/\"+.metadata.name as $p | "
        "(.spec.containers[],.spec.initContainers[]?,.spec.ephemeralContainers[]?) | "
        "select(.securityContext.privileged) | $p+\" \"+.name' — expect no output."
    ),
    references=(PSS_URL, CIS_URL, CONTEXT_URL),
    controls=("pss:baseline/privileged", "cis-kubernetes-1.9:5.2.2", NSA_POD_SECURITY),
    aliases=("KSV-0017", "KSV017", "no-privileged-containers", "rule-privileged-container", "rule-privilege-escalation",
             "C-0057", "Privileged"),
)
def privileged(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    pod = _pod(doc)
    if pod is None:
        return
    for ref in pod.containers:
        if security_context(ref).get("privileged") is True:
            yield Hit(f'container "{ref.name}" runs privileged', path=(*ref.path, "securityContext", "privileged"),
                      container=ref.name)


def capability_name(value: Any) -> str:
    """A capability as Linux names it without the ``CAP_`` prefix, upper case (runtimes accept both)."""
    text = str(value).strip().upper()
    return text[4:] if text.startswith("CAP_") else text


def _capability_list(ref: ContainerRef, which: str) -> list[Any]:
    values = mapping(security_context(ref).get("capabilities")).get(which)
    return values if isinstance(values, list) else []


@rule(
    id="MOAT-K8S-006",
    title="Container adds capabilities beyond the Baseline set",
    severity="HIGH",
    targets=K8S,
    description=(
        "Capabilities outside the runtime's default set (SYS_ADMIN, NET_ADMIN, SYS_PTRACE, SYS_MODULE, "
        "NET_RAW's bigger siblings …) give a container powers over the node's kernel that routinely lead "
        "to container escape. Baseline allows adding only the default set."
    ),
    remediation=(
        "Remove the extra capabilities from `securityContext.capabilities.add`; if the process really needs "
        "one, isolate it on dedicated nodes.\n  securityContext:\n    capabilities:\n      drop: [\"ALL\"]\n"
        "      add: [\"NET_BIND_SERVICE\"]"
    ),
    verification=(
        "kubectl get pods -A -o json | jq -r '.items[] | .metadata.name as $p | (.spec.containers[],"
        ".spec.initContainers[]?) | select(.securityContext.capabilities.add) | $p+\" \"+.name+\" \"+"
        "(.securityContext.capabilities.add|join(\",\"))' — only names from the Baseline set may appear "
        "(AUDIT_WRITE CHOWN DAC_OVERRIDE FOWNER FSETID KILL MKNOD NET_BIND_SERVICE SETFCAP SETGID SETPCAP "
        "SETUID SYS_CHROOT)."
    ),
    references=(PSS_URL, "https://man7.org/linux/man-pages/man7/capabilities.7.html"),
    controls=("pss:baseline/capabilities", NSA_POD_SECURITY),
    aliases=("KSV-0005", "KSV005", "no-sysadmin-capability", "CapSysAdmin", "C-0046", "insecure-capabilities"),
)
def baseline_capabilities(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    pod = _pod(doc)
    if pod is None:
        return
    for ref in pod.containers:
        added = _capability_list(ref, "add")
        # Compared as written, as the admission controller does: "CAP_CHOWN" or "chown" is not "CHOWN".
        extra = [str(value) for value in added if value not in BASELINE_CAPABILITIES]
        if extra:
            yield Hit(f'container "{ref.name}" adds {_quoted(extra)}',
                      path=(*ref.path, "securityContext", "capabilities", "add"), container=ref.name,
                      evidence=", ".join(extra))


RUNTIME_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock", "/var/run/containerd/containerd.sock",
                   "/run/containerd/containerd.sock", "/var/run/crio/crio.sock", "/run/crio/crio.sock",
                   "/var/run/cri-dockerd.sock", "/run/cri-dockerd.sock")
"""Where Docker, containerd, CRI-O and cri-dockerd put their API sockets."""


def normalize_host_path(host_path: str) -> str:
    """``/var//run/./docker.sock/`` -> ``/var/run/docker.sock`` (the kubelet does not care either)."""
    return "/" + "/".join(part for part in host_path.strip().split("/") if part not in ("", "."))


def runtime_socket_exposed(host_path: str) -> str:
    """The runtime socket a hostPath exposes ("" when none): the socket itself, or a directory above it
    (mounting /var/run or / hands over the socket just the same)."""
    normalized = normalize_host_path(host_path)
    for socket in RUNTIME_SOCKETS:
        if normalized == socket or socket.startswith(normalized.rstrip("/") + "/"):
            return socket
    if normalized.endswith(("/docker.sock", "/containerd.sock", "/crio.sock")):
        return normalized
    return ""


def _host_paths(pod: Workload) -> Iterator[tuple[int, str, dict[str, Any]]]:
    volumes = pod.spec.get("volumes")
    if not isinstance(volumes, list):
        return
    for index, volume in enumerate(volumes):
        host_path = mapping(volume).get("hostPath")
        if isinstance(host_path, dict):
            yield index, str(host_path.get("path", "")), volume


@rule(
    id="MOAT-K8S-009",
    title="Pod mounts a hostPath volume",
    severity="MEDIUM",
    targets=K8S,
    description=(
        "A hostPath volume exposes part of the node's filesystem to the pod: logs of other pods, kubelet "
        "credentials, the container runtime's socket, or /etc. A write to the wrong path is a node "
        "compromise. Baseline forbids hostPath volumes."
    ),
    remediation=(
        "Replace the hostPath volume with an emptyDir, a ConfigMap/Secret, or a PersistentVolumeClaim.\n"
        "  volumes:\n    - name: cache\n      emptyDir: {}"
    ),
    verification=(
        "kubectl get pods -A -o json | jq -r '.items[] | select(.spec.volumes[]?.hostPath) | "
        ".metadata.namespace+\"/\"+.metadata.name' — expect no output outside node-level system namespaces."
    ),
    references=(PSS_URL, "https://kubernetes.io/docs/concepts/storage/volumes/#hostpath"),
    controls=("pss:baseline/hostpath-volumes", "cis-kubernetes-1.9:5.2.12", NSA_POD_SECURITY),
    aliases=("KSV-0023", "KSV023", "no-mounted-hostpath", "alert-any-hostpath", "C-0048"),
)
def host_path_volume(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    pod = _pod(doc)
    if pod is None:
        return
    for index, path, volume in _host_paths(pod):
        name = volume.get("name", index)
        yield Hit(f'volume "{name}" mounts host path "{path}"', path=(*pod.spec_path, "volumes", index, "hostPath"),
                  evidence=path)


@rule(
    id="MOAT-K8S-010",
    title="Pod mounts the container runtime socket",
    severity="CRITICAL",
    targets=K8S,
    description=(
        "The Docker, containerd or CRI-O socket controls every container on the node: whoever can write "
        "to it can start a privileged container and own the node."
    ),
    remediation=(
        "Remove the hostPath volume that points at the runtime socket; build images with a daemonless "
        "builder (BuildKit rootless, kaniko) and read container metadata from the Kubernetes API instead."
    ),
    verification=(
        "kubectl get pods -A -o json | jq -r '.items[] | select(.spec.volumes[]?.hostPath.path | "
        "test(\"(docker|containerd|crio|cri-dockerd)\\\\.sock$\")?) | .metadata.namespace+\"/\"+.metadata.name'"
        " — expect no output."
    ),
    references=(PSS_URL, "https://docs.docker.com/engine/security/#docker-daemon-attack-surface"),
    controls=("pss:baseline/hostpath-volumes", "cis-kubernetes-1.9:5.2.12", NSA_POD_SECURITY),
    aliases=("KSV-0006", "KSV006", "no-docker-sock-mount", "containers-mounting-docker-socket", "C-0074",
             "DockerSock"),
)
def runtime_socket(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    pod = _pod(doc)
    if pod is None:
        return
    for index, path, volume in _host_paths(pod):
        socket = runtime_socket_exposed(path)
        if socket:
            exact = normalize_host_path(path) == socket
            what = f'the container runtime socket "{path}"' if exact else f'"{path}", which holds {socket}'
            yield Hit(f'volume "{volume.get("name", index)}" mounts {what}',
                      path=(*pod.spec_path, "volumes", index, "hostPath", "path"), evidence=path)


@rule(
    id="MOAT-K8S-011",
    title="Container binds a host port",
    severity="MEDIUM",
    targets=K8S,
    description=(
        "A hostPort binds the port on the node's own interfaces, bypassing Services and NetworkPolicies and "
        "tying the pod to nodes where the port is free. Baseline forbids host ports."
    ),
    remediation=(
        "Remove `hostPort` from the container's ports and expose the port through a Service.\n"
        "  ports:\n    - containerPort: 8080"
    ),
    verification=(
        "kubectl get pods -A -o json | jq -r '.items[] | .metadata.name as $p | (.spec.containers[],"
        ".spec.initContainers[]?) | select(.ports[]?.hostPort > 0) | $p+\" \"+.name' — expect no output."
    ),
    references=(PSS_URL, CIS_URL),
    controls=("pss:baseline/host-ports", "cis-kubernetes-1.9:5.2.13", NSA_POD_SECURITY),
    aliases=("KSV-0024", "KSV024", "no-host-port-access", "container-hostPort", "C-0044"),
)
def host_ports(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    pod = _pod(doc)
    if pod is None:
        return
    for ref in pod.containers:
        ports = ref.data.get("ports")
        if not isinstance(ports, list):
            continue
        for index, port in enumerate(ports):
            host_port = mapping(port).get("hostPort")
            if host_port not in (None, 0, "0"):
                yield Hit(f'container "{ref.name}" binds host port {host_port}',
                          path=(*ref.path, "ports", index, "hostPort"), container=ref.name, evidence=str(host_port))


def _apparmor_type_ok(value: Any) -> bool:
    return value in (None, "RuntimeDefault", "Localhost")


@rule(
    id="MOAT-K8S-012",
    title="AppArmor profile overridden or disabled",
    severity="MEDIUM",
    targets=K8S,
    description=(
        "On AppArmor hosts every container runs under the runtime's default profile, which blocks writes to "
        "/proc and /sys and mount operations. Setting the profile to unconfined (or to an unknown one) "
        "removes that layer. Baseline allows only the runtime default or a profile loaded on the node."
    ),
    remediation=(
        "Use the runtime default profile or a localhost profile:\n  securityContext:\n    appArmorProfile:\n"
        "      type: RuntimeDefault\n(older clusters: annotation "
        "container.apparmor.security.beta.kubernetes.io/<container>: runtime/default)"
    ),
    verification=(
        "kubectl get pod NAME -o yaml and look at securityContext.appArmorProfile.type (pod and containers) "
        "and the container.apparmor.security.beta.kubernetes.io/* annotations: only RuntimeDefault/Localhost "
        "(runtime/default, localhost/<profile>) are acceptable."
    ),
    references=(PSS_URL, "https://kubernetes.io/docs/tutorials/security/apparmor/"),
    controls=("pss:baseline/apparmor", NSA_POD_SECURITY),
    aliases=("KSV-0002", "KSV002", "use-default-apparmor-profile", "ApparmorUnconfined"),
)
def apparmor(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    pod = _pod(doc)
    if pod is None:
        return
    for key, value in pod.annotations.items():
        if key.startswith(APPARMOR_ANNOTATION):
            text = value if isinstance(value, str) else str(value)
            if text and text != "runtime/default" and not text.startswith("localhost/"):
                container = key[len(APPARMOR_ANNOTATION):]
                yield Hit(f'container "{container}" has AppArmor profile "{text}"',
                          path=(*pod.metadata_path, "annotations", key), container=container, evidence=text)
    pod_type = mapping(pod.security_context.get("appArmorProfile")).get("type")
    if not _apparmor_type_ok(pod_type):
        yield Hit(f'pod sets appArmorProfile type "{pod_type}"',
                  path=(*pod.security_context_path, "appArmorProfile", "type"), evidence=str(pod_type))
    for ref in pod.containers:
        own = mapping(security_context(ref).get("appArmorProfile")).get("type")
        if not _apparmor_type_ok(own):
            yield Hit(f'container "{ref.name}" sets appArmorProfile type "{own}"',
                      path=(*ref.path, "securityContext", "appArmorProfile", "type"), container=ref.name,
                      evidence=str(own))


def _selinux_problems(options: Any) -> list[str]:
    values = mapping(options)
    problems = []
    selinux_type = values.get("type")
    if selinux_type is not None and selinux_type not in SELINUX_TYPES:
        problems.append(f'type "{selinux_type}"')
    for field in ("user", "role"):
        if values.get(field) not in (None, ""):
            problems.append(f'{field} "{values[field]}"')
    return problems


@rule(
    id="MOAT-K8S-013",
    title="Custom SELinux options",
    severity="MEDIUM",
    targets=K8S,
    description=(
        "A custom SELinux type, user or role can label the container as something the host policy trusts "
        "(spc_t, unconfined_t), lifting the confinement SELinux gives containers. Baseline allows only the "
        "container types and no user or role."
    ),
    remediation=(
        "Remove seLinuxOptions.user and .role; use one of container_t, container_init_t, container_kvm_t, "
        "container_engine_t for the type (or leave it unset), keeping only the MCS level if you need one.\n"
        "  securityContext:\n    seLinuxOptions:\n      level: \"s0:c123,c456\""
    ),
    verification=(
        "kubectl get pod NAME -o jsonpath='{.spec.securityContext.seLinuxOptions}{\"\\n\"}"
        "{.spec.containers[*].securityContext.seLinuxOptions}' — type must be empty or a container_* type; "
        "user and role must be empty."
    ),
    references=(PSS_URL, CONTEXT_URL),
    controls=("pss:baseline/selinux", "cis-kubernetes-1.9:5.7.3", NSA_POD_SECURITY),
    aliases=("KSV-0025", "KSV025", "no-custom-selinux-options"),
)
def selinux(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    pod = _pod(doc)
    if pod is None:
        return
    problems = _selinux_problems(pod.security_context.get("seLinuxOptions"))
    if problems:
        yield Hit(f"pod sets SELinux {', '.join(problems)}", path=(*pod.security_context_path, "seLinuxOptions"))
    for ref in pod.containers:
        problems = _selinux_problems(security_context(ref).get("seLinuxOptions"))
        if problems:
            yield Hit(f'container "{ref.name}" sets SELinux {", ".join(problems)}',
                      path=(*ref.path, "securityContext", "seLinuxOptions"), container=ref.name)


@rule(
    id="MOAT-K8S-014",
    title="Container unmasks /proc",
    severity="MEDIUM",
    targets=K8S,
    description=(
        "The default /proc mount masks and makes read-only the kernel interfaces a container must not touch "
        "(/proc/sys, /proc/sysrq-trigger, /proc/kcore …). procMount: Unmasked removes that protection. "
        "Baseline requires the default (pods in their own user namespace, hostUsers: false, are exempt)."
    ),
    remediation="Remove `procMount` or set it to Default.\n  securityContext:\n    procMount: Default",
    verification=(
        "kubectl get pod NAME -o jsonpath='{range .spec.containers[*]}{.name}={.securityContext.procMount}"
        "{\"\\n\"}{end}' — every value must be empty or Default."
    ),
    references=(PSS_URL, CONTEXT_URL),
    controls=("pss:baseline/proc-mount", "cis-kubernetes-1.9:5.7.3", NSA_POD_SECURITY),
    aliases=("KSV-0027", "KSV027", "no-custom-proc-mask", "set-procmount-default", "C-0211", "ProcMount"),
)
def proc_mount(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    pod = _pod(doc)
    if pod is None or user_namespaced(pod):
        return
    for ref in pod.containers:
        value = security_context(ref).get("procMount")
        if value not in (None, "Default"):
            yield Hit(f'container "{ref.name}" sets procMount "{value}"',
                      path=(*ref.path, "securityContext", "procMount"), container=ref.name, evidence=str(value))


def _seccomp_annotation_unconfined(pod: Workload) -> Iterator[tuple[str, str]]:
    for key, value in pod.annotations.items():
        if (key == SECCOMP_POD_ANNOTATION or key.startswith(SECCOMP_CONTAINER_ANNOTATION)) and value == "unconfined":
            yield key, key[len(SECCOMP_CONTAINER_ANNOTATION):] if key != SECCOMP_POD_ANNOTATION else ""


@rule(
    id="MOAT-K8S-015",
    title="Seccomp explicitly disabled (Unconfined)",
    severity="MEDIUM",
    targets=K8S,
    description=(
        "seccomp filters the system calls a container may make; Unconfined turns the filter off and exposes "
        "the whole kernel syscall surface (kernel exploits, keyctl, unshare …). Baseline forbids Unconfined."
    ),
    remediation=(
        "Set the profile to RuntimeDefault (or a Localhost profile) at pod level and drop container-level "
        "Unconfined overrides.\n  securityContext:\n    seccompProfile:\n      type: RuntimeDefault"
    ),
    verification=(
        "kubectl get pod NAME -o yaml | grep -n -A1 seccompProfile — no type may be Unconfined (nor the legacy "
        "annotation value unconfined)."
    ),
    references=(PSS_URL, "https://kubernetes.io/docs/tutorials/security/seccomp/"),
    controls=("pss:baseline/seccomp", "cis-kubernetes-1.9:5.7.2", NSA_POD_SECURITY),
    aliases=("KSV-0104", "KSV104", "no-seccomp-unconfined", "SeccompUnconfined"),
)
def seccomp_unconfined(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    pod = _pod(doc)
    if pod is None:
        return
    if mapping(pod.security_context.get("seccompProfile")).get("type") == "Unconfined":
        yield Hit("pod sets seccompProfile type Unconfined",
                  path=(*pod.security_context_path, "seccompProfile", "type"))
    for ref in pod.containers:
        if mapping(security_context(ref).get("seccompProfile")).get("type") == "Unconfined":
            yield Hit(f'container "{ref.name}" sets seccompProfile type Unconfined',
                      path=(*ref.path, "securityContext", "seccompProfile", "type"), container=ref.name)
    for key, container in _seccomp_annotation_unconfined(pod):
        who = f'container "{container}"' if container else "pod"
        yield Hit(f"{who} disables seccomp by annotation", path=(*pod.metadata_path, "annotations", key),
                  container=container)


@rule(
    id="MOAT-K8S-016",
    title="Pod sets unsafe sysctls",
    severity="MEDIUM",
    targets=K8S,
    description=(
        "Sysctls outside the safe set are not isolated per pod: they change kernel settings for every pod on "
        "the node (or the node itself), enabling denial of service or weakening protections. Baseline allows "
        "only the safe set."
    ),
    remediation=(
        "Remove the unsafe entries from `securityContext.sysctls`; tune the node instead, or run the workload "
        "on dedicated nodes whose kubelet allows the sysctl.\n  securityContext:\n    sysctls:\n"
        "      - name: net.ipv4.ip_local_port_range\n        value: \"32768 60999\""
    ),
    verification=(
        "kubectl get pod NAME -o jsonpath='{.spec.securityContext.sysctls[*].name}' — every name must be one "
        "of the safe sysctls listed in the Pod Security Standards."
    ),
    references=(PSS_URL, "https://kubernetes.io/docs/tasks/administer-cluster/sysctl-cluster/"),
    controls=("pss:baseline/sysctls", "cis-kubernetes-1.9:5.7.3", NSA_POD_SECURITY),
    aliases=("KSV-0026", "KSV026", "no-unsafe-sysctl", "set-sysctls-params", "C-0211"),
)
def sysctls(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    pod = _pod(doc)
    if pod is None:
        return
    entries = pod.security_context.get("sysctls")
    if not isinstance(entries, list):
        return
    unsafe = [str(mapping(entry).get("name")) for entry in entries if mapping(entry).get("name") not in SAFE_SYSCTLS]
    if unsafe:
        yield Hit(f"pod sets unsafe sysctls {_quoted(unsafe)}", path=(*pod.security_context_path, "sysctls"),
                  evidence=", ".join(unsafe))


PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
HOOKS = ("postStart", "preStop")


@rule(
    id="MOAT-K8S-017",
    title="Probe or lifecycle hook targets another host",
    severity="MEDIUM",
    targets=K8S,
    description=(
        "An httpGet or tcpSocket probe or lifecycle hook with a `host` makes the kubelet connect to that "
        "address from the node: a pod author can point it at node-local or internal endpoints (a server-side "
        "request forgery through the kubelet). Baseline requires the host to be unset."
    ),
    remediation=(
        "Remove `host` from httpGet/tcpSocket probes and hooks so the kubelet probes the pod's own IP; set "
        "an HTTP Host header with httpHeaders if the application needs one."
    ),
    verification=(
        "kubectl get pod NAME -o yaml | grep -n 'host:' — no probe or lifecycle handler may set host."
    ),
    references=(PSS_URL, "https://kubernetes.io/docs/tasks/configure-pod-container/configure-liveness-readiness-startup-probes/"),
    controls=("pss:baseline/host-probes", NSA_POD_SECURITY),
    aliases=("hostProbesAndHostLifecycle",),
)
def probe_hosts(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    pod = _pod(doc)
    if pod is None:
        return
    for ref in pod.containers:
        handlers: list[tuple[tuple[str, ...], Any]] = [((probe,), ref.data.get(probe)) for probe in PROBES]
        lifecycle = mapping(ref.data.get("lifecycle"))
        handlers += [(("lifecycle", hook), lifecycle.get(hook)) for hook in HOOKS]
        for where, handler in handlers:
            for action in ("httpGet", "tcpSocket"):
                host = mapping(mapping(handler).get(action)).get("host")
                if host not in (None, ""):
                    yield Hit(f'container "{ref.name}" {".".join(where)} connects to host "{host}"',
                              path=(*ref.path, *where, action, "host"), container=ref.name, evidence=str(host))


# ---------------------------------------------------------------- Restricted


@rule(
    id="MOAT-K8S-020",
    title="Volume type not allowed by Restricted",
    severity="LOW",
    targets=K8S,
    description=(
        "Restricted allows only volume sources that cannot reach node storage or arbitrary remote storage "
        "(configMap, csi, downwardAPI, emptyDir, ephemeral, persistentVolumeClaim, projected, secret). Other "
        "in-line sources (nfs, iscsi, rbd, gitRepo, hostPath …) let a pod author mount storage an "
        "administrator never provisioned, with credentials in the pod spec."
    ),
    remediation=(
        "Provision the storage as a PersistentVolume and mount it through a PersistentVolumeClaim.\n"
        "  volumes:\n    - name: data\n      persistentVolumeClaim:\n        claimName: data"
    ),
    verification=(
        "kubectl get pod NAME -o jsonpath='{range .spec.volumes[*]}{@}{\"\\n\"}{end}' — each volume must use "
        "one of the allowed sources."
    ),
    references=(PSS_URL, "https://kubernetes.io/docs/concepts/storage/volumes/"),
    controls=("pss:restricted/volume-types", NSA_POD_SECURITY),
    aliases=("KSV-0028", "KSV028", "no-non-ephemeral-volumes"),
)
def volume_types(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    pod = _pod(doc)
    if pod is None:
        return
    volumes = pod.spec.get("volumes")
    if not isinstance(volumes, list):
        return
    for index, volume in enumerate(volumes):
        values = mapping(volume)
        # A volume with no source at all is defaulted to emptyDir by the API server before admission.
        sources = [key for key in values if key != "name" and values[key] is not None]
        if sources and not any(key in RESTRICTED_VOLUME_SOURCES for key in sources):
            name = values.get("name", index)
            yield Hit(f'volume "{name}" uses {", ".join(sources)}', path=(*pod.spec_path, "volumes", index, sources[0]),
                      evidence=", ".join(sources))


@rule(
    id="MOAT-K8S-021",
    title="Container allows privilege escalation",
    severity="MEDIUM",
    targets=K8S,
    description=(
        "Unless allowPrivilegeEscalation is false, a process in the container can gain more privileges than "
        "its parent (setuid binaries, file capabilities), so a compromised non-root process can become root. "
        "Restricted requires it to be false."
    ),
    remediation="Set it on every container:\n  securityContext:\n    allowPrivilegeEscalation: false",
    verification=(
        "kubectl get pod NAME -o jsonpath='{range .spec.containers[*]}{.name}={.securityContext."
        "allowPrivilegeEscalation}{\"\\n\"}{end}' — every container must print false."
    ),
    references=(PSS_URL, CIS_URL, CONTEXT_URL),
    controls=("pss:restricted/privilege-escalation", "cis-kubernetes-1.9:5.2.6", "cis-kubernetes-1.9:5.7.3",
              NSA_POD_SECURITY),
    aliases=("KSV-0001", "KSV001", "no-self-privesc", "rule-allow-privilege-escalation", "C-0016",
             "AllowPrivilegeEscalation"),
)
def privilege_escalation(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    pod = _pod(doc)
    if pod is None or pod.is_windows:
        return
    for ref in pod.containers:
        value = security_context(ref).get("allowPrivilegeEscalation")
        if value is not False:
            state = "allows privilege escalation" if value is True else "does not set allowPrivilegeEscalation: false"
            path = (*ref.path, "securityContext", "allowPrivilegeEscalation") if value is not None else ref.path
            yield Hit(f'container "{ref.name}" {state}', path=path, container=ref.name)


@rule(
    id="MOAT-K8S-022",
    title="Container may run as root (runAsNonRoot not set)",
    severity="MEDIUM",
    targets=K8S,
    description=(
        "Without runAsNonRoot: true the kubelet starts the container as whatever user the image names, root "
        "by default; a process running as root inside the container is one kernel or runtime bug away from "
        "root on the node. Restricted requires runAsNonRoot: true at pod level or on every container."
    ),
    remediation=(
        "Set it at pod level (and give the image a non-root USER or set runAsUser):\n  spec:\n"
        "    securityContext:\n      runAsNonRoot: true\n      runAsUser: 10001"
    ),
    verification=(
        "kubectl get pod NAME -o jsonpath='{.spec.securityContext.runAsNonRoot} {range .spec.containers[*]}"
        "{.securityContext.runAsNonRoot} {end}' — the pod value must be true (and no container false), or "
        "every container true."
    ),
    references=(PSS_URL, CIS_URL, CONTEXT_URL),
    controls=("pss:restricted/running-as-non-root", "cis-kubernetes-1.9:5.2.7", "nsa-cisa-k8s:non-root-containers"),
    aliases=("KSV-0012", "KSV012", "no-root"),
)
def run_as_non_root(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    pod = _pod(doc)
    if pod is None or user_namespaced(pod):
        return
    pod_value = pod.security_context.get("runAsNonRoot")
    if pod_value is False:
        yield Hit("pod sets runAsNonRoot: false", path=(*pod.security_context_path, "runAsNonRoot"))
    for ref in pod.containers:
        own = security_context(ref).get("runAsNonRoot")
        if own is False:
            yield Hit(f'container "{ref.name}" sets runAsNonRoot: false',
                      path=(*ref.path, "securityContext", "runAsNonRoot"), container=ref.name)
        elif own is None and pod_value is not True:
            yield Hit(f'container "{ref.name}" may run as root: runAsNonRoot is not true for it or the pod',
                      path=ref.path, container=ref.name)


@rule(
    id="MOAT-K8S-023",
    title="Container runs as UID 0",
    severity="MEDIUM",
    targets=K8S,
    description=(
        "runAsUser: 0 runs the container's processes as root explicitly. Restricted forbids UID 0 at pod "
        "and container level."
    ),
    remediation="Use a non-zero UID:\n  securityContext:\n    runAsUser: 10001",
    verification=(
        "kubectl get pod NAME -o jsonpath='{.spec.securityContext.runAsUser} {range .spec.containers[*]}"
        "{.securityContext.runAsUser} {end}' — no value may be 0."
    ),
    references=(PSS_URL, CIS_URL),
    controls=("pss:restricted/running-as-non-root-user", "cis-kubernetes-1.9:5.2.7",
              "nsa-cisa-k8s:non-root-containers"),
    aliases=("KSV-0105", "KSV105", "containers-not-run-as-root"),
)
def run_as_user_zero(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    pod = _pod(doc)
    if pod is None or user_namespaced(pod):
        return
    if pod.security_context.get("runAsUser") == 0:
        yield Hit("pod sets runAsUser: 0", path=(*pod.security_context_path, "runAsUser"))
    for ref in pod.containers:
        if security_context(ref).get("runAsUser") == 0:
            yield Hit(f'container "{ref.name}" sets runAsUser: 0', path=(*ref.path, "securityContext", "runAsUser"),
                      container=ref.name)


def _seccomp_type_ok(profile: Any) -> bool:
    return mapping(profile).get("type") in ("RuntimeDefault", "Localhost")


@rule(
    id="MOAT-K8S-024",
    title="Seccomp profile not set to RuntimeDefault or Localhost",
    severity="MEDIUM",
    targets=K8S,
    description=(
        "Kubernetes runs containers without any seccomp filter unless a profile is set, so every system "
        "call, including those behind most container-escape exploits, stays reachable. Restricted requires "
        "RuntimeDefault or Localhost at pod level, or on every container."
    ),
    remediation=(
        "Set the profile at pod level:\n  spec:\n    securityContext:\n      seccompProfile:\n"
        "        type: RuntimeDefault"
    ),
    verification=(
        "kubectl get pod NAME -o jsonpath='{.spec.securityContext.seccompProfile.type} {range "
        ".spec.containers[*]}{.securityContext.seccompProfile.type} {end}' — the pod value (or every "
        "container's) must be RuntimeDefault or Localhost."
    ),
    references=(PSS_URL, "https://kubernetes.io/docs/tutorials/security/seccomp/", CIS_URL),
    controls=("pss:restricted/seccomp", "cis-kubernetes-1.9:5.7.2", "cis-kubernetes-1.9:5.7.3", NSA_POD_SECURITY),
    aliases=("KSV-0030", "KSV030", "use-default-seccomp", "set-seccomp-profile", "C-0211", "SeccompAny"),
)
def seccomp_restricted(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    pod = _pod(doc)
    if pod is None or pod.is_windows:
        return
    pod_profile = pod.security_context.get("seccompProfile")
    pod_ok = _seccomp_type_ok(pod_profile)
    if pod_profile is not None and not pod_ok:
        yield Hit(f'pod sets seccompProfile type "{mapping(pod_profile).get("type")}"',
                  path=(*pod.security_context_path, "seccompProfile"))
    for ref in pod.containers:
        own = security_context(ref).get("seccompProfile")
        if own is not None and not _seccomp_type_ok(own):
            yield Hit(f'container "{ref.name}" sets seccompProfile type "{mapping(own).get("type")}"',
                      path=(*ref.path, "securityContext", "seccompProfile"), container=ref.name)
        elif own is None and not pod_ok:
            yield Hit(f'container "{ref.name}" has no seccomp profile (none at pod level either)', path=ref.path,
                      container=ref.name)


@rule(
    id="MOAT-K8S-025",
    title="Container does not drop ALL capabilities",
    severity="LOW",
    targets=K8S,
    description=(
        "Containers start with the runtime's default capability set (CHOWN, DAC_OVERRIDE, SETUID, NET_RAW "
        "…), most of which an application never needs and an attacker can use. Restricted requires "
        "dropping ALL and adding back at most NET_BIND_SERVICE."
    ),
    remediation=(
        "  securityContext:\n    capabilities:\n      drop: [\"ALL\"]\n      add: [\"NET_BIND_SERVICE\"]  "
        "# only if it binds ports below 1024"
    ),
    verification=(
        "kubectl get pod NAME -o jsonpath='{range .spec.containers[*]}{.name}: drop={.securityContext."
        "capabilities.drop} add={.securityContext.capabilities.add}{\"\\n\"}{end}' — drop must include ALL, "
        "add may hold only NET_BIND_SERVICE."
    ),
    references=(PSS_URL, "https://man7.org/linux/man-pages/man7/capabilities.7.html"),
    controls=("pss:restricted/capabilities", "cis-kubernetes-1.9:5.2.10", NSA_POD_SECURITY),
    aliases=("KSV-0106", "KSV106", "drop-caps-add-bind-svc", "KSV-0003", "KSV003", "drop-default-capabilities",
             "CapDropAll"),
)
def restricted_capabilities(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    pod = _pod(doc)
    if pod is None or pod.is_windows:
        return
    for ref in pod.containers:
        dropped = _capability_list(ref, "drop")
        if "ALL" not in dropped:
            path = (*ref.path, "securityContext", "capabilities", "drop") if dropped else ref.path
            yield Hit(f'container "{ref.name}" does not drop ALL capabilities', path=path, container=ref.name)
        extra = [str(value) for value in _capability_list(ref, "add") if value != "NET_BIND_SERVICE"]
        if extra:
            yield Hit(f'container "{ref.name}" adds {_quoted(extra)} (only NET_BIND_SERVICE is allowed)',
                      path=(*ref.path, "securityContext", "capabilities", "add"), container=ref.name,
                      evidence=", ".join(extra))
