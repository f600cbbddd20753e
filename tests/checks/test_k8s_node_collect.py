"""Collecting a Kubernetes node: kubeadm-shaped trees (v1.29 defaults) with real certificates, read by
``moat.checks.targets.k8s_node``.

The tree builders here are shared by the rule and end-to-end tests of ``moat k8s-node``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from moat.checks.targets.k8s_node import (
    NodeFS,
    NodeOptions,
    benchmark_for_version,
    collect_node,
    parse_flags,
    version_from_image,
)
from moat.errors import MoatError

K8S_VERSION = "v1.29.3"
ADVERTISE = "192.168.56.10"

# kubeadm v1.29 `kubeadm init --pod-network-cidr=10.244.0.0/16` writes these commands (flags sorted, as
# kubeadm's BuildArgumentListFromMap sorts them).
APISERVER_FLAGS = [
    f"--advertise-address={ADVERTISE}",
    "--allow-privileged=true",
    "--authorization-mode=Node,RBAC",
    "--client-ca-file=/etc/kubernetes/pki/ca.crt",
    "--enable-admission-plugins=NodeRestriction",
    "--enable-bootstrap-token-auth=true",
    "--etcd-cafile=/etc/kubernetes/pki/etcd/ca.crt",
    "--etcd-certfile=/etc/kubernetes/pki/apiserver-etcd-client.crt",
    "--etcd-keyfile=/etc/kubernetes/pki/apiserver-etcd-client.key",
    "--etcd-servers=https://127.0.0.1:2379",
    "--kubelet-client-certificate=/etc/kubernetes/pki/apiserver-kubelet-client.crt",
    "--kubelet-client-key=/etc/kubernetes/pki/apiserver-kubelet-client.key",
    "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
    "--proxy-client-cert-file=/etc/kubernetes/pki/front-proxy-client.crt",
    "--proxy-client-key-file=/etc/kubernetes/pki/front-proxy-client.key",
    "--requestheader-allowed-names=front-proxy-client",
    "--requestheader-client-ca-file=/etc/kubernetes/pki/front-proxy-ca.crt",
    "--requestheader-extra-headers-prefix=X-Remote-Extra-",
    "--requestheader-group-headers=X-Remote-Group",
    "--requestheader-username-headers=X-Remote-User",
    "--secure-port=6443",
    "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
    "--service-account-key-file=/etc/kubernetes/pki/sa.pub",
    "--service-account-signing-key-file=/etc/kubernetes/pki/sa.key",
    "--service-cluster-ip-range=10.96.0.0/12",
    "--tls-cert-file=/etc/kubernetes/pki/apiserver.crt",
    "--tls-private-key-file=/etc/kubernetes/pki/apiserver.key",
]
CONTROLLER_MANAGER_FLAGS = [
    "--allocate-node-cidrs=true",
    "--authentication-kubeconfig=/etc/kubernetes/controller-manager.conf",
    "--authorization-kubeconfig=/etc/kubernetes/controller-manager.conf",
    "--bind-address=127.0.0.1",
    "--client-ca-file=/etc/kubernetes/pki/ca.crt",
    "--cluster-cidr=10.244.0.0/16",
    "--cluster-name=kubernetes",
    "--cluster-signing-cert-file=/etc/kubernetes/pki/ca.crt",
    "--cluster-signing-key-file=/etc/kubernetes/pki/ca.key",
    "--controllers=*,bootstrapsigner,tokencleaner",
    "--kubeconfig=/etc/kubernetes/controller-manager.conf",
    "--leader-elect=true",
    "--requestheader-client-ca-file=/etc/kubernetes/pki/front-proxy-ca.crt",
    "--root-ca-file=/etc/kubernetes/pki/ca.crt",
    "--service-account-private-key-file=/etc/kubernetes/pki/sa.key",
    "--service-cluster-ip-range=10.96.0.0/12",
    "--use-service-account-credentials=true",
]
SCHEDULER_FLAGS = [
    "--authentication-kubeconfig=/etc/kubernetes/scheduler.conf",
    "--authorization-kubeconfig=/etc/kubernetes/scheduler.conf",
    "--bind-address=127.0.0.1",
    "--kubeconfig=/etc/kubernetes/scheduler.conf",
    "--leader-elect=true",
]
ETCD_FLAGS = [
    f"--advertise-client-urls=https://{ADVERTISE}:2379",
    "--cert-file=/etc/kubernetes/pki/etcd/server.crt",
    "--client-cert-auth=true",
    "--data-dir=/var/lib/etcd",
    "--experimental-initial-corrupt-check=true",
    "--experimental-watch-progress-notify-interval=5s",
    f"--initial-advertise-peer-urls=https://{ADVERTISE}:2380",
    f"--initial-cluster=cp1=https://{ADVERTISE}:2380",
    "--key-file=/etc/kubernetes/pki/etcd/server.key",
    f"--listen-client-urls=https://127.0.0.1:2379,https://{ADVERTISE}:2379",
    "--listen-metrics-urls=http://127.0.0.1:2381",
    f"--listen-peer-urls=https://{ADVERTISE}:2380",
    "--name=cp1",
    "--peer-cert-file=/etc/kubernetes/pki/etcd/peer.crt",
    "--peer-client-cert-auth=true",
    "--peer-key-file=/etc/kubernetes/pki/etcd/peer.key",
    "--peer-trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt",
    "--snapshot-count=10000",
    "--trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt",
]

HARDENED_APISERVER_FLAGS = [
    "--anonymous-auth=false",
    "--profiling=false",
    "--audit-log-path=/var/log/kubernetes/audit/audit.log",
    "--audit-log-maxage=30",
    "--audit-log-maxbackup=10",
    "--audit-log-maxsize=100",
    "--audit-policy-file=/etc/kubernetes/audit-policy.yaml",
    "--kubelet-certificate-authority=/etc/kubernetes/pki/ca.crt",
    "--encryption-provider-config=/etc/kubernetes/enc/encryption-config.yaml",
    "--admission-control-config-file=/etc/kubernetes/admission-control.yaml",
    "--enable-admission-plugins=NodeRestriction,EventRateLimit,AlwaysPullImages,DenyServiceExternalIPs",
    "--service-account-lookup=true",
    "--request-timeout=60s",
    "--tls-cipher-suites=TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,"
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
]
HARDENED_CONTROLLER_MANAGER_FLAGS = [
    "--profiling=false",
    "--terminated-pod-gc-threshold=10",
    "--feature-gates=RotateKubeletServerCertificate=true",
]
HARDENED_SCHEDULER_FLAGS = ["--profiling=false"]

KUBEADM_DROPIN = """\
# Note: This dropin only works with kubeadm and kubelet v1.11+
[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf \
--kubeconfig=/etc/kubernetes/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"
# This is a file that "kubeadm init" and "kubeadm join" generates at runtime, populating the \
KUBELET_KUBEADM_ARGS variable dynamically
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
# This is a file that the user can use for overrides of the kubelet args as a last resort. Preferably, the user \
should use
# the .NodeRegistration.KubeletExtraArgs object in the configuration files instead. KUBELET_EXTRA_ARGS should be \
sourced from this file.
EnvironmentFile=-/etc/default/kubelet
ExecStart=
ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
"""
KUBELET_UNIT = """\
[Unit]
Description=kubelet: The Kubernetes Node Agent
Documentation=https://kubernetes.io/docs/
Wants=network-online.target
After=network-online.target

[Service]
ExecStart=/usr/bin/kubelet
Restart=always
StartLimitInterval=0
RestartSec=10

[Install]
WantedBy=multi-user.target
"""
KUBEADM_FLAGS_ENV = ('KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///var/run/containerd/containerd.sock '
                     '--pod-infra-container-image=registry.k8s.io/pause:3.9"\n')

# /var/lib/kubelet/config.yaml as kubeadm v1.29 writes it (zero values included, as it marshals them).
KUBELET_CONFIG = """\
apiVersion: kubelet.config.k8s.io/v1beta1
authentication:
  anonymous:
    enabled: false
  webhook:
    cacheTTL: 0s
    enabled: true
  x509:
    clientCAFile: /etc/kubernetes/pki/ca.crt
authorization:
  mode: Webhook
  webhook:
    cacheAuthorizedTTL: 0s
    cacheUnauthorizedTTL: 0s
cgroupDriver: systemd
clusterDNS:
- 10.96.0.10
clusterDomain: cluster.local
containerRuntimeEndpoint: ""
cpuManagerReconcilePeriod: 0s
evictionPressureTransitionPeriod: 0s
fileCheckFrequency: 0s
healthzBindAddress: 127.0.0.1
healthzPort: 10248
httpCheckFrequency: 0s
imageMaximumGCAge: 0s
imageMinimumGCAge: 0s
kind: KubeletConfiguration
logging:
  flushFrequency: 0
  options:
    json:
      infoBufferSize: "0"
  verbosity: 0
memorySwap: {}
nodeStatusReportFrequency: 0s
nodeStatusUpdateFrequency: 0s
resolvConf: /run/systemd/resolve/resolv.conf
rotateCertificates: true
runtimeRequestTimeout: 0s
shutdownGracePeriod: 0s
shutdownGracePeriodCriticalPods: 0s
staticPodPath: /etc/kubernetes/manifests
streamingConnectionIdleTimeout: 0s
syncFrequency: 0s
volumeStatsAggPeriod: 0s
"""
HARDENED_KUBELET_EXTRA = """\
eventRecordQPS: 50
podPidsLimit: 4096
readOnlyPort: 0
serverTLSBootstrap: true
tlsCertFile: /var/lib/kubelet/pki/kubelet.crt
tlsPrivateKeyFile: /var/lib/kubelet/pki/kubelet.key
tlsCipherSuites:
- TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
- TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
- TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
- TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
featureGates:
  RotateKubeletServerCertificate: true
"""
AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages:
- RequestReceived
rules:
- level: Metadata
  resources:
  - group: ""
    resources: ["secrets", "configmaps", "tokenreviews"]
- level: RequestResponse
  resources:
  - group: rbac.authorization.k8s.io
- level: Metadata
"""
ENCRYPTION_CONFIG = """\
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
- resources:
  - secrets
  providers:
  - aescbc:
      keys:
      - name: key1
        secret: c2VjcmV0IGlzIHNlY3VyZSwgb3IgaXMgaXQ/Cg==
  - identity: {}
"""

# Debian's etcd-server package (3.4.23-4): its unit takes every setting from ETCD_* variables.
DEBIAN_ETCD_UNIT = """\
[Unit]
Description=etcd - highly-available key value store
Documentation=https://etcd.io/docs
Documentation=man:etcd
After=network.target
Wants=network-online.target

[Service]
Environment=DAEMON_ARGS=
Environment=ETCD_NAME=%H
Environment=ETCD_DATA_DIR=/var/lib/etcd/default
EnvironmentFile=-/etc/default/%p
Type=notify
User=etcd
PermissionsStartOnly=true
#ExecStart=/bin/sh -c "GOMAXPROCS=$(nproc) /usr/bin/etcd $DAEMON_ARGS"
ExecStart=/usr/bin/etcd $DAEMON_ARGS
Restart=on-abnormal
#RestartSec=10s
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
Alias=etcd2.service
"""
DEBIAN_ETCD_DEFAULTS = """\
## etcd(1) daemon options
## See "/usr/share/doc/etcd-server/op-guide/configuration.md.gz"
## for available options.
##
## Use environment to override, for example: ETCD_NAME=default
ETCD_LISTEN_CLIENT_URLS=https://10.0.0.5:2379
ETCD_ADVERTISE_CLIENT_URLS=https://10.0.0.5:2379
ETCD_CERT_FILE=/etc/etcd/pki/server.crt
ETCD_KEY_FILE=/etc/etcd/pki/server.key
ETCD_TRUSTED_CA_FILE=/etc/etcd/pki/ca.crt
ETCD_CLIENT_CERT_AUTH=true
ETCD_PEER_CERT_FILE=/etc/etcd/pki/peer.crt
ETCD_PEER_KEY_FILE=/etc/etcd/pki/peer.key
ETCD_PEER_TRUSTED_CA_FILE=/etc/etcd/pki/ca.crt
ETCD_PEER_CLIENT_CERT_AUTH=true
"""

# --------------------------------------------------------------------------------------------------
# Certificates (real ones, made by openssl once per test session)

PKI_PAIRS = {
    "ca": ("kubernetes", None, True),
    "apiserver": ("kube-apiserver", "ca", False),
    "apiserver-kubelet-client": ("kube-apiserver-kubelet-client", "ca", False),
    "front-proxy-ca": ("front-proxy-ca", None, True),
    "front-proxy-client": ("front-proxy-client", "front-proxy-ca", False),
    "etcd/ca": ("etcd-ca", None, True),
    "etcd/server": ("cp1", "etcd/ca", False),
    "etcd/peer": ("cp1", "etcd/ca", False),
    "etcd/healthcheck-client": ("kube-etcd-healthcheck-client", "etcd/ca", False),
    "apiserver-etcd-client": ("kube-apiserver-etcd-client", "etcd/ca", False),
}


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_pki(pki: Path) -> Path:
    """A kubeadm PKI directory with real CA-signed certificates and keys, and the service-account pair."""
    (pki / "etcd").mkdir()
    for name, (cn, issuer, is_ca) in PKI_PAIRS.items():
        key, crt = pki / f"{name}.key", pki / f"{name}.crt"
        _openssl("genrsa", "-out", str(key), "2048")
        if issuer is None:
            _openssl("req", "-x509", "-new", "-key", str(key), "-subj", f"/CN={cn}", "-days", "3650", "-out", str(crt),
                     "-addext", "basicConstraints=critical,CA:TRUE" if is_ca else "basicConstraints=CA:FALSE")
        else:
            csr = pki / f"{name}.csr"
            _openssl("req", "-new", "-key", str(key), "-subj", f"/CN={cn}", "-out", str(csr))
            _openssl("x509", "-req", "-in", str(csr), "-CA", str(pki / f"{issuer}.crt"), "-CAkey",
                     str(pki / f"{issuer}.key"), "-CAcreateserial", "-days", "365", "-out", str(crt))
            csr.unlink()
    _openssl("genrsa", "-out", str(pki / "sa.key"), "2048")
    _openssl("rsa", "-in", str(pki / "sa.key"), "-pubout", "-out", str(pki / "sa.pub"))
    for serial in pki.rglob("*.srl"):
        serial.unlink()
    return pki


@pytest.fixture(scope="module")
def kubeadm_pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pki(tmp_path_factory.mktemp("pki"))


# --------------------------------------------------------------------------------------------------
# Tree builders


def _write(root: Path, node_path: str, text: str, mode: int = 0o600, owner: tuple[int, int] = (0, 0)) -> Path:
    path = root / node_path.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, mode)
    os.chown(path, *owner)
    return path


def _static_pod(component: str, image: str, command: list[str], volumes: list[tuple[str, str]],
                env: list[tuple[str, str]] | None = None) -> str:
    lines = [
        "apiVersion: v1",
        "kind: Pod",
        "metadata:",
        "  creationTimestamp: null",
        "  labels:",
        f"    component: {component}",
        "    tier: control-plane",
        f"  name: {component}",
        "  namespace: kube-system",
        "spec:",
        "  containers:",
        "  - command:",
        *[f"    - {item}" for item in command],
    ]
    if env:
        lines.append("    env:")
        for name, value in env:
            lines += [f"    - name: {name}", f'      value: "{value}"']
    lines += [
        f"    image: {image}",
        "    imagePullPolicy: IfNotPresent",
        f"    name: {component}",
        "    resources:",
        "      requests:",
        "        cpu: 250m",
        "    volumeMounts:",
    ]
    for name, path in volumes:
        lines += [f"    - mountPath: {path}", f"      name: {name}", "      readOnly: true"]
    lines += ["  hostNetwork: true", "  priority: 2000001000", "  priorityClassName: system-node-critical",
              "  securityContext:", "    seccompProfile:", "      type: RuntimeDefault", "  volumes:"]
    for name, path in volumes:
        lines += ["  - hostPath:", f"      path: {path}", "      type: DirectoryOrCreate", f"    name: {name}"]
    lines.append("status: {}")
    return "\n".join(lines) + "\n"


def _kubeconfig(user: str, server: str, pki: Path, client: str) -> str:
    import base64

    ca = base64.b64encode((pki / "ca.crt").read_bytes()).decode()
    crt = base64.b64encode((pki / f"{client}.crt").read_bytes()).decode()
    key = base64.b64encode((pki / f"{client}.key").read_bytes()).decode()
    return (f"apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: {ca}\n    server: {server}\n"
            f"  name: kubernetes\ncontexts:\n- context:\n    cluster: kubernetes\n    user: {user}\n"
            f"  name: {user}@kubernetes\ncurrent-context: {user}@kubernetes\nkind: Config\npreferences: {{}}\n"
            f"users:\n- name: {user}\n  user:\n    client-certificate-data: {crt}\n    client-key-data: {key}\n")


def _merge_flags(base: list[str], extra: list[str]) -> list[str]:
    """kubeadm extraArgs semantics: an extra flag replaces the default of the same name."""
    names = {item.split("=", 1)[0] for item in extra}
    return [item for item in base if item.split("=", 1)[0] not in names] + extra


def _kubelet_files(root: Path, pki: Path, *, hardened: bool, extra_args: str = "") -> None:
    _write(root, "/usr/lib/systemd/system/kubelet.service", KUBELET_UNIT, 0o644)
    _write(root, "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf", KUBEADM_DROPIN,
           0o600 if hardened else 0o644)
    _write(root, "/var/lib/kubelet/kubeadm-flags.env", KUBEADM_FLAGS_ENV, 0o644)
    if extra_args:
        _write(root, "/etc/default/kubelet", f'KUBELET_EXTRA_ARGS="{extra_args}"\n', 0o644)
    config = KUBELET_CONFIG + (HARDENED_KUBELET_EXTRA if hardened else "")
    _write(root, "/var/lib/kubelet/config.yaml", config, 0o600 if hardened else 0o644)
    _write(root, "/etc/kubernetes/kubelet.conf",
           _kubeconfig("system:node:cp1", f"https://{ADVERTISE}:6443", pki, "apiserver-kubelet-client"))
    ca = root / "etc/kubernetes/pki/ca.crt"
    if not ca.exists():
        ca.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(pki / "ca.crt", ca)
        os.chmod(ca, 0o600 if hardened else 0o644)


def _passwd(root: Path, etcd_user: bool) -> None:
    users = "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
    groups = "root:x:0:\ndaemon:x:1:\n"
    if etcd_user:
        users += "etcd:x:996:996:etcd user:/var/lib/etcd:/usr/sbin/nologin\n"
        groups += "etcd:x:996:\n"
    _write(root, "/etc/passwd", users, 0o644)
    _write(root, "/etc/group", groups, 0o644)
    _write(root, "/etc/hostname", "cp1\n", 0o644)


def build_master(root: Path, pki: Path, *, hardened: bool = False, version: str = K8S_VERSION,
                 kubelet_extra_args: str = "") -> Path:
    """A control-plane node as ``kubeadm init`` leaves it (``hardened``: with the CIS fixes applied)."""
    _passwd(root, etcd_user=hardened)
    target = root / "etc/kubernetes/pki"
    shutil.copytree(pki, target)
    for path in target.rglob("*"):
        if path.is_file():
            os.chmod(path, 0o600 if path.suffix == ".key" or hardened else 0o644)
    volumes = [("k8s-certs", "/etc/kubernetes/pki"), ("ca-certs", "/etc/ssl/certs")]
    apiserver = _merge_flags(APISERVER_FLAGS, HARDENED_APISERVER_FLAGS if hardened else [])
    controller = _merge_flags(CONTROLLER_MANAGER_FLAGS, HARDENED_CONTROLLER_MANAGER_FLAGS if hardened else [])
    scheduler = _merge_flags(SCHEDULER_FLAGS, HARDENED_SCHEDULER_FLAGS if hardened else [])
    manifests = "/etc/kubernetes/manifests"
    _write(root, f"{manifests}/kube-apiserver.yaml", _static_pod(
        "kube-apiserver", f"registry.k8s.io/kube-apiserver:{version}", ["kube-apiserver", *apiserver], volumes))
    _write(root, f"{manifests}/kube-controller-manager.yaml", _static_pod(
        "kube-controller-manager", f"registry.k8s.io/kube-controller-manager:{version}",
        ["kube-controller-manager", *controller], volumes))
    _write(root, f"{manifests}/kube-scheduler.yaml", _static_pod(
        "kube-scheduler", f"registry.k8s.io/kube-scheduler:{version}", ["kube-scheduler", *scheduler],
        [("kubeconfig", "/etc/kubernetes/scheduler.conf")]))
    _write(root, f"{manifests}/etcd.yaml", _static_pod(
        "etcd", "registry.k8s.io/etcd:3.5.12-0", ["etcd", *ETCD_FLAGS],
        [("etcd-certs", "/etc/kubernetes/pki/etcd"), ("etcd-data", "/var/lib/etcd")]))
    server = f"https://{ADVERTISE}:6443"
    for name, user, client in (("admin.conf", "kubernetes-admin", "apiserver-kubelet-client"),
                               ("super-admin.conf", "kubernetes-super-admin", "apiserver-kubelet-client"),
                               ("controller-manager.conf", "system:kube-controller-manager", "apiserver"),
                               ("scheduler.conf", "system:kube-scheduler", "apiserver")):
        _write(root, f"/etc/kubernetes/{name}", _kubeconfig(user, server, pki, client))
    data = root / "var/lib/etcd/member/snap"
    data.mkdir(parents=True)
    os.chmod(root / "var/lib/etcd", 0o700)
    if hardened:
        for path in [root / "var/lib/etcd", *(root / "var/lib/etcd").rglob("*")]:
            os.chown(path, 996, 996)
        _write(root, "/etc/kubernetes/audit-policy.yaml", AUDIT_POLICY)
        _write(root, "/etc/kubernetes/enc/encryption-config.yaml", ENCRYPTION_CONFIG)
        _write(root, "/etc/kubernetes/admission-control.yaml",
               "apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n"
               "- name: EventRateLimit\n  path: /etc/kubernetes/event-rate-limit.yaml\n")
    _write(root, "/etc/cni/net.d/10-flannel.conflist",
           '{"name": "cbr0", "cniVersion": "0.3.1", "plugins": [{"type": "flannel", "delegate": '
           '{"hairpinMode": true, "isDefaultGateway": true}}, {"type": "portmap", "capabilities": '
           '{"portMappings": true}}]}\n', 0o600 if hardened else 0o644)
    _kubelet_files(root, pki, hardened=hardened, extra_args=kubelet_extra_args)
    return root


def build_worker(root: Path, pki: Path, *, hardened: bool = False, kubelet_extra_args: str = "") -> Path:
    """A node as ``kubeadm join`` leaves it: a kubelet, its config, its kubeconfig and the cluster CA."""
    _passwd(root, etcd_user=False)
    _kubelet_files(root, pki, hardened=hardened, extra_args=kubelet_extra_args)
    return root


def build_debian_etcd(root: Path, defaults: str = DEBIAN_ETCD_DEFAULTS, daemon_args: str = "") -> Path:
    """An external etcd member installed from Debian's etcd-server package, configured in /etc/default/etcd."""
    _passwd(root, etcd_user=True)
    _write(root, "/etc/hostname", "etcd1\n", 0o644)
    _write(root, "/lib/systemd/system/etcd.service", DEBIAN_ETCD_UNIT, 0o644)
    _write(root, "/etc/default/etcd", defaults + (f'DAEMON_ARGS="{daemon_args}"\n' if daemon_args else ""), 0o644)
    data = root / "var/lib/etcd/default/member"
    data.mkdir(parents=True)
    for path in (root / "var/lib/etcd", root / "var/lib/etcd/default", data):
        os.chmod(path, 0o700)
        os.chown(path, 996, 996)
    return root


def collect(root: Path, **options: Any) -> dict[str, Any]:
    scan = collect_node(NodeOptions(root=str(root), processes=False, **options))
    assert not scan.warnings, scan.warnings
    data: dict[str, Any] = scan.document.data
    return data


# --------------------------------------------------------------------------------------------------
# Tests


def test_default_kubeadm_master_is_read_from_manifests(tmp_path: Path, kubeadm_pki: Path) -> None:
    data = collect(build_master(tmp_path, kubeadm_pki))
    assert data["roles"] == ["master", "etcd", "worker"]
    assert data["role"] == "master"
    assert data["kubernetes_version"] == "1.29.3"
    assert data["benchmark"] == "cis-1.9"
    assert data["hostname"] == "cp1"
    apiserver = data["components"]["apiserver"]
    assert apiserver["origin"] == "manifest"
    assert apiserver["flags"]["authorization-mode"] == "Node,RBAC"
    assert apiserver["flags"]["enable-admission-plugins"] == "NodeRestriction"
    assert "profiling" not in apiserver["flags"]
    location = apiserver["locations"]["authorization-mode"]
    manifest = (tmp_path / "etc/kubernetes/manifests/kube-apiserver.yaml").read_text().splitlines()
    assert location["file"] == "/etc/kubernetes/manifests/kube-apiserver.yaml"
    assert "--authorization-mode=Node,RBAC" in manifest[location["line"] - 1]
    assert data["components"]["etcd"]["flags"]["data-dir"] == "/var/lib/etcd"
    assert data["components"]["scheduler"]["flags"]["bind-address"] == "127.0.0.1"


def test_file_facts_name_owner_and_mode(tmp_path: Path, kubeadm_pki: Path) -> None:
    data = collect(build_master(tmp_path, kubeadm_pki))
    files = data["files"]
    assert files["/etc/kubernetes/manifests/kube-apiserver.yaml"] == {
        "exists": True, "type": "file", "mode": "0600", "uid": 0, "gid": 0, "owner": "root", "group": "root"}
    assert files["/etc/kubernetes/pki/apiserver.crt"]["mode"] == "0644"
    assert files["/etc/kubernetes/pki/apiserver.key"]["mode"] == "0600"
    assert files["/var/lib/etcd"]["type"] == "dir" and files["/var/lib/etcd"]["mode"] == "0700"
    assert "/etc/kubernetes/pki/etcd/peer.key" in data["paths"]["pki"]
    assert data["paths"]["cni"] == ["/etc/cni/net.d/10-flannel.conflist"]
    assert files["/etc/kubernetes/super-admin.conf"]["exists"] is True
    assert files["/etc/kubernetes/pki/ca.crt"]["sha256"] != files["/etc/kubernetes/pki/etcd/ca.crt"]["sha256"]


def test_owner_names_come_from_the_nodes_own_passwd(tmp_path: Path, kubeadm_pki: Path) -> None:
    data = collect(build_master(tmp_path, kubeadm_pki, hardened=True))
    assert data["files"]["/var/lib/etcd"]["owner"] == "etcd"
    assert data["files"]["/var/lib/etcd"]["group"] == "etcd"
    os.chown(tmp_path / "etc/kubernetes/admin.conf", 4242, 4243)
    data = collect(tmp_path)
    assert data["files"]["/etc/kubernetes/admin.conf"]["owner"] == "4242"
    assert data["files"]["/etc/kubernetes/admin.conf"]["group"] == "4243"
    # A partial copy of a node without /etc/passwd: id 0 is still root, the etcd user is a number.
    (tmp_path / "etc/passwd").unlink()
    (tmp_path / "etc/group").unlink()
    data = collect(tmp_path)
    assert data["files"]["/etc/kubernetes/scheduler.conf"]["owner"] == "root"
    assert data["files"]["/var/lib/etcd"]["owner"] == "996"


def test_kubelet_flags_come_from_the_systemd_dropin_and_env_files(tmp_path: Path, kubeadm_pki: Path) -> None:
    data = collect(build_worker(tmp_path, kubeadm_pki))
    assert data["roles"] == ["worker"]
    kubelet = data["components"]["kubelet"]
    assert kubelet["origin"] == "systemd"
    assert kubelet["unit_files"] == ["/usr/lib/systemd/system/kubelet.service",
                                     "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf"]
    assert kubelet["flags"]["config"] == "/var/lib/kubelet/config.yaml"
    assert kubelet["flags"]["kubeconfig"] == "/etc/kubernetes/kubelet.conf"
    assert kubelet["flags"]["container-runtime-endpoint"] == "unix:///var/run/containerd/containerd.sock"
    assert kubelet["locations"]["container-runtime-endpoint"] == {"file": "/var/lib/kubelet/kubeadm-flags.env",
                                                                  "line": 1}
    assert kubelet["config"]["authorization"]["mode"] == "Webhook"
    effective = kubelet["effective"]
    assert effective["anonymous_auth"]["value"] is False and effective["anonymous_auth"]["source"] == "config"
    assert effective["authorization_mode"]["line"] == 11  # "  mode: Webhook"
    # kubeadm writes "0s": the unset value, which the kubelet defaults to 4h.
    assert effective["streaming_connection_idle_timeout"] == {"value": "4h0m0s", "source": "default"}
    assert effective["read_only_port"] == {"value": 0, "source": "default"}
    # No version can be read from a worker's files: the default benchmark, said so.
    assert data["benchmark"] == "cis-1.9" and data["benchmark_source"].startswith("default")


def test_kubelet_flags_override_the_config_file(tmp_path: Path, kubeadm_pki: Path) -> None:
    data = collect(build_worker(tmp_path, kubeadm_pki,
                                kubelet_extra_args="--anonymous-auth=true --read-only-port=10255 "
                                                   "--streaming-connection-idle-timeout=0"))
    effective = data["components"]["kubelet"]["effective"]
    assert effective["anonymous_auth"] == {"value": "true", "source": "flag", "flag": "anonymous-auth",
                                           "file": "/etc/default/kubelet", "line": 1}
    assert effective["read_only_port"]["value"] == "10255"
    assert effective["streaming_connection_idle_timeout"]["value"] == "0"
    assert effective["authorization_mode"]["source"] == "config"


def test_a_kubelet_without_config_file_keeps_the_legacy_defaults(tmp_path: Path, kubeadm_pki: Path) -> None:
    build_worker(tmp_path, kubeadm_pki)
    (tmp_path / "var/lib/kubelet/config.yaml").unlink()
    _write(tmp_path, "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf",
           KUBEADM_DROPIN.replace("--config=/var/lib/kubelet/config.yaml", ""), 0o644)
    effective = collect(tmp_path)["components"]["kubelet"]["effective"]
    assert effective["anonymous_auth"] == {"value": True, "source": "default"}
    assert effective["authorization_mode"] == {"value": "AlwaysAllow", "source": "default"}
    assert effective["read_only_port"] == {"value": 10255, "source": "default"}


def test_etc_dropin_hides_the_packaged_one_of_the_same_name(tmp_path: Path, kubeadm_pki: Path) -> None:
    build_worker(tmp_path, kubeadm_pki)
    _write(tmp_path, "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
           KUBEADM_DROPIN.replace("/var/lib/kubelet/config.yaml", "/etc/kubernetes/kubelet-config.yaml"))
    _write(tmp_path, "/etc/kubernetes/kubelet-config.yaml",
           KUBELET_CONFIG.replace("mode: Webhook", "mode: AlwaysAllow"))
    kubelet = collect(tmp_path)["components"]["kubelet"]
    assert kubelet["unit_files"][-1] == "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf"
    assert kubelet["config_path"] == "/etc/kubernetes/kubelet-config.yaml"
    assert kubelet["effective"]["authorization_mode"]["value"] == "AlwaysAllow"


def test_role_and_benchmark_can_be_forced(tmp_path: Path, kubeadm_pki: Path) -> None:
    build_master(tmp_path, kubeadm_pki)
    data = collect(tmp_path, role="worker", benchmark="cis-1.11")
    assert data["roles"] == ["worker"] and data["detected_roles"] == ["master", "etcd", "worker"]
    assert data["benchmark"] == "cis-1.11" and data["benchmark_source"] == "forced"
    with pytest.raises(MoatError, match=r"--benchmark cis-2\.0"):
        collect_node(NodeOptions(root=str(tmp_path), benchmark="cis-2.0"))
    with pytest.raises(MoatError, match="--root"):
        collect_node(NodeOptions(root=str(tmp_path / "missing")))


@pytest.mark.parametrize(("version", "benchmark"), [
    ("v1.26.15", "cis-1.8"), ("v1.27.0", "cis-1.9"), ("v1.29.3", "cis-1.9"), ("v1.30.1", "cis-1.10"),
    ("v1.31.0", "cis-1.10"), ("v1.32.2", "cis-1.11"), ("v1.33.0", "cis-1.12"), ("v1.40.0", "cis-1.12"),
    ("v1.24.0", "cis-1.8"),
])
def test_benchmark_follows_the_kubernetes_version(tmp_path: Path, kubeadm_pki: Path, version: str,
                                                  benchmark: str) -> None:
    data = collect(build_master(tmp_path, kubeadm_pki, version=version))
    assert data["benchmark"] == benchmark
    assert data["benchmark_source"] == f"Kubernetes {version[1:]}"


def test_version_and_flag_parsing() -> None:
    assert version_from_image("registry.k8s.io/kube-apiserver:v1.29.3") == "1.29.3"
    assert version_from_image("localhost:5000/kube-apiserver") is None
    assert version_from_image("registry.k8s.io/kube-apiserver:v1.30.0@sha256:abcd") == "1.30.0"
    assert benchmark_for_version(None) == "cis-1.9"
    assert parse_flags(["--a=1", "--b", "2", "--c", "--d=x=y", "--a=3"]) == {"a": "3", "b": "2", "c": "true",
                                                                            "d": "x=y"}


def test_symlinks_never_leave_the_root(tmp_path: Path, kubeadm_pki: Path) -> None:
    root = tmp_path / "node"
    build_worker(root, kubeadm_pki)
    outside = tmp_path / "outside.yaml"
    outside.write_text(KUBELET_CONFIG.replace("mode: Webhook", "mode: AlwaysAllow"))
    config = root / "var/lib/kubelet/config.yaml"
    config.unlink()
    config.symlink_to("../../../../outside.yaml")  # climbs above the root: stops at the root
    fs = NodeFS(root)
    assert fs.resolve("/var/lib/kubelet/config.yaml") == root / "outside.yaml"
    assert fs.read_text("/var/lib/kubelet/config.yaml") is None
    config.unlink()
    config.symlink_to(str(outside))  # absolute: read as a path inside the root
    assert fs.read_text("/var/lib/kubelet/config.yaml") is None
    (root / "etc/kubernetes/real.yaml").write_text(KUBELET_CONFIG)
    config.unlink()
    config.symlink_to("/etc/kubernetes/real.yaml")
    kubelet = collect(root)["components"]["kubelet"]
    assert kubelet["config"]["kind"] == "KubeletConfiguration"
    loop = root / "etc/kubernetes/loop"
    loop.symlink_to("loop")
    assert fs.resolve("/etc/kubernetes/loop") is None


def test_hostile_manifest_is_a_warning_naming_the_file(tmp_path: Path, kubeadm_pki: Path) -> None:
    build_master(tmp_path, kubeadm_pki)
    bomb = "a: &a [" + ",".join(["x"] * 50) + "]\n"
    for index in range(1, 8):
        bomb += f"{chr(97 + index)}: &{chr(97 + index)} [" + ",".join([f"*{chr(96 + index)}"] * 50) + "]\n"
    (tmp_path / "etc/kubernetes/manifests/bomb.yaml").write_text(bomb)
    (tmp_path / "etc/kubernetes/manifests/broken.yaml").write_text("kind: Pod\nspec: [\n")
    scan = collect_node(NodeOptions(root=str(tmp_path), processes=False))
    assert any("bomb.yaml" in warning and "alias" in warning for warning in scan.warnings)
    assert any("broken.yaml" in warning and "invalid YAML" in warning for warning in scan.warnings)
    assert "apiserver" in scan.document.data["components"]


def test_oversized_config_is_a_warning_not_a_read(tmp_path: Path, kubeadm_pki: Path) -> None:
    build_worker(tmp_path, kubeadm_pki)
    with open(tmp_path / "var/lib/kubelet/config.yaml", "a") as handle:
        handle.write("# padding\n" * 500_000)
    scan = collect_node(NodeOptions(root=str(tmp_path), processes=False))
    assert any("/var/lib/kubelet/config.yaml" in w and "larger than" in w for w in scan.warnings)
    assert scan.document.data["components"]["kubelet"]["config"] is None


def test_running_processes_win_over_manifests(tmp_path: Path, kubeadm_pki: Path) -> None:
    """A real process whose command line is an API server's (argv[0] ``kube-apiserver``), read from /proc,
    running in its own root as a static Pod's container does."""
    build_master(tmp_path, kubeadm_pki)
    pod_root = tmp_path / "pod"  # the container's own root: files the API server names are read there
    _write(pod_root, "/etc/kubernetes/enc/enc.yaml", ENCRYPTION_CONFIG)
    code = f"import os, time; os.chroot({str(pod_root)!r}); time.sleep(60)"
    argv = ["kube-apiserver", "-c", code, "--profiling=false", "--authorization-mode=RBAC",
            "--encryption-provider-config=/etc/kubernetes/enc/enc.yaml"]
    process = subprocess.Popen(argv, executable=sys.executable)
    try:
        deadline = time.monotonic() + 10
        while os.readlink(f"/proc/{process.pid}/root") != str(pod_root):
            assert time.monotonic() < deadline, "the stand-in process did not start"
            time.sleep(0.01)
        scan = collect_node(NodeOptions(root=str(tmp_path), processes=True))
    finally:
        process.kill()
        process.wait()
    apiserver = scan.document.data["components"]["apiserver"]
    assert apiserver["origin"] == "process" and apiserver["pid"] == process.pid
    assert apiserver["flags"]["authorization-mode"] == "RBAC" and apiserver["flags"]["profiling"] == "false"
    assert apiserver["manifest"] == "/etc/kubernetes/manifests/kube-apiserver.yaml"
    assert apiserver["version"] == "1.29.3"
    assert apiserver["encryption_config"]["data"]["kind"] == "EncryptionConfiguration"
    assert scan.document.data["components"]["scheduler"]["origin"] == "manifest"


def test_pki_walk_does_not_follow_linked_directories(tmp_path: Path, kubeadm_pki: Path) -> None:
    build_master(tmp_path, kubeadm_pki)
    (tmp_path / "etc/kubernetes/pki/etcd/loop").symlink_to("..")
    (tmp_path / "etc/kubernetes/pki/host-ssl").symlink_to("/etc/kubernetes/manifests")
    data = collect(tmp_path)
    pki = data["paths"]["pki"]
    assert "/etc/kubernetes/pki/etcd/loop" in pki and "/etc/kubernetes/pki/host-ssl" in pki
    assert not any(path.startswith(("/etc/kubernetes/pki/etcd/loop/", "/etc/kubernetes/pki/host-ssl/"))
                   for path in pki)
    assert len(pki) == len(set(pki)) == 2 + 2 * len(PKI_PAIRS) + 2 + 2  # dirs, pairs, sa pair, two links


def test_debian_etcd_member_is_read_from_its_unit_and_defaults(tmp_path: Path) -> None:
    data = collect(build_debian_etcd(tmp_path, daemon_args="--auto-tls=false"))
    assert data["roles"] == ["etcd"]
    etcd = data["components"]["etcd"]
    assert etcd["origin"] == "systemd" and etcd["source"] == "/lib/systemd/system/etcd.service"
    assert etcd["flags"]["name"] == "etcd1"  # %H
    assert etcd["flags"]["data-dir"] == "/var/lib/etcd/default"
    assert etcd["flags"]["client-cert-auth"] == "true"
    assert etcd["flags"]["auto-tls"] == "false"
    assert etcd["locations"]["cert-file"] == {"file": "/etc/default/etcd", "line": 8}
    assert etcd["locations"]["auto-tls"] == {"file": "/etc/default/etcd", "line": 16}
    assert data["paths"]["etcd_data_dir"] == "/var/lib/etcd/default"
    assert data["files"]["/var/lib/etcd/default"]["owner"] == "etcd"


def test_etcd_process_environment_is_read_as_flags(tmp_path: Path) -> None:
    """A real process named etcd whose settings are ETCD_* variables, as Debian's unit starts it."""
    build_debian_etcd(tmp_path)
    argv = ["etcd", "-c", "import time; time.sleep(60)", "--peer-auto-tls=true"]
    env = {"PATH": os.environ.get("PATH", ""), "ETCD_CLIENT_CERT_AUTH": "false", "ETCD_PEER_AUTO_TLS": "false",
           "ETCD_DATA_DIR": "/srv/etcd", "SECRET_TOKEN": "not kept"}
    process = subprocess.Popen(argv, executable=sys.executable, env=env)
    try:
        deadline = time.monotonic() + 10
        while Path(f"/proc/{process.pid}/cmdline").read_bytes().split(b"\0")[0] != b"etcd":
            assert time.monotonic() < deadline, "the stand-in process did not start"
            time.sleep(0.01)
        scan = collect_node(NodeOptions(root=str(tmp_path), processes=True))
    finally:
        process.kill()
        process.wait()
    etcd = scan.document.data["components"]["etcd"]
    assert etcd.get("pid") == process.pid, f"another etcd process was read: {etcd.get('argv')}"
    assert etcd["flags"]["client-cert-auth"] == "false"
    assert etcd["flags"]["peer-auto-tls"] == "true"  # the flag wins over ETCD_PEER_AUTO_TLS
    assert etcd["flags"]["data-dir"] == "/srv/etcd"
    assert "SECRET_TOKEN" not in etcd["env"]


def test_a_forced_role_without_its_components_is_said(tmp_path: Path, kubeadm_pki: Path) -> None:
    build_worker(tmp_path, kubeadm_pki)
    scan = collect_node(NodeOptions(root=str(tmp_path), role="master", processes=False))
    assert scan.document.data["roles"] == ["master"]
    missing = [w for w in scan.warnings if "role master but no" in w]
    assert [w.split(" but no ")[1].split()[0] for w in missing] == ["kube-apiserver", "kube-controller-manager",
                                                                    "kube-scheduler"]
    build_master(tmp_path / "cp", kubeadm_pki)
    (tmp_path / "cp/etc/kubernetes/manifests/kube-scheduler.yaml").unlink()
    scan = collect_node(NodeOptions(root=str(tmp_path / "cp"), processes=False))
    assert [w for w in scan.warnings if "but no" in w] == [
        f"{tmp_path / 'cp'}: role master but no kube-scheduler manifest, process or unit found: the items about its "
        "flags find nothing to fail"]
