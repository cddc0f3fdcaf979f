"""httpx-aiohttp's transport with a shorter path for the requests apipod sends (PERF, issue 10).

``AiohttpTransport.handle_async_request`` spends about 1,300 Python opcodes a call on bookkeeping around
aiohttp:

- it hands aiohttp the ``httpx.Headers`` object, which aiohttp reads through ``items()``: every header is
  decoded, and the headers' encoding asked for, twice over;
- it builds an ``aiohttp.ClientTimeout`` per request;
- it wraps the call, the body's iteration and its close each in a ``contextlib`` generator manager;
- it builds the response's ``httpx.Headers`` by passing each header through httpx's normalising functions.

Here aiohttp gets the headers as ``str`` pairs, decoded in C, the timeouts come from a cache, aiohttp's
failures are mapped by the library's own ``map_aiohttp_exceptions`` (through a plain context manager, entered
for free), and the response's headers are made by ``headers_of``. aiohttp is asked the same: same method, URL,
body, timeouts and flags. One visible difference: header names go out in the case apipod wrote them (as httpx's
own transport sends them), where the library's ``items()`` lowercased them. A proxy, a server name or a body
not read into memory go the library's way. ``test_aiohttp_transport.py`` holds the two to the same requests on
the wire (names compared as HTTP compares them), the same responses and the same errors.
"""

from __future__ import annotations

import functools
from types import TracebackType

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport
from httpx_aiohttp.transport import map_aiohttp_exceptions

from apipod.adapters.upstreams._httpx_headers import decoded, headers_of

__all__ = ["LeanAiohttpTransport"]

_CHUNK = 16 * 1024  # as httpx-aiohttp reads a body: at most this much per chunk
_HTTP_11 = b"HTTP/1.1"


class LeanAiohttpTransport(AiohttpTransport):
    """``AiohttpTransport`` that sends and answers the same, for fewer opcodes (see the module's docstring)."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        extensions = request.extensions
        try:
            content = request.content
        except httpx.RequestNotRead:
            content = None
        if content is None or self.proxy is not None or "sni_hostname" in extensions:
            return await super().handle_async_request(request)
        session = self.client
        if not isinstance(session, aiohttp.ClientSession):
            session = self.client = self.get_client()
        with _AIOHTTP_ERRORS:
            response = await session.request(
                request.method,
                str(request.url),
                # aiohttp makes a CIMultiDict of it, keeping the names' case, as httpx's own transport sends them
                headers=decoded(request.headers),
                data=content or None,
                allow_redirects=False,
                auto_decompress=False,
                compress=False,
                timeout=_client_timeout(extensions.get("timeout")),
            ).__aenter__()
        reason = response.reason
        answer = httpx.Response(
            status_code=response.status,
            stream=_Body(response),
            request=request,
            extensions={"http_version": _HTTP_11, "reason_phrase": reason.encode()}
            if reason
            else {"http_version": _HTTP_11},
        )
        answer.headers = headers_of(response.raw_headers)
        return answer


class _Body(httpx.AsyncByteStream):
    """The response's body, read as httpx-aiohttp's ``AiohttpResponseStream`` reads it (its own iterator, not an
    async generator: the event loop registers every async generator in a ``WeakSet`` and drops it again).

    ``plain``: the answer has no ``Content-Encoding``, so its chunks are the body as is (``body_chunks`` asks
    this rather than httpx's headers, whose ``in`` lowercases every name into a new list)."""

    __slots__ = ("_response", "plain")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.plain = "Content-Encoding" not in response.headers  # aiohttp's case-insensitive multidict, in C

    def __aiter__(self) -> _Body:
        return self

    async def __anext__(self) -> bytes:
        with _AIOHTTP_ERRORS:
            chunk = await self._response.content.read(_CHUNK)
        if not chunk:
            raise StopAsyncIteration
        return chunk

    async def aclose(self) -> None:
        with _AIOHTTP_ERRORS:
            await self._response.__aexit__(None, None, None)


class _AiohttpErrors:
    """httpx-aiohttp's ``map_aiohttp_exceptions`` as a plain context manager: an aiohttp failure leaves as the
    library maps it (its ``httpx`` error, caused by the original), with no generator made per use."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if isinstance(exc, Exception):
            with map_aiohttp_exceptions():
                raise exc
        return None


_AIOHTTP_ERRORS = _AiohttpErrors()


def _client_timeout(timeout: dict[str, float | None] | None) -> aiohttp.ClientTimeout:
    if not timeout:
        return _timeouts(None, None, None)
    return _timeouts(timeout.get("connect"), timeout.get("read"), timeout.get("pool"))


@functools.lru_cache(maxsize=256)
def _timeouts(connect: float | None, read: float | None, pool: float | None) -> aiohttp.ClientTimeout:
    """aiohttp's timeouts for httpx's, as httpx-aiohttp maps them (frozen, so one per distinct set)."""
    return aiohttp.ClientTimeout(sock_connect=connect, sock_read=read, connect=pool)
