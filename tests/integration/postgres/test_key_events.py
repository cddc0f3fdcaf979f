"""Key changes reach every process through LISTEN/NOTIFY, and the listener survives losing its connection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from apipod.adapters.postgres import KeyChangeListener, PgDatabase, PgKeyRepository
from tests.contracts.builders import make_key


class Changes:
    def __init__(self) -> None:
        self.seen: list[str | None] = []
        self._event = asyncio.Event()

    def __call__(self, key_id: str | None) -> None:
        self.seen.append(key_id)
        self._event.set()

    async def wait_for(self, key_id: str | None, timeout: float = 1.0) -> None:
        async with asyncio.timeout(timeout):
            while key_id not in self.seen:
                self._event.clear()
                await self._event.wait()


@pytest.fixture
async def changes(pg_dsn: str) -> AsyncIterator[tuple[Changes, KeyChangeListener]]:
    changes = Changes()
    listener = KeyChangeListener(pg_dsn, changes, ping_interval=0.2, max_backoff=0.2)
    assert await listener.start()
    yield changes, listener
    await listener.close()


async def test_revoking_a_key_is_heard_within_a_second(
    pg: PgDatabase, changes: tuple[Changes, KeyChangeListener]
) -> None:
    seen, _ = changes
    repo = PgKeyRepository(pg)
    await repo.add(make_key("key_1"))

    await repo.set_active("key_1", active=False)

    await seen.wait_for("key_1", timeout=1.0)
    assert seen.seen == [None, "key_1"]  # None: connected, forget everything first


async def test_the_listener_reconnects_and_asks_to_forget_everything(
    pg: PgDatabase, changes: tuple[Changes, KeyChangeListener]
) -> None:
    seen, listener = changes
    assert listener._conn is not None
    pid = listener._conn.get_server_pid()
    seen.seen.clear()

    await pg.pool.execute("SELECT pg_terminate_backend($1)", pid)

    await seen.wait_for(None, timeout=3.0)
    assert listener.connected
    repo = PgKeyRepository(pg)
    await repo.add(make_key("key_2"))
    await repo.set_active("key_2", active=False)
    await seen.wait_for("key_2", timeout=1.0)


async def test_a_failing_callback_does_not_stop_the_listener(pg: PgDatabase, pg_dsn: str) -> None:
    heard: list[str | None] = []

    def flaky(key_id: str | None) -> None:
        heard.append(key_id)
        if key_id == "key_1":
            raise RuntimeError("cache exploded")

    listener = KeyChangeListener(pg_dsn, flaky)
    assert await listener.start()
    repo = PgKeyRepository(pg)
    await repo.add(make_key("key_1"))
    await repo.add(make_key("key_2"))
    try:
        await repo.set_active("key_1", active=False)
        await repo.set_active("key_2", active=False)
        async with asyncio.timeout(1.0):
            while "key_2" not in heard:
                await asyncio.sleep(0.01)
    finally:
        await listener.close()
    assert heard == [None, "key_1", "key_2"]
