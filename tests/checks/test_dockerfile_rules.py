"""Dockerfile rules on realistic Dockerfiles: which rule fires, at which line, and where it must stay quiet."""

from __future__ import annotations

import json
from typing import Any

import pytest

from corpus import CORPUS
from moat.checks.engine import FAIL, PASS, evaluate
from moat.checks.rule import builtin_rules
from moat.checks.targets.dockerfile import parse_dockerfile


def lines(rule_id: str, text: str, params: dict[str, Any] | None = None) -> list[int]:
    """The lines at which ``rule_id`` fires on ``text``."""
    item = builtin_rules()[rule_id]
    run = evaluate(parse_dockerfile(text, "Dockerfile"), [item], params=params)
    return [f.line for f in run.findings if f.status == FAIL]


def messages(rule_id: str, text: str, params: dict[str, Any] | None = None) -> list[str]:
    item = builtin_rules()[rule_id]
    run = evaluate(parse_dockerfile(text, "Dockerfile"), [item], params=params)
    return [f.message for f in run.findings if f.status == FAIL]


GO_SERVICE = """\
# syntax=docker/dockerfile:1
ARG GO_VERSION=1.22.5
FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
RUN apt-get update && apt-get install -y git make
COPY . .
RUN CGO_ENABLED=0 go build -o /out/api ./cmd/api

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/api /api
USER 65532:65532
EXPOSE 8080
HEALTHCHECK CMD ["/api", "-healthcheck"]
ENTRYPOINT ["/api"]
"""

CASES: list[tuple[str, str, list[int]]] = [
    # rule, Dockerfile, lines where it must fire
    ("MOAT-DF-001", GO_SERVICE, []),
    ("MOAT-DF-001", "FROM python:3.12-slim\nRUN useradd app\nUSER app\nRUN pip install x\nUSER root\n", [5]),
    ("MOAT-DF-001", "FROM alpine:3.20\nUSER 0:0\n", [2]),
    ("MOAT-DF-001", "FROM alpine:3.20 AS base\nUSER nobody\nFROM base\nRUN true\n", []),
    ("MOAT-DF-001", "FROM alpine:3.20\nRUN adduser -D app\n", [1]),
    ("MOAT-DF-001", "FROM alpine:3.20\nARG UID\nUSER $UID\n", []),
    ("MOAT-DF-002", GO_SERVICE, []),
    ("MOAT-DF-002", "FROM debian\nFROM debian:latest AS b\nFROM localhost:5000/tools\nFROM b\nFROM scratch\n",
     [1, 2, 3]),
    ("MOAT-DF-002", "FROM debian@sha256:" + "a" * 64 + "\nARG IMG\nFROM ${IMG}\n", []),
    ("MOAT-DF-002", "ARG V=3.20\nFROM --platform=$BUILDPLATFORM golang AS b\n"
                    "FROM --platform=$TARGETPLATFORM alpine:$V\n", [2]),
    ("MOAT-DF-003", "FROM alpine:3.20\nEXPOSE 8080\nEXPOSE 22/tcp\nEXPOSE 20-25\n", [3, 4]),
    ("MOAT-DF-004", "FROM alpine:3.20\nEXPOSE 8080 65535\nEXPOSE 65536\nEXPOSE 0\nEXPOSE http\nARG P\nEXPOSE $P\n",
     [3, 4, 5]),
    ("MOAT-DF-005", "FROM alpine:3.20\nADD rootfs.tar.xz /\nADD app.jar /opt/\nADD https://x.example/a.tgz /tmp/\n",
     [3]),
    ("MOAT-DF-006", "FROM alpine:3.20\nADD https://x.example/a.tgz /tmp/\n"
                    "ADD --checksum=sha256:" + "b" * 64 + " https://x.example/b.tgz /tmp/\n"
                    "ADD git@github.com:org/repo.git#v1.2 /src\n"
                    "ADD https://github.com/org/repo.git#" + "c" * 40 + " /src\n", [2, 4]),
    ("MOAT-DF-007", "FROM golang:1.22 AS build\nCOPY --from=build /a /b\nCOPY --from=0 /a /b\n"
                    "FROM alpine:3.20\nCOPY --from=build /a /b\n", [2, 3]),
    ("MOAT-DF-008", 'FROM node:20\nCOPY package.json yarn.lock /app\nCOPY package.json yarn.lock /app/\n'
                    'COPY ["a", "b", "c"]\nCOPY <<a.txt <<b.txt /etc\nx\na.txt\ny\nb.txt\nCOPY one /two\n', [2, 4, 5]),
    ("MOAT-DF-009", "FROM a:1 AS Build\nFROM b:1 AS test\nFROM c:1 as build\n", [3]),
    ("MOAT-DF-010", "FROM a:1\nENTRYPOINT [\"a\"]\nENTRYPOINT [\"b\"]\nFROM b:1\nENTRYPOINT [\"c\"]\n", [3]),
    ("MOAT-DF-011", "FROM a:1\nCMD a\nCMD b\nCMD c\nFROM b:1\nCMD d\n", [3, 4]),
    ("MOAT-DF-012", "FROM a:1\nHEALTHCHECK CMD a\nHEALTHCHECK NONE\nFROM b:1\nHEALTHCHECK CMD b\n", [3]),
    ("MOAT-DF-013", GO_SERVICE, []),
    ("MOAT-DF-013", "FROM a:1 AS base\nHEALTHCHECK CMD curl -f http://localhost/\nFROM base\n", []),
    ("MOAT-DF-013", "FROM a:1 AS base\nHEALTHCHECK CMD true\nFROM b:1\nRUN x\n", [3]),
    ("MOAT-DF-013", "FROM a:1\nHEALTHCHECK NONE\n", [2]),
    ("MOAT-DF-014", "FROM a:1\nMAINTAINER Jane <jane@example.com>\n", [2]),
    ("MOAT-DF-015", "FROM a:1\nWORKDIR app\nWORKDIR /srv/app\nWORKDIR C:\\\\app\nARG D\nWORKDIR $D\n", [2]),
    ("MOAT-DF-016", "FROM a:1\nWORKDIR /proc/self\nWORKDIR /process\nWORKDIR /dev\n", [2, 4]),
    ("MOAT-DF-017", "FROM a:1\nRUN apt-get install -y sudo\nRUN sudo -u app make\nONBUILD RUN sudo make install\n",
     [3, 4]),
    ("MOAT-DF-018", "FROM a:1\nRUN cd /tmp && make\nRUN make -C /tmp\nRUN ( cd /src && make ) && make install\n", [2]),
    ("MOAT-DF-019", "FROM a:1 AS dl\nRUN curl -fsSLO https://x/a\nFROM b:1\nRUN wget -q https://x/b\n", [4]),
    ("MOAT-DF-019", "FROM a:1\nRUN wget -q https://x/a\nRUN curl -fsSLO https://x/b\nRUN wget -q https://x/c\n", [3]),
    ("MOAT-DF-019", "FROM a:1\nRUN curl -fsSLO https://x/a\nRUN curl -fsSLO https://x/b\n", []),
    ("MOAT-DF-020", "FROM a:1\nRUN curl -fsSL https://get.example.com | sh\n"
                    "RUN wget -qO- https://x/i.sh | sudo -E bash -s -- -y\n"
                    "RUN curl -fsSLo /tmp/i.sh https://x/i.sh && sha256sum -c sums && sh /tmp/i.sh\n", [2, 3]),
    ("MOAT-DF-021", "FROM a:1\nRUN curl -fsSL https://x/a.tgz | tar xz\n"
                    "RUN set -o pipefail && curl -fsSL https://x/a.tgz | tar xz\nRUN echo a || echo b\n", [2]),
    ("MOAT-DF-021", 'FROM a:1\nSHELL ["/bin/bash", "-o", "pipefail", "-c"]\nRUN curl -fsSL https://x | tar xz\n',
     []),
    ("MOAT-DF-022", "FROM debian:12\nRUN apt-get install curl\nRUN apt-get -qq install curl\n"
                    "RUN apt-get -fmy install curl\nRUN apt-get --yes install curl\nRUN sudo apt-get remove vim\n"
                    "RUN apt-get update\nRUN DEBIAN_FRONTEND=noninteractive apt install --assume-yes curl\n", [2, 6]),
    ("MOAT-DF-023", "FROM debian:12 AS build\nRUN apt-get install -y gcc\nFROM debian:12\n"
                    "RUN apt-get install -y curl\n"
                    "RUN apt-get install -y --no-install-recommends curl\n"
                    "RUN apt-get -o APT::Install-Recommends=false install -y curl\n", [4]),
    ("MOAT-DF-024", "FROM debian:12\nRUN apt-get update && apt-get install -y curl\n"
                    "RUN apt-get update && apt-get install -y curl && rm -rf /var/lib/apt/lists/*\n"
                    "RUN --mount=type=cache,target=/var/lib/apt apt-get update && apt-get install -y curl\n", [2]),
    ("MOAT-DF-025", "FROM debian:12\nRUN apt-get update && apt-get dist-upgrade -y\nRUN apt-get upgrade -y\n", [2]),
    ("MOAT-DF-026", "FROM debian:12\nRUN apt-get update\nRUN apt-get update && apt-get install -y curl\n"
                    "RUN <<EOF\napt-get update\napt-get install -y --no-install-recommends gettext\nEOF\n"
                    "RUN apk update\nRUN apk update && apk add curl\nRUN zypper refresh\nRUN dnf makecache && "
                    "dnf install -y x\n", [2, 8, 10]),
    ("MOAT-DF-027", "FROM centos:7\nRUN yum install -y httpd\nRUN yum install -y httpd && yum clean all\n"
                    "RUN yum clean all && yum install -y x\n", [2, 4]),
    ("MOAT-DF-028", "FROM fedora:40\nRUN dnf install -y httpd\nRUN dnf install -y httpd && dnf clean all\n"
                    "RUN --mount=type=cache,target=/var/cache/dnf dnf install -y httpd\n", [2]),
    ("MOAT-DF-029", "FROM ubi9/ubi-minimal:9.4\nRUN microdnf install -y tar\n"
                    "RUN microdnf install -y tar && microdnf clean all\n", [2]),
    ("MOAT-DF-030", "FROM opensuse/leap:15.6\nRUN zypper install -y curl\nRUN zypper -n in curl && zypper cc\n",
     [2]),
    ("MOAT-DF-031", "FROM alpine:3.20 AS build\nRUN apk add gcc\nFROM alpine:3.20\nRUN apk add curl\n"
                    "RUN apk add --no-cache curl\nRUN apk --no-cache add curl\n"
                    "RUN apk add curl && rm -rf /var/cache/apk/*\n", [4]),
    ("MOAT-DF-032", GO_SERVICE, []),
    ("MOAT-DF-032", "FROM a:1\nENTRYPOINT /usr/bin/app --port 80\n", [2]),
    ("MOAT-DF-032", "FROM a:1\nCMD python app.py\n", [2]),
    ("MOAT-DF-034", "FROM debian:12\nRUN apt-get install -y --allow-unauthenticated foo\n"
                    "RUN apt-get -o APT::Get::AllowUnauthenticated=true install -y foo\n"
                    "RUN apt-get -o Acquire::Check-Valid-Until=false update\n"
                    "RUN dnf install -y --nogpgcheck foo && dnf clean all\n"
                    "RUN apk add --no-cache --allow-untrusted x.apk\n"
                    "RUN rpm -i --nosignature x.rpm\nRUN apt-get install -y foo\n", [2, 3, 5, 6, 7]),
    ("MOAT-DF-035", "FROM debian:12\nRUN curl -fsSLk https://x/a -o a\nRUN curl --insecure https://x/b\n"
                    "RUN wget --no-check-certificate https://x/c\nRUN pip install --trusted-host pypi.internal x\n"
                    "RUN git -c http.sslVerify=false clone https://x/r\nRUN curl -fsSL -o /tmp/kubectl https://x/k\n"
                    "RUN python3 -m pip install --trusted-host=pypi.internal x\n", [2, 3, 4, 5, 6, 8]),
]


@pytest.mark.parametrize(("rule_id", "text", "expected"), CASES,
                         ids=[f"{rule_id}-{index}" for index, (rule_id, _, _) in enumerate(CASES)])
def test_rule_fires_exactly_at(rule_id: str, text: str, expected: list[int]) -> None:
    assert sorted(lines(rule_id, text)) == expected


def test_a_well_written_go_service_is_clean() -> None:
    run = evaluate(parse_dockerfile(GO_SERVICE, "Dockerfile"), list(builtin_rules().values()))
    fired = sorted({(f.rule_id, f.line) for f in run.findings if f.status == FAIL})
    # The builder stage installs without --no-install-recommends and keeps the apt lists: its layers are
    # not in the image, so the hygiene rules leave it alone.
    assert fired == []
    assert run.outcomes["MOAT-DF-001"].status == PASS


def test_messages_name_the_thing() -> None:
    assert messages("MOAT-DF-002", "FROM localhost:5000/tools\n") == [
        "base image localhost:5000/tools has no tag, so it means localhost:5000/tools:latest"]
    assert messages("MOAT-DF-022", "FROM debian:12\nRUN sudo apt-get remove vim\n") == [
        "apt-get remove without -y"]
    assert messages("MOAT-DF-001", "FROM app-$TARGETOS\n") == [
        "the final stage sets no USER (its base app-$TARGETOS depends on TARGETOS, not given), so it runs as the "
        "base image's user (root unless the base image sets another)"]
    assert messages("MOAT-DF-007", "FROM golang:1.22 AS build\nCOPY --from=build /a /b\n") == [
        "COPY --from=build refers to the stage it is in"]


def test_allowed_registries_parameter() -> None:
    text = "FROM registry.example.com/base/debian:12 AS a\nFROM debian:12\nFROM ghcr.io/org/tool:1\nFROM a\n"
    assert lines("MOAT-DF-033", text) == []  # no list: any registry
    params = {"allowed_registries": ["registry.example.com", "ghcr.io/org"]}
    assert lines("MOAT-DF-033", text, params) == [2]
    assert lines("MOAT-DF-033", text, {"allowed_registries": ["docker.io"]}) == [1, 3]


def test_every_trivy_dockerfile_check_has_a_moat_rule() -> None:
    catalog = json.loads((CORPUS / "misconfig" / "mappings" / "trivy-checks-catalog.json").read_text())
    rules = builtin_rules()
    for check in catalog["checks"]:
        if not check["id"].startswith("DS-"):
            continue
        mapped = [item for item in rules.values() if check["id"] in item.aliases and "dockerfile" in item.targets]
        assert mapped, f"no Dockerfile rule for {check['id']} {check['title']}"
        for old in (a for a in check["aliases"] if a.startswith(("DS0", "AVD-DS"))):
            assert any(old in item.aliases for item in mapped), f"{check['id']}: old id {old} not listed"
        for control in check["controls"]:
            wanted = f"cis-docker-1.6:{control['control']}"
            assert any(wanted in item.controls for item in mapped), f"{check['id']} should map to {wanted}"


def test_compliance_spec_docker_controls_are_mapped() -> None:
    spec = json.loads((CORPUS / "misconfig" / "mappings" / "trivy-checks-compliance.json").read_text())
    controls = {c["id"] for c in spec["specs"]["docker-cis-1.6.0"]["controls"]}
    ours = {control.split(":", 1)[1] for item in builtin_rules().values() for control in item.controls
            if control.startswith("cis-docker-1.6:4.")}
    # 4.10 (secrets in images) is judged by the secrets rules, not by these
    assert controls - ours <= {"4.10"}


def test_dockerfile_rules_are_complete_and_in_range() -> None:
    ours = {rid: item for rid, item in builtin_rules().items() if rid.startswith("MOAT-DF-")}
    assert len(ours) == 35
    for rid, item in ours.items():
        assert item.targets == ("dockerfile",), rid
        assert item.references and all(ref.startswith("https://") for ref in item.references), rid
