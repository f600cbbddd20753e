"""Rules that raise must fail tests rather than turn into warnings (see moat.checks.engine)."""

import pytest


@pytest.fixture(autouse=True)
def strict_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOAT_STRICT_RULES", "1")
