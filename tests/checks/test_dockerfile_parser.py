"""The Dockerfile parser on realistic Dockerfiles: stages, lines, heredocs, forms, scopes, expansion, errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from moat.checks.collect import collect
from moat.checks.document import TargetKind
from moat.checks.targets.dockerfile import dockerfile_documents, parse_dockerfile, shell_commands
from moat.errors import ParseError

GO_MULTISTAGE = """\
# syntax=docker/dockerfile:1.7
ARG GO_VERSION=1.22
ARG DISTROLESS=gcr.io/distroless/static-debian12

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
ARG GO_VERSION
ARG TARGETOS TARGETARCH
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \\
    go mod download
COPY . .
RUN --mount=type=cache,target=/root/.cache/go-build \\
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -o /out/server ./cmd/server

FROM build AS test
RUN go test ./...

FROM ${DISTROLESS}:nonroot
COPY --from=build /out/server /server
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/server"]
"""

PYTHON_APP = """\
FROM python:3.12-slim
LABEL org.opencontainers.image.source="https://git.example.com/shop/api" \\
      maintainer=team@example.com
ENV PYTHONDONTWRITEBYTECODE=1 \\
    PYTHONUNBUFFERED=1
ENV APP_HOME /srv/app
RUN apt-get update \\
    # build tools for psycopg
    && apt-get install -y --no-install-recommends gcc libpq-dev \\

    && rm -rf /var/lib/apt/lists/*
WORKDIR $APP_HOME
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY --chown=app:app . ${APP_HOME}/
USER app
CMD gunicorn -b 0.0.0.0:8000 shop.wsgi
"""

HEREDOCS = """\
# syntax=docker/dockerfile:1
FROM debian:12-slim
RUN <<EOF
set -eux
apt-get update
apt-get install -y --no-install-recommends ca-certificates # certificates
rm -rf /var/lib/apt/lists/*
EOF
COPY <<-CONF /etc/app/app.conf
\tlisten = 8080
\thome = $HOME
\tCONF
COPY <<robots.txt <<humans.txt /usr/share/nginx/html/
User-agent: *
robots.txt
Made by people
humans.txt
RUN cat <<'SCRIPT' > /usr/local/bin/start && chmod +x /usr/local/bin/start
#!/bin/sh
exec "$@"
SCRIPT
RUN python3 <<PY
import os
print(os.getcwd())
PY
USER nobody
"""


def parse(text: str, **kwargs: Any) -> dict[str, Any]:
    (doc,) = parse_dockerfile(text, "Dockerfile", **kwargs)
    assert doc.kind == TargetKind.DOCKERFILE
    data: dict[str, Any] = doc.data
    return data


def instructions(stage: dict[str, Any], cmd: str) -> list[dict[str, Any]]:
    return [item for item in stage["instructions"] if item["cmd"] == cmd]


def test_go_multistage_stages_scopes_and_lines() -> None:
    (doc,) = parse_dockerfile(GO_MULTISTAGE, "svc/Dockerfile")
    data = doc.data
    assert data["directives"] == {"syntax": "docker/dockerfile:1.7"}
    assert [a["pairs"] for a in data["args"]] == [[["GO_VERSION", "1.22"]],
                                                  [["DISTROLESS", "gcr.io/distroless/static-debian12"]]]
    build, test, final = data["stages"]
    assert (build["name"], build["from"], build["base_image"]) == ("build", "golang:${GO_VERSION}-bookworm",
                                                                   "golang:1.22-bookworm")
    assert (build["line"], build["end_line"]) == (5, 14)
    assert (test["base_stage"], test["base_image"], test["line"]) == (0, "build", 16)
    assert final["base_image"] == "gcr.io/distroless/static-debian12:nonroot"
    assert final["name"] is None and final["base_stage"] is None
    runs = instructions(build, "RUN")
    assert [(r["line"], r["end_line"]) for r in runs] == [(10, 11), (13, 14)]
    assert runs[0]["flags"] == {"mount": ["type=cache,target=/go/pkg/mod"]}
    assert runs[1]["commands"] == [{"argv": ["go", "build", "-o", "/out/server", "./cmd/server"], "op": "", "depth": 0}]
    copy_from = instructions(final, "COPY")[0]
    assert copy_from["flags"] == {"from": ["build"]} and copy_from["args"] == ["/out/server", "/server"]
    assert instructions(final, "USER")[0]["args"] == ["65532:65532"]
    assert instructions(final, "ENTRYPOINT")[0]["json_form"] is True
    assert doc.lines[("stages", 2, "instructions", 2)] == 21  # USER
    assert doc.line_of(("stages", 2, "instructions", 2, "args")) == 21
    assert (doc.start_line, doc.end_line) == (1, 23)


def test_platform_flag_keeps_an_unknown_variable_unresolved() -> None:
    build = parse(GO_MULTISTAGE)["stages"][0]
    assert build["instructions"][0]["unresolved"] == ["BUILDPLATFORM"]
    assert build["platform"] == ""
    assert build["unresolved"] == []  # the image reference itself is fully known


def test_python_app_continuations_comments_and_env_forms() -> None:
    (stage,) = parse(PYTHON_APP)["stages"]
    label = instructions(stage, "LABEL")[0]
    assert label["pairs"] == [["org.opencontainers.image.source", "https://git.example.com/shop/api"],
                              ["maintainer", "team@example.com"]]
    env1, env2 = instructions(stage, "ENV")
    assert env1["pairs"] == [["PYTHONDONTWRITEBYTECODE", "1"], ["PYTHONUNBUFFERED", "1"]]
    assert env2["pairs"] == [["APP_HOME", "/srv/app"]]  # legacy "ENV key value" form
    run = instructions(stage, "RUN")[0]
    # the comment line and the empty line inside the continuation are skipped, the lines still count
    assert (run["line"], run["end_line"]) == (7, 11)
    assert [c["argv"][:2] for c in run["commands"]] == [["apt-get", "update"], ["apt-get", "install"],
                                                        ["rm", "-rf"]]
    assert [c["op"] for c in run["commands"]] == ["", "&&", "&&"]
    assert instructions(stage, "WORKDIR")[0]["args"] == ["/srv/app"]
    assert instructions(stage, "COPY")[1]["args"] == [".", "/srv/app/"]
    assert instructions(stage, "COPY")[1]["flags"] == {"chown": ["app:app"]}
    cmd = instructions(stage, "CMD")[0]
    assert (cmd["json_form"], cmd["args"]) == (False, ["gunicorn -b 0.0.0.0:8000 shop.wsgi"])
    assert cmd["line"] == 17


def test_heredocs() -> None:
    (stage,) = parse(HEREDOCS)["stages"]
    run1, run2, run3 = instructions(stage, "RUN")
    (doc,) = run1["heredocs"]
    assert (doc["name"], doc["expand"], doc["chomp"], doc["line"], doc["end_line"]) == ("EOF", True, False, 4, 8)
    assert doc["body"].startswith("set -eux\napt-get update\n")
    assert (run1["line"], run1["end_line"]) == (3, 8)
    # the heredoc feeds the shell: its body is the script
    assert [c["argv"][0] for c in run1["commands"]] == ["set", "apt-get", "apt-get", "rm"]
    conf, pages = instructions(stage, "COPY")
    assert conf["heredocs"][0]["chomp"] is True
    assert conf["heredocs"][0]["body"] == "listen = 8080\nhome = $HOME\n"
    assert conf["args"] == ["<<-CONF", "/etc/app/app.conf"]
    assert [h["name"] for h in pages["heredocs"]] == ["robots.txt", "humans.txt"]
    assert [h["body"] for h in pages["heredocs"]] == ["User-agent: *\n", "Made by people\n"]
    assert (pages["line"], pages["end_line"]) == (13, 17)
    # a quoted delimiter turns expansion off; the heredoc is cat's input, not a script
    assert run2["heredocs"][0]["expand"] is False
    assert [c["argv"] for c in run2["commands"]] == [["cat"], ["chmod", "+x", "/usr/local/bin/start"]]
    # python reads the heredoc: its body is not shell
    assert [c["argv"] for c in run3["commands"]] == [["python3"]]
    user = instructions(stage, "USER")[0]
    assert (user["line"], user["args"]) == (26, ["nobody"])


def test_escape_directive_backtick_for_windows() -> None:
    text = (
        "# escape=`\n"
        "FROM mcr.microsoft.com/windows/servercore:ltsc2022\n"
        "WORKDIR C:\\app\n"
        "COPY app.ps1 C:\\app\\\n"
        "RUN powershell -Command `\n"
        "    Write-Host hello\n"
        "USER ContainerUser\n"
    )
    data = parse(text)
    assert data["escape"] == "`"
    stage = data["stages"][0]
    assert instructions(stage, "WORKDIR")[0]["args"] == ["C:\\app"]
    assert instructions(stage, "COPY")[0]["args"] == ["app.ps1", "C:\\app\\"]
    run = instructions(stage, "RUN")[0]
    assert (run["line"], run["end_line"]) == (5, 6)
    assert run["args"] == ["powershell -Command     Write-Host hello"]
    assert instructions(stage, "USER")[0]["line"] == 7


def test_directives_only_count_at_the_top() -> None:
    data = parse("# a comment\n# escape=`\nFROM alpine:3.20\nRUN echo a \\\n  b\n")
    assert data["directives"] == {} and data["escape"] == "\\"
    assert data["stages"][0]["instructions"][1]["args"] == ["echo a   b"]


def test_expansion_forms_and_scopes() -> None:
    text = """\
ARG REGISTRY=docker.io
ARG TAG
ARG ONLY_GLOBAL=g
FROM ${REGISTRY}/library/node:${TAG:-20}-alpine AS base
ARG TAG
ARG SET=x
ARG EMPTY=
ENV HOME_DIR=/home/node PLUS=${SET:+yes} MINUS=${EMPTY-unset} COLON=${EMPTY:-fallback}
ENV SEEN_GLOBAL=${ONLY_GLOBAL} QUOTED='$SET' ESCAPED=\\$SET PREFIX=${HOME_DIR#/home/} SUFFIX=${HOME_DIR%/*}
ENV SET=from-env
USER ${SET}
WORKDIR ${HOME_DIR}/app
FROM base AS child
WORKDIR $HOME_DIR
LABEL tag=$TAG
"""
    base, child = parse(text)["stages"]
    assert base["base_image"] == "docker.io/library/node:20-alpine"
    assert base["instructions"][0]["unresolved"] == []
    env = dict(pair for item in instructions(base, "ENV") for pair in item["pairs"])
    assert env["PLUS"] == "yes" and env["MINUS"] == "" and env["COLON"] == "fallback"
    assert env["SEEN_GLOBAL"] == ""  # a global ARG is not seen in a stage that does not declare it
    assert env["QUOTED"] == "$SET" and env["ESCAPED"] == "$SET"
    assert env["PREFIX"] == "node" and env["SUFFIX"] == "/home"
    assert instructions(base, "ENV")[1]["unresolved"] == ["ONLY_GLOBAL"]
    assert instructions(base, "USER")[0]["args"] == ["from-env"]  # ENV wins over ARG
    assert instructions(base, "WORKDIR")[0]["args"] == ["/home/node/app"]
    # the child stage inherits ENV from the stage it is built FROM, but not ARGs
    assert instructions(child, "WORKDIR")[0]["args"] == ["/home/node"]
    label = instructions(child, "LABEL")[0]
    assert label["pairs"] == [["tag", ""]] and label["unresolved"] == ["TAG"]


def test_build_args_override_defaults() -> None:
    text = "ARG TAG=1.0\nFROM app:${TAG}\nARG TAG\nARG MODE=dev\nENV MODE=$MODE TAG=$TAG\n"
    (stage,) = parse(text, build_args={"TAG": "2.5", "MODE": "prod"})["stages"]
    assert stage["base_image"] == "app:2.5"
    assert instructions(stage, "ENV")[0]["pairs"] == [["MODE", "prod"], ["TAG", "2.5"]]


def test_exec_and_shell_forms() -> None:
    text = """\
FROM alpine:3.20
SHELL ["/bin/ash", "-eo", "pipefail", "-c"]
RUN ["sh", "-c", "apk add --no-cache curl && curl -fsS https://example.com | tee /x"]
RUN ["echo", 1]
CMD ["--help"]
ENTRYPOINT /usr/bin/app --flag
HEALTHCHECK --interval=30s --timeout=3s CMD ["wget", "-q", "--spider", "http://localhost/"]
VOLUME ["/data", "/logs"]
VOLUME /cache
EXPOSE 80/tcp 8000-8010
ONBUILD COPY . /src
STOPSIGNAL SIGTERM
"""
    (stage,) = parse(text)["stages"]
    runs = instructions(stage, "RUN")
    assert runs[0]["json_form"] and runs[0]["shell"] == ["/bin/ash", "-eo", "pipefail", "-c"]
    assert [(c["argv"][0], c["op"]) for c in runs[0]["commands"]] == [("apk", ""), ("curl", "&&"), ("tee", "|")]
    assert runs[1]["json_form"] is False and runs[1]["args"] == ['["echo", 1]']  # not all strings: shell form
    assert instructions(stage, "CMD")[0]["args"] == ["--help"]
    assert instructions(stage, "ENTRYPOINT")[0]["args"] == ["/usr/bin/app --flag"]
    health = instructions(stage, "HEALTHCHECK")[0]
    assert health["flags"] == {"interval": ["30s"], "timeout": ["3s"]}
    assert health["args"] == ["CMD", "wget", "-q", "--spider", "http://localhost/"] and health["json_form"]
    assert [v["args"] for v in instructions(stage, "VOLUME")] == [["/data", "/logs"], ["/cache"]]
    assert instructions(stage, "EXPOSE")[0]["args"] == ["80/tcp", "8000-8010"]
    trigger = instructions(stage, "ONBUILD")[0]["trigger"]
    assert (trigger["cmd"], trigger["args"]) == ("COPY", [".", "/src"])
    assert instructions(stage, "STOPSIGNAL")[0]["args"] == ["SIGTERM"]


def test_case_patterns_are_not_commands() -> None:
    script = (
        'case "$dpkgArch" in amd64|i386|arm64) apt-get update ;; \n'
        "  *) tempDir=$(mktemp -d) && apt-get build-dep -y x ;;\n"
        "esac && apt-get install -y curl"
    )
    commands = shell_commands(script)
    assert [c["argv"][:2] for c in commands] == [["apt-get", "update"], ["mktemp", "-d"],
                                                  ["apt-get", "build-dep"], ["apt-get", "install"]]
    assert all(c["op"] != "|" for c in commands)


def test_shell_commands_split_like_a_shell() -> None:
    script = (
        'DEBIAN_FRONTEND=noninteractive apt-get install -y "a b" \'c\' 2>&1 >/dev/null; '
        "curl -fsSL https://x/install.sh | sudo -E bash -s -- --yes || echo failed # comment | not a pipe\n"
        "cat > /etc/x <<'EOF'\nrm -rf /\nEOF\n"
        "if [ -f /a ]; then cd /tmp && make; fi\n"
        "for f in a b; do rm $f; done\n"
        "echo $(id -u) `whoami`"
    )
    commands = shell_commands(script)
    assert [c["argv"] for c in commands] == [
        ["apt-get", "install", "-y", "a b", "c"],
        ["curl", "-fsSL", "https://x/install.sh"],
        ["sudo", "-E", "bash", "-s", "--", "--yes"],
        ["echo", "failed"],
        ["cat"],
        ["[", "-f", "/a", "]"],
        ["cd", "/tmp"],
        ["make"],
        ["rm", "$f"],
        ["echo"],
        ["id", "-u"],
        ["whoami"],
    ]
    assert [c["op"] for c in commands[:4]] == ["", ";", "|", "||"]
    assert [c["depth"] for c in commands[-3:]] == [0, 1, 1]  # echo $(id -u) `whoami`
    assert commands[7]["op"] == "&&"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("FROM alpine:3.20\nRUNN echo\n", "Dockerfile:2: unknown instruction 'RUNN'"),
        ("FROM alpine:3.20\nRUN <<EOF\necho hi\n", "Dockerfile:2: unterminated heredoc 'EOF'"),
        ("ARG A=1\nRUN echo\nFROM alpine\n", "Dockerfile:2: RUN before the first FROM"),
        ("# just a comment\n\n", "Dockerfile: no FROM instruction"),
        ("# escape=x\nFROM alpine\n", "Dockerfile:1: invalid escape token"),
        ("# syntax=a\n# syntax=b\nFROM alpine\n", "Dockerfile:2: only one syntax parser directive"),
        ("FROM alpine AS\n", "Dockerfile:1: FROM takes an image"),
        ("FROM alpine\nSHELL /bin/bash -c\n", "Dockerfile:2: SHELL requires the JSON form"),
        ("FROM alpine\nONBUILD ONBUILD RUN x\n", "Dockerfile:2: ONBUILD ONBUILD is not allowed"),
        ("FROM alpine\nENV A=1\n" + "ENV A=$A$A$A$A\n" * 12, "a variable expands to more than"),
        ("FROM alpine\nENV A=" + "${A:-" * 5000 + "}" * 5000 + "\n", "Dockerfile:2: variables nested more than"),
        ("FROM alpine\n" + "RUN true\n" * 20_001, "more than 20,000 instructions"),
    ],
)
def test_bad_dockerfiles_are_one_line_parse_errors(text: str, message: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_dockerfile(text, "Dockerfile")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_hostile_shapes_stay_linear() -> None:
    """Shapes that a naive lexer handles in quadratic time or worse: each is a megabyte-sized file that
    must parse (a quadratic step would not finish)."""
    shapes = [
        "FROM a\nRUN " + ">" * 900_000 + "\n",
        "FROM a\nRUN " + "2>" * 450_000 + "\n",
        "FROM a\nRUN a \\\n" + "b \\\n" * 200_000 + "c\n",
        "FROM a\nRUN " + "$(" * 400_000 + "\n",
        "FROM a\nCOPY " + '--a="x y" ' * 90_000 + "a /b/\n",
        "# syntax=x" + " " * 900_000 + "y\nFROM a\nRUN x\n",
        "FROM a\nENV A=" + "a" * 4000 + "\nENV B=${A//a/bb} C=${A#*a} D=${A%%a*}\n",
    ]
    for text in shapes:
        (doc,) = parse_dockerfile(text, "Dockerfile")
        assert len(doc.data["stages"][0]["instructions"]) >= 2
    env = parse("FROM a\nENV A=" + "a" * 4000 + "\nENV B=${A//a/bb} C=${A#*a} D=${A%%a*}\n")
    pairs = dict(env["stages"][0]["instructions"][2]["pairs"])
    assert (len(pairs["B"]), pairs["C"], pairs["D"]) == (8000, "a" * 3999, "")


def test_files_are_read_bounded_and_as_utf8(tmp_path: Path) -> None:
    good = tmp_path / "Dockerfile"
    good.write_bytes(b"\xef\xbb\xbfFROM alpine:3.20\r\nUSER nobody\r\n")
    (doc,) = dockerfile_documents(good, "app/Dockerfile")
    assert (doc.path, doc.name) == ("app/Dockerfile", "Dockerfile")
    assert doc.data["stages"][0]["instructions"][1]["args"] == ["nobody"]
    binary = tmp_path / "Dockerfile.bin"
    binary.write_bytes(b"FROM alpine\n\xff\xfe\n")
    with pytest.raises(ParseError, match=r"Dockerfile\.bin: not UTF-8"):
        dockerfile_documents(binary, str(binary))
    huge = tmp_path / "huge.dockerfile"
    huge.write_text("FROM alpine\n" + "# padding\n" * 500_000)
    with pytest.raises(ParseError, match="larger than 1 MiB"):
        dockerfile_documents(huge, str(huge))


def test_collect_finds_dockerfiles_in_a_tree(tmp_path: Path) -> None:
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / "Dockerfile").write_text(GO_MULTISTAGE)
    (tmp_path / "web.dockerfile").write_text(PYTHON_APP)
    (tmp_path / "Dockerfile.broken").write_text("FROM alpine\nRUN <<EOF\n")
    result = collect([str(tmp_path)])
    names = sorted((doc.path.rsplit("/", 1)[-1], len(doc.data["stages"])) for doc in result.documents)
    assert names == [("Dockerfile", 3), ("web.dockerfile", 1)]
    assert len(result.warnings) == 1 and "Dockerfile.broken:2: unterminated heredoc" in result.warnings[0]
