"""The MOAT-KN rules on kubeadm-shaped nodes: a default kubeadm v1.29 control plane fails exactly the
items it is known to fail, a hardened one passes every automated item, and each variant (file modes,
owners, kubelet flags over its config file, etcd CA, encryption and audit files) fails the item it
breaks, at the file and line that break it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from checks.test_k8s_node_collect import DEBIAN_ETCD_DEFAULTS, build_debian_etcd, build_master, build_worker, make_pki
from moat.checks.engine import FAIL, MANUAL, PASS, CheckRun, evaluate
from moat.checks.rule import Rule, builtin_rules
from moat.checks.rules.k8s_node import ROLE_OF_RULE, rules_for_roles
from moat.checks.targets.k8s_node import NodeOptions, collect_node
from moat.model import Misconfiguration


@pytest.fixture(scope="module")
def kubeadm_pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pki(tmp_path_factory.mktemp("pki"))


def node_rules() -> list[Rule]:
    return [item for item in builtin_rules().values() if item.id.startswith("MOAT-KN-")]


def scan(root: Path, *, params: dict[str, Any] | None = None, processes: bool = False,
         **options: Any) -> tuple[CheckRun, dict[str, Any]]:
    result = collect_node(NodeOptions(root=str(root), processes=processes, **options))
    assert not result.warnings, result.warnings
    data = result.document.data
    return evaluate([result.document], rules_for_roles(node_rules(), data["roles"]), params=params), data


def cis(finding: Misconfiguration) -> str:
    """The finding's CIS Kubernetes item (the mappings layer may add derived controls of other frameworks)."""
    (item,) = [c.split(":", 1)[1] for c in finding.controls if c.startswith("cis-kubernetes-1.9:")]
    return item


def failed(run: CheckRun) -> dict[str, list[Misconfiguration]]:
    found: dict[str, list[Misconfiguration]] = {}
    for finding in run.findings:
        if finding.status == FAIL:
            found.setdefault(cis(finding), []).append(finding)
    return found


def edit(root: Path, node_path: str, old: str, new: str) -> None:
    path = root / node_path.lstrip("/")
    text = path.read_text()
    assert old in text, f"{old!r} not in {node_path}"
    path.write_text(text.replace(old, new))


APISERVER = "/etc/kubernetes/manifests/kube-apiserver.yaml"
ETCD = "/etc/kubernetes/manifests/etcd.yaml"

# What a fresh `kubeadm init` (v1.29) fails, item by item, and why:
DEFAULT_KUBEADM_FAILURES = {
    "1.1.9",   # CNI config written 0644 by the CNI installer
    "1.1.12",  # /var/lib/etcd owned by root: there is no etcd user
    "1.1.20",  # certificates are written 0644
    "1.2.1",   # --anonymous-auth not set (default true)
    "1.2.3", "1.2.9", "1.2.11",  # only NodeRestriction is enabled
    "1.2.5",   # no --kubelet-certificate-authority
    "1.2.15", "1.3.2", "1.4.1",  # profiling left on
    "1.2.16", "1.2.17", "1.2.18", "1.2.19", "3.2.1",  # no audit logging
    "1.2.27", "1.2.28",  # no encryption at rest
    "1.2.29", "4.2.12",  # no cipher suite lists
    "1.3.1",   # no --terminated-pod-gc-threshold
    "4.1.1",   # the packaged 10-kubeadm.conf is 0644
    "4.1.7",   # the CA the kubelet trusts is 0644
    "4.1.9",   # /var/lib/kubelet/config.yaml is 0644
    "4.2.9",   # self-signed kubelet serving certificate
    "4.2.13",  # no podPidsLimit
}
MANUAL_ITEMS = {"1.2.20", "3.1.1", "3.1.2", "3.1.3", "3.2.2", "4.2.8"}


def test_default_kubeadm_control_plane_fails_its_known_items(tmp_path: Path, kubeadm_pki: Path) -> None:
    run, data = scan(build_master(tmp_path, kubeadm_pki))
    assert data["roles"] == ["master", "etcd", "worker"]
    assert set(failed(run)) == DEFAULT_KUBEADM_FAILURES
    assert {cis(f) for f in run.findings if f.status == MANUAL} == MANUAL_ITEMS
    profiling = failed(run)["1.2.15"][0]
    assert profiling.object == APISERVER and profiling.message.startswith("kube-apiserver does not set --profiling")
    certificates = {f.object for f in failed(run)["1.1.20"]}
    assert "/etc/kubernetes/pki/apiserver.crt" in certificates and "/etc/kubernetes/pki/etcd/ca.crt" in certificates
    assert not any(path.endswith(".key") for path in certificates)


def test_hardened_control_plane_passes_every_automated_item(tmp_path: Path, kubeadm_pki: Path) -> None:
    run, _ = scan(build_master(tmp_path, kubeadm_pki, hardened=True))
    assert failed(run) == {}
    statuses = {outcome.status for rule_id, outcome in run.outcomes.items() if not outcome.rule.manual}
    assert statuses == {PASS}
    assert len(run.outcomes) == 95


def test_worker_is_only_held_to_worker_items(tmp_path: Path, kubeadm_pki: Path) -> None:
    run, data = scan(build_worker(tmp_path, kubeadm_pki))
    assert data["roles"] == ["worker"]
    assert {ROLE_OF_RULE[rule_id] for rule_id in run.outcomes} == {"worker"}
    assert set(failed(run)) == {"4.1.1", "4.1.7", "4.1.9", "4.2.9", "4.2.12", "4.2.13"}
    # Even given every node rule, a worker is not failed for control plane flags it does not have.
    result = collect_node(NodeOptions(root=str(tmp_path), processes=False))
    everything = evaluate([result.document], node_rules())
    assert {cis(f)[0] for f in everything.findings if f.status == FAIL} == {"4"}


def test_kubelet_flags_override_a_secure_config_file(tmp_path: Path, kubeadm_pki: Path) -> None:
    build_worker(tmp_path, kubeadm_pki, hardened=True, kubelet_extra_args=(
        "--anonymous-auth=true --authorization-mode=AlwaysAllow --read-only-port=10255 "
        "--streaming-connection-idle-timeout=0 --pod-max-pids=-1 --rotate-certificates=false"))
    run, _ = scan(tmp_path)
    failures = failed(run)
    assert set(failures) == {"4.2.1", "4.2.2", "4.2.4", "4.2.5", "4.2.10", "4.2.13"}
    anonymous = failures["4.2.1"][0]
    assert (anonymous.object, anonymous.line, anonymous.evidence) == ("/etc/default/kubelet", 1,
                                                                      "--anonymous-auth=true")
    assert "kubelet accepts anonymous requests" in anonymous.message


def test_kubelet_config_file_values_are_reported_at_their_line(tmp_path: Path, kubeadm_pki: Path) -> None:
    build_worker(tmp_path, kubeadm_pki, hardened=True)
    edit(tmp_path, "/var/lib/kubelet/config.yaml", "    enabled: false\n", "    enabled: true\n")
    edit(tmp_path, "/var/lib/kubelet/config.yaml", "readOnlyPort: 0", "readOnlyPort: 10255")
    edit(tmp_path, "/var/lib/kubelet/config.yaml", "  RotateKubeletServerCertificate: true",
         "  RotateKubeletServerCertificate: false")
    run, _ = scan(tmp_path)
    failures = failed(run)
    assert set(failures) == {"4.2.1", "4.2.4", "4.2.11"}
    lines = (tmp_path / "var/lib/kubelet/config.yaml").read_text().splitlines()
    assert lines[failures["4.2.1"][0].line - 1] == "    enabled: true"
    assert lines[failures["4.2.4"][0].line - 1] == "readOnlyPort: 10255"
    assert failures["4.2.4"][0].evidence == "readOnlyPort: 10255"


def test_streaming_timeout_zero_in_the_file_is_the_default_but_zero_as_a_flag_is_zero(tmp_path: Path,
                                                                                      kubeadm_pki: Path) -> None:
    build_worker(tmp_path / "a", kubeadm_pki, hardened=True)
    assert "4.2.5" not in failed(scan(tmp_path / "a")[0])  # kubeadm's "streamingConnectionIdleTimeout: 0s"
    build_worker(tmp_path / "b", kubeadm_pki, hardened=True,
                 kubelet_extra_args="--streaming-connection-idle-timeout=0s")
    assert "4.2.5" in failed(scan(tmp_path / "b")[0])


def test_wrong_file_modes_and_owners_name_the_file(tmp_path: Path, kubeadm_pki: Path) -> None:
    build_master(tmp_path, kubeadm_pki, hardened=True)
    os.chmod(tmp_path / "etc/kubernetes/admin.conf", 0o644)
    os.chmod(tmp_path / "etc/kubernetes/manifests/kube-apiserver.yaml", 0o640)
    os.chown(tmp_path / "etc/kubernetes/scheduler.conf", 1000, 1000)
    os.chmod(tmp_path / "etc/kubernetes/pki/etcd/peer.key", 0o640)
    os.chown(tmp_path / "etc/kubernetes/pki/etcd", 1000, 0)
    os.chmod(tmp_path / "var/lib/etcd", 0o755)
    os.chown(tmp_path / "var/lib/kubelet/config.yaml", 0, 1000)
    run, _ = scan(tmp_path)
    failures = failed(run)
    assert set(failures) == {"1.1.1", "1.1.11", "1.1.13", "1.1.16", "1.1.19", "1.1.21", "4.1.10"}
    assert failures["1.1.13"][0].object == "/etc/kubernetes/admin.conf"
    assert failures["1.1.13"][0].evidence == "mode 0644"
    assert failures["1.1.16"][0].message == ("scheduler kubeconfig /etc/kubernetes/scheduler.conf is owned by "
                                             "1000:1000; root:root expected")
    assert [f.object for f in failures["1.1.19"]] == ["/etc/kubernetes/pki/etcd"]
    assert [f.object for f in failures["1.1.21"]] == ["/etc/kubernetes/pki/etcd/peer.key"]
    assert failures["4.1.10"][0].evidence == "owner root:1000"


def test_certificates_may_be_644_from_cis_1_11(tmp_path: Path, kubeadm_pki: Path) -> None:
    run, data = scan(build_master(tmp_path, kubeadm_pki, version="v1.32.2"))
    assert data["benchmark"] == "cis-1.11"
    assert "1.1.20" not in failed(run) and "4.1.7" not in failed(run)
    assert "1.1.21" not in failed(run)
    os.chmod(tmp_path / "etc/kubernetes/pki/ca.crt", 0o664)
    assert [f.object for f in failed(scan(tmp_path)[0])["1.1.20"]] == ["/etc/kubernetes/pki/ca.crt"]


def test_api_server_flag_findings_point_at_the_flags_line(tmp_path: Path, kubeadm_pki: Path) -> None:
    build_master(tmp_path, kubeadm_pki, hardened=True)
    edit(tmp_path, APISERVER, "--profiling=false", "--profiling=true")
    edit(tmp_path, APISERVER, "--authorization-mode=Node,RBAC", "--authorization-mode=AlwaysAllow")
    edit(tmp_path, APISERVER, "--audit-log-maxage=30", "--audit-log-maxage=7")
    edit(tmp_path, APISERVER, "    - --service-account-lookup=true\n", "    - --token-auth-file=/etc/tokens.csv\n")
    run, _ = scan(tmp_path)
    failures = failed(run)
    assert set(failures) == {"1.2.2", "1.2.6", "1.2.7", "1.2.8", "1.2.15", "1.2.17"}
    lines = (tmp_path / APISERVER.lstrip("/")).read_text().splitlines()
    assert lines[failures["1.2.15"][0].line - 1] == "    - --profiling=true"
    assert lines[failures["1.2.6"][0].line - 1] == "    - --authorization-mode=AlwaysAllow"
    assert failures["1.2.17"][0].message == "kube-apiserver sets --audit-log-maxage=7, below 30"
    assert failures["1.2.2"][0].evidence == "--token-auth-file=/etc/tokens.csv"


def test_template_parameters_tighten_thresholds(tmp_path: Path, kubeadm_pki: Path) -> None:
    build_master(tmp_path, kubeadm_pki, hardened=True)
    run, _ = scan(tmp_path, params={"min_audit_log_maxage": 90})
    assert set(failed(run)) == {"1.2.17"}


def test_admission_plugins_disabled_or_always_admit(tmp_path: Path, kubeadm_pki: Path) -> None:
    build_master(tmp_path, kubeadm_pki, hardened=True)
    edit(tmp_path, APISERVER, "NodeRestriction,EventRateLimit", "AlwaysAdmit,NodeRestriction,EventRateLimit")
    edit(tmp_path, APISERVER, "    - --profiling=false\n",
         "    - --profiling=false\n    - --disable-admission-plugins=ServiceAccount,NamespaceLifecycle\n")
    assert set(failed(scan(tmp_path)[0])) == {"1.2.10", "1.2.12", "1.2.13"}


def test_etcd_flags_env_and_a_shared_ca(tmp_path: Path, kubeadm_pki: Path) -> None:
    build_master(tmp_path, kubeadm_pki, hardened=True)
    edit(tmp_path, ETCD, "    - --client-cert-auth=true\n", "    - --auto-tls=true\n")
    edit(tmp_path, ETCD, "    - --peer-client-cert-auth=true\n", "")
    edit(tmp_path, ETCD, "    image: registry.k8s.io/etcd",
         '    env:\n    - name: ETCD_PEER_AUTO_TLS\n      value: "true"\n    image: registry.k8s.io/etcd')
    edit(tmp_path, ETCD, "--trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt",
         "--trusted-ca-file=/etc/kubernetes/pki/ca.crt")
    run, _ = scan(tmp_path)
    failures = failed(run)
    assert set(failures) == {"2.2", "2.3", "2.5", "2.6", "2.7"}
    assert failures["2.6"][0].evidence == "--peer-auto-tls=true"
    lines = (tmp_path / ETCD.lstrip("/")).read_text().splitlines()
    assert "ETCD_PEER_AUTO_TLS" in lines[failures["2.6"][0].line - 1]
    # A copy of the cluster CA under etcd's usual name is still the same CA.
    edit(tmp_path, ETCD, "--trusted-ca-file=/etc/kubernetes/pki/ca.crt",
         "--trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt")
    (tmp_path / "etc/kubernetes/pki/etcd/ca.crt").write_bytes((tmp_path / "etc/kubernetes/pki/ca.crt").read_bytes())
    copy = failed(scan(tmp_path)[0])["2.7"][0]
    assert "is a copy of the API server's client CA" in copy.message


def test_encryption_configuration_with_identity_first(tmp_path: Path, kubeadm_pki: Path) -> None:
    build_master(tmp_path, kubeadm_pki, hardened=True)
    path = tmp_path / "etc/kubernetes/enc/encryption-config.yaml"
    text = path.read_text()
    path.write_text(text.replace("  - aescbc:", "  - identity: {}\n  - aescbc:"))
    failures = failed(scan(tmp_path)[0])
    assert set(failures) == {"1.2.28"}
    assert "identity provider first" in failures["1.2.28"][0].message
    path.write_text("kind: [\n")
    result = collect_node(NodeOptions(root=str(tmp_path), processes=False))
    assert any("encryption-config.yaml" in warning for warning in result.warnings)
    finding = failed(evaluate([result.document], node_rules()))["1.2.28"][0]
    assert "cannot be assessed" in finding.message


def test_audit_policy_that_logs_nothing(tmp_path: Path, kubeadm_pki: Path) -> None:
    build_master(tmp_path, kubeadm_pki, hardened=True)
    (tmp_path / "etc/kubernetes/audit-policy.yaml").write_text(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n")
    failures = failed(scan(tmp_path)[0])
    assert set(failures) == {"3.2.1"}
    assert failures["3.2.1"][0].object == "/etc/kubernetes/audit-policy.yaml"


def test_kube_proxy_metrics_on_all_interfaces(tmp_path: Path, kubeadm_pki: Path) -> None:
    """A real process with kube-proxy's command line, found through /proc."""
    build_worker(tmp_path, kubeadm_pki, hardened=True)
    argv = ["kube-proxy", "-c", "import time; time.sleep(60)", "--metrics-bind-address=0.0.0.0:10249",
            "--config=/var/lib/kube-proxy/config.conf"]
    process = subprocess.Popen(argv, executable=sys.executable)
    try:
        deadline = time.monotonic() + 10
        while Path(f"/proc/{process.pid}/cmdline").read_bytes().split(b"\0")[0] != b"kube-proxy":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        # Not scan(): stand-in processes of tests running alongside may be read too (and warned about).
        result = collect_node(NodeOptions(root=str(tmp_path), processes=True))
    finally:
        process.kill()
        process.wait()
    assert result.document.data["components"]["proxy"]["pid"] == process.pid
    run = evaluate([result.document], node_rules())
    failures = failed(run)
    assert "4.3.1" in failures
    assert failures["4.3.1"][0].evidence == "--metrics-bind-address=0.0.0.0:10249"


def test_external_debian_etcd_member(tmp_path: Path) -> None:
    run, data = scan(build_debian_etcd(tmp_path / "good"))
    assert data["roles"] == ["etcd"]
    assert {ROLE_OF_RULE[rule_id] for rule_id in run.outcomes} == {"etcd"}
    assert failed(run) == {}
    defaults = DEBIAN_ETCD_DEFAULTS.replace("ETCD_CLIENT_CERT_AUTH=true\n", "") + "ETCD_AUTO_TLS=true\n"
    run, _ = scan(build_debian_etcd(tmp_path / "bad", defaults))
    failures = failed(run)
    assert set(failures) == {"2.2", "2.3"}
    assert (failures["2.3"][0].object, failures["2.3"][0].line) == ("/etc/default/etcd", 15)
    assert failures["2.2"][0].object == "/lib/systemd/system/etcd.service"  # where ExecStart starts etcd
    assert failures["2.2"][0].message == ("etcd does not set --client-cert-auth (default false); "
                                          "set --client-cert-auth=true")


def test_structured_authorization_configuration_replaces_the_mode_flag(tmp_path: Path, kubeadm_pki: Path) -> None:
    build_master(tmp_path, kubeadm_pki, hardened=True)
    edit(tmp_path, APISERVER, "--authorization-mode=Node,RBAC", "--authorization-config=/etc/kubernetes/authz.yaml")
    authz = tmp_path / "etc/kubernetes/authz.yaml"
    authz.write_text("apiVersion: apiserver.config.k8s.io/v1beta1\nkind: AuthorizationConfiguration\n"
                     "authorizers:\n- type: Node\n  name: node\n- type: RBAC\n  name: rbac\n")
    assert failed(scan(tmp_path)[0]) == {}
    authz.write_text("apiVersion: apiserver.config.k8s.io/v1beta1\nkind: AuthorizationConfiguration\n"
                     "authorizers:\n- type: Webhook\n  name: opa\n")
    failures = failed(scan(tmp_path)[0])
    assert set(failures) == {"1.2.7", "1.2.8"}
    assert failures["1.2.8"][0].evidence == "authorizers in --authorization-config: Webhook"


def test_kube_proxy_config_is_read_in_the_processs_own_root(tmp_path: Path, kubeadm_pki: Path) -> None:
    """As a DaemonSet Pod's kube-proxy: its --config path exists only inside its own root (here a chroot)."""
    build_worker(tmp_path / "node", kubeadm_pki, hardened=True)
    pod_root = tmp_path / "pod"
    (pod_root / "var/lib/kube-proxy").mkdir(parents=True)
    (pod_root / "var/lib/kube-proxy/config.conf").write_text(
        "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n"
        "metricsBindAddress: 0.0.0.0:10249\nmode: iptables\n")
    code = f"import os, time; os.chroot({str(pod_root)!r}); time.sleep(60)"
    argv = ["kube-proxy", "-c", code, "--config=/var/lib/kube-proxy/config.conf", "--hostname-override=node1"]
    process = subprocess.Popen(argv, executable=sys.executable)
    try:
        deadline = time.monotonic() + 10
        while os.readlink(f"/proc/{process.pid}/root") != str(pod_root):
            assert time.monotonic() < deadline, "the stand-in did not chroot"
            time.sleep(0.01)
        result = collect_node(NodeOptions(root=str(tmp_path / "node"), processes=True))
    finally:
        process.kill()
        process.wait()
    proxy = result.document.data["components"]["proxy"]
    assert proxy["pid"] == process.pid and proxy["config"]["metricsBindAddress"] == "0.0.0.0:10249"
    finding = failed(evaluate([result.document], node_rules()))["4.3.1"][0]
    assert finding.object == f"/proc/{process.pid}/root/var/lib/kube-proxy/config.conf"
    assert finding.evidence == "metricsBindAddress: 0.0.0.0:10249"
