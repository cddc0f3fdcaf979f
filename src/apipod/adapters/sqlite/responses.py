"""ResponseStore over the embedded SQLite database: one row per response, its JSON as text."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from apipod.adapters.sqlite.database import SqliteDatabase, from_text, to_text
from apipod.application.ports import ResponseStore
from apipod.domain.stored_response import StoredResponse

_PUT = (
    "INSERT OR REPLACE INTO stored_responses (id, key_id, created_at, expires_at, response, items)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
_GET = (
    "SELECT id, key_id, created_at, expires_at, response, items FROM stored_responses"
    " WHERE id = ? AND key_id = ? AND expires_at > ?"
)
_DELETE = "DELETE FROM stored_responses WHERE id = ? AND key_id = ? AND expires_at > ?"
_PURGE = "DELETE FROM stored_responses WHERE id IN (SELECT id FROM stored_responses WHERE expires_at <= ? LIMIT ?)"


def json_text(value: Any) -> str:
    """orjson text; any Mapping (not only dict) is written as an object."""
    return orjson.dumps(value, default=_plain).decode()


def _plain(value: object) -> dict[Any, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def _stored(row: tuple[Any, ...]) -> StoredResponse:
    return StoredResponse(
        id=row[0],
        key_id=row[1],
        created_at=from_text(row[2]),
        expires_at=from_text(row[3]),
        response=orjson.loads(row[4]),
        items=tuple(orjson.loads(row[5])),
    )


class SqliteResponseStore(ResponseStore):
    """Args:
    purge_batch: rows deleted per statement by ``purge_expired``, so one purge never holds the write lock
        (and, inline, the event loop) for long.
    """

    def __init__(self, db: SqliteDatabase, *, purge_batch: int = 500) -> None:
        self._db = db
        self._purge_batch = purge_batch

    async def put(self, stored: StoredResponse) -> None:
        row = (
            stored.id,
            stored.key_id,
            to_text(stored.created_at),
            to_text(stored.expires_at),
            json_text(stored.response),
            json_text(stored.items),
        )
        await self._db.run(lambda conn: conn.execute(_PUT, row))

    async def get(self, response_id: str, *, key_id: str, now: datetime) -> StoredResponse | None:
        args = (response_id, key_id, to_text(now))
        row = await self._db.run(lambda conn: conn.execute(_GET, args).fetchone())
        return None if row is None else _stored(row)

    async def delete(self, response_id: str, *, key_id: str, now: datetime) -> bool:
        args = (response_id, key_id, to_text(now))
        deleted = await self._db.run(lambda conn: conn.execute(_DELETE, args).rowcount)
        return bool(deleted)

    async def purge_expired(self, now: datetime) -> int:
        args = (to_text(now), self._purge_batch)

        def purge_batch(conn: sqlite3.Connection) -> int:
            return int(conn.execute(_PURGE, args).rowcount)

        total = 0
        while True:
            purged = await self._db.run(purge_batch)
            total += purged
            if purged < self._purge_batch:
                return total
            await asyncio.sleep(0)  # let requests in between batches
