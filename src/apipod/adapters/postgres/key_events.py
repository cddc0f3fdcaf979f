"""Key changes across processes: ``PgKeyRepository.set_active`` sends ``NOTIFY apipod_keys, '<key id>'``;
every process runs a ``KeyChangeListener`` that calls back with the key id, so an in-process key cache
drops the key at once and a revocation takes effect everywhere well within a second.

The listener holds its own dedicated connection (LISTEN needs one; the pool's are borrowed briefly) and
reconnects by itself. While it is disconnected, notifications are lost, so after every (re)connection it
calls back with ``None``: "anything may have changed, forget everything".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import asyncpg

from apipod.adapters.postgres.database import DRIVER_ERRORS, normalize_dsn

log = logging.getLogger("apipod.key_events")

CHANNEL = "apipod_keys"

KeyChanged = Callable[[str | None], object]
"""Called with a changed key's id, or None when every cached key must be forgotten."""


class KeyChangeListener:
    """LISTENs on ``apipod_keys`` over a dedicated connection, reconnecting with capped backoff.

    Args:
        dsn: the PostgreSQL URL.
        on_change: called in the event loop with a key id, or None after (re)connecting.
        ping_interval: seconds between liveness checks of the connection (a dead peer is otherwise
            only noticed by TCP, which can take minutes).
        max_backoff: longest wait between two reconnection attempts.
    """

    def __init__(
        self,
        dsn: str,
        on_change: KeyChanged,
        *,
        ping_interval: float = 5.0,
        max_backoff: float = 5.0,
        connect_timeout: float = 5.0,
    ) -> None:
        self._dsn = normalize_dsn(dsn)
        self._on_change = on_change
        self._ping_interval = ping_interval
        self._max_backoff = max_backoff
        self._connect_timeout = connect_timeout
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._lost = asyncio.Event()
        self._conn: asyncpg.Connection | None = None

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.is_closed() and self._ready.is_set()

    async def start(self, wait: float = 5.0) -> bool:
        """Start listening in the background; returns whether it is listening within ``wait`` seconds
        (if not, it keeps trying on its own)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="apipod-key-listener")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), wait)
        return self._ready.is_set()

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._disconnect()

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            try:
                await self._connect()
            except DRIVER_ERRORS as exc:
                log.warning("key change listener cannot connect (%s); retrying in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)
                continue
            backoff = 0.1
            self._notify(None)  # whatever changed while we were not listening
            await self._watch()
            self._ready.clear()
            await self._disconnect()
            log.warning("key change listener lost its connection; reconnecting")

    async def _connect(self) -> None:
        self._lost.clear()
        conn = await asyncpg.connect(self._dsn, timeout=self._connect_timeout)
        self._conn = conn
        conn.add_termination_listener(lambda _conn: self._lost.set())
        await conn.add_listener(CHANNEL, self._on_notification)
        self._ready.set()

    async def _watch(self) -> None:
        """Return when the connection is gone: closed under us, or failing a ping."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), self._ping_interval)
            if self._lost.is_set() or self._conn is None or self._conn.is_closed():
                return
            try:
                await self._conn.fetchval("SELECT 1", timeout=self._ping_interval)
            except DRIVER_ERRORS:
                return

    async def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(*DRIVER_ERRORS):
                await asyncio.wait_for(conn.close(), 2.0)
            if not conn.is_closed():
                conn.terminate()

    def _on_notification(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self._notify(payload or None)

    def _notify(self, key_id: str | None) -> None:
        try:
            self._on_change(key_id)
        except Exception:  # a faulty callback must not kill the listener
            log.exception("key change callback failed for %r", key_id)
