"""UsageLog over the embedded SQLite database, with group commit.

``record()`` only appends to a buffer and makes sure one writer task is draining it: under load many rows
share one transaction, and a request never waits for the file. Rows that fail to be written stay buffered
(and are logged) until a later write or ``flush()`` succeeds: never dropped silently.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from datetime import datetime
from functools import partial
from typing import Any

import orjson

from apipod.adapters.sqlite.database import SqliteDatabase, from_text, to_text
from apipod.application.ports import UsageLog
from apipod.domain.chat import Usage
from apipod.domain.errors import ApipodError
from apipod.domain.usage import Attempt, UsageRecord

logger = logging.getLogger(__name__)

_COLUMNS = (
    "request_id, key_id, user, requested_model, routed_model, upstream, status, token_count, input_tokens,"
    " output_tokens, cached_input_tokens, cache_creation_input_tokens, reasoning_tokens, latency_ms, ttft_ms,"
    " error, timestamp, attempts"
)
_INSERT = f"INSERT INTO usage_records ({_COLUMNS}) VALUES ({', '.join('?' * 18)})"  # noqa: S608

_Row = tuple[Any, ...]


def _row(record: UsageRecord) -> _Row:
    usage = record.usage
    return (
        record.request_id,
        record.key_id,
        record.user,
        record.requested_model,
        record.routed_model,
        record.upstream,
        record.status,
        usage.total_tokens,
        usage.input_tokens,
        usage.output_tokens,
        usage.cached_input_tokens,
        usage.cache_creation_input_tokens,
        usage.reasoning_tokens,
        record.latency_ms,
        record.ttft_ms,
        record.error,
        to_text(record.timestamp),
        orjson.dumps(
            [{"model": a.model, "account": a.account, "outcome": a.summary} for a in record.attempts]
        ).decode(),
    )


def _record(row: _Row) -> UsageRecord:
    return UsageRecord(
        request_id=row[0],
        key_id=row[1],
        user=row[2],
        requested_model=row[3],
        routed_model=row[4],
        upstream=row[5],
        status=row[6],
        usage=Usage(
            input_tokens=row[8],
            output_tokens=row[9],
            cached_input_tokens=row[10],
            cache_creation_input_tokens=row[11],
            reasoning_tokens=row[12],
        ),
        latency_ms=row[13],
        ttft_ms=row[14],
        error=row[15],
        timestamp=from_text(row[16]),
        attempts=tuple(
            Attempt.from_summary(model=a["model"], account=a["account"], summary=a["outcome"])
            for a in orjson.loads(row[17])
        ),
    )


def _write(conn: sqlite3.Connection, rows: list[_Row]) -> None:
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(_INSERT, rows)
    conn.execute("COMMIT")


class SqliteUsageLog(UsageLog):
    """Args:
    db: the database.
    batch_size: most rows written in one transaction.
    max_pending: buffered rows beyond which ``record()`` waits for a flush (back-pressure when the store
        cannot keep up, instead of unbounded memory).
    """

    def __init__(self, db: SqliteDatabase, *, batch_size: int = 500, max_pending: int = 50_000) -> None:
        self._db = db
        self._batch_size = batch_size
        self._max_pending = max_pending
        self._pending: list[_Row] = []
        self._writer: asyncio.Task[None] | None = None

    async def record(self, record: UsageRecord) -> None:
        self._pending.append(_row(record))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain(), name="apipod-sqlite-usage")
        if len(self._pending) >= self._max_pending:
            await self.flush()

    async def flush(self) -> None:
        """Raises:
        StorageError: rows could not be written; they stay buffered for the next attempt.
        """
        if self._writer is not None:
            await asyncio.wait({self._writer})  # its failure is logged by itself; the rows are back in line
        while self._pending:
            batch = self._take()
            try:
                await self._db.run(partial(_write, rows=batch))
            except BaseException:
                self._pending[:0] = batch
                raise

    async def query(
        self, *, key_id: str | None = None, since: datetime | None = None, limit: int = 1000
    ) -> list[UsageRecord]:
        await self.flush()
        where: list[str] = []
        params: list[Any] = []
        if key_id is not None:
            where.append("key_id = ?")
            params.append(key_id)
        if since is not None:
            where.append("timestamp >= ?")
            params.append(to_text(since))
        sql = f"SELECT {_COLUMNS} FROM usage_records"  # noqa: S608
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY timestamp DESC, id DESC LIMIT ?"
        params.append(max(limit, 0))

        def select(conn: sqlite3.Connection) -> list[UsageRecord]:
            return [_record(row) for row in conn.execute(sql, params)]

        return await self._db.run(select)

    def _take(self) -> list[_Row]:
        batch = self._pending[: self._batch_size]
        del self._pending[: self._batch_size]
        return batch

    async def _drain(self) -> None:
        while self._pending:
            batch = self._take()
            try:
                await self._db.run(partial(_write, rows=batch))
            except ApipodError:
                self._pending[:0] = batch
                logger.exception("usage rows not written yet; %d kept for the next flush", len(self._pending))
                return
            except BaseException:
                self._pending[:0] = batch
                raise
