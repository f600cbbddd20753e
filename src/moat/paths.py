"""Where Moat keeps its files: the cache dir (XDG default, MOAT_CACHE_DIR or --cache-dir)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(override: str | None = None) -> Path:
    """The cache directory, created on first use: --cache-dir, then MOAT_CACHE_DIR, then XDG."""
    if override:
        path = Path(override)
    elif os.environ.get("MOAT_CACHE_DIR"):
        path = Path(os.environ["MOAT_CACHE_DIR"])
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        path = Path(base) / "moat"
    path.mkdir(parents=True, exist_ok=True)
    return path


def scratch_dir(cache: Path) -> Path:
    """Moat's own temporary area (spooled files, downloaded archives), inside the cache dir."""
    path = cache / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    return path
