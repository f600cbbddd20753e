"""MOAT-K8S-2xx on manifests written the way clusters are described: RBAC roles and bindings, service
accounts, namespaces with Pod Security labels, network policies, services, ingresses, encryption
configs; plus the trivy-checks cases for the cluster-object ids these rules alias."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from corpus import Case, cases
from moat.checks.document import Document
from moat.checks.engine import FAIL, MANUAL, NOT_APPLICABLE, PASS, evaluate
from moat.checks.rule import Rule, builtin_rules
from moat.checks.targets.kubernetes import kubernetes_documents
from moat.checks.yamlload import load_yaml_documents, load_yaml_file
from moat.model import Misconfiguration


def _rules() -> list[Rule]:
    return [r for r in builtin_rules().values() if r.id.startswith("MOAT-K8S-2")]


def _docs(text: str, label: str = "cluster.yaml") -> list[Document]:
    return kubernetes_documents(load_yaml_documents(text, label), label)


def _run(text: str) -> list[Misconfiguration]:
    return evaluate(_docs(text), _rules()).findings


def _hits(findings: Sequence[Misconfiguration], rule_id: str) -> list[tuple[str, int]]:
    return sorted((f.object, f.line) for f in findings if f.rule_id == rule_id and f.status == FAIL)


RBAC = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: ops
rules:
  - apiGroups: [""]
    resources: [secrets, pods]
    verbs: [get, list, create]
  - apiGroups: [""]
    resources: ["nodes/*"]
    verbs: [get]
  - apiGroups: [certificates.k8s.io]
    resources: [certificatesigningrequests/approval]
    verbs: [update]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: ops-everywhere
subjects:
  - kind: Group
    name: oncall
    apiGroup: rbac.authorization.k8s.io
  - kind: ServiceAccount
    name: robot
    namespace: tools
roleRef: {kind: ClusterRole, name: ops, apiGroup: rbac.authorization.k8s.io}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: deployer
  namespace: shop
rules:
  - apiGroups: [apps]
    resources: ["*"]
    verbs: ["*"]
  - apiGroups: [""]
    resources: [serviceaccounts/token, persistentvolumes]
    verbs: [create]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: ci
  namespace: shop
subjects:
  - kind: ServiceAccount
    name: ci
roleRef: {kind: Role, name: deployer, apiGroup: rbac.authorization.k8s.io}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: cannot-bind-a-role
subjects:
  - {kind: User, name: mallory}
roleRef: {kind: Role, name: deployer, apiGroup: rbac.authorization.k8s.io}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: admins
subjects:
  - {kind: User, name: alice}
  - {kind: Group, name: system:masters}
roleRef: {kind: ClusterRole, name: cluster-admin, apiGroup: rbac.authorization.k8s.io}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: system:controller:thing
rules:
  - {apiGroups: ["*"], resources: ["*"], verbs: ["*"]}
"""


def test_rbac_permissions_name_the_subject_and_the_line_of_the_binding() -> None:
    findings = _run(RBAC)
    ops = [("Group/oncall", 21), ("tools/ServiceAccount/robot", 24)]
    assert _hits(findings, "MOAT-K8S-201") == ops  # get/list secrets
    assert _hits(findings, "MOAT-K8S-204") == ops  # create pods
    assert _hits(findings, "MOAT-K8S-212") == ops  # nodes/* covers nodes/proxy
    assert _hits(findings, "MOAT-K8S-213") == ops  # CSR approval
    # the Role in namespace shop reaches the RoleBinding's subject (namespace from the binding);
    # the ClusterRoleBinding that names a Role grants nothing
    assert _hits(findings, "MOAT-K8S-215") == [("shop/ServiceAccount/ci", 48)]
    assert _hits(findings, "MOAT-K8S-211") == [("shop/ServiceAccount/ci", 48)]
    assert _hits(findings, "MOAT-K8S-209") == [] and _hits(findings, "MOAT-K8S-210") == []
    assert _hits(findings, "MOAT-K8S-214") == []
    # apps/*/* is not every permission; cluster-admin is bound to alice (system:masters is built in)
    assert _hits(findings, "MOAT-K8S-203") == []
    assert _hits(findings, "MOAT-K8S-200") == [("User/alice", 65)]
    messages = [f.message for f in findings if f.rule_id == "MOAT-K8S-201"]
    assert messages[0] == ("Group/oncall can get/list/watch secrets cluster-wide through ClusterRoleBinding "
                           "'ops-everywhere' → ClusterRole 'ops'")
    in_shop = next(f for f in findings if f.rule_id == "MOAT-K8S-215")
    assert "in namespace shop" in in_shop.message and in_shop.file == "cluster.yaml"


def test_wildcard_roles_skip_built_in_system_roles() -> None:
    findings = _run(RBAC)
    assert _hits(findings, "MOAT-K8S-202") == [("shop/Role/deployer", 36), ("shop/Role/deployer", 37)]


def test_bind_escalate_impersonate_and_webhooks() -> None:
    text = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: power}
rules:
  - {apiGroups: [rbac.authorization.k8s.io], resources: [clusterroles], verbs: [bind]}
  - {apiGroups: [""], resources: [groups], verbs: [impersonate]}
  - {apiGroups: [admissionregistration.k8s.io], resources: [validatingwebhookconfigurations], verbs: [patch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: power, namespace: team}
subjects: [{kind: User, name: bob}]
roleRef: {kind: ClusterRole, name: power}
"""
    findings = _run(text)
    for rule_id in ("MOAT-K8S-209", "MOAT-K8S-210", "MOAT-K8S-214"):
        assert _hits(findings, rule_id) == [("User/bob", 12)], rule_id
    assert _hits(findings, "MOAT-K8S-201") == []


SERVICE_ACCOUNTS = """\
apiVersion: v1
kind: ServiceAccount
metadata: {name: default, namespace: shop}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: default, namespace: quiet}
automountServiceAccountToken: false
---
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Namespace
metadata: {name: quiet}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: web, namespace: quiet}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  template:
    spec:
      containers: [{name: web, image: nginx:1.27}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: quiet}
spec:
  template:
    spec:
      containers: [{name: api, image: api:1}]
"""


def test_service_account_token_rules_follow_the_pods_account() -> None:
    findings = _run(SERVICE_ACCOUNTS)
    assert _hits(findings, "MOAT-K8S-205") == [("shop/ServiceAccount/default", 1)]
    # web in shop uses shop's default account, which mounts; api in quiet uses quiet's, which does not
    assert _hits(findings, "MOAT-K8S-207") == [("shop/Deployment/web", 27)]
    assert _hits(findings, "MOAT-K8S-206") == [("Namespace/shop", 10)]


def test_bindings_to_a_default_service_account() -> None:
    text = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: view, namespace: shop}
subjects:
  - {kind: ServiceAccount, name: web}
  - {kind: ServiceAccount, name: default}
roleRef: {kind: ClusterRole, name: view}
"""
    findings = _run(text)
    assert _hits(findings, "MOAT-K8S-216") == [("shop/ServiceAccount/default", 6)]
    assert [f.message for f in findings if f.rule_id == "MOAT-K8S-216"] == [
        "shop/ServiceAccount/default is bound to ClusterRole 'view' by RoleBinding 'view'"]


def test_pod_security_admission_levels() -> None:
    text = """\
apiVersion: v1
kind: Namespace
metadata:
  name: open
---
apiVersion: v1
kind: Namespace
metadata:
  name: base
  labels:
    pod-security.kubernetes.io/enforce: baseline
---
apiVersion: v1
kind: Namespace
metadata:
  name: strict
  labels: {pod-security.kubernetes.io/enforce: restricted}
"""
    findings = _run(text)
    assert _hits(findings, "MOAT-K8S-250") == [("Namespace/open", 3)]
    assert _hits(findings, "MOAT-K8S-251") == [("Namespace/open", 3)]
    assert _hits(findings, "MOAT-K8S-252") == [("Namespace/base", 11), ("Namespace/open", 3)]
    webhook = """\
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: kyverno}
webhooks:
  - name: validate.kyverno.svc
    rules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods], scope: "*"}]
"""
    # a policy engine's webhook stands in for PSA (CIS 5.2.1); the level rules still ask for labels
    with_engine = _run(text + webhook)
    assert _hits(with_engine, "MOAT-K8S-250") == []
    assert _hits(with_engine, "MOAT-K8S-251") == [("Namespace/open", 3)]


def test_network_policies_cover_namespaces() -> None:
    text = """\
apiVersion: v1
kind: Namespace
metadata: {name: covered}
---
apiVersion: v1
kind: Namespace
metadata: {name: bare}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all, namespace: covered}
spec: {podSelector: {}, policyTypes: [Ingress, Egress]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: broken, namespace: covered}
spec: {policyTypes: [Ingress]}
"""
    findings = _run(text)
    assert _hits(findings, "MOAT-K8S-231") == [("Namespace/bare", 5)]
    assert _hits(findings, "MOAT-K8S-232") == [("covered/NetworkPolicy/broken", 17)]
    cluster_wide = """\
---
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: {name: default-deny}
spec: {endpointSelector: {}, ingress: [{}]}
"""
    assert _hits(_run(text + cluster_wide), "MOAT-K8S-231") == []


def test_default_and_kube_system_namespaces() -> None:
    text = """\
apiVersion: v1
kind: Service
metadata: {name: kubernetes, namespace: default}
spec: {ports: [{port: 443}]}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: reader}
rules: []
---
apiVersion: v1
kind: Pod
metadata: {name: tool, namespace: kube-system}
spec: {containers: [{name: t, image: busybox:1.36}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec: {template: {spec: {containers: [{name: w, image: nginx:1.27}]}}}
"""
    findings = _run(text)
    assert _hits(findings, "MOAT-K8S-260") == [("ConfigMap/settings", 8), ("default/Deployment/web", 22)]
    messages = sorted(f.message for f in findings if f.rule_id == "MOAT-K8S-260")
    assert messages == ["ConfigMap 'settings' names no namespace (lands in default)",
                        "Deployment 'web' is in the default namespace"]
    assert _hits(findings, "MOAT-K8S-261") == [("kube-system/Pod/tool", 17)]


def test_services_and_ingresses() -> None:
    text = """\
apiVersion: v1
kind: Service
metadata: {name: node, namespace: web}
spec: {type: NodePort, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: lb-limited, namespace: web}
spec: {type: LoadBalancer, loadBalancerSourceRanges: [203.0.113.0/24]}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop
  namespace: web
  annotations:
    nginx.ingress.kubernetes.io/configuration-snippet: |
      more_set_headers "X: y";
    nginx.ingress.kubernetes.io/auth-url: "https://auth.example.com/verify"
spec:
  ingressClassName: nginx
  rules: [{host: shop.example.com}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: safe
  namespace: web
spec:
  tls: [{hosts: [safe.example.com], secretName: safe-tls}]
"""
    findings = _run(text)
    assert _hits(findings, "MOAT-K8S-270") == [("web/Service/node", 4)]
    assert _hits(findings, "MOAT-K8S-271") == [("web/Ingress/shop", 20)]
    assert _hits(findings, "MOAT-K8S-273") == [("web/Ingress/shop", 17)]
    assert _hits(findings, "MOAT-K8S-272") == []  # a plain https URL is fine


def test_secrets_encryption_config_and_cni() -> None:
    text = """\
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
metadata: {name: local-key}
resources:
  - resources: [secrets]
    providers:
      - aescbc: {keys: [{name: k1, secret: c2VjcmV0IGlzIHNlY3JldA==}]}
      - identity: {}
---
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
metadata: {name: kms}
resources:
  - resources: [secrets, configmaps]
    providers:
      - kms: {apiVersion: v2, name: vault, endpoint: unix:///var/run/kms.sock}
---
apiVersion: hostdata.kubescape.cloud/v1beta0
kind: CNIInfo
metadata: {name: node-1}
data: {CNINames: [Calico]}
"""
    findings = _run(text)
    assert _hits(findings, "MOAT-K8S-240") == [("EncryptionConfiguration/local-key", 1)]
    assert _hits(findings, "MOAT-K8S-230") == []


def test_manual_items_are_reported_once_with_their_steps() -> None:
    run = evaluate(_docs(SERVICE_ACCOUNTS), _rules())
    manual = sorted(f.rule_id for f in run.findings if f.status == MANUAL)
    assert manual == ["MOAT-K8S-208", "MOAT-K8S-241", "MOAT-K8S-253", "MOAT-K8S-262"]
    assert all("kubectl" in f.verification or "openssl" in f.verification
               for f in run.findings if f.status == MANUAL)
    assert run.outcomes["MOAT-K8S-272"].status == PASS
    assert evaluate([], _rules()).outcomes["MOAT-K8S-200"].status == NOT_APPLICABLE


def test_runs_do_not_share_objects() -> None:
    # the per-run index must not leak one run's roles into the next
    first = _run(RBAC)
    assert _hits(first, "MOAT-K8S-201")
    binding_only = "\n".join(RBAC.split("---\n")[1:2])
    assert _hits(_run(binding_only), "MOAT-K8S-201") == []


def test_every_cluster_rule_is_complete() -> None:
    rules = _rules()
    assert len(rules) == 33
    for item in rules:
        assert item.id.startswith("MOAT-K8S-2") and 200 <= int(item.id.rsplit("-", 1)[1]) <= 399
        assert item.controls and item.references, item.id
        derived = ("pci-dss-4.0", "hipaa", "soc2", "nist-800-190")  # added by checks/mappings
        assert all(c.split(":")[0] in ("cis-kubernetes-1.9", "nsa-cisa-k8s", *derived) for c in item.controls), item.id
        assert "kubectl" in item.verification or "openssl" in item.verification or "ps -ef" in item.verification


@pytest.mark.parametrize("text", [
    "apiVersion: v1\nkind: Namespace\nmetadata: []\n",
    "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: x}\nsubjects: x\nroleRef: 3\n",
    "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: x}\nrules: [null, 3, {verbs: 7}]\n",
    "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: [1]\n",
    "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: i, annotations: [1]}\nspec: null\n",
    "apiVersion: hostdata.kubescape.cloud/v1beta0\nkind: ControlPlaneInfo\nmetadata: {name: n}\n"
    "data: {APIServerInfo: {encryptionProviderConfigFile: {content: '!!!not base64'}}}\n",
    "apiVersion: v1\nkind: List\nitems: [{apiVersion: v1, kind: ServiceAccount, metadata: {name: default}}]\n",
])
def test_odd_shapes_do_not_break_rules(text: str) -> None:
    evaluate(_docs(text), _rules())  # strict mode (conftest): a rule that raises fails here


TRIVY = [case for case in cases("misconfig", "kubernetes/trivy-checks")
         if (case.expected.get("must_fire") or case.expected.get("must_not_fire") or [""])[0]
         in ("KCV-0093", "KSV-0036", "KSV-0037", "KSV-0038")]


@pytest.mark.parametrize("case", TRIVY, ids=[case.name for case in TRIVY])
def test_trivy_cluster_cases(case: Case) -> None:
    check_id = (case.expected.get("must_fire") or case.expected["must_not_fire"])[0]
    rules = [r for r in builtin_rules().values() if check_id in r.aliases]
    assert rules, f"no rule aliases {check_id}"
    documents = kubernetes_documents(load_yaml_file(case.input_path), str(case.input_path))
    fired = {f.rule_id for f in evaluate(documents, rules).findings if f.status == FAIL}
    if case.expected.get("must_fire"):
        assert fired, f"{case.name}: none of {[r.id for r in rules]} fired"
    else:
        assert not fired, f"{case.name}: {sorted(fired)} fired"


def test_trivy_cases_found() -> None:
    assert len(TRIVY) == 17
    assert all(Path(case.input_path).is_file() for case in TRIVY)
