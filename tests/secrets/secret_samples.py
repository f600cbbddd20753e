"""Well-formed but freshly generated credentials for the secret tests.

Nothing here is a real credential: tokens are random strings in each vendor's documented shape,
private keys come from the real tools (openssl, ssh-keygen, gpg) run in a temporary directory, so the
detector is tested on exactly what those tools write.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import string
import subprocess
import tempfile
from pathlib import Path

ALNUM = string.ascii_letters + string.digits
UPPER_B32 = string.ascii_uppercase + "234567"
HEX = "0123456789abcdef"
B64URL = ALNUM + "-_"


def rand(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def b64url(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def jwt(payload: dict[str, object]) -> str:
    header = b64url({"alg": "RS256", "typ": "JWT", "kid": rand(ALNUM, 12)})
    return f"{header}.{b64url(payload)}.{rand(B64URL, 86)}"


def kubernetes_token() -> str:
    """The shape of a legacy (Secret-based) service-account token as the token controller writes it."""
    return jwt(
        {
            "iss": "kubernetes/serviceaccount",
            "kubernetes.io/serviceaccount/namespace": "default",
            "kubernetes.io/serviceaccount/secret.name": "deployer-token-x7k2p",
            "kubernetes.io/serviceaccount/service-account.name": "deployer",
            "kubernetes.io/serviceaccount/service-account.uid": "6a1c0e0e-3d3c-4b55-9a6e-2f1c7d2b9e11",
            "sub": "system:serviceaccount:default:deployer",
        }
    )


def projected_kubernetes_token() -> str:
    """The shape of a bound (TokenRequest) token."""
    return jwt(
        {
            "aud": ["https://kubernetes.default.svc.cluster.local"],
            "exp": 1767225600,
            "iat": 1735689600,
            "iss": "https://kubernetes.default.svc.cluster.local",
            "kubernetes.io": {"namespace": "prod", "serviceaccount": {"name": "web", "uid": "1b2c"}},
            "sub": "system:serviceaccount:prod:web",
        }
    )


def _run(cmd: list[str], cwd: str | None = None, stdin: str | None = None) -> str:
    return subprocess.run(cmd, cwd=cwd, input=stdin, capture_output=True, text=True, check=True).stdout


def rsa_pkcs8() -> str:
    return _run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])


def rsa_traditional() -> str:
    return _run(["openssl", "genrsa", "-traditional", "2048"])


def ec_traditional() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        _run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ec.pem"], cwd=tmp)
        return Path(tmp, "ec.pem").read_text()


def openssh_key() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ci@example.org", "-f", "id_ed25519"], cwd=tmp)
        return Path(tmp, "id_ed25519").read_text()


def pgp_private_key() -> str:
    with tempfile.TemporaryDirectory() as home:
        os.chmod(home, 0o700)
        gpg = ["gpg", "--homedir", home, "--batch", "--pinentry-mode", "loopback", "--passphrase", ""]
        _run([*gpg, "--quick-gen-key", "Moat Test <moat@example.org>", "ed25519", "sign", "1d"])
        return _run([*gpg, "--armor", "--export-secret-keys", "moat@example.org"])


def public_key_and_certificate() -> str:
    """A public key and a self-signed certificate: PEM blocks that are not secrets."""
    with tempfile.TemporaryDirectory() as tmp:
        _run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "k.pem"], cwd=tmp)
        public = _run(["openssl", "pkey", "-in", "k.pem", "-pubout"], cwd=tmp)
        cert = _run(["openssl", "req", "-new", "-x509", "-key", "k.pem", "-subj", "/CN=moat", "-days", "1"], cwd=tmp)
        return public + cert


def azure_account_key() -> str:
    return base64.b64encode(os.urandom(64)).decode()


def aws_key_pair() -> tuple[str, str]:
    return "AKIA" + rand(UPPER_B32, 16), rand(ALNUM + "/+", 40)
