"""MOAT-SEC rules on real files: a Dockerfile, Kubernetes manifests, a compose file (read by ``moat
config``'s own collector and parsers) and the config of a real image built with umoci.

The credentials are generated per run in each vendor's documented shape (none is real); every test
also checks that no finding repeats one.
"""

from __future__ import annotations

import base64
import json
import secrets
import string
import subprocess
import sys
from pathlib import Path

import pytest

from moat.checks.collect import collect
from moat.checks.engine import evaluate
from moat.checks.rule import Rule, builtin_rules
from moat.model import Misconfiguration

ALNUM = string.ascii_letters + string.digits


def rand(length: int, alphabet: str = ALNUM) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def sec_rules() -> list[Rule]:
    return [item for rid, item in sorted(builtin_rules().items()) if rid.startswith("MOAT-SEC-")]


def run_config(tmp_path: Path, files: dict[str, str]) -> list[Misconfiguration]:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    collected = collect([str(tmp_path)])
    return evaluate(collected.documents, sec_rules()).findings


def summary(findings: list[Misconfiguration]) -> set[tuple[str, int]]:
    return {(f.rule_id, f.line) for f in findings}


def assert_not_leaked(findings: list[Misconfiguration], *values: str) -> None:
    rendered = json.dumps([f.to_dict() for f in findings])
    for value in values:
        assert value not in rendered


# --------------------------------------------------------------------------------------------- Dockerfile


def test_dockerfile_secrets_in_run_env_heredoc_and_copied_key_files(tmp_path: Path) -> None:
    npm = f"npm_{rand(36)}"
    glpat = f"glpat-{rand(20)}"
    password = f"Zx9!{rand(6)}#Rt7"
    dockerfile = f"""\
# syntax=docker/dockerfile:1
FROM node:20-bookworm AS build
ARG NPM_TOKEN
WORKDIR /app
COPY package.json package-lock.json ./
RUN echo "//registry.npmjs.org/:_authToken={npm}" > ~/.npmrc && \\
    npm ci
COPY id_rsa /root/.ssh/id_rsa
RUN <<EOF
set -e
git clone https://ci:{glpat}@gitlab.internal/shop/assets.git /assets
EOF

FROM python:3.12-slim
ENV DB_PASSWORD={password}
ENV POSTGRES_PASSWORD=postgres
COPY --from=build /app /app
COPY deploy/.env /app/.env
"""
    findings = run_config(tmp_path, {"Dockerfile": dockerfile})
    assert summary(findings) == {
        ("MOAT-SEC-002", 3),   # ARG NPM_TOKEN
        ("MOAT-SEC-001", 6),   # npm token in RUN
        ("MOAT-SEC-003", 8),   # COPY id_rsa
        ("MOAT-SEC-001", 11),  # GitLab token inside the heredoc, on its own line
        ("MOAT-SEC-001", 15),  # ENV DB_PASSWORD
        ("MOAT-SEC-002", 16),  # ENV POSTGRES_PASSWORD=postgres: a word, but the name says password
        ("MOAT-SEC-003", 18),  # COPY deploy/.env
    }
    by_line = {(f.rule_id, f.line): f for f in findings}
    assert "npm access token" in by_line[("MOAT-SEC-001", 6)].message.lower()
    assert "GitLab" in by_line[("MOAT-SEC-001", 11)].message
    assert {"cis-docker-1.6:4.10", "nist-800-190:4.1.4"} <= set(by_line[("MOAT-SEC-001", 6)].controls)
    assert by_line[("MOAT-SEC-002", 16)].evidence == "ENV POSTGRES_PASSWORD=po******"
    assert_not_leaked(findings, npm, glpat, password, npm[4:], glpat[6:])


def test_dockerfile_without_credentials_is_quiet(tmp_path: Path) -> None:
    dockerfile = """\
FROM python:3.12-slim
ENV GPG_KEY=A035C8C19219BA821ECEA86B64E628F8D684696D
ARG PASSWORD_FILE=/run/secrets/db_password
ARG TOKEN_URL=https://auth.internal/oauth/token
ENV DB_PASSWORD=${DB_PASSWORD}
RUN --mount=type=secret,id=npm_token NPM_TOKEN=$(cat /run/secrets/npm_token) npm ci
RUN --mount=type=ssh git clone git@github.com:shop/app.git /app
COPY --from=build /root/.ssh/known_hosts /etc/ssh/ssh_known_hosts
COPY requirements.txt /app/
USER 10001
"""
    assert run_config(tmp_path, {"Dockerfile": dockerfile}) == []


# --------------------------------------------------------------------------------------------- Kubernetes


def _rsa_key() -> str:
    return subprocess.run(["openssl", "genrsa", "-traditional", "2048"], capture_output=True, text=True,
                          check=True).stdout


def test_kubernetes_env_args_secrets_and_configmaps(tmp_path: Path) -> None:
    github = f"ghp_{rand(36)}"
    db_url_password = rand(12)
    key = _rsa_key()
    weak = "hunter2"
    properties_password = f"s3cr{rand(6)}!9"
    manifests = f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  template:
    spec:
      containers:
        - name: web
          image: registry.internal/shop/web:1.4.2
          args:
            - --db-url=postgres://app:{db_url_password}9@db.shop.svc:5432/shop
          env:
            - name: GITHUB_TOKEN
              value: {github}
            - name: DB_PASSWORD
              value: {weak}
            - name: API_TOKEN
              valueFrom:
                secretKeyRef: {{name: api, key: token}}
            - name: LOG_LEVEL
              value: info
---
apiVersion: v1
kind: Secret
metadata:
  name: tls
  namespace: shop
type: Opaque
data:
  tls.key: {base64.b64encode(key.encode()).decode()}
  password: {base64.b64encode(weak.encode()).decode()}
  username: {base64.b64encode(b"app").decode()}
stringData:
  token: "{github}"
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: app-config
  namespace: shop
data:
  application.properties: |
    spring.datasource.url=jdbc:postgresql://db:5432/shop
    spring.datasource.password={properties_password}
  LOG_LEVEL: debug
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: plain
data:
  feature.flags: "checkout=true"
"""
    findings = run_config(tmp_path, {"app.yaml": manifests})
    assert summary(findings) == {
        ("MOAT-SEC-020", 13),  # args: password in the database URL
        ("MOAT-SEC-020", 16),  # GITHUB_TOKEN value
        ("MOAT-SEC-021", 18),  # DB_PASSWORD: hunter2 (too weak for the detector, named a password)
        ("MOAT-SEC-030", 32),  # tls.key decodes to a PEM private key
        ("MOAT-SEC-030", 33),  # password: base64 of hunter2
        ("MOAT-SEC-030", 36),  # stringData token
        ("MOAT-SEC-031", 46),  # the password line inside the ConfigMap's application.properties block
    }
    containers = {f.container for f in findings if f.rule_id.startswith("MOAT-SEC-02")}
    assert containers == {"web"}
    objects = {f.object for f in findings}
    assert objects == {"shop/Deployment/web", "shop/Secret/tls", "shop/ConfigMap/app-config"}
    configmap = next(f for f in findings if f.rule_id == "MOAT-SEC-031")
    assert "KSV-0109" in configmap.aliases and "C-0012" in configmap.aliases
    key_lines = [line for line in key.splitlines() if not line.startswith("-----")]
    assert_not_leaked(findings, github, github[4:], db_url_password, weak, properties_password, *key_lines)


# --------------------------------------------------------------------------------------------- compose


def test_compose_environment_and_build_args(tmp_path: Path) -> None:
    stripe = f"sk_live_{rand(24)}"
    slack = f"xoxb-{rand(12, string.digits)}-{rand(13, string.digits)}-{rand(24)}"
    compose = f"""\
services:
  shop:
    image: registry.internal/shop/web:1.4.2
    build:
      context: .
      args:
        SLACK_TOKEN: {slack}
    environment:
      - STRIPE_KEY={stripe}
      - LOG_LEVEL=info
      - DB_PASSWORD=${{DB_PASSWORD}}
  worker:
    image: registry.internal/shop/worker:1.4.2
    environment:
      QUEUE_URL: amqp://shop:{rand(10)}7x@rabbit:5672/
      CONCURRENCY: "4"
"""
    findings = run_config(tmp_path, {"compose.yaml": compose})
    assert {(f.rule_id, f.line, f.container) for f in findings} == {
        ("MOAT-SEC-040", 7, "shop"),
        ("MOAT-SEC-040", 9, "shop"),
        ("MOAT-SEC-040", 15, "worker"),
    }
    assert_not_leaked(findings, stripe, slack, stripe[8:])


# --------------------------------------------------------------------------------------------- image config


@pytest.mark.images
def test_image_config_env_labels_and_history_of_a_real_image() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "secrets"))
    from fixtures.secret_image import secret_image
    from moat.checks.targets.image_config import image_config_document
    from moat.inventory.target import ScanSettings, inventory_target

    image = secret_image()
    inv = inventory_target(image.target("oci-dir"), settings=ScanSettings(use_cache=False))
    findings = evaluate([image_config_document(inv, "secrets:test")], sec_rules()).findings
    assert sorted(f.message for f in findings) == [
        "build step 3 of the history holds a credential (npm access token)",
        "environment variable VAULT_TOKEN holds a credential (HashiCorp Vault token)",
        "label alerts.webhook holds a credential (Slack incoming webhook URL)",
    ]
    assert all(f.rule_id == "MOAT-SEC-010" and "cis-docker-1.6:4.10" in f.controls for f in findings)
    facts = image.facts
    assert_not_leaked(findings, facts["npm_token"], facts["vault_token"], facts["slack_webhook"],
                      facts["npm_token"][4:], facts["vault_token"][4:])


@pytest.mark.images
def test_image_config_of_the_debian_test_image_is_clean() -> None:
    from fixtures import images
    from moat.checks.targets.image_config import image_config_document
    from moat.inventory.target import ScanSettings, inventory_target

    debian = images.debian_image()
    inv = inventory_target(debian.target("oci-dir"), settings=ScanSettings(use_cache=False))
    assert evaluate([image_config_document(inv, "debian")], sec_rules()).findings == []


# --------------------------------------------------------------------------------------------- metadata


def test_every_sec_rule_is_complete_and_mapped() -> None:
    rules = sec_rules()
    assert [item.id for item in rules] == ["MOAT-SEC-001", "MOAT-SEC-002", "MOAT-SEC-003", "MOAT-SEC-010",
                                           "MOAT-SEC-020", "MOAT-SEC-021", "MOAT-SEC-030", "MOAT-SEC-031",
                                           "MOAT-SEC-040"]
    for item in rules:
        assert item.references and all(ref.startswith("https://") for ref in item.references)
        assert "nist-800-190:4.1.4" in item.controls
        docker_side = {"dockerfile", "image-config", "compose"} & set(item.targets)
        assert ("cis-docker-1.6:4.10" in item.controls) == bool(docker_side)
        if "kubernetes" in item.targets:
            assert "nsa-cisa-k8s:secrets" in item.controls
        assert "`" in item.remediation  # a concrete example to copy


def test_configmap_credentials_by_name(tmp_path: Path) -> None:
    manifests = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: redis
data:
  password: supersecret
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: worker
data:
  worker.env: |
    QUEUE=orders
    export REDIS_PASSWORD=abcd1234
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: quiet
data:
  config: REDIS_PASSWORD=
  env: REDIS_PASSWORD=${REDIS_PASSWORD}
  password_file: /run/secrets/redis
"""
    findings = run_config(tmp_path, {"redis.yaml": manifests})
    assert {(f.rule_id, f.object, f.line) for f in findings} == {
        ("MOAT-SEC-031", "ConfigMap/redis", 6),
        ("MOAT-SEC-031", "ConfigMap/worker", 15),
    }
    assert_not_leaked(findings, "supersecret", "abcd1234")


def test_registry_pull_secret_with_credentials(tmp_path: Path) -> None:
    password = rand(20)
    auth = base64.b64encode(f"ci:{password}".encode()).decode()
    config = json.dumps({"auths": {"registry.internal": {"auth": auth}}})
    manifest = f"""\
apiVersion: v1
kind: Secret
metadata:
  name: pull
type: kubernetes.io/dockerconfigjson
data:
  .dockerconfigjson: {base64.b64encode(config.encode()).decode()}
"""
    findings = run_config(tmp_path, {"pull.yaml": manifest})
    assert [(f.rule_id, f.line, f.message) for f in findings] == [
        ("MOAT-SEC-030", 7,
         "Secret key .dockerconfigjson holds a credential (Registry credentials in a Docker config.json)")
    ]
    assert_not_leaked(findings, password, auth[4:])
