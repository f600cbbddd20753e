"""Image rules ``MOAT-IMG-nnn``: CIS Docker 1.6 section 4 judged on a built image (its config, history
and layer facts, see :mod:`moat.checks.targets.image_config`), plus the organisation's own policy
(allowed registries, required labels, maximum age).

The items of section 4 that no image can answer (4.2 trusted base images, 4.3 unnecessary packages,
4.4 rebuilt with patches, 4.5 content trust, 4.11 verified packages) are manual rules: reported as
MANUAL with the steps an auditor follows (4.12 signed artifacts too). 4.10 (secrets) belongs to
:mod:`moat.secrets`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from moat.checks.document import Document, TargetKind
from moat.checks.rule import Hit, NotAssessable, RuleContext, manual_rule, rule
from moat.checks.rules.dockerfile import (
    ARCHIVE,
    effective,
    full_reference,
    insecure_download,
    orphan_updates,
    registry_allowed,
    unsigned_install,
)
from moat.checks.targets.dockerfile import shell_commands

IMG = (TargetKind.IMAGE_CONFIG,)
BOTH = (TargetKind.IMAGE_CONFIG, TargetKind.DOCKERFILE)
CIS = "https://www.cisecurity.org/benchmark/docker"
SPEC = "https://github.com/opencontainers/image-spec/blob/main/config.md"
REF = "https://docs.docker.com/reference/dockerfile/"


def _has_config(doc: Document) -> bool:
    """Whether the target is an image, whose config (even an empty one) is what runs."""
    return isinstance(doc.data, dict) and doc.data.get("type", "container_image") == "container_image"


def _config(doc: Document) -> dict[str, Any]:
    config = doc.data.get("config") if isinstance(doc.data, dict) else None
    return config if isinstance(config, dict) else {}


def _history(doc: Document) -> Iterator[tuple[int, str]]:
    for index, entry in enumerate(doc.data.get("history") or []):
        if isinstance(entry, dict) and entry.get("created_by"):
            yield index, str(entry["created_by"])


_ARGS_PREFIX = re.compile(r"^\|\d+(\s+[A-Za-z_][A-Za-z0-9_]*=\S*)*\s+")
_SHELL_PREFIX = re.compile(r"^(/bin/|/usr/bin/)?(ba|a|da)?sh\s+-c\s+")


def step(created_by: str) -> tuple[str, str]:
    """A history entry as (instruction, arguments): ``("RUN", "apt-get update")``, ``("ADD", "file:ab in /")``.

    Docker's classic builder writes ``/bin/sh -c #(nop) ADD file:… in /`` for non-RUN steps and
    ``/bin/sh -c apt-get update`` (with ``|N ARG=…`` before it when build args were set) for RUN;
    BuildKit writes ``RUN /bin/sh -c apt-get update # buildkit`` and ``ADD src dest # buildkit``.
    """
    text = created_by.strip()
    if text.endswith("buildkit") and text[:-len("buildkit")].rstrip().endswith("#"):
        text = text[:-len("buildkit")].rstrip()[:-1].rstrip()
    if text.startswith("RUN "):
        text = text[4:].lstrip()
    text = _ARGS_PREFIX.sub("", text)
    match = _SHELL_PREFIX.match(text)
    if match:
        text = text[match.end():]
        if text.startswith("#(nop)"):
            text = text[len("#(nop)"):].strip()
            word, _, rest = text.partition(" ")
            return word.upper(), rest.strip()
        return "RUN", text
    word, _, rest = text.partition(" ")
    if word.isupper() and word.isalpha():
        return word, rest.strip()
    return "RUN", text


def _step_hit(message: str, index: int, created_by: str) -> Hit:
    evidence = " ".join(created_by.split())
    return Hit(message, path=("history", index), evidence=evidence[:200])


@rule(
    id="MOAT-IMG-001",
    title="Image runs as root",
    severity="HIGH",
    targets=IMG,
    description="The image config names no user (or root/0): every container started from it runs its process "
                "as root unless the runtime overrides it. A compromise of the application is then root inside "
                "the container, one kernel or runtime bug away from the host.",
    remediation="Rebuild with an unprivileged user as the last USER of the Dockerfile:\n"
                "  RUN useradd --system --uid 10001 app\n  USER 10001:10001",
    verification="docker inspect --format '{{.Config.User}}' IMAGE prints a user that is not empty, root or 0.",
    references=(f"{REF}#user", CIS, SPEC),
    controls=("cis-docker-1.6:4.1", "nist-800-190:4.1.2"),
    aliases=("DS-0002", "DS002", "AVD-DS-0002", "DL3002"),
)
def image_user(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    if not _has_config(doc):
        return
    user = str(_config(doc).get("User") or "").strip()
    name = user.split(":", 1)[0]
    if not name:
        yield Hit("the image sets no user: containers run as root", path=("config", "User"), evidence="User: ''")
    elif name.lower() in ("root", "0", "containeradministrator"):
        yield Hit(f"the image runs as {user}", path=("config", "User"), evidence=f"User: {user}")


@rule(
    id="MOAT-IMG-002",
    title="Image has no HEALTHCHECK",
    severity="LOW",
    targets=IMG,
    description="Without a health check the engine only knows whether the process is alive, not whether it "
                "works: a hung service keeps receiving traffic and is never restarted.",
    remediation="Add a HEALTHCHECK to the Dockerfile and rebuild:\n"
                "  HEALTHCHECK --interval=30s --timeout=3s CMD curl -fsS http://localhost:8080/health || exit 1",
    verification="docker inspect --format '{{.Config.Healthcheck}}' IMAGE is not empty and not [NONE].",
    references=(f"{REF}#healthcheck", CIS),
    controls=("cis-docker-1.6:4.6", "nist-800-190:4.1.2"),
    aliases=("DS-0026", "DS026", "AVD-DS-0026"),
)
def image_healthcheck(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    if not _has_config(doc):
        return
    check = _config(doc).get("Healthcheck")
    test = check.get("Test") if isinstance(check, dict) else None
    if not test:
        yield Hit("the image defines no health check", path=("config",), evidence="Healthcheck: none")
    elif isinstance(test, list) and test[:1] == ["NONE"]:
        yield Hit("the image disables the health check (HEALTHCHECK NONE)", path=("config", "Healthcheck"),
                  evidence="Healthcheck: [NONE]")


@rule(
    id="MOAT-IMG-003",
    title="Package index update alone in an image layer",
    severity="MEDIUM",
    targets=IMG,
    description="A build step that only refreshes the package index (apt-get update) is cached as its own "
                "layer: later builds reuse the stale index and install old, vulnerable package versions.",
    remediation="Refresh and install in one RUN and rebuild:\n"
                "  RUN apt-get update && apt-get install -y --no-install-recommends curl \\\n"
                "      && rm -rf /var/lib/apt/lists/*",
    verification="docker history --no-trunc IMAGE shows no step that runs apt-get update (apk update, zypper "
                 "refresh, dnf makecache) without an install in the same step.",
    references=("https://docs.docker.com/build/building/best-practices/#apt-get", CIS),
    controls=("cis-docker-1.6:4.7", "nist-800-190:4.1.1"),
    aliases=("DS-0017", "DS017", "AVD-DS-0017"),
)
def image_update_alone(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    for index, created_by in _history(doc):
        kind, text = step(created_by)
        if kind != "RUN":
            continue
        orphans = orphan_updates([effective(command["argv"]) for command in shell_commands(text)])
        if orphans:
            yield _step_hit(f"history step {index} runs {orphans[0]} without installing anything", index,
                            created_by)


@rule(
    id="MOAT-IMG-016",
    title="Image built with signature or certificate checks turned off",
    severity="HIGH",
    targets=IMG,
    description="A build step installed packages without checking their signatures (--allow-unauthenticated, "
                "--nogpgcheck, --allow-untrusted) or downloaded without checking the server's certificate "
                "(curl -k, wget --no-check-certificate): what it installed may not be what its publisher shipped.",
    remediation="Remove the flag from the Dockerfile, import the repository key or the internal CA instead, and "
                "rebuild.",
    verification="docker history --no-trunc IMAGE | grep -E -- '--allow-unauthenticated|--nogpgcheck|"
                 "--allow-untrusted|--no-check-certificate|curl .*-k' finds nothing.",
    references=("https://wiki.debian.org/SecureApt", CIS),
    controls=("nist-800-190:4.1.3",),
)
def image_unverified(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    for index, created_by in _history(doc):
        kind, text = step(created_by)
        if kind != "RUN":
            continue
        for command in shell_commands(text):
            argv = effective(command["argv"])
            flag = unsigned_install(argv) or insecure_download(argv)
            if flag:
                yield _step_hit(f"history step {index} runs {argv[0].rsplit('/', 1)[-1]} with {flag}", index,
                                created_by)
                break


_ROOTFS = re.compile(r"^(file|multi):[0-9a-f]+ in /\s*$")


@rule(
    id="MOAT-IMG-004",
    title="Image built with ADD instead of COPY",
    severity="LOW",
    targets=IMG,
    description="ADD unpacks archives and fetches URLs as a side effect; a build step that used it to bring in "
                "plain files or remote content did more than the reader of the Dockerfile expects.",
    remediation="Use COPY for local files and a verified download (ADD --checksum, or curl plus sha256sum) for "
                "remote ones, then rebuild.",
    verification="docker history --no-trunc IMAGE: no ADD step other than the base image's root filesystem "
                 "(ADD file:… in /) or a local tar archive.",
    references=(f"{REF}#add", CIS),
    controls=("cis-docker-1.6:4.9", "nist-800-190:4.1.2"),
    aliases=("DS-0005", "DS005", "AVD-DS-0005", "DL3020"),
)
def image_add(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    for index, created_by in _history(doc):
        kind, text = step(created_by)
        if kind != "ADD" or _ROOTFS.match(text):
            continue
        words = [word for word in text.split() if not word.startswith("--")]
        sources = words[:-1] if len(words) > 1 else words
        if words and " in " not in f" {text} " and all(ARCHIVE.search(src) for src in sources):
            continue  # BuildKit's record of ADD of a local tar: unpacking is what ADD is for
        yield _step_hit(f"history step {index} used ADD: {' '.join(text.split())[:120]}", index, created_by)


def _mode_text(mode: int) -> str:
    return f"{mode & 0o7777:04o}"


@rule(
    id="MOAT-IMG-005",
    title="Files with setuid or setgid permissions in the image",
    severity="MEDIUM",
    targets=IMG,
    description="A setuid or setgid executable runs with its owner's (usually root's) privileges whoever starts "
                "it: each one is a privilege-escalation path from the container's user back to root.",
    remediation="Strip the bits in the last build step, keeping only those the application needs:\n"
                "  RUN find / -xdev -perm /6000 -type f -exec chmod a-s {} + || true\n"
                "and list the ones to keep in the allowed_setuid_files parameter.",
    verification="docker run --rm --entrypoint find IMAGE / -xdev -perm /6000 -type f prints only the allowed "
                 "files.",
    references=(CIS, "https://man7.org/linux/man-pages/man2/chmod.2.html"),
    controls=("cis-docker-1.6:4.8", "nist-800-190:4.1.2"),
    params={"allowed_setuid_files": []},
)
def setuid_files(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    files = doc.data.get("setuid_files")
    if files is None:
        raise NotAssessable  # no layer walk looked for them (an SBOM target): not a pass
    allowed = {str(path).lstrip("/") for path in ctx.params.get("allowed_setuid_files") or []}
    for index, item in enumerate(files):
        path = str(item.get("path", "")).lstrip("/")
        mode = int(item.get("mode") or 0)
        if path in allowed or not mode & 0o6000:
            continue
        bits = " and ".join(name for bit, name in ((0o4000, "setuid"), (0o2000, "setgid")) if mode & bit)
        yield Hit(f"/{path} has the {bits} bit (mode {_mode_text(mode)})", path=("setuid_files", index),
                  resource=f"/{path}", evidence=f"/{path} {_mode_text(mode)} in layer {item.get('layer') or '?'}")


def _created(doc: Document) -> datetime | None:
    value = doc.data.get("created")
    if not value:
        return None
    try:
        created = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return None if created.year < 1990 else created  # reproducible builds write the epoch: no date at all


@rule(
    id="MOAT-IMG-006",
    title="Image is older than the allowed age",
    severity="MEDIUM",
    targets=IMG,
    description="An image not rebuilt for a long time carries every vulnerability fixed since in its base "
                "image and packages: rebuilding regularly is how patches reach running containers (CIS 4.4).",
    remediation="Rebuild the image on an up-to-date base image (docker build --pull --no-cache) and redeploy; "
                "set max_image_age_days to the rebuild cadence the organisation commits to.",
    verification="docker inspect --format '{{.Created}}' IMAGE is within max_image_age_days (default 365) of today.",
    references=(CIS, SPEC),
    controls=("nist-800-190:4.1.1",),
    params={"max_image_age_days": 365},
)
def image_age(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    created = _created(doc)
    limit = int(ctx.params.get("max_image_age_days") or 0)
    if created is None or limit <= 0:
        return
    age = (datetime.now(UTC) - created).days
    if age > limit:
        yield Hit(f"the image was built {age} days ago ({created.date().isoformat()}), more than {limit}",
                  path=("created",), evidence=f"created: {doc.data.get('created')}")


def _references(doc: Document) -> list[str]:
    """The image's names as registry references (tags first, then digests, then the scanned name)."""
    # An OCI layout's "tags" are bare ref names (``latest``, ``full``), not references: skip those.
    tags = [tag for tag in doc.data.get("repo_tags", []) if "/" in str(tag) or ":" in str(tag)]
    names = [*tags, *doc.data.get("repo_digests", [])]
    name = str(doc.data.get("name") or "")
    scheme = name.split(":", 1)[0]
    if not names and name:
        if scheme in ("registry", "docker"):
            names.append(name.split(":", 1)[1])
        elif "/" not in scheme and scheme not in ("oci-dir", "oci-archive", "docker-archive", "dir", "sbom"):
            names.append(name)
    return [str(item) for item in names if item and not str(item).startswith(("/", "."))]


@rule(
    id="MOAT-IMG-007",
    title="Image from a registry that is not allowed",
    severity="HIGH",
    targets=IMG,
    description="Images from registries outside the ones the organisation trusts have not gone through its "
                "review, scanning and signing.",
    remediation="Mirror the image into an allowed registry (after review) and deploy it from there; list the "
                "registries in the allowed_registries parameter.",
    verification="docker inspect --format '{{.RepoTags}} {{.RepoDigests}}' IMAGE: every name starts with an "
                 "allowed registry.",
    references=(CIS, "https://docs.docker.com/docker-hub/image-library/trusted-content/"),
    controls=("nist-800-190:4.1.5",),
    aliases=("DL3026",),
    params={"allowed_registries": []},
)
def image_registry(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    allowed = [str(entry) for entry in ctx.params.get("allowed_registries") or []]
    if not allowed:
        return
    for reference in _references(doc):
        if not registry_allowed(reference, allowed):
            yield Hit(f"{full_reference(reference)} is not from an allowed registry ({', '.join(allowed)})",
                      evidence=reference)
            return


@rule(
    id="MOAT-IMG-008",
    title="Image lacks required labels",
    severity="LOW",
    targets=IMG,
    description="Labels such as the source repository, revision and owner are how a finding in a running image "
                "is traced back to the team and commit that must fix it.",
    remediation='Add the labels in the Dockerfile: LABEL org.opencontainers.image.source="https://git.example.com/app" '
                "org.opencontainers.image.revision=$GIT_SHA",
    verification="docker inspect --format '{{json .Config.Labels}}' IMAGE contains every label of the "
                 "required_labels parameter.",
    references=("https://github.com/opencontainers/image-spec/blob/main/annotations.md", f"{REF}#label"),
    params={"required_labels": []},
)
def required_labels(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    wanted = [str(name) for name in ctx.params.get("required_labels") or []]
    labels = _config(doc).get("Labels") or {}
    missing = [name for name in wanted if not isinstance(labels, dict) or name not in labels]
    if missing:
        yield Hit(f"the image lacks the label{'s' if len(missing) > 1 else ''} {', '.join(missing)}",
                  path=("config", "Labels"), evidence=f"missing: {', '.join(missing)}")


def _exposed(doc: Document) -> Iterator[tuple[str, int]]:
    ports = _config(doc).get("ExposedPorts") or {}
    for key in ports if isinstance(ports, dict) else ():
        number = str(key).split("/", 1)[0]
        if number.isdigit():
            yield str(key), int(number)


@rule(
    id="MOAT-IMG-009",
    title="Image exposes the SSH port",
    severity="MEDIUM",
    targets=IMG,
    description="Port 22 in the image config means the image runs an SSH server: another way in, with its own "
                "credentials to manage, that docker exec and kubectl exec make unnecessary.",
    remediation="Remove the SSH server and EXPOSE 22 from the Dockerfile and rebuild.",
    verification="docker inspect --format '{{json .Config.ExposedPorts}}' IMAGE has no 22/tcp.",
    references=(f"{REF}#expose",),
    controls=("nist-800-190:4.1.2",),
    aliases=("DS-0004", "DS004", "AVD-DS-0004"),
)
def image_ssh(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    for key, number in _exposed(doc):
        if number == 22:
            yield Hit(f"the image exposes {key} (SSH)", path=("config", "ExposedPorts", key), evidence=key)


@rule(
    id="MOAT-IMG-010",
    title="Image exposes a privileged port",
    severity="LOW",
    targets=IMG,
    description="Listening on a port below 1024 needs root or CAP_NET_BIND_SERVICE inside the container: an "
                "image that expects one cannot run as an unprivileged user without extra capabilities.",
    remediation="Listen on a port above 1023 (EXPOSE 8080) and map it where needed (docker run -p 80:8080).",
    verification="docker inspect --format '{{json .Config.ExposedPorts}}' IMAGE lists no port below 1024.",
    references=(f"{REF}#expose", "https://man7.org/linux/man-pages/man7/capabilities.7.html"),
    controls=("nist-800-190:4.1.2",),
)
def image_privileged_port(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    for key, number in _exposed(doc):
        if 0 < number < 1024 and number != 22:
            yield Hit(f"the image exposes privileged port {key}", path=("config", "ExposedPorts", key), evidence=key)


manual_rule(
    id="MOAT-IMG-011",
    title="Containers use only trusted base images",
    severity="HIGH",
    targets=BOTH,
    description="An image is only as trustworthy as the image it is built FROM; public images of unknown "
                "publishers can carry malware or abandoned, vulnerable software.",
    remediation="Build only on official, verified-publisher or internally maintained base images pulled from an "
                "allowed registry; record the approved list and enforce it (allowed_registries).",
    verification="docker history IMAGE and the Dockerfile's FROM lines: each base image is on the organisation's "
                 "approved list, from a trusted publisher, and pulled over TLS from an allowed registry.",
    references=(CIS, "https://docs.docker.com/docker-hub/image-library/trusted-content/"),
    controls=("cis-docker-1.6:4.2", "nist-800-190:4.1.5"),
)

manual_rule(
    id="MOAT-IMG-012",
    title="No unnecessary packages in the image",
    severity="HIGH",
    targets=BOTH,
    description="Every package the application does not need widens the attack surface and adds "
                "vulnerabilities to patch.",
    remediation="Start from a minimal base (distroless, -slim, alpine), install with --no-install-recommends, "
                "and use multi-stage builds so compilers and tools stay in the builder stage.",
    verification="moat sbom IMAGE (or docker run --rm IMAGE dpkg -l / apk info / rpm -qa): review each package "
                 "against what the application needs at run time.",
    references=(CIS, "https://docs.docker.com/build/building/multi-stage/"),
    controls=("cis-docker-1.6:4.3", "nist-800-190:4.1.2"),
)

manual_rule(
    id="MOAT-IMG-013",
    title="Images are scanned and rebuilt to include security patches",
    severity="HIGH",
    targets=BOTH,
    description="Fixes reach containers only when images are rebuilt on patched bases and redeployed; a scanned "
                "image with known fixes available is a known risk left running.",
    remediation="Scan every image in CI and on a schedule (moat image IMAGE --exit-code 1 --severity "
                "HIGH,CRITICAL), rebuild with docker build --pull --no-cache when fixes appear, and redeploy.",
    verification="Check that the pipeline scans each image and that images with fixable HIGH/CRITICAL findings "
                 "are rebuilt within the agreed time (docker inspect --format '{{.Created}}' IMAGE).",
    references=(CIS,),
    controls=("cis-docker-1.6:4.4", "nist-800-190:4.1.1"),
)

manual_rule(
    id="MOAT-IMG-014",
    title="Content trust for Docker is enabled",
    severity="LOW",
    targets=BOTH,
    description="Without content trust a client pulls whatever the registry serves under a tag; signatures "
                "prove the publisher and the integrity of the image.",
    remediation="export DOCKER_CONTENT_TRUST=1 in the environments that pull and build images (or verify "
                "signatures with cosign / notation in admission control).",
    verification="echo $DOCKER_CONTENT_TRUST prints 1 in the build and deploy environments, or the admission "
                 "policy rejects unsigned images.",
    references=(CIS, "https://docs.docker.com/engine/security/trust/"),
    controls=("cis-docker-1.6:4.5", "nist-800-190:4.1.5"),
)

manual_rule(
    id="MOAT-IMG-015",
    title="Only verified packages are installed",
    severity="MEDIUM",
    targets=BOTH,
    description="Packages fetched without signature or checksum checks can be tampered with on the way into "
                "the image.",
    remediation="Install from signed repositories (apt, apk and dnf verify signatures by default; never pass "
                "--allow-unauthenticated or --nogpgcheck) and verify every downloaded artifact with a pinned "
                "checksum or signature.",
    verification="docker history --no-trunc IMAGE and the Dockerfile: no --allow-unauthenticated, --nogpgcheck "
                 "or --allow-untrusted, and every curl/wget download is followed by sha256sum -c or gpg --verify.",
    references=(CIS,),
    controls=("cis-docker-1.6:4.11", "nist-800-190:4.1.3"),
)

manual_rule(
    id="MOAT-IMG-017",
    title="All signed artifacts are validated",
    severity="MEDIUM",
    targets=BOTH,
    description="Signatures protect only when someone checks them: artifacts that arrive signed (images, "
                "packages, downloaded binaries, SBOMs and attestations) must be verified against the publisher's "
                "key before they are used in a build or deployed.",
    remediation="Verify at each step: cosign verify --key cosign.pub IMAGE (or notation verify) before deploying, "
                "gpg --verify for downloaded release files, and enforce image signatures in admission control.",
    verification="Review the build pipeline and Dockerfiles: every signed artifact they consume is verified "
                 "(cosign verify / notation verify / gpg --verify) and a failed verification stops the build.",
    references=(CIS, "https://docs.sigstore.dev/cosign/verifying/verify/"),
    controls=("cis-docker-1.6:4.12", "nist-800-190:4.1.5"),
)
