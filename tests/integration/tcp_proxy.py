"""A TCP proxy on 127.0.0.1 that a test can cut, for store outages over real sockets.

    with TcpProxy("127.0.0.1", 5432) as proxy:      # listening on proxy.port, forwarding to 5432
        proxy.cut()                                  # every connection reset, new ones refused
        proxy.listen()                               # accepting again on the same port

It runs its own event loop on a daemon thread, so sync and async tests drive it alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from tests.integration.harness import free_port

T = TypeVar("T")


class TcpProxy:
    def __init__(self, target_host: str, target_port: int, *, listening: bool = True) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._listening_at_start = listening
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name=f"proxy:{self.port}")
        self._server: asyncio.AbstractServer | None = None
        self._transports: set[asyncio.BaseTransport] = set()
        self.accepted = 0

    def __enter__(self) -> TcpProxy:
        self._thread.start()
        if self._listening_at_start:
            self.listen()
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            self.cut()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    @property
    def listening(self) -> bool:
        return self._server is not None

    def listen(self) -> None:
        """Start accepting (again) on ``port``."""
        self._run(self._listen())

    def cut(self) -> None:
        """Stop accepting (connections are refused) and reset every open connection."""
        self._run(self._cut())

    def open_connections(self) -> int:
        return len(self._transports) // 2

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)

    async def _cut(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for transport in list(self._transports):
            transport.abort()  # type: ignore[attr-defined]
        self._transports.clear()
        if server is not None:
            await server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        pair = {writer.transport, up_writer.transport}
        self._transports |= pair
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer), return_exceptions=True)
        finally:
            self._transports -= pair


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()
