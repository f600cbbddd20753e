"""``MOAT-SEC`` rules: credentials written into Dockerfiles, image configs, Kubernetes manifests and
compose files, found with the secret detector of :mod:`moat.secrets`.

Every value is checked the way it will be read: an environment variable as ``NAME=value`` (so the
name gives the generic rule its context: ``DB_PASSWORD=…``), a Dockerfile instruction as its source
lines, a Kubernetes ``Secret``'s ``data`` after base64 decoding. Evidence is always the detector's
masked excerpt: a finding never repeats the credential it reports.

Rules that look at names rather than values (``ARG NPM_TOKEN``, ``env: [{name: DB_PASSWORD, value:
literal}]``) report what the detector cannot: a short or dictionary-word password is still a password
when the variable says so.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Iterator
from typing import Any

from moat.checks.document import Document, JsonPath, TargetKind
from moat.checks.rule import Hit, RuleContext, rule
from moat.checks.targets.kubernetes import containers, mapping
from moat.secrets.detect import SecretMatch, find_secrets, is_placeholder
from moat.secrets.redact import mask

CIS_4_10 = "cis-docker-1.6:4.10"
NIST_SECRETS = "nist-800-190:4.1.4"
"""NIST SP 800-190 4.1.4: embedded clear text secrets."""
NSA_SECRETS = "nsa-cisa-k8s:secrets"

DETECTOR_DOCS = "https://docs.docker.com/build/building/secrets/"
K8S_SECRETS_DOCS = "https://kubernetes.io/docs/concepts/configuration/secret/"
K8S_GOOD_PRACTICE = "https://kubernetes.io/docs/concepts/security/secrets-good-practices/"
COMPOSE_SECRETS_DOCS = "https://docs.docker.com/compose/how-tos/use-secrets/"

CREDENTIAL_NAME = re.compile(
    r"(?i)(?:^|[_.\-])(?:pass(?:word|wd|phrase)?|pwd|secret|token|api[_.\-]?key|apikey|access[_.\-]?key"
    r"|private[_.\-]?key|auth|credentials?|client[_.\-]?secret)(?:$|[_.\-])"
)
"""A variable or key named like a credential: ``DB_PASSWORD``, ``NPM_TOKEN``, ``aws.secret``."""
NOT_A_CREDENTIAL = re.compile(
    r"(?i)(?:[_.\-](?:file|path|dir|url|uri|host|port|user(?:name)?|name|id|type|mode|length|ttl|expiry|"
    r"expires|header|policy|endpoint|enabled|required|method|algorithm|ref|key[_.\-]?id)$)"
    r"|^(?:auth[_.\-]?(?:type|method|mode|url|enabled))$"
)
"""Names of settings *about* a credential (``PASSWORD_FILE``, ``TOKEN_URL``, ``AUTH_TYPE``)."""
CREDENTIAL_FILE = re.compile(
    r"(?i)(?:^|/)(?:id_(?:rsa|dsa|ecdsa|ed25519)|\.netrc|\.npmrc|\.pypirc|\.pgpass|\.git-credentials"
    r"|\.env|credentials(?:\.json)?|\.aws/credentials|\.docker/config\.json|[^/]*\.(?:pem|key|p12|pfx|jks|keystore)"
    r"|service[-_]account[^/]*\.json|secrets?\.(?:ya?ml|json|env))$"
)
"""Files that hold credentials by convention; copying one into an image bakes it into a layer."""


def credential_name(name: str) -> bool:
    return bool(CREDENTIAL_NAME.search(name)) and not NOT_A_CREDENTIAL.search(name)


def _kinds(matches: list[SecretMatch]) -> str:
    return ", ".join(dict.fromkeys(m.rule.title for m in matches))


# --------------------------------------------------------------------------------------------- Dockerfile


def _instructions(doc: Document) -> Iterator[tuple[JsonPath, dict[str, Any]]]:
    for s_index, stage in enumerate(mapping(doc.data).get("stages") or []):
        for i_index, instruction in enumerate(mapping(stage).get("instructions") or []):
            if isinstance(instruction, dict):
                yield ("stages", s_index, "instructions", i_index), instruction
                trigger = instruction.get("trigger")
                if isinstance(trigger, dict):  # ONBUILD: runs in every image built FROM this one
                    yield ("stages", s_index, "instructions", i_index, "trigger"), trigger


@rule(
    id="MOAT-SEC-001",
    title="Credential written in a Dockerfile",
    severity="CRITICAL",
    targets=[TargetKind.DOCKERFILE],
    description="A key, token or password written into a Dockerfile ends up in the image: ENV and LABEL values "
                "in its config, ARG defaults and RUN command lines in its history, and every copy of the "
                "Dockerfile in source control, CI logs and build caches. Anyone who can pull the image or read "
                "the repository can use it.",
    remediation="Remove the value and pass it at build time as a BuildKit secret, which is never stored in a "
                "layer or the history; give it to the container at run time from a secret store. For example "
                "replace `RUN NPM_TOKEN=abc123 npm ci` with `RUN --mount=type=secret,id=npm_token "
                "NPM_TOKEN=$(cat /run/secrets/npm_token) npm ci` and build with "
                "`docker build --secret id=npm_token,env=NPM_TOKEN .`. Then revoke the exposed credential.",
    verification="Read the Dockerfile (`grep -nEi 'password|secret|token|key|BEGIN .*PRIVATE' Dockerfile`) and the "
                 "built image: `docker history --no-trunc IMAGE` and `docker inspect --format '{{json "
                 ".Config.Env}}' IMAGE` must show no credential.",
    references=[DETECTOR_DOCS, "https://docs.docker.com/reference/build-checks/secrets-used-in-arg-or-env/"],
    controls=[CIS_4_10, NIST_SECRETS],
    aliases=["SECRET-CRITICAL"],
)
def dockerfile_secret(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    for path, instruction in _instructions(doc):
        original = instruction.get("original")
        if not isinstance(original, str) or not original:
            continue
        keyword = str(instruction.get("cmd") or "").upper()
        start = int(instruction.get("line") or doc.start_line or 1)
        for match in find_secrets(original, doc.path):
            yield Hit(f"{keyword} holds a credential ({match.rule.title})", path=path,
                      line=start + match.line - 1, evidence=match.excerpt)


@rule(
    id="MOAT-SEC-002",
    title="Build argument or environment variable named like a credential",
    severity="MEDIUM",
    targets=[TargetKind.DOCKERFILE],
    description="ARG values are recorded in the image history of every RUN that follows them, and ENV values are "
                "stored in the image config: a credential passed through either can be read back with `docker "
                "history` or `docker inspect` by anyone who pulls the image.",
    remediation="Pass credentials as BuildKit secrets instead of build arguments: replace `ARG NPM_TOKEN` and "
                "`RUN npm ci` with `RUN --mount=type=secret,id=npm_token,env=NPM_TOKEN npm ci` and build with "
                "`docker build --secret id=npm_token,env=NPM_TOKEN .`; give run-time credentials to the "
                "container from a secret store rather than an ENV line.",
    verification="`grep -nE '^(ARG|ENV)' Dockerfile` and check no name is a password, token, key or secret; on a "
                 "built image, `docker history --no-trunc IMAGE` shows no such ARG value.",
    references=["https://docs.docker.com/reference/build-checks/secrets-used-in-arg-or-env/", DETECTOR_DOCS],
    controls=[CIS_4_10, NIST_SECRETS],
    aliases=["SecretsUsedInArgOrEnv"],
)
def dockerfile_secret_names(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    for path, instruction in _instructions(doc):
        keyword = str(instruction.get("cmd") or "").upper()
        if keyword not in ("ARG", "ENV"):
            continue
        for index, pair in enumerate(instruction.get("pairs") or []):
            if not isinstance(pair, list | tuple) or not pair or not isinstance(pair[0], str):
                continue
            name = pair[0]
            value = pair[1] if len(pair) > 1 and isinstance(pair[1], str) else None
            if not credential_name(name) or (value is not None and (_is_reference(value) or is_placeholder(value))):
                continue
            if value and find_secrets(f"{name}={value}", doc.path):
                continue  # the value itself is a recognised credential: MOAT-SEC-001 reports it
            shown = f"{keyword} {name}" + (f"={mask(value)}" if value else "")
            where = "history" if keyword == "ARG" else "config"
            yield Hit(f"{keyword} {name} passes a credential through the image {where}",
                      path=(*path, "pairs", index), line=int(instruction.get("line") or 0), evidence=shown)


def _is_reference(value: str) -> bool:
    """``$OTHER`` / ``${OTHER}``: the value is another variable, judged where that one is set."""
    return bool(re.fullmatch(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?", value.strip()))


@rule(
    id="MOAT-SEC-003",
    title="Credential file copied into the image",
    severity="HIGH",
    targets=[TargetKind.DOCKERFILE],
    description="COPY or ADD of a private key, `.npmrc`, `.netrc`, `.env`, cloud credentials file or keystore "
                "puts the credential into a layer. Deleting it in a later step does not help: the layer that "
                "added it is still part of the image.",
    remediation="Do not copy credential files; mount them for the one step that needs them: `RUN "
                "--mount=type=secret,id=npmrc,target=/root/.npmrc npm ci` (build with `docker build --secret "
                "id=npmrc,src=$HOME/.npmrc .`), or `RUN --mount=type=ssh git clone ...` for SSH keys. Add such "
                "files to `.dockerignore`.",
    verification="`grep -nE '^(COPY|ADD)' Dockerfile` and check the sources; on a built image, `moat image "
                 "--scanners secret IMAGE` lists credentials found in any layer.",
    references=[DETECTOR_DOCS, "https://docs.docker.com/build/concepts/context/#dockerignore-files"],
    controls=[CIS_4_10, NIST_SECRETS],
)
def dockerfile_credential_files(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    for path, instruction in _instructions(doc):
        keyword = str(instruction.get("cmd") or "").upper()
        if keyword not in ("COPY", "ADD") or mapping(instruction.get("flags")).get("from"):
            continue  # COPY --from copies between stages; the source stage's own files are judged there
        args = [a for a in instruction.get("args") or [] if isinstance(a, str)]
        for source in args[:-1]:
            if CREDENTIAL_FILE.search(source.rstrip("/")):
                yield Hit(f"{keyword} {source} copies a credential file into a layer", path=path,
                          line=int(instruction.get("line") or 0), evidence=f"{keyword} {source}")


# --------------------------------------------------------------------------------------------- image config


@rule(
    id="MOAT-SEC-010",
    title="Credential in the image configuration or history",
    severity="CRITICAL",
    targets=[TargetKind.IMAGE_CONFIG],
    description="The image config (Env, Labels) and its history (the command of every build step) travel with "
                "the image to every registry and host that pulls it; `docker inspect` and `docker history` show "
                "them to anyone. A credential there is published with the image.",
    remediation="Rebuild without it: pass build-time credentials as BuildKit secrets (`RUN "
                "--mount=type=secret,id=token ...`), run-time ones from a secret store or orchestrator secret at "
                "start-up, never with ENV, LABEL or ARG. Revoke the exposed credential: it stays in every copy "
                "of the old image.",
    verification="`docker inspect --format '{{json .Config.Env}} {{json .Config.Labels}}' IMAGE` and `docker "
                 "history --no-trunc IMAGE` must show no credential.",
    references=[DETECTOR_DOCS, "https://docs.docker.com/reference/cli/docker/image/history/"],
    controls=[CIS_4_10, NIST_SECRETS],
    aliases=["SECRET-CRITICAL"],
)
def image_config_secret(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    data = mapping(doc.data)
    config = mapping(data.get("config"))
    for index, entry in enumerate(config.get("Env") or []):
        if isinstance(entry, str):
            matches = find_secrets(entry, doc.path)
            if matches:
                name = entry.split("=", 1)[0]
                yield Hit(f"environment variable {name} holds a credential ({_kinds(matches)})",
                          path=("config", "Env", index), evidence=matches[0].excerpt)
    for key, value in mapping(config.get("Labels")).items():
        matches = find_secrets(f"{key}={value}", doc.path) if isinstance(value, str) else []
        if matches:
            yield Hit(f"label {key} holds a credential ({_kinds(matches)})", path=("config", "Labels", str(key)),
                      evidence=matches[0].excerpt)
    for index, step in enumerate(data.get("history") or []):
        created_by = mapping(step).get("created_by")
        matches = find_secrets(created_by, doc.path) if isinstance(created_by, str) else []
        if matches:
            yield Hit(f"build step {index + 1} of the history holds a credential ({_kinds(matches)})",
                      path=("history", index, "created_by"), evidence=matches[0].excerpt)


# --------------------------------------------------------------------------------------------- Kubernetes


def _kind(doc: Document) -> str:
    kind = mapping(doc.data).get("kind")
    return kind if isinstance(kind, str) else ""


@rule(
    id="MOAT-SEC-020",
    title="Credential in a container's environment, command or arguments",
    severity="CRITICAL",
    targets=[TargetKind.KUBERNETES],
    description="A literal env value, command or argument is part of the pod spec: it is stored unencrypted in "
                "etcd, shown by `kubectl get -o yaml` and `kubectl describe` to anyone who may read the workload, "
                "and committed wherever the manifest lives.",
    remediation="Move the value into a Secret (or an external secret store) and reference it: `env: [{name: "
                "DB_PASSWORD, valueFrom: {secretKeyRef: {name: db, key: password}}}]`, or mount the Secret as a "
                "file. Revoke the exposed credential.",
    verification="`kubectl get pods -A -o jsonpath='{..env}'` and `{..args}` must show no credential; in a "
                 "repository, `moat config DIR`.",
    references=[K8S_SECRETS_DOCS, K8S_GOOD_PRACTICE],
    controls=[NSA_SECRETS, NIST_SECRETS],
    aliases=["C-0012", "rule-credentials-in-env-var"],
)
def kubernetes_container_secret(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    for ref in containers(doc.data):
        for index, item in enumerate(ref.data.get("env") or []):
            item = mapping(item)
            name, value = item.get("name"), item.get("value")
            if isinstance(name, str) and isinstance(value, str) and value:
                matches = find_secrets(f"{name}={value}", doc.path)
                if matches:
                    yield Hit(f'container "{ref.name}" env {name} holds a credential ({_kinds(matches)})',
                              path=(*ref.path, "env", index, "value"), container=ref.name,
                              evidence=matches[0].excerpt)
        for field_name in ("command", "args"):
            words = ref.data.get(field_name)
            if not isinstance(words, list):
                continue
            for index, word in enumerate(words):
                matches = find_secrets(word, doc.path) if isinstance(word, str) else []
                if matches:
                    yield Hit(f'container "{ref.name}" {field_name} holds a credential ({_kinds(matches)})',
                              path=(*ref.path, field_name, index), container=ref.name, evidence=matches[0].excerpt)


@rule(
    id="MOAT-SEC-021",
    title="Environment variable named like a credential has a literal value",
    severity="MEDIUM",
    targets=[TargetKind.KUBERNETES],
    description="An env variable whose name says it is a password, token or key but whose value is written in the "
                "manifest keeps that credential in plain text in the pod spec, etcd and source control, whatever "
                "the value looks like.",
    remediation="Reference a Secret instead of writing the value: `valueFrom: {secretKeyRef: {name: app, key: "
                "api-token}}`.",
    verification="`kubectl get deploy,sts,ds,pod -A -o yaml | grep -A1 -iE 'name: .*(pass|token|secret|key)'` shows "
                 "`valueFrom`, never `value`.",
    references=[K8S_GOOD_PRACTICE],
    controls=[NSA_SECRETS, NIST_SECRETS],
    aliases=["C-0012", "rule-credentials-in-env-var"],
)
def kubernetes_credential_env_names(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    for ref in containers(doc.data):
        for index, item in enumerate(ref.data.get("env") or []):
            item = mapping(item)
            name, value = item.get("name"), item.get("value")
            if (isinstance(name, str) and isinstance(value, str) and value.strip() and credential_name(name)
                    and not is_placeholder(value) and not find_secrets(f"{name}={value}", doc.path)):
                yield Hit(f'container "{ref.name}" sets {name} to a literal value',
                          path=(*ref.path, "env", index, "value"), container=ref.name, evidence=f"{name}={mask(value)}")


def _decoded(value: str) -> str | None:
    try:
        return base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None


@rule(
    id="MOAT-SEC-030",
    title="Secret manifest holds credential values",
    severity="HIGH",
    targets=[TargetKind.KUBERNETES],
    description="A Secret manifest with `data` or `stringData` carries the credential itself; base64 is an "
                "encoding, not encryption. Committed to a repository or a chart, it is readable by everyone "
                "with access to the repository and its history.",
    remediation="Keep the values out of the manifests: create the Secret from a secret store at deploy time "
                "(External Secrets Operator, the Secrets Store CSI driver, Vault), or commit it encrypted "
                "(Sealed Secrets, SOPS): `kubectl create secret generic db --from-literal=password=... "
                "--dry-run=client -o yaml | kubeseal -o yaml > db-sealed.yaml` and commit only db-sealed.yaml. "
                "Rotate the credentials that were committed.",
    verification="`git grep -l 'kind: Secret'` in the repository; each such manifest must have no `data` or "
                 "`stringData` values (or be an encrypted SealedSecret/SOPS file).",
    references=[K8S_SECRETS_DOCS, K8S_GOOD_PRACTICE],
    controls=[NSA_SECRETS, NIST_SECRETS],
)
def kubernetes_secret_values(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    if _kind(doc) != "Secret":
        return
    data = mapping(doc.data)
    for field_name, encoded in (("data", True), ("stringData", False)):
        for key, raw in mapping(data.get(field_name)).items():
            if not isinstance(raw, str) or not raw.strip():
                continue
            value = _decoded(raw) if encoded else raw
            if value is None:
                continue  # binary content (a keystore): not text the detector can judge
            matches = find_secrets(value, doc.path) or find_secrets(f"{key}={value}", doc.path)
            if matches:
                line = 0 if encoded else _line_in_block(doc, (field_name, str(key)), value, matches[0])
                yield Hit(f"Secret key {key} holds a credential ({_kinds(matches)})", path=(field_name, str(key)),
                          line=line, evidence=f"{key}: {matches[0].excerpt}")
            elif credential_name(str(key)) and not is_placeholder(value):
                yield Hit(f"Secret key {key} holds a credential value", path=(field_name, str(key)),
                          evidence=f"{key}: {mask(value)}")


@rule(
    id="MOAT-SEC-031",
    title="ConfigMap holds credentials",
    severity="HIGH",
    targets=[TargetKind.KUBERNETES],
    description="ConfigMaps are meant for non-confidential settings: they are readable by anything that may read "
                "the namespace's configuration, never encrypted at rest, and routinely printed in logs and "
                "dashboards. A password or key in one is exposed to all of them.",
    remediation="Move the credential into a Secret (or an external secret store) and reference it from the "
                "workload, keeping only non-confidential settings in the ConfigMap: e.g. drop "
                "`spring.datasource.password` from `application.properties` and set `env: [{name: "
                "SPRING_DATASOURCE_PASSWORD, valueFrom: {secretKeyRef: {name: db, key: password}}}]`.",
    verification="`kubectl get configmaps -A -o yaml` and search the values for passwords, tokens and keys.",
    references=["https://kubernetes.io/docs/concepts/configuration/configmap/", K8S_GOOD_PRACTICE],
    controls=[NSA_SECRETS, NIST_SECRETS],
    aliases=["KSV-0109", "KSV109", "AVD-KSV-0109", "configMap_with_secrets", "kubernetes-configMap-with-secrets",
             "C-0012", "rule-credentials-configmap"],
)
def kubernetes_configmap_secrets(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    if _kind(doc) != "ConfigMap":
        return
    for key, value in mapping(mapping(doc.data).get("data")).items():
        if not isinstance(value, str) or not value.strip():
            continue
        matches = find_secrets(f"{key}={value}", doc.path) if "\n" not in value.strip() else []
        matches = matches or find_secrets(value, doc.path)
        if matches:
            yield Hit(f"ConfigMap key {key} holds a credential ({_kinds(matches)})", path=("data", str(key)),
                      line=_line_in_block(doc, ("data", str(key)), value, matches[0]),
                      evidence=f"{key}: {matches[0].excerpt}")
            continue
        if "\n" not in value.strip() and credential_name(str(key)) and not is_placeholder(value):
            yield Hit(f"ConfigMap key {key} holds a credential value", path=("data", str(key)),
                      evidence=f"{key}: {mask(value.strip())}")
            continue
        for offset, name, setting in _named_settings(value):
            yield Hit(f"ConfigMap key {key} sets {name} to a literal value", path=("data", str(key)),
                      line=_line_in_block(doc, ("data", str(key)), value, None, offset),
                      evidence=f"{name}={mask(setting)}")
            break


_SETTING = re.compile(r"""^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.\-]*)\s*[=:]\s*["']?([^"'\s#]+)""")


def _named_settings(text: str) -> Iterator[tuple[int, str, str]]:
    """``NAME=value`` / ``name: value`` lines (env files, properties, YAML) whose name is a credential's and
    whose value is written out: (1-based line, name, value)."""
    for number, line in enumerate(text.splitlines(), 1):
        found = _SETTING.match(line)
        if found and credential_name(found.group(1)) and not is_placeholder(found.group(2)):
            yield number, found.group(1), found.group(2)


def _line_in_block(doc: Document, path: JsonPath, value: str, match: SecretMatch | None, line: int = 0) -> int:
    """The line of a match (or of ``line`` of the value) inside a multi-line value: a block scalar
    (``key: |``) starts on the line after its key. 0 (the key's own line) for one-line values."""
    key_line = doc.line_of(path)
    if "\n" not in value.strip() or not key_line:
        return 0
    return key_line + (match.line if match is not None else line)


# --------------------------------------------------------------------------------------------- compose


def _compose_services(doc: Document) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, body in mapping(mapping(doc.data).get("services")).items():
        if isinstance(body, dict):
            yield str(name), body


def _pairs(value: Any, path: JsonPath) -> Iterator[tuple[str, str, JsonPath]]:
    """``KEY=value`` list or mapping entries, each with its path; keys without a value are skipped."""
    if isinstance(value, dict):
        for key, item in value.items():
            if item is not None and not isinstance(item, dict | list):
                yield str(key), str(item), (*path, str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, str) and "=" in item:
                key, _, text = item.partition("=")
                yield key, text, (*path, index)


@rule(
    id="MOAT-SEC-040",
    title="Credential in a compose file",
    severity="CRITICAL",
    targets=[TargetKind.COMPOSE],
    description="A value in a service's `environment` or build `args` is written in the compose file: it is "
                "committed with it, shown by `docker compose config` and `docker inspect`, and (for build args) "
                "recorded in the image history.",
    remediation="Use compose secrets: declare `secrets: {db_password: {environment: DB_PASSWORD}}` (or `file:`) at "
                "the top level, give the service `secrets: [db_password]` and read "
                "`/run/secrets/db_password`; or reference a variable from an untracked `.env` file "
                "(`DB_PASSWORD: ${DB_PASSWORD}`). Revoke the exposed credential.",
    verification="`docker compose config` must show no credential under `environment` or `build.args`; `git grep` "
                 "the compose files for passwords and tokens.",
    references=[COMPOSE_SECRETS_DOCS, "https://docs.docker.com/compose/how-tos/environment-variables/"],
    controls=[CIS_4_10, NIST_SECRETS],
)
def compose_secret(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    for service, body in _compose_services(doc):
        base: JsonPath = ("services", service)
        build = body.get("build")
        sources = [(body.get("environment"), (*base, "environment"), "environment")]
        if isinstance(build, dict):
            sources.append((build.get("args"), (*base, "build", "args"), "build arg"))
        for value, path, what in sources:
            for key, text, item_path in _pairs(value, path):
                matches = find_secrets(f"{key}={text}", doc.path)
                if matches:
                    yield Hit(f'service "{service}" {what} {key} holds a credential ({_kinds(matches)})',
                              path=item_path, container=service, evidence=matches[0].excerpt)
