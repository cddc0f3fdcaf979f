"""The listener of ``apipod serve``: a burst of new connections is taken in a turn or two of a busy loop, not
one connection per turn (uvloop's own listener), and it stops and pauses as a listener should."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest
import uvloop

from apipod.entrypoints.http import burst_accept
from apipod.entrypoints.http.burst_accept import BurstAcceptServer

CONNECTIONS = 64


class _Counted(asyncio.Protocol):
    """Notes the loop turn (``turns[0]``) at which its connection was made."""

    def __init__(self, made: list[int], turns: list[int]) -> None:
        self.made = made
        self.turns = turns

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.made.append(self.turns[0])


def _bound() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


def _connect_all(port: int, count: int) -> list[socket.socket]:
    clients = []
    for _ in range(count):
        client = socket.socket()
        client.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            client.connect(("127.0.0.1", port))
        clients.append(client)
    return clients


def _on_uvloop(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """``apipod serve`` runs on uvloop, whose own listener is the one this replaces."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())


@pytest.fixture
def closing() -> Iterator[list[socket.socket]]:
    sockets: list[socket.socket] = []
    yield sockets
    for sock in sockets:
        sock.close()


def test_a_burst_of_connections_is_taken_in_a_few_turns_of_a_busy_loop(closing: list[socket.socket]) -> None:
    made: list[int] = []
    turns = [0]

    async def main() -> None:
        async def busy() -> None:  # a loaded loop: every turn does 2 ms of work
            while True:
                started = time.perf_counter()
                while time.perf_counter() - started < 0.002:
                    pass
                turns[0] += 1
                await asyncio.sleep(0)

        sock = _bound()
        server = BurstAcceptServer(sock, lambda: _Counted(made, turns))
        server.start(asyncio.get_running_loop())
        worker = asyncio.create_task(busy())
        await asyncio.sleep(0.01)
        first = turns[0]
        closing.extend(_connect_all(sock.getsockname()[1], CONNECTIONS))
        async with asyncio.timeout(10):
            while len(made) < CONNECTIONS:
                await asyncio.sleep(0)
        worker.cancel()
        server.close()
        # uvloop's own listener needs a turn per connection (64 here); this one all at once.
        assert max(made) - first <= 5, sorted(made)

    _on_uvloop(main)


def test_a_closed_listener_refuses_connections(closing: list[socket.socket]) -> None:
    async def main() -> None:
        sock = _bound()
        port = sock.getsockname()[1]
        server = BurstAcceptServer(sock, asyncio.Protocol)
        server.start(asyncio.get_running_loop())
        assert server.sockets == (sock,)
        server.close()
        server.close()  # twice is harmless
        assert server.sockets == ()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()

    _on_uvloop(main)


class _OutOfFiles(socket.socket):
    """A listening socket whose first accept fails as when the process has no file descriptor left."""

    failed = False

    def accept(self) -> tuple[socket.socket, Any]:
        if not self.failed:
            self.failed = True
            raise OSError(errno.EMFILE, "Too many open files")
        return super().accept()


def test_out_of_file_descriptors_pauses_accepting_then_resumes(
    closing: list[socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(burst_accept, "RETRY_SECONDS", 0.05)
    made: list[int] = []

    async def main() -> None:
        sock = _OutOfFiles()
        sock.bind(("127.0.0.1", 0))
        server = BurstAcceptServer(sock, lambda: _Counted(made, [0]))
        loop = asyncio.get_running_loop()
        server.start(loop)
        closing.extend(_connect_all(sock.getsockname()[1], 1))
        paused_at = loop.time()
        async with asyncio.timeout(5):
            while not made:
                await asyncio.sleep(0.005)
        assert sock.failed
        assert loop.time() - paused_at >= 0.04  # not taken before the pause was over
        server.close()

    _on_uvloop(main)
