"""Image rules on real images (built by tests/fixtures/images.py and inventoried by Moat) and on
constructed configs for what the test images do not have."""

from __future__ import annotations

import json
import posixpath
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fixtures.images import BuiltImage, alpine_image, debian_image
from moat.checks.engine import FAIL, MANUAL, PASS, evaluate
from moat.checks.rule import builtin_rules
from moat.checks.rules.image_config import step
from moat.checks.targets.image_config import image_config_document
from moat.inventory.target import inventory_target
from moat.model import Artifact, Inventory, LayerInfo


def run(doc: Any, rule_id: str, params: dict[str, Any] | None = None) -> list[str]:
    outcome = evaluate([doc], [builtin_rules()[rule_id]], params=params)
    return [f.message for f in outcome.findings if f.status == FAIL]


def constructed(config: dict[str, Any] | None = None, *, created: str | None = None,
                history: list[str] | None = None, tags: list[str] | None = None, name: str = "app") -> Any:
    layers = [LayerInfo(f"sha256:{index:064x}", created_by=text) for index, text in enumerate(history or [])]
    artifact = Artifact(name=name, type="container_image", created=created, config=config or {}, layers=layers,
                        repo_tags=tags or [], os="linux")
    return image_config_document(Inventory(artifact), name)


# ------------------------------------------------------------------------------ real images


def setuid_walk(image: BuiltImage) -> list[dict[str, Any]]:
    """Setuid/setgid regular files of every layer of the image's docker-archive, read with tarfile."""
    found = []
    with tarfile.open(image.docker_archive) as archive:
        manifest = json.load(archive.extractfile("manifest.json"))  # type: ignore[arg-type]
        for layer_name in manifest[0]["Layers"]:
            member = archive.getmember(layer_name)
            if member.issym():  # older docker-save layouts link <id>/layer.tar to the blob
                member = archive.getmember(posixpath.normpath(posixpath.join(posixpath.dirname(layer_name),
                                                                             member.linkname)))
            for entry in _entries(archive.extractfile(member)):
                if entry.isfile() and entry.mode & 0o6000:
                    found.append({"path": entry.name.removeprefix("./"), "mode": entry.mode,
                                  "layer": "sha256:" + Path(member.name).stem})
    return found


def _entries(blob: Any) -> list[tarfile.TarInfo]:
    """Every member of a layer tar; umoci's layers end without the final padding Python's tarfile wants."""
    entries = []
    with tarfile.open(fileobj=blob, mode="r|") as layer:
        try:
            for entry in layer:
                entries.append(entry)
        except tarfile.ReadError:
            pass  # the truncated end-of-archive padding, after the last member
    return entries


@pytest.fixture(scope="module")
def debian() -> tuple[Any, list[dict[str, Any]]]:
    image = debian_image()
    inventory = inventory_target(image.target("docker-archive"))
    files = setuid_walk(image)
    return image_config_document(inventory, image.target("docker-archive"), setuid_files=files), files


@pytest.mark.images
@pytest.mark.xdist_group("images")
def test_real_debian_image(debian: tuple[Any, list[dict[str, Any]]]) -> None:
    doc, files = debian
    assert doc.data["config"]["Cmd"] == ["/bin/bash"]
    assert doc.data["repo_tags"] == ["docker.io/moat/debian:full"]
    assert doc.data["history"][0]["created_by"] == "mmdebstrap --variant=minbase bookworm"
    outcome = evaluate([doc], list(builtin_rules().values()))
    by_rule: dict[str, list[str]] = {}
    for finding in outcome.findings:
        by_rule.setdefault(finding.rule_id, []).append(finding.message)
    assert by_rule["MOAT-IMG-001"] == ["the image sets no user: containers run as root"]
    assert by_rule["MOAT-IMG-002"] == ["the image defines no health check"]
    assert outcome.outcomes["MOAT-IMG-003"].status == PASS  # no package-manager step in its history
    assert outcome.outcomes["MOAT-IMG-006"].status == PASS  # built today
    for rule_id in ("MOAT-IMG-011", "MOAT-IMG-012", "MOAT-IMG-013", "MOAT-IMG-014", "MOAT-IMG-015", "MOAT-IMG-017"):
        assert outcome.outcomes[rule_id].status == MANUAL
    # Debian's passwd is setuid root and its chage setgid shadow: both are real findings
    paths = {item["path"] for item in files}
    assert {"usr/bin/passwd", "usr/bin/chage"} <= paths
    setuid = by_rule["MOAT-IMG-005"]
    assert len(setuid) == len(files)
    assert "/usr/bin/passwd has the setuid bit (mode 4755)" in setuid
    assert "/usr/bin/chage has the setgid bit (mode 2755)" in setuid
    allowed = run(doc, "MOAT-IMG-005", {"allowed_setuid_files": ["/usr/bin/passwd", "usr/bin/chage"]})
    assert len(allowed) == len(files) - 2
    assert not any(m.startswith(("/usr/bin/passwd ", "/usr/bin/chage ")) for m in allowed)
    assert "/usr/bin/gpasswd has the setuid bit (mode 4755)" in allowed


@pytest.mark.images
@pytest.mark.xdist_group("images")
def test_real_alpine_image_over_oci_layout() -> None:
    image = alpine_image()
    inventory = inventory_target(image.target("oci-dir"))
    doc = image_config_document(inventory, image.target("oci-dir"))
    assert doc.data["setuid_files"] is None  # no layer walk asked for: the rule cannot judge
    assert run(doc, "MOAT-IMG-005") == []
    assert run(doc, "MOAT-IMG-008", {"required_labels": ["org.opencontainers.image.title"]}) == []
    assert run(doc, "MOAT-IMG-008", {"required_labels": ["org.opencontainers.image.source", "owner"]}) == [
        "the image lacks the labels org.opencontainers.image.source, owner"]
    # an OCI layout's ref name ("alpine") is not a registry reference: nothing to hold against a list
    assert run(doc, "MOAT-IMG-007", {"allowed_registries": ["registry.example.com"]}) == []


# ------------------------------------------------------------------------------ constructed configs


@pytest.mark.parametrize(
    ("user", "fires"),
    [("", True), ("root", True), ("0", True), ("0:0", True), ("root:staff", True), ("app", False),
     ("10001:10001", False), ("nobody", False)],
)
def test_user(user: str, fires: bool) -> None:
    assert bool(run(constructed({"User": user}), "MOAT-IMG-001")) == fires


def test_targets_without_an_image_config_are_not_judged_on_it() -> None:
    for kind in ("sbom", "filesystem"):
        doc = image_config_document(Inventory(Artifact(name="x", type=kind)), "x")
        assert run(doc, "MOAT-IMG-001") == [] and run(doc, "MOAT-IMG-002") == []
    image = image_config_document(Inventory(Artifact(name="x", type="container_image")), "x")
    assert run(image, "MOAT-IMG-001") == ["the image sets no user: containers run as root"]


def test_healthcheck() -> None:
    assert run(constructed({"Healthcheck": {"Test": ["CMD-SHELL", "curl -f http://localhost/"]}}),
               "MOAT-IMG-002") == []
    assert run(constructed({"Healthcheck": {"Test": ["NONE"]}}), "MOAT-IMG-002") == [
        "the image disables the health check (HEALTHCHECK NONE)"]


@pytest.mark.parametrize(
    ("created_by", "expected"),
    [
        ("/bin/sh -c apt-get update", ("RUN", "apt-get update")),
        ("|2 VERSION=1 MODE=prod /bin/sh -c apt-get update", ("RUN", "apt-get update")),
        ("RUN /bin/sh -c apt-get update && apt-get install -y curl # buildkit",
         ("RUN", "apt-get update && apt-get install -y curl")),
        ("/bin/sh -c #(nop) ADD file:3e8a0c8b2f in / ", ("ADD", "file:3e8a0c8b2f in /")),
        ("/bin/sh -c #(nop)  CMD [\"bash\"]", ("CMD", '["bash"]')),
        ("ADD app.jar /opt/app.jar # buildkit", ("ADD", "app.jar /opt/app.jar")),
        ("COPY . /src # buildkit", ("COPY", ". /src")),
    ],
)
def test_history_steps(created_by: str, expected: tuple[str, str]) -> None:
    assert step(created_by) == expected


def test_history_steps_of_hostile_configs_parse_in_one_pass() -> None:
    assert step(" " * 2_000_000 + "x") == ("RUN", "x")
    assert step("|1 " + "A=b " * 200_000 + "apt-get update") == ("RUN", "apt-get update")


def test_update_alone_in_history() -> None:
    doc = constructed(history=[
        "/bin/sh -c #(nop) ADD file:3e8a0c8b2f in / ",
        "/bin/sh -c apt-get update",
        "RUN /bin/sh -c apt-get update && apt-get install -y --no-install-recommends curl # buildkit",
        "RUN /bin/sh -c apk update # buildkit",
    ])
    outcome = evaluate([doc], [builtin_rules()["MOAT-IMG-003"]])
    assert [(f.message, f.evidence) for f in outcome.findings] == [
        ("history step 1 runs apt-get update without installing anything", "/bin/sh -c apt-get update"),
        ("history step 3 runs apk update without installing anything", "RUN /bin/sh -c apk update # buildkit"),
    ]


def test_unverified_installs_in_history() -> None:
    doc = constructed(history=[
        "RUN /bin/sh -c apt-get update && apt-get install -y --allow-unauthenticated foo # buildkit",
        "/bin/sh -c curl -fsSLk https://x/tool -o /usr/local/bin/tool",
        "/bin/sh -c apt-get update && apt-get install -y curl",
        "/bin/sh -c #(nop)  ENV CURL_FLAGS=-k",
    ])
    assert run(doc, "MOAT-IMG-016") == [
        "history step 0 runs apt-get with --allow-unauthenticated",
        "history step 1 runs curl with -k",
    ]


def test_add_in_history() -> None:
    doc = constructed(history=[
        "/bin/sh -c #(nop) ADD file:3e8a0c8b2f in / ",
        "ADD rootfs.tar.xz / # buildkit",
        "/bin/sh -c #(nop) ADD file:77aa01 in /opt/app/app.jar ",
        "ADD https://example.com/tool /usr/local/bin/tool # buildkit",
        "COPY app.jar /opt/app.jar # buildkit",
    ])
    assert run(doc, "MOAT-IMG-004") == [
        "history step 2 used ADD: file:77aa01 in /opt/app/app.jar",
        "history step 3 used ADD: https://example.com/tool /usr/local/bin/tool",
    ]


def test_image_age() -> None:
    old = (datetime.now(UTC) - timedelta(days=400, hours=6)).strftime("%Y-%m-%dT%H:%M:%S.123456789Z")
    recent = (datetime.now(UTC) - timedelta(days=30)).isoformat()
    assert len(run(constructed(created=old), "MOAT-IMG-006")) == 1
    assert "built 400 days ago" in run(constructed(created=old), "MOAT-IMG-006")[0]
    assert run(constructed(created=old), "MOAT-IMG-006", {"max_image_age_days": 500}) == []
    assert run(constructed(created=recent), "MOAT-IMG-006") == []
    assert run(constructed(created="1970-01-01T00:00:00Z"), "MOAT-IMG-006") == []  # reproducible build: no date
    assert run(constructed(created="not a date"), "MOAT-IMG-006") == []


def test_allowed_registries() -> None:
    hub = constructed(tags=["nginx:1.27"])
    internal = constructed(tags=["registry.example.com/web/nginx:1.27"])
    params = {"allowed_registries": ["registry.example.com"]}
    assert run(hub, "MOAT-IMG-007") == []
    assert run(hub, "MOAT-IMG-007", params) == [
        "docker.io/library/nginx:1.27 is not from an allowed registry (registry.example.com)"]
    assert run(internal, "MOAT-IMG-007", params) == []
    scanned = constructed(name="registry:ghcr.io/org/app:2")
    assert run(scanned, "MOAT-IMG-007", {"allowed_registries": ["ghcr.io/other"]}) == [
        "ghcr.io/org/app:2 is not from an allowed registry (ghcr.io/other)"]


def test_ports() -> None:
    doc = constructed({"ExposedPorts": {"22/tcp": {}, "80/tcp": {}, "8080/tcp": {}, "53/udp": {}}})
    assert run(doc, "MOAT-IMG-009") == ["the image exposes 22/tcp (SSH)"]
    assert run(doc, "MOAT-IMG-010") == ["the image exposes privileged port 80/tcp",
                                        "the image exposes privileged port 53/udp"]
    assert run(constructed({"ExposedPorts": {"8443/tcp": {}}}), "MOAT-IMG-010") == []


def test_full_history_can_be_passed_in() -> None:
    inventory = Inventory(Artifact(name="app", type="container_image", config={"User": "app"}))
    history = [{"created_by": "/bin/sh -c #(nop) USER app", "empty_layer": True},
               {"created_by": "/bin/sh -c yum makecache"}]
    doc = image_config_document(inventory, "app", history=history)
    assert doc.data["history"] == [
        {"created_by": "/bin/sh -c #(nop) USER app", "empty_layer": True, "layer": None},
        {"created_by": "/bin/sh -c yum makecache", "empty_layer": False, "layer": None},
    ]
    assert run(doc, "MOAT-IMG-003") == ["history step 1 runs yum makecache without installing anything"]


def test_image_rules_map_cis_section_4() -> None:
    rules = builtin_rules()
    controls = {control for item in rules.values() if item.id.startswith("MOAT-IMG-") for control in item.controls}
    for item in ("4.1", "4.2", "4.3", "4.4", "4.5", "4.6", "4.7", "4.8", "4.9", "4.11", "4.12"):
        assert f"cis-docker-1.6:{item}" in controls
    manual = sorted(rid for rid, item in rules.items() if rid.startswith("MOAT-IMG-") and item.manual)
    assert manual == ["MOAT-IMG-011", "MOAT-IMG-012", "MOAT-IMG-013", "MOAT-IMG-014", "MOAT-IMG-015",
                      "MOAT-IMG-017"]
