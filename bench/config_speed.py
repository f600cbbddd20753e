"""How fast ``moat config`` checks a repository of 1,000 Kubernetes manifests, next to Checkov.

The manifests are generated (seeded, so every run checks the same tree) to look like a real platform
repository: per application a Deployment, StatefulSet, DaemonSet or CronJob with one to three
containers, a Service, a ConfigMap, often a ServiceAccount with a Role and RoleBinding, sometimes an
Ingress, a NetworkPolicy or a HorizontalPodAutoscaler; some applications keep everything in one
multi-document file, others one file per object; a few cluster-wide ClusterRoles and bindings. Security
settings vary the way they do in real repositories (most containers hardened, some privileged, some
without limits, some on ``latest``), so the rules have findings to report, not just objects to walk.

Timed, each as its own process, wall clock, median of ``--runs`` (default 3):

* ``moat config DIR --format json -o FILE`` (every built-in rule for Dockerfiles, Kubernetes, compose)
* ``checkov -d DIR --framework kubernetes --skip-download -o json --quiet`` from its own venv in
  ``.cache/bench/checkov-venv`` (created on first use by ``bench/config_compare.py``'s helper)

Goal for Moat: under 5 s.

    .venv/bin/python bench/config_speed.py [--files 1000] [--runs 3] [--no-checkov] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
MOAT = Path(sys.executable).parent / "moat"
sys.path.insert(0, str(Path(__file__).resolve().parent))

from config_compare import ensure_checkov  # noqa: E402

IMAGES = ["nginx:1.27.2", "redis:7.4", "postgres:16.4", "ghcr.io/acme/api:2.3.1", "ghcr.io/acme/worker:latest",
          "registry.example.com/payments/gateway@sha256:" + "ab" * 32, "python:3.12-slim", "busybox"]
TEAMS = ["payments", "search", "identity", "platform", "data", "web", "mobile", "ml"]


def container(rng: random.Random, name: str) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": name,
        "image": rng.choice(IMAGES),
        "ports": [{"containerPort": rng.choice([80, 8080, 8443, 9090, 5432]), "name": "http"}],
        "env": [{"name": "LOG_LEVEL", "value": rng.choice(["info", "debug"])},
                {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": f"{name}-db", "key": "password"}}}],
    }
    roll = rng.random()
    if roll < 0.6:
        spec["securityContext"] = {"runAsNonRoot": True, "runAsUser": 10001, "allowPrivilegeEscalation": False,
                                   "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]},
                                   "seccompProfile": {"type": "RuntimeDefault"}}
    elif roll < 0.7:
        spec["securityContext"] = {"privileged": True, "capabilities": {"add": ["SYS_ADMIN", "NET_ADMIN"]}}
    elif roll < 0.85:
        spec["securityContext"] = {"allowPrivilegeEscalation": True}
    if rng.random() < 0.8:
        spec["resources"] = {"requests": {"cpu": "100m", "memory": "128Mi"},
                             "limits": {"cpu": "500m", "memory": "512Mi"}}
    if rng.random() < 0.7:
        spec["livenessProbe"] = {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10}
        spec["readinessProbe"] = {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 5}
    return spec


def pod_spec(rng: random.Random, app: str) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "serviceAccountName": app,
        "containers": [container(rng, app if i == 0 else f"{app}-sidecar{i}") for i in range(rng.randint(1, 3))],
    }
    if rng.random() < 0.1:
        spec["hostNetwork"] = True
    if rng.random() < 0.05:
        spec["hostPID"] = True
    if rng.random() < 0.1:
        spec["volumes"] = [{"name": "docker", "hostPath": {"path": "/var/run/docker.sock"}}]
        spec["containers"][0]["volumeMounts"] = [{"name": "docker", "mountPath": "/var/run/docker.sock"}]
    if rng.random() < 0.3:
        spec["automountServiceAccountToken"] = False
    return spec


def workload(rng: random.Random, app: str, namespace: str) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": app, "app.kubernetes.io/part-of": namespace}
    meta = {"name": app, "namespace": namespace, "labels": labels}
    template = {"metadata": {"labels": labels}, "spec": pod_spec(rng, app)}
    kind = rng.choices(["Deployment", "StatefulSet", "DaemonSet", "CronJob"], weights=[70, 12, 8, 10])[0]
    if kind == "CronJob":
        template["spec"]["restartPolicy"] = "OnFailure"
        return {"apiVersion": "batch/v1", "kind": kind, "metadata": meta,
                "spec": {"schedule": "*/15 * * * *", "jobTemplate": {"spec": {"template": template}}}}
    spec: dict[str, Any] = {"selector": {"matchLabels": labels}, "template": template}
    if kind != "DaemonSet":
        spec["replicas"] = rng.randint(1, 6)
    if kind == "StatefulSet":
        spec["serviceName"] = app
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": meta, "spec": spec}


def app_objects(rng: random.Random, app: str, namespace: str) -> list[dict[str, Any]]:
    labels = {"app.kubernetes.io/name": app}
    objects = [
        workload(rng, app, namespace),
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": app, "namespace": namespace},
         "spec": {"type": rng.choices(["ClusterIP", "NodePort", "LoadBalancer"], weights=[85, 10, 5])[0],
                  "selector": labels, "ports": [{"port": 80, "targetPort": "http"}]}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{app}-config", "namespace": namespace},
         "data": {"config.yaml": f"listen: :8080\nupstream: http://{app}-backend\nretries: 3\n",
                  "FEATURE_FLAGS": "search,checkout"}},
    ]
    if rng.random() < 0.7:
        objects += [
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": app, "namespace": namespace}},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
             "metadata": {"name": f"{app}-reader", "namespace": namespace},
             "rules": [{"apiGroups": [""], "resources": rng.choice([["configmaps"], ["secrets"], ["*"]]),
                        "verbs": rng.choice([["get", "list"], ["*"]])}]},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
             "metadata": {"name": f"{app}-reader", "namespace": namespace},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": f"{app}-reader"},
             "subjects": [{"kind": "ServiceAccount", "name": app, "namespace": namespace}]},
        ]
    if rng.random() < 0.3:
        objects.append({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                        "metadata": {"name": app, "namespace": namespace},
                        "spec": {"rules": [{"host": f"{app}.example.com", "http": {"paths": [
                            {"path": "/", "pathType": "Prefix",
                             "backend": {"service": {"name": app, "port": {"number": 80}}}}]}}]}})
    if rng.random() < 0.4:
        objects.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                        "metadata": {"name": f"{app}-ingress", "namespace": namespace},
                        "spec": {"podSelector": {"matchLabels": labels}, "policyTypes": ["Ingress"],
                                 "ingress": [{"from": [{"podSelector": {}}]}]}})
    if rng.random() < 0.2:
        objects.append({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                        "metadata": {"name": app, "namespace": namespace},
                        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": app},
                                 "minReplicas": 2, "maxReplicas": 10}})
    return objects


def generate(root: Path, files: int, seed: int = 1190) -> tuple[int, int]:
    """Write ``files`` manifest files under ``root``; returns (files, objects)."""
    rng = random.Random(seed)
    written = objects = 0
    cluster = root / "cluster"
    cluster.mkdir(parents=True)
    for index in range(10):
        role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": {"name": f"ops-{index}"},
                "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}] if index % 3 == 0 else
                [{"apiGroups": [""], "resources": ["nodes", "pods"], "verbs": ["get", "list", "watch"]}]}
        binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                   "metadata": {"name": f"ops-{index}"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": f"ops-{index}"},
                   "subjects": [{"kind": "Group", "name": f"team-{index}", "apiGroup": "rbac.authorization.k8s.io"}]}
        (cluster / f"ops-{index}.yaml").write_text(yaml.safe_dump_all([role, binding], sort_keys=False))
        written += 1
        objects += 2
    app_number = 0
    while written < files:
        team = TEAMS[app_number % len(TEAMS)]
        namespace = rng.choice([team, team, "default"])
        app = f"{team}-svc{app_number}"
        app_number += 1
        docs = app_objects(rng, app, namespace)
        folder = root / "apps" / team / app
        folder.mkdir(parents=True)
        if rng.random() < 0.5 or written + len(docs) > files:
            (folder / "all.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
            written += 1
        else:
            for doc in docs:
                (folder / f"{doc['kind'].lower()}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
                written += 1
        objects += len(docs)
    return written, objects


def timed(command: list[str], runs: int) -> tuple[list[float], subprocess.CompletedProcess[str]]:
    times = []
    done: subprocess.CompletedProcess[str] | None = None
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        times.append(time.perf_counter() - start)
    assert done is not None
    return times, done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-checkov", action="store_true")
    parser.add_argument("--work", help="generate into this directory and keep it")
    args = parser.parse_args()
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="moat-config-speed-"))
    try:
        if work.exists():
            shutil.rmtree(work)
        tree = work / "repo"
        files, objects = generate(tree, args.files)
        size = sum(p.stat().st_size for p in tree.rglob("*") if p.is_file())
        print(f"{files} manifest files, {objects} objects, {size / 1e6:.1f} MB under {tree}")
        out = work / "moat.json"
        times, done = timed([str(MOAT), "config", str(tree), "--format", "json", "-o", str(out)], args.runs)
        if done.returncode != 0:
            print(f"moat config failed ({done.returncode}): {done.stderr.strip()[:500]}")
            return
        report = json.loads(out.read_text())
        failures = sum(1 for f in report["misconfigurations"] if f["status"] == "FAIL")
        rules = sum(1 for c in report["checks"] if c["status"] != "NOT_APPLICABLE")
        print(f"{'tool':<9}{'median s':>10}{'min s':>8}{'max s':>8}   result")
        print(f"{'moat':<9}{statistics.median(times):>10.2f}{min(times):>8.2f}{max(times):>8.2f}   "
              f"{failures} failures from {rules} rules  (goal: < 5 s)")
        if not args.no_checkov:
            checkov = ensure_checkov()
            command = [str(checkov), "-d", str(tree), "--framework", "kubernetes", "--skip-download", "-o", "json",
                       "--quiet"]
            times, done = timed(command, args.runs)
            if done.returncode not in (0, 1):
                print(f"{'checkov':<9} failed ({done.returncode}): {done.stderr.strip().splitlines()[-1:]}")
                return
            output = json.loads(done.stdout) if done.stdout.strip() else []
            blocks = output if isinstance(output, list) else [output]
            failed = sum(len((b.get("results") or {}).get("failed_checks", [])) for b in blocks)
            print(f"{'checkov':<9}{statistics.median(times):>10.2f}{min(times):>8.2f}{max(times):>8.2f}   "
                  f"{failed} failed checks")
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
