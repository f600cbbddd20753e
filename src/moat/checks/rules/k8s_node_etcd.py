"""CIS Kubernetes Benchmark 1.9, section 2 (etcd): ``MOAT-KN-080`` … ``MOAT-KN-086``, for nodes with the
``etcd`` role. Flags come from etcd's static Pod manifest (command, args and ``ETCD_*`` variables) or
its running process."""

from __future__ import annotations

from collections.abc import Iterator

from moat.checks.document import Document
from moat.checks.rule import CheckFunction, Hit, RuleContext
from moat.checks.rules.k8s_node import (
    ETCD_CONFIG_DOC,
    ETCD_DOC,
    component,
    facts_of,
    flag,
    flag_equals,
    flag_hit,
    flag_not_value,
    flags_set,
    node_rule,
)

ETCD = "etcd"
_PS = "Run `ps -ef | grep etcd` on the etcd node (or read /etc/kubernetes/manifests/etcd.yaml)"
_EDIT = "In /etc/kubernetes/manifests/etcd.yaml (or etcd's own configuration), set"


def _etcd(n: int, cis: str, title: str, severity: str, check: CheckFunction, description: str, remediation: str,
          verification: str, kcv: list[int], ks: list[int]) -> None:
    node_rule(id=f"MOAT-KN-{n:03d}", cis=cis, title=title, severity=severity, role=ETCD, description=description,
              remediation=remediation, verification=verification, references=[ETCD_DOC, ETCD_CONFIG_DOC], kcv=kcv,
              kubescape=ks)(check)


_etcd(80, "2.1", "Ensure that the --cert-file and --key-file arguments are set as appropriate", "HIGH",
      flags_set("etcd", "cert-file", "key-file"),
      "Without a serving certificate etcd speaks plain HTTP to its clients: the whole cluster state, Secrets "
      "included, crosses the network in clear.",
      f"{_EDIT} `- --cert-file=/etc/kubernetes/pki/etcd/server.crt` and "
      "`- --key-file=/etc/kubernetes/pki/etcd/server.key`, with https:// in --listen-client-urls.",
      f"{_PS}: --cert-file and --key-file are both present.", [42], [153])
_etcd(81, "2.2", "Ensure that the --client-cert-auth argument is set to true", "CRITICAL",
      flag_equals("etcd", "client-cert-auth", "true", "false"),
      "Without client certificate authentication anyone who reaches etcd's client port reads and writes every "
      "object of the cluster, bypassing RBAC and admission entirely.",
      f"{_EDIT} `- --client-cert-auth=true` and `- --trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt`.",
      f"{_PS}: --client-cert-auth=true is present.", [43], [154])
_etcd(82, "2.3", "Ensure that the --auto-tls argument is not set to true", "HIGH",
      flag_not_value("etcd", "auto-tls", "true"),
      "--auto-tls makes etcd serve clients with a self-signed certificate nobody can verify, which invites "
      "man-in-the-middle attacks.", f"{_EDIT} no `--auto-tls=true`: remove it and configure --cert-file/--key-file.",
      f"{_PS}: --auto-tls is absent or false.", [44], [155])
_etcd(83, "2.4", "Ensure that the --peer-cert-file and --peer-key-file arguments are set as appropriate", "HIGH",
      flags_set("etcd", "peer-cert-file", "peer-key-file"),
      "Without peer certificates etcd members replicate the cluster state to each other in clear (the item does "
      "not matter for a single-member etcd, but kubeadm sets it there too).",
      f"{_EDIT} `- --peer-cert-file=/etc/kubernetes/pki/etcd/peer.crt` and "
      "`- --peer-key-file=/etc/kubernetes/pki/etcd/peer.key`.",
      f"{_PS}: --peer-cert-file and --peer-key-file are both present.", [45], [156])
_etcd(84, "2.5", "Ensure that the --peer-client-cert-auth argument is set to true", "HIGH",
      flag_equals("etcd", "peer-client-cert-auth", "true", "false"),
      "Without peer client authentication any host that reaches the peer port can join the etcd cluster and "
      "receive a full copy of its data.",
      f"{_EDIT} `- --peer-client-cert-auth=true` and `- --peer-trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt`.",
      f"{_PS}: --peer-client-cert-auth=true is present.", [46], [157])
_etcd(85, "2.6", "Ensure that the --peer-auto-tls argument is not set to true", "HIGH",
      flag_not_value("etcd", "peer-auto-tls", "true"),
      "--peer-auto-tls makes members use self-signed peer certificates, so a member cannot tell a peer from an "
      "impostor.", f"{_EDIT} no `--peer-auto-tls=true`: remove it and configure --peer-cert-file/--peer-key-file.",
      f"{_PS}: --peer-auto-tls is absent or false.", [47], [158])


def _unique_ca(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    """Compares etcd's --trusted-ca-file with the API server's --client-ca-file, by path and by content
    (a copy of the cluster CA under another name is the same CA). Needs both on this node."""
    if component(doc, "etcd") is None or component(doc, "apiserver") is None:
        return
    etcd_ca = flag(doc, "etcd", "trusted-ca-file")
    cluster_ca = flag(doc, "apiserver", "client-ca-file")
    if not etcd_ca:
        yield flag_hit(doc, "etcd", "trusted-ca-file", "etcd does not set --trusted-ca-file, so it has no CA of its "
                       "own for client certificates", "--trusted-ca-file absent")
        return
    if not cluster_ca:
        return
    if etcd_ca == cluster_ca:
        yield flag_hit(doc, "etcd", "trusted-ca-file", f"etcd trusts {etcd_ca}, the same CA the API server uses for "
                       "client certificates", f"--trusted-ca-file={etcd_ca}")
        return
    etcd_digest = facts_of(doc, etcd_ca).get("sha256")
    cluster_digest = facts_of(doc, cluster_ca).get("sha256")
    if etcd_digest and etcd_digest == cluster_digest:
        yield flag_hit(doc, "etcd", "trusted-ca-file", f"etcd's CA {etcd_ca} is a copy of the API server's client CA "
                       f"{cluster_ca}", f"sha256 {etcd_digest[:16]}… of both")


_etcd(86, "2.7", "Ensure that a unique Certificate Authority is used for etcd", "HIGH", _unique_ca,
      "When etcd trusts the cluster CA, every client certificate that CA signed (every kubelet, every user "
      "certificate) is also accepted by etcd, which then serves the raw cluster state to any of them.",
      "Give etcd its own CA (kubeadm does: /etc/kubernetes/pki/etcd/ca.crt) and set "
      "`- --trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt`; sign only the API server's etcd client "
      "certificate with it.",
      f"{_PS}: compare --trusted-ca-file with the API server's --client-ca-file: different files "
      "(`sha256sum` of both differs).", [], [159])
