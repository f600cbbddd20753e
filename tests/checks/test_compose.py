"""docker-compose files: recognising them, decoding short and long syntaxes, and the MOAT-CMP rules on
real compose files written the way people write them (anchors, merges, both spellings)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from moat.checks.collect import collect
from moat.checks.document import TargetKind
from moat.checks.engine import evaluate
from moat.checks.rule import builtin_rules
from moat.checks.rules.compose import image_tag
from moat.checks.targets.compose import looks_like_compose, memory_bytes, parse_port, parse_volume, services
from moat.checks.yamlload import load_yaml_documents
from moat.errors import MoatError
from moat.model import Misconfiguration

RISKY = """\
name: shop
x-hardening: &hardening
  read_only: true
  security_opt:
    - no-new-privileges:true
  pids_limit: 100
  mem_limit: 256m
  cpus: 0.5
  restart: on-failure:3

services:
  web:
    <<: *hardening
    image: registry.example.com/shop/web:1.4.2@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
    user: "10001:10001"
    ports:
      - "127.0.0.1:8080:8080"
    environment:
      - LOG_LEVEL=info
      - EMPTY
  admin:
    image: portainer/portainer-ce:latest
    privileged: true
    network_mode: host
    pid: host
    volumes:
      - /var/run/docker.sock:/var/run/docker.sock
      - type: bind
        source: /etc
        target: /host/etc
        read_only: true
      - data:/data
    cap_add: [SYS_ADMIN, NET_BIND_SERVICE]
    restart: always
    user: root
  worker:
    image: redis
    ipc: host
    security_opt:
      - seccomp=unconfined
      - apparmor:unconfined
      - no-new-privileges:false
    ports:
      - 80:6379
      - target: 6380
        published: "22"
        host_ip: 0.0.0.0
        protocol: tcp
    environment:
      REDIS_PASSWORD: null
      MODE: cluster
    deploy:
      resources:
        limits:
          memory: 0
          pids: 0
      restart_policy:
        condition: any
    devices:
      - /dev/sda:/dev/sda
    healthcheck:
      disable: true
volumes:
  data: {}
"""


@pytest.fixture()
def compose_file(tmp_path: Path) -> Path:
    path = tmp_path / "docker-compose.yml"
    path.write_text(RISKY)
    return path


def _run(path: Path) -> list[Misconfiguration]:
    collected = collect([str(path)])
    assert [doc.kind for doc in collected.documents] == [TargetKind.COMPOSE]
    return evaluate(collected.documents, list(builtin_rules().values())).findings


def _by_rule(findings: Sequence[Misconfiguration], rule_id: str) -> list[tuple[str, int, str]]:
    return sorted((f.container, f.line, f.message) for f in findings if f.rule_id == rule_id)


def test_recognises_compose_and_not_other_yaml() -> None:
    assert looks_like_compose({"services": {"web": {"image": "nginx"}}})
    assert looks_like_compose({"version": "3.8", "services": {"db": {"build": "."}, "cache": None}})
    assert not looks_like_compose({"services": ["a", "b"]})
    assert not looks_like_compose({"services": {"a": {"url": "http://x"}}})  # some other tool's config
    assert not looks_like_compose({"apiVersion": "v1", "kind": "Pod"})
    assert not looks_like_compose(["services"])


def test_document_is_the_file_with_lines(compose_file: Path) -> None:
    doc = collect([str(compose_file)]).documents[0]
    assert doc.name == "shop"  # the project name the file sets
    assert doc.path == str(compose_file)
    assert doc.line_of(("services", "admin", "privileged")) == 23
    decoded = {service.name: service for service in services(doc)}
    assert list(decoded) == ["web", "admin", "worker"]
    web = decoded["web"]
    # the x-hardening anchor merged in by <<, keys of the service itself kept
    assert web.get("read_only") is True and web.get("user") == "10001:10001"
    assert web.environment == {"LOG_LEVEL": ("info", ("services", "web", "environment", 0)),
                               "EMPTY": (None, ("services", "web", "environment", 1))}
    worker = decoded["worker"]
    assert worker.environment["REDIS_PASSWORD"][0] is None and worker.environment["MODE"][0] == "cluster"
    assert [(p.host_ip, p.published, p.target) for p in worker.ports] == [("", "80", "6379"), ("0.0.0.0", "22", "6380")]
    admin = decoded["admin"]
    assert [(m.type, m.source, m.target, m.read_only) for m in admin.mounts] == [
        ("bind", "/var/run/docker.sock", "/var/run/docker.sock", False),
        ("bind", "/etc", "/host/etc", True),
        ("volume", "data", "/data", False),
    ]


def test_a_file_without_a_project_name_is_named_after_the_file(tmp_path: Path) -> None:
    path = tmp_path / "compose.yaml"
    path.write_text("services:\n  app:\n    image: nginx:1.27\n")
    assert collect([str(path)]).documents[0].name == "compose.yaml"


def test_short_syntax_parsers() -> None:
    assert parse_port("3000") is not None and parse_port("3000").published == ""  # type: ignore[union-attr]
    port = parse_port("127.0.0.1:5000-5002:5000-5002/udp")
    assert port is not None and (port.host_ip, port.published_ports, port.protocol) == (
        "127.0.0.1", [5000, 5001, 5002], "udp")
    v6 = parse_port("[::1]:6001:6001")
    assert v6 is not None and (v6.host_ip, v6.published) == ("::1", "6001")
    assert parse_port("${WEB_PORT}:80") is not None and parse_port("${WEB_PORT}:80").published_ports == []  # type: ignore[union-attr]
    assert parse_volume("./cache:/tmp/cache:ro,rshared").propagation == "rshared"
    assert parse_volume("/anonymous").type == "volume"
    assert parse_volume("C:\\data:/data").type == "bind"
    assert parse_volume("~/configs:/etc/configs/:ro").read_only
    assert memory_bytes("512m") == 512 * 1024**2 and memory_bytes("1.5GB") == int(1.5 * 1024**3)
    assert memory_bytes(0) == 0 and memory_bytes("lots") is None
    assert image_tag("localhost:5000/app") == ("", "")
    assert image_tag("nginx:1.27@sha256:abc") == ("1.27", "sha256:abc")


def test_risky_services_are_reported_with_service_and_line(compose_file: Path) -> None:
    findings = _run(compose_file)
    assert _by_rule(findings, "MOAT-CMP-001") == [("admin", 23, 'service "admin" runs privileged')]
    assert _by_rule(findings, "MOAT-CMP-002") == [
        ("admin", 24, 'service "admin" shares the host\'s network namespace (network_mode: host)')]
    assert [c for c, _, _ in _by_rule(findings, "MOAT-CMP-003")] == ["admin"]
    assert [c for c, _, _ in _by_rule(findings, "MOAT-CMP-004")] == ["worker"]
    assert _by_rule(findings, "MOAT-CMP-007") == [
        ("admin", 27, 'service "admin" mounts the runtime socket /var/run/docker.sock')]
    assert _by_rule(findings, "MOAT-CMP-008") == [
        ("admin", 28, 'service "admin" mounts host directory /etc (read-only)')]
    assert _by_rule(findings, "MOAT-CMP-010") == [
        ("worker", 60, 'service "worker" exposes host device /dev/sda:/dev/sda')]
    assert _by_rule(findings, "MOAT-CMP-011") == [("admin", 33, 'service "admin" adds capability SYS_ADMIN')]
    assert sorted(c for c, _, _ in _by_rule(findings, "MOAT-CMP-012")) == ["worker"]  # admin is privileged
    assert [m for _, _, m in _by_rule(findings, "MOAT-CMP-012")] == ['service "worker" sets no-new-privileges:false']
    assert [(c, line) for c, line, _ in _by_rule(findings, "MOAT-CMP-013")] == [("worker", 40)]
    assert [(c, line) for c, line, _ in _by_rule(findings, "MOAT-CMP-014")] == [("worker", 41)]
    # web has limits through the anchor; worker sets zero ("unlimited") under deploy
    assert [(c, m) for c, _, m in _by_rule(findings, "MOAT-CMP-016")] == [
        ("admin", 'service "admin" has no memory limit (mem_limit or deploy.resources.limits.memory)'),
        ("worker", 'service "worker" sets an unlimited memory limit (0)')]
    assert [c for c, _, _ in _by_rule(findings, "MOAT-CMP-017")] == ["admin", "worker"]
    assert [c for c, _, _ in _by_rule(findings, "MOAT-CMP-018")] == ["admin", "worker"]
    assert [c for c, _, _ in _by_rule(findings, "MOAT-CMP-019")] == ["admin", "worker"]
    assert [m for _, _, m in _by_rule(findings, "MOAT-CMP-020")] == [
        'service "worker" publishes privileged host port 22 (→ 6380/tcp)']
    assert [m for _, _, m in _by_rule(findings, "MOAT-CMP-021")] == [
        'service "worker" publishes host port 80 on all interfaces',
        'service "worker" publishes host port 22 on all interfaces']
    assert [m for _, _, m in _by_rule(findings, "MOAT-CMP-022")] == [
        'service "admin" uses restart: always',
        'service "worker" restarts on any exit without max_attempts (deploy.restart_policy)']
    assert [m for _, _, m in _by_rule(findings, "MOAT-CMP-023")] == ['service "admin" runs as user \'root\'']
    assert [c for c, _, _ in _by_rule(findings, "MOAT-CMP-024")] == ["worker"]
    assert [m for _, _, m in _by_rule(findings, "MOAT-CMP-025")] == [
        "service \"admin\" uses image 'portainer/portainer-ce:latest' (latest)",
        "service \"worker\" uses image 'redis' without a tag (latest)"]
    # the hardened service only trips the rule about nothing: it is clean
    assert not [f for f in findings if f.container == "web"]
    assert all(f.file == str(compose_file) and f.object == "shop" for f in findings)
    assert all(any(c.startswith(("cis-docker-1.6:", "nist-800-190:")) for c in f.controls) for f in findings)


def test_template_params_change_what_is_flagged(compose_file: Path) -> None:
    collected = collect([str(compose_file)])
    rules = [r for r in builtin_rules().values() if r.id in ("MOAT-CMP-011", "MOAT-CMP-020")]
    run = evaluate(collected.documents, rules,
                   params={"dangerous_capabilities": ["NET_BIND_SERVICE"], "allowed_privileged_ports": [22]})
    assert sorted(f.message for f in run.findings) == [
        'service "admin" adds capability NET_BIND_SERVICE',
        'service "worker" publishes privileged host port 80 (→ 6379/tcp)',
    ]


def test_every_compose_rule_is_complete() -> None:
    rules = [r for r in builtin_rules().values() if r.id.startswith("MOAT-CMP-")]
    assert len(rules) == 25
    for item in rules:
        assert item.targets == (TargetKind.COMPOSE,)
        assert item.controls and item.references and "docker" in item.verification


@pytest.mark.parametrize("text", [
    "services:\n  a: [unclosed\n",
    "services:\n  a: &x\n    <<: *x\n",
    "services: !!python/object:os.system {}\n",
])
def test_hostile_compose_files_give_one_line_errors(tmp_path: Path, text: str) -> None:
    path = tmp_path / "docker-compose.yml"
    path.write_text(text)
    try:
        documents = collect([str(path)]).documents
    except MoatError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)
    else:
        assert all(doc.kind == TargetKind.COMPOSE for doc in documents)
        evaluate(documents, list(builtin_rules().values()))  # strict mode: no rule may raise on it


def test_services_tolerate_junk_values() -> None:
    yaml_docs = load_yaml_documents(
        "services:\n  a:\n    image: 5\n    ports: [null, {}, 'a:b:c:d:e']\n    volumes: [7, {type: tmpfs}]\n"
        "    environment: 3\n    security_opt: [1]\n    cap_add: [null]\n    user: 0\n    devices: 'x'\n"
        "    deploy: {resources: 'none', restart_policy: 'x'}\n", "junk.yml")
    from moat.checks.targets.compose import compose_documents

    documents = compose_documents(yaml_docs[0], "junk.yml")
    run = evaluate(documents, [r for r in builtin_rules().values() if r.id.startswith("MOAT-CMP-")])
    assert 'service "a" runs as user \'0\'' in [f.message for f in run.findings]


def test_compose_rules_map_to_the_cis_docker_16_item_the_container_rule_of_the_same_check_maps_to() -> None:
    """The compose rules are CIS Docker section 5 as a compose file says it; each must name the same
    1.6 item as the running-container rule for that setting (1.5 numbered them one lower)."""
    from moat.checks.rule import builtin_rules

    rules = builtin_rules()
    container_items = {c for r in rules.values() if r.id.startswith("MOAT-DC") for c in r.controls
                       if c.startswith("cis-docker-1.6:5.")}
    compose_items = {c for r in rules.values() if r.id.startswith("MOAT-CMP") for c in r.controls
                     if c.startswith("cis-docker-1.6:5.")}
    assert compose_items and compose_items <= container_items
    by_item = {c: r.title for r in rules.values() if r.id.startswith("MOAT-DC") for c in r.controls}
    assert "privileged" in by_item["cis-docker-1.6:5.5"].lower()
    assert "apparmor" in by_item["cis-docker-1.6:5.2"].lower()
    assert "memory" in by_item["cis-docker-1.6:5.11"].lower()
