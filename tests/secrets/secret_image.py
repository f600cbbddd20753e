"""A real image with secrets planted in its layers and setuid/setgid files, built once and cached.

It starts from the bottom two layers of the Debian test image (``tests/fixtures/images.py``: real
mmdebstrap root filesystem, so Debian's own setuid binaries are there) and adds, with umoci:

3. ``root/.ssh/id_rsa`` (openssl), ``app/.env`` (AWS key pair, GitHub token), ``opt/cache/token.txt``
   (GitLab token), ``usr/local/bin/helper`` (mode 4755) and ``usr/local/bin/grouper`` (mode 2755);
4. a whiteout of ``root/.ssh/id_rsa`` (the ``RUN rm`` that does not remove anything from layer 3);
5. ``opt/cache`` made opaque (its old ``token.txt`` is hidden, still in layer 3);
6. a plain 0755 ``usr/bin/newgrp`` replacing Debian's setuid one;

and a config whose history step 3 ran ``npm ci`` with an npm token, whose Env holds a Vault token and
whose Labels a Slack webhook (what ``moat config`` finds in an image config, CIS Docker 4.10).

The generated credentials are fake but well-formed; they are written to facts.json so the tests can
check every report for them.
"""

from __future__ import annotations

import json
import os
import secrets
import string
import subprocess
from pathlib import Path
from typing import Any

from fixtures import images

ALNUM = string.ascii_letters + string.digits
LAYER_ROLES = ["debian-base", "dpkg-edit", "plant", "whiteout-key", "opaque-cache", "replace-newgrp"]


def _rand(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _build(out: Path, scratch: Path) -> dict[str, Any]:
    images.require_tools("umoci", "skopeo", "openssl")
    debian = images.debian_image()
    layout = out / "oci"
    image = f"{layout}:secrets"
    images.run(["skopeo", "copy", "-q", f"oci:{debian.layout}:base", f"oci:{layout}:secrets"])

    plant = scratch / "plant"
    (plant / "root/.ssh").mkdir(parents=True)
    (plant / "app").mkdir()
    (plant / "opt/cache").mkdir(parents=True)
    (plant / "usr/local/bin").mkdir(parents=True)
    key = subprocess.run(["openssl", "genrsa", "-traditional", "2048"], capture_output=True, text=True,
                         check=True).stdout
    (plant / "root/.ssh/id_rsa").write_text(key)
    os.chmod(plant / "root/.ssh/id_rsa", 0o600)
    access_key = "AKIA" + _rand(string.ascii_uppercase + "234567", 16)
    secret_key = _rand(ALNUM + "/+", 40)
    github = "ghp_" + _rand(ALNUM, 36)
    gitlab = "glpat-" + _rand(ALNUM, 20)
    (plant / "app/.env").write_text(
        "# application settings\n"
        f"AWS_ACCESS_KEY_ID={access_key}\n"
        f"AWS_SECRET_ACCESS_KEY={secret_key}\n"
        "LOG_LEVEL=info\n"
        f"GITHUB_TOKEN={github}\n"
    )
    (plant / "opt/cache/token.txt").write_text(f"{gitlab}\n")
    for name, mode in (("helper", 0o4755), ("grouper", 0o2755)):
        path = plant / "usr/local/bin" / name
        path.write_text("#!/bin/sh\nexec id\n")
        os.chmod(path, mode)
    npm = "npm_" + _rand(ALNUM, 36)
    slack = f"https://hooks.slack.com/services/T{_rand('ABCDEFGH0123456789', 8)}/B{_rand('ABCDEFGH0123', 10)}/" + _rand(
        ALNUM, 24)
    vault = "hvs." + _rand(ALNUM, 24)
    images.run(["umoci", "insert", "--image", image, "--history.created_by",
                f"/bin/sh -c echo //registry.npmjs.org/:_authToken={npm} > /root/.npmrc && npm ci", str(plant), "/"])
    images.run(["umoci", "insert", "--image", image, "--whiteout", "/root/.ssh/id_rsa"])
    cleared = scratch / "cleared-cache"
    cleared.mkdir()
    (cleared / "README").write_text("cache cleared\n")
    images.run(["umoci", "insert", "--image", image, "--opaque", str(cleared), "/opt/cache"])
    newgrp = scratch / "newgrp"
    newgrp.write_text("#!/bin/sh\necho newgrp disabled\n")
    os.chmod(newgrp, 0o755)
    images.run(["umoci", "insert", "--image", image, str(newgrp), "/usr/bin/newgrp"])
    images.run(["umoci", "config", "--image", image, "--config.env", f"VAULT_TOKEN={vault}",
                "--config.env", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "--config.label", f"alerts.webhook={slack}", "--config.label", "org.opencontainers.image.title=secrets",
                "--config.cmd", "/bin/bash"])
    images.run(["umoci", "gc", "--layout", str(layout)])
    archive = out / "secrets.docker.tar"
    images.run(["skopeo", "copy", "-q", f"oci:{layout}:secrets", f"docker-archive:{archive}:moat/secrets:test"])
    return {
        "layer_roles": LAYER_ROLES,
        "private_key": key,
        "aws_access_key_id": access_key,
        "aws_secret_access_key": secret_key,
        "github_token": github,
        "gitlab_token": gitlab,
        "npm_token": npm,
        "slack_webhook": slack,
        "vault_token": vault,
    }


def secret_image() -> images.BuiltImage:
    """The six-layer image (tag ``secrets``), as an OCI layout and a docker-archive."""
    root = images.cached_build("secrets", {"roles": LAYER_ROLES}, _build)
    return images.BuiltImage(
        name="secrets",
        root=root,
        layout=root / "oci",
        tag="secrets",
        docker_archive=root / "secrets.docker.tar",
        oci_archive=root / "secrets.oci.tar",
        facts=json.loads((root / "facts.json").read_text()),
    )
