"""uvicorn's httptools protocol with bounded request heads, for ``apipod serve`` (issue 9, finding 10).

httptools has no limit of its own: it concatenates an unfinished header value for as long as bytes come, and
uvicorn collects every header. This subclass stops a head that grows past ``max_head_bytes`` before it is
complete (a 1 MB header line, thousands of headers), and checks a complete head against the
``header_limits.Limits`` (too many headers, one too large, too large in all) before the app sees it; it
answers 431 in the caller's dialect and closes the connection. Memory per connection stays within
``max_head_bytes`` plus one read.

It also tells a request that its client went away, by a callback (``client_gone``; issue 10): each request's
scope carries a ``ClientGone`` for its cycle, and a connection lost before that cycle's response completed
calls the callback registered there.

And it writes a response of known length, head and body, in one write (``_ServedCycle.send``; issue 10).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

if TYPE_CHECKING:
    from uvicorn._types import ASGISendEvent

from apipod.entrypoints.http.client_gone import CLIENT_GONE
from apipod.entrypoints.http.header_limits import STATUS, Limits, dialect_for, refusal_body

MAX_HEAD_BYTES = 64 * 1024  # request line and headers as received, before they are complete


class _HeadTooLargeError(Exception):
    """Raised inside a parser callback to stop parsing; httptools reports it as a parser error."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    limits = Limits()
    max_head_bytes = MAX_HEAD_BYTES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_pending = True
        self._head_received = 0
        self._refusal: str | None = None
        self.gone_watch: tuple[RequestResponseCycle, Callable[[], None]] | None = None

    def data_received(self, data: bytes) -> None:
        if self._head_pending:
            if self._head_received > self.max_head_bytes:
                self._refuse(f"a request head over {self.max_head_bytes} bytes")
                return
            self._head_received += len(data)
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_pending = True

    def on_headers_complete(self) -> None:
        # PERF: the limits are checked once per head, on the list uvicorn collected, not header by header:
        # ``data_received`` bounds what a head can hold before it completes (``max_head_bytes``) either way.
        self._head_pending = False
        self._head_received = 0
        self._refusal = self.limits.problem(self.headers)
        if self._refusal is not None:
            raise _HeadTooLargeError(self._refusal)
        super().on_headers_complete()
        cycle: RequestResponseCycle | None = self.cycle
        if cycle is not None and cycle.scope is self.scope:  # not an upgrade: a request for the app
            extensions = cast("dict[str, object]", self.scope.setdefault("extensions", {}))
            served = extensions[CLIENT_GONE] = _ServedCycle(self, cycle)
            # The app gets this ``send`` (uvicorn passes ``cycle.send`` when it runs the cycle, later): an instance
            # attribute, so uvicorn's own class and its attribute caches stay as they are.
            cycle.send = served.send  # type: ignore[method-assign]

    def connection_lost(self, exc: Exception | None) -> None:
        watch, self.gone_watch = self.gone_watch, None
        super().connection_lost(exc)
        if watch is not None and not watch[0].response_complete:
            watch[1]()

    def send_400_response(self, msg: str) -> None:
        # uvicorn answers every parser error with 400; the one our callback raised is a 431.
        if self._refusal is not None:
            self._refuse(self._refusal)
            return
        super().send_400_response(msg)

    def _refuse(self, problem: str) -> None:
        if self.transport.is_closing():
            return
        url = getattr(self, "url", b"") or b""
        path = url.split(b"?", 1)[0].decode("latin-1")
        body = refusal_body(dialect_for(path, self.headers or ()), problem)
        head = [b"HTTP/1.1 431 Request Header Fields Too Large\r\n"]
        for name, value in self.server_state.default_headers:
            head.extend([name, b": ", value, b"\r\n"])
        head.extend(
            [
                b"content-type: application/json\r\n",
                b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
            ]
        )
        self.transport.write(b"".join(head) + body)
        self.transport.close()
        self.logger.warning("refused a request with status %d: %s", STATUS, problem)


class _ServedCycle:
    """One request (cycle) of one connection: its ``client_gone.ClientGone``, and the ``send`` the app gets.
    The cycle is held weakly: the cycle holds the scope and the scope holds this, so a strong reference would
    leave a reference cycle per request for the garbage collector.

    PERF: uvicorn writes the status line and headers at ``http.response.start`` and the body at
    ``http.response.body``: two system calls, two TCP segments, and a client that wakes for the head, parses it
    and waits again for the body. A JSON answer (``content-length`` set) follows its start in the same turn,
    so its head is held back and goes out with the body, in one write. A head without a length (a stream) or
    for a HEAD request goes out at once, as before: a streaming client sees the 200 before the first event.
    uvicorn's own ``send`` does every check and all the bookkeeping; only its writes are gathered.
    """

    __slots__ = ("_cycle", "_head", "_protocol")

    def __init__(self, protocol: BoundedHttpToolsProtocol, cycle: RequestResponseCycle) -> None:
        self._protocol = protocol
        self._cycle = weakref.ref(cycle)
        self._head: bytes | None = None

    def send(self, message: ASGISendEvent) -> Coroutine[Any, Any, None]:
        cycle = self._cycle()
        assert cycle is not None  # the cycle's task is the caller
        if self._head is None and (cycle.response_started or message["type"] != "http.response.start"):
            return _CYCLE_SEND(cycle, message)  # uvicorn's own coroutine: nothing in between on a stream
        return self._gathered(cycle, message)

    async def _gathered(self, cycle: RequestResponseCycle, message: ASGISendEvent) -> None:
        transport = cycle.transport
        head, self._head = self._head, None
        if head is not None:  # the body after a held head
            cycle.transport = _Prefixed(transport, head)  # type: ignore[assignment]
            try:
                await _CYCLE_SEND(cycle, message)  # a client gone meanwhile gets nothing, as from uvicorn
            finally:
                cycle.transport = transport
            return
        cycle.transport = kept = _Kept()  # type: ignore[assignment]
        try:
            await _CYCLE_SEND(cycle, message)
        finally:
            cycle.transport = transport
        if kept.data is None:
            return  # the client left: uvicorn wrote nothing
        if cycle.chunked_encoding is False and cycle.scope["method"] != "HEAD":
            self._head = kept.data  # a body of known length follows
        else:
            transport.write(kept.data)

    def watch(self, callback: Callable[[], None]) -> None:
        cycle = self._cycle()
        if cycle is None or cycle.response_complete:
            return
        if cycle.disconnected:
            callback()
            return
        self._protocol.gone_watch = (cycle, callback)
        # as uvicorn's receive() does before it waits: a transport paused for flow control sees no close
        self._protocol.flow.resume_reading()

    def unwatch(self) -> None:
        watch = self._protocol.gone_watch
        if watch is not None and watch[0] is self._cycle():
            self._protocol.gone_watch = None


_CYCLE_SEND = RequestResponseCycle.send


class _Kept:
    """Stands in for the transport while uvicorn writes a head: keeps it."""

    __slots__ = ("data",)

    def __init__(self) -> None:
        self.data: bytes | None = None

    def write(self, data: bytes) -> None:
        self.data = data


class _Prefixed:
    """Stands in for the transport while uvicorn writes a body: the held head goes out with the first write."""

    __slots__ = ("_head", "_transport")

    def __init__(self, transport: Any, head: bytes) -> None:
        self._transport = transport
        self._head: bytes | None = head

    def write(self, data: bytes) -> None:
        head, self._head = self._head, None
        self._transport.write(head + data if head is not None else data)

    def close(self) -> None:  # uvicorn closes a ``Connection: close`` response after its body
        self._transport.close()
