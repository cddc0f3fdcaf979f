"""The PostgreSQL readiness probe: a live pool answers, a closed one is a StorageError."""

from __future__ import annotations

import pytest

from apipod.adapters.postgres import PgDatabase
from apipod.adapters.postgres.health import PgStoreProbe
from apipod.domain.errors import StorageError


async def test_probe_pings_and_reports_a_closed_pool(pg_dsn: str) -> None:
    db = await PgDatabase.connect(pg_dsn, min_size=1, max_size=1)
    probe = PgStoreProbe(db, timeout=2.0)
    await probe.ping()
    await db.close()
    with pytest.raises(StorageError):
        await probe.ping()
