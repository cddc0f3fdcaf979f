"""PgResponseStore: stored Responses API responses in PostgreSQL, their JSON in ``json`` columns."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from apipod.adapters.postgres.database import PgDatabase
from apipod.application.ports import ResponseStore
from apipod.domain.stored_response import StoredResponse

# The JSON goes in as text we encoded ($5::text::json): the pool's json codec cannot take any Mapping.
_PUT = """
INSERT INTO stored_responses (id, key_id, created_at, expires_at, response, items)
VALUES ($1, $2, $3, $4, $5::text::json, $6::text::json)
ON CONFLICT (id) DO UPDATE SET
    key_id = EXCLUDED.key_id,
    created_at = EXCLUDED.created_at,
    expires_at = EXCLUDED.expires_at,
    response = EXCLUDED.response,
    items = EXCLUDED.items
"""
_GET = """
SELECT id, key_id, created_at, expires_at, response, items FROM stored_responses
WHERE id = $1 AND key_id = $2 AND expires_at > $3
"""
_DELETE = "DELETE FROM stored_responses WHERE id = $1 AND key_id = $2 AND expires_at > $3"
# Batches, so one purge never holds many row locks or one long statement.
_PURGE = """
DELETE FROM stored_responses WHERE id IN (
    SELECT id FROM stored_responses WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED
)
"""


def _json_text(value: Any) -> str:
    return orjson.dumps(value, default=_plain).decode()


def _plain(value: object) -> dict[Any, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


class PgResponseStore(ResponseStore):
    def __init__(self, db: PgDatabase, *, purge_batch: int = 1000) -> None:
        self._db = db
        self._purge_batch = purge_batch

    async def put(self, stored: StoredResponse) -> None:
        response, items = _json_text(stored.response), _json_text(stored.items)
        async with self._db.connection("storing a response") as conn:
            await conn.execute(_PUT, stored.id, stored.key_id, stored.created_at, stored.expires_at, response, items)

    async def get(self, response_id: str, *, key_id: str, now: datetime) -> StoredResponse | None:
        async with self._db.connection("reading a stored response") as conn:
            row = await conn.fetchrow(_GET, response_id, key_id, now)
        if row is None:
            return None
        return StoredResponse(
            id=row["id"],
            key_id=row["key_id"],
            created_at=row["created_at"],
            expires_at=row["expires_at"],
            response=row["response"],
            items=tuple(row["items"]),
        )

    async def delete(self, response_id: str, *, key_id: str, now: datetime) -> bool:
        async with self._db.connection("deleting a stored response") as conn:
            status = await conn.execute(_DELETE, response_id, key_id, now)
        return _count(status) > 0

    async def purge_expired(self, now: datetime) -> int:
        total = 0
        while True:
            async with self._db.connection("purging expired responses") as conn:
                purged = _count(await conn.execute(_PURGE, now, self._purge_batch))
            total += purged
            if purged < self._purge_batch:
                return total


def _count(status: str) -> int:
    """The row count of a command tag such as ``DELETE 3``."""
    return int(status.rsplit(" ", 1)[-1])
