"""Dockerfile rules ``MOAT-DF-nnn``: what Trivy's ``DS-nnnn`` checks and hadolint's ``DLnnnn`` rules
look for, plus the CIS Docker 1.6 section 4 items a Dockerfile settles (4.1 user, 4.6 HEALTHCHECK,
4.7 update alone, 4.9 ADD versus COPY).

Every rule reads the parsed document of :mod:`moat.checks.targets.dockerfile` and reports at the line
of the instruction at fault. Package-manager hygiene (caches, recommends) is judged only on the
stages that end up in the image (the last stage and the stages it is built ``FROM``): a builder
stage's layers are thrown away, so its cache costs nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from moat.checks.document import Document, TargetKind
from moat.checks.rule import Hit, RuleContext, rule

DF = (TargetKind.DOCKERFILE,)
REF = "https://docs.docker.com/reference/dockerfile/"
PRACTICES = "https://docs.docker.com/build/building/best-practices/"
CIS = "https://www.cisecurity.org/benchmark/docker"
SHELLS = frozenset({"sh", "bash", "ash", "dash", "zsh", "ksh", "mksh"})
WRAPPERS = frozenset({"sudo", "env", "exec", "command", "nice", "nohup", "time", "stdbuf", "ionice", "chroot"})


def _avd(number: int) -> str:
    return f"https://avd.aquasec.com/misconfig/ds{number:03d}"


def _trivy(number: int, short: str) -> tuple[str, ...]:
    return (f"DS-{number:04d}", f"DS{number:03d}", f"AVD-DS-{number:04d}", short, f"docker-{short}")


# ------------------------------------------------------------------------------ reading the document


Instruction = dict[str, Any]
Stage = dict[str, Any]


def _stages(doc: Document) -> list[Stage]:
    stages = doc.data.get("stages", []) if isinstance(doc.data, dict) else []
    return [stage for stage in stages if isinstance(stage, dict)]


def _shipped(doc: Document) -> list[Stage]:
    """The final stage and the earlier stages it is built FROM: their layers are the image."""
    stages = _stages(doc)
    if not stages:
        return []
    chain = [stages[-1]]
    while chain[-1].get("base_stage") is not None and len(chain) <= len(stages):
        chain.append(stages[chain[-1]["base_stage"]])
    return chain


def _instructions(stage: Stage, cmd: str | None = None, *, triggers: bool = False) -> Iterator[Instruction]:
    for item in stage.get("instructions", []):
        if cmd is None or item["cmd"] == cmd:
            yield item
        trigger = item.get("trigger")
        if triggers and trigger and (cmd is None or trigger["cmd"] == cmd):
            yield trigger


def _runs(stages: Iterable[Stage]) -> Iterator[tuple[Stage, Instruction]]:
    for stage in stages:
        for item in _instructions(stage, "RUN", triggers=True):
            yield stage, item


def _program(word: str) -> str:
    return word.rsplit("/", 1)[-1]


def effective(argv: list[str]) -> list[str]:
    """The command a wrapper runs: ``sudo -E apt-get install`` is ``apt-get install``."""
    words = list(argv)
    while words and _program(words[0]) in WRAPPERS:
        wrapper = _program(words[0])
        words = words[1:]
        while words and (words[0].startswith("-") or (wrapper == "env" and "=" in words[0])):
            takes_value = wrapper in ("sudo", "nice", "ionice") and words[0] in ("-u", "-g", "-n", "-c", "-C")
            words = words[2:] if takes_value else words[1:]
        if wrapper == "chroot" and words:
            words = words[1:]
    return words


def _commands(item: Instruction) -> list[list[str]]:
    """The RUN's simple commands, wrappers (sudo, env) removed."""
    return [effective(command["argv"]) for command in item.get("commands", [])]


def _is(argv: list[str], *programs: str) -> bool:
    return bool(argv) and _program(argv[0]) in programs


_APT_OPTIONS_WITH_VALUE = frozenset({"-o", "-c", "-t", "--option", "--config-file", "--target-release",
                                     "--default-release"})


def _subcommand(argv: list[str], with_value: frozenset[str] = _APT_OPTIONS_WITH_VALUE) -> str:
    """The first word after the program that is not an option (nor an option's value)."""
    i = 1
    while i < len(argv):
        word = argv[i]
        if word in with_value:
            i += 2
            continue
        if not word.startswith("-"):
            return word
        i += 1
    return ""


def _has_flag(argv: list[str], *flags: str) -> bool:
    return any(word in flags or any(word.startswith(f"{flag}=") for flag in flags if flag.startswith("--"))
               for word in argv)


def _cache_mount(item: Instruction, *paths: str) -> bool:
    """A ``RUN --mount=type=cache`` on one of ``paths``: the cache never reaches a layer."""
    for mount in item.get("flags", {}).get("mount", []):
        options = dict(part.partition("=")[::2] for part in mount.split(","))
        target = options.get("target") or options.get("dst") or options.get("destination") or ""
        if options.get("type") == "cache" and any(target.rstrip("/").startswith(p) for p in paths):
            return True
    return False


def _removes(argv: list[str], *prefixes: str) -> bool:
    return _is(argv, "rm") and any(word.startswith(prefixes) for word in argv[1:])


def _short(item: Instruction, limit: int = 100) -> str:
    text = " ".join(str(arg) for arg in item.get("args", []))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _hit(message: str, item: Instruction, evidence: str = "") -> Hit:
    return Hit(message, line=int(item.get("line", 0)), evidence=evidence or f"{item['cmd']} {_short(item)}",
               end_line=int(item.get("end_line", 0)))


# ------------------------------------------------------------------------------ user, base image, ports


def _user_of(stages: list[Stage]) -> tuple[Instruction | None, str | None]:
    """The last USER along the shipped chain (final stage first), and its value."""
    for stage in stages:
        users = list(_instructions(stage, "USER"))
        if users:
            last = users[-1]
            return last, (last["args"][0] if last["args"] else "")
    return None, None


@rule(
    id="MOAT-DF-001",
    title="Image runs as root",
    severity="HIGH",
    targets=DF,
    description="Without a USER instruction (or with USER root/0) the container's process runs as root. "
                "A compromise of the application is then a compromise of root inside the container, one "
                "kernel or runtime bug away from the host.",
    remediation="Create an unprivileged user and switch to it as the last USER of the final stage:\n"
                "  RUN useradd --system --uid 10001 app\n  USER 10001:10001",
    verification="grep -n '^\\s*USER' Dockerfile: the final stage's last USER must name a user other than root "
                 "or 0. For a built image: docker inspect --format '{{.Config.User}}' IMAGE must not be empty, "
                 "root or 0.",
    references=(f"{REF}#user", PRACTICES + "#user", CIS, _avd(2)),
    controls=("cis-docker-1.6:4.1", "nist-800-190:4.1.2"),
    aliases=(*_trivy(2, "least-privilege-user"), "DL3002"),
)
def root_user(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    chain = _shipped(doc)
    if not chain:
        return
    item, user = _user_of(chain)
    if item is None:
        final, last = chain[0], chain[-1]
        unknown = f" (its base {last['from']} depends on {', '.join(last['unresolved'])}, not given)" \
            if last["unresolved"] else ""
        yield Hit(f"the final stage sets no USER{unknown}, so it runs as the base image's user (root unless the "
                  "base image sets another)", line=int(final["line"]), evidence=f"FROM {final['base_image']}")
        return
    if item["unresolved"]:
        return
    name = (user or "").split(":", 1)[0].strip()
    if name.lower() in ("root", "0", "containeradministrator"):
        yield _hit(f"USER {user} makes the container run as root", item)


def image_tag(reference: str) -> tuple[str, str | None, bool]:
    """(repository, tag or None, pinned by digest) of an image reference."""
    name, at, _digest = reference.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = last.rsplit(":", 1)[1] if ":" in last else None
    repo = name[: len(name) - len(tag) - 1] if tag is not None else name
    return repo, tag, bool(at)


@rule(
    id="MOAT-DF-002",
    title="Base image is not pinned to a version (untagged or ':latest')",
    severity="MEDIUM",
    targets=DF,
    description="FROM without a tag means ':latest', which changes whenever the publisher pushes: builds stop "
                "being reproducible and a new base image (with new packages, users or vulnerabilities) slips "
                "in unreviewed.",
    remediation="Name a version tag, better also the digest:\n"
                "  FROM debian:12.5-slim@sha256:<digest>",
    verification="grep -n '^\\s*FROM' Dockerfile: each image reference (not a build stage name, not scratch) "
                 "has a tag other than latest, or an @sha256: digest.",
    references=(f"{REF}#from", PRACTICES + "#from", _avd(1)),
    controls=("nist-800-190:4.1.5",),
    aliases=(*_trivy(1, "use-specific-tags"), "DL3006", "DL3007"),
)
def latest_tag(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    for stage in _stages(doc):
        item = stage["instructions"][0]
        image = stage["base_image"]
        if stage["base_stage"] is not None or image.lower() == "scratch" or stage["unresolved"]:
            continue
        _repo, tag, pinned = image_tag(image)
        if pinned:
            continue
        if tag is None:
            yield _hit(f"base image {image} has no tag, so it means {image}:latest", item)
        elif tag == "latest":
            yield _hit(f"base image {image} uses the 'latest' tag", item)


def _ports(item: Instruction) -> Iterator[tuple[str, int | None, int | None]]:
    """(as written, first port, last port) of each EXPOSE argument; ports None when not a number."""
    for word in item["args"]:
        spec = word.split("/", 1)[0]
        low, _, high = spec.partition("-")
        try:
            first, last = int(low), int(high or low)
        except ValueError:
            yield word, None, None
            continue
        yield word, first, last


@rule(
    id="MOAT-DF-003",
    title="Port 22 (SSH) exposed",
    severity="MEDIUM",
    targets=DF,
    description="Exposing port 22 means the image runs an SSH server: another way in, with its own credentials "
                "to manage, that container tooling (docker exec, kubectl exec) makes unnecessary.",
    remediation="Remove the SSH server and the EXPOSE 22; get a shell with the container tooling instead:\n"
                "  docker exec -it CONTAINER sh   (or kubectl exec -it POD -- sh)",
    verification="grep -n '^\\s*EXPOSE' Dockerfile must not list 22; for an image: docker inspect --format "
                 "'{{.Config.ExposedPorts}}' IMAGE must not contain 22/tcp.",
    references=(f"{REF}#expose", _avd(4)),
    controls=("nist-800-190:4.1.2",),
    aliases=_trivy(4, "no-ssh-port"),
)
def ssh_port(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    for stage in _stages(doc):
        for item in _instructions(stage, "EXPOSE"):
            for word, first, last in _ports(item):
                if first is not None and last is not None and first <= 22 <= last:
                    yield _hit(f"EXPOSE {word} opens the SSH port", item)


@rule(
    id="MOAT-DF-004",
    title="Port exposed out of range",
    severity="MEDIUM",
    targets=DF,
    description="UNIX ports run from 1 to 65535; anything else is a typo that makes the build fail or the "
                "service unreachable on the port operators expect.",
    remediation="Fix the number: EXPOSE 8080",
    verification="grep -n '^\\s*EXPOSE' Dockerfile: every port (and each end of a range) is between 1 and 65535.",
    references=(f"{REF}#expose", _avd(8)),
    aliases=(*_trivy(8, "port-out-of-range"), "DL3011"),
)
def port_range(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    for stage in _stages(doc):
        for item in _instructions(stage, "EXPOSE"):
            if item["unresolved"]:
                continue
            for word, first, last in _ports(item):
                if first is None or last is None:
                    yield _hit(f"EXPOSE {word} is not a port number", item)
                elif not (1 <= first <= 65535 and 1 <= last <= 65535):
                    yield _hit(f"EXPOSE {word} is outside the port range 1-65535", item)


# ------------------------------------------------------------------------------ ADD and COPY

ARCHIVE = re.compile(r"\.(tar(\.(gz|bz2|xz|zst))?|tgz|tbz2?|txz|tzst)$", re.IGNORECASE)
"""Names of the local archives ADD unpacks (the one thing ADD is for besides remote sources)."""
_REMOTE = re.compile(r"^(https?://|git@|ssh://|git://)", re.IGNORECASE)


def _sources(item: Instruction) -> list[str]:
    args = item["args"]
    return list(args[:-1]) if len(args) >= 2 else []


@rule(
    id="MOAT-DF-005",
    title="ADD used to copy local files (use COPY)",
    severity="LOW",
    targets=DF,
    description="ADD does more than copy: it unpacks archives and fetches URLs. For plain local files that "
                "magic only hides what the instruction does (a renamed tarball is silently unpacked); COPY "
                "does just the copy.",
    remediation="Replace ADD with COPY for local files and directories:\n  COPY app.jar /opt/app/app.jar",
    verification="grep -n '^\\s*ADD' Dockerfile: ADD is only used to unpack a local tar archive (or to fetch a "
                 "URL with --checksum); everything else uses COPY.",
    references=(f"{REF}#add", PRACTICES + "#add-or-copy", CIS, _avd(5)),
    controls=("cis-docker-1.6:4.9", "nist-800-190:4.1.2"),
    aliases=(*_trivy(5, "use-copy-over-add"), "DL3020"),
)
def add_instead_of_copy(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    for stage in _stages(doc):
        for item in _instructions(stage, "ADD", triggers=True):
            local = [src for src in _sources(item) if not _REMOTE.match(src) and not ARCHIVE.search(src)]
            if local:
                yield _hit(f"ADD copies {', '.join(local)}: use COPY", item)


@rule(
    id="MOAT-DF-006",
    title="ADD fetches remote content without a checksum",
    severity="MEDIUM",
    targets=DF,
    description="ADD of a URL or git repository downloads at build time whatever the server returns: a "
                "compromised or changed download lands in the image unnoticed.",
    remediation="Pin the content: ADD --checksum=sha256:<hash> https://example.com/tool.tar.gz /tmp/ (or a git "
                "URL with a full commit hash after #), or download with curl and verify with sha256sum -c.",
    verification="grep -n '^\\s*ADD' Dockerfile: every http(s) source has --checksum=sha256:..., every git source "
                 "ends in #<40-hex commit>.",
    references=(f"{REF}#add---checksum", f"{REF}#adding-files-from-a-url", CIS),
    controls=("cis-docker-1.6:4.9", "nist-800-190:4.1.3"),
)
def add_remote(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    for stage in _stages(doc):
        for item in _instructions(stage, "ADD", triggers=True):
            for src in _sources(item):
                if not _REMOTE.match(src):
                    continue
                is_git = src.lower().startswith(("git@", "git://", "ssh://")) or ".git" in src.split("#", 1)[0]
                if is_git:
                    if not re.search(r"#[0-9a-f]{40}\b", src):
                        yield _hit(f"ADD {src} takes a git ref that is not a commit hash", item)
                elif "checksum" not in item["flags"]:
                    yield _hit(f"ADD {src} downloads without --checksum", item)


@rule(
    id="MOAT-DF-007",
    title="COPY --from refers to its own stage",
    severity="HIGH",
    targets=DF,
    description="A stage cannot copy from itself: COPY --from naming the current stage fails the build or, "
                "when the name is also an image, silently copies from that image instead.",
    remediation="Copy from the earlier stage that builds the file:\n  FROM golang:1.22 AS build\n  ...\n"
                "  FROM debian:12-slim\n  COPY --from=build /out/app /app",
    verification="For each COPY --from=NAME, NAME is an earlier stage (or an image), never the stage the COPY is in.",
    references=(f"{REF}#copy---from", _avd(6)),
    aliases=(*_trivy(6, "no-self-referencing-copy-from"), "DL3023"),
)
def copy_from_self(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    for stage in _stages(doc):
        own = {str(stage["index"])} | ({stage["name"]} if stage["name"] else set())
        for item in _instructions(stage, "COPY"):
            for source in item["flags"].get("from", []):
                if source.lower() in own:
                    yield _hit(f"COPY --from={source} refers to the stage it is in", item)


@rule(
    id="MOAT-DF-008",
    title="COPY or ADD with several sources to a destination without trailing slash",
    severity="MEDIUM",
    targets=DF,
    description="With more than one source the destination must be a directory written with a trailing '/': "
                "otherwise the build fails, or the files are not where the rest of the Dockerfile expects.",
    remediation='End the destination with a slash: COPY ["package.json", "yarn.lock", "/app/"]',
    verification="grep -nE '^\\s*(COPY|ADD)' Dockerfile: each one with more than one source ends in a path ending "
                 "with /.",
    references=(f"{REF}#copy", _avd(11)),
    aliases=(*_trivy(11, "use-slash-for-copy-args"), "DL3021"),
)
def copy_dest_slash(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    for stage in _stages(doc):
        for cmd in ("COPY", "ADD"):
            for item in _instructions(stage, cmd, triggers=True):
                args = item["args"]
                if len(args) > 2 and not args[-1].endswith(("/", "\\")) and not item["unresolved"]:
                    yield _hit(f"{cmd} of {len(args) - 1} sources to {args[-1]}, which does not end with /", item)


# ------------------------------------------------------------------------------ stage structure


@rule(
    id="MOAT-DF-009",
    title="Two build stages share a name",
    severity="MEDIUM",
    targets=DF,
    description="Stage names must be unique: with two stages called the same, FROM and COPY --from pick one "
                "of them and the other's output is silently unused.",
    remediation="Give every stage its own name: FROM debian:12 AS build-tools, FROM golang:1.22 AS build-app",
    verification="grep -niE '^\\s*FROM .* AS ' Dockerfile: no name appears twice (names are case-insensitive).",
    references=(f"{REF}#from", _avd(12)),
    aliases=(*_trivy(12, "no-duplicate-alias"), "DL3024"),
)
def duplicate_stage_names(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    seen: dict[str, int] = {}
    for stage in _stages(doc):
        name = stage["name"]
        if not name:
            continue
        if name in seen:
            yield _hit(f"stage name {name!r} is already used by the stage at line {seen[name]}",
                       stage["instructions"][0])
        else:
            seen[name] = int(stage["line"])


def _repeated(cmd: str, doc: Document) -> Iterator[Hit]:
    for stage in _stages(doc):
        items = list(_instructions(stage, cmd))
        for item in items[1:]:
            yield _hit(f"{cmd} repeats the {cmd} at line {items[0]['line']} in stage "
                       f"{stage['name'] or stage['index']}: only the last one takes effect", item)


@rule(
    id="MOAT-DF-010",
    title="Several ENTRYPOINT instructions in one stage",
    severity="MEDIUM",
    targets=DF,
    description="Only the last ENTRYPOINT of a stage counts; the others mislead the reader about what the "
                "container runs.",
    remediation="Keep a single ENTRYPOINT per stage.",
    verification="Count ENTRYPOINT lines per FROM block of the Dockerfile: at most one each.",
    references=(f"{REF}#entrypoint", _avd(7)),
    aliases=(*_trivy(7, "only-one-entrypoint"), "DL4004"),
)
def multiple_entrypoint(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    yield from _repeated("ENTRYPOINT", doc)


@rule(
    id="MOAT-DF-011",
    title="Several CMD instructions in one stage",
    severity="MEDIUM",
    targets=DF,
    description="Only the last CMD of a stage counts; the others mislead the reader about what the container "
                "runs.",
    remediation="Keep a single CMD per stage.",
    verification="Count CMD lines per FROM block of the Dockerfile: at most one each.",
    references=(f"{REF}#cmd", _avd(16)),
    aliases=(*_trivy(16, "only-one-cmd"), "DL4003"),
)
def multiple_cmd(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    yield from _repeated("CMD", doc)


@rule(
    id="MOAT-DF-012",
    title="Several HEALTHCHECK instructions in one stage",
    severity="LOW",
    targets=DF,
    description="Only the last HEALTHCHECK of a stage counts; an earlier one that looks like the check in force "
                "is not.",
    remediation="Keep a single HEALTHCHECK per stage.",
    verification="Count HEALTHCHECK lines per FROM block of the Dockerfile: at most one each.",
    references=(f"{REF}#healthcheck", _avd(23)),
    aliases=(*_trivy(23, "only-one-healthcheck"), "DL3012"),
)
def multiple_healthcheck(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    yield from _repeated("HEALTHCHECK", doc)


@rule(
    id="MOAT-DF-013",
    title="No HEALTHCHECK in the image",
    severity="LOW",
    targets=DF,
    description="Without a HEALTHCHECK the engine only knows whether the process is alive, not whether it "
                "works: a hung service keeps receiving traffic and is never restarted.",
    remediation="Add a check to the final stage:\n"
                "  HEALTHCHECK --interval=30s --timeout=3s CMD curl -fsS http://localhost:8080/health || exit 1",
    verification="grep -n '^\\s*HEALTHCHECK' Dockerfile shows a HEALTHCHECK CMD in the final stage; for an "
                 "image: docker inspect --format '{{.Config.Healthcheck}}' IMAGE is not empty.",
    references=(f"{REF}#healthcheck", CIS, _avd(26)),
    controls=("cis-docker-1.6:4.6", "nist-800-190:4.1.2"),
    aliases=_trivy(26, "no-healthcheck"),
)
def no_healthcheck(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    chain = _shipped(doc)
    if not chain:
        return
    for stage in chain:
        checks = list(_instructions(stage, "HEALTHCHECK"))
        if checks:
            last = checks[-1]
            if last["args"][:1] == ["NONE"]:
                yield _hit("HEALTHCHECK NONE disables the health check", last)
            return
    final = chain[0]
    yield Hit("the final stage defines no HEALTHCHECK", line=int(final["line"]),
              evidence=f"FROM {final['base_image']}")


@rule(
    id="MOAT-DF-014",
    title="MAINTAINER is deprecated",
    severity="LOW",
    targets=DF,
    description="MAINTAINER is deprecated; tools read the author from labels.",
    remediation='Use a label: LABEL org.opencontainers.image.authors="team@example.com"',
    verification="grep -n '^\\s*MAINTAINER' Dockerfile finds nothing.",
    references=(f"{REF}#maintainer-deprecated", _avd(22)),
    aliases=(*_trivy(22, "no-maintainer"), "DL4000"),
)
def maintainer(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    for stage in _stages(doc):
        for item in _instructions(stage, "MAINTAINER"):
            yield _hit("MAINTAINER is deprecated: use LABEL org.opencontainers.image.authors", item)


# ------------------------------------------------------------------------------ WORKDIR


def _absolute(path: str) -> bool:
    return path.startswith(("/", "\\")) or bool(re.match(r"^[A-Za-z]:[\\/]", path))


@rule(
    id="MOAT-DF-015",
    title="WORKDIR is a relative path",
    severity="MEDIUM",
    targets=DF,
    description="A relative WORKDIR depends on every WORKDIR before it, including the base image's: moving or "
                "changing one instruction silently moves where files land and commands run.",
    remediation="Use an absolute path: WORKDIR /opt/app",
    verification="grep -n '^\\s*WORKDIR' Dockerfile: every path starts with /.",
    references=(f"{REF}#workdir", PRACTICES + "#workdir", _avd(9)),
    aliases=(*_trivy(9, "user-absolute-workdir"), "DL3000"),
)
def relative_workdir(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    for stage in _stages(doc):
        for item in _instructions(stage, "WORKDIR"):
            path = item["args"][0] if item["args"] else ""
            if path and not item["unresolved"] and not _absolute(path):
                yield _hit(f"WORKDIR {path} is relative", item)


_SYSTEM_DIRS = ("/proc", "/boot", "/dev", "/initrd", "/lost+found", "/sys")


@rule(
    id="MOAT-DF-016",
    title="WORKDIR in a system directory",
    severity="HIGH",
    targets=DF,
    description="A WORKDIR under /proc, /sys, /dev or /boot makes the application write into kernel and device "
                "interfaces when the container runs, a classic container-escape path.",
    remediation="Work in an application directory: WORKDIR /opt/app",
    verification="grep -n '^\\s*WORKDIR' Dockerfile: no path under /proc, /sys, /dev, /boot, /initrd or /lost+found.",
    references=(f"{REF}#workdir", _avd(30)),
    controls=("nist-800-190:4.1.2",),
    aliases=("DS-0030", "DS030", "AVD-DS-0030", "avoid-sys-workdir-mounts"),
)
def system_workdir(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    for stage in _stages(doc):
        for item in _instructions(stage, "WORKDIR"):
            path = (item["args"][0] if item["args"] else "").rstrip("/") or "/"
            if any(path == d or path.startswith(d + "/") for d in _SYSTEM_DIRS):
                yield _hit(f"WORKDIR {path} is a system directory", item)


# ------------------------------------------------------------------------------ RUN: commands


def _commands_of(stages: Iterable[Stage]) -> Iterator[tuple[Instruction, list[str]]]:
    for _stage, item in _runs(stages):
        for argv in _commands(item):
            if argv:
                yield item, argv


@rule(
    id="MOAT-DF-017",
    title="RUN uses sudo",
    severity="HIGH",
    targets=DF,
    description="sudo in a build means the image carries sudo and a sudoers policy, a privilege-escalation "
                "path from the runtime user back to root. Build steps that need root should run before USER.",
    remediation="Run the step as root before switching user, and remove sudo:\n"
                "  USER root\n  RUN apt-get install -y --no-install-recommends curl\n  USER app",
    verification="grep -n 'sudo' Dockerfile finds no RUN that calls sudo.",
    references=(f"{REF}#user", PRACTICES + "#user", _avd(10)),
    controls=("nist-800-190:4.1.2",),
    aliases=(*_trivy(10, "no-sudo-run"), "DL3004"),
)
def sudo(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    for _stage, item in _runs(_stages(doc)):
        if any(_is(command["argv"], "sudo") for command in item.get("commands", [])):
            yield _hit("RUN calls sudo", item)


@rule(
    id="MOAT-DF-018",
    title="RUN cd instead of WORKDIR",
    severity="LOW",
    targets=DF,
    description="A cd lasts for one RUN only; the next instruction is back in the WORKDIR. WORKDIR states the "
                "directory once, for every later instruction, and is easier to audit.",
    remediation="Use WORKDIR /usr/src/app and drop the cd.",
    verification="grep -nE 'RUN.*\\bcd ' Dockerfile finds nothing.",
    references=(f"{REF}#workdir", PRACTICES + "#workdir", _avd(13)),
    aliases=(*_trivy(13, "use-workdir-over-cd"), "DL3003"),
)
def run_cd(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    for _stage, item in _runs(_stages(doc)):
        for command in item.get("commands", []):
            argv = command["argv"]
            if argv and argv[0] == "cd" and not command.get("depth"):  # ( cd dir && make ) is scoped on purpose
                target = argv[1] if len(argv) > 1 else "~"
                yield _hit(f"RUN changes directory with cd {target}: use WORKDIR", item)
                break


@rule(
    id="MOAT-DF-019",
    title="Both wget and curl are used",
    severity="LOW",
    targets=DF,
    description="Using both downloaders means installing and patching both; one is enough.",
    remediation="Standardise on one of them (curl -fsSL or wget -qO-) in every RUN.",
    verification="grep -nE '\\b(curl|wget)\\b' Dockerfile shows only one of the two tools.",
    references=(PRACTICES, _avd(14)),
    aliases=(*_trivy(14, "standardise-remote-get"), "DL4001"),
)
def wget_and_curl(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    uses: dict[str, list[Instruction]] = {"wget": [], "curl": []}
    for item, argv in _commands_of(_stages(doc)):
        tool = _program(argv[0])
        if tool in uses and item not in uses[tool]:
            uses[tool].append(item)
    if uses["wget"] and uses["curl"]:
        # point at the tool used less (wget on a tie): that is the one to replace
        rare, common = ("wget", "curl") if len(uses["wget"]) <= len(uses["curl"]) else ("curl", "wget")
        yield _hit(f"RUN uses {rare} while the rest of the Dockerfile uses {common}", uses[rare][0])


def _pipelines(item: Instruction) -> Iterator[list[list[str]]]:
    pipeline: list[list[str]] = []
    for command in item.get("commands", []):
        if command["op"] != "|" and pipeline:
            yield pipeline
            pipeline = []
        pipeline.append(effective(command["argv"]))
    if pipeline:
        yield pipeline


@rule(
    id="MOAT-DF-020",
    title="RUN pipes a download into a shell",
    severity="HIGH",
    targets=DF,
    description="curl ... | sh runs whatever the server sends at build time, unverified: a compromised or "
                "hijacked download becomes code running as root in the build, and the image carries its result.",
    remediation="Download to a file, verify it, then run it:\n"
                "  RUN curl -fsSLo /tmp/install.sh https://example.com/install.sh \\\n"
                "   && echo '<sha256>  /tmp/install.sh' | sha256sum -c - && sh /tmp/install.sh",
    verification="grep -nE '(curl|wget)[^|]*\\|\\s*(sudo\\s+)?(ba|da|z|k)?sh' Dockerfile finds nothing.",
    references=(PRACTICES + "#using-pipes", CIS),
    controls=("nist-800-190:4.1.3",),
)
def curl_pipe_shell(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    interpreters = SHELLS | {"python", "python3", "perl", "ruby", "node"}
    for _stage, item in _runs(_stages(doc)):
        for pipeline in _pipelines(item):
            downloads = [argv for argv in pipeline if _is(argv, "curl", "wget")]
            runners = [argv for argv in pipeline[1:] if argv and _program(argv[0]) in interpreters]
            if downloads and runners:
                yield _hit(f"RUN pipes {_program(downloads[0][0])} into {_program(runners[0][0])}", item)
                break


def _pipefail_shell(shell: list[str]) -> bool:
    for i, word in enumerate(shell[:-1]):
        if (word == "-o" or (word.startswith("-") and not word.startswith("--") and word.endswith("o"))) \
                and shell[i + 1] == "pipefail":
            return True
    return False


@rule(
    id="MOAT-DF-021",
    title="RUN with a pipe but without pipefail",
    severity="LOW",
    targets=DF,
    description="A pipeline's status is its last command's: in RUN curl -fsSL URL | tar xz a failed download "
                "still 'succeeds', and the image is built without what it should contain.",
    remediation='Set pipefail for the stage: SHELL ["/bin/bash", "-o", "pipefail", "-c"], or start the RUN '
                "with set -o pipefail &&.",
    verification="For every RUN containing |: the stage has SHELL [..., \"-o\", \"pipefail\", ...] or the RUN runs "
                 "set -o pipefail first.",
    references=(PRACTICES + "#using-pipes", "https://avd.aquasec.com/misconfig/ds-0032"),
    aliases=("DS-0032", "DS032", "AVD-DS-0032", "docker-pipefail", "DL4006"),
)
def pipefail(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    for _stage, item in _runs(_stages(doc)):
        commands = item.get("commands", [])
        if item["json_form"] or _pipefail_shell(item.get("shell", [])):
            continue
        for index, command in enumerate(commands):
            if command["op"] != "|":
                continue
            before = commands[:index]
            if not any(_is(c["argv"], "set") and "pipefail" in c["argv"] for c in before):
                yield _hit("RUN uses a pipe without set -o pipefail", item)
            break


# ------------------------------------------------------------------------------ RUN: package managers

APT = ("apt-get", "apt")
APT_PROMPTS = frozenset({"install", "upgrade", "dist-upgrade", "full-upgrade", "remove", "purge", "autoremove",
                         "build-dep", "reinstall"})


def _apt_yes(argv: list[str]) -> bool:
    quiet = 0
    for i, word in enumerate(argv):
        if word in ("-y", "--yes", "--assume-yes", "--force-yes") or word.startswith("--assume-yes="):
            return True
        if word in ("--quiet=2", "-q=2"):
            return True
        if word.startswith("-") and not word.startswith("--") and not word.startswith(("-o", "-c", "-t")):
            if "y" in word:
                return True
            quiet += word.count("q")
        if word == "-o" and i + 1 < len(argv) and argv[i + 1].lower().startswith("apt::get::assume-yes=true"):
            return True
    return quiet >= 2


@rule(
    id="MOAT-DF-022",
    title="apt-get without -y",
    severity="MEDIUM",
    targets=DF,
    description="apt-get asks for confirmation; a build has no one to answer, so the step fails or hangs.",
    remediation="Add -y: RUN apt-get install -y --no-install-recommends curl",
    verification="Every apt-get install/upgrade/remove in the Dockerfile carries -y (or --yes, -qq).",
    references=(PRACTICES + "#apt-get", _avd(21)),
    aliases=(*_trivy(21, "use-apt-auto-confirm"), "DL3014"),
)
def apt_yes(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    for item, argv in _commands_of(_stages(doc)):
        if _is(argv, *APT) and _subcommand(argv) in APT_PROMPTS and not _apt_yes(argv):
            yield _hit(f"{_program(argv[0])} {_subcommand(argv)} without -y", item, " ".join(argv))


@rule(
    id="MOAT-DF-023",
    title="apt-get install without --no-install-recommends",
    severity="LOW",
    targets=DF,
    description="Recommended packages are installed by default: the image grows and carries software (and "
                "vulnerabilities) nobody asked for.",
    remediation="RUN apt-get install -y --no-install-recommends curl",
    verification="Every apt-get install in the final stage carries --no-install-recommends.",
    references=(PRACTICES + "#apt-get", _avd(29)),
    controls=("nist-800-190:4.1.2",),
    aliases=(*_trivy(29, "use-apt-no-install-recommends"), "DL3015"),
)
def apt_recommends(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    for item, argv in _commands_of(_shipped(doc)):
        if _is(argv, *APT) and _subcommand(argv) == "install":
            if "--no-install-recommends" in argv or any(
                    re.match(r"(?i)apt::install-recommends=(false|0)", word) for word in argv):
                continue
            yield _hit(f"{_program(argv[0])} install without --no-install-recommends", item, " ".join(argv))


@rule(
    id="MOAT-DF-024",
    title="apt lists left in the image",
    severity="LOW",
    targets=DF,
    description="apt-get update downloads the package lists into /var/lib/apt/lists; left in the layer they "
                "add tens of megabytes and a stale view of the archive.",
    remediation="Remove them in the same RUN: RUN apt-get update && apt-get install -y --no-install-recommends "
                "curl && rm -rf /var/lib/apt/lists/*",
    verification="Every RUN of the final stage that installs with apt-get ends with rm -rf /var/lib/apt/lists/*.",
    references=(PRACTICES + "#apt-get",),
    aliases=("DL3009",),
)
def apt_lists(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    for _stage, item in _runs(_shipped(doc)):
        commands = _commands(item)
        installs = [i for i, argv in enumerate(commands) if _is(argv, *APT) and _subcommand(argv) == "install"]
        if not installs or _cache_mount(item, "/var/lib/apt"):
            continue
        if not any(_removes(argv, "/var/lib/apt/lists") for argv in commands[installs[-1]:]):
            yield _hit("apt-get install without removing /var/lib/apt/lists/* in the same RUN", item)


@rule(
    id="MOAT-DF-025",
    title="apt-get dist-upgrade in the build",
    severity="LOW",
    targets=DF,
    description="dist-upgrade may install, remove and replace packages of the base image, including essential "
                "ones: the result depends on the day of the build. Rebuild on a patched base image instead.",
    remediation="Use an up-to-date base image tag, or apt-get upgrade -y for security updates only.",
    verification="grep -nE 'apt(-get)? (dist|full)-upgrade' Dockerfile finds nothing.",
    references=(PRACTICES + "#apt-get", _avd(24)),
    aliases=_trivy(24, "no-dist-upgrade"),
)
def dist_upgrade(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    for item, argv in _commands_of(_stages(doc)):
        if _is(argv, *APT) and _subcommand(argv) in ("dist-upgrade", "full-upgrade"):
            yield _hit(f"{_program(argv[0])} {_subcommand(argv)} in the build", item, " ".join(argv))


_REFRESH = {"apt-get": {"update"}, "apt": {"update"}, "apk": {"update"}, "zypper": {"refresh", "ref"},
            "yum": {"makecache"}, "dnf": {"makecache"}, "microdnf": {"makecache"}}
_INSTALL = {"apt-get": {"install", "upgrade", "dist-upgrade", "full-upgrade", "build-dep", "reinstall"},
            "apt": {"install", "upgrade", "dist-upgrade", "full-upgrade", "build-dep", "reinstall"},
            "apk": {"add", "upgrade", "fix"},
            "zypper": {"install", "in", "update", "up", "dist-upgrade", "dup", "patch", "source-install", "si"},
            "yum": {"install", "update", "upgrade", "groupinstall", "localinstall", "reinstall"},
            "dnf": {"install", "update", "upgrade", "groupinstall", "reinstall", "distro-sync"},
            "microdnf": {"install", "update", "upgrade", "reinstall"}}
_FAMILY = {"apt": "apt-get", "apt-get": "apt-get", "apk": "apk", "zypper": "zypper", "yum": "rpm", "dnf": "rpm",
           "microdnf": "rpm"}


def orphan_updates(commands: list[list[str]]) -> list[str]:
    """The package-index refreshes (``apt-get update``, ``apk update``, ``zypper refresh``, ``dnf makecache``)
    in one RUN's commands that no install or upgrade by the same package manager follows in that RUN."""
    refreshed: list[tuple[str, str]] = []
    installed: set[str] = set()
    for argv in commands:
        if not argv:
            continue
        tool = _program(argv[0])
        sub = _subcommand(argv) if tool in APT else _first_word(argv)
        if sub in _REFRESH.get(tool, ()):
            refreshed.append((tool, sub))
        if sub in _INSTALL.get(tool, ()) or (tool == "apk" and "--update" in argv):
            installed.add(_FAMILY[tool])
    return [f"{tool} {sub}" for tool, sub in refreshed if _FAMILY[tool] not in installed]


@rule(
    id="MOAT-DF-026",
    title="Package index update alone in a RUN",
    severity="MEDIUM",
    targets=DF,
    description="apt-get update in its own RUN is cached as its own layer: later builds reuse the stale index "
                "and install old, vulnerable package versions (or fail on vanished ones). The update must be "
                "in the same RUN as the install.",
    remediation="RUN apt-get update && apt-get install -y --no-install-recommends curl && rm -rf /var/lib/apt/lists/*",
    verification="Every RUN with apt-get update (apk update, zypper refresh, dnf makecache) also installs in "
                 "the same RUN; docker history IMAGE shows no layer that only updates.",
    references=(PRACTICES + "#apt-get", CIS, _avd(17)),
    controls=("cis-docker-1.6:4.7", "nist-800-190:4.1.1"),
    aliases=_trivy(17, "no-orphan-package-update"),
)
def update_alone(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    for _stage, item in _runs(_stages(doc)):
        orphans = orphan_updates(_commands(item))
        if orphans:
            yield _hit(f"{orphans[0]} without an install in the same RUN", item)


def _first_word(argv: list[str]) -> str:
    return next((word for word in argv[1:] if not word.startswith("-")), "")


def _cache_rule(tool: tuple[str, ...], cleans: tuple[tuple[str, ...], ...], cache_dirs: tuple[str, ...],
                doc: Document, message: str) -> Iterator[Hit]:
    """RUNs of the shipped stages that install with ``tool`` and do not clean its cache afterwards."""
    installs = {"install", "groupinstall", "localinstall", "reinstall", "in", "si", "source-install"}
    for _stage, item in _runs(_shipped(doc)):
        commands = _commands(item)
        last = max((i for i, argv in enumerate(commands) if _is(argv, *tool) and _first_word(argv) in installs),
                   default=-1)
        if last < 0 or _cache_mount(item, *cache_dirs):
            continue
        after = commands[last + 1:]
        cleaned = any(_is(argv, *tool) and tuple(w for w in argv[1:] if not w.startswith("-"))[:len(clean)] == clean
                      for argv in after for clean in cleans)
        if not cleaned and not any(_removes(argv, *cache_dirs) for argv in after):
            yield _hit(message, item)


@rule(
    id="MOAT-DF-027",
    title="yum install without yum clean all",
    severity="LOW",
    targets=DF,
    description="yum keeps downloaded packages and metadata in /var/cache/yum; left in the layer they bloat "
                "the image.",
    remediation="RUN yum install -y httpd && yum clean all && rm -rf /var/cache/yum",
    verification="Every RUN of the final stage with yum install ends with yum clean all.",
    references=(PRACTICES, _avd(15)),
    aliases=(*_trivy(15, "purge-yum-package-cache"), "DL3032"),
)
def yum_clean(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    yield from _cache_rule(("yum",), (("clean", "all"),), ("/var/cache/yum",), doc,
                           "yum install without yum clean all in the same RUN")


@rule(
    id="MOAT-DF-028",
    title="dnf install without dnf clean all",
    severity="LOW",
    targets=DF,
    description="dnf keeps downloaded packages and metadata in /var/cache/dnf; left in the layer they bloat "
                "the image.",
    remediation="RUN dnf install -y httpd && dnf clean all",
    verification="Every RUN of the final stage with dnf install ends with dnf clean all.",
    references=(PRACTICES, _avd(19)),
    aliases=(*_trivy(19, "purge-dnf-package-cache"), "DL3040"),
)
def dnf_clean(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    yield from _cache_rule(("dnf",), (("clean", "all"),), ("/var/cache/dnf",), doc,
                           "dnf install without dnf clean all in the same RUN")


@rule(
    id="MOAT-DF-029",
    title="microdnf install without microdnf clean all",
    severity="LOW",
    targets=DF,
    description="microdnf keeps downloaded packages and metadata in /var/cache/yum; left in the layer they "
                "bloat the image.",
    remediation="RUN microdnf install -y httpd && microdnf clean all",
    verification="Every RUN of the final stage with microdnf install ends with microdnf clean all.",
    references=(PRACTICES, _avd(27)),
    aliases=_trivy(27, "purge-microdnf-package-cache"),
)
def microdnf_clean(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    yield from _cache_rule(("microdnf",), (("clean", "all"),), ("/var/cache/yum", "/var/cache/dnf"), doc,
                           "microdnf install without microdnf clean all in the same RUN")


@rule(
    id="MOAT-DF-030",
    title="zypper install without zypper clean",
    severity="LOW",
    targets=DF,
    description="zypper keeps downloaded packages and metadata in /var/cache/zypp; left in the layer they "
                "bloat the image.",
    remediation="RUN zypper install -y httpd && zypper clean",
    verification="Every RUN of the final stage with zypper install ends with zypper clean (or zypper cc).",
    references=(PRACTICES, _avd(20)),
    aliases=(*_trivy(20, "purge-zipper-cache"), "DL3036"),
)
def zypper_clean(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    yield from _cache_rule(("zypper",), (("clean",), ("cc",)), ("/var/cache/zypp",), doc,
                           "zypper install without zypper clean in the same RUN")


@rule(
    id="MOAT-DF-031",
    title="apk add without --no-cache",
    severity="LOW",
    targets=DF,
    description="apk add keeps the package index in /var/cache/apk unless told not to; left in the layer it "
                "bloats the image.",
    remediation="RUN apk add --no-cache curl",
    verification="Every apk add in the final stage carries --no-cache (or the RUN removes /var/cache/apk/*).",
    references=("https://wiki.alpinelinux.org/wiki/Alpine_Package_Keeper", _avd(25)),
    aliases=(*_trivy(25, "purge-apk-package-cache"), "DL3019"),
)
def apk_no_cache(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    for _stage, item in _runs(_shipped(doc)):
        commands = _commands(item)
        if _cache_mount(item, "/var/cache/apk", "/etc/apk/cache"):
            continue
        for index, argv in enumerate(commands):
            if (_is(argv, "apk") and _first_word(argv) == "add" and "--no-cache" not in argv
                    and not any(_removes(later, "/var/cache/apk") for later in commands[index + 1:])):
                yield _hit("apk add without --no-cache", item, " ".join(argv))
                break


# ------------------------------------------------------------------------------ CMD and ENTRYPOINT form


@rule(
    id="MOAT-DF-032",
    title="ENTRYPOINT or CMD in shell form",
    severity="LOW",
    targets=DF,
    description="In shell form the container's PID 1 is /bin/sh -c, which does not forward SIGTERM: the "
                "application is killed after the stop timeout instead of shutting down cleanly.",
    remediation='Use the JSON (exec) form: ENTRYPOINT ["/usr/local/bin/app", "--port", "8080"]',
    verification="The final stage's ENTRYPOINT (or CMD when there is no ENTRYPOINT) is written as a JSON array.",
    references=(f"{REF}#entrypoint", f"{REF}#shell-and-exec-form"),
    aliases=("DL3025",),
)
def shell_form_entrypoint(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    chain = _shipped(doc)
    if not chain:
        return
    final = chain[0]
    for cmd in ("ENTRYPOINT", "CMD"):
        items = list(_instructions(final, cmd))
        if items:
            last = items[-1]
            if not last["json_form"] and last["args"]:
                yield _hit(f"{cmd} in shell form runs under /bin/sh -c as PID 1", last)
            return


# ------------------------------------------------------------------------------ registries


def full_reference(reference: str) -> str:
    """``debian:12`` → ``docker.io/library/debian:12``: the form allowed-registry lists are matched on."""
    first, sep, _rest = reference.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        registry = first.lower()
        if registry in ("index.docker.io", "registry-1.docker.io"):
            return "docker.io/" + reference[len(first) + 1:]
        return registry + reference[len(first):]
    return "docker.io/" + (reference if sep else f"library/{reference}")


def _allowed_prefix(entry: str) -> str:
    """An allowed-registry entry as a prefix of :func:`full_reference`: a registry (``ghcr.io``), a
    registry path (``ghcr.io/org``), or a Docker Hub namespace (``bitnami``)."""
    entry = entry.strip().rstrip("/").lower()
    first = entry.split("/", 1)[0]
    if "." in first or ":" in first or first == "localhost":
        return "docker.io" + entry[len(first):] if first in ("index.docker.io", "registry-1.docker.io") else entry
    return f"docker.io/{entry}"


def registry_allowed(reference: str, allowed: Iterable[str]) -> bool:
    """Whether ``reference`` is under one of ``allowed`` (see :func:`_allowed_prefix`)."""
    full = full_reference(reference).lower()
    return any(full == prefix or full.startswith(prefix + "/")
               for prefix in (_allowed_prefix(entry) for entry in allowed) if prefix)


@rule(
    id="MOAT-DF-033",
    title="Base image from a registry that is not allowed",
    severity="HIGH",
    targets=DF,
    description="Images from registries outside the ones the organisation trusts have not gone through its "
                "review, scanning and signing; a typo-squatted or compromised public image enters the build.",
    remediation="Pull base images from an allowed registry (a mirror of the public image if needed):\n"
                "  FROM registry.example.com/mirror/debian:12-slim",
    verification="grep -n '^\\s*FROM' Dockerfile: every image (not a stage name, not scratch) starts with one of "
                 "the allowed registries (the template's allowed_registries parameter).",
    references=(f"{REF}#from", "https://docs.docker.com/docker-hub/image-library/trusted-content/"),
    controls=("nist-800-190:4.1.5",),
    aliases=("DL3026",),
    params={"allowed_registries": []},
)
def allowed_registry(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    allowed = [str(entry) for entry in ctx.params.get("allowed_registries") or []]
    if not allowed:
        return
    for stage in _stages(doc):
        item = stage["instructions"][0]
        image = stage["base_image"]
        if stage["base_stage"] is not None or image.lower() == "scratch" or stage["unresolved"]:
            continue
        if not registry_allowed(image, allowed):
            yield _hit(f"base image {image} is not from an allowed registry ({', '.join(allowed)})", item)


# ------------------------------------------------------------------------------ integrity of what is installed

_APT_UNSIGNED = ("--allow-unauthenticated", "--allow-insecure-repositories", "--force-yes")
_APT_UNSIGNED_OPTIONS = re.compile(r"(?i)^(apt::get::allowunauthenticated|acquire::allowinsecurerepositories|"
                                   r"acquire::allowdowngradetoinsecurerepositories)=(true|1|yes)$")


def unsigned_install(argv: list[str]) -> str:
    """What in ``argv`` turns off package signature checking (empty when nothing does)."""
    if not argv:
        return ""
    tool = _program(argv[0])
    if tool in APT:
        for index, word in enumerate(argv):
            if word in _APT_UNSIGNED:
                return word
            option = argv[index + 1] if word == "-o" and index + 1 < len(argv) else (
                word[2:] if word.startswith("-o") else "")
            if _APT_UNSIGNED_OPTIONS.match(option):
                return option
    if tool in ("yum", "dnf", "microdnf", "tdnf") and any(w in ("--nogpgcheck", "--setopt=gpgcheck=0",
                                                                "--setopt=gpgcheck=false") for w in argv):
        return "--nogpgcheck"
    if tool == "zypper" and any(w in ("--no-gpg-checks", "--gpg-auto-import-keys") for w in argv):
        return next(w for w in argv if w in ("--no-gpg-checks", "--gpg-auto-import-keys"))
    if tool == "apk" and "--allow-untrusted" in argv:
        return "--allow-untrusted"
    if tool == "rpm" and any(w in ("--nosignature", "--nodigest", "--nogpg") for w in argv):
        return next(w for w in argv if w in ("--nosignature", "--nodigest", "--nogpg"))
    if tool == "dpkg" and any(w.startswith("--force-bad-verify") for w in argv):
        return "--force-bad-verify"
    return ""


@rule(
    id="MOAT-DF-034",
    title="Package signature checks turned off",
    severity="HIGH",
    targets=DF,
    description="Package managers verify that packages are signed by the distribution; --allow-unauthenticated, "
                "--nogpgcheck, --allow-untrusted and the like turn that off, so a mirror or network attacker can "
                "serve any package and it is installed as root.",
    remediation="Remove the flag and import the repository's signing key instead:\n"
                "  RUN curl -fsSL https://repo.example.com/key.gpg | gpg --dearmor -o /usr/share/keyrings/example.gpg",
    verification="grep -nE -- '--allow-unauthenticated|--allow-insecure|--force-yes|--nogpgcheck|gpgcheck=0|"
                 "--no-gpg-checks|--allow-untrusted|--nosignature' Dockerfile finds nothing.",
    references=("https://wiki.debian.org/SecureApt", "https://docs.docker.com/build/building/best-practices/",
                CIS),
    controls=("nist-800-190:4.1.3",),
)
def unsigned_packages(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    for item, argv in _commands_of(_stages(doc)):
        flag = unsigned_install(argv)
        if flag:
            yield _hit(f"{_program(argv[0])} runs with {flag}: package signatures are not checked", item,
                       " ".join(argv))


def insecure_download(argv: list[str]) -> str:
    """What in ``argv`` turns off TLS certificate verification of a download (empty when nothing does)."""
    if not argv:
        return ""
    tool = _program(argv[0])
    if tool == "curl":
        for word in argv[1:]:
            if word == "--insecure" or (word.startswith("-") and not word.startswith("--") and "k" in word[1:]):
                return "-k" if word != "--insecure" else word
    if tool == "wget" and "--no-check-certificate" in argv:
        return "--no-check-certificate"
    if tool in ("pip", "pip3") or (tool.startswith("python") and argv[1:3] == ["-m", "pip"]):
        flag = next((w for w in argv if w == "--trusted-host" or w.startswith("--trusted-host=")), "")
        if flag:
            return "--trusted-host"
    if tool == "git" and any(w.lower() in ("http.sslverify=false", "http.sslverify=0") for w in argv):
        return "http.sslVerify=false"
    if tool in ("npm", "yarn", "pnpm") and "strict-ssl" in argv and "false" in argv:
        return "strict-ssl false"
    return ""


@rule(
    id="MOAT-DF-035",
    title="Download without TLS certificate verification",
    severity="MEDIUM",
    targets=DF,
    description="curl -k, wget --no-check-certificate, pip --trusted-host and similar accept any certificate: "
                "whoever sits on the network path of the build can replace what is downloaded.",
    remediation="Drop the flag and trust the right CA instead (install ca-certificates, or COPY the internal CA "
                "into /usr/local/share/ca-certificates and run update-ca-certificates).",
    verification="grep -nE -- 'curl .*(-k|--insecure)|--no-check-certificate|--trusted-host|sslVerify=false|"
                 "strict-ssl false' Dockerfile finds nothing.",
    references=("https://curl.se/docs/sslcerts.html", PRACTICES),
    controls=("nist-800-190:4.1.3",),
)
def tls_disabled(doc: Document, ctx: RuleContext) -> Iterable[Hit]:
    for item, argv in _commands_of(_stages(doc)):
        flag = insecure_download(argv)
        if flag:
            yield _hit(f"{_program(argv[0])} runs with {flag}: the server's certificate is not checked", item,
                       " ".join(argv))
