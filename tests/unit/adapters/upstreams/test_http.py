"""The shared HTTP core: client factory, timeouts, URLs, headers, retries, error mapping, the stream gate."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import weakref
from collections.abc import AsyncIterator, Callable, Mapping

import httpx
import pytest
from httpx_aiohttp import AiohttpTransport

from apipod.adapters.retry import DEFAULT_RETRY, NO_RETRY, RetryPolicy
from apipod.adapters.upstreams import _http
from apipod.adapters.upstreams._http import (
    UpstreamHttp,
    http_timeout,
    join_url,
    make_http_client,
    merge_headers,
)
from apipod.dialects import openai as dialect
from apipod.domain.catalog import Timeouts, Upstream, UpstreamKind
from apipod.domain.errors import UpstreamError, UpstreamRejectedError, UpstreamUnavailableError
from apipod.domain.stream import Finished, MessageStarted, StreamEvent, TextDelta

UPSTREAM = Upstream(name="up", kind=UpstreamKind.OPENAI, base_url="http://up.test/v1")
URL = "http://up.test/v1/chat/completions"
SECRET = "sk-very-secret"
DONE_STREAM = (
    b'data: {"id":"c","model":"m","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":"stop"}]}\n\n'
    b"data: [DONE]\n\n"
)


def core(handler: Callable[[httpx.Request], httpx.Response], retry: RetryPolicy = NO_RETRY) -> UpstreamHttp:
    return UpstreamHttp(
        httpx.AsyncClient(transport=httpx.MockTransport(handler)), decode_error=dialect.decode_error, retry=retry
    )


class Counter:
    """A MockTransport handler that fails ``failures`` times with ``exc`` and then answers ``{}``."""

    def __init__(self, failures: int, exc: type[Exception] = httpx.ConnectError) -> None:
        self.failures = failures
        self.exc = exc
        self.calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.exc("boom", request=request)  # type: ignore[call-arg]
        return httpx.Response(200, json={"ok": True})


class Chunks(httpx.AsyncByteStream):
    def __init__(self, *chunks: bytes) -> None:
        self.chunks = chunks
        self.read = 0
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            self.read += 1
            yield chunk

    async def aclose(self) -> None:
        self.closed = True


async def test_make_http_client_transports() -> None:
    client = make_http_client(transport="aiohttp", max_connections=10)
    assert isinstance(client._transport, AiohttpTransport)
    assert client._transport.limits.max_connections == 10
    await client.aclose()
    client = make_http_client(transport="httpx", max_connections=10)
    assert isinstance(client._transport, httpx.AsyncHTTPTransport)
    await client.aclose()
    with pytest.raises(ValueError, match="carrier-pigeon"):
        make_http_client(transport="carrier-pigeon", max_connections=1)


def test_timeouts_are_connect_and_idle_read() -> None:
    timeout = http_timeout(Timeouts(connect=3.0, read=40.0))
    assert (timeout.connect, timeout.read, timeout.write, timeout.pool) == (3.0, 40.0, 40.0, 3.0)
    assert http_timeout(Timeouts(connect=3.0, read=40.0)) is timeout  # cached per value


def test_join_url_and_merge_headers() -> None:
    assert join_url("https://api.openai.com/v1/", "/models") == "https://api.openai.com/v1/models"
    assert join_url("https://api.anthropic.com", "/v1/messages") == "https://api.anthropic.com/v1/messages"
    merged = merge_headers({"authorization": "Bearer a"}, {"Authorization": "Bearer b", "X-Extra": "1"})
    assert merged == {"authorization": "Bearer b", "x-extra": "1"}


async def test_connection_failures_are_retried_up_to_the_policy() -> None:
    handler = Counter(failures=2)
    http = core(handler, RetryPolicy(attempts=3, wait_initial=0, wait_max=0))
    assert await http.request_json(UPSTREAM, "GET", URL, headers={}) == {"ok": True}
    assert handler.calls == 3


async def test_retry_waits_between_attempts() -> None:
    handler = Counter(failures=1, exc=httpx.ConnectTimeout)
    started = time.perf_counter()
    await core(handler, RetryPolicy(attempts=2, wait_initial=0.05, wait_max=0.05)).request_json(
        UPSTREAM, "GET", URL, headers={}
    )
    assert time.perf_counter() - started >= 0.05
    assert handler.calls == 2


async def test_exhausted_retries_raise_unavailable_from_the_original() -> None:
    handler = Counter(failures=5)
    with pytest.raises(UpstreamUnavailableError, match="could not connect") as caught:
        await core(handler, RetryPolicy(attempts=2, wait_initial=0, wait_max=0)).request_json(
            UPSTREAM, "GET", URL, headers={}
        )
    assert handler.calls == 2
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert caught.value.upstream == "up"


async def test_disabled_retry_makes_one_attempt() -> None:
    handler = Counter(failures=1)
    with pytest.raises(UpstreamUnavailableError):
        await core(handler, RetryPolicy.disabled()).request_json(UPSTREAM, "GET", URL, headers={})
    assert handler.calls == 1
    assert DEFAULT_RETRY.attempts == 2


@pytest.mark.parametrize("exc", [httpx.ReadTimeout, httpx.RemoteProtocolError, httpx.ReadError, httpx.PoolTimeout])
async def test_failures_after_the_request_was_sent_are_not_retried(exc: type[Exception]) -> None:
    handler = Counter(failures=1, exc=exc)
    with pytest.raises(UpstreamUnavailableError) as caught:
        await core(handler, RetryPolicy(attempts=3, wait_initial=0, wait_max=0)).request_json(
            UPSTREAM, "GET", URL, headers={}
        )
    assert handler.calls == 1
    assert isinstance(caught.value.__cause__, exc)


async def test_error_statuses_are_not_retried() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(500, json={"error": {"message": "boom", "type": "server_error"}})

    with pytest.raises(UpstreamUnavailableError):
        await core(handler, RetryPolicy(attempts=3, wait_initial=0, wait_max=0)).request_json(
            UPSTREAM, "GET", URL, headers={}
        )
    assert len(calls) == 1


def test_retry_policy_rejects_zero_attempts() -> None:
    with pytest.raises(ValueError, match="attempts"):
        RetryPolicy(attempts=0)


@pytest.mark.parametrize("base_url", ["ftp://example.com", "http://"])
async def test_invalid_base_url_is_unavailable(base_url: str) -> None:
    http = UpstreamHttp(httpx.AsyncClient(), decode_error=dialect.decode_error, retry=NO_RETRY)
    with pytest.raises(UpstreamUnavailableError, match="base URL"):
        await http.request_json(UPSTREAM, "GET", join_url(base_url, "/models"), headers={})


async def test_error_body_is_capped_before_decoding() -> None:
    seen: list[int] = []

    def decode_error(status: int, body: bytes, headers: Mapping[str, str]) -> UpstreamError:
        seen.append(len(body))
        return UpstreamRejectedError("too big", status=status)

    http = UpstreamHttp(
        httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(400, content=b"x" * 1_000_000))),
        decode_error=decode_error,
    )
    with pytest.raises(UpstreamRejectedError):
        await http.request_json(UPSTREAM, "POST", URL, headers={}, body={})
    assert seen == [64 * 1024]


async def test_stream_opens_lazily_and_not_at_all_when_closed_unread() -> None:
    handler = Counter(failures=0)
    events = core(handler).stream(UPSTREAM, URL, headers={}, body={}, decoder=dialect.StreamDecoder())
    assert handler.calls == 0
    await events.aclose()  # type: ignore[attr-defined]
    assert handler.calls == 0


async def test_stream_drains_the_body_after_the_last_event() -> None:
    body = Chunks(DONE_STREAM, b"", b": trailing comment\n\n")
    http = core(lambda r: httpx.Response(200, stream=body))
    events = [e async for e in http.stream(UPSTREAM, URL, headers={}, body={}, decoder=dialect.StreamDecoder())]
    assert events[1:] == [TextDelta("Hi"), Finished(events[-1].reason)]  # type: ignore[union-attr]
    assert body.read == 3  # read to the end so the connection can go back to the pool


async def test_draining_a_body_that_never_ends_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """After the last event the rest of the body gets a moment, not the call's whole ``total``: the client's
    stream ends on time even when the upstream holds its connection open."""

    class Stalls(Chunks):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            yield DONE_STREAM
            await asyncio.Event().wait()
            yield b""

    monkeypatch.setattr(_http, "_DRAIN_TIMEOUT", 0.05)
    body = Stalls()
    http = core(lambda r: httpx.Response(200, stream=body))
    started = time.monotonic()
    events = [e async for e in http.stream(UPSTREAM, URL, headers={}, body={}, decoder=dialect.StreamDecoder())]
    assert isinstance(events[-1], Finished)
    assert time.monotonic() - started < 2  # the call's total is 600 s
    assert body.closed


async def test_stream_that_ends_with_only_message_started_is_raised() -> None:
    class Starts:
        def feed(self, event: str | None, data: bytes) -> list[StreamEvent]:
            return [MessageStarted()]

        def close(self) -> list[StreamEvent]:
            return []

    http = core(lambda r: httpx.Response(200, stream=Chunks(b"data: {}\n\n")))
    with pytest.raises(UpstreamUnavailableError, match="ended without an answer"):
        await anext(http.stream(UPSTREAM, URL, headers={}, body={}, decoder=Starts()))


async def test_stream_body_cut_before_any_event_is_raised() -> None:
    http = core(lambda r: httpx.Response(200, stream=Chunks()))
    with pytest.raises(UpstreamUnavailableError, match="ended before the answer"):
        await anext(http.stream(UPSTREAM, URL, headers={}, body={}, decoder=dialect.StreamDecoder()))


async def test_logs_never_hold_secrets_or_urls(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="apipod.upstream")
    http = core(lambda r: httpx.Response(401, json={"error": {"message": f"bad key {SECRET[:6]}"}}))
    with pytest.raises(UpstreamError):
        await http.request_json(UPSTREAM, "POST", URL, headers={"authorization": f"Bearer {SECRET}"}, body={})
    http = core(Counter(failures=0))
    await http.request_json(UPSTREAM, "GET", URL + "?key=" + SECRET, headers={"x-api-key": SECRET})
    assert caplog.records
    assert SECRET not in caplog.text
    assert "up.test" not in caplog.text


async def test_a_finished_upstream_call_leaves_no_reference_cycle() -> None:
    """httpx binds a response's body stream and the response to each other; left bound, every upstream call
    (its request, headers and transport response) waited for the collector's full collections."""
    answers: list[weakref.ref[httpx.Response]] = []

    async def remember(response: httpx.Response) -> None:
        answers.append(weakref.ref(response))

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/stream"):
            return httpx.Response(200, stream=Chunks(DONE_STREAM))
        return httpx.Response(200, json={"ok": True})

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler), event_hooks={"response": [remember]})
    http = UpstreamHttp(client, decode_error=dialect.decode_error, retry=NO_RETRY)
    gc.collect()
    gc.disable()
    try:
        assert await http.request_json(UPSTREAM, "POST", URL, headers={}, body={}) == {"ok": True}
        decoder = dialect.StreamDecoder()
        events = [e async for e in http.stream(UPSTREAM, URL + "/stream", headers={}, body={}, decoder=decoder)]
        assert isinstance(events[-1], Finished)
        del events
        assert len(answers) == 2
        assert [answer() for answer in answers] == [None, None]  # freed by reference counting alone
    finally:
        gc.enable()
        await client.aclose()


@pytest.mark.parametrize(
    ("method", "url", "headers", "body"),
    [
        ("POST", URL, {"authorization": f"Bearer {SECRET}"}, {"model": "m"}),
        ("POST", "https://api.test:8443/v1/messages?beta=true", {"x-api-key": "k", "anthropic-version": "1"}, {}),
        # configured headers that name the client's defaults or the body's type replace them, in any case
        ("POST", URL, {"User-Agent": "ops/1", "ACCEPT": "text/plain", "Content-Type": "application/x-json"}, [1]),
        ("POST", URL, {"Host": "virtual.test", "authorization": "Bearer k"}, {"a": "é"}),
        ("GET", "http://up.test/v1/models", {"authorization": "Bearer k"}, None),
        ("DELETE", URL, {}, None),
    ],
)
async def test_requests_carry_what_httpxs_build_request_would_put_on_them(
    method: str, url: str, headers: dict[str, str], body: object
) -> None:
    # UpstreamHttp builds its requests itself (PERF); what reaches the upstream must not change
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={})

    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    await UpstreamHttp(client, decode_error=dialect.decode_error, retry=NO_RETRY).request_json(
        UPSTREAM, method, url, headers=headers, body=body
    )
    content = None if body is None else _http.orjson.dumps(body)
    named = {name.lower(): value for name, value in headers.items()}  # one of each name, the configured one
    expected = client.build_request(
        method,
        url,
        headers={"content-type": "application/json", **named} if body is not None else named,
        content=content,
        timeout=http_timeout(UPSTREAM.timeouts),
    )
    (request,) = sent
    assert (request.method, request.url) == (expected.method, expected.url)
    assert sorted((k.lower(), v) for k, v in request.headers.raw) == sorted(
        (k.lower(), v) for k, v in expected.headers.raw
    )
    assert request.content == expected.content
    assert request.extensions["timeout"] == expected.extensions["timeout"]
