"""UsageLog over the embedded SQLite database, with group commit.

``record()`` only appends to a buffer and makes sure one writer task will drain it. The writer gathers rows
for ``gather_seconds`` (or until a batch is full, or a flush asks) and writes them in one transaction, so
many rows share one commit and a request never waits for the file. The write runs on the event loop
(SQLite's inline mode), and a commit costs about as much as four rows and a page of log per index touched:
gathering keeps both off the request's bill. Rows that fail to be written stay buffered (and are logged)
until a later write or ``flush()`` succeeds: never dropped silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from datetime import datetime
from functools import partial
from typing import Any

import orjson

from apipod.adapters.sqlite.database import SqliteDatabase, to_text
from apipod.application.ports import UsageLog
from apipod.dialects.catalog_wire import converter, from_row
from apipod.domain.errors import ApipodError
from apipod.domain.pricing import from_units, to_units
from apipod.domain.usage import (
    Attempt,
    UsageBucket,
    UsageCursor,
    UsageFilter,
    UsageGroup,
    UsagePage,
    UsageRecord,
    UsageSummary,
    UsageSummaryRow,
)

logger = logging.getLogger(__name__)

_COLUMNS = (
    "request_id, key_id, user, requested_model, routed_model, upstream, status, token_count, input_tokens,"
    " output_tokens, cached_input_tokens, cache_creation_input_tokens, reasoning_tokens, latency_ms, ttft_ms,"
    " error, timestamp, attempts, plan, cost, id"
)
_INSERTED = _COLUMNS.removesuffix(", id")
_INSERT = f"INSERT INTO usage_records ({_INSERTED}) VALUES ({', '.join('?' * 20)})"  # noqa: S608
# the next character after "/": upstream labels of provider P sort in ["P/", "P0")
_AFTER_SLASH = chr(ord("/") + 1)

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
        orjson.dumps([converter.unstructure(a, Attempt) for a in record.attempts]).decode(),
        record.plan,
        to_units(record.cost),  # integer units of domain.pricing.COST_QUANTUM: exact
    )


def _record(row: _Row) -> UsageRecord:
    return from_row(
        {
            "request_id": row[0],
            "key_id": row[1],
            "user": row[2],
            "requested_model": row[3],
            "routed_model": row[4],
            "upstream": row[5],
            "status": row[6],
            "usage": {
                "input_tokens": row[8],
                "output_tokens": row[9],
                "cached_input_tokens": row[10],
                "cache_creation_input_tokens": row[11],
                "reasoning_tokens": row[12],
            },
            "latency_ms": row[13],
            "ttft_ms": row[14],
            "error": row[15],
            "timestamp": row[16],
            "attempts": orjson.loads(row[17]),
            "plan": row[18],
            "cost": from_units(row[19]),
        },
        UsageRecord,
        "usage_records",
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
    gather_seconds: how long the writer waits for more rows before a transaction (0: none; it then writes
        whatever arrived by its first turn). ``flush()`` and a full batch end the wait early.
    """

    def __init__(
        self,
        db: SqliteDatabase,
        *,
        batch_size: int = 500,
        max_pending: int = 50_000,
        gather_seconds: float = 0.05,
    ) -> None:
        self._db = db
        self._batch_size = batch_size
        self._max_pending = max_pending
        self._gather_seconds = gather_seconds
        self._pending: list[_Row] = []
        self._in_flight = 0  # rows of the batch being written
        self._writer: asyncio.Task[None] | None = None
        self._due = asyncio.Event()  # set: the writer stops gathering and writes now

    def backlog(self) -> int:
        return len(self._pending) + self._in_flight

    async def record(self, record: UsageRecord) -> None:
        self._pending.append(_row(record))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain(), name="apipod-sqlite-usage")
        elif len(self._pending) >= self._batch_size:
            self._due.set()
        if len(self._pending) >= self._max_pending:
            await self.flush()

    async def flush(self) -> None:
        """Raises:
        StorageError: rows could not be written; they stay buffered for the next attempt.
        """
        if self._writer is not None:
            self._due.set()
            await asyncio.wait({self._writer})  # its failure is logged by itself; the rows are back in line
        while self._pending:
            batch = self._take()
            try:
                await self._write_batch(batch)
            except BaseException:
                self._pending[:0] = batch
                raise

    async def _write_batch(self, batch: list[_Row]) -> None:
        self._in_flight = len(batch)
        try:
            await self._db.run(partial(_write, rows=batch))
        finally:
            self._in_flight = 0

    async def query(
        self, *, key_id: str | None = None, since: datetime | None = None, limit: int = 1000
    ) -> list[UsageRecord]:
        page = await self.search(UsageFilter(key_id=key_id, since=since), limit=limit)
        return list(page.rows)

    async def search(self, where: UsageFilter, *, limit: int, after: UsageCursor | None = None) -> UsagePage:
        await self.flush()
        conditions, params = _conditions(where)
        if after is not None:
            conditions.append("(timestamp < ? OR (timestamp = ? AND id < ?))")
            params += [to_text(after.timestamp), to_text(after.timestamp), after.row_id]
        sql = f"SELECT {_COLUMNS} FROM usage_records"  # noqa: S608
        if conditions:
            sql += " WHERE " + " AND ".join(conditions)
        sql += " ORDER BY timestamp DESC, id DESC LIMIT ?"
        limit = max(limit, 0)
        params.append(limit + 1)  # one more than asked: is there a next page

        def select(conn: sqlite3.Connection) -> list[_Row]:
            return conn.execute(sql, params).fetchall()

        rows = await self._db.run(select)
        page = rows[:limit]
        records = tuple(_record(row) for row in page)
        more = len(rows) > limit and page
        return UsagePage(
            rows=records,
            row_ids=tuple(row[20] for row in page),
            next_cursor=UsageCursor(timestamp=records[-1].timestamp, row_id=page[-1][20]) if more else None,
        )

    async def summarize(
        self, where: UsageFilter, *, group_by: UsageGroup, bucket: UsageBucket
    ) -> list[UsageSummaryRow]:
        """Added up in Python (SQLite has no percentile), one pass over the matching rows."""
        await self.flush()
        conditions, params = _conditions(where)
        sql = f"SELECT {_COLUMNS} FROM usage_records"  # noqa: S608
        if conditions:
            sql += " WHERE " + " AND ".join(conditions)

        def add_up(conn: sqlite3.Connection) -> list[UsageSummaryRow]:
            summary = UsageSummary(group_by, bucket)
            for row in conn.execute(sql, params):
                summary.add(_record(row))
            return summary.rows()

        return await self._db.run(add_up)

    def _take(self) -> list[_Row]:
        batch = self._pending[: self._batch_size]
        del self._pending[: self._batch_size]
        return batch

    async def _drain(self) -> None:
        if self._gather_seconds > 0 and len(self._pending) < self._batch_size:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._gather_seconds):
                    await self._due.wait()
        self._due.clear()
        while self._pending:
            batch = self._take()
            try:
                await self._write_batch(batch)
            except ApipodError:
                self._pending[:0] = batch
                logger.exception("usage rows not written yet; %d kept for the next flush", len(self._pending))
                return
            except BaseException:
                self._pending[:0] = batch
                raise


def _conditions(where: UsageFilter) -> tuple[list[str], list[Any]]:
    """SQL conditions and their parameters for ``where`` (each served by an index on (column, timestamp))."""
    conditions: list[str] = []
    params: list[Any] = []
    for column, value in where.exact_matches():
        conditions.append(f"{column} = ?")
        params.append(value)
    if where.provider is not None:
        conditions.append("upstream >= ? AND upstream < ?")
        params += [f"{where.provider}/", f"{where.provider}{_AFTER_SLASH}"]
    if where.since is not None:
        conditions.append("timestamp >= ?")
        params.append(to_text(where.since))
    if where.until is not None:
        conditions.append("timestamp < ?")
        params.append(to_text(where.until))
    return conditions, params
