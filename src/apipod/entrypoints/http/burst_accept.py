"""A listener that accepts every waiting connection at once, for ``apipod serve``.

uvloop's listener (libuv 1.45 and later) accepts one connection per turn of the event loop. Under load a
turn takes tens of milliseconds, so a burst of new connections (a client opening a pool of 64) waited in the
kernel's queue one turn per connection: on the wire, the last of 64 first requests was answered 0.7 s after
its SYN, 0.6 s of it before the process even saw the connection, while every request on an open connection
was served within 0.15 s. That wait was the whole tail of ``bench_wrk.py`` at 64 connections. This listener
takes every waiting connection at each readiness of the listening socket (up to ``burst``), as asyncio's own
loop does, and hands each to the event loop as an accepted socket: the loop's transports, uvicorn's protocol.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Callable

log = logging.getLogger("apipod")

BURST = 512
"""Most connections taken at one readiness, so a flood of connections cannot hold the loop."""
RETRY_SECONDS = 1.0
"""Out of file descriptors or memory: accepting pauses this long (asyncio's own figure)."""
_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class BurstAcceptServer:
    """Serves ``sock`` (bound; listened on here) with ``protocol_factory``. ``close()`` stops accepting and
    closes the socket; connections already accepted are the server's to end (as with ``Server.close()``)."""

    def __init__(
        self,
        sock: socket.socket,
        protocol_factory: Callable[[], asyncio.Protocol],
        *,
        backlog: int = 2048,
        burst: int = BURST,
    ) -> None:
        self._sock = sock
        self._factory = protocol_factory
        self._backlog = backlog
        self._burst = burst
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handshakes: set[asyncio.Task[object]] = set()
        self._closed = False

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return () if self._closed else (self._sock,)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._sock.setblocking(False)
        self._sock.listen(self._backlog)
        loop.add_reader(self._sock.fileno(), self._accept)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._loop is not None:
            self._loop.remove_reader(self._sock.fileno())
        self._sock.close()

    def _accept(self) -> None:
        loop = self._loop
        assert loop is not None
        for _ in range(self._burst):
            try:
                conn, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _OUT_OF_RESOURCES:
                    log.error("cannot accept connections (%s); trying again in %g s", exc, RETRY_SECONDS)
                    loop.remove_reader(self._sock.fileno())
                    loop.call_later(RETRY_SECONDS, self._resume)
                    return
                continue  # this one connection failed (reset before it was accepted): take the next
            conn.setblocking(False)
            task = loop.create_task(loop.connect_accepted_socket(self._factory, conn))
            self._handshakes.add(task)
            task.add_done_callback(self._connected)

    def _connected(self, task: asyncio.Task[object]) -> None:
        self._handshakes.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("an accepted connection closed before it was served: %s", task.exception())

    def _resume(self) -> None:
        if not self._closed and self._loop is not None:
            self._loop.add_reader(self._sock.fileno(), self._accept)
