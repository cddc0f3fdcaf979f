"""The readiness probes: an answering store passes, a closed one raises StorageError."""

from __future__ import annotations

from pathlib import Path

import pytest

from apipod.adapters.memory.health import InMemoryStoreProbe
from apipod.adapters.sqlite import SqliteDatabase
from apipod.adapters.sqlite.health import SqliteStoreProbe
from apipod.domain.errors import StorageError


async def test_sqlite_probe(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "probe.db")
    await db.open()
    probe = SqliteStoreProbe(db)
    await probe.ping()
    await db.close()
    with pytest.raises(StorageError):
        await probe.ping()


async def test_memory_probe() -> None:
    await InMemoryStoreProbe().ping()
