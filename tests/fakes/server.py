"""Serve any ASGI app with uvicorn on 127.0.0.1 over a real socket, from sync or async tests.

The server runs on its own thread and event loop, so a test's loop (or a sync test) talks to it exactly as
apipod talks to a remote upstream: sockets, keep-alive, disconnects, timeouts.

    with serve(FakeOpenAI()) as base_url: ...          # a context manager
    server = BackgroundServer(app); url = server.start(); ...; server.stop()
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any

import uvicorn


async def read_body(receive: Callable[[], Awaitable[Mapping[str, Any]]]) -> bytes:
    """An ASGI request's whole body, however many ``http.request`` messages it came in."""
    body = b""
    while True:
        message = await receive()
        chunk: bytes = message.get("body", b"")
        body += chunk
        if not message.get("more_body"):
            return body


class BackgroundServer:
    """One uvicorn server on a free port of 127.0.0.1, on a daemon thread."""

    def __init__(self, app: Any, *, start_timeout: float = 10.0) -> None:
        self.app = app
        self._start_timeout = start_timeout
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self.base_url = ""

    def start(self) -> str:
        """Starts serving; returns the base URL (``http://127.0.0.1:<port>``) once the server accepts."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_level="critical",  # scripted cuts make uvicorn log errors on purpose
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name=f"fake:{port}")
        self._server, self._thread, self._sock = server, thread, sock
        thread.start()
        deadline = time.monotonic() + self._start_timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the test server did not start")
            time.sleep(0.005)
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._sock is not None:
            self._sock.close()
        self._server = self._thread = self._sock = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def serve(app: Any) -> Iterator[str]:
    """``app`` served on a free local port for the ``with`` block; yields the base URL."""
    with BackgroundServer(app) as base_url:
        yield base_url


def refused_url() -> str:
    """A local URL where nothing listens (a port just freed), for "connection refused"."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
