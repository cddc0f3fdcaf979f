"""Readiness of PostgreSQL: one ``SELECT 1`` on a pooled connection, bounded so a hung server answers
"unavailable" quickly instead of holding the probe."""

from __future__ import annotations

import asyncio

from apipod.adapters.postgres.database import PgDatabase
from apipod.domain.errors import StorageError


class PgStoreProbe:
    def __init__(self, db: PgDatabase, *, timeout: float = 2.0) -> None:
        self._db = db
        self._timeout = timeout

    async def ping(self) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                async with self._db.connection("readiness ping") as conn:
                    await conn.fetchval("SELECT 1")
        except TimeoutError:
            raise StorageError(f"PostgreSQL did not answer within {self._timeout:g} s.") from None
