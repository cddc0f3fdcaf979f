"""PgUsageLog: usage rows written off the request path, in batches, never dropped silently.

``record()`` puts the row on a bounded queue and returns; one background task drains it into batches of
up to ``batch_size`` rows, each written by one binary ``COPY``. The writer gathers rows
for ``gather_seconds`` after the first one (or until a batch is full, or a flush asks), as the SQLite log does:
a write's fixed cost (a pooled connection, the retry bookkeeping, a round trip) is paid once per batch rather
than once per request when requests come one at a time (PERF, issue 10). While the database
is down the batch is retried (tenacity, capped exponential backoff, logged at ERROR each time); the queue
fills, and then ``record()`` waits for room (backpressure, logged) instead of dropping rows, for up to
``overflow_wait`` seconds: a request must not hang on a long outage, so a row that still finds no room
then is dropped, counted in ``dropped`` and logged at ERROR (at most once a second, with the total). Each
row carries a writer-chosen ``row_id``, so a batch retried after a lost acknowledgement is not counted
twice. Besides those, the only rows ever discarded are ones PostgreSQL rejects as invalid data; each is
logged at ERROR and counted in ``rejected``.
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
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_never

from apipod.adapters.postgres.database import PgDatabase
from apipod.adapters.retry import ExponentialJitter
from apipod.application.ports import UsageLog
from apipod.dialects.catalog_wire import converter, from_row
from apipod.domain.errors import ConflictError, StorageError
from apipod.domain.usage import (
    Attempt,
    UsageBucket,
    UsageCursor,
    UsageFilter,
    UsageGroup,
    UsagePage,
    UsageRecord,
    UsageSummaryRow,
)

log = logging.getLogger("apipod.usage")

# The batch goes in by binary COPY (PERF, issue 10): for 73 rows it took the event loop about 40 % less time
# than ``INSERT ... SELECT FROM unnest(...)`` with its per-element array checks, and PostgreSQL's backend about
# 20 % less. COPY has no ON CONFLICT: ``_insert`` reads a clash on ``row_id`` as a lost acknowledgement.
_COLUMNS = (
    "row_id", "request_id", "key_id", "user_name", "requested_model", "routed_model", "upstream_provider", "status",
    "token_count", "input_tokens", "output_tokens", "cached_input_tokens", "cache_creation_input_tokens",
    "reasoning_tokens", "latency_ms", "ttft_ms", "error", "attempts", "timestamp", "plan", "cost",
)  # fmt: skip
_ROW_ID_UNIQUE = "usage_logs_row_id_key"

_SELECT = """
SELECT id, request_id, key_id, user_name, requested_model, routed_model, upstream_provider, status, input_tokens,
       output_tokens, cached_input_tokens, cache_creation_input_tokens, reasoning_tokens, latency_ms, ttft_ms,
       error, attempts, "timestamp", plan, cost
FROM usage_logs
"""

# The group's column (a fixed choice, never caller text) for summaries.
_GROUPS = {
    UsageGroup.KEY: "key_id",
    UsageGroup.PLAN: "plan",
    UsageGroup.MODEL: "requested_model",
    UsageGroup.UPSTREAM_MODEL: "routed_model",
    UsageGroup.PROVIDER: "split_part(upstream_provider, '/', 1)",
}

_SUMMARY = """
SELECT date_trunc('{bucket}', "timestamp" AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS bucket_start,
       {group} AS grp, count(*) AS requests,
       sum(input_tokens)::bigint AS input_tokens, sum(output_tokens)::bigint AS output_tokens,
       sum(cached_input_tokens)::bigint AS cached_input_tokens,
       sum(cache_creation_input_tokens)::bigint AS cache_creation_input_tokens,
       sum(reasoning_tokens)::bigint AS reasoning_tokens, sum(cost) AS cost,
       count(*) FILTER (WHERE status NOT IN ('success', 'cancelled')) AS errors,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) AS p50,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) AS p95
FROM usage_logs {where}
GROUP BY 1, 2
ORDER BY 1, ({group}) COLLATE "C"
"""

Row = tuple[Any, ...]


def _text(value: str | None) -> str | None:
    # PostgreSQL text cannot hold NUL; an upstream error message sometimes does.
    return value.replace("\x00", "") if value and "\x00" in value else value


def _row(record: UsageRecord) -> Row:
    usage = record.usage
    attempts = [converter.unstructure(a, Attempt) for a in record.attempts]
    return (
        uuid.uuid4(),
        _text(record.request_id),
        _text(record.key_id),
        _text(record.user),
        _text(record.requested_model),
        _text(record.routed_model),
        _text(record.upstream),
        _text(record.status),
        usage.input_tokens + usage.output_tokens,
        usage.input_tokens,
        usage.output_tokens,
        usage.cached_input_tokens,
        usage.cache_creation_input_tokens,
        usage.reasoning_tokens,
        record.latency_ms,
        record.ttft_ms,
        _text(record.error),
        attempts,
        record.timestamp,
        _text(record.plan),
        record.cost,
    )


def _record(row: Any) -> UsageRecord:
    names = ("request_id", "key_id", "requested_model", "routed_model", "status", "latency_ms", "ttft_ms", "error")
    usage = ("input_tokens", "output_tokens", "cached_input_tokens", "cache_creation_input_tokens", "reasoning_tokens")
    return from_row(
        {
            **{name: row[name] for name in names},
            "user": row["user_name"],
            "upstream": row["upstream_provider"],
            "usage": {name: row[name] for name in usage},
            "timestamp": row["timestamp"],
            "attempts": row["attempts"],
            "plan": row["plan"],
            "cost": row["cost"],
        },
        UsageRecord,
        "usage_logs",
    )


# COPY's encoders raise their own errors for a value its column cannot hold (an int past bigint, a str for a
# number), where a query's arguments would raise asyncpg's DataError.
_INVALID = (asyncpg.DataError, OverflowError, TypeError, ValueError)


def _is_invalid_data(exc: BaseException) -> bool:
    return isinstance(exc, _INVALID) or isinstance(exc.__cause__, asyncpg.DataError)


class PgUsageLog(UsageLog):
    """Args:
    db: the shared database.
    max_queue: rows that may wait for the writer before ``record()`` waits too.
    batch_size: most rows per COPY.
    retry_initial, retry_max: backoff between attempts while the database is unavailable (seconds).
    overflow_wait: longest wait of ``record()`` for room in a full queue before it drops the row.
    gather_seconds: how long the writer waits for more rows after the first (0: none; it then writes whatever
        is queued at once). ``flush()`` and a full batch end the wait early. Shorter than SQLite's: a batch
        costs PostgreSQL's backend 20 to 25 us a row (eight indexes), and on a machine it shares with the
        gateway a longer batch is a longer stretch in which requests wait for a core (docs/benchmarks.md,
        fourteenth pass).
    """

    def __init__(
        self,
        db: PgDatabase,
        *,
        max_queue: int = 10_000,
        batch_size: int = 500,
        retry_initial: float = 0.1,
        retry_max: float = 5.0,
        overflow_wait: float = 30.0,
        gather_seconds: float = 0.02,
    ) -> None:
        self._db = db
        self._gather_seconds = gather_seconds
        self._due = asyncio.Event()  # set: the writer stops gathering and writes now
        self._queue: asyncio.Queue[Row] = asyncio.Queue(maxsize=max_queue)
        self._batch_size = batch_size
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._in_flight = 0
        self._writer: asyncio.Task[None] | None = None
        self._warned_full = float("-inf")
        self._overflow_wait = overflow_wait
        self._warned_dropped = float("-inf")
        self.dropped = 0
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
        if not self._queue.full():
            # PERF: no ``wait_for`` (a task and a timer per request) when there is room
            self._queue.put_nowait(row)
            if self._queue.qsize() >= self._batch_size:
                self._due.set()
            return
        now = time.monotonic()
        if now - self._warned_full >= 1.0:  # loud, but once a second rather than once per request
            self._warned_full = now
            log.warning(
                "usage queue is full (%d rows waiting): requests wait for the writer; is the database down?",
                self.depth,
            )
        try:
            await asyncio.wait_for(self._queue.put(row), self._overflow_wait)
        except TimeoutError:
            self.dropped += 1
            now = time.monotonic()
            if now - self._warned_dropped >= 1.0:
                self._warned_dropped = now
                log.error(
                    "usage row for request %s dropped: the queue stayed full for %.0fs; %d rows dropped so far",
                    record.request_id,
                    self._overflow_wait,
                    self.dropped,
                )

    async def flush(self) -> None:
        if self.depth == 0:
            return
        self._ensure_writer()
        self._due.set()
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

    def backlog(self) -> int:
        return self.depth

    async def query(
        self, *, key_id: str | None = None, since: datetime | None = None, limit: int = 1000
    ) -> list[UsageRecord]:
        page = await self.search(UsageFilter(key_id=key_id, since=since), limit=limit)
        return list(page.rows)

    async def search(self, where: UsageFilter, *, limit: int, after: UsageCursor | None = None) -> UsagePage:
        await self.flush()
        conditions, params = _conditions(where)
        if after is not None:
            params += [after.timestamp, after.row_id]
            conditions.append(f'("timestamp", id) < (${len(params) - 1}, ${len(params)})')
        limit = max(limit, 0)
        params.append(limit + 1)  # one more than asked: is there a next page
        sql = _SELECT + _where(conditions) + f' ORDER BY "timestamp" DESC, id DESC LIMIT ${len(params)}'
        async with self._db.connection("reading usage") as conn:
            rows = await conn.fetch(sql, *params)
        page = rows[:limit]
        more = len(rows) > limit and page
        return UsagePage(
            rows=tuple(_record(row) for row in page),
            row_ids=tuple(row["id"] for row in page),
            next_cursor=UsageCursor(timestamp=page[-1]["timestamp"], row_id=page[-1]["id"]) if more else None,
        )

    async def summarize(
        self, where: UsageFilter, *, group_by: UsageGroup, bucket: UsageBucket
    ) -> list[UsageSummaryRow]:
        await self.flush()
        conditions, params = _conditions(where)
        sql = _SUMMARY.format(bucket=bucket.value, group=_GROUPS[group_by], where=_where(conditions))
        async with self._db.connection("summarizing usage") as conn:
            rows = await conn.fetch(sql, *params)
        return [
            UsageSummaryRow(
                bucket_start=row["bucket_start"],
                group=row["grp"],
                requests=row["requests"],
                input_tokens=row["input_tokens"],
                output_tokens=row["output_tokens"],
                cached_input_tokens=row["cached_input_tokens"],
                cache_creation_input_tokens=row["cache_creation_input_tokens"],
                reasoning_tokens=row["reasoning_tokens"],
                cost=row["cost"],
                errors=row["errors"],
                latency_p50_ms=row["p50"],
                latency_p95_ms=row["p95"],
            )
            for row in rows
        ]

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
            self._in_flight = 1  # counted while the writer gathers: a flush must not find nothing to wait for
            try:
                await self._gather()
                while len(batch) < self._batch_size and not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                self._in_flight = len(batch)
                await self._write(batch)
            finally:
                self._in_flight = 0
                for _ in batch:
                    self._queue.task_done()

    async def _gather(self) -> None:
        """Wait up to ``gather_seconds`` for more rows, unless a batch is full or a flush wants them now."""
        if self._gather_seconds > 0 and not self._due.is_set() and self._queue.qsize() + 1 < self._batch_size:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._gather_seconds):
                    await self._due.wait()
        self._due.clear()

    async def _write(self, rows: list[Row]) -> None:
        """Write ``rows``, retrying while the database is unavailable. Invalid data cannot succeed on
        retry: the batch is then split so only the offending rows are dropped, each one loudly."""
        try:
            await self._insert(rows)  # PERF: a batch that goes in at once builds no retry controller
        except Exception as first:  # noqa: BLE001 - the retry loop sorts failures, as for every attempt after
            await self._retry(rows, first)

    async def _retry(self, rows: list[Row], first: Exception) -> None:
        failed: Exception | None = first
        try:
            async for attempt in self._retrying():
                with attempt:
                    if failed is not None:  # the attempt ``_write`` made: counted, logged and waited after
                        raised, failed = failed, None
                        raise raised
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
            # Not tenacity's wait_exponential_jitter: its keywords differ across the releases we allow.
            wait=ExponentialJitter(self._retry_initial, self._retry_max, self._retry_initial),
            stop=stop_never,
            before_sleep=self._log_retry,
            reraise=True,
        )

    async def _insert(self, rows: list[Row]) -> None:
        try:
            async with self._db.connection("writing usage rows") as conn:
                await conn.copy_records_to_table("usage_logs", records=rows, columns=_COLUMNS)
        except ConflictError as exc:  # storage_errors' reading of a unique violation
            cause = exc.__cause__
            if not (isinstance(cause, asyncpg.UniqueViolationError) and cause.constraint_name == _ROW_ID_UNIQUE):
                raise
            # A COPY is all or nothing and a row leaves the queue in one batch only, so a row id already
            # there means an earlier attempt of this very batch committed and its acknowledgement was lost.
            log.warning("usage rows of request %s and %d more were already written", rows[0][1], len(rows) - 1)
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


def _where(conditions: list[str]) -> str:
    return " WHERE " + " AND ".join(conditions) if conditions else ""


def _conditions(where: UsageFilter) -> tuple[list[str], list[Any]]:
    """SQL conditions with numbered parameters for ``where`` (each served by an index on (column, time))."""
    conditions: list[str] = []
    params: list[Any] = []

    def add(sql: str, *values: Any) -> None:
        params.extend(values)
        numbers = [f"${len(params) - len(values) + i + 1}" for i in range(len(values))]
        conditions.append(sql.format(*numbers))

    for column, value in where.exact_matches():
        add(column + " = {}", value)
    if where.provider is not None:
        add("split_part(upstream_provider, '/', 1) = {}", where.provider)
    if where.since is not None:
        add('"timestamp" >= {}', where.since)
    if where.until is not None:
        add('"timestamp" < {}', where.until)
    return conditions, params
