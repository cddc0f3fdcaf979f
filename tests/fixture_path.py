"""Locates the protocol fixtures in ``tests/fixtures`` (provenance in ``tests/fixtures/SOURCES.md``).

``APIPOD_FIXTURES`` may point elsewhere (e.g. a newer recording set); unset or empty, the in-repo copy is used,
so a fresh clone needs nothing outside the repository.
"""

from __future__ import annotations

import os
from pathlib import Path

_ROOT = Path(os.environ.get("APIPOD_FIXTURES") or Path(__file__).resolve().parent / "fixtures")


def fixture(relative: str) -> Path:
    path = _ROOT / relative
    if not path.exists():
        raise FileNotFoundError(f"fixture {relative} not found under {_ROOT}")
    return path
