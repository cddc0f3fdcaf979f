"""wait_for_store: waits with growing pauses while the database cannot be reached, says so on each attempt
without a traceback or a password, and gives up at once on failures that waiting cannot fix."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
import pytest

from apipod.bootstrap.wait_for_store import postgres_unreachable, wait_for_store, where
from apipod.domain.errors import StorageError


def refused() -> StorageError:
    try:
        try:
            raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5999)")
        except OSError as exc:
            raise StorageError(f"connecting to PostgreSQL: database error ({type(exc).__name__}: {exc})") from exc
    except StorageError as error:
        return error


class Flaky:
    """Fails with ``errors`` in turn, then answers "pool"."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "pool"


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


async def test_waits_with_growing_capped_pauses_until_it_connects(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "apipod")
    connect, sleeps = Flaky(*(refused() for _ in range(6))), Sleeps()

    result = await wait_for_store(connect, what="PostgreSQL at db:5432/apipod", initial=1.0, maximum=4.0, sleep=sleeps)

    assert result == "pool" and connect.calls == 7
    assert len(sleeps.waits) == 6
    assert 1.0 <= sleeps.waits[0] < 1.5 and 2.0 <= sleeps.waits[1] < 2.5
    assert sleeps.waits[3:] == [4.0, 4.0, 4.0]
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 7
    assert all("PostgreSQL at db:5432/apipod" in m for m in messages)
    assert "not reachable" in messages[0] and "ConnectionRefusedError" in messages[0]
    assert "reachable now" in messages[-1]
    assert not any(r.exc_info for r in caplog.records)  # one line each, no traceback


async def test_a_first_success_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, "apipod")

    assert await wait_for_store(Flaky(), what="PostgreSQL", sleep=Sleeps()) == "pool"

    assert caplog.records == []


async def test_failures_waiting_cannot_fix_are_raised_at_once() -> None:
    schema = StorageError("The PostgreSQL database has no apipod schema yet: run `apipod migrate`.")
    connect, sleeps = Flaky(schema), Sleeps()

    with pytest.raises(StorageError, match="no apipod schema"):
        await wait_for_store(connect, what="PostgreSQL", sleep=sleeps)

    assert connect.calls == 1 and sleeps.waits == []


async def test_gives_up_after_the_deadline_with_the_last_error() -> None:
    connect = Flaky(*(refused() for _ in range(1000)))

    with pytest.raises(StorageError, match="ConnectionRefusedError"):
        await wait_for_store(connect, what="PostgreSQL", initial=0.001, maximum=0.001, give_up_after=0.05)

    assert 1 < connect.calls < 1000


def test_what_is_worth_waiting_for() -> None:
    def wrapped(cause: BaseException) -> StorageError:
        error = StorageError("connecting to PostgreSQL: database error")
        error.__cause__ = cause
        return error

    assert postgres_unreachable(refused())
    assert postgres_unreachable(wrapped(TimeoutError()))
    assert postgres_unreachable(wrapped(asyncpg.InvalidCatalogNameError('database "x" does not exist')))
    assert postgres_unreachable(wrapped(asyncpg.CannotConnectNowError("the database system is starting up")))
    assert not postgres_unreachable(wrapped(asyncpg.InvalidPasswordError("password authentication failed")))
    assert not postgres_unreachable(StorageError("no apipod schema yet"))
    assert not postgres_unreachable(ConnectionRefusedError())  # not translated: a bug, not an outage


def test_where_names_the_server_without_credentials() -> None:
    assert where("postgresql://apipod:s3cret@db.internal:6432/apipod?sslmode=require") == "db.internal:6432/apipod"
    assert where("postgres://localhost/x") == "localhost/x"


async def test_sigterm_ends_the_wait_and_still_reaches_the_previous_handler() -> None:
    import os
    import signal

    seen: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:

        async def terminate_soon() -> None:
            await asyncio.sleep(0.05)  # the wait is now in its first 60 s pause
            os.kill(os.getpid(), signal.SIGTERM)

        waiting = wait_for_store(
            Flaky(*(refused() for _ in range(1000))), what="PostgreSQL", initial=60.0, maximum=60.0
        )
        with pytest.raises(StorageError, match="stopped while waiting for PostgreSQL"):
            await asyncio.wait_for(asyncio.gather(waiting, terminate_soon()), 5)
        assert seen == [signal.SIGTERM]
        assert callable(signal.getsignal(signal.SIGTERM))  # the test's handler is back
    finally:
        signal.signal(signal.SIGTERM, previous)
