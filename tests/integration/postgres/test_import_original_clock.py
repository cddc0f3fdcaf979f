"""import-original stamps a key whose original row has no ``created_at`` with the injected clock, not the
host's (issue 9, finding 0: product code reads time only through the Clock port)."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg

from apipod.adapters.memory.system import FixedClock
from apipod.adapters.postgres import PgCatalogStore, PgDatabase, PgKeyRepository
from apipod.adapters.postgres.import_original import import_original
from apipod.domain.keys import digest_of
from tests.integration.postgres.test_import_original import source

__all__ = ["source"]  # the fixture: the original's schema and rows in a scratch database


async def test_a_missing_created_at_is_the_injected_clocks_now(pg: PgDatabase, source: str) -> None:
    conn = await asyncpg.connect(source)
    try:
        await conn.execute("UPDATE users SET created_at = NULL WHERE name = 'alice'")
    finally:
        await conn.close()
    clock = FixedClock(datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC))
    keys = PgKeyRepository(pg)

    await import_original(source, catalog=PgCatalogStore(pg), keys=keys, clock=clock)

    alice = await keys.by_digest(digest_of("sk-alice-plaintext-token"))
    assert alice is not None
    assert alice.created_at == clock.now()
