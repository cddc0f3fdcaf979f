"""The scripting machinery shared by the fake upstreams (``fake_openai``, ``fake_anthropic``).

A fake is a plain ASGI app. Tests queue replies (a JSON answer with status and headers, an SSE answer as
raw frames with an optional delay between them, a hang before the first byte, a connection dropped
mid-stream, a byte-exact fixture replay); with an empty queue the fake answers plausibly from the request.
Every request is logged (method, path, query, headers, parsed JSON body), and so is a client that went away
before the answer was complete, which is how tests see that closing a stream cancelled the upstream call.

Run a fake in-process with ``tests.fakes.asgi.StreamingASGITransport`` (true streaming, disconnects,
timeouts) or ``httpx.ASGITransport`` (buffers the whole answer: no hangs or cuts), or over a real socket with
``tests.fakes.server``. A fake serving on a socket runs on the server's thread: the queue and logs are plain
lists and deques, safe to touch from the test's thread.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import attrs
import orjson

from tests.fakes.server import read_body

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_FRAME_END = re.compile(rb"\r\n\r\n|\n\n")
_STATUS_IN_NAME = re.compile(r"error_(\d{3})_")


class ScriptedCut(Exception):  # noqa: N818 - it is an event, not an error condition of the fake
    """Raised inside the app to drop the connection mid-stream (uvicorn closes the socket)."""


@attrs.define
class Reply:
    """One scripted answer.

    Attributes:
        status: the HTTP status.
        body: a JSON value (sent as ``application/json``) or bytes (sent as they are).
        frames: an SSE answer: raw frames, each sent as one body chunk, byte for byte.
        headers: extra response headers.
        delay: seconds between two frames.
        hang: seconds to wait before the response starts; ``math.inf`` waits until the client goes away.
        cut_after: drop the connection after this many frames (no terminating chunk).
    """

    status: int = 200
    body: Any = None
    frames: list[bytes] | None = None
    headers: dict[str, str] = attrs.field(factory=dict)
    delay: float = 0.0
    hang: float = 0.0
    cut_after: int | None = None


@attrs.frozen
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    client: tuple[str, int] | None = None  # the peer address: the same port twice means a reused connection


@attrs.define
class Outcome:
    """What happened to one answer: frames sent, and whether the client left before it was complete."""

    frames_sent: int = 0
    disconnected: bool = False
    completed: bool = False


def sse_frames_from_fixture(path: Path) -> list[bytes]:
    """A recorded ``.sse`` file split into its frames, byte for byte: ``b"".join(frames)`` is the file."""
    return sse_frames(path.read_bytes())


def sse_frames(data: bytes) -> list[bytes]:
    frames: list[bytes] = []
    start = 0
    for match in _FRAME_END.finditer(data):
        frames.append(data[start : match.end()])
        start = match.end()
    if start < len(data):
        frames.append(data[start:])
    return frames


def words(text: str) -> list[str]:
    """``text`` in pieces of a word and its following whitespace, joining back to ``text``."""
    return re.findall(r"\S+\s*", text) or [text]


class ScriptedUpstream:
    """Base of the fakes: the queue, the logs and the ASGI plumbing. Subclasses route requests."""

    def __init__(self, *, keys: Iterable[str] = (), models: Iterable[str] = ()) -> None:
        self.keys = set(keys)
        self.models = list(models)
        self.replies: deque[Reply] = deque()
        self.requests: list[Recorded] = []
        self.outcomes: list[Outcome] = []

    # -- scripting ---------------------------------------------------------------------------------------
    def push(self, reply: Reply) -> None:
        self.replies.append(reply)

    def reply_json(self, body: Any, *, status: int = 200, headers: Mapping[str, str] | None = None) -> None:
        self.push(Reply(status=status, body=body, headers=dict(headers or {})))

    def reply_sse(
        self,
        frames: Iterable[bytes],
        *,
        delay: float = 0.0,
        cut_after: int | None = None,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.push(
            Reply(status=status, frames=list(frames), delay=delay, cut_after=cut_after, headers=dict(headers or {}))
        )

    def hang(self, seconds: float = math.inf, *, then: Reply | None = None) -> None:
        """Accept the request and send nothing for ``seconds`` (forever by default), then ``then``."""
        reply = attrs.evolve(then) if then is not None else Reply(body={})
        reply.hang = seconds
        self.push(reply)

    def replay(
        self,
        path: Path,
        *,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
        cut_after: int | None = None,
    ) -> None:
        """A recorded answer: ``.sse`` files stream frame by frame; ``.json`` files answer with the status
        their name says (``error_529_overloaded.json``), else 200."""
        if path.suffix == ".sse":
            self.reply_sse(sse_frames_from_fixture(path), delay=delay, cut_after=cut_after, headers=headers)
            return
        found = _STATUS_IN_NAME.search(path.name)
        code = status or (int(found.group(1)) if found else 200)
        self.reply_json(orjson.loads(path.read_bytes()), status=code, headers=headers)

    # -- assertions ----------------------------------------------------------------------------------------
    @property
    def last(self) -> Recorded:
        return self.requests[-1]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 3.0) -> bool:
        """Polls ``predicate`` (state may change on the server's thread) until true or ``timeout``."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    async def wait_disconnect(self, timeout: float = 3.0) -> bool:
        return await self.wait_for(lambda: any(o.disconnected for o in self.outcomes), timeout)

    # -- routing (subclasses) ------------------------------------------------------------------------------
    def respond(self, request: Recorded) -> Reply:
        raise NotImplementedError

    def scripted(self) -> Reply | None:
        return self.replies.popleft() if self.replies else None

    # -- ASGI ----------------------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        raw = await read_body(receive)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        body: Any = None
        if raw:
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                body = raw
        query = parse_qs(scope.get("query_string", b"").decode())
        client = scope.get("client")
        request = Recorded(scope["method"], scope["path"], query, headers, body, tuple(client) if client else None)
        self.requests.append(request)
        outcome = Outcome()
        self.outcomes.append(outcome)
        watcher = asyncio.ensure_future(_until_disconnect(receive))
        try:
            await self._send(self.respond(request), send, watcher, outcome)
        finally:
            watcher.cancel()

    async def _send(self, reply: Reply, send: Send, watcher: asyncio.Future[None], outcome: Outcome) -> None:
        if reply.hang:
            await asyncio.wait({watcher}, timeout=None if math.isinf(reply.hang) else reply.hang)
            if watcher.done():
                outcome.disconnected = True
                return
        if reply.frames is None:
            if isinstance(reply.body, bytes):
                await _start(send, reply.status, {"content-type": "text/plain", **reply.headers})
                await send({"type": "http.response.body", "body": reply.body})
            else:
                await _start(send, reply.status, {"content-type": "application/json", **reply.headers})
                await send({"type": "http.response.body", "body": orjson.dumps(reply.body)})
            outcome.completed = True
            return
        await _start(
            send, reply.status, {"content-type": "text/event-stream", "cache-control": "no-cache", **reply.headers}
        )
        for n, frame in enumerate(reply.frames):
            if reply.cut_after is not None and n >= reply.cut_after:
                raise ScriptedCut(f"connection dropped after {n} frames")
            if n and reply.delay:
                await asyncio.wait({watcher}, timeout=reply.delay)
            if watcher.done():
                outcome.disconnected = True
                return
            await send({"type": "http.response.body", "body": frame, "more_body": True})
            outcome.frames_sent += 1
        await send({"type": "http.response.body", "body": b""})
        outcome.completed = True


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _start(send: Send, status: int, headers: Mapping[str, str]) -> None:
    pairs = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": pairs})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
