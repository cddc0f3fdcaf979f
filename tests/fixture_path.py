"""Locates the shared protocol fixtures (../shared/fixtures beside the repository)."""

from __future__ import annotations

import os
from pathlib import Path

_ROOT = Path(os.environ.get("APIPOD_FIXTURES", Path(__file__).resolve().parents[2] / "shared" / "fixtures"))


def fixture(relative: str) -> Path:
    path = _ROOT / relative
    if not path.exists():
        raise FileNotFoundError(f"fixture {relative} not found under {_ROOT}")
    return path
