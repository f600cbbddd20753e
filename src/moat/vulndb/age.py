"""How old the local vulnerability database is, and when that deserves a warning.

A scan never fails because the database is old or the network is down: an old database still
finds what it knew about, so the scan goes on and says how stale its answer may be.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from moat.errors import MoatError
from moat.vulndb.store import Store

DEFAULT_MAX_AGE_DAYS = 7
ENV_MAX_AGE = "MOAT_DB_MAX_AGE"


def configured_max_age() -> int:
    """MOAT_DB_MAX_AGE (days) or the default; a bad value is a one-line error, not a silent default."""
    raw = os.environ.get(ENV_MAX_AGE, "").strip()
    if not raw:
        return DEFAULT_MAX_AGE_DAYS
    if not raw.isdigit():
        raise MoatError(f"{ENV_MAX_AGE}={raw!r}: expected a whole number of days")
    return int(raw)


def built_at(store: Store) -> datetime | None:
    value = store.meta().get("built_at")
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def check_age(store: Store, max_age_days: int | None = None, now: datetime | None = None) -> str | None:
    """A warning when the database was built more than ``max_age_days`` ago (default: MOAT_DB_MAX_AGE
    or 7); None when it is fresh enough. ``0`` days disables the check."""
    limit = configured_max_age() if max_age_days is None else max_age_days
    if limit <= 0:
        return None
    when = built_at(store)
    if when is None:
        return "the vulnerability database does not say when it was built: run 'moat db update'"
    age = (now or datetime.now(UTC)) - when
    if age.total_seconds() <= limit * 86400:
        return None
    days = int(age.total_seconds() // 86400)
    return (
        f"the vulnerability database is {days} days old (built {when:%Y-%m-%d}, limit {limit} days): "
        "run 'moat db update' for current advisories"
    )
