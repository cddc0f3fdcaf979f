"""How ``apipod serve``'s protocol writes a response: a head of known length goes out with its body in one
write; a streamed head (and a HEAD request's) goes out at once. The protocol runs on a transport that records
each write, so what is counted is the calls the socket would get."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import uvicorn
from uvicorn.server import ServerState

from apipod.entrypoints.http.bounded_protocol import BoundedHttpToolsProtocol

Receive = Callable[[], Any]
Send = Callable[[dict[str, Any]], Any]


class Recording(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class Connection:
    """One protocol on a recording transport, serving ``app``."""

    def __init__(self, app: Callable[[dict[str, Any], Receive, Send], Any]) -> None:
        config = uvicorn.Config(app, http=BoundedHttpToolsProtocol, lifespan="off", log_level="critical")
        config.load()
        self.transport = Recording()
        self.protocol = BoundedHttpToolsProtocol(config=config, server_state=ServerState(), app_state={})
        self.protocol.connection_made(self.transport)

    async def ask(self, request: bytes) -> None:
        self.protocol.data_received(request)
        await asyncio.wait_for(asyncio.gather(*self.protocol.tasks), 5)


def request(method: str = "POST", *, close: bool = False) -> bytes:
    connection = b"Connection: close\r\n" if close else b""
    return (
        method.encode() + b" /v1/chat/completions HTTP/1.1\r\nHost: t\r\n" + connection + b"Content-Length: 0\r\n\r\n"
    )


async def answer(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"11")]})
    await send({"type": "http.response.body", "body": b'{"ok":true}'})


async def test_a_response_of_known_length_goes_out_in_one_write() -> None:
    connection = Connection(answer)
    await connection.ask(request())
    [write] = connection.transport.writes
    assert write.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"content-length: 11\r\n" in write
    assert write.endswith(b'\r\n\r\n{"ok":true}')
    assert not connection.transport.closed


async def test_keep_alive_serves_the_next_request_the_same_way() -> None:
    connection = Connection(answer)
    await connection.ask(request())
    await connection.ask(request())
    assert len(connection.transport.writes) == 2
    assert all(w.endswith(b'{"ok":true}') for w in connection.transport.writes)


async def test_a_closing_connection_gets_head_and_body_before_the_close() -> None:
    connection = Connection(answer)
    await connection.ask(request(close=True))
    [write] = connection.transport.writes
    assert b"connection: close\r\n" in write
    assert write.endswith(b'{"ok":true}')
    assert connection.transport.closed


async def test_a_head_request_gets_its_head_at_once() -> None:
    connection = Connection(answer)
    await connection.ask(request("HEAD"))
    [write] = connection.transport.writes
    assert write.startswith(b"HTTP/1.1 200 OK\r\n")
    assert write.endswith(b"\r\n\r\n")


async def test_a_stream_sends_its_head_before_the_first_event() -> None:
    heads_written: list[int] = []
    release = asyncio.Event()
    connection: Connection

    async def stream(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        heads_written.append(len(connection.transport.writes))
        await release.wait()
        await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    connection = Connection(stream)
    connection.protocol.data_received(request())
    while not heads_written:
        await asyncio.sleep(0)
    assert heads_written == [1]
    assert connection.transport.writes[0].endswith(b"transfer-encoding: chunked\r\n\r\n")
    release.set()
    await asyncio.wait_for(asyncio.gather(*connection.protocol.tasks), 5)
    assert connection.transport.writes[1:] == [b"9\r\ndata: 1\n\n\r\n", b"0\r\n\r\n"]


async def test_a_client_gone_between_head_and_body_gets_nothing_written() -> None:
    connection: Connection

    async def slow(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"11")]})
        connection.protocol.connection_lost(None)
        await send({"type": "http.response.body", "body": b'{"ok":true}'})

    connection = Connection(slow)
    await connection.ask(request())
    assert connection.transport.writes == []


async def test_a_body_longer_than_its_length_fails_as_uvicorn_fails_it() -> None:
    async def wrong(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"too long"})

    connection = Connection(wrong)
    await connection.ask(request())
    # uvicorn refuses the body and closes the connection; the head it held is not sent on its own
    assert connection.transport.writes == []
    assert connection.transport.closed
