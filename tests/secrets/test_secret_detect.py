"""The detector, rule by rule, on realistic files holding freshly generated, well-formed credentials.

(``tests/secrets`` has no ``__init__.py`` on purpose: a package named ``secrets`` on the test path would
shadow the standard library's ``secrets`` module.)
"""

from __future__ import annotations

import base64
import json

import pytest
from secret_samples import (
    ALNUM,
    B64URL,
    HEX,
    aws_key_pair,
    azure_account_key,
    ec_traditional,
    jwt,
    kubernetes_token,
    openssh_key,
    pgp_private_key,
    projected_kubernetes_token,
    public_key_and_certificate,
    rand,
    rsa_pkcs8,
    rsa_traditional,
)

from moat.secrets.detect import find_secrets, find_secrets_in_bytes, is_placeholder
from moat.secrets.rules import RULES, shannon_entropy


def found(text: str, path: str = "file") -> list[tuple[str, int]]:
    return [(m.rule.id, m.line) for m in find_secrets(text, path)]


def positive_samples() -> dict[str, list[tuple[str, int]]]:
    """rule id -> [(file text, line of the secret)]: how each credential shows up in real files."""
    access_key, secret_key = aws_key_pair()
    gh36 = rand(ALNUM, 36)
    azure_key = azure_account_key()
    gcp = json.dumps(
        {
            "type": "service_account",
            "project_id": "moat-ci",
            "private_key_id": rand(HEX, 40),
            "private_key": rsa_pkcs8(),
            "client_email": "ci@moat-ci.iam.gserviceaccount.com",
            "client_id": rand("0123456789", 21),
        },
        indent=2,
    )
    return {
        "private-key": [
            (rsa_pkcs8(), 1),
            ("# deploy key\n" + rsa_traditional(), 2),
            (ec_traditional(), 1),
            (openssh_key(), 1),
            (pgp_private_key(), 1),
        ],
        "aws-access-key-id": [(f"[default]\naws_access_key_id = {access_key}\n", 2)],
        "aws-secret-access-key": [(f"[default]\nregion = eu-west-1\naws_secret_access_key = {secret_key}\n", 3)],
        "gcp-service-account-key": [(gcp, 4)],
        "gcp-api-key": [(f'const firebaseConfig = {{ apiKey: "AIza{rand(B64URL, 35)}" }};\n', 1)],
        "azure-storage-connection-string": [
            (
                "AZURE_STORAGE_CONNECTION_STRING=DefaultEndpointsProtocol=https;AccountName=moatlogs;"
                f"AccountKey={azure_key};EndpointSuffix=core.windows.net\n",
                1,
            )
        ],
        "azure-storage-account-key": [(f'{{\n  "azureStorageKey": "{azure_key}"\n}}\n', 2)],
        "github-fine-grained-pat": [(f"GH_TOKEN=github_pat_{rand(ALNUM, 22)}_{rand(ALNUM, 59)}\n", 1)],
        "github-pat": [(f"machine github.com\nlogin ci\npassword ghp_{gh36}\n", 3)],
        "github-oauth-token": [(f'oauth_token: "gho_{rand(ALNUM, 36)}"\n', 1)],
        "github-app-token": [(f"git clone https://x-access-token:ghs_{rand(ALNUM, 36)}@github.com/o/r\n", 1)],
        "github-refresh-token": [(f"refresh=ghr_{rand(ALNUM, 36)}\n", 1)],
        "gitlab-pat": [(f"export CI_TOKEN=glpat-{rand(B64URL, 20)}\n", 1)],
        "slack-webhook-url": [
            (f"url: https://hooks.slack.com/services/T{rand('ABCDEFGHJK0123456789', 8)}/"
             f"B{rand('ABCDEFGHJK0123456789', 10)}/{rand(ALNUM, 24)}\n", 1)
        ],
        "slack-token": [
            (f"SLACK_BOT_TOKEN=xoxb-{rand('0123456789', 12)}-{rand('0123456789', 13)}-{rand(ALNUM, 24)}\n", 1)
        ],
        "stripe-live-key": [(f"stripe.api_key = 'sk_live_{rand(ALNUM, 24)}'\n", 1)],
        "stripe-test-key": [(f"STRIPE_KEY=rk_test_{rand(ALNUM, 24)}\n", 1)],
        "twilio-api-key": [(f"# twilio\nTWILIO_API_KEY=SK{rand(HEX, 32)}\n", 2)],
        "twilio-auth-token": [(f"twilio_auth_token: {rand(HEX, 32)}\n", 1)],
        "sendgrid-api-key": [(f"SENDGRID_API_KEY=SG.{rand(B64URL, 22)}.{rand(B64URL, 43)}\n", 1)],
        "npm-access-token": [(f"//registry.npmjs.org/:_authToken=npm_{rand(ALNUM, 36)}\n", 1)],
        "npmrc-auth-token": [(f"registry=https://npm.internal/\n//npm.internal/:_authToken={rand(ALNUM, 32)}\n", 2)],
        "pypi-upload-token": [
            (f"[pypi]\nusername = __token__\npassword = pypi-AgEIcHlwaS5vcmc{rand(B64URL, 120)}\n", 3)
        ],
        "dockerhub-pat": [(f"echo dckr_pat_{rand(B64URL, 27)} | docker login -u ci --password-stdin\n", 1)],
        "docker-config-auth": [
            (json.dumps({"auths": {"registry.internal:5000": {
                "auth": base64.b64encode(f"ci:{rand(ALNUM, 20)}".encode()).decode()}}}, indent=2), 4)
        ],
        "netrc-password": [(f"machine github.com\n  login ci\n  password {rand(ALNUM, 20)}\n", 3)],
        "vault-token": [(f"VAULT_ADDR=https://vault:8200\nVAULT_TOKEN=hvs.{rand(B64URL, 90)}\n", 2)],
        "vault-token-legacy": [(f"vault_token: s.{rand(ALNUM, 24)}\n", 1)],
        "kubernetes-service-account-token": [
            (f"token: {kubernetes_token()}\n", 1),
            (f"Authorization: Bearer {projected_kubernetes_token()}\n", 1),
        ],
        "jwt": [(f"curl -H 'Authorization: Bearer {jwt({'sub': 'alice', 'exp': 1767225600})}' https://api\n", 1)],
        "url-password": [("DATABASE_URL=postgres://app:Xk2v9Qz4Lw@db.internal:5432/app\n", 1)],
        "generic-password": [
            ("spring:\n  datasource:\n    password: Zx9!qLm2#Rt7vWpA\n", 3),
            ('DB_PASSWORD="f8Kq2-Lm9z_Xw4"\n', 1),
        ],
    }


SAMPLES = positive_samples()


def test_every_rule_has_a_positive_sample() -> None:
    assert sorted(SAMPLES) == sorted(item.id for item in RULES)


@pytest.mark.parametrize("rule_id", sorted(SAMPLES))
def test_rule_finds_its_credential_on_the_right_line(rule_id: str) -> None:
    for text, line in SAMPLES[rule_id]:
        assert (rule_id, line) in found(text), f"{rule_id} not found in:\n{text[:300]}"


NOT_SECRETS = [
    "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
    "akia" + "x" * 16,  # lower case is not an access key id
    f"id = AKIA{rand('ABCDEFGHJKLMNPQR', 15)}\n",  # one character short
    "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",  # a filler, not a token
    f"ghp_{rand(ALNUM, 35)}\n",  # too short
    public_key_and_certificate(),
    'PEM_HEADER = b"-----BEGIN PRIVATE KEY-----"\nif data.startswith(PEM_HEADER):\n    return load(data)\n',
    f'"private_key_id": "{rand(HEX, 40)}"\n',  # without "type": "service_account"
    f"SK{rand(HEX, 32)}\n",  # a Twilio-shaped SID with no mention of Twilio
    "ref: eyJhbGciOiJub25lIn0x.eyJzdWIiOiJ4In0xyz.c2lnbmF0dXJl\n",  # dots but no JSON inside
    "password: ${DB_PASSWORD}\n",
    "password=$(cat /run/secrets/db)\n",
    "password: {{ .Values.db.password }}\n",
    "password: changeme\n",
    "admin_password = <your-password-here>\n",
    "password: '********'\n",
    "password = self.password\n",
    "token = get_token(request)\n",
    "username, password = get_auth_from_url(proxy)\n",
    "my $pwd = Cwd::getcwd();\n",
    "passwd: elevated-privileges 4755 root/root [usr/bin/passwd]\n",
    "SECRET_KEY = 'development'\n",
    "PWD=/usr/local/app\n",
    "url = 'postgres://user:password@localhost/db'\n",
    "dsn = 'mysql://app:${MYSQL_PASSWORD}@db/app'\n",
    "see https://example.org/docs:8080 and mailto:x@y\n",
    '{"auths": {"ghcr.io": {"auth": "' + base64.b64encode(b"only-a-user").decode() + '"}}}',  # no password
    '{"auths": {"ghcr.io": {}}, "credsStore": "desktop"}',  # credentials kept by a helper
    "machine github.com login ci password ${GITHUB_TOKEN}\n",
]
"""Texts no rule may report. Some hold random values, so the test ids are positions: pytest-xdist
workers must collect the same ids."""


@pytest.mark.parametrize("text", NOT_SECRETS, ids=[f"not-secret-{i}" for i in range(len(NOT_SECRETS))])
def test_no_finding_on_examples_placeholders_and_code(text: str) -> None:
    assert found(text) == []


def test_overlapping_rules_report_once_most_specific_first() -> None:
    token = f"ghp_{rand(ALNUM, 36)}"
    assert found(f"GITHUB_TOKEN={token}\n") == [("github-pat", 1)]
    assert found(f"token: {kubernetes_token()}\n") == [("kubernetes-service-account-token", 1)]


def test_gcp_service_account_file_reports_the_key_id_and_the_private_key() -> None:
    (text, _), = SAMPLES["gcp-service-account-key"]
    ids = {rule_id for rule_id, _ in found(text, "sa.json")}
    assert ids == {"gcp-service-account-key", "private-key"}


def test_several_secrets_in_one_file_in_order_with_lines() -> None:
    access_key, secret_key = aws_key_pair()
    text = (
        "# app settings\n"
        f"AWS_ACCESS_KEY_ID={access_key}\n"
        f"AWS_SECRET_ACCESS_KEY={secret_key}\n"
        "LOG_LEVEL=debug\n"
        f"SLACK=https://hooks.slack.com/services/T0123ABCD/B0123ABCDE/{rand(ALNUM, 24)}\n"
    )
    assert found(text, ".env") == [("aws-access-key-id", 2), ("aws-secret-access-key", 3), ("slack-webhook-url", 5)]


def test_match_excerpt_never_holds_the_secret() -> None:
    for rule_id, cases in SAMPLES.items():
        for text, _ in cases:
            for match in find_secrets(text, "f"):
                assert match.secret not in match.excerpt, rule_id
                assert match.secret not in repr(match), rule_id
                assert match.redacted != match.secret


def test_binary_and_oversized_files_are_not_scanned() -> None:
    token = f"ghp_{rand(ALNUM, 36)}".encode()
    assert [m.rule.id for m in find_secrets_in_bytes(b"x=" + token, "f")] == ["github-pat"]
    assert find_secrets_in_bytes(b"\x7fELF\x02\x01\x01\x00" + token, "bin/app") == []
    assert find_secrets_in_bytes(b"x=" + token, "f", limit=10) == []


def test_invalid_utf8_does_not_stop_detection() -> None:
    token = f"glpat-{rand(ALNUM, 20)}".encode()
    data = b"caf\xe9 \xff\xfe\n" + b"token: " + token + b"\n"
    assert [(m.rule.id, m.line) for m in find_secrets_in_bytes(data, "latin1.txt")] == [("gitlab-pat", 2)]


def test_hostile_inputs_finish_and_find_nothing() -> None:
    # Long runs that make naive patterns backtrack: they must finish and find nothing.
    assert found("password=" + "a" * 2_000_000) == []
    assert found("-----BEGIN PRIVATE KEY-----" * 20_000) == []
    assert found("eyJ" + "a" * 500_000 + ".eyJ" + "b" * 500_000) == []
    assert found("x://" + "u" * 100 + ":" * 100_000) == []
    assert found(("DB_" * 100_000) + "PASSWORD") == []


def test_secret_inside_a_long_minified_line_gives_a_short_excerpt() -> None:
    token = f"npm_{rand(ALNUM, 36)}"
    text = "var a=" + "x" * 50_000 + f';var t="{token}";' + "y" * 50_000
    (match,) = find_secrets(text, "bundle.js")
    assert match.rule.id == "npm-access-token"
    assert len(match.excerpt) < 300
    assert "npm_" in match.excerpt and token not in match.excerpt


def test_private_key_in_json_with_escaped_newlines() -> None:
    key = rsa_pkcs8()
    text = json.dumps({"tls": {"key": key}})  # one line, \n escaped
    (match,) = find_secrets(text, "config.json")
    assert match.rule.id == "private-key" and match.line == 1
    body = key.splitlines()[1]
    assert body not in match.excerpt


def test_base64_blob_of_a_key_is_not_a_pem() -> None:
    # What a Kubernetes Secret holds before decoding: the detector alone does not see through it.
    encoded = base64.b64encode(rsa_pkcs8().encode()).decode()
    assert found(f"tls.key: {encoded}\n") == []


def test_entropy_and_placeholder_helpers() -> None:
    assert shannon_entropy("aaaa") == 0
    assert shannon_entropy(rand(ALNUM, 64)) > 4.5
    assert is_placeholder("${TOKEN}") and is_placeholder("<token>") and is_placeholder("xxxxxxxx")
    assert not is_placeholder("Zx9!qLm2#Rt7vWp")
