"""Redaction: no secret survives into a finding, its dict form or rendered JSON."""

from __future__ import annotations

import json

from secret_samples import ALNUM, aws_key_pair, rand, rsa_traditional

from moat.secrets.detect import find_secrets
from moat.secrets.redact import MAX_MASK_RUN, mask, mask_spans, redact_text


def test_mask_keeps_at_most_a_quarter_and_four_characters() -> None:
    assert mask("AKIAZ7VRSQ4GHJ3L2XPN") == "AKIA" + "*" * 16
    assert mask("hunter22") == "hu******"
    assert mask("abc") == "*" * 3
    assert mask("x") == "*"
    long_secret = rand(ALNUM, 3000)
    assert mask(long_secret) == long_secret[:4] + "*" * MAX_MASK_RUN


def test_mask_spans_masks_each_range_and_keeps_the_rest() -> None:
    text = "user=alice password=Zx9!qLm2#Rt7 token=ab12cd34ef56gh78"
    first = text.index("Zx9")
    second = text.index("ab12")
    masked = mask_spans(text, [(second, len(text)), (first, first + len("Zx9!qLm2#Rt7"))])
    assert masked == "user=alice password=Zx9********* token=ab12************"


def test_findings_dicts_and_json_never_hold_the_secret() -> None:
    access_key, secret_key = aws_key_pair()
    key = rsa_traditional()
    token = f"ghp_{rand(ALNUM, 36)}"
    text = (
        f"aws_access_key_id={access_key}\naws_secret_access_key={secret_key}\n"
        f"GITHUB_TOKEN={token}\nDATABASE_URL=mysql://app:Qw7Zr4Lp9x@db/app\n{key}"
    )
    matches = find_secrets(text, "leaky.env")
    assert {m.rule.id for m in matches} == {
        "aws-access-key-id", "aws-secret-access-key", "github-pat", "url-password", "private-key",
    }
    findings = [m.to_finding() for m in matches]
    rendered = json.dumps([f.to_dict() for f in findings])
    key_lines = [line for line in key.splitlines() if not line.startswith("-----")]
    for secret in (access_key, secret_key, token, "Qw7Zr4Lp9x", *key_lines):
        assert secret not in rendered
        assert secret[4:] not in rendered
    assert "AKIA" in rendered and "ghp_" in rendered and "BEGIN RSA PRIVATE KEY" in rendered


def test_redact_text_masks_what_the_rules_find_and_nothing_else() -> None:
    token = f"glpat-{rand(ALNUM, 20)}"
    text = f"RUN git clone https://oauth2:{token}@gitlab.example.org/team/app.git /src"
    redacted = redact_text(text)
    assert token not in redacted
    assert redacted.startswith("RUN git clone https://oauth2:glpa")
    assert redacted.endswith("@gitlab.example.org/team/app.git /src")
    assert redact_text("ENV PATH=/usr/local/bin:$PATH") == "ENV PATH=/usr/local/bin:$PATH"
