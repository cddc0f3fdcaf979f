"""What the contracts cannot say: persistence across reopening, several connections on one file (as
several processes would have), the catalog cache, pruning and the usage buffer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from apipod.adapters.sqlite import (
    SqliteCatalogStore,
    SqliteDatabase,
    SqliteKeyRepository,
    SqliteQuotaLedger,
    SqliteUsageLog,
)
from apipod.domain.catalog import Account, Route
from apipod.domain.errors import QuotaExceededError, StorageError
from apipod.domain.quota import Budget
from tests.contracts.builders import DAY, NOW, make_key, make_model, make_plan, make_record, make_upstream


async def _open(path: Path) -> SqliteDatabase:
    database = SqliteDatabase(path)
    await database.migrate()
    return database


@pytest.fixture
async def path(tmp_path: Path) -> Path:
    return tmp_path / "apipod.db"


@pytest.fixture
async def db(path: Path) -> AsyncIterator[SqliteDatabase]:
    database = await _open(path)
    yield database
    await database.close()


async def test_keys_and_catalog_survive_reopening(path: Path) -> None:
    first = await _open(path)
    await SqliteKeyRepository(first).add(make_key("key_1"))
    catalog = SqliteCatalogStore(first)
    await catalog.upsert_upstream(make_upstream("openai", secrets=("sk-1", "sk-2")))
    await catalog.upsert_model(make_model("mini"))
    await catalog.upsert_plan(make_plan("pro", routes=(Route("mini", 3.0),), budgets=(Budget(window=DAY, tokens=5),)))
    written = await catalog.snapshot()
    await first.close()

    second = await _open(path)
    try:
        assert await SqliteKeyRepository(second).get("key_1") == make_key("key_1")
        assert await SqliteCatalogStore(second).snapshot() == written
    finally:
        await second.close()


async def test_snapshot_is_served_from_memory_until_a_write(db: SqliteDatabase) -> None:
    store = SqliteCatalogStore(db)
    await store.upsert_upstream(make_upstream("openai"))
    first = await store.snapshot()

    assert await store.snapshot() is first
    await store.upsert_model(make_model("mini"))
    assert await store.snapshot() is not first


async def test_load_sees_another_connections_writes(path: Path, db: SqliteDatabase) -> None:
    other = await _open(path)
    try:
        store = SqliteCatalogStore(db)
        assert (await store.snapshot()).upstreams == ()
        await SqliteCatalogStore(other).upsert_upstream(make_upstream("openai"))

        assert (await store.snapshot()).upstreams == ()  # the in-process copy, as documented
        assert [u.name for u in (await store.load()).upstreams] == ["openai"]
    finally:
        await other.close()


async def test_account_secrets_are_columns_of_their_own(db: SqliteDatabase) -> None:
    store = SqliteCatalogStore(db)
    await store.upsert_upstream(make_upstream("openai", secrets=("sk-secret-1",)))
    await store.add_account("openai", "sk-secret-2")

    rows = await db.run(lambda conn: conn.execute("SELECT idx, secret FROM upstream_accounts").fetchall())
    upstream_row = await db.run(lambda conn: conn.execute("SELECT * FROM upstreams").fetchone())

    assert sorted(rows) == [(0, "sk-secret-1"), (1, "sk-secret-2")]
    assert not any("sk-secret" in str(value) for value in upstream_row)
    assert "sk-secret" not in repr(await store.snapshot())
    assert (await store.snapshot()).upstreams[0].accounts[1] == Account(1, "sk-secret-2")


async def test_two_connections_on_one_file_never_pass_a_budget(path: Path, db: SqliteDatabase) -> None:
    other = await _open(path)
    ledgers = [SqliteQuotaLedger(db), SqliteQuotaLedger(other)]
    budgets = (Budget(window=DAY, requests=10),)

    async def attempt(i: int) -> bool:
        try:
            await ledgers[i % 2].reserve(key_id="key_1", budgets=budgets, tokens=1, now=NOW, ttl=60)
        except QuotaExceededError:
            return False
        return True

    try:
        outcomes = await asyncio.gather(*(attempt(i) for i in range(50)))
        assert outcomes.count(True) == 10
        (use,) = await ledgers[1].usage(key_id="key_1", budgets=budgets, now=NOW)
        assert use.requests == 10
    finally:
        await other.close()


async def test_a_reservation_settles_through_another_connection(path: Path, db: SqliteDatabase) -> None:
    other = await _open(path)
    budgets = (Budget(window=DAY, tokens=1000),)
    try:
        reservation = await SqliteQuotaLedger(db).reserve(key_id="key_1", budgets=budgets, tokens=500, now=NOW, ttl=60)
        await SqliteQuotaLedger(other).settle(reservation, tokens=42, now=NOW)
        await SqliteQuotaLedger(db).settle(reservation, tokens=999, now=NOW)

        (use,) = await SqliteQuotaLedger(db).usage(key_id="key_1", budgets=budgets, now=NOW)
        assert use.tokens == 42
    finally:
        await other.close()


async def test_sweep_prunes_finished_reservations_and_ended_windows(db: SqliteDatabase) -> None:
    ledger = SqliteQuotaLedger(db)
    budgets = (Budget(window=DAY, tokens=1000),)
    settled = await ledger.reserve(key_id="key_1", budgets=budgets, tokens=10, now=NOW, ttl=60)
    await ledger.settle(settled, tokens=5, now=NOW)
    await ledger.reserve(key_id="key_1", budgets=budgets, tokens=10, now=NOW, ttl=60)

    assert await ledger.sweep(NOW + timedelta(days=3)) == 1

    counts = await db.run(
        lambda conn: [
            conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]  # noqa: S608
            for table in ("quota_reservations", "quota_windows")
        ]
    )
    assert counts == [0, 0]
    await ledger.settle(settled, tokens=7, now=NOW)  # a pruned reservation settles as a no-op


async def test_usage_rows_survive_reopening(path: Path) -> None:
    first = await _open(path)
    log = SqliteUsageLog(first)
    for i in range(3):
        await log.record(make_record(f"req_{i}", timestamp=NOW + timedelta(seconds=i)))
    await log.flush()
    await first.close()

    second = await _open(path)
    try:
        assert [r.request_id for r in await SqliteUsageLog(second).query()] == ["req_2", "req_1", "req_0"]
    finally:
        await second.close()


async def test_usage_rows_that_fail_to_write_are_kept_until_a_flush_succeeds(db: SqliteDatabase) -> None:
    log = SqliteUsageLog(db)
    await db.run(lambda conn: conn.execute("ALTER TABLE usage_records RENAME TO usage_records_away"))

    await log.record(make_record("req_1"))
    with pytest.raises(StorageError):
        await log.flush()
    await log.record(make_record("req_2", timestamp=NOW + timedelta(seconds=1)))

    await db.run(lambda conn: conn.execute("ALTER TABLE usage_records_away RENAME TO usage_records"))
    await log.flush()

    assert [r.request_id for r in await log.query()] == ["req_2", "req_1"]


async def test_usage_rows_are_written_in_batches(db: SqliteDatabase) -> None:
    log = SqliteUsageLog(db, batch_size=7)
    await asyncio.gather(*(log.record(make_record(f"req_{i}")) for i in range(50)))
    await log.flush()

    total = await db.run(lambda conn: conn.execute("SELECT COUNT(*) FROM usage_records").fetchone()[0])
    assert total == 50


class _CountedWrites:
    """Counts the database calls that write usage rows, and how many rows each wrote."""

    def __init__(self, db: SqliteDatabase) -> None:
        self.batches: list[int] = []
        run = db.run

        async def counted(fn: Any) -> Any:
            rows = getattr(fn, "keywords", {}).get("rows")
            if rows is not None:
                self.batches.append(len(rows))
            return await run(fn)

        db.run = counted  # type: ignore[method-assign]


async def _rows_written(db: SqliteDatabase) -> int:
    return int(await db.run(lambda conn: conn.execute("SELECT COUNT(*) FROM usage_records").fetchone()[0]))


async def test_usage_rows_recorded_apart_share_one_transaction(db: SqliteDatabase) -> None:
    writes = _CountedWrites(db)
    log = SqliteUsageLog(db, gather_seconds=30)
    for i in range(20):
        await log.record(make_record(f"req_{i}"))
        await asyncio.sleep(0)  # the writer gets a turn between rows, as between requests

    assert writes.batches == []  # still gathering
    await asyncio.wait_for(log.flush(), 5)  # a flush ends the gathering at once

    assert writes.batches == [20]
    assert await _rows_written(db) == 20


async def test_gathered_usage_rows_are_written_without_a_flush(db: SqliteDatabase) -> None:
    log = SqliteUsageLog(db, gather_seconds=0.01)
    for i in range(3):
        await log.record(make_record(f"req_{i}"))
    for _ in range(200):
        if await _rows_written(db) == 3:
            break
        await asyncio.sleep(0.01)
    assert await _rows_written(db) == 3
    assert log.backlog() == 0


async def test_a_full_batch_is_written_without_waiting_for_the_gathering(db: SqliteDatabase) -> None:
    writes = _CountedWrites(db)
    log = SqliteUsageLog(db, batch_size=5, gather_seconds=30)
    for i in range(5):
        await log.record(make_record(f"req_{i}"))
        await asyncio.sleep(0)
    for _ in range(200):
        if writes.batches:
            break
        await asyncio.sleep(0.01)

    assert writes.batches == [5]


async def test_usage_buffer_applies_back_pressure(db: SqliteDatabase) -> None:
    log = SqliteUsageLog(db, max_pending=5)
    for i in range(12):
        await log.record(make_record(f"req_{i}"))  # never yields to the writer task by itself

    written = await db.run(lambda conn: conn.execute("SELECT COUNT(*) FROM usage_records").fetchone()[0])
    assert written >= 10
    await log.flush()
    assert len(await log.query()) == 12
