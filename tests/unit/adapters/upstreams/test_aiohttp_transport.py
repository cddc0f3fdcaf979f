"""``LeanAiohttpTransport`` against the transport it shortens (httpx-aiohttp's ``AiohttpTransport``), over a real
socket whose every byte the test writes: both must send the same request and hand back the same response, and
fail with the same ``httpx`` errors. And ``headers_of``/``decoded`` against httpx's own ``Headers``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
from httpx_aiohttp import AiohttpTransport
from hypothesis import given
from hypothesis import strategies as st

from apipod.adapters.upstreams._aiohttp_transport import LeanAiohttpTransport
from apipod.adapters.upstreams._httpx_headers import decoded, headers_of

TRANSPORTS: dict[str, Callable[[], httpx.AsyncBaseTransport]] = {
    "httpx-aiohttp": AiohttpTransport,
    "lean": LeanAiohttpTransport,
}


class Wire:
    """A one-connection-at-a-time HTTP/1.1 server: records each request's head and body, answers ``answer``."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.heads: list[list[bytes]] = []
        self.bodies: list[bytes] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Wire:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).split(b"\r\n")[:-2]
            lengths = [int(line.split(b":", 1)[1]) for line in head if line.lower().startswith(b"content-length:")]
            length = lengths[0] if lengths else 0
            chunked = any(line.lower() == b"transfer-encoding: chunked" for line in head)
            body = await _read_chunked(reader) if chunked else await reader.readexactly(length)
            self.heads.append(head)
            self.bodies.append(body)
            writer.write(self.answer)
            await writer.drain()
        finally:
            writer.close()


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts = []
    while size := int((await reader.readline()).strip(), 16):
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)
    await reader.readexactly(2)
    return b"".join(parts)


ANSWER = (
    b"HTTP/1.1 201 Made Here\r\n"
    b"Content-Type: application/json\r\n"
    b"Set-Cookie: a=1\r\n"
    b"set-cookie: b=2\r\n"
    b"X-Odd-Case: Value With Spaces\r\n"
    b"Content-Length: 11\r\n"
    b"Connection: close\r\n"
    b"\r\n"
    b'{"ok":true}'
)


def _seen(head: list[bytes]) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """The request line and the headers, names lowercased (HTTP compares them so), in order; each server has its
    own port, so ``Host`` is only checked to be there."""
    pairs = [(name.lower(), value.strip()) for name, value in (line.split(b":", 1) for line in head[1:])]
    return head[0], [(name, b"<port>" if name == b"host" else value) for name, value in pairs]


async def _exchange(make: Callable[[], httpx.AsyncBaseTransport], answer: bytes, request: httpx.Request) -> Any:
    async with Wire(answer) as wire:
        url = request.url.copy_with(port=wire.port)
        request.url = url
        request.headers["Host"] = f"127.0.0.1:{wire.port}"
        async with httpx.AsyncClient(transport=make()) as client:
            response = await client.send(request, stream=True)
            body = await response.aread()
            await response.aclose()
    answer_seen = (
        response.status_code,
        response.reason_phrase,
        response.http_version,
        response.headers.multi_items(),
        response.headers.raw,
        response.headers.encoding,
        body,
    )
    return [_seen(head) for head in wire.heads], wire.bodies, answer_seen


def _post(content: Any = b'{"q": 1}', **headers: str) -> httpx.Request:
    return httpx.Request(
        "POST",
        "http://127.0.0.1:1/v1/chat?x=1",
        headers={"Authorization": "Bearer k", "X-Mixed-Case": "Yes", "content-type": "application/json", **headers},
        content=content,
        extensions={"timeout": httpx.Timeout(5.0).as_dict()},
    )


async def test_a_request_and_its_answer_are_the_same_through_both_transports() -> None:
    results = {name: await _exchange(make, ANSWER, _post()) for name, make in TRANSPORTS.items()}
    assert results["lean"] == results["httpx-aiohttp"]
    (request_line, headers), *_ = results["lean"][0]
    assert request_line == b"POST /v1/chat?x=1 HTTP/1.1"
    assert (b"x-mixed-case", b"Yes") in headers
    assert results["lean"][1] == [b'{"q": 1}']
    status, reason, _, items, _, encoding, body = results["lean"][2]
    assert (status, reason, encoding, body) == (201, "Made Here", "ascii", b'{"ok":true}')
    assert [v for k, v in items if k == "set-cookie"] == ["a=1", "b=2"]


async def test_the_names_keep_their_case_on_the_wire() -> None:
    async with Wire(ANSWER) as wire, httpx.AsyncClient(transport=LeanAiohttpTransport()) as client:
        await client.post(f"http://127.0.0.1:{wire.port}/", headers={"X-Mixed-Case": "Yes"}, content=b"{}")
    assert b"X-Mixed-Case: Yes" in wire.heads[0]


async def test_a_get_without_a_body_and_headers_that_are_not_ascii() -> None:
    def get() -> httpx.Request:
        return httpx.Request(
            "GET", "http://127.0.0.1:1/models", headers=[(b"X-Latin", b"caf\xe9")], extensions={"timeout": {}}
        )

    answer = b"HTTP/1.1 200 OK\r\nX-Name: caf\xe9\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
    results = {name: await _exchange(make, answer, get()) for name, make in TRANSPORTS.items()}
    assert results["lean"] == results["httpx-aiohttp"]
    assert results["lean"][2][5] == "iso-8859-1"


async def test_a_streamed_body_goes_the_librarys_way() -> None:
    async def pieces() -> AsyncIterator[bytes]:
        yield b'{"a":'
        yield b"1}"

    results = {name: await _exchange(make, ANSWER, _post(content=pieces())) for name, make in TRANSPORTS.items()}
    assert results["lean"] == results["httpx-aiohttp"]
    assert results["lean"][1] == [b'{"a":1}']


async def _failure(make: Callable[[], httpx.AsyncBaseTransport], port: int | None, answer: bytes) -> Exception:
    async with Wire(answer) as wire, httpx.AsyncClient(transport=make()) as client:
        try:
            await client.post(f"http://127.0.0.1:{port or wire.port}/", content=b"{}")
        except Exception as exc:
            return exc
    raise AssertionError("no failure")


async def test_failures_are_the_same_httpx_errors() -> None:
    async with Wire(b"") as wire:
        closed = wire.port  # nothing listens there any more
    cut = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this"
    for port, answer, kind in ((closed, b"", httpx.TransportError), (None, cut, httpx.ReadError)):
        failures = [await _failure(make, port, answer) for make in TRANSPORTS.values()]
        assert all(isinstance(failure, kind) for failure in failures), failures
        assert type(failures[0]) is type(failures[1])
        assert str(failures[0]).split(" [")[0] == str(failures[1]).split(" [")[0]


_NAME = st.binary(min_size=1, max_size=12).filter(lambda b: b":" not in b)
_PAIRS = st.lists(st.tuples(_NAME, st.binary(max_size=20)), max_size=8)


@given(_PAIRS)
def test_headers_of_is_httpxs_headers(pairs: list[tuple[bytes, bytes]]) -> None:
    ours, theirs = headers_of(pairs), httpx.Headers(pairs)
    assert ours.raw == theirs.raw
    assert ours.encoding == theirs.encoding
    assert ours.multi_items() == theirs.multi_items()
    assert ours == theirs
    assert decoded(ours) == [(name.decode(theirs.encoding), value.decode(theirs.encoding)) for name, value in pairs]
