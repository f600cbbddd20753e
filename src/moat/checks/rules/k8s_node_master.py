"""CIS Kubernetes Benchmark 1.9, section 1 (control plane components) and section 3 (control plane
configuration): ``MOAT-KN-001`` … ``MOAT-KN-094``, for nodes with the ``master`` role."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from moat.checks.document import Document
from moat.checks.rule import CheckFunction, Hit, RuleContext
from moat.checks.rules.k8s_node import (
    ADMISSION_DOC,
    APISERVER_DOC,
    AUDIT_DOC,
    AUTHN_DOC,
    CONTROLLER_MANAGER_DOC,
    ENCRYPTION_DOC,
    ETCD_DOC,
    KUBEADM_DOC,
    PKI_DOC,
    SCHEDULER_DOC,
    certificate_mode,
    component,
    file_mode,
    file_owner,
    flag,
    flag_absent,
    flag_at_least,
    flag_equals,
    flag_hit,
    flag_list,
    flag_not_value,
    flags_set,
    node_manual_rule,
    node_rule,
    plugin_enabled,
    plugin_not_disabled,
)
from moat.checks.targets.k8s_node import feature_gates

MASTER = "master"

# --------------------------------------------------------------------------------------------------
# 1.1 Control plane node configuration files

_FILE_RULES: list[dict[str, Any]] = [
    # id, cis, key, what, check ("mode", allowed) or ("owner", user, group), severity, kcv, kubescape, title
    dict(n=1, cis="1.1.1", key="apiserver_manifest", what="API server pod specification", mode=0o600, kcv=48, ks=92,
         title="Ensure that the API server pod specification file permissions are set to 600 or more restrictive"),
    dict(n=2, cis="1.1.2", key="apiserver_manifest", what="API server pod specification", owner=True, kcv=49, ks=93,
         title="Ensure that the API server pod specification file ownership is set to root:root"),
    dict(n=3, cis="1.1.3", key="controller_manager_manifest", what="controller manager pod specification",
         mode=0o600, kcv=50, ks=94,
         title="Ensure that the controller manager pod specification file permissions are set to 600 or more "
               "restrictive"),
    dict(n=4, cis="1.1.4", key="controller_manager_manifest", what="controller manager pod specification",
         owner=True, kcv=51, ks=95,
         title="Ensure that the controller manager pod specification file ownership is set to root:root"),
    dict(n=5, cis="1.1.5", key="scheduler_manifest", what="scheduler pod specification", mode=0o600, kcv=52, ks=96,
         title="Ensure that the scheduler pod specification file permissions are set to 600 or more restrictive"),
    dict(n=6, cis="1.1.6", key="scheduler_manifest", what="scheduler pod specification", owner=True, kcv=53, ks=97,
         title="Ensure that the scheduler pod specification file ownership is set to root:root"),
    dict(n=7, cis="1.1.7", key="etcd_manifest", what="etcd pod specification", mode=0o600, kcv=54, ks=98,
         title="Ensure that the etcd pod specification file permissions are set to 600 or more restrictive"),
    dict(n=8, cis="1.1.8", key="etcd_manifest", what="etcd pod specification", owner=True, kcv=55, ks=99,
         title="Ensure that the etcd pod specification file ownership is set to root:root"),
    dict(n=9, cis="1.1.9", key="cni", what="CNI configuration file", mode=0o600, kcv=56, ks=100, severity="MEDIUM",
         title="Ensure that the Container Network Interface file permissions are set to 600 or more restrictive"),
    dict(n=10, cis="1.1.10", key="cni", what="CNI configuration file", owner=True, kcv=57, ks=101,
         severity="MEDIUM",
         title="Ensure that the Container Network Interface file ownership is set to root:root"),
    dict(n=11, cis="1.1.11", key="etcd_data_dir", what="etcd data directory", mode=0o700, kinds=("dir",),
         kcv=58, ks=102,
         title="Ensure that the etcd data directory permissions are set to 700 or more restrictive"),
    dict(n=12, cis="1.1.12", key="etcd_data_dir", what="etcd data directory", owner=True, user="etcd",
         kinds=("dir",), kcv=59, ks=103, severity="MEDIUM",
         title="Ensure that the etcd data directory ownership is set to etcd:etcd"),
    dict(n=13, cis="1.1.13", key="admin_kubeconfigs", what="administrator kubeconfig", mode=0o600, kcv=60, ks=104,
         severity="CRITICAL",
         title="Ensure that the default administrative credential file permissions are set to 600"),
    dict(n=14, cis="1.1.14", key="admin_kubeconfigs", what="administrator kubeconfig", owner=True, kcv=61, ks=105,
         severity="CRITICAL",
         title="Ensure that the default administrative credential file ownership is set to root:root"),
    dict(n=15, cis="1.1.15", key="scheduler_kubeconfig", what="scheduler kubeconfig", mode=0o600, kcv=62, ks=106,
         title="Ensure that the scheduler.conf file permissions are set to 600 or more restrictive"),
    dict(n=16, cis="1.1.16", key="scheduler_kubeconfig", what="scheduler kubeconfig", owner=True, kcv=63, ks=107,
         title="Ensure that the scheduler.conf file ownership is set to root:root"),
    dict(n=17, cis="1.1.17", key="controller_manager_kubeconfig", what="controller manager kubeconfig", mode=0o600,
         kcv=64, ks=108,
         title="Ensure that the controller-manager.conf file permissions are set to 600 or more restrictive"),
    dict(n=18, cis="1.1.18", key="controller_manager_kubeconfig", what="controller manager kubeconfig", owner=True,
         kcv=65, ks=109,
         title="Ensure that the controller-manager.conf file ownership is set to root:root"),
    dict(n=19, cis="1.1.19", key="pki", what="Kubernetes PKI entry", owner=True, kinds=("file", "dir"), kcv=66,
         ks=110, severity="CRITICAL",
         title="Ensure that the Kubernetes PKI directory and file ownership is set to root:root"),
    dict(n=20, cis="1.1.20", key="pki", what="Kubernetes PKI certificate", mode=certificate_mode, suffix=".crt",
         kcv=68, ks=111, severity="MEDIUM",
         title="Ensure that the Kubernetes PKI certificate file permissions are set to 600 or more restrictive"),
    dict(n=21, cis="1.1.21", key="pki", what="Kubernetes PKI private key", mode=0o600, suffix=".key", kcv=67,
         ks=112, severity="CRITICAL",
         title="Ensure that the Kubernetes PKI key file permissions are set to 600"),
]

_FILE_PROSE: dict[str, tuple[str, str]] = {
    # key: (why it matters, the node path used in examples)
    "apiserver_manifest": ("The kubelet runs whatever this static Pod manifest says: anyone who can write it "
                           "can change the API server's flags or image and take over the cluster, and anyone who "
                           "can read it learns every credential path the API server uses.",
                           "/etc/kubernetes/manifests/kube-apiserver.yaml"),
    "controller_manager_manifest": ("The controller manager holds the cluster's signing key and service account "
                                    "key; whoever can edit its static Pod manifest runs code with those keys.",
                                    "/etc/kubernetes/manifests/kube-controller-manager.yaml"),
    "scheduler_manifest": ("A writable scheduler manifest lets a local user replace the scheduler, which decides "
                           "where every Pod runs.", "/etc/kubernetes/manifests/kube-scheduler.yaml"),
    "etcd_manifest": ("etcd stores every object of the cluster, Secrets included; a writable etcd manifest lets a "
                      "local user change how it listens and authenticates.", "/etc/kubernetes/manifests/etcd.yaml"),
    "cni": ("The CNI configuration decides how every Pod is wired to the network; a user who can change it can "
            "intercept or redirect Pod traffic.", "/etc/cni/net.d/*"),
    "etcd_data_dir": ("The etcd data directory holds the whole cluster state in clear unless encryption at rest "
                      "is on; anyone who can read it reads every Secret.", "/var/lib/etcd"),
    "admin_kubeconfigs": ("admin.conf (and super-admin.conf since Kubernetes 1.29) carry a client certificate in "
                          "system:masters or a cluster-admin binding: reading the file is cluster-admin.",
                          "/etc/kubernetes/admin.conf /etc/kubernetes/super-admin.conf"),
    "scheduler_kubeconfig": ("scheduler.conf holds the scheduler's client certificate and key; a copy lets "
                             "anyone act as the scheduler against the API server.", "/etc/kubernetes/scheduler.conf"),
    "controller_manager_kubeconfig": ("controller-manager.conf holds the controller manager's client credentials, "
                                      "which can read and write most objects in the cluster.",
                                      "/etc/kubernetes/controller-manager.conf"),
    "pki": ("The PKI directory holds the cluster CA and every component's key: a user who can replace a "
            "certificate or read a key can impersonate a component or mint cluster credentials.",
            "/etc/kubernetes/pki"),
}


def _file_rule(spec: dict[str, Any]) -> None:
    why, example = _FILE_PROSE[spec["key"]]
    kinds = spec.get("kinds", ("file",))
    if "mode" in spec:
        allowed = spec["mode"]
        shown = "600 (644 for certificates under CIS 1.11 and later)" if callable(allowed) else f"{allowed:o}"
        target = f"{example}/*{spec['suffix']}" if spec.get("suffix") else example
        recurse = "find /etc/kubernetes/pki -name '*" + spec["suffix"] + "' -exec " if spec.get("suffix") else ""
        check: CheckFunction = file_mode(spec["key"], allowed, spec["what"], kinds, spec.get("suffix", ""))
        remediation = (f"Remove group and other access on the control plane node: "
                       f"`{recurse}chmod {shown.split()[0]} {'{} +' if recurse else target}`. The file keeps "
                       "working for its component, which runs as root.")
        listing = (f"find {example} -name '*{spec['suffix']}' -exec stat -c '%a %n' {{}} +" if spec.get("suffix")
                   else f"stat -c '%a %n' {target}")
        verification = (f"Run `{listing}` on the control plane node: every mode is {shown.split()[0]} or stricter "
                        f"(no bit outside {shown.split()[0]}).")
        whose = "Each file's mode" if spec.get("suffix") or spec["key"] == "cni" else "Its mode"
        description = f"{why} {whose} should grant nothing beyond {shown}."
    else:
        user = spec.get("user", "root")
        recurse = "-R " if "dir" in kinds else ""
        check = file_owner(spec["key"], spec["what"], user, user, kinds)
        remediation = f"`chown {recurse}{user}:{user} {example}` on the control plane node."
        if user == "etcd":
            remediation += (" Create the user first when the distribution has none "
                            "(`useradd --system --no-create-home --shell /usr/sbin/nologin etcd`), and run etcd as it.")
        listing = (f"find {example} -exec stat -c '%U:%G %n' {{}} +" if "dir" in kinds
                   else f"stat -c '%U:%G %n' {example}")
        verification = f"Run `{listing}` on the control plane node: every line shows {user}:{user}."
        description = f"{why} It should belong to {user}:{user} so only that account can change it."
    node_rule(id=f"MOAT-KN-{spec['n']:03d}", cis=spec["cis"], title=spec["title"],
              severity=spec.get("severity", "HIGH"), role=MASTER, description=description,
              remediation=remediation, verification=verification,
              references=[PKI_DOC if spec["key"] == "pki" else KUBEADM_DOC], kcv=[spec["kcv"]],
              kubescape=[spec["ks"]])(check)


for _spec in _FILE_RULES:
    _file_rule(_spec)


# --------------------------------------------------------------------------------------------------
# 1.2 API server

def _apiserver(n: int, cis: str, title: str, severity: str, check: CheckFunction, description: str,
               remediation: str, verification: str, kcv: list[int], ks: list[int],
               references: tuple[str, ...] = (APISERVER_DOC,), params: dict[str, Any] | None = None) -> None:
    node_rule(id=f"MOAT-KN-{n:03d}", cis=cis, title=title, severity=severity, role=MASTER, description=description,
              remediation=remediation, verification=verification, references=references, kcv=kcv, kubescape=ks,
              params=params)(check)


_PS_APISERVER = "Run `ps -ef | grep kube-apiserver` on the control plane node (or read " \
                "/etc/kubernetes/manifests/kube-apiserver.yaml)"
_EDIT_APISERVER = "In /etc/kubernetes/manifests/kube-apiserver.yaml (the kubelet restarts the API server when " \
                  "it changes), set"

_apiserver(30, "1.2.1", "Ensure that the --anonymous-auth argument is set to false", "MEDIUM",
           flag_equals("apiserver", "anonymous-auth", "false", "true"),
           "With anonymous requests on, any caller that presents no credentials becomes system:anonymous; a single "
           "careless RBAC binding to that user or to system:unauthenticated then opens the API to the network.",
           f"{_EDIT_APISERVER} `- --anonymous-auth=false`. Health checks that relied on anonymous access to /livez "
           "and /readyz need a credential or an allowing RBAC rule afterwards.",
           f"{_PS_APISERVER}: --anonymous-auth=false is present.", [1], [113],
           (APISERVER_DOC, AUTHN_DOC))
_apiserver(31, "1.2.2", "Ensure that the --token-auth-file parameter is not set", "HIGH",
           flag_absent("apiserver", "token-auth-file"),
           "A static token file holds long-lived bearer tokens in clear; they cannot be rotated or revoked without "
           "restarting the API server.",
           f"{_EDIT_APISERVER} no `--token-auth-file`: remove the line and move its users to client certificates, "
           "OIDC or service account tokens.", f"{_PS_APISERVER}: --token-auth-file is absent.", [2], [114],
           (APISERVER_DOC, AUTHN_DOC))
_apiserver(32, "1.2.3", "Ensure that the --DenyServiceExternalIPs is set", "MEDIUM",
           plugin_enabled("DenyServiceExternalIPs"),
           "A Service's externalIPs field lets anyone who can create Services claim traffic for arbitrary "
           "addresses (CVE-2020-8554); the DenyServiceExternalIPs admission plugin refuses new uses of it.",
           f"{_EDIT_APISERVER} `- --enable-admission-plugins=NodeRestriction,DenyServiceExternalIPs` (keep the "
           "plugins already listed).",
           f"{_PS_APISERVER}: --enable-admission-plugins lists DenyServiceExternalIPs.", [3], [283],
           (ADMISSION_DOC,))
_apiserver(33, "1.2.4",
           "Ensure that the --kubelet-client-certificate and --kubelet-client-key arguments are set as appropriate",
           "HIGH", flags_set("apiserver", "kubelet-client-certificate", "kubelet-client-key"),
           "Without a client certificate the API server cannot authenticate to kubelets, so kubelets must accept "
           "unauthenticated exec, logs and port-forward requests.",
           f"{_EDIT_APISERVER} `- --kubelet-client-certificate=/etc/kubernetes/pki/apiserver-kubelet-client.crt` "
           "and `- --kubelet-client-key=/etc/kubernetes/pki/apiserver-kubelet-client.key`.",
           f"{_PS_APISERVER}: both --kubelet-client-certificate and --kubelet-client-key name existing files.",
           [5], [116], (APISERVER_DOC,))
_apiserver(34, "1.2.5", "Ensure that the --kubelet-certificate-authority argument is set as appropriate", "HIGH",
           flags_set("apiserver", "kubelet-certificate-authority"),
           "Without a CA to check kubelet serving certificates against, the API server talks to whatever answers "
           "on a node's address: a spoofed kubelet receives exec sessions and the credentials in them.",
           f"{_EDIT_APISERVER} `- --kubelet-certificate-authority=/etc/kubernetes/pki/ca.crt`, and have kubelets "
           "get CA-signed serving certificates (serverTLSBootstrap: true, then approve their CSRs).",
           f"{_PS_APISERVER}: --kubelet-certificate-authority names the CA file.", [6], [117],
           (APISERVER_DOC,))


def _structured_authorizers(doc: Document) -> list[str] | None:
    """The authorizer types of an ``--authorization-config`` file (Kubernetes 1.29+), which replaces
    --authorization-mode; None when the API server does not use one or it cannot be read."""
    entry = (component(doc, "apiserver") or {}).get("authorization_config")
    data = entry.get("data") if isinstance(entry, dict) else None
    if not isinstance(data, dict) or not isinstance(data.get("authorizers"), list):
        return None
    return [str(item.get("type")) for item in data["authorizers"] if isinstance(item, dict)]


def _authorization_mode(mode: str, present: bool) -> CheckFunction:
    def check(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
        if component(doc, "apiserver") is None:
            return
        modes = flag_list(doc, "apiserver", "authorization-mode")
        evidence = f"--authorization-mode={','.join(modes) if modes else '(absent, default AlwaysAllow)'}"
        structured = _structured_authorizers(doc)
        if not modes and structured is not None:
            modes, evidence = structured, f"authorizers in --authorization-config: {','.join(structured)}"
        if not modes:
            modes = ["AlwaysAllow"]
        if present and mode not in modes:
            yield flag_hit(doc, "apiserver", "authorization-mode",
                           f"kube-apiserver authorization modes {','.join(modes)} do not include {mode}", evidence)
        if not present and mode in modes:
            yield flag_hit(doc, "apiserver", "authorization-mode",
                           f"kube-apiserver authorization modes include {mode}", evidence)

    return check


_apiserver(35, "1.2.6", "Ensure that the --authorization-mode argument is not set to AlwaysAllow", "CRITICAL",
           _authorization_mode("AlwaysAllow", present=False),
           "AlwaysAllow authorizes every authenticated request: every user and service account is cluster-admin. "
           "It is also what the API server does when --authorization-mode is not given.",
           f"{_EDIT_APISERVER} `- --authorization-mode=Node,RBAC`.",
           f"{_PS_APISERVER}: --authorization-mode is present and does not list AlwaysAllow.", [7], [118])
_apiserver(36, "1.2.7", "Ensure that the --authorization-mode argument includes Node", "HIGH",
           _authorization_mode("Node", present=True),
           "The Node authorizer limits each kubelet to the Secrets, ConfigMaps and volumes of Pods bound to its own "
           "node; without it a compromised node's credentials read objects of the whole cluster.",
           f"{_EDIT_APISERVER} `- --authorization-mode=Node,RBAC`.",
           f"{_PS_APISERVER}: --authorization-mode lists Node.", [8], [119])
_apiserver(37, "1.2.8", "Ensure that the --authorization-mode argument includes RBAC", "HIGH",
           _authorization_mode("RBAC", present=True),
           "Without the RBAC authorizer, Roles and RoleBindings have no effect and access falls to the other "
           "modes (often all or nothing).", f"{_EDIT_APISERVER} `- --authorization-mode=Node,RBAC`.",
           f"{_PS_APISERVER}: --authorization-mode lists RBAC.", [9], [120])
_apiserver(38, "1.2.9", "Ensure that the admission control plugin EventRateLimit is set", "MEDIUM",
           plugin_enabled("EventRateLimit"),
           "Without EventRateLimit a noisy or hostile client can flood the API server and etcd with Events until "
           "the control plane slows down for everyone.",
           f"{_EDIT_APISERVER} `- --enable-admission-plugins=NodeRestriction,EventRateLimit` and "
           "`- --admission-control-config-file=/etc/kubernetes/admission-control.yaml`, whose EventRateLimit "
           "configuration sets the limits (e.g. `limits: [{type: Namespace, qps: 50, burst: 100}]`).",
           f"{_PS_APISERVER}: --enable-admission-plugins lists EventRateLimit and --admission-control-config-file "
           "names its configuration.", [10], [121], (ADMISSION_DOC,))
_apiserver(39, "1.2.10", "Ensure that the admission control plugin AlwaysAdmit is not set", "HIGH",
           lambda doc, ctx: (hit for hit in _plugin_listed(doc, "AlwaysAdmit")),
           "AlwaysAdmit admits every request regardless of the other admission plugins' verdicts.",
           f"{_EDIT_APISERVER} an --enable-admission-plugins list without AlwaysAdmit.",
           f"{_PS_APISERVER}: --enable-admission-plugins does not list AlwaysAdmit.", [11], [122], (ADMISSION_DOC,))


def _plugin_listed(doc: Document, plugin: str) -> Iterator[Hit]:
    enabled = flag_list(doc, "apiserver", "enable-admission-plugins")
    if plugin in enabled:
        yield flag_hit(doc, "apiserver", "enable-admission-plugins",
                       f"kube-apiserver enables the {plugin} admission plugin",
                       f"--enable-admission-plugins={','.join(enabled)}")


_apiserver(40, "1.2.11", "Ensure that the admission control plugin AlwaysPullImages is set", "MEDIUM",
           plugin_enabled("AlwaysPullImages"),
           "Without AlwaysPullImages, a Pod can start from a private image already cached on the node without "
           "the pull credentials that image needs, so tenants can run each other's private images.",
           f"{_EDIT_APISERVER} `- --enable-admission-plugins=NodeRestriction,AlwaysPullImages` (not for "
           "air-gapped clusters that rely on preloaded images).",
           f"{_PS_APISERVER}: --enable-admission-plugins lists AlwaysPullImages.", [12], [123], (ADMISSION_DOC,))
_apiserver(41, "1.2.12", "Ensure that the admission control plugin ServiceAccount is set", "MEDIUM",
           plugin_not_disabled("ServiceAccount"),
           "The ServiceAccount plugin gives every Pod a service account and refuses references to missing ones; "
           "without it, Pods can name service accounts and tokens that were never meant for them.",
           f"{_EDIT_APISERVER} a --disable-admission-plugins list without ServiceAccount (it is on by default).",
           f"{_PS_APISERVER}: --disable-admission-plugins, if present, does not list ServiceAccount.", [14], [125],
           (ADMISSION_DOC,))
_apiserver(42, "1.2.13", "Ensure that the admission control plugin NamespaceLifecycle is set", "MEDIUM",
           plugin_not_disabled("NamespaceLifecycle"),
           "NamespaceLifecycle stops objects being created in a namespace that is being deleted or does not "
           "exist, and protects the system namespaces from deletion.",
           f"{_EDIT_APISERVER} a --disable-admission-plugins list without NamespaceLifecycle (it is on by default).",
           f"{_PS_APISERVER}: --disable-admission-plugins, if present, does not list NamespaceLifecycle.", [15],
           [126], (ADMISSION_DOC,))
_apiserver(43, "1.2.14", "Ensure that the admission control plugin NodeRestriction is set", "HIGH",
           plugin_enabled("NodeRestriction"),
           "NodeRestriction keeps a kubelet to modifying its own Node object and the Pods bound to it; without it "
           "one compromised node can relabel other nodes and attract sensitive workloads.",
           f"{_EDIT_APISERVER} `- --enable-admission-plugins=NodeRestriction` (with the Node authorizer).",
           f"{_PS_APISERVER}: --enable-admission-plugins lists NodeRestriction.", [16], [127], (ADMISSION_DOC,))
_apiserver(44, "1.2.15", "Ensure that the --profiling argument is set to false", "LOW",
           flag_equals("apiserver", "profiling", "false", "true"),
           "Profiling serves /debug/pprof, which reveals internals and can be used to load the API server; it is "
           "on unless turned off.", f"{_EDIT_APISERVER} `- --profiling=false`.",
           f"{_PS_APISERVER}: --profiling=false is present.", [18], [129])
_apiserver(45, "1.2.16", "Ensure that the --audit-log-path argument is set", "MEDIUM",
           flags_set("apiserver", "audit-log-path"),
           "Without an audit log there is no record of who read a Secret, exec'd into a Pod or changed RBAC.",
           f"{_EDIT_APISERVER} `- --audit-log-path=/var/log/kubernetes/audit/audit.log` and "
           "`- --audit-policy-file=/etc/kubernetes/audit-policy.yaml`, with hostPath mounts for both.",
           f"{_PS_APISERVER}: --audit-log-path names a file.", [19], [130], (APISERVER_DOC, AUDIT_DOC))
_apiserver(46, "1.2.17", "Ensure that the --audit-log-maxage argument is set to 30 or as appropriate", "LOW",
           flag_at_least("apiserver", "audit-log-maxage", "min_audit_log_maxage"),
           "Audit logs rotated away too early leave nothing to investigate an incident found weeks later.",
           f"{_EDIT_APISERVER} `- --audit-log-maxage=30` (days; the min_audit_log_maxage parameter sets the "
           "threshold Moat checks).",
           f"{_PS_APISERVER}: --audit-log-maxage is 30 or more.", [20], [131], (APISERVER_DOC, AUDIT_DOC),
           {"min_audit_log_maxage": 30})
_apiserver(47, "1.2.18", "Ensure that the --audit-log-maxbackup argument is set to 10 or as appropriate", "LOW",
           flag_at_least("apiserver", "audit-log-maxbackup", "min_audit_log_maxbackup"),
           "Too few rotated audit files are kept and older evidence is deleted.",
           f"{_EDIT_APISERVER} `- --audit-log-maxbackup=10`.",
           f"{_PS_APISERVER}: --audit-log-maxbackup is 10 or more.", [21], [132], (APISERVER_DOC, AUDIT_DOC),
           {"min_audit_log_maxbackup": 10})
_apiserver(48, "1.2.19", "Ensure that the --audit-log-maxsize argument is set to 100 or as appropriate", "LOW",
           flag_at_least("apiserver", "audit-log-maxsize", "min_audit_log_maxsize"),
           "Small audit files rotate fast, so the retained history covers only a short time.",
           f"{_EDIT_APISERVER} `- --audit-log-maxsize=100` (megabytes).",
           f"{_PS_APISERVER}: --audit-log-maxsize is 100 or more.", [22], [133], (APISERVER_DOC, AUDIT_DOC),
           {"min_audit_log_maxsize": 100})
node_manual_rule(
    id="MOAT-KN-049", cis="1.2.20", title="Ensure that the --request-timeout argument is set as appropriate",
    severity="LOW", role=MASTER,
    description="The request timeout bounds how long the API server keeps a request open; the right value depends "
                "on the cluster's load and clients, so no file answers whether the current one is appropriate.",
    remediation=f"{_EDIT_APISERVER} `- --request-timeout=300s` or the value your largest legitimate requests need; "
                "leave it at the default (60s) unless you have a reason.",
    verification=f"{_PS_APISERVER}: --request-timeout is absent (60s) or set to a value you have reviewed.",
    references=[APISERVER_DOC], kubescape=[134])
_apiserver(50, "1.2.21", "Ensure that the --service-account-lookup argument is set to true", "MEDIUM",
           flag_not_value("apiserver", "service-account-lookup", "false"),
           "Without the lookup, a service account token stays valid after its service account or Secret is "
           "deleted, until it expires.",
           f"{_EDIT_APISERVER} `- --service-account-lookup=true` or remove --service-account-lookup=false "
           "(true is the default).",
           f"{_PS_APISERVER}: --service-account-lookup is absent or true.", [24], [135])
_apiserver(51, "1.2.22", "Ensure that the --service-account-key-file argument is set as appropriate", "MEDIUM",
           flags_set("apiserver", "service-account-key-file"),
           "The API server verifies service account tokens with these public keys; naming them explicitly keeps "
           "key rotation possible (old and new keys side by side).",
           f"{_EDIT_APISERVER} `- --service-account-key-file=/etc/kubernetes/pki/sa.pub`.",
           f"{_PS_APISERVER}: --service-account-key-file names the public key matching the controller "
           "manager's --service-account-private-key-file.", [25], [136])
_apiserver(52, "1.2.23", "Ensure that the --etcd-certfile and --etcd-keyfile arguments are set as appropriate",
           "HIGH", flags_set("apiserver", "etcd-certfile", "etcd-keyfile"),
           "Without a client certificate the API server reaches etcd unauthenticated, which means etcd accepts "
           "unauthenticated clients: anyone who reaches port 2379 owns the cluster state.",
           f"{_EDIT_APISERVER} `- --etcd-certfile=/etc/kubernetes/pki/apiserver-etcd-client.crt` and "
           "`- --etcd-keyfile=/etc/kubernetes/pki/apiserver-etcd-client.key`.",
           f"{_PS_APISERVER}: both --etcd-certfile and --etcd-keyfile are present.", [26], [137], (APISERVER_DOC,
                                                                                                   ETCD_DOC))
_apiserver(53, "1.2.24",
           "Ensure that the --tls-cert-file and --tls-private-key-file arguments are set as appropriate", "HIGH",
           flags_set("apiserver", "tls-cert-file", "tls-private-key-file"),
           "Without a configured serving certificate the API server makes a self-signed one that clients cannot "
           "verify, which trains them to skip verification.",
           f"{_EDIT_APISERVER} `- --tls-cert-file=/etc/kubernetes/pki/apiserver.crt` and "
           "`- --tls-private-key-file=/etc/kubernetes/pki/apiserver.key`.",
           f"{_PS_APISERVER}: both --tls-cert-file and --tls-private-key-file are present.", [27], [138])
_apiserver(54, "1.2.25", "Ensure that the --client-ca-file argument is set as appropriate", "HIGH",
           flags_set("apiserver", "client-ca-file"),
           "Without a client CA the API server cannot authenticate client certificates, which kubelets and the "
           "control plane components rely on.", f"{_EDIT_APISERVER} `- --client-ca-file=/etc/kubernetes/pki/ca.crt`.",
           f"{_PS_APISERVER}: --client-ca-file names the cluster CA.", [28], [139])
_apiserver(55, "1.2.26", "Ensure that the --etcd-cafile argument is set as appropriate", "HIGH",
           flags_set("apiserver", "etcd-cafile"),
           "Without the etcd CA the API server cannot verify it is talking to the real etcd; a spoofed etcd would "
           "receive every write, Secrets included.",
           f"{_EDIT_APISERVER} `- --etcd-cafile=/etc/kubernetes/pki/etcd/ca.crt`.",
           f"{_PS_APISERVER}: --etcd-cafile names the etcd CA.", [29], [140], (APISERVER_DOC, ETCD_DOC))
_apiserver(56, "1.2.27", "Ensure that the --encryption-provider-config argument is set as appropriate", "HIGH",
           flags_set("apiserver", "encryption-provider-config"),
           "Without an encryption configuration, Secrets are stored in etcd (and its backups) in clear.",
           f"{_EDIT_APISERVER} `- --encryption-provider-config=/etc/kubernetes/enc/encryption-config.yaml`, a file "
           "whose first provider for secrets is aescbc, aesgcm, secretbox or kms; then rewrite existing Secrets "
           "(`kubectl get secrets -A -o json | kubectl replace -f -`).",
           f"{_PS_APISERVER}: --encryption-provider-config names an EncryptionConfiguration file.", [30], [141],
           (APISERVER_DOC, ENCRYPTION_DOC))

STRONG_PROVIDERS = ("aescbc", "aesgcm", "secretbox", "kms")


def _encryption_providers(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    apiserver = component(doc, "apiserver")
    if apiserver is None:
        return
    entry = apiserver.get("encryption_config")
    if not isinstance(entry, dict):
        yield flag_hit(doc, "apiserver", "encryption-provider-config",
                       "kube-apiserver has no encryption configuration: Secrets are stored unencrypted",
                       "--encryption-provider-config absent")
        return
    path = str(entry.get("path"))
    data = entry.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("resources"), list):
        reason = entry.get("error") or "not an EncryptionConfiguration"
        yield Hit(f"encryption configuration {path} cannot be assessed: {reason}", resource=path,
                  evidence=str(reason))
        return
    covered = False
    for item in data["resources"]:
        if not isinstance(item, dict):
            continue
        resources = [str(r) for r in item.get("resources") or []]
        providers = item.get("providers") or []
        first = next(iter(providers[0]), "") if providers and isinstance(providers[0], dict) else ""
        if any(r in ("secrets", "*.*", "*.") for r in resources):
            covered = True
            if first not in STRONG_PROVIDERS:
                yield Hit(f"encryption configuration {path} writes {', '.join(resources)} with the "
                          f"{first or 'missing'} provider first; new Secrets are not encrypted",
                          resource=path, evidence=f"first provider: {first or '(none)'}")
    if not covered:
        yield Hit(f"encryption configuration {path} does not cover secrets", resource=path,
                  evidence="no resources entry for secrets")


_apiserver(57, "1.2.28", "Ensure that encryption providers are appropriately configured", "HIGH",
           _encryption_providers,
           "The API server encrypts with the first provider listed for a resource; with identity first (or no "
           "entry for secrets), the encryption configuration exists but encrypts nothing.",
           "In the EncryptionConfiguration, list a real provider first for secrets, e.g. "
           "`providers: [{aescbc: {keys: [{name: key1, secret: <32 random bytes, base64>}]}}, {identity: {}}]` "
           "(or kms v2 with an external key manager).",
           "Read the file named by --encryption-provider-config: the resources entry for secrets lists aescbc, "
           "aesgcm, secretbox or kms first. `etcdctl get /registry/secrets/default/<name> | hexdump -C` shows a "
           "`k8s:enc:` prefix.", [], [142], (ENCRYPTION_DOC,))

STRONG_CIPHERS = [
    "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
]
"""AEAD suites with forward secrecy (TLS 1.3's and ECDHE+GCM/ChaCha20 for TLS 1.2)."""


def cipher_problem(suites: list[str], allowed: list[str]) -> str:
    """Why a cipher suite list is not strong enough ('' when it is)."""
    if not suites:
        return "no cipher suite list is set, so Go's defaults (including CBC suites) are accepted"
    weak = [suite for suite in suites if suite not in allowed]
    return f"weak cipher suites allowed: {', '.join(weak)}" if weak else ""


def _apiserver_ciphers(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    if component(doc, "apiserver") is None:
        return
    suites = flag_list(doc, "apiserver", "tls-cipher-suites")
    problem = cipher_problem(suites, list(ctx.params["allowed_cipher_suites"]))
    if problem:
        yield flag_hit(doc, "apiserver", "tls-cipher-suites", f"kube-apiserver: {problem}",
                       f"--tls-cipher-suites={','.join(suites) or '(absent)'}")


_apiserver(58, "1.2.29", "Ensure that the API Server only makes use of Strong Cryptographic Ciphers", "MEDIUM",
           _apiserver_ciphers,
           "Without an explicit list the API server also accepts CBC-mode and non-forward-secret suites, which "
           "weaken the confidentiality of everything clients send, tokens included.",
           f"{_EDIT_APISERVER} `- --tls-cipher-suites=TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,"
           "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,"
           "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384` (the allowed_cipher_suites parameter lists what Moat accepts).",
           f"{_PS_APISERVER}: --tls-cipher-suites lists only AEAD suites with ECDHE key exchange.", [], [277],
           params={"allowed_cipher_suites": STRONG_CIPHERS})

# --------------------------------------------------------------------------------------------------
# 1.3 Controller manager, 1.4 Scheduler

_PS_CM = "Run `ps -ef | grep kube-controller-manager` on the control plane node (or read " \
         "/etc/kubernetes/manifests/kube-controller-manager.yaml)"
_EDIT_CM = "In /etc/kubernetes/manifests/kube-controller-manager.yaml, set"
_PS_SCHED = "Run `ps -ef | grep kube-scheduler` on the control plane node (or read " \
            "/etc/kubernetes/manifests/kube-scheduler.yaml)"
_EDIT_SCHED = "In /etc/kubernetes/manifests/kube-scheduler.yaml, set"


def _plane(n: int, cis: str, title: str, severity: str, check: CheckFunction, description: str, remediation: str,
           verification: str, kcv: list[int], ks: list[int], references: tuple[str, ...]) -> None:
    node_rule(id=f"MOAT-KN-{n:03d}", cis=cis, title=title, severity=severity, role=MASTER, description=description,
              remediation=remediation, verification=verification, references=references, kcv=kcv,
              kubescape=ks)(check)


_plane(60, "1.3.1", "Ensure that the --terminated-pod-gc-threshold argument is set as appropriate", "LOW",
       flags_set("controller-manager", "terminated-pod-gc-threshold"),
       "Terminated Pods are kept until 12,500 exist by default; so many dead objects slow the control plane and "
       "hold on to logs and resources.",
       f"{_EDIT_CM} `- --terminated-pod-gc-threshold=10` (or the number of finished Pods you want to keep).",
       f"{_PS_CM}: --terminated-pod-gc-threshold is set.", [33], [144], (CONTROLLER_MANAGER_DOC,))
_plane(61, "1.3.2", "Ensure that the --profiling argument is set to false", "LOW",
       flag_equals("controller-manager", "profiling", "false", "true"),
       "Profiling exposes /debug/pprof on the controller manager, revealing internals; it is on unless turned off.",
       f"{_EDIT_CM} `- --profiling=false`.", f"{_PS_CM}: --profiling=false is present.", [34], [145],
       (CONTROLLER_MANAGER_DOC,))
_plane(62, "1.3.3", "Ensure that the --use-service-account-credentials argument is set to true", "MEDIUM",
       flag_equals("controller-manager", "use-service-account-credentials", "true", "false"),
       "Without it every controller runs with the controller manager's own, very broad credentials instead of a "
       "service account per controller scoped by RBAC.",
       f"{_EDIT_CM} `- --use-service-account-credentials=true`.",
       f"{_PS_CM}: --use-service-account-credentials=true is present.", [35], [146], (CONTROLLER_MANAGER_DOC,))
_plane(63, "1.3.4", "Ensure that the --service-account-private-key-file argument is set as appropriate", "MEDIUM",
       flags_set("controller-manager", "service-account-private-key-file"),
       "The controller manager signs service account tokens with this key; without an explicit key, keys cannot "
       "be rotated in step with the API server's --service-account-key-file.",
       f"{_EDIT_CM} `- --service-account-private-key-file=/etc/kubernetes/pki/sa.key`.",
       f"{_PS_CM}: --service-account-private-key-file names the private key.", [36], [147],
       (CONTROLLER_MANAGER_DOC,))
_plane(64, "1.3.5", "Ensure that the --root-ca-file argument is set as appropriate", "MEDIUM",
       flags_set("controller-manager", "root-ca-file"),
       "The root CA is put into every service account's token data so Pods can verify the API server; without "
       "it Pods cannot tell the real API server from an impostor.",
       f"{_EDIT_CM} `- --root-ca-file=/etc/kubernetes/pki/ca.crt`.", f"{_PS_CM}: --root-ca-file names the CA.",
       [37], [148], (CONTROLLER_MANAGER_DOC,))


def _rotate_server_certificate(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    gates = feature_gates(flag(doc, "controller-manager", "feature-gates") or "")
    if gates.get("RotateKubeletServerCertificate") is False:
        yield flag_hit(doc, "controller-manager", "feature-gates",
                       "kube-controller-manager turns the RotateKubeletServerCertificate feature gate off",
                       f"--feature-gates={flag(doc, 'controller-manager', 'feature-gates')}")


_plane(65, "1.3.6", "Ensure that the RotateKubeletServerCertificate argument is set to true", "MEDIUM",
       _rotate_server_certificate,
       "With the gate off, kubelet serving certificates are not renewed through the cluster CA: nodes keep "
       "long-lived or self-signed serving certificates.",
       f"{_EDIT_CM} no `RotateKubeletServerCertificate=false` in --feature-gates (it is on by default), or "
       "`- --feature-gates=RotateKubeletServerCertificate=true`.",
       f"{_PS_CM}: --feature-gates does not set RotateKubeletServerCertificate=false.", [38], [149],
       (CONTROLLER_MANAGER_DOC,))
_plane(66, "1.3.7", "Ensure that the --bind-address argument is set to 127.0.0.1", "MEDIUM",
       flag_equals("controller-manager", "bind-address", "127.0.0.1", "0.0.0.0"),
       "The controller manager's metrics and health endpoints listen on every interface unless bound to loopback, "
       "exposing them to the node's networks.", f"{_EDIT_CM} `- --bind-address=127.0.0.1`.",
       f"{_PS_CM}: --bind-address=127.0.0.1 is present.", [39], [150], (CONTROLLER_MANAGER_DOC,))
_plane(70, "1.4.1", "Ensure that the --profiling argument is set to false", "LOW",
       flag_equals("scheduler", "profiling", "false", "true"),
       "Profiling exposes /debug/pprof on the scheduler, revealing internals; it is on unless turned off.",
       f"{_EDIT_SCHED} `- --profiling=false`.", f"{_PS_SCHED}: --profiling=false is present.", [40], [151],
       (SCHEDULER_DOC,))
_plane(71, "1.4.2", "Ensure that the --bind-address argument is set to 127.0.0.1", "MEDIUM",
       flag_equals("scheduler", "bind-address", "127.0.0.1", "0.0.0.0"),
       "The scheduler's metrics and health endpoints listen on every interface unless bound to loopback.",
       f"{_EDIT_SCHED} `- --bind-address=127.0.0.1`.", f"{_PS_SCHED}: --bind-address=127.0.0.1 is present.", [41],
       [152], (SCHEDULER_DOC,))

# --------------------------------------------------------------------------------------------------
# 3 Control plane configuration

node_manual_rule(
    id="MOAT-KN-090", cis="3.1.1", title="Client certificate authentication should not be used for users",
    severity="MEDIUM", role=MASTER,
    description="Kubernetes cannot revoke a client certificate: a user's certificate stays valid until it expires, "
                "even after the person leaves. Which credentials people hold is not visible in a node's files.",
    remediation="Authenticate people through OIDC (--oidc-issuer-url, --oidc-client-id) or an authenticating "
                "proxy; keep client certificates for components and break-glass access only.",
    verification="List the client certificates issued to people (`kubectl get csr` history, the issuing CA's "
                 "records) and check that day-to-day users authenticate through OIDC or a proxy instead.",
    references=[AUTHN_DOC])
node_manual_rule(
    id="MOAT-KN-091", cis="3.1.2", title="Service account token authentication should not be used for users",
    severity="MEDIUM", role=MASTER,
    description="Service account tokens are meant for workloads; handed to people they are long-lived, shared "
                "and hard to attribute in audit logs.",
    remediation="Give people OIDC identities; create short-lived tokens for automation with `kubectl create token` "
                "rather than Secret-based tokens.",
    verification="Review who holds service account tokens (`kubectl get secrets -A --field-selector "
                 "type=kubernetes.io/service-account-token`) and confirm none is used by a person.",
    references=[AUTHN_DOC])
node_manual_rule(
    id="MOAT-KN-092", cis="3.1.3", title="Bootstrap token authentication should not be used for users",
    severity="MEDIUM", role=MASTER,
    description="Bootstrap tokens exist to join nodes; used by people they grant node-bootstrap rights with "
                "little accountability.",
    remediation="Delete bootstrap tokens not needed for joining nodes (`kubeadm token delete <id>`) and keep "
                "their TTL short.",
    verification="Run `kubeadm token list` and check every token is a short-lived node join token.",
    references=[AUTHN_DOC])


def _audit_policy(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    apiserver = component(doc, "apiserver")
    if apiserver is None:
        return
    entry = apiserver.get("audit_policy")
    if not isinstance(entry, dict):
        yield flag_hit(doc, "apiserver", "audit-policy-file", "kube-apiserver has no --audit-policy-file: "
                       "no request is audited", "--audit-policy-file absent")
        return
    path = str(entry.get("path"))
    data = entry.get("data")
    if not isinstance(data, dict) or data.get("kind") != "Policy":
        reason = entry.get("error") or "not an audit Policy"
        yield Hit(f"audit policy {path} cannot be used: {reason}", resource=path, evidence=str(reason))
        return
    rules = data.get("rules")
    if not isinstance(rules, list) or not rules:
        yield Hit(f"audit policy {path} has no rules, so nothing is logged", resource=path, evidence="rules: []")
    elif all(isinstance(item, dict) and item.get("level") == "None" for item in rules):
        yield Hit(f"audit policy {path} sets every rule to level None", resource=path, evidence="level: None")


node_rule(
    id="MOAT-KN-093", cis="3.2.1", title="Ensure that a minimal audit policy is created", severity="MEDIUM",
    role=MASTER,
    description="The API server audits nothing without a policy file, even when --audit-log-path is set; a "
                "policy whose rules are all level None is the same.",
    remediation="Write /etc/kubernetes/audit-policy.yaml, e.g. `apiVersion: audit.k8s.io/v1`, `kind: Policy`, "
                "`rules: [{level: Metadata}]`, and pass `--audit-policy-file=/etc/kubernetes/audit-policy.yaml` to "
                "the API server (mounted into its Pod).",
    verification=f"{_PS_APISERVER}: --audit-policy-file names a file; read it and check it holds at least one rule "
                 "with a level other than None.",
    references=[AUDIT_DOC], kubescape=[160])(_audit_policy)
node_manual_rule(
    id="MOAT-KN-094", cis="3.2.2", title="Ensure that the audit policy covers key security concerns",
    severity="MEDIUM", role=MASTER,
    description="Whether an audit policy captures what matters (access to Secrets, ConfigMaps and TokenReviews at "
                "Metadata level, pod exec/attach/portforward, RBAC changes) is a judgement about the cluster's "
                "threats, not a setting.",
    remediation="Extend the policy: Metadata for secrets, configmaps and tokenreviews (never RequestResponse, which "
                "would log the values), RequestResponse for rbac.authorization.k8s.io and pods/exec, "
                "pods/attach, pods/portforward.",
    verification="Read the file named by --audit-policy-file and check each concern above has a rule at the "
                 "intended level; trigger a test `kubectl get secret` and find it in the audit log.",
    references=[AUDIT_DOC], kubescape=[161])
