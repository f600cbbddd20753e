"""CIS Kubernetes Benchmark 1.9, section 4 (worker nodes): ``MOAT-KN-100`` … ``MOAT-KN-130``, for nodes with
the ``worker`` role (a kubeadm control plane node runs a kubelet too, so it has that role as well).

Kubelet settings are read from ``components.kubelet.effective``: a flag wins over the config file, which
wins over the kubelet's default (see :mod:`moat.checks.targets.k8s_node`), so each finding points at the
file and line that set the value in force."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from moat.checks.document import Document
from moat.checks.rule import CheckFunction, Hit, RuleContext
from moat.checks.rules.k8s_node import (
    KUBELET_AUTH_DOC,
    KUBELET_CONFIG_DOC,
    KUBELET_DOC,
    PKI_DOC,
    PROXY_DOC,
    certificate_mode,
    component,
    describe,
    file_mode,
    file_owner,
    is_false,
    is_true,
    kubelet_hit,
    kubelet_setting,
    node_manual_rule,
    node_rule,
)
from moat.checks.rules.k8s_node_master import STRONG_CIPHERS, cipher_problem

WORKER = "worker"
_EDIT_CONFIG = "In the kubelet config file (/var/lib/kubelet/config.yaml on kubeadm nodes), set"
_RESTART = "then `systemctl restart kubelet`. A flag in the kubelet's unit or env files overrides the config file: " \
           "remove any contrary flag there."
_PS = "Run `ps -ef | grep kubelet` on the node and read the file its --config names"

# --------------------------------------------------------------------------------------------------
# 4.1 Worker node configuration files

_FILES: dict[str, tuple[str, str, str]] = {
    # key: (what, example path, why)
    "kubelet_service": ("kubelet service file", "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
                        "The kubelet's systemd unit and drop-ins hold its command line: whoever can write them "
                        "can turn off the kubelet's authentication or authorization at the next restart."),
    "proxy_kubeconfig": ("kube-proxy kubeconfig", "/etc/kubernetes/proxy.conf",
                         "kube-proxy's kubeconfig carries its credentials; a copy lets anyone act as kube-proxy "
                         "(the check applies only when kube-proxy runs from a kubeconfig on the node's disk)."),
    "kubelet_kubeconfig": ("kubelet kubeconfig", "/etc/kubernetes/kubelet.conf",
                           "kubelet.conf holds the node's client credentials; with them anyone can act as this node "
                           "against the API server."),
    "kubelet_client_ca": ("kubelet client CA file", "/etc/kubernetes/pki/ca.crt",
                          "The kubelet trusts every client certificate this CA signed; replacing the file lets "
                          "an attacker's certificates into the kubelet API (exec, logs, port-forward)."),
    "kubelet_config": ("kubelet config file", "/var/lib/kubelet/config.yaml",
                       "The kubelet config file sets its authentication, authorization and TLS: a writable file "
                       "means a weaker kubelet at the next restart."),
}


def _file_rule(n: int, cis: str, key: str, kind: str, title: str, kcv: int, ks: int, severity: str = "HIGH") -> None:
    what, example, why = _FILES[key]
    check: CheckFunction
    if kind == "mode":
        allowed: Any = certificate_mode if key == "kubelet_client_ca" else 0o600
        shown = "600 (644 under CIS 1.11 and later)" if key == "kubelet_client_ca" else "600"
        check = file_mode(key, allowed, what)
        description = f"{why} Its mode should grant nothing beyond {shown}."
        remediation = f"`chmod 600 {example}` on the node (use the path the kubelet actually uses)."
        verification = f"Run `stat -c '%a %n' {example}` on the node: the mode is 600 or stricter."
    else:
        check = file_owner(key, what)
        description = f"{why} It should belong to root:root."
        remediation = f"`chown root:root {example}` on the node."
        verification = f"Run `stat -c '%U:%G %n' {example}` on the node: it shows root:root."
    node_rule(id=f"MOAT-KN-{n:03d}", cis=cis, title=title, severity=severity, role=WORKER, description=description,
              remediation=remediation, verification=verification,
              references=[PKI_DOC if key == "kubelet_client_ca" else KUBELET_DOC], kcv=[kcv], kubescape=[ks])(check)


_file_rule(100, "4.1.1", "kubelet_service", "mode",
           "Ensure that the kubelet service file permissions are set to 600 or more restrictive", 69, 162)
_file_rule(101, "4.1.2", "kubelet_service", "owner",
           "Ensure that the kubelet service file ownership is set to root:root", 70, 163)
_file_rule(102, "4.1.3", "proxy_kubeconfig", "mode",
           "If proxy kubeconfig file exists ensure permissions are set to 600 or more restrictive", 71, 164)
_file_rule(103, "4.1.4", "proxy_kubeconfig", "owner",
           "If proxy kubeconfig file exists ensure ownership is set to root:root", 72, 165)
_file_rule(104, "4.1.5", "kubelet_kubeconfig", "mode",
           "Ensure that the --kubeconfig kubelet.conf file permissions are set to 600 or more restrictive", 73, 166)
_file_rule(105, "4.1.6", "kubelet_kubeconfig", "owner",
           "Ensure that the --kubeconfig kubelet.conf file ownership is set to root:root", 74, 167)
_file_rule(106, "4.1.7", "kubelet_client_ca", "mode",
           "Ensure that the certificate authorities file permissions are set to 600 or more restrictive", 75, 168,
           "MEDIUM")
_file_rule(107, "4.1.8", "kubelet_client_ca", "owner",
           "Ensure that the client certificate authorities file ownership is set to root:root", 76, 169)
_file_rule(108, "4.1.9", "kubelet_config", "mode",
           "If the kubelet config.yaml configuration file is being used validate permissions set to 600 or more "
           "restrictive", 77, 170)
_file_rule(109, "4.1.10", "kubelet_config", "owner",
           "If the kubelet config.yaml configuration file is being used validate file ownership is set to root:root",
           78, 171)

# --------------------------------------------------------------------------------------------------
# 4.2 Kubelet


def _kubelet(n: int, cis: str, title: str, severity: str, check: CheckFunction, description: str,
             remediation: str, verification: str, kcv: list[int], ks: list[int],
             references: tuple[str, ...] = (KUBELET_CONFIG_DOC, KUBELET_DOC),
             params: dict[str, Any] | None = None) -> None:
    node_rule(id=f"MOAT-KN-{n:03d}", cis=cis, title=title, severity=severity, role=WORKER, description=description,
              remediation=remediation, verification=verification, references=references, kcv=kcv, kubescape=ks,
              params=params)(check)


def _setting_check(setting: str, bad: Any, message: str) -> CheckFunction:
    """Fail when ``bad(value)`` holds for the kubelet setting in force."""

    def check(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
        entry = kubelet_setting(doc, setting)
        if entry is not None and bad(entry.get("value")):
            yield kubelet_hit(doc, entry, f"kubelet {message} ({describe(entry)})")

    return check


_kubelet(110, "4.2.1", "Ensure that the --anonymous-auth argument is set to false", "CRITICAL",
         _setting_check("anonymous_auth", lambda v: not is_false(v), "accepts anonymous requests"),
         "With anonymous auth on, requests to the kubelet API on port 10250 without credentials are served as "
         "system:anonymous; with a permissive authorizer that is exec into any Pod on the node.",
         f"{_EDIT_CONFIG} `authentication: {{anonymous: {{enabled: false}}}}`; {_RESTART}",
         f"{_PS}: --anonymous-auth=false, or no flag and `authentication.anonymous.enabled: false` in the file.",
         [79], [172], (KUBELET_AUTH_DOC, KUBELET_CONFIG_DOC))
_kubelet(111, "4.2.2", "Ensure that the --authorization-mode argument is not set to AlwaysAllow", "CRITICAL",
         _setting_check("authorization_mode", lambda v: str(v) == "AlwaysAllow", "authorizes every request"),
         "AlwaysAllow lets any authenticated caller of the kubelet API run commands in the node's Pods; it is the "
         "default of a kubelet started without a config file.",
         f"{_EDIT_CONFIG} `authorization: {{mode: Webhook}}` and `authentication: {{webhook: {{enabled: true}}}}`; "
         f"{_RESTART}",
         f"{_PS}: --authorization-mode is not AlwaysAllow, or no flag and `authorization.mode: Webhook`.", [80],
         [173], (KUBELET_AUTH_DOC, KUBELET_CONFIG_DOC))
_kubelet(112, "4.2.3", "Ensure that the --client-ca-file argument is set as appropriate", "HIGH",
         _setting_check("client_ca_file", lambda v: not (isinstance(v, str) and v.strip()),
                        "has no client CA file, so it cannot authenticate client certificates"),
         "Without a client CA the kubelet cannot verify the API server's client certificate, so it cannot tell "
         "the API server from any other caller.",
         f"{_EDIT_CONFIG} `authentication: {{x509: {{clientCAFile: /etc/kubernetes/pki/ca.crt}}}}`; {_RESTART}",
         f"{_PS}: --client-ca-file, or `authentication.x509.clientCAFile`, names the cluster CA.", [81], [174],
         (KUBELET_AUTH_DOC, KUBELET_CONFIG_DOC))


def _port_open(value: Any) -> bool:
    try:
        return int(str(value)) != 0
    except ValueError:
        return True


_kubelet(113, "4.2.4", "Verify that the --read-only-port argument is set to 0", "HIGH",
         _setting_check("read_only_port", _port_open, "serves the unauthenticated read-only port"),
         "The read-only port (10255) serves Pod specs and metrics with no authentication at all, leaking "
         "environment variables and images of everything on the node.",
         f"{_EDIT_CONFIG} `readOnlyPort: 0`; {_RESTART}",
         f"{_PS}: --read-only-port=0, or no flag and readOnlyPort 0 or absent in the file (a kubelet without a "
         "config file defaults to 10255).", [82], [175])

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?)(ns|us|µs|ms|s|m|h)")


def _zero_duration(value: Any) -> bool:
    text = str(value).strip()
    if text in ("0", ""):
        return True
    parts = _DURATION_PART.findall(text)
    return bool(parts) and "".join(a + b for a, b in parts) == text and all(float(a) == 0 for a, _ in parts)


_kubelet(114, "4.2.5", "Ensure that the --streaming-connection-idle-timeout argument is not set to 0", "MEDIUM",
         _setting_check("streaming_connection_idle_timeout", _zero_duration, "never times out idle streams"),
         "A zero timeout keeps idle exec, attach and port-forward streams open forever, tying up the node and "
         "leaving forgotten sessions usable.",
         f"{_EDIT_CONFIG} `streamingConnectionIdleTimeout: 5m`; {_RESTART} (In the config file 0s means the "
         "default of 4h; only the flag can make it 0.)",
         f"{_PS}: --streaming-connection-idle-timeout is absent or not 0.", [85], [176])
_kubelet(115, "4.2.6", "Ensure that the --make-iptables-util-chains argument is set to true", "MEDIUM",
         _setting_check("make_iptables_util_chains", is_false, "does not manage its iptables utility chains"),
         "When the kubelet does not maintain its iptables chains, the node's firewall rules can drift from what "
         "Pods' networking needs, silently opening or breaking paths.",
         f"{_EDIT_CONFIG} `makeIPTablesUtilChains: true` (the default); {_RESTART}",
         f"{_PS}: --make-iptables-util-chains is absent or true.", [84], [178])
_kubelet(116, "4.2.7", "Ensure that the --hostname-override argument is not set", "LOW",
         _setting_check("hostname_override", lambda v: v is not None and str(v) != "",
                        "overrides its hostname"),
         "An overridden hostname can make the node's name differ from the names in its serving certificate, "
         "which breaks TLS verification between the API server and the kubelet.",
         "Remove --hostname-override from the kubelet's unit or env files (some cloud providers need it: then keep "
         f"it and make the serving certificate match); {_RESTART}",
         "Run `ps -ef | grep kubelet` on the node: --hostname-override is absent.", [86], [179], (KUBELET_DOC,))
node_manual_rule(
    id="MOAT-KN-117", cis="4.2.8",
    title="Ensure that the eventRecordQPS argument is set to a level which ensures appropriate event capture",
    severity="LOW", role=WORKER,
    description="The kubelet drops Events above eventRecordQPS; too low a limit loses security-relevant Events, "
                "0 (unlimited) lets a noisy node flood the API server. The right level depends on the cluster.",
    remediation=f"{_EDIT_CONFIG} `eventRecordQPS: 50` or the rate your Event pipeline handles; {_RESTART}",
    verification=f"{_PS}: review --event-qps or eventRecordQPS (default 50) against the Events the cluster "
                 "produces (`kubectl get events -A --watch`).",
    references=[KUBELET_CONFIG_DOC], kcv=[87], kubescape=[180])


def _serving_certificate(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    cert = kubelet_setting(doc, "tls_cert_file")
    key = kubelet_setting(doc, "tls_private_key_file")
    bootstrap = kubelet_setting(doc, "server_tls_bootstrap")
    if cert is None or key is None:
        return
    if (cert.get("value") and key.get("value")) or (bootstrap and is_true(bootstrap.get("value"))):
        return
    yield kubelet_hit(doc, cert, "kubelet has no serving certificate (neither tlsCertFile/tlsPrivateKeyFile nor "
                                 "serverTLSBootstrap): it serves a self-signed certificate")


_kubelet(118, "4.2.9",
         "Ensure that the --tls-cert-file and --tls-private-key-file arguments are set as appropriate", "HIGH",
         _serving_certificate,
         "Without a configured serving certificate the kubelet generates a self-signed one, so the API server "
         "(and anyone else) cannot verify it is talking to the real kubelet.",
         f"{_EDIT_CONFIG} `tlsCertFile: /var/lib/kubelet/pki/kubelet.crt` and `tlsPrivateKeyFile: "
         "/var/lib/kubelet/pki/kubelet.key` with a CA-signed pair, or `serverTLSBootstrap: true` and approve the "
         f"node's serving CSRs; {_RESTART}",
         f"{_PS}: --tls-cert-file and --tls-private-key-file (or tlsCertFile and tlsPrivateKeyFile) are set, or "
         "serverTLSBootstrap is true.", [88, 89], [181])
def _rotate_certificates(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    """The benchmark's wording: only an explicit false fails, though the config file's default is false."""
    entry = kubelet_setting(doc, "rotate_certificates")
    if entry is not None and entry.get("source") != "default" and is_false(entry.get("value")):
        yield kubelet_hit(doc, entry, f"kubelet turns client certificate rotation off ({describe(entry)})")


_kubelet(119, "4.2.10", "Ensure that the --rotate-certificates argument is not set to false", "MEDIUM",
         _rotate_certificates,
         "Without client certificate rotation the node's credentials expire (or are issued for long lifetimes "
         "to avoid that), and a stolen certificate stays valid for longer.",
         f"{_EDIT_CONFIG} `rotateCertificates: true`; {_RESTART}",
         f"{_PS}: --rotate-certificates is absent or true, and the file does not say `rotateCertificates: false`.",
         [90], [182])


def _rotate_server(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    entry = kubelet_setting(doc, "rotate_server_certificate")
    if entry is not None and is_false(entry.get("value")):
        yield kubelet_hit(doc, entry, "kubelet turns the RotateKubeletServerCertificate feature gate off")


_kubelet(120, "4.2.11", "Verify that the RotateKubeletServerCertificate argument is set to true", "MEDIUM",
         _rotate_server,
         "With the gate off the kubelet never renews its serving certificate through the cluster CA.",
         f"{_EDIT_CONFIG} no `RotateKubeletServerCertificate: false` under featureGates (the gate is on by "
         f"default); {_RESTART}",
         f"{_PS}: neither --feature-gates nor featureGates turns RotateKubeletServerCertificate off.", [91], [183])


def _kubelet_ciphers(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    entry = kubelet_setting(doc, "tls_cipher_suites")
    if entry is None:
        return
    value = entry.get("value")
    suites = [s.strip() for s in value.split(",")] if isinstance(value, str) else \
        [str(s) for s in value] if isinstance(value, list) else []
    problem = cipher_problem([s for s in suites if s], list(ctx.params["allowed_cipher_suites"]))
    if problem:
        yield kubelet_hit(doc, entry, f"kubelet: {problem}")


_kubelet(121, "4.2.12", "Ensure that the Kubelet only makes use of Strong Cryptographic Ciphers", "MEDIUM",
         _kubelet_ciphers,
         "Without an explicit list the kubelet also accepts CBC-mode and non-forward-secret suites on its API.",
         f"{_EDIT_CONFIG} `tlsCipherSuites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, "
         "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, "
         f"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384]`; {_RESTART}",
         f"{_PS}: --tls-cipher-suites or tlsCipherSuites lists only AEAD suites with ECDHE key exchange.", [92],
         [184], params={"allowed_cipher_suites": STRONG_CIPHERS})


def _pids_unlimited(value: Any) -> bool:
    try:
        return int(str(value)) <= 0
    except ValueError:
        return True


_kubelet(122, "4.2.13", "Ensure that a limit is set on pod PIDs", "MEDIUM",
         _setting_check("pod_pids_limit", _pids_unlimited, "sets no per-Pod process limit"),
         "Without a PID limit one Pod can fork until the node runs out of process ids, taking every other Pod "
         "and the kubelet down with it.",
         f"{_EDIT_CONFIG} `podPidsLimit: 4096` (sized for your largest workload); {_RESTART}",
         f"{_PS}: --pod-max-pids or podPidsLimit is set to a positive number.", [], [284])

# --------------------------------------------------------------------------------------------------
# 4.3 kube-proxy

LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


def _proxy_metrics(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    proxy = component(doc, "proxy")
    if proxy is None:
        return
    address = proxy.get("flags", {}).get("metrics-bind-address")
    evidence, resource = f"--metrics-bind-address={address}", str(proxy.get("source"))
    if address is None and isinstance(proxy.get("config"), dict):
        address = proxy["config"].get("metricsBindAddress")
        evidence = f"metricsBindAddress: {address}"
        resource = f"{proxy.get('config_root', '')}{proxy.get('config_path')}"  # the file as this node reaches it
    if not address:
        return  # default 127.0.0.1:10249
    text = str(address)
    host = text.rsplit(":", 1)[0] if text.count(":") == 1 or text.startswith("[") else text
    if host not in LOOPBACK:
        yield Hit(f"kube-proxy serves metrics on {address}, not on loopback", resource=resource, evidence=evidence)


node_rule(
    id="MOAT-KN-130", cis="4.3.1", title="Ensure that the kube-proxy metrics service is bound to localhost",
    severity="LOW", role=WORKER,
    description="kube-proxy's metrics endpoint has no authentication; bound to all interfaces it shows the node's "
                "Service and endpoint details to the network.",
    remediation="Set `metricsBindAddress: 127.0.0.1:10249` in kube-proxy's configuration (the kube-proxy "
                "ConfigMap on kubeadm clusters) or pass `--metrics-bind-address=127.0.0.1:10249`.",
    verification="Run `ps -ef | grep kube-proxy` on the node and read its --config file (or `kubectl -n kube-system "
                 "get cm kube-proxy -o yaml`): the metrics address is absent or on 127.0.0.1.",
    references=[PROXY_DOC])(_proxy_metrics)
