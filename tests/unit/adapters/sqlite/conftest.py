"""A fresh, migrated SQLite file per test, closed after it (also when the test fails)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from apipod.adapters.sqlite import SqliteDatabase


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[SqliteDatabase]:
    database = SqliteDatabase(tmp_path / "apipod.db")
    await database.migrate()
    yield database
    await database.close()
