"""PgUsageLog while its database is down: rows wait in the queue, a full queue makes ``record()`` wait for
room, and a row that finds none within ``overflow_wait`` is dropped, counted and logged (once a second), so
a request never hangs on a long outage. The database is a stand-in that fails every connection."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import pytest

from apipod.adapters.postgres import PgDatabase, PgUsageLog
from apipod.domain.errors import StorageError
from tests.contracts.builders import make_record


class DownDatabase:
    """Every ``connection()`` fails like an unreachable PostgreSQL."""

    def __init__(self) -> None:
        self.attempts = 0

    @asynccontextmanager
    async def connection(self, action: str) -> AsyncIterator[Any]:
        self.attempts += 1
        if self.attempts > 0:  # always: a generator needs its yield
            raise StorageError(f"{action}: database error (ConnectionRefusedError: refused)")
        yield None


def down_log(**options: Any) -> tuple[PgUsageLog, DownDatabase]:
    db = DownDatabase()
    return PgUsageLog(cast(PgDatabase, db), retry_initial=0.01, retry_max=0.02, **options), db


async def test_a_row_that_finds_no_room_is_dropped_counted_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, "apipod.usage")
    log, db = down_log(max_queue=2, batch_size=1, overflow_wait=0.05)
    for i in range(3):  # one in flight, two queued
        await log.record(make_record(f"kept_{i}"))
    await asyncio.sleep(0.05)

    await asyncio.wait_for(log.record(make_record("lost_1")), 2)
    await asyncio.wait_for(log.record(make_record("lost_2")), 2)

    assert log.dropped == 2
    assert log.depth == 3  # the kept rows still wait for the database
    dropped = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert len(dropped) == 1  # once a second, not once a row
    assert "lost_1" in dropped[0] and "1 rows dropped so far" in dropped[0]
    assert db.attempts > 1  # the writer keeps retrying
    with pytest.raises(StorageError, match="3 usage rows could not be written"):
        await log.close(grace=0.1)


async def test_rows_with_room_are_queued_not_dropped() -> None:
    log, _ = down_log(max_queue=10, batch_size=1, overflow_wait=0.05)

    for i in range(5):
        await asyncio.wait_for(log.record(make_record(f"r{i}")), 1)

    assert log.dropped == 0 and log.depth == 5
    with pytest.raises(StorageError):
        await log.close(grace=0.05)
