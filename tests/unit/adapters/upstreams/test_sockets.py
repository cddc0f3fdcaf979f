"""The adapters over real sockets (uvicorn on 127.0.0.1), with both transports of ``make_http_client``:
incremental delivery, refused connections, timeouts, dropped connections, cancellation, keep-alive."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import orjson
import pytest

from apipod.adapters.retry import RetryPolicy
from apipod.adapters.upstreams._http import make_http_client
from apipod.adapters.upstreams.anthropic import AnthropicUpstream
from apipod.adapters.upstreams.openai import OpenAIUpstream
from apipod.domain.catalog import Timeouts, UpstreamKind
from apipod.domain.chat import FinishReason, Usage
from apipod.domain.errors import UpstreamRateLimitedError, UpstreamUnavailableError
from apipod.domain.stream import Finished, MessageStarted, StreamFailed, TextDelta, UsageReported
from tests.fakes.fake_anthropic import FakeAnthropic
from tests.fakes.fake_openai import FakeOpenAI
from tests.fakes.server import read_body, refused_url, serve
from tests.fixture_path import fixture
from tests.unit.adapters.upstreams.conftest import KEY, make_call, user_request

FAST = RetryPolicy(attempts=2, wait_initial=0.01, wait_max=0.01)
TEXT_FIXTURE = fixture("openai/chat_stream_text_include_usage.sse")


@pytest.fixture(params=["aiohttp", "httpx"])
async def client(request: pytest.FixtureRequest) -> AsyncIterator[httpx.AsyncClient]:
    http = make_http_client(transport=request.param, max_connections=10)
    yield http
    await http.aclose()


@pytest.fixture
def openai_fake() -> Iterator[tuple[FakeOpenAI, str]]:
    fake = FakeOpenAI(keys=[KEY])
    with serve(fake) as url:
        yield fake, url + "/v1"


@pytest.fixture
def anthropic_fake() -> Iterator[tuple[FakeAnthropic, str]]:
    fake = FakeAnthropic(keys=[KEY])
    with serve(fake) as url:
        yield fake, url


async def test_openai_complete_and_stream(client: httpx.AsyncClient, openai_fake: tuple[FakeOpenAI, str]) -> None:
    fake, base = openai_fake
    upstream = OpenAIUpstream(client, retry=FAST)
    call = make_call(UpstreamKind.OPENAI, base)
    result = await upstream.complete(call, user_request("over the wire"))
    assert result.text() == "Echo: over the wire"
    events = [e async for e in upstream.stream(call, user_request("over the wire"))]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Echo: over the wire"
    assert events[-1] == Finished(FinishReason.END_TURN)
    assert [r.headers["authorization"] for r in fake.requests] == [f"Bearer {KEY}"] * 2


async def test_anthropic_stream_of_a_recorded_fixture(
    client: httpx.AsyncClient, anthropic_fake: tuple[FakeAnthropic, str]
) -> None:
    fake, base = anthropic_fake
    fake.replay(fixture("anthropic/stream_thinking_then_text.sse"), delay=0.001)
    upstream = AnthropicUpstream(client, retry=FAST)
    events = [e async for e in upstream.stream(make_call(UpstreamKind.ANTHROPIC, base), user_request())]
    assert isinstance(events[0], MessageStarted)
    assert [e.usage for e in events if isinstance(e, UsageReported)][-1] == Usage(input_tokens=69, output_tokens=53)
    assert events[-1] == Finished(FinishReason.END_TURN)
    assert fake.outcomes[-1].completed


async def test_connection_refused_is_unavailable(client: httpx.AsyncClient) -> None:
    upstream = OpenAIUpstream(client, retry=FAST)
    call = make_call(UpstreamKind.OPENAI, refused_url() + "/v1")
    with pytest.raises(UpstreamUnavailableError, match="could not connect") as caught:
        await upstream.complete(call, user_request())
    assert isinstance(caught.value.__cause__, httpx.ConnectError | httpx.ConnectTimeout)
    with pytest.raises(UpstreamUnavailableError, match="could not connect"):
        await anext(upstream.stream(call, user_request()))


async def test_status_and_retry_after_over_the_wire(
    client: httpx.AsyncClient, anthropic_fake: tuple[FakeAnthropic, str]
) -> None:
    fake, base = anthropic_fake
    fake.reply_error(429, "rate limited", headers={"Retry-After": "30"})
    with pytest.raises(UpstreamRateLimitedError) as caught:
        await anext(AnthropicUpstream(client).stream(make_call(UpstreamKind.ANTHROPIC, base), user_request()))
    assert caught.value.retry_after == 30.0
    assert len(fake.requests) == 1


async def test_closing_the_stream_early_disconnects_from_the_upstream(
    client: httpx.AsyncClient, openai_fake: tuple[FakeOpenAI, str]
) -> None:
    fake, base = openai_fake
    fake.replay(TEXT_FIXTURE, delay=0.05)
    events = OpenAIUpstream(client).stream(make_call(UpstreamKind.OPENAI, base), user_request())
    assert isinstance(await anext(events), MessageStarted)
    assert await anext(events) == TextDelta("I'm")
    await events.aclose()  # type: ignore[attr-defined]
    assert await fake.wait_disconnect()
    assert fake.outcomes[-1].frames_sent < 10
    assert not fake.outcomes[-1].completed


async def test_connection_dropped_mid_stream_ends_with_stream_failed(
    client: httpx.AsyncClient, openai_fake: tuple[FakeOpenAI, str]
) -> None:
    fake, base = openai_fake
    fake.replay(TEXT_FIXTURE, cut_after=4, delay=0.01)
    events = [e async for e in OpenAIUpstream(client).stream(make_call(UpstreamKind.OPENAI, base), user_request())]
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["I'm", " unable", " to"]
    assert isinstance(events[-1], StreamFailed)


async def test_hang_before_the_first_byte_times_out(
    client: httpx.AsyncClient, openai_fake: tuple[FakeOpenAI, str]
) -> None:
    fake, base = openai_fake
    fake.hang()
    call = make_call(UpstreamKind.OPENAI, base, timeouts=Timeouts(connect=1.0, read=0.3))
    with pytest.raises(UpstreamUnavailableError, match="sent nothing"):
        await anext(OpenAIUpstream(client, retry=FAST).stream(call, user_request()))
    assert len(fake.requests) == 1  # a timeout after the request went out is never retried
    assert await fake.wait_disconnect()


async def test_finished_streams_leave_the_connection_reusable(
    client: httpx.AsyncClient, openai_fake: tuple[FakeOpenAI, str]
) -> None:
    fake, base = openai_fake
    upstream = OpenAIUpstream(client)
    call = make_call(UpstreamKind.OPENAI, base)
    for _ in range(3):
        events = [e async for e in upstream.stream(call, user_request("again"))]
        assert isinstance(events[-1], Finished)
    assert len({r.client for r in fake.requests}) == 1


def test_the_fake_serves_sync_clients_too() -> None:
    fake = FakeOpenAI()
    with serve(fake) as url:
        response = httpx.post(
            url + "/v1/chat/completions",
            headers={"authorization": "Bearer any"},
            json={"model": "m", "messages": [{"role": "user", "content": "sync"}]},
        )
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "Echo: sync"
    assert fake.last.body["messages"][0]["content"] == "sync"


def chat_completion(content: str, *, prompt_tokens: int) -> dict[str, Any]:
    """A non-streamed OpenAI answer of one completion token."""
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": 1, "total_tokens": prompt_tokens + 1},
    }


async def test_an_upstream_cookie_is_never_sent_back(client: httpx.AsyncClient) -> None:
    """One client serves every account: what one account's answer sets must not ride on the next request."""
    seen: list[str | None] = []
    completion = chat_completion("hi", prompt_tokens=1)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        seen.append(dict(scope["headers"]).get(b"cookie", b"").decode() or None)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"set-cookie", b"session=account-a; Path=/; HttpOnly"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": orjson.dumps(completion)})

    with serve(app) as url:
        upstream = OpenAIUpstream(client, retry=FAST)
        for _ in range(2):
            assert (await upstream.complete(make_call(UpstreamKind.OPENAI, url + "/v1"), user_request())).text() == "hi"
    assert seen == [None, None]
    assert not client.cookies


async def test_a_gzipped_answer_and_stream_are_decoded(client: httpx.AsyncClient) -> None:
    """An upstream that compresses (apipod's client accepts gzip) is read through httpx's decoder, answer and
    stream alike; an answer that is not compressed takes the transport's own stream (``body_chunks``)."""
    completion = chat_completion("squeezed", prompt_tokens=3)
    stream = TEXT_FIXTURE.read_bytes()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        streamed = orjson.loads(await read_body(receive)).get("stream", False)
        answer = gzip.compress(stream if streamed else orjson.dumps(completion))
        kind = b"text/event-stream" if streamed else b"application/json"
        headers = [(b"content-type", kind), (b"content-encoding", b"gzip")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        # in two parts: the decoder is fed as the bytes come
        await send({"type": "http.response.body", "body": answer[:40], "more_body": True})
        await send({"type": "http.response.body", "body": answer[40:]})

    with serve(app) as url:
        upstream = OpenAIUpstream(client, retry=FAST)
        call = make_call(UpstreamKind.OPENAI, url + "/v1")
        result = await upstream.complete(call, user_request())
        assert result.text() == "squeezed"
        assert result.usage == Usage(input_tokens=3, output_tokens=1)
        events = [event async for event in upstream.stream(call, user_request())]
    assert not [e for e in events if isinstance(e, StreamFailed)]
    assert any(isinstance(e, Finished) for e in events)
