"""The usage writer: batches, backpressure, and rows kept (then written) while the database is down."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest

from apipod.adapters.postgres import PgDatabase, PgUsageLog, migrate
from apipod.adapters.postgres.usage import _COLUMNS
from apipod.domain.chat import Usage
from apipod.domain.errors import StorageError
from tests.contracts.builders import NOW, make_record
from tests.integration.postgres.conftest import ADMIN_DSN


class Outage:
    """Makes one database refuse connections (and drops the open ones), then brings it back."""

    def __init__(self, dsn: str) -> None:
        self.name = dsn.rpartition("/")[2]

    async def _admin(self, sql: str, *args: object) -> None:
        admin = await asyncpg.connect(ADMIN_DSN)
        try:
            await admin.execute(sql, *args)
        finally:
            await admin.close()

    async def start(self) -> None:
        await self._admin(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS false')
        await self._admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", self.name)

    async def end(self) -> None:
        await self._admin(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS true')


@pytest.fixture
async def db(scratch_dsn: str) -> AsyncIterator[PgDatabase]:
    db = await PgDatabase.connect(scratch_dsn, min_size=1, max_size=4, acquire_timeout=2.0)
    await migrate(db.pool)
    yield db
    await Outage(scratch_dsn).end()
    await db.close(grace=2.0)


async def count_rows(db: PgDatabase) -> int:
    return int(await db.pool.fetchval("SELECT count(*) FROM usage_logs"))


def counting_inserts(log: PgUsageLog, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of each INSERT ``log`` makes from now on, in order."""
    inserts: list[int] = []
    insert = log._insert

    async def counting(rows: list[tuple[object, ...]]) -> None:
        inserts.append(len(rows))
        await insert(rows)

    monkeypatch.setattr(log, "_insert", counting)
    return inserts


async def test_rows_are_written_in_batches_of_at_most_batch_size(
    db: PgDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = PgUsageLog(db, batch_size=100)
    inserts = counting_inserts(log, monkeypatch)
    for i in range(250):
        await log.record(make_record(f"req_{i}", timestamp=NOW + timedelta(milliseconds=i)))
    await log.flush()

    assert await count_rows(db) == 250
    assert sum(inserts) == 250
    assert max(inserts) <= 100
    assert len(inserts) < 250  # rows queued while a batch was in flight went together
    assert log.depth == 0
    await log.close()


async def test_rows_that_come_one_at_a_time_are_gathered_into_one_insert(
    db: PgDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As requests at one connection record them: one INSERT for the rows of ``gather_seconds``, not one each."""
    log = PgUsageLog(db, gather_seconds=0.3)
    inserts = counting_inserts(log, monkeypatch)
    for i in range(5):
        await log.record(make_record(f"req_{i}"))
        await asyncio.sleep(0.01)
    assert inserts == []  # still gathering
    assert log.depth == 5
    for _ in range(100):
        if inserts:
            break
        await asyncio.sleep(0.02)
    assert inserts == [5]
    assert await count_rows(db) == 5
    await log.close()


async def test_a_flush_or_a_full_batch_does_not_wait_for_the_gathering(db: PgDatabase) -> None:
    log = PgUsageLog(db, batch_size=3, gather_seconds=30)
    await log.record(make_record("first"))
    await asyncio.wait_for(log.flush(), 2)  # a reader of the log sees its rows at once
    assert await count_rows(db) == 1
    for i in range(3):
        await log.record(make_record(f"full_{i}"))
    for _ in range(100):
        if await count_rows(db) == 4:
            break
        await asyncio.sleep(0.02)
    assert await count_rows(db) == 4  # a full batch went without a flush, long before 30 s
    await asyncio.wait_for(log.close(), 2)


async def test_rows_recorded_while_the_database_is_down_are_written_when_it_returns(
    db: PgDatabase, scratch_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    log = PgUsageLog(db, batch_size=10, retry_initial=0.02, retry_max=0.2)
    await log.record(make_record("before"))
    await log.flush()
    outage = Outage(scratch_dsn)
    await outage.start()

    with caplog.at_level(logging.ERROR, logger="apipod.usage"):
        for i in range(25):
            await log.record(make_record(f"during_{i}"))
        await asyncio.sleep(0.8)
        assert log.depth == 25  # kept, not dropped
        assert any("retrying" in r.getMessage() for r in caplog.records)  # and said so loudly
        await outage.end()
        await asyncio.wait_for(log.flush(), 10)

    assert log.depth == 0
    assert await count_rows(db) == 26
    ids = {r["request_id"] for r in await db.pool.fetch("SELECT request_id FROM usage_logs")}
    assert ids == {"before"} | {f"during_{i}" for i in range(25)}
    await log.close()


async def test_a_full_queue_makes_record_wait_instead_of_dropping(db: PgDatabase, scratch_dsn: str) -> None:
    log = PgUsageLog(db, max_queue=3, batch_size=1, retry_initial=0.02, retry_max=0.1)
    await log.start()
    outage = Outage(scratch_dsn)
    await outage.start()
    for i in range(4):  # one in flight, three queued
        await log.record(make_record(f"req_{i}"))
    await asyncio.sleep(0.1)

    blocked = asyncio.create_task(log.record(make_record("req_4")))
    await asyncio.sleep(0.3)
    assert not blocked.done()
    assert log.depth == 4

    await outage.end()
    await asyncio.wait_for(blocked, 10)
    await asyncio.wait_for(log.flush(), 10)
    assert await count_rows(db) == 5
    await log.close()


async def test_close_reports_rows_it_could_not_write(db: PgDatabase, scratch_dsn: str) -> None:
    log = PgUsageLog(db, retry_initial=0.02, retry_max=0.1)
    outage = Outage(scratch_dsn)
    await outage.start()
    await log.record(make_record("stuck_1"))
    await log.record(make_record("stuck_2"))

    with pytest.raises(StorageError, match="2 usage rows could not be written"):
        await log.close(grace=0.5)


async def test_a_batch_whose_acknowledgement_was_lost_is_written_once(
    db: PgDatabase, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The batch committed but the answer never came back: the retry finds its row ids there and counts it as
    written, neither twice nor retried forever."""
    log = PgUsageLog(db, retry_initial=0.01, retry_max=0.01)
    insert = log._insert
    attempts: list[int] = []

    async def commits_then_loses_the_answer(rows: list[tuple[object, ...]]) -> None:
        attempts.append(len(rows))
        if len(attempts) == 1:
            await db.pool.copy_records_to_table("usage_logs", records=rows, columns=_COLUMNS)
            raise StorageError("writing usage rows: connection lost")
        await insert(rows)

    monkeypatch.setattr(log, "_insert", commits_then_loses_the_answer)
    with caplog.at_level(logging.WARNING, logger="apipod.usage"):
        for i in range(3):
            await log.record(make_record(f"req_{i}"))
        await asyncio.wait_for(log.flush(), 5)

    assert attempts == [3, 3]
    assert await count_rows(db) == 3
    assert log.written == 3
    assert any("already written" in r.getMessage() for r in caplog.records)
    await log.close()


async def test_invalid_rows_are_rejected_alone_and_loudly(db: PgDatabase, caplog: pytest.LogCaptureFixture) -> None:
    log = PgUsageLog(db, batch_size=10)
    await log.start()
    good = [make_record(f"ok_{i}") for i in range(3)]
    bad = make_record("bad", usage=Usage(input_tokens=2**70))

    with caplog.at_level(logging.ERROR, logger="apipod.usage"):
        await log.record(good[0])
        await log.record(bad)
        await log.record(good[1])
        await log.record(good[2])
        await log.flush()

    assert log.rejected == 1
    assert any("request bad rejected" in r.getMessage() for r in caplog.records)
    ids = sorted(r["request_id"] for r in await db.pool.fetch("SELECT request_id FROM usage_logs"))
    assert ids == ["ok_0", "ok_1", "ok_2"]
    await log.close()


async def test_text_with_nul_characters_is_stored_without_them(db: PgDatabase) -> None:
    log = PgUsageLog(db)
    await log.record(make_record("nul", error="upstream said \x00boom"))

    (row,) = await log.query()

    assert row.error == "upstream said boom"
    await log.close()
