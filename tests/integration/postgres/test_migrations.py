"""Migrations: applied once, safe to run from several sessions at once, and checked before serving."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from apipod.adapters.postgres import check_schema, latest_version, migrate
from apipod.adapters.postgres.migrations import available_migrations
from apipod.domain.errors import StorageError


@pytest.fixture
async def pool(scratch_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(scratch_dsn, min_size=1, max_size=2)
    yield pool
    await pool.close()


def test_migrations_are_numbered_from_one() -> None:
    versions = [m.version for m in available_migrations()]

    assert versions == list(range(1, len(versions) + 1))
    assert latest_version() == versions[-1] >= 3


async def test_an_unmigrated_database_is_refused_with_the_command_to_run(pool: asyncpg.Pool) -> None:
    with pytest.raises(StorageError) as caught:
        await check_schema(pool)

    assert "run `apipod migrate`" in caught.value.message


async def test_migrate_applies_everything_once(pool: asyncpg.Pool) -> None:
    first = await migrate(pool)
    second = await migrate(pool)

    assert first == list(range(1, latest_version() + 1))
    assert second == []
    await check_schema(pool)
    tables = {r["tablename"] for r in await pool.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"api_keys", "upstreams", "plans", "quota_windows", "quota_reservations", "usage_logs"} <= tables


async def test_concurrent_migrations_apply_each_version_exactly_once(scratch_dsn: str) -> None:
    pools = [await asyncpg.create_pool(scratch_dsn, min_size=1, max_size=1) for _ in range(4)]
    try:
        results = await asyncio.gather(*(migrate(p) for p in pools))
    finally:
        for p in pools:
            await p.close()

    applied = sorted(v for result in results for v in result)
    assert applied == list(range(1, latest_version() + 1))
    assert sorted(len(r) for r in results) == [0, 0, 0, latest_version()]


async def test_a_newer_schema_is_refused_by_check_and_by_migrate(pool: asyncpg.Pool) -> None:
    await migrate(pool)
    future = latest_version() + 1
    await pool.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, 'from_the_future')", future)

    with pytest.raises(StorageError) as checked:
        await check_schema(pool)
    with pytest.raises(StorageError) as migrated:
        await migrate(pool)

    assert f"version {future}, newer than this apipod" in checked.value.message
    assert "newer" in migrated.value.message


async def test_a_schema_behind_is_refused_and_migrate_catches_it_up(pool: asyncpg.Pool) -> None:
    *older, last = available_migrations()
    await pool.execute("CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL)")
    for migration in older:  # as an older apipod would have left it
        await pool.execute(migration.sql)
        await pool.execute("INSERT INTO schema_migrations VALUES ($1, $2)", migration.version, migration.name)

    with pytest.raises(StorageError) as caught:
        await check_schema(pool)

    assert f"needs version {last.version}: run `apipod migrate`" in caught.value.message
    assert await migrate(pool) == [last.version]
    await check_schema(pool)
