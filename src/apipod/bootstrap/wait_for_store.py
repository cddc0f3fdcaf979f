"""Waiting at start-up for a database that is not reachable yet, instead of exiting.

Containers and service managers start apipod and PostgreSQL together; the database is often seconds
behind. A process that exits at once is restarted in a tight loop by some supervisors and not at all by
others. So ``serve`` keeps trying, with capped exponential backoff, and says on each attempt what it is
waiting for (one line, no traceback, no password); until it connects it accepts no traffic, so its
readiness stays "not ready". SIGTERM or SIGINT ends the wait (uvicorn only notes them during start-up,
so without this a stopped service would wait on). Only "cannot reach it" is waited for: wrong credentials
or an unmigrated schema will not fix themselves and still stop the start at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Awaitable, Callable, Iterator
from types import FrameType
from typing import TypeVar
from urllib.parse import urlsplit

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_delay, stop_never

from apipod.adapters.retry import ExponentialJitter
from apipod.domain.errors import StorageError

log = logging.getLogger("apipod")

T = TypeVar("T")

INITIAL_WAIT = 0.5
MAX_WAIT = 10.0


def where(url: str) -> str:
    """``host:port/database`` of a database URL: enough to act on, without user or password."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    return f"{host}{port}{parts.path}"


def postgres_unreachable(exc: BaseException) -> bool:
    """A StorageError caused by not reaching the server (refused, timed out, starting, shutting down, too
    many connections) or by the database not existing yet: worth waiting for."""
    import asyncpg

    if not isinstance(exc, StorageError):
        return False
    cause = exc.__cause__
    waitable = (
        OSError,
        asyncio.TimeoutError,
        asyncpg.CannotConnectNowError,
        asyncpg.InvalidCatalogNameError,
        asyncpg.TooManyConnectionsError,
        asyncpg.ConnectionDoesNotExistError,
        asyncpg.AdminShutdownError,
    )
    return isinstance(cause, waitable)


async def wait_for_store(
    connect: Callable[[], Awaitable[T]],
    *,
    what: str,
    retryable: Callable[[BaseException], bool] = postgres_unreachable,
    initial: float = INITIAL_WAIT,
    maximum: float = MAX_WAIT,
    give_up_after: float | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """``await connect()`` until it succeeds, waiting ``initial`` seconds after the first failure, doubling up
    to ``maximum``, while ``retryable(error)``; anything else is raised at once, and so is the last failure
    after ``give_up_after`` seconds (None: never give up).

    Example (bootstrap/stores.py)::

        db = await wait_for_store(lambda: PgDatabase.connect(url), what=f"PostgreSQL at {where(url)}")
    """
    stop = asyncio.Event()

    async def pause(seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds) if sleep is asyncio.sleep else await sleep(seconds)
        if stop.is_set():
            raise StorageError(f"stopped while waiting for {what}")

    retrying = AsyncRetrying(
        retry=retry_if_exception(retryable),
        wait=ExponentialJitter(initial, maximum, initial / 2),
        stop=stop_never if give_up_after is None else stop_after_delay(give_up_after),
        before_sleep=lambda state: _log_wait(state, what),
        sleep=pause,
        reraise=True,
    )
    with _stopped_by_signals(stop):
        async for attempt in retrying:
            with attempt:
                value = await connect()
                if attempt.retry_state.attempt_number > 1:
                    log.warning("%s is reachable now (attempt %d)", what, attempt.retry_state.attempt_number)
                return value
    raise AssertionError("tenacity ends with a result or an exception")  # pragma: no cover


@contextlib.contextmanager
def _stopped_by_signals(stop: asyncio.Event) -> Iterator[None]:
    """While the block runs, SIGTERM and SIGINT also set ``stop``; the handlers found (uvicorn's) still run."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def handler(signum: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(stop.set)
        chained = previous.get(signal.Signals(signum))
        if callable(chained):
            chained(signum, frame)

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, chained in previous.items():
            signal.signal(sig, chained)


def _log_wait(state: RetryCallState, what: str) -> None:
    exc = state.outcome.exception() if state.outcome else None
    reason = exc.message if isinstance(exc, StorageError) else f"{type(exc).__name__}: {exc}"
    wait = state.next_action.sleep if state.next_action else 0.0
    log.warning(
        "waiting for %s: not reachable (%s); attempt %d failed, retrying in %.1fs",
        what,
        reason,
        state.attempt_number,
        wait,
    )
