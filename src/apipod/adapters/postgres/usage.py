"""PgUsageLog: usage rows written off the request path, in batches, never dropped silently.

``record()`` puts the row on a bounded queue and returns; one background task drains it into batches of
up to ``batch_size`` rows, each written by one ``INSERT ... SELECT FROM unnest(...)``. While the database
is down the batch is retried (tenacity, capped exponential backoff, logged at ERROR each time); the queue
fills, and then ``record()`` waits for room (backpressure, logged) instead of dropping rows. Each row
carries a writer-chosen ``row_id``, so a batch retried after a lost acknowledgement is not counted twice.
The only rows ever discarded are ones PostgreSQL rejects as invalid data; each is logged at ERROR and
counted in ``rejected``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from datetime import datetime
from typing import Any

import asyncpg
import orjson
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_never, wait_exponential_jitter

from apipod.adapters.postgres.database import PgDatabase
from apipod.application.ports import UsageLog
from apipod.domain.chat import Usage
from apipod.domain.errors import StorageError
from apipod.domain.usage import Attempt, UsageRecord

log = logging.getLogger("apipod.usage")

_INSERT = """
INSERT INTO usage_logs (
    row_id, request_id, key_id, user_name, requested_model, routed_model, upstream_provider, status,
    token_count, input_tokens, output_tokens, cached_input_tokens, cache_creation_input_tokens,
    reasoning_tokens, latency_ms, ttft_ms, error, attempts, "timestamp"
)
SELECT r.row_id, r.request_id, r.key_id, r.user_name, r.requested_model, r.routed_model, r.upstream_provider,
       r.status, r.input_tokens + r.output_tokens, r.input_tokens, r.output_tokens, r.cached_input_tokens,
       r.cache_creation_input_tokens, r.reasoning_tokens, r.latency_ms, r.ttft_ms, r.error, r.attempts::jsonb,
       r.ts
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
            $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[], $13::bigint[], $14::float8[],
            $15::float8[], $16::text[], $17::text[], $18::timestamptz[])
    AS r(row_id, request_id, key_id, user_name, requested_model, routed_model, upstream_provider, status,
         input_tokens, output_tokens, cached_input_tokens, cache_creation_input_tokens, reasoning_tokens,
         latency_ms, ttft_ms, error, attempts, ts)
ON CONFLICT (row_id) DO NOTHING
"""

_SELECT = """
SELECT request_id, key_id, user_name, requested_model, routed_model, upstream_provider, status, input_tokens,
       output_tokens, cached_input_tokens, cache_creation_input_tokens, reasoning_tokens, latency_ms, ttft_ms,
       error, attempts, "timestamp"
FROM usage_logs
WHERE ($1::text IS NULL OR key_id = $1) AND ($2::timestamptz IS NULL OR "timestamp" >= $2)
ORDER BY "timestamp" DESC, id DESC
LIMIT $3
"""

Row = tuple[Any, ...]


def _text(value: str | None) -> str | None:
    # PostgreSQL text cannot hold NUL; an upstream error message sometimes does.
    return value.replace("\x00", "") if value and "\x00" in value else value


def _row(record: UsageRecord) -> Row:
    usage = record.usage
    attempts = [{"model": a.model, "account": a.account, "outcome": a.summary} for a in record.attempts]
    return (
        uuid.uuid4(),
        _text(record.request_id),
        _text(record.key_id),
        _text(record.user),
        _text(record.requested_model),
        _text(record.routed_model),
        _text(record.upstream),
        _text(record.status),
        usage.input_tokens,
        usage.output_tokens,
        usage.cached_input_tokens,
        usage.cache_creation_input_tokens,
        usage.reasoning_tokens,
        record.latency_ms,
        record.ttft_ms,
        _text(record.error),
        _text(orjson.dumps(attempts).decode()),
        record.timestamp,
    )


def _record(row: Any) -> UsageRecord:
    return UsageRecord(
        request_id=row["request_id"],
        key_id=row["key_id"],
        user=row["user_name"],
        requested_model=row["requested_model"],
        routed_model=row["routed_model"],
        upstream=row["upstream_provider"],
        status=row["status"],
        usage=Usage(
            input_tokens=row["input_tokens"],
            output_tokens=row["output_tokens"],
            cached_input_tokens=row["cached_input_tokens"],
            cache_creation_input_tokens=row["cache_creation_input_tokens"],
            reasoning_tokens=row["reasoning_tokens"],
        ),
        latency_ms=row["latency_ms"],
        ttft_ms=row["ttft_ms"],
        error=row["error"],
        timestamp=row["timestamp"],
        attempts=tuple(
            Attempt.from_summary(model=a["model"], account=a["account"], summary=a["outcome"]) for a in row["attempts"]
        ),
    )


def _is_invalid_data(exc: BaseException) -> bool:
    return isinstance(exc, asyncpg.DataError) or isinstance(exc.__cause__, asyncpg.DataError)


class PgUsageLog(UsageLog):
    """Args:
    db: the shared database.
    max_queue: rows that may wait for the writer before ``record()`` waits too.
    batch_size: most rows per INSERT.
    retry_initial, retry_max: backoff between attempts while the database is unavailable (seconds).
    """

    def __init__(
        self,
        db: PgDatabase,
        *,
        max_queue: int = 10_000,
        batch_size: int = 500,
        retry_initial: float = 0.1,
        retry_max: float = 5.0,
    ) -> None:
        self._db = db
        self._queue: asyncio.Queue[Row] = asyncio.Queue(maxsize=max_queue)
        self._batch_size = batch_size
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._in_flight = 0
        self._writer: asyncio.Task[None] | None = None
        self._warned_full = float("-inf")
        self.rejected = 0
        self.written = 0

    @property
    def depth(self) -> int:
        """Rows accepted and not yet written (queued plus the batch being written)."""
        return self._queue.qsize() + self._in_flight

    async def start(self) -> None:
        """Start the background writer now (``record`` also starts it on first use)."""
        self._ensure_writer()

    async def record(self, record: UsageRecord) -> None:
        self._ensure_writer()
        row = _row(record)
        if self._queue.full():
            now = time.monotonic()
            if now - self._warned_full >= 1.0:  # loud, but once a second rather than once per request
                self._warned_full = now
                log.warning(
                    "usage queue is full (%d rows waiting): requests wait for the writer; is the database down?",
                    self.depth,
                )
        await self._queue.put(row)

    async def flush(self) -> None:
        if self.depth == 0:
            return
        self._ensure_writer()
        await self._queue.join()

    async def close(self, grace: float = 30.0) -> None:
        """Flush, then stop the writer. Rows still unwritten after ``grace`` are reported at ERROR
        and StorageError is raised: the caller must know they are lost."""
        try:
            await asyncio.wait_for(self.flush(), grace)
        except TimeoutError:
            lost = self.depth
            log.error("usage log closing with %d rows not written: the database stayed unavailable", lost)
            await self._stop()
            raise StorageError(f"{lost} usage rows could not be written before shutdown") from None
        await self._stop()

    async def query(
        self, *, key_id: str | None = None, since: datetime | None = None, limit: int = 1000
    ) -> list[UsageRecord]:
        await self.flush()
        async with self._db.connection("reading usage") as conn:
            rows = await conn.fetch(_SELECT, key_id, since, limit)
        return [_record(row) for row in rows]

    def _ensure_writer(self) -> None:
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_loop(), name="apipod-usage-writer")

    async def _stop(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer

    async def _write_loop(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            self._in_flight = len(batch)
            try:
                await self._write(batch)
            finally:
                self._in_flight = 0
                for _ in batch:
                    self._queue.task_done()

    async def _write(self, rows: list[Row]) -> None:
        """Write ``rows``, retrying while the database is unavailable. Invalid data cannot succeed on
        retry: the batch is then split so only the offending rows are dropped, each one loudly."""
        try:
            async for attempt in self._retrying():
                with attempt:
                    await self._insert(rows)
        except Exception as exc:
            if not _is_invalid_data(exc):
                raise
            if len(rows) > 1:
                for row in rows:
                    await self._write([row])
                return
            self.rejected += 1
            log.error("usage row for request %s rejected by the database and dropped: %s %r", rows[0][1], exc, rows[0])

    def _retrying(self) -> AsyncRetrying:
        return AsyncRetrying(
            retry=retry_if_exception(lambda exc: isinstance(exc, Exception) and not _is_invalid_data(exc)),
            wait=wait_exponential_jitter(
                multiplier=self._retry_initial, jitter=self._retry_initial, max=self._retry_max
            ),
            stop=stop_never,
            before_sleep=self._log_retry,
            reraise=True,
        )

    async def _insert(self, rows: list[Row]) -> None:
        columns = [list(column) for column in zip(*rows, strict=True)]
        async with self._db.connection("writing usage rows") as conn:
            await conn.execute(_INSERT, *columns)
        self.written += len(rows)

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.error(
            "usage rows not written (attempt %d: %s); retrying in %.1fs with %d rows waiting",
            state.attempt_number,
            exc,
            wait,
            self.depth,
        )
