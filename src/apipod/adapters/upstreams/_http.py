"""What every HTTP upstream adapter shares, so that no vendor file re-implements it.

- the shared ``httpx.AsyncClient`` (``make_http_client``, called once by the composition root);
- per-upstream timeouts: connect and *idle* read through httpx; ``first_event`` and ``total`` through one
  loop timer per call (``_deadline``), since a keep-alive comment every few seconds defeats an idle timeout;
- size caps: one SSE event (``max_event_bytes``, in the SSE decoder), a JSON answer (``max_response_bytes``,
  read incrementally), one tool call's streamed arguments (``max_response_bytes`` too: a non-streamed answer
  holding the same call could be no larger);
- retrying a failed connection before any response exists, and nothing else (``apipod.adapters.retry``);
- status -> domain error through the dialect's ``decode_error``; transport failures -> ``UpstreamUnavailableError``;
- streaming: SSE decoding, the dialect's ``StreamDecoder``, and the first-event rule of ``UpstreamClient``.

Logs name the upstream, the status and the latency; never headers, URLs or bodies (they hold secrets).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sys
import time
import types
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Callable, Mapping
from typing import Any, Protocol, cast

import attrs
import httpx
import orjson

from apipod.adapters.retry import DEFAULT_RETRY, RetryPolicy
from apipod.adapters.upstreams._batched import BatchedStream
from apipod.adapters.upstreams._deadline import Deadline
from apipod.adapters.upstreams._faults import configured_secrets, log_upstream_error
from apipod.adapters.upstreams._gate import Gate
from apipod.adapters.upstreams._httpx_headers import headers_of
from apipod.adapters.upstreams._sse import SSEDecoder, SSEEvent, SSEEventTooLarge
from apipod.domain.catalog import Timeouts, Upstream
from apipod.domain.errors import (
    UpstreamError,
    UpstreamResponseTooLargeError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from apipod.domain.stream import Relayed, StreamEvent, StreamFailed, ToolCallDelta

__all__ = [
    "CONNECT_ERRORS",
    "ErrorDecoder",
    "EventDecoder",
    "SSEDecoder",
    "SSEEvent",
    "UpstreamHttp",
    "http_timeout",
    "join_url",
    "make_http_client",
    "merge_headers",
    "transport_error",
]

log = logging.getLogger("apipod.upstream")

ErrorDecoder = Callable[[int, bytes, Mapping[str, str]], UpstreamError]
"""A dialect's ``decode_error(status, body, headers)``."""

CONNECT_ERRORS: tuple[type[Exception], ...] = (httpx.ConnectError, httpx.ConnectTimeout)
"""Failures that happen before the request reached the upstream: the only ones worth retrying."""

_ERROR_BODY_LIMIT = 64 * 1024  # an error answer longer than this is cut; its start says what went wrong
_URL_CACHE_SIZE = 1024  # distinct upstream URLs kept parsed per adapter (Gemini's name the model)
_DRAIN_TIMEOUT = 1.0  # after the last event, how long to wait for the body's end so the connection is reused


class EventDecoder(Protocol):
    """A dialect's upstream ``StreamDecoder``: one SSE event in, canonical events out."""

    def feed(self, event: str | None, data: bytes) -> list[StreamEvent]: ...

    def close(self) -> list[StreamEvent]: ...


class ChunkDecoder(Protocol):
    """Body chunks in, canonical events out: a dialect's same-dialect relay (``pending``: the bytes of the
    unfinished event it holds back), or ``_SSEChunks`` over an ``EventDecoder``."""

    @property
    def pending(self) -> int: ...

    def feed(self, chunk: bytes) -> list[StreamEvent]: ...

    def close(self) -> list[StreamEvent]: ...


class _SSEChunks:
    """An ``EventDecoder`` behind the SSE decoder (which bounds an event's size itself)."""

    __slots__ = ("_decoder", "_sse")
    pending = 0

    def __init__(self, sse: SSEDecoder, decoder: EventDecoder) -> None:
        self._sse = sse
        self._decoder = decoder

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        decode = self._decoder.feed
        pairs = self._sse.feed(chunk)
        if len(pairs) == 1:
            return decode(*pairs[0])
        return [event for name, data in pairs for event in decode(name, data)]

    def close(self) -> list[StreamEvent]:
        decode = self._decoder.feed
        return [event for name, data in self._sse.close() for event in decode(name, data)] + self._decoder.close()


class _NoCookies(httpx.Cookies):
    """A jar that never keeps what an upstream sets."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class _UpstreamClient(httpx.AsyncClient):
    """httpx's client without a cookie jar, and with a shorter ``send`` for the requests apipod makes.

    No jar: one client serves every account and every tenant, so a cookie one upstream account was given must
    never ride along on another's requests (httpx and aiohttp both keep cookies by default). Skipping the jar
    also spares each response a urllib request object.

    ``send(request, stream=True)`` hands the request to the transport itself (PERF, issue 10): httpx's own
    ``send`` passes it through an auth-flow async generator, a redirect loop, event hooks, two ``contextlib``
    managers and a stream wrapper that records ``elapsed``, about 500 opcodes per call, none of which apipod's
    requests use (no auth, hooks or redirects are configured; the jar is the one above). Whenever any of them
    is in play (auth or a user in the URL, a hook, redirects followed, a closed client) httpx's ``send`` runs.
    The transport is the one httpx would pick (a proxy mounted from the environment included), and a failure
    carries its request as httpx attaches it.
    """

    async def send(
        self,
        request: httpx.Request,
        *,
        stream: bool = False,
        auth: Any = httpx.USE_CLIENT_DEFAULT,
        follow_redirects: Any = httpx.USE_CLIENT_DEFAULT,
    ) -> httpx.Response:
        hooks = self._event_hooks
        if (
            not stream
            or auth is not httpx.USE_CLIENT_DEFAULT
            or follow_redirects is not httpx.USE_CLIENT_DEFAULT
            or self.follow_redirects
            or self.auth is not None
            or hooks["request"]
            or hooks["response"]
            or self.is_closed
            or request.url.userinfo
        ):
            return await super().send(request, stream=stream, auth=auth, follow_redirects=follow_redirects)
        transport = self._transport_for_url(request.url)
        try:
            response = await transport.handle_async_request(request)
        except httpx.RequestError as exc:
            exc.request = request
            raise
        response.request = request
        return response

    @property
    def cookies(self) -> httpx.Cookies:
        return _NO_COOKIES

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        return None


_NO_COOKIES = _NoCookies()


def make_http_client(*, transport: str = "aiohttp", max_connections: int = 1000) -> httpx.AsyncClient:
    """The one client every upstream adapter shares (connection pooling across requests).

    ``transport="aiohttp"`` keeps httpx as the API but moves the I/O to aiohttp, which costs about a third
    of the CPU per request; ``"httpx"`` uses httpx's own transport (HTTP/1.1, no extra dependency at work).
    Neither keeps cookies (``_UpstreamClient``).
    """
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    timeout = http_timeout(Timeouts())
    if transport == "aiohttp":
        import aiohttp

        from apipod.adapters.upstreams._aiohttp_transport import LeanAiohttpTransport

        def session() -> aiohttp.ClientSession:
            # AiohttpTransport's own session, less aiohttp's cookie jar (made on first use, inside the loop)
            connector = aiohttp.TCPConnector(
                limit=max_connections, keepalive_timeout=limits.keepalive_expiry, ssl=httpx.create_ssl_context()
            )
            return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())

        return _UpstreamClient(transport=LeanAiohttpTransport(limits=limits, client=session), timeout=timeout)
    if transport == "httpx":
        return _UpstreamClient(limits=limits, timeout=timeout)
    raise ValueError(f"unknown HTTP transport {transport!r}: expected 'aiohttp' or 'httpx'")


@functools.lru_cache(maxsize=256)
def http_timeout(timeouts: Timeouts) -> httpx.Timeout:
    """Connect (and waiting for a pooled connection) bounded by ``connect``; every read and write by
    ``read``, the longest silence allowed. httpx has no total timeout, which is what a stream needs."""
    return httpx.Timeout(connect=timeouts.connect, read=timeouts.read, write=timeouts.read, pool=timeouts.connect)


def join_url(base_url: str, path: str) -> str:
    """``base_url`` + ``path`` with exactly one slash between them."""
    return base_url.rstrip("/") + path


def merge_headers(headers: dict[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    """``extra`` (an upstream's configured headers) laid over ``headers`` (lowercase names), names compared
    case-insensitively so a configured ``Authorization`` replaces apipod's instead of doubling it."""
    for name, value in extra.items():
        headers[name.lower()] = value
    return headers


def transport_error(upstream: Upstream, exc: Exception) -> UpstreamUnavailableError:
    """An httpx failure as the domain error; the message names the kind of failure, never the URL."""
    if isinstance(exc, CONNECT_ERRORS):
        message = "apipod could not connect to the upstream."
    elif isinstance(exc, httpx.TimeoutException):
        message = f"The upstream sent nothing for {upstream.timeouts.read:g} seconds."
    elif isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        message = "The upstream's base URL is not a valid http(s) URL."
    else:
        message = f"The connection to the upstream failed ({type(exc).__name__})."
    return UpstreamUnavailableError(message, upstream=upstream.name)


class UpstreamHttp:
    """The HTTP side of one vendor adapter, bound to that vendor's ``decode_error``.

    Args:
        client: the shared client (its transport is the test seam: ``ASGITransport``, ``MockTransport``).
        decode_error: the dialect's error-answer decoder.
        retry: connection retries; ``RetryPolicy.disabled()`` in tests that count attempts.
    """

    __slots__ = ("_client", "_decode_error", "_retry", "_urls")

    def __init__(
        self, client: httpx.AsyncClient, *, decode_error: ErrorDecoder, retry: RetryPolicy = DEFAULT_RETRY
    ) -> None:
        self._client = client
        self._decode_error = decode_error
        self._retry = retry
        # Parsed URLs: an adapter calls a handful of them (base URL x endpoint) over and over.
        self._urls: dict[str, _Target] = {}

    async def request_json(
        self, upstream: Upstream, method: str, url: str, *, headers: Mapping[str, str], body: Any = None
    ) -> Any:
        """One request answered with JSON. Raises the dialect's error for a non-2xx status,
        ``UpstreamTimeoutError`` past ``total`` (not ``first_event``: see ``Deadline``),
        ``UpstreamResponseTooLargeError`` past ``max_response_bytes``, and ``UpstreamUnavailableError`` for
        transport failures and a body that is not JSON."""
        deadline = Deadline(upstream, first_event=False)
        try:
            content = await deadline.run(self._fetch(upstream, method, url, headers, body, deadline))
        finally:
            deadline.cancel()
        try:
            return orjson.loads(content)
        except orjson.JSONDecodeError as exc:
            raise UpstreamUnavailableError("The upstream's answer is not JSON.", upstream=upstream.name) from exc

    async def _fetch(
        self, upstream: Upstream, method: str, url: str, headers: Mapping[str, str], body: Any, deadline: Deadline
    ) -> bytes:
        """The whole 2xx body, read chunk by chunk and refused as soon as it passes the cap (never buffered
        whole first and measured after)."""
        response = await self._open(upstream, method, url, headers, body)
        limit = upstream.max_response_bytes
        parts: list[bytes] = []
        size = 0
        try:
            async for chunk in body_chunks(response):
                if deadline.awaiting_first:
                    deadline.first_event()
                size += len(chunk)
                if size > limit:
                    raise UpstreamResponseTooLargeError(
                        f"The upstream's answer is longer than {limit} bytes.", upstream=upstream.name
                    )
                parts.append(chunk)
        except httpx.HTTPError as exc:
            raise transport_error(upstream, exc) from exc
        finally:
            await _close(response)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def stream(
        self,
        upstream: Upstream,
        url: str,
        *,
        headers: Mapping[str, str],
        body: Any,
        decoder: EventDecoder | None = None,
        relay: ChunkDecoder | None = None,
    ) -> BatchedStream:
        """POST ``body`` and relay the SSE answer as canonical events, following ``UpstreamClient.stream``:
        failures before the first event are raised, later ones end the stream with ``StreamFailed``. That
        includes the bounds: ``first_event``/``total`` (``UpstreamTimeoutError``), ``max_event_bytes`` and a
        tool call's arguments past ``max_response_bytes`` (``UpstreamResponseTooLargeError``).

        The events come one by one or per network read (``batches()``). The request opens on the first read
        and closes however the stream ends, so closing it early cancels the upstream request.
        """
        if relay is None and decoder is None:
            raise TypeError("stream() needs a decoder or a relay")
        return BatchedStream(self._batches(upstream, url, headers, body, decoder, relay))

    async def _batches(
        self,
        upstream: Upstream,
        url: str,
        headers: Mapping[str, str],
        body: Any,
        decoder: EventDecoder | None,
        relay: ChunkDecoder | None,
    ) -> AsyncGenerator[list[StreamEvent], None]:
        deadline = Deadline(upstream)
        try:
            response = await deadline.run(self._open(upstream, "POST", url, headers, body))
        except BaseException:
            deadline.cancel()
            raise
        body = body_chunks(response)
        chunks = aiter(body)
        read = chunks.__anext__
        current_task = asyncio.current_task
        loop_time = asyncio.get_running_loop().time
        gate = Gate()
        chunked: ChunkDecoder
        if relay is not None:
            chunked = relay
        else:
            chunked = _SSEChunks(SSEDecoder(upstream.max_event_bytes), cast(EventDecoder, decoder))
        event_limit = upstream.max_event_bytes or sys.maxsize
        arguments = _ArgumentsCap(upstream)
        try:
            try:
                while True:
                    # deadline.enter(), inlined and mostly skipped: this runs once per chunk
                    if deadline.expired:
                        raise deadline.error()
                    if loop_time() >= deadline.watch_from:
                        deadline.task = current_task()
                    try:
                        chunk = await read()
                    except StopAsyncIteration:
                        break
                    finally:
                        deadline.task = None
                    events = chunked.feed(chunk)
                    if chunked.pending > event_limit:
                        raise SSEEventTooLarge(event_limit)
                    if not events:
                        continue
                    if deadline.awaiting_first:
                        deadline.first_event()
                    batch, too_long = arguments.cut(gate.admit(events, upstream))
                    if batch:
                        yield batch
                    if too_long is not None:
                        raise too_long
                    if gate.done:
                        break
                if not gate.done:
                    batch, too_long = arguments.cut(gate.admit(chunked.close(), upstream))
                    if batch:
                        yield batch
                    if too_long is not None:
                        raise too_long
            except (httpx.HTTPError, SSEEventTooLarge, UpstreamTimeoutError, UpstreamResponseTooLargeError) as exc:
                if not gate.open:
                    raise _stream_error(upstream, exc) from exc  # not through a local: no cycle with this frame
                yield [StreamFailed("upstream", _stream_error(upstream, exc).message)]
                return
            except asyncio.CancelledError:
                if not deadline.absorbs():
                    raise
                if not gate.open:
                    raise deadline.error() from None
                yield [StreamFailed("upstream", deadline.error().message)]
                return
            if not gate.open:
                raise UpstreamUnavailableError("The upstream's stream ended without an answer.", upstream=upstream.name)
            if gate.finished:
                deadline.drain(_DRAIN_TIMEOUT)
                await _drain(chunks, deadline)
        finally:
            deadline.cancel()
            if isinstance(chunks, types.AsyncGeneratorType):  # a generator's own cleanup, now
                with contextlib.suppress(httpx.HTTPError):
                    await chunks.aclose()
            await _close(response)

    async def _open(
        self, upstream: Upstream, method: str, url: str, headers: Mapping[str, str], body: Any
    ) -> httpx.Response:
        """Sends the request and returns the response once its headers arrived (body unread); a non-2xx
        answer is read, closed and raised as the dialect's error."""
        try:
            target = self._urls.get(url)
            if target is None:
                if len(self._urls) >= _URL_CACHE_SIZE:
                    self._urls.clear()
                target = self._urls[url] = _Target(httpx.URL(url))
        except httpx.InvalidURL as exc:
            raise transport_error(upstream, exc) from exc
        request = self._request(method, target, headers, None if body is None else orjson.dumps(body), upstream)
        started = time.perf_counter()
        try:
            # NOTE: retries cover the connection only; once a response exists it is never sent again.
            response = await self._retry.call(lambda: self._client.send(request, stream=True), retry_on=CONNECT_ERRORS)
        except httpx.HTTPError as exc:
            log.info("upstream %s: %s", upstream.name, type(exc).__name__)
            raise transport_error(upstream, exc) from exc
        status = response.status_code
        if log.isEnabledFor(logging.DEBUG):
            log.debug("upstream %s: HTTP %d in %.1f ms", upstream.name, status, (time.perf_counter() - started) * 1e3)
        if 200 <= status < 300:
            return response
        try:
            content = await _read_capped(response)
        finally:
            await _close(response)
        error = self._decode_error(status, content, response.headers)
        error.upstream = upstream.name
        # The upstream's text goes to the log only, without what was sent or configured (an echo of either).
        log_upstream_error(upstream.name, status, error, {**headers, **configured_secrets(upstream)})
        try:
            raise error
        finally:
            del error  # the traceback holds this frame: no cycle back, which would keep the call for the collector

    def _request(
        self, method: str, target: _Target, headers: Mapping[str, str], content: bytes | None, upstream: Upstream
    ) -> httpx.Request:
        """What ``client.build_request`` makes, built directly (PERF: httpx's header merging parses and
        re-encodes every header several times over, about a tenth of a request's Python work).

        The client's own headers (``Accept``, ``User-Agent``...) come first unless ``headers`` names them
        (case-insensitively, as httpx merges); ``Host`` and ``Content-Length`` as httpx's ``Request`` sets
        them. Header names and values are ASCII, as httpx requires of ``str`` headers (anything else raises
        ``UnicodeEncodeError`` there as here)."""
        if not target.host:  # a URL without a scheme or host: httpx's own merging with the client's base URL
            return self._client.build_request(
                method,
                target.url,
                headers={"content-type": "application/json", **headers} if content is not None else headers,
                content=content,
                timeout=http_timeout(upstream.timeouts),
            )
        ours = {name.lower(): value for name, value in headers.items()}
        raw = [] if "host" in ours else [(b"Host", target.host)]
        raw += [(name, value) for name, value in self._client.headers.raw if name.lower().decode() not in ours]
        if "content-length" not in ours:
            if content is not None:
                raw.append((b"Content-Length", str(len(content)).encode()))
            elif method in _BODY_METHODS:
                raw.append((b"Content-Length", b"0"))
        if content is not None and "content-type" not in ours:
            raw.append((b"content-type", b"application/json"))
        raw += [(name.encode("ascii"), value.encode("ascii")) for name, value in ours.items()]
        request = httpx.Request(
            method,
            target.url,
            stream=httpx.ByteStream(content or b""),
            extensions={"timeout": _timeout_extension(upstream.timeouts)},
        )
        request.headers = headers_of(raw)
        request.read()  # the body in memory, as build_request leaves it (a transport may read ``content``)
        return request


@attrs.frozen
class _Target:
    """An upstream URL, parsed once, with the ``Host`` header it makes."""

    url: httpx.URL
    host: bytes = attrs.field(init=False)

    @host.default
    def _host(self) -> bytes:
        return self.url.netloc if self.url.is_absolute_url else b""


_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


@functools.lru_cache(maxsize=256)
def _timeout_extension(timeouts: Timeouts) -> dict[str, float | None]:
    """httpx's ``timeout`` request extension for ``timeouts`` (shared: transports only read it)."""
    return http_timeout(timeouts).as_dict()


class _ArgumentsCap:
    """Counts each streamed tool call's argument text (``ToolCallDelta`` fragments, by call key) against
    ``max_response_bytes``. Only counted, never joined: apipod relays fragments as they come, but whoever
    assembles them (the caller's SDK) must not be handed an endless call. Lengths are characters, which the
    cap's bytes bound within UTF-8's factor; arguments are mostly ASCII."""

    __slots__ = ("_limit", "_sizes", "_upstream")

    def __init__(self, upstream: Upstream) -> None:
        self._upstream = upstream
        self._limit = upstream.max_response_bytes
        self._sizes: dict[int, int] = {}

    def cut(self, batch: list[StreamEvent]) -> tuple[list[StreamEvent], UpstreamResponseTooLargeError | None]:
        """``batch`` as it may be relayed: whole, or up to the event whose arguments grow past the cap, with the
        error that ends the stream after what came before it."""
        for position, event in enumerate(batch):
            kind = type(event)
            if kind is ToolCallDelta:
                if not self._add(event.key, len(event.fragment)):  # type: ignore[union-attr]
                    return batch[:position], self._error()
            elif kind is Relayed and event.arguments and not self._add(-1, event.arguments):  # type: ignore[union-attr]
                # relayed chunks are not parsed: their size bounds the arguments in them (one count per stream)
                return batch[:position], self._error()
        return batch, None

    def _error(self) -> UpstreamResponseTooLargeError:
        return UpstreamResponseTooLargeError(
            f"A tool call's arguments from the upstream are longer than {self._limit} bytes.",
            upstream=self._upstream.name,
        )

    def _add(self, key: int, length: int) -> bool:
        size = self._sizes.get(key, 0) + length
        if size > self._limit:
            return False
        self._sizes[key] = size
        return True


def _stream_error(upstream: Upstream, exc: Exception) -> UpstreamError:
    """What broke a stream, as the domain error raised before the first event or told in ``StreamFailed``."""
    if isinstance(exc, UpstreamError):
        return exc
    if isinstance(exc, SSEEventTooLarge):
        return UpstreamResponseTooLargeError(
            f"The upstream sent an event longer than {exc.limit} bytes.", upstream=upstream.name
        )
    return transport_error(upstream, exc)


def body_chunks(response: httpx.Response) -> AsyncIterable[bytes]:
    """The response's body as it arrives: the transport's own stream when the answer is not content-encoded,
    else httpx's decoding ``aiter_bytes``.

    PERF (issue 10): ``aiter_bytes`` passes every chunk through three async generators (each registered with the
    event loop when it starts) and an identity decoder; the chunks come out the same. The body is read once and
    closed by ``_close``, so the consumed-stream bookkeeping those generators keep has no reader here.
    """
    stream = cast(httpx.AsyncByteStream, response.stream)
    if getattr(stream, "plain", False):  # the aiohttp transport's body knows (``_aiohttp_transport._Body``)
        return stream
    if "content-encoding" in response.headers:
        return response.aiter_bytes()
    return stream


async def _read_capped(response: httpx.Response) -> bytes:
    """An error answer's body, at most ``_ERROR_BODY_LIMIT`` bytes; what arrived when the read failed."""
    parts: list[bytes] = []
    size = 0
    with contextlib.suppress(httpx.HTTPError):
        async for chunk in response.aiter_bytes():
            parts.append(chunk)
            size += len(chunk)
            if size >= _ERROR_BODY_LIMIT:
                break
    return b"".join(parts)[:_ERROR_BODY_LIMIT]


async def _drain(chunks: AsyncIterator[bytes], deadline: Deadline) -> None:
    """Reads the body to its end (briefly: ``deadline`` was set to drain) after the last event, so the connection
    goes back to the pool instead of being closed with bytes unread."""
    with contextlib.suppress(httpx.HTTPError, UpstreamTimeoutError):
        await deadline.run(_read_to_end(chunks))


async def _read_to_end(chunks: AsyncIterator[bytes]) -> None:
    async for _ in chunks:
        pass


async def _close(response: httpx.Response) -> None:
    """``response.aclose()``, as httpx does it less its per-call ``contextlib`` manager (which only names the
    request on an error, and this swallows transport errors: the answer was read, or has failed already)."""
    stream = response.stream
    # httpx's client binds the body stream to its response and the response to the stream: a reference cycle
    # holding the request, both header sets and the transport's response, left for the collector's oldest
    # generation on every upstream call (~40 objects). Closed, the response needs its stream no more.
    response.stream = _CLOSED_BODY
    if response.is_closed:
        return
    response.is_closed = True
    with contextlib.suppress(httpx.HTTPError):
        await cast(httpx.AsyncByteStream, stream).aclose()


_CLOSED_BODY = httpx.ByteStream(b"")
