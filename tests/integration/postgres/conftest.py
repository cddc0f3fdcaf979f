"""PostgreSQL integration fixtures.

A fresh database (unique name) is created for the test session on the server at ``APIPOD_TEST_POSTGRES``
(default postgresql://postgres@127.0.0.1:5432/postgres), migrated once, and dropped at the end. Each test
starts from empty tables. An unreachable server skips these tests, except under ``CI=true`` where it fails
the run.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from apipod.adapters.postgres import PgDatabase, migrate

ADMIN_DSN = os.environ.get("APIPOD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")

TABLES = (
    "api_keys, upstreams, upstream_accounts, upstream_models, plans, plan_aliases, plan_routes, plan_budgets, "
    "quota_windows, quota_reservations, usage_logs, stored_responses"
)


def dsn_for(database: str) -> str:
    """The admin DSN pointed at another database on the same server."""
    base, _, _ = ADMIN_DSN.rpartition("/")
    return f"{base}/{database}"


async def _admin() -> asyncpg.Connection:
    try:
        return await asyncpg.connect(ADMIN_DSN, timeout=3.0)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        reason = f"PostgreSQL is unreachable at {ADMIN_DSN} ({type(exc).__name__}: {exc})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI=true requires it")
        pytest.skip(reason)


async def create_database(prefix: str) -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = await _admin()
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return name


async def drop_database(name: str) -> None:
    admin = await _admin()
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def pg_dsn() -> Iterator[str]:
    """The session's migrated database. Created and dropped in their own event loops (fixtures with a
    session loop would pin every test to it)."""
    name = asyncio.run(create_database("apipod_test"))
    dsn = dsn_for(name)

    async def _migrate() -> None:
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
        try:
            await migrate(pool)
        finally:
            await pool.close()

    try:
        asyncio.run(_migrate())
        yield dsn
    finally:
        asyncio.run(drop_database(name))


@pytest.fixture
async def pg(pg_dsn: str) -> AsyncIterator[PgDatabase]:
    """A pool on the session database, its tables emptied first."""
    db = await PgDatabase.connect(pg_dsn, min_size=1, max_size=10)
    await db.pool.execute(f"TRUNCATE {TABLES} RESTART IDENTITY")
    await db.pool.execute("UPDATE catalog_meta SET currency = 'USD'")
    yield db
    await db.close()


@pytest.fixture
async def scratch_dsn() -> AsyncIterator[str]:
    """An empty, unmigrated database of this test's own."""
    name = await create_database("apipod_scratch")
    yield dsn_for(name)
    await drop_database(name)
