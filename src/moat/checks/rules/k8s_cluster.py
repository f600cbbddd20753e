"""Kubernetes cluster-object rules (``MOAT-K8S-200..399``): RBAC, service accounts, network policies,
namespaces and Pod Security Admission, services and ingresses — CIS Kubernetes 1.9 sections 5.1, 5.2
(admission), 5.3, 5.4 and 5.7.

Most of these rules relate objects to each other (a RoleBinding to its Role, a Namespace to the
NetworkPolicies in it), so they read every document of the run through :func:`_index`, which is built
once per run. RBAC findings name the *subject* that holds the permission (``User/jane``,
``ops/ServiceAccount/ci``), because that is what an auditor has to act on; the finding's line is the
subject's entry in the binding.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from moat.checks.document import Document, JsonPath, TargetKind
from moat.checks.rule import Hit, RuleContext, manual_rule, rule
from moat.checks.targets.kubernetes import POD_SPEC_PATHS, is_list_kind, namespace_of, object_name, pod_spec

K8S = (TargetKind.KUBERNETES,)
RBAC_DOCS = "https://kubernetes.io/docs/reference/access-authn-authz/rbac/"
RBAC_GOOD = "https://kubernetes.io/docs/concepts/security/rbac-good-practices/"
PSA_DOCS = "https://kubernetes.io/docs/concepts/security/pod-security-admission/"
NETPOL_DOCS = "https://kubernetes.io/docs/concepts/services-networking/network-policies/"
SA_DOCS = "https://kubernetes.io/docs/tasks/configure-pod-container/configure-service-account/"
NS_DOCS = "https://kubernetes.io/docs/concepts/overview/working-with-objects/namespaces/"
CIS = "https://www.cisecurity.org/benchmark/kubernetes"

# --------------------------------------------------------------------------------------------------
# Object access


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def kind_of(data: Any) -> str:
    return _str(_mapping(data).get("kind"))


def name_of(data: Any) -> str:
    return _str(_mapping(_mapping(data).get("metadata")).get("name"))


def namespace_field(data: Any) -> str:
    """The namespace as written ("" when the object does not say)."""
    return namespace_of(data)


def labels_of(data: Any) -> dict[str, Any]:
    return _mapping(_mapping(_mapping(data).get("metadata")).get("labels"))


def annotations_of(data: Any) -> dict[str, Any]:
    return _mapping(_mapping(_mapping(data).get("metadata")).get("annotations"))


CLUSTER_SCOPED = frozenset({
    "Namespace", "Node", "PersistentVolume", "ClusterRole", "ClusterRoleBinding", "StorageClass",
    "CustomResourceDefinition", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
    "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "MutatingAdmissionPolicy",
    "MutatingAdmissionPolicyBinding", "PriorityClass", "RuntimeClass", "IngressClass", "CSIDriver",
    "CSINode", "VolumeAttachment", "APIService", "CertificateSigningRequest", "PodSecurityPolicy",
    "ComponentStatus", "FlowSchema", "PriorityLevelConfiguration", "ClusterIssuer",
    "CiliumClusterwideNetworkPolicy", "GlobalNetworkPolicy", "List", "EncryptionConfiguration",
    "CNIInfo", "ControlPlaneInfo", "IPAddress", "ServiceCIDR", "VolumeAttributesClass",
})
"""Kinds that have no namespace; everything else is namespaced and lands in ``default`` when its
manifest names none."""


def effective_namespace(data: Any) -> str:
    """Where the API server would put the object: its namespace, ``default`` when a namespaced object
    names none, "" for a cluster-scoped kind."""
    if kind_of(data) in CLUSTER_SCOPED:
        return ""
    return namespace_field(data) or "default"


def object_label(data: Any) -> str:
    """``Kind/name``, with the namespace in front when the object names one (as findings name objects)."""
    return object_name(_mapping(data))


# --------------------------------------------------------------------------------------------------
# The run's objects, indexed once


@dataclass(slots=True)
class _Index:
    objects: list[tuple[Document, JsonPath, dict[str, Any]]] = field(default_factory=list)
    """Every Kubernetes object with the document it came from and its path there (items of a
    ``List`` have the path ``("items", n)``)."""
    by_kind: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    roles: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    """(kind, namespace, name) → Role or ClusterRole (namespace "" for a ClusterRole)."""
    accounts: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    """(namespace, name) → ServiceAccount."""
    facts: dict[str, Any] = field(default_factory=dict)
    """Answers about the whole run, computed on first use (namespaces with a NetworkPolicy …)."""

    def fact(self, name: str, compute: Callable[[_Index], Any]) -> Any:
        if name not in self.facts:
            self.facts[name] = compute(self)
        return self.facts[name]


_CACHE: list[tuple[Sequence[Document], _Index]] = []
"""The last run's index. The engine hands every rule of a run the same ``documents`` sequence, so
relating objects costs one pass per run instead of one per object and rule."""


def _index(documents: Sequence[Document]) -> _Index:
    """The run's objects, built once per run: the engine passes the same sequence to every rule."""
    cached = _CACHE[0] if _CACHE else None
    if cached is not None and cached[0] is documents:
        return cached[1]
    index = _Index()
    for doc in documents:
        if doc.kind != TargetKind.KUBERNETES:
            continue
        for path, obj in _objects_in(doc.data):
            index.objects.append((doc, path, obj))
            kind = kind_of(obj)
            index.by_kind.setdefault(kind, []).append(obj)
            if kind in ("Role", "ClusterRole"):
                namespace = effective_namespace(obj) if kind == "Role" else ""
                index.roles[(kind, namespace, name_of(obj))] = obj
            elif kind == "ServiceAccount":
                index.accounts[(effective_namespace(obj), name_of(obj))] = obj
    _CACHE[:] = [(documents, index)]
    return index


def _objects_in(data: Any) -> Iterator[tuple[JsonPath, dict[str, Any]]]:
    if not isinstance(data, dict):
        return
    if is_list_kind(data):  # kubernetes_documents expands lists already; documents built by hand may not
        for position, item in enumerate(_list(data.get("items"))):
            if isinstance(item, dict) and kind_of(item):
                yield ("items", position), item
        return
    yield (), data


def _own_objects(doc: Document) -> Iterator[tuple[JsonPath, dict[str, Any]]]:
    """The objects of one document (one, or the items of a ``List``)."""
    yield from _objects_in(doc.data)


# --------------------------------------------------------------------------------------------------
# RBAC


CORE_AND_ANY = ("", "*")


@dataclass(frozen=True, slots=True)
class Permission:
    """What a rule must grant: any of ``verbs`` on any of ``resources`` in any of ``api_groups``."""

    api_groups: tuple[str, ...]
    resources: tuple[str, ...]
    verbs: tuple[str, ...]


def _policy_rule_grants(policy: Mapping[str, Any], wanted: Permission) -> bool:
    groups = [g for g in _list(policy.get("apiGroups")) if isinstance(g, str)]
    resources = [r for r in _list(policy.get("resources")) if isinstance(r, str)]
    verbs = [v for v in _list(policy.get("verbs")) if isinstance(v, str)]
    if not any(group == "*" or group in wanted.api_groups for group in groups):
        return False
    if not any(_resource_matches(resource, wanted.resources) for resource in resources):
        return False
    return any(verb == "*" or verb in wanted.verbs for verb in verbs)


def _resource_matches(granted: str, wanted: Sequence[str]) -> bool:
    if granted == "*":
        return True
    for name in wanted:
        if granted == name:
            return True
        base, _, sub = name.partition("/")
        if sub and granted in (f"*/{sub}", f"{base}/*"):
            return True
    return False


def role_grants(role: Mapping[str, Any], wanted: Permission) -> list[int]:
    """Indexes of the role's rules that grant ``wanted``."""
    return [position for position, policy in enumerate(_list(role.get("rules")))
            if isinstance(policy, dict) and _policy_rule_grants(policy, wanted)]


def _bound_role(index: _Index, binding: Mapping[str, Any]) -> dict[str, Any] | None:
    ref = _mapping(binding.get("roleRef"))
    kind, name = _str(ref.get("kind")), _str(ref.get("name"))
    if kind == "ClusterRole":
        return index.roles.get(("ClusterRole", "", name))
    if kind == "Role" and kind_of(binding) == "RoleBinding":
        return index.roles.get(("Role", effective_namespace(binding), name))
    return None  # a ClusterRoleBinding cannot grant a Role


def subject_label(subject: Mapping[str, Any], binding: Mapping[str, Any]) -> str:
    kind, name = _str(subject.get("kind")), _str(subject.get("name"))
    if kind == "ServiceAccount":
        namespace = _str(subject.get("namespace")) or namespace_field(binding)
        return f"{namespace}/{kind}/{name}" if namespace else f"{kind}/{name}"
    return f"{kind}/{name}"


def _subjects(binding: Mapping[str, Any]) -> Iterator[tuple[int, dict[str, Any]]]:
    for position, subject in enumerate(_list(binding.get("subjects"))):
        if isinstance(subject, dict) and _str(subject.get("name")):
            yield position, subject


def _binding_hits(doc: Document, ctx: RuleContext, wanted: Permission, what: str) -> Iterator[Hit]:
    """One hit per subject of each binding in ``doc`` whose role grants ``wanted``."""
    index = _index(ctx.documents)
    for base, binding in _own_objects(doc):
        if kind_of(binding) not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        role = _bound_role(index, binding)
        if role is None or not role_grants(role, wanted):
            continue
        yield from _subject_hits(binding, base, role, what)


def _subject_hits(binding: Mapping[str, Any], base: JsonPath, role: Mapping[str, Any], what: str) -> Iterator[Hit]:
    cluster_wide = kind_of(binding) == "ClusterRoleBinding"
    scope = "cluster-wide" if cluster_wide else f"in namespace {effective_namespace(binding)}"
    for position, subject in _subjects(binding):
        who = subject_label(subject, binding)
        yield Hit(
            f"{who} {what} {scope} through {kind_of(binding)} {name_of(binding)!r} → {kind_of(role)} {name_of(role)!r}",
            path=(*base, "subjects", position),
            resource=who,
            evidence=f"{kind_of(binding)}/{name_of(binding)} roleRef {kind_of(role)}/{name_of(role)}",
        )


def _permission_rule(
    *, id: str, title: str, severity: str, wanted: Permission, what: str, description: str, remediation: str,
    control: str, aliases: Sequence[str], extra_controls: Sequence[str] = (), references: Sequence[str] = (),
) -> None:
    """Register a rule that flags every subject bound to a role granting ``wanted``."""

    def check(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
        return _binding_hits(doc, ctx, wanted, what)

    rule(
        id=id, title=title, severity=severity, targets=K8S, description=description, remediation=remediation,
        verification=(
            "List who holds the permission: `kubectl get rolebindings,clusterrolebindings -A -o wide`, then for "
            "each role `kubectl describe clusterrole NAME` / `kubectl describe role -n NS NAME`; or ask the API "
            "server directly: `kubectl auth can-i --list --as=SUBJECT` (add `--as-group` for groups). "
            f"Only subjects that need it should {what}."
        ),
        references=(RBAC_DOCS, RBAC_GOOD, *references),
        controls=(f"cis-kubernetes-1.9:{control}", *extra_controls),
        aliases=tuple(aliases),
    )(check)


# 5.1.1 ---------------------------------------------------------------------------------------------

@rule(
    id="MOAT-K8S-200",
    title="cluster-admin role bound cluster-wide",
    severity="HIGH",
    targets=K8S,
    description=(
        "A ClusterRoleBinding to the cluster-admin ClusterRole gives its subjects every permission on every "
        "object of the cluster. A stolen credential of any of them is the whole cluster."
    ),
    remediation=(
        "Bind narrower roles, or bind cluster-admin only in a namespace with a RoleBinding, e.g.\n"
        "kind: RoleBinding\nmetadata: {name: team-admin, namespace: team-a}\n"
        "roleRef: {kind: ClusterRole, name: admin, apiGroup: rbac.authorization.k8s.io}\n"
        "subjects: [{kind: Group, name: team-a, apiGroup: rbac.authorization.k8s.io}]"
    ),
    verification=(
        "`kubectl get clusterrolebindings -o=custom-columns=NAME:.metadata.name,ROLE:.roleRef.name,"
        "SUBJECT:.subjects[*].name | grep cluster-admin`: only the built-in `cluster-admin` binding "
        "(group system:masters) and subjects that truly need it should appear."
    ),
    references=(RBAC_DOCS, RBAC_GOOD),
    controls=("cis-kubernetes-1.9:5.1.1", "nsa-cisa-k8s:authentication-and-authorization"),
    aliases=("cluster-admin-role", "C-0185", "KSV-0111", "KSV111"),
)
def cluster_admin_binding(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    for base, binding in _own_objects(doc):
        if kind_of(binding) != "ClusterRoleBinding":
            continue
        ref = _mapping(binding.get("roleRef"))
        if _str(ref.get("kind")) != "ClusterRole" or _str(ref.get("name")) != "cluster-admin":
            continue
        for position, subject in _subjects(binding):
            if _str(subject.get("kind")) == "Group" and _str(subject.get("name")) == "system:masters":
                continue  # the built-in binding; system:masters is MOAT-K8S-207's business
            who = subject_label(subject, binding)
            yield Hit(f"{who} is cluster-admin through ClusterRoleBinding {name_of(binding)!r}",
                      path=(*base, "subjects", position), resource=who,
                      evidence=f"ClusterRoleBinding/{name_of(binding)} roleRef ClusterRole/cluster-admin")


# 5.1.2 .. 5.1.13: permissions held by subjects ------------------------------------------------------

_permission_rule(
    id="MOAT-K8S-201", title="Subject can read secrets", severity="HIGH",
    wanted=Permission(CORE_AND_ANY, ("secrets",), ("get", "list", "watch")),
    what="can get/list/watch secrets",
    description=(
        "Reading Secrets hands over every credential stored in them, including service account tokens of "
        "more privileged workloads: a common first step of privilege escalation."
    ),
    remediation=(
        "Remove get, list and watch on secrets from roles that do not need them; grant a workload access to "
        "one named secret only: `resources: [secrets]`, `resourceNames: [app-config]`, `verbs: [get]`."
    ),
    control="5.1.2",
    extra_controls=("nsa-cisa-k8s:authentication-and-authorization",),
    aliases=("rule-can-list-get-secrets-v1", "rule-can-list-get-secrets", "C-0015", "C-0186",
             "KSV-0041", "KSV041", "KSV-0113", "KSV113"),
)


def _full_wildcard(policy: Mapping[str, Any]) -> bool:
    """Every verb on every resource of every API group, or of the core group (pods, secrets, service
    accounts: administrator of the scope all the same)."""
    groups = _list(policy.get("apiGroups"))
    return ("*" in groups or "" in groups) and all("*" in _list(policy.get(key)) for key in ("resources", "verbs"))


@rule(
    id="MOAT-K8S-203",
    title="Subject has every permission (wildcard role)",
    severity="HIGH",
    targets=K8S,
    description=(
        "A role whose rule grants `*` verbs on `*` resources in all API groups (or the core group, which "
        "holds pods, secrets and service accounts) makes each subject bound to it an administrator of its "
        "scope (the namespace, or the cluster for a ClusterRoleBinding)."
    ),
    remediation=(
        "List the verbs and resources the subject needs instead of `*`, e.g. `apiGroups: [apps]`, "
        "`resources: [deployments]`, `verbs: [get, list, watch, update]`."
    ),
    verification=(
        "`kubectl get clusterroles,roles -A -o json | jq -r '.items[] | select(any(.rules[]?; "
        "(.verbs|index(\"*\")) and (.resources|index(\"*\")))) | .metadata.name'` lists the wildcard roles; "
        "`kubectl get rolebindings,clusterrolebindings -A -o wide` shows who is bound to them."
    ),
    references=(RBAC_DOCS, RBAC_GOOD),
    controls=("cis-kubernetes-1.9:5.1.3", "cis-kubernetes-1.9:5.1.1", "nsa-cisa-k8s:authentication-and-authorization"),
    aliases=("rule-list-all-cluster-admins-v1", "rule-list-all-cluster-admins", "C-0035", "C-0187"),
)
def wildcard_admins(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    index = _index(ctx.documents)
    for base, binding in _own_objects(doc):
        if kind_of(binding) not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        role = _bound_role(index, binding)
        if role is None or not any(isinstance(p, dict) and _full_wildcard(p) for p in _list(role.get("rules"))):
            continue
        yield from _subject_hits(binding, base, role, "has every permission (*/*/*)")


@rule(
    id="MOAT-K8S-202",
    title="Role or ClusterRole uses wildcards",
    severity="MEDIUM",
    targets=K8S,
    description=(
        "A `*` in a role's verbs or resources grants everything that exists now and everything added later "
        "(new resource types, subresources such as pods/exec, custom resources), so the role's real power "
        "cannot be reviewed."
    ),
    remediation=(
        "Replace `*` with the exact verbs and resources, e.g. `resources: [pods, pods/log]`, "
        "`verbs: [get, list, watch]`."
    ),
    verification=(
        "`kubectl get roles,clusterroles -A -o yaml | grep -n -B6 \"'\\*'\"` and review each hit; system "
        "roles (names starting with `system:`) and cluster-admin are expected to use wildcards."
    ),
    references=(RBAC_GOOD,),
    controls=("cis-kubernetes-1.9:5.1.3",),
    aliases=("KSV-0044", "KSV044", "KSV-0045", "KSV045", "KSV-0046", "KSV046"),
)
def wildcard_roles(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    for base, role in _own_objects(doc):
        if kind_of(role) not in ("Role", "ClusterRole"):
            continue
        name = name_of(role)
        if name == "cluster-admin" or name.startswith("system:"):
            continue  # built-in roles a cluster ships with; binding them is what other rules flag
        for position, policy in enumerate(_list(role.get("rules"))):
            if not isinstance(policy, dict):
                continue
            for key in ("verbs", "resources"):
                values = _list(policy.get(key))
                if "*" in values:
                    yield Hit(f"{kind_of(role)} {name!r} grants {key} '*' (rule {position})",
                              path=(*base, "rules", position, key, values.index("*")),
                              resource=object_label(role))


_permission_rule(
    id="MOAT-K8S-204", title="Subject can create pods", severity="MEDIUM",
    wanted=Permission(CORE_AND_ANY, ("pods",), ("create",)),
    what="can create pods",
    description=(
        "Whoever can create a pod in a namespace can run it with any service account of that namespace and "
        "mount any secret there, and, without Pod Security Admission, a privileged pod that owns the node."
    ),
    remediation=(
        "Leave pod creation to controllers (Deployments, Jobs); remove `create` on `pods` from human and CI "
        "roles, or confine them to a namespace that enforces the restricted Pod Security Standard."
    ),
    control="5.1.4",
    aliases=("rule-can-create-pod", "C-0188"),
)

_permission_rule(
    id="MOAT-K8S-209", title="Subject can bind or escalate roles", severity="HIGH",
    wanted=Permission(("rbac.authorization.k8s.io", "*"), ("roles", "clusterroles", "rolebindings",
                                                           "clusterrolebindings"), ("bind", "escalate")),
    what="can bind or escalate roles",
    description=(
        "The bind and escalate verbs let a subject grant permissions it does not hold itself, bypassing "
        "the API server's privilege-escalation prevention: it can make itself cluster-admin."
    ),
    remediation="Remove `bind` and `escalate` (and `*` verbs) on roles and clusterroles from the role.",
    control="5.1.8",
    aliases=("rule-can-bind-escalate", "C-0191"),
)

_permission_rule(
    id="MOAT-K8S-210", title="Subject can impersonate users, groups or service accounts", severity="HIGH",
    wanted=Permission(("", "*", "authentication.k8s.io"), ("users", "groups", "serviceaccounts", "uids",
                                                          "userextras/*"), ("impersonate",)),
    what="can impersonate users, groups or service accounts",
    description=(
        "Impersonation lets a subject act as any user or group it names, including system:masters, and so "
        "hold every permission they hold."
    ),
    remediation="Remove the `impersonate` verb (and `*` verbs) on users, groups and serviceaccounts.",
    control="5.1.8",
    aliases=("rule-can-impersonate-users-groups-v1", "rule-can-impersonate-users-groups", "C-0065", "C-0191"),
)

_permission_rule(
    id="MOAT-K8S-211", title="Subject can create persistent volumes", severity="MEDIUM",
    wanted=Permission(CORE_AND_ANY, ("persistentvolumes",), ("create",)),
    what="can create persistent volumes",
    description=(
        "Creating a PersistentVolume can point a hostPath volume at any directory of a node, then mount it "
        "into a pod: node-level access without a privileged pod."
    ),
    remediation="Let a StorageClass provision volumes; remove `create` on `persistentvolumes` from the role.",
    control="5.1.9",
    aliases=("rule-can-create-pv", "C-0278"),
)

_permission_rule(
    id="MOAT-K8S-212", title="Subject can access the nodes/proxy subresource", severity="HIGH",
    wanted=Permission(CORE_AND_ANY, ("nodes/proxy",), ("get", "create", "update", "patch", "connect")),
    what="can use the nodes/proxy subresource",
    description=(
        "nodes/proxy reaches the kubelet API through the API server: it can run commands in any container "
        "on the node, and such calls skip admission control and audit logging of pod exec."
    ),
    remediation="Remove `nodes/proxy` (and `*`) from the role's resources; monitoring needs nodes/metrics only.",
    control="5.1.10",
    aliases=("rule-can-access-proxy-subresource", "C-0279", "KSV-0047", "KSV047"),
)

_permission_rule(
    id="MOAT-K8S-213", title="Subject can approve certificate signing requests", severity="HIGH",
    wanted=Permission(("certificates.k8s.io", "*"), ("certificatesigningrequests/approval",),
                      ("update", "patch")),
    what="can approve certificate signing requests",
    description=(
        "Approving CSRs lets a subject have the cluster CA sign a client certificate for any identity, "
        "including system:masters members: permanent cluster-admin credentials."
    ),
    remediation="Remove update/patch on certificatesigningrequests/approval from the role.",
    control="5.1.11",
    aliases=("rule-can-approve-cert-signing-request", "C-0280"),
)

_permission_rule(
    id="MOAT-K8S-214", title="Subject can modify admission webhooks", severity="HIGH",
    wanted=Permission(("admissionregistration.k8s.io", "*"),
                      ("validatingwebhookconfigurations", "mutatingwebhookconfigurations"),
                      ("create", "update", "patch", "delete", "deletecollection")),
    what="can modify admission webhooks",
    description=(
        "A subject that edits admission webhook configurations can switch off policy enforcement or send "
        "every object (secrets included) to a server it controls and rewrite it."
    ),
    remediation="Remove write verbs on validating/mutatingwebhookconfigurations from the role.",
    control="5.1.12",
    aliases=("rule-can-modify-admission-webhooks", "C-0281", "KSV-0114", "KSV114"),
)

_permission_rule(
    id="MOAT-K8S-215", title="Subject can create service account tokens", severity="HIGH",
    wanted=Permission(CORE_AND_ANY, ("serviceaccounts/token",), ("create",)),
    what="can create service account tokens",
    description=(
        "Creating tokens for a service account lets a subject act as that service account for as long as "
        "the token lives, whatever the account may do."
    ),
    remediation="Remove `create` on `serviceaccounts/token` from the role.",
    control="5.1.13",
    aliases=("rule-can-create-service-account-token", "C-0282"),
)


# 5.1.5 / 5.1.6: service accounts ----------------------------------------------------------------------

@rule(
    id="MOAT-K8S-205",
    title="Default service account mounts its token",
    severity="MEDIUM",
    targets=K8S,
    description=(
        "Every pod that names no service account runs as its namespace's `default` account. When that "
        "account does not set automountServiceAccountToken: false, each such pod gets an API token it "
        "rarely needs, and any permission granted to `default` reaches every pod of the namespace."
    ),
    remediation=(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: default, namespace: NS}\n"
        "automountServiceAccountToken: false"
    ),
    verification=(
        "`kubectl get serviceaccounts -A -o json | jq -r '.items[] | select(.metadata.name==\"default\" and "
        ".automountServiceAccountToken!=false) | .metadata.namespace'` prints the namespaces to fix."
    ),
    references=(SA_DOCS,),
    controls=("cis-kubernetes-1.9:5.1.5", "nsa-cisa-k8s:service-account-tokens"),
    aliases=("automount-default-service-account", "C-0189", "C-0225"),
)
def default_sa_automount(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    for base, account in _own_objects(doc):
        if kind_of(account) != "ServiceAccount" or name_of(account) != "default":
            continue
        value = account.get("automountServiceAccountToken")
        if value is False:
            continue
        where: JsonPath = (*base, "automountServiceAccountToken") if value is not None else base
        said = "sets automountServiceAccountToken: true" if value is True else "does not disable token automount"
        yield Hit(f"default service account of namespace {effective_namespace(account)} {said}",
                  path=where, resource=object_label(account))


@rule(
    id="MOAT-K8S-206",
    title="Namespace has no service account of its own",
    severity="LOW",
    targets=K8S,
    description=(
        "A namespace whose only service account is `default` runs all its workloads under that shared "
        "identity, so any permission one workload needs is held by all of them."
    ),
    remediation=(
        "Create a service account per workload and name it in the pod spec: "
        "`serviceAccountName: web` with `kind: ServiceAccount`, `metadata: {name: web, namespace: NS}`."
    ),
    verification="`kubectl get serviceaccounts -n NS`: expect accounts besides `default` for the workloads.",
    references=(SA_DOCS,),
    controls=("cis-kubernetes-1.9:5.1.5",),
    aliases=("namespace-without-service-account", "C-0189"),
)
def namespace_without_sa(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    own = _index(ctx.documents).fact("namespaces-with-own-account", lambda index: {
        namespace for namespace, name in index.accounts if name != "default"})
    for base, namespace in _own_objects(doc):
        if kind_of(namespace) == "Namespace" and name_of(namespace) not in own:
            yield Hit(f"namespace {name_of(namespace)!r} has no service account besides 'default'",
                      path=base, resource=object_label(namespace))


@rule(
    id="MOAT-K8S-207",
    title="Pod mounts a service account token",
    severity="MEDIUM",
    targets=K8S,
    description=(
        "A service account token mounted in a pod is an API credential for whoever compromises the pod. "
        "Most applications never call the Kubernetes API and should not carry one."
    ),
    remediation="In the pod spec: `automountServiceAccountToken: false` (or on the ServiceAccount it uses).",
    verification=(
        "`kubectl get pods -A -o json | jq -r '.items[] | select(.spec.automountServiceAccountToken!=false) | "
        ".metadata.namespace+\"/\"+.metadata.name'`, then for each check its service account's "
        "automountServiceAccountToken; only pods that call the API should mount a token."
    ),
    references=(SA_DOCS,),
    controls=("cis-kubernetes-1.9:5.1.6", "nsa-cisa-k8s:service-account-tokens"),
    aliases=("automount-service-account", "C-0034", "C-0190"),
)
def pod_token_automount(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    for base, obj in _own_objects(doc):
        found = pod_spec(obj)
        if found is None:
            continue
        path, spec = found
        value = spec.get("automountServiceAccountToken")
        if value is False:
            continue
        account = _str(spec.get("serviceAccountName")) or _str(spec.get("serviceAccount")) or "default"
        label = object_label(obj)
        if value is True:
            yield Hit(f"{label} sets automountServiceAccountToken: true",
                      path=(*base, *path, "automountServiceAccountToken"), resource=label)
            continue
        sa = _index(ctx.documents).accounts.get((effective_namespace(obj), account))
        if sa is not None and sa.get("automountServiceAccountToken") is not False:
            yield Hit(f"{label} mounts the token of service account {account!r}, which does not disable automount",
                      path=(*base, *path), resource=label)


manual_rule(
    id="MOAT-K8S-208",
    title="Avoid use of the system:masters group",
    severity="HIGH",
    targets=K8S,
    description=(
        "Members of system:masters bypass RBAC entirely and cannot be revoked by removing a binding: only "
        "by rotating the cluster CA. Membership comes from client certificates, which no manifest shows."
    ),
    remediation=(
        "Issue administrators certificates (or OIDC identities) in ordinary groups bound to cluster-admin "
        "with a ClusterRoleBinding, and keep system:masters for break-glass credentials only."
    ),
    verification=(
        "On a control plane node: `for f in /etc/kubernetes/*.conf; do kubectl config view --raw --kubeconfig "
        "$f -o jsonpath='{.users[*].user.client-certificate-data}' | base64 -d | openssl x509 -noout -subject; "
        "done` and look for `O = system:masters`; also review CSRs: `kubectl get csr -o wide`."
    ),
    references=(RBAC_GOOD,),
    controls=("cis-kubernetes-1.9:5.1.7",),
)


@rule(
    id="MOAT-K8S-216",
    title="Default service account is granted permissions",
    severity="MEDIUM",
    targets=K8S,
    description=(
        "A namespace's `default` service account is what every pod without its own account runs as. A "
        "RoleBinding or ClusterRoleBinding to it hands its permissions to all of those pods, including "
        "ones deployed later by someone else."
    ),
    remediation=(
        "Bind the permissions to a dedicated account and name it in the workload: "
        "`subjects: [{kind: ServiceAccount, name: web, namespace: shop}]` and `serviceAccountName: web`."
    ),
    verification=(
        "`kubectl get rolebindings,clusterrolebindings -A -o json | jq -r '.items[] | select(.subjects[]? | "
        ".kind==\"ServiceAccount\" and .name==\"default\") | .metadata.name'` prints nothing (beyond "
        "bindings the distribution itself ships)."
    ),
    references=(SA_DOCS, RBAC_GOOD),
    controls=("cis-kubernetes-1.9:5.1.5", "nsa-cisa-k8s:service-account-tokens"),
    aliases=("ensure-default-service-accounts-has-only-default-roles",),
)
def default_sa_bound(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    for base, binding in _own_objects(doc):
        if kind_of(binding) not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        ref = _mapping(binding.get("roleRef"))
        for position, subject in _subjects(binding):
            if _str(subject.get("kind")) == "ServiceAccount" and _str(subject.get("name")) == "default":
                who = subject_label(subject, binding)
                yield Hit(f"{who} is bound to {_str(ref.get('kind'))} {_str(ref.get('name'))!r} by "
                          f"{kind_of(binding)} {name_of(binding)!r}",
                          path=(*base, "subjects", position), resource=who)

# --------------------------------------------------------------------------------------------------
# 5.2: admission (Pod Security Admission on namespaces)

PSA_ENFORCE = "pod-security.kubernetes.io/enforce"
PSA_LEVELS = {"privileged": 0, "baseline": 1, "restricted": 2}


def _external_admission(index: _Index) -> bool:
    """A webhook that sees namespaced objects: a third-party policy engine may stand in for PSA."""
    for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        for config in index.by_kind.get(kind, ()):
            for hook in _list(config.get("webhooks")):
                for item in _list(_mapping(hook).get("rules")):
                    if _mapping(item).get("scope", "*") != "Cluster":
                        return True
    return False


@rule(
    id="MOAT-K8S-250",
    title="Namespace has no Pod Security Admission enforcement",
    severity="MEDIUM",
    targets=K8S,
    description=(
        "Without a `pod-security.kubernetes.io/enforce` label (and with no third-party admission webhook), "
        "nothing stops a privileged, host-namespace or hostPath pod from being created in the namespace."
    ),
    remediation=(
        "metadata:\n  labels:\n    pod-security.kubernetes.io/enforce: restricted   # or baseline\n"
        "    pod-security.kubernetes.io/enforce-version: latest"
    ),
    verification=(
        "`kubectl get namespaces -L pod-security.kubernetes.io/enforce`: every namespace has a value, or "
        "`kubectl get validatingwebhookconfigurations,mutatingwebhookconfigurations` shows a policy engine."
    ),
    references=(PSA_DOCS,),
    controls=("cis-kubernetes-1.9:5.2.1", "nsa-cisa-k8s:pod-security-enforcement"),
    aliases=("pod-security-admission-applied-1", "pod-security-admission-applied-2", "pod-security-admission-applied",
             "C-0192"),
)
def psa_missing(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    index = _index(ctx.documents)
    namespaces = [(base, obj) for base, obj in _own_objects(doc) if kind_of(obj) == "Namespace"]
    if not namespaces or index.fact("external-admission", _external_admission):
        return
    for base, namespace in namespaces:
        if not any(str(key).startswith(PSA_ENFORCE) for key in labels_of(namespace)):
            yield Hit(f"namespace {name_of(namespace)!r} has no {PSA_ENFORCE} label",
                      path=(*base, "metadata"), resource=object_label(namespace))


def _psa_level_hits(doc: Document, wanted: str) -> Iterator[Hit]:
    for base, namespace in _own_objects(doc):
        if kind_of(namespace) != "Namespace":
            continue
        level = labels_of(namespace).get(PSA_ENFORCE)
        if isinstance(level, str) and PSA_LEVELS.get(level, -1) >= PSA_LEVELS[wanted]:
            continue
        has_label = isinstance(level, str)
        path: JsonPath = (*base, "metadata", "labels", PSA_ENFORCE) if has_label else (*base, "metadata")
        said = f"enforces {level!r}" if has_label else "enforces no level"
        yield Hit(f"namespace {name_of(namespace)!r} {said}, not {wanted!r}", path=path,
                  resource=object_label(namespace))


@rule(
    id="MOAT-K8S-251",
    title="Namespace does not enforce the baseline Pod Security Standard",
    severity="MEDIUM",
    targets=K8S,
    description=(
        "The baseline level refuses privileged containers, host namespaces, hostPath volumes, host ports, "
        "added dangerous capabilities and Windows HostProcess pods. A namespace that does not enforce it (or "
        "restricted) admits pods that can take over their node."
    ),
    remediation="metadata:\n  labels:\n    pod-security.kubernetes.io/enforce: baseline",
    verification="`kubectl get ns -L pod-security.kubernetes.io/enforce`: baseline or restricted on every namespace.",
    references=(PSA_DOCS, "https://kubernetes.io/docs/concepts/security/pod-security-standards/"),
    controls=("cis-kubernetes-1.9:5.2.2", "cis-kubernetes-1.9:5.2.3", "cis-kubernetes-1.9:5.2.4",
              "cis-kubernetes-1.9:5.2.5", "cis-kubernetes-1.9:5.2.8", "cis-kubernetes-1.9:5.2.11",
              "cis-kubernetes-1.9:5.2.12", "cis-kubernetes-1.9:5.2.13", "nsa-cisa-k8s:pod-security-enforcement"),
    aliases=("pod-security-admission-baseline-applied-1", "pod-security-admission-baseline-applied-2",
             "pod-security-admission-baseline-applied", "C-0193", "C-0194", "C-0195", "C-0196", "C-0199",
             "C-0202", "C-0203", "C-0204"),
)
def psa_baseline(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    return _psa_level_hits(doc, "baseline")


@rule(
    id="MOAT-K8S-252",
    title="Namespace does not enforce the restricted Pod Security Standard",
    severity="LOW",
    targets=K8S,
    description=(
        "The restricted level additionally requires non-root users, no privilege escalation, all "
        "capabilities dropped and a RuntimeDefault (or Localhost) seccomp profile: the hardening CIS 5.2.6, "
        "5.2.7, 5.2.9, 5.2.10 and 5.7.2 ask for, enforced for every pod of the namespace."
    ),
    remediation="metadata:\n  labels:\n    pod-security.kubernetes.io/enforce: restricted",
    verification="`kubectl get ns -L pod-security.kubernetes.io/enforce`: restricted on application namespaces.",
    references=(PSA_DOCS, "https://kubernetes.io/docs/concepts/security/pod-security-standards/"),
    controls=("cis-kubernetes-1.9:5.2.6", "cis-kubernetes-1.9:5.2.7", "cis-kubernetes-1.9:5.2.9",
              "cis-kubernetes-1.9:5.2.10", "cis-kubernetes-1.9:5.7.2", "nsa-cisa-k8s:pod-security-enforcement"),
    aliases=("pod-security-admission-restricted-applied-1", "pod-security-admission-restricted-applied-2",
             "pod-security-admission-restricted-applied", "C-0197", "C-0198", "C-0200", "C-0201"),
)
def psa_restricted(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    return _psa_level_hits(doc, "restricted")


manual_rule(
    id="MOAT-K8S-253",
    title="Configure image provenance at admission",
    severity="MEDIUM",
    targets=K8S,
    description=(
        "Without an admission check on images, any image from any registry can run, signed or not. "
        "ImagePolicyWebhook or a policy engine (Kyverno, Gatekeeper, Sigstore policy-controller) can "
        "require trusted registries, digests or signatures; whether one is enforcing is set on the API "
        "server and in the engine's policies, not in application manifests."
    ),
    remediation=(
        "Enable ImagePolicyWebhook (`--enable-admission-plugins=...,ImagePolicyWebhook` with "
        "`--admission-control-config-file`) or deploy a policy engine with a rule that admits only images "
        "from your registries, pinned by digest and signed."
    ),
    verification=(
        "`ps -ef | grep kube-apiserver | grep -o 'enable-admission-plugins=[^ ]*'` includes ImagePolicyWebhook, "
        "or `kubectl get clusterpolicies,constraints,clusterimagepolicies -A` shows an enforcing image rule."
    ),
    references=("https://kubernetes.io/docs/reference/access-authn-authz/admission-controllers/#imagepolicywebhook",),
    controls=("cis-kubernetes-1.9:5.5.1", "nsa-cisa-k8s:pod-security-enforcement"),
)

# --------------------------------------------------------------------------------------------------
# 5.3: network policies

NETPOL_CNIS = ("calico", "cilium", "weave", "antrea", "canal", "kube-router", "romana", "ovn-kubernetes",
               "openshift-sdn", "kube-ovn", "aws-network-policy-agent")
"""CNI plugins that enforce NetworkPolicy (Flannel does not; the AWS VPC CNI does only with its network
policy agent, which its name alone does not tell)."""


@rule(
    id="MOAT-K8S-230",
    title="CNI plugin does not enforce NetworkPolicies",
    severity="MEDIUM",
    targets=K8S,
    description=(
        "NetworkPolicy objects are enforced by the CNI plugin. With a plugin that ignores them (Flannel, "
        "plain bridge), every policy is silently without effect and all pods can reach each other."
    ),
    remediation="Run a CNI that enforces NetworkPolicy (Calico, Cilium, Antrea …), or add one in policy-only mode "
                "(Canal, or Calico on top of Flannel).",
    verification=(
        "`ls /etc/cni/net.d/` on a node and `kubectl get pods -n kube-system -o wide | grep -Ei "
        "'calico|cilium|weave|antrea|flannel'`; then check that a deny-all NetworkPolicy really blocks traffic."
    ),
    references=(NETPOL_DOCS, "https://kubernetes.io/docs/concepts/extend-kubernetes/compute-storage-net/network-plugins/"),
    controls=("cis-kubernetes-1.9:5.3.1", "nsa-cisa-k8s:network-policies"),
    aliases=("ensure-that-the-cni-in-use-supports-network-policies", "C-0205"),
)
def cni_without_netpol(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    for base, info in _own_objects(doc):
        if kind_of(info) != "CNIInfo":  # the kubescape host-scanner's record of a node's CNI
            continue
        names = [str(n) for n in _list(_mapping(info.get("data")).get("CNINames"))]
        if not any(known in name.lower() for name in names for known in NETPOL_CNIS):
            yield Hit(f"node {name_of(info)!r} runs CNI {', '.join(names) or '(none found)'}, "
                      "which does not enforce NetworkPolicies",
                      path=(*base, "data", "CNINames"), resource=object_label(info))


def _selects_everything(selector: Any) -> bool:
    selector = _mapping(selector)
    return not _mapping(selector.get("matchLabels")) and not _list(selector.get("matchExpressions"))


def _cluster_wide_policy(index: _Index) -> bool:
    """A Cilium or Calico cluster-wide policy that selects every endpoint covers every namespace."""
    for policy in index.by_kind.get("CiliumClusterwideNetworkPolicy", ()):
        specs = [policy.get("spec"), *_list(policy.get("specs"))]
        for spec in specs:
            if isinstance(spec, dict) and "endpointSelector" in spec and _selects_everything(spec["endpointSelector"]):
                return True
    for policy in index.by_kind.get("GlobalNetworkPolicy", ()):
        selector = _str(_mapping(policy.get("spec")).get("selector")).strip()
        if selector in ("", "all()"):
            return True
    return False


def _policy_namespaces(index: _Index) -> set[str]:
    return {effective_namespace(policy) for kind in ("NetworkPolicy", "CiliumNetworkPolicy")
            for policy in index.by_kind.get(kind, ())}


@rule(
    id="MOAT-K8S-231",
    title="Namespace has no NetworkPolicy",
    severity="MEDIUM",
    targets=K8S,
    description=(
        "Pods in a namespace that no NetworkPolicy selects accept traffic from every pod of the cluster and "
        "may connect anywhere: one compromised pod can reach them all."
    ),
    remediation=(
        "Start from a default deny and allow what is needed:\n"
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: default-deny, namespace: NS}\n"
        "spec: {podSelector: {}, policyTypes: [Ingress, Egress]}"
    ),
    verification="`kubectl get networkpolicy -A`: every application namespace has at least one policy.",
    references=(NETPOL_DOCS,),
    controls=("cis-kubernetes-1.9:5.3.2", "nsa-cisa-k8s:network-policies"),
    aliases=("internal-networking", "C-0049", "C-0054", "C-0206"),
)
def namespace_without_netpol(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    index = _index(ctx.documents)
    namespaces = [(base, obj) for base, obj in _own_objects(doc) if kind_of(obj) == "Namespace"]
    if not namespaces or index.fact("cluster-wide-policy", _cluster_wide_policy):
        return
    covered = index.fact("namespaces-with-policy", _policy_namespaces)
    for base, namespace in namespaces:
        if name_of(namespace) not in covered:
            yield Hit(f"namespace {name_of(namespace)!r} has no NetworkPolicy", path=base,
                      resource=object_label(namespace))


@rule(
    id="MOAT-K8S-232",
    title="NetworkPolicy has no pod selector",
    severity="LOW",
    targets=K8S,
    description=(
        "spec.podSelector is required: a NetworkPolicy without it is refused by the API server, so the "
        "isolation its author meant does not exist."
    ),
    remediation="Add `spec.podSelector` — `{}` for every pod of the namespace, or `matchLabels: {app: db}`.",
    verification=("`kubectl get networkpolicy -A -o jsonpath='{range .items[*]}{.metadata.name} "
                  "{.spec.podSelector}{\"\\n\"}{end}'`: every policy prints a selector."),
    references=(NETPOL_DOCS,),
    controls=("cis-kubernetes-1.9:5.3.2", "nsa-cisa-k8s:network-policies"),
    aliases=("KSV-0038", "KSV038"),
)
def netpol_without_selector(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    for base, policy in _own_objects(doc):
        if kind_of(policy) == "NetworkPolicy" and "podSelector" not in _mapping(policy.get("spec")):
            yield Hit(f"NetworkPolicy {name_of(policy)!r} has no spec.podSelector", path=(*base, "spec"),
                      resource=object_label(policy))


# --------------------------------------------------------------------------------------------------
# 5.4: secrets

EXTERNAL_KMS_HINT = "kms"


def _encryption_configs(doc: Document) -> Iterator[tuple[JsonPath, Any, str]]:
    """EncryptionConfiguration objects: written as files, or embedded (base64) in the kubescape
    host-scanner's ControlPlaneInfo record."""
    for base, obj in _own_objects(doc):
        if kind_of(obj) == "EncryptionConfiguration":
            yield base, obj, object_label(obj)
        elif kind_of(obj) == "ControlPlaneInfo":
            config_file = _mapping(_mapping(_mapping(obj.get("data")).get("APIServerInfo"))
                                   .get("encryptionProviderConfigFile"))
            content = _str(config_file.get("content"))
            if not content:
                continue
            try:
                text = base64.b64decode(content, validate=False).decode("utf-8")
                parsed = yaml.safe_load(text[:1_000_000])
            except (binascii.Error, UnicodeDecodeError, yaml.YAMLError):
                continue
            if isinstance(parsed, dict):
                yield (*base, "data", "APIServerInfo", "encryptionProviderConfigFile"), parsed, \
                    "EncryptionConfiguration/encryption-provider-config"


@rule(
    id="MOAT-K8S-240",
    title="Secrets are not encrypted through an external KMS",
    severity="MEDIUM",
    targets=K8S,
    description=(
        "Without a KMS provider, the key that encrypts Secrets in etcd (if any) sits in a file on the "
        "control plane next to the data it protects; a KMS keeps the key in an external key service."
    ),
    remediation=(
        "resources:\n- resources: [secrets]\n  providers:\n  - kms: {apiVersion: v2, name: my-kms, "
        "endpoint: unix:///var/run/kms.sock}\n  - identity: {}"
    ),
    verification=(
        "`ps -ef | grep kube-apiserver` shows --encryption-provider-config=FILE; in FILE the entry for "
        "`secrets` lists a `kms` provider first."
    ),
    references=("https://kubernetes.io/docs/tasks/administer-cluster/kms-provider/",
                "https://kubernetes.io/docs/tasks/administer-cluster/encrypt-data/"),
    controls=("cis-kubernetes-1.9:5.4.2", "nsa-cisa-k8s:secrets"),
    aliases=("external-secret-storage", "C-0208"),
)
def no_kms(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    for path, config, label in _encryption_configs(doc):
        entries = [e for e in _list(_mapping(config).get("resources")) if isinstance(e, dict)]
        for_secrets = [e for e in entries if {"secrets", "*.*", "*."} & set(map(str, _list(e.get("resources"))))]
        uses_kms = any(isinstance(p, dict) and EXTERNAL_KMS_HINT in p
                       for entry in for_secrets for p in _list(entry.get("providers")))
        if not uses_kms:
            yield Hit("secrets are not encrypted with a KMS provider", path=path, resource=label)


manual_rule(
    id="MOAT-K8S-241",
    title="Consider external secret storage",
    severity="LOW",
    targets=K8S,
    description=(
        "Kubernetes Secrets are only base64 in the API and readable by anyone with get on secrets. An "
        "external secret manager (Vault, a cloud secret manager via the Secrets Store CSI driver) adds "
        "auditing, rotation and finer access control."
    ),
    remediation="Mount secrets from an external store, e.g. a SecretProviderClass with the Secrets Store CSI driver.",
    verification=(
        "`kubectl get secretproviderclasses -A` and `kubectl get pods -A -o json | jq '.items[].spec.volumes[]? "
        "| select(.csi.driver==\"secrets-store.csi.k8s.io\")'`: workloads read secrets from the external store."
    ),
    references=("https://secrets-store-csi-driver.sigs.k8s.io/",),
    controls=("cis-kubernetes-1.9:5.4.2",),
)


# --------------------------------------------------------------------------------------------------
# 5.7: namespaces

DEFAULT_KUBERNETES_SERVICE = ("Service", "Endpoints")


def _is_apiserver_object(obj: Mapping[str, Any]) -> bool:
    """The `kubernetes` Service, its Endpoints and its EndpointSlice, which the API server itself keeps in
    ``default``. An EndpointSlice counts only with the API server's own manager label."""
    kind, name = kind_of(obj), name_of(obj)
    if kind in DEFAULT_KUBERNETES_SERVICE:
        return name == "kubernetes"
    if kind == "EndpointSlice" and name == "kubernetes":
        labels = labels_of(obj)
        return (labels.get("kubernetes.io/service-name") == "kubernetes"
                and labels.get("endpointslice.kubernetes.io/managed-by") == "endpointslice-controller.k8s.io")
    return False


@rule(
    id="MOAT-K8S-260",
    title="Object in the default namespace",
    severity="LOW",
    targets=K8S,
    description=(
        "The default namespace is where everything lands when nobody chose: it has no owner, and its RBAC, "
        "quotas, network and pod-security policies are rarely set. Objects there share one boundary with "
        "whatever else was deployed carelessly."
    ),
    remediation="Give the object a dedicated namespace: `metadata: {namespace: shop}` (and create that Namespace).",
    verification=(
        "`kubectl get all,configmaps,secrets,serviceaccounts,roles,rolebindings,ingresses -n default`: only "
        "the `kubernetes` Service and its endpoints should be listed."
    ),
    references=(NS_DOCS,),
    controls=("cis-kubernetes-1.9:5.7.4", "nsa-cisa-k8s:namespaces"),
    aliases=("pods-in-default-namespace", "configmap-in-default-namespace", "csistoragecapacity-in-default-namespace",
             "endpoints-in-default-namespace", "endpointslice-in-default-namespace",
             "horizontalpodautoscaler-in-default-namespace", "ingress-in-default-namespace",
             "lease-in-default-namespace", "persistentvolumeclaim-in-default-namespace",
             "poddisruptionbudget-in-default-namespace", "podtemplate-in-default-namespace",
             "replicationcontroller-in-default-namespace", "resources-secret-in-default-namespace",
             "role-in-default-namespace", "rolebinding-in-default-namespace", "service-in-default-namespace",
             "serviceaccount-in-default-namespace", "C-0212", "C-0061", "KSV-0110", "KSV110"),
)
def in_default_namespace(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    for base, obj in _own_objects(doc):
        if effective_namespace(obj) != "default" or _is_apiserver_object(obj):
            continue
        if kind_of(obj) == "ServiceAccount" and name_of(obj) == "default":
            continue  # every namespace has one; MOAT-K8S-205 looks at it
        said = "is in the default namespace" if namespace_field(obj) else "names no namespace (lands in default)"
        path: JsonPath = (*base, "metadata", "namespace") if namespace_field(obj) else (*base, "metadata")
        yield Hit(f"{kind_of(obj)} {name_of(obj)!r} {said}", path=path, resource=object_label(obj))


WORKLOAD_KINDS = frozenset(POD_SPEC_PATHS)


@rule(
    id="MOAT-K8S-261",
    title="Workload in the kube-system namespace",
    severity="MEDIUM",
    targets=K8S,
    description=(
        "kube-system holds the control plane's components and their highly privileged service accounts. A "
        "user workload there shares their secrets and RBAC, and is exempt from policies scoped to it."
    ),
    remediation="Deploy user workloads to their own namespace; keep kube-system for cluster components.",
    verification="`kubectl get pods -n kube-system -o wide`: only cluster components (DNS, CNI, kube-proxy …).",
    references=(NS_DOCS,),
    controls=("nsa-cisa-k8s:namespaces",),
    aliases=("KSV-0037", "KSV037"),
)
def in_kube_system(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    for base, obj in _own_objects(doc):
        if kind_of(obj) in WORKLOAD_KINDS and namespace_field(obj) == "kube-system":
            yield Hit(f"{kind_of(obj)} {name_of(obj)!r} runs in kube-system",
                      path=(*base, "metadata", "namespace"), resource=object_label(obj))


manual_rule(
    id="MOAT-K8S-262",
    title="Create administrative boundaries between resources using namespaces",
    severity="LOW",
    targets=K8S,
    description=(
        "Namespaces are the unit of RBAC, quotas, network and pod-security policy. Whether the namespaces "
        "that exist match the teams and trust levels of the cluster is a judgement no manifest settles."
    ),
    remediation="Create a namespace per application or team and trust level; move shared objects out of default.",
    verification="`kubectl get namespaces --show-labels` and confirm each namespace has an owner and purpose.",
    references=(NS_DOCS,),
    controls=("cis-kubernetes-1.9:5.7.1",),
    aliases=("list-all-namespaces", "C-0209"),
)


# --------------------------------------------------------------------------------------------------
# Services and ingresses

@rule(
    id="MOAT-K8S-270",
    title="Service exposed outside the cluster (NodePort or LoadBalancer)",
    severity="LOW",
    targets=K8S,
    description=(
        "A NodePort Service opens a port on every node; a LoadBalancer Service usually gets a public "
        "address. Either bypasses the ingress layer (TLS, authentication, WAF) unless that was the intent."
    ),
    remediation=(
        "Use `type: ClusterIP` behind an Ingress, or restrict a LoadBalancer with "
        "`loadBalancerSourceRanges: [203.0.113.0/24]` or an internal-load-balancer annotation."
    ),
    verification="`kubectl get svc -A | grep -E 'NodePort|LoadBalancer'`: each is meant to be reached from outside.",
    references=("https://kubernetes.io/docs/concepts/services-networking/service/#publishing-services-service-types",),
    controls=("nsa-cisa-k8s:network-separation",),
)
def exposed_service(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    for base, svc in _own_objects(doc):
        if kind_of(svc) != "Service":
            continue
        spec = _mapping(svc.get("spec"))
        service_type = _str(spec.get("type"))
        if service_type not in ("NodePort", "LoadBalancer"):
            continue
        if service_type == "LoadBalancer" and _list(spec.get("loadBalancerSourceRanges")):
            continue
        yield Hit(f"Service {name_of(svc)!r} is of type {service_type}", path=(*base, "spec", "type"),
                  resource=object_label(svc))


@rule(
    id="MOAT-K8S-271",
    title="Ingress serves plain HTTP (no TLS)",
    severity="MEDIUM",
    targets=K8S,
    description="An Ingress without a `tls` section serves its hosts over unencrypted HTTP: credentials and "
                "session cookies cross the network in clear text.",
    remediation=(
        "spec:\n  tls:\n  - hosts: [shop.example.com]\n    secretName: shop-tls"
    ),
    verification="`kubectl get ingress -A -o jsonpath='{range .items[*]}{.metadata.name} {.spec.tls}{\"\\n\"}{end}'`",
    references=("https://kubernetes.io/docs/concepts/services-networking/ingress/#tls",),
    controls=("nsa-cisa-k8s:network-separation",),
)
def ingress_without_tls(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    for base, ingress in _own_objects(doc):
        if kind_of(ingress) == "Ingress" and not _list(_mapping(ingress.get("spec")).get("tls")):
            yield Hit(f"Ingress {name_of(ingress)!r} has no spec.tls", path=(*base, "spec"),
                      resource=object_label(ingress))


NGINX_PREFIX = "nginx.ingress.kubernetes.io/"
NGINX_URL_ANNOTATIONS = ("auth-url", "mirror-target", "mirror-host")
NGINX_CN_ANNOTATIONS = ("auth-tls-match-cn",)
_UNSAFE_URL_CHARS = re.compile(r"[\s<>\"{}|^`\\]")
_UNSAFE_CN_CHARS = re.compile(r"[\r\n#{};|]")


def _is_nginx_ingress(ingress: Mapping[str, Any]) -> bool:
    spec = _mapping(ingress.get("spec"))
    klass = _str(spec.get("ingressClassName")) or _str(annotations_of(ingress).get("kubernetes.io/ingress.class"))
    return klass.lower() == "nginx"


@rule(
    id="MOAT-K8S-272",
    title="ingress-nginx annotation can inject controller configuration",
    severity="CRITICAL",
    targets=K8S,
    description=(
        "ingress-nginx copies the auth-url, auth-tls-match-cn, mirror-target and mirror-host annotations "
        "into its nginx configuration. Characters such as newlines, `;`, `#`, `{`, `}` or `|` end the "
        "directive and let whoever can write an Ingress inject configuration that runs in the controller, "
        "which can read every secret of the cluster (CVE-2025-1097, CVE-2025-1098, CVE-2025-24514)."
    ),
    remediation=(
        "Use a plain URL or CN, e.g. `nginx.ingress.kubernetes.io/auth-url: https://auth.example.com/verify`, "
        "and upgrade ingress-nginx to 1.11.5 / 1.12.1 or later, which validate these annotations."
    ),
    verification=(
        "`kubectl get ingress -A -o json | jq -r '.items[] | .metadata.annotations // {} | to_entries[] | "
        "select(.key|test(\"auth-url|auth-tls-match-cn|mirror-(target|host)\")) | .value'`: no value contains "
        "whitespace or any of ; # { } | < > \" ^ ` \\"
    ),
    references=("https://github.com/kubernetes/kubernetes/issues/131006",
                "https://github.com/kubernetes/kubernetes/issues/131007",
                "https://github.com/kubernetes/kubernetes/issues/131008"),
    controls=("nsa-cisa-k8s:network-separation",),
    aliases=("KCV-0093", "KCV0093", "AVD-KCV-0093", "insecure-ingress-nginx", "kubernetes-insecure-ingress-nginx"),
)
def nginx_annotation_injection(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    for base, ingress in _own_objects(doc):
        if kind_of(ingress).lower() != "ingress" or not _is_nginx_ingress(ingress):
            continue
        annotations = annotations_of(ingress)
        for short in (*NGINX_URL_ANNOTATIONS, *NGINX_CN_ANNOTATIONS):
            key = NGINX_PREFIX + short
            value = annotations.get(key)
            if not isinstance(value, str):
                continue
            bad = (_UNSAFE_CN_CHARS if short in NGINX_CN_ANNOTATIONS else _UNSAFE_URL_CHARS).search(value.strip())
            if bad:
                yield Hit(f"Ingress {name_of(ingress)!r}: annotation {key} contains {bad.group()!r}",
                          path=(*base, "metadata", "annotations", key), resource=object_label(ingress),
                          evidence=value[:200])


NGINX_SNIPPETS = ("configuration-snippet", "server-snippet", "auth-snippet", "stream-snippet",
                  "modsecurity-snippet")


@rule(
    id="MOAT-K8S-273",
    title="ingress-nginx snippet annotation",
    severity="HIGH",
    targets=K8S,
    description=(
        "Snippet annotations paste raw nginx configuration into the controller. Anyone who can create an "
        "Ingress can then read files and secrets of the controller (CVE-2021-25742, CVE-2025-1974)."
    ),
    remediation="Remove the snippet annotation and keep `allow-snippet-annotations: \"false\"` in the controller's "
                "ConfigMap; express the need with a dedicated annotation instead.",
    verification=(
        "`kubectl get ingress -A -o json | jq -r '.items[] | select(.metadata.annotations // {} | keys[] | "
        "test(\"snippet\")) | .metadata.namespace+\"/\"+.metadata.name'` prints nothing."
    ),
    references=("https://github.com/kubernetes/ingress-nginx/issues/7837",
                "https://kubernetes.github.io/ingress-nginx/user-guide/nginx-configuration/configmap/"),
    controls=("nsa-cisa-k8s:network-separation",),
    aliases=("CVE-2021-25742", "C-0059"),
)
def nginx_snippet(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    for base, ingress in _own_objects(doc):
        if kind_of(ingress) != "Ingress":
            continue
        for key in annotations_of(ingress):
            if key.startswith(NGINX_PREFIX) and key[len(NGINX_PREFIX):] in NGINX_SNIPPETS:
                yield Hit(f"Ingress {name_of(ingress)!r} uses {key}", path=(*base, "metadata", "annotations", key),
                          resource=object_label(ingress))


def rule_ids() -> Iterable[str]:
    """The ids this module registers (for tests and docs)."""
    return (f"MOAT-K8S-{n}" for n in (200, 201, 202, 203, 204, 205, 206, 207, 208, 209, 210, 211, 212, 213, 214,
                                      215, 216, 230, 231, 232, 240, 241, 250, 251, 252, 253, 260, 261, 262, 270,
                                      271, 272, 273))
