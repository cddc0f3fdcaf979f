"""OpenAIUpstream against the fake OpenAI server, in process (streaming ASGI transport, and httpx's own
buffered ASGITransport for the non-streamed path)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import attrs
import httpx
import orjson
import pytest

from apipod.adapters.retry import NO_RETRY
from apipod.adapters.upstreams.openai import OpenAIUpstream
from apipod.application.ports import UpstreamCall
from apipod.dialects import openai as dialect
from apipod.dialects.upstream_faults import EXHAUSTED_REST
from apipod.domain.catalog import Timeouts, Upstream, UpstreamKind
from apipod.domain.chat import FinishReason, TextPart, ToolUsePart, Usage
from apipod.domain.errors import (
    UpstreamAuthError,
    UpstreamOverloadedError,
    UpstreamRateLimitedError,
    UpstreamRejectedError,
    UpstreamUnavailableError,
)
from apipod.domain.stream import (
    Finished,
    MessageStarted,
    Relayed,
    StreamEvent,
    StreamFailed,
    TextDelta,
    ToolCallDelta,
    ToolCallStarted,
    UsageReported,
)
from tests.fakes.fake_openai import FakeOpenAI, openai_frames
from tests.fixture_path import fixture
from tests.unit.adapters.upstreams.conftest import KEY, make_call, user_request

BASE = "http://fake-openai/v1"
STREAM_FIXTURES = [
    "openai/chat_stream_text_include_usage.sse",
    "openai/chat_stream_parallel_tool_calls_include_usage.sse",
    "openai/chat_stream_single_tool_call_include_usage.sse",
    "openai/chat_stream_finish_length.sse",
]


@pytest.fixture
def upstream(openai_http: httpx.AsyncClient) -> OpenAIUpstream:
    return OpenAIUpstream(openai_http, retry=NO_RETRY)


async def collect(events: AsyncIterator[StreamEvent]) -> list[StreamEvent]:
    return [event async for event in events]


async def attempt(upstream: OpenAIUpstream, call: UpstreamCall, *, streaming: bool) -> object:
    """A non-streamed call, or a stream up to its first event: where errors before the first byte surface."""
    if streaming:
        return await anext(upstream.stream(call, user_request()))
    return await upstream.complete(call, user_request())


def reference_events(raw: bytes) -> list[StreamEvent]:
    """The fixture through the dialect's decoder with the simplest possible framing."""
    decoder = dialect.StreamDecoder()
    events: list[StreamEvent] = []
    for block in raw.split(b"\n\n"):
        if block.startswith(b"data: "):
            events += decoder.feed(None, block[6:])
    return events + decoder.close()


async def test_complete_echoes_and_sends_the_wire_request(upstream: OpenAIUpstream, fake_openai: FakeOpenAI) -> None:
    call = make_call(UpstreamKind.OPENAI, BASE, headers={"OpenAI-Organization": "org-1"})
    result = await upstream.complete(call, user_request("hello there", max_output_tokens=50))
    assert result.text() == "Echo: hello there"
    assert result.finish_reason is FinishReason.END_TURN
    assert result.usage.output_tokens == 3
    assert result.model == "gpt-4o-mini"
    seen = fake_openai.last
    assert (seen.method, seen.path) == ("POST", "/v1/chat/completions")
    assert seen.headers["authorization"] == f"Bearer {KEY}"
    assert seen.headers["openai-organization"] == "org-1"
    assert seen.headers["content-type"] == "application/json"
    assert seen.body["model"] == "gpt-4o-mini"
    assert seen.body["stream"] is False
    assert seen.body["messages"] == [{"role": "user", "content": "hello there"}]


async def test_complete_over_httpx_buffered_asgi_transport() -> None:
    fake = FakeOpenAI(keys=[KEY])
    fake.replay(fixture("openai/chat_completion_text.json"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(fake)) as client:
        result = await OpenAIUpstream(client).complete(make_call(UpstreamKind.OPENAI, BASE), user_request())
    assert result.text().startswith("I'm unable to provide real-time weather updates.")
    assert result.model == "gpt-4o-2024-08-06"
    assert result.usage == Usage(input_tokens=14, output_tokens=37)


async def test_complete_decodes_recorded_parallel_tool_calls(upstream: OpenAIUpstream, fake_openai: FakeOpenAI) -> None:
    fake_openai.replay(fixture("openai/chat_completion_parallel_tool_calls.json"))
    result = await upstream.complete(make_call(UpstreamKind.OPENAI, BASE), user_request())
    calls = [p for p in result.parts if isinstance(p, ToolUsePart)]
    assert [(c.id, c.name) for c in calls] == [
        ("call_fdNz3vOBKYgOIpMdWotB9MjY", "GetWeatherArgs"),
        ("call_h1DWI1POMJLb0KwIyQHWXD4p", "get_stock_price"),
    ]
    assert orjson.loads(calls[1].arguments) == {"ticker": "AAPL", "exchange": "NASDAQ"}
    assert result.finish_reason is FinishReason.TOOL_USE
    assert result.usage.input_tokens == 149


async def test_same_dialect_request_passes_unknown_fields_through(
    upstream: OpenAIUpstream, fake_openai: FakeOpenAI
) -> None:
    body = {"model": "cursor-pro", "messages": [{"role": "user", "content": "hi"}], "seed": 7, "logit_bias": {"1": 2}}
    request = dialect.decode_request(body)
    await upstream.complete(make_call(UpstreamKind.OPENAI, BASE, model="gpt-4o"), request)
    sent = fake_openai.last.body
    assert sent["seed"] == 7
    assert sent["logit_bias"] == {"1": 2}
    assert sent["model"] == "gpt-4o"


async def test_stream_default_answer_word_by_word(upstream: OpenAIUpstream, fake_openai: FakeOpenAI) -> None:
    events = await collect(upstream.stream(make_call(UpstreamKind.OPENAI, BASE), user_request("one two three")))
    assert isinstance(events[0], MessageStarted)
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Echo: ", "one ", "two ", "three"]
    assert events[-1] == Finished(FinishReason.END_TURN)
    usage = [e.usage for e in events if isinstance(e, UsageReported)]
    assert usage[-1].output_tokens == 4
    sent = fake_openai.last.body
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("name", STREAM_FIXTURES)
async def test_stream_of_each_recorded_fixture(upstream: OpenAIUpstream, fake_openai: FakeOpenAI, name: str) -> None:
    raw = fixture(name).read_bytes()
    fake_openai.replay(fixture(name))
    events = await collect(upstream.stream(make_call(UpstreamKind.OPENAI, BASE), user_request()))
    assert events == reference_events(raw)
    assert isinstance(events[0], MessageStarted)
    assert isinstance(events[-1], Finished)


async def test_stream_of_recorded_text_has_its_text_and_usage(
    upstream: OpenAIUpstream, fake_openai: FakeOpenAI
) -> None:
    fake_openai.replay(fixture("openai/chat_stream_text_include_usage.sse"))
    events = await collect(upstream.stream(make_call(UpstreamKind.OPENAI, BASE), user_request()))
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text.startswith("I'm unable to provide real-time weather updates.")
    assert text.endswith("a reliable weather website or a weather app.")
    assert [e.usage for e in events if isinstance(e, UsageReported)][-1] == Usage(input_tokens=14, output_tokens=30)
    assert events[-1] == Finished(FinishReason.END_TURN)


async def test_stream_of_recorded_tool_calls(upstream: OpenAIUpstream, fake_openai: FakeOpenAI) -> None:
    fake_openai.replay(fixture("openai/chat_stream_parallel_tool_calls_include_usage.sse"))
    events = await collect(upstream.stream(make_call(UpstreamKind.OPENAI, BASE), user_request()))
    starts = [e for e in events if isinstance(e, ToolCallStarted)]
    assert [(s.key, s.name) for s in starts] == [(0, "GetWeatherArgs"), (1, "get_stock_price")]
    args = "".join(e.fragment for e in events if isinstance(e, ToolCallDelta) and e.key == 1)
    assert orjson.loads(args) == {"ticker": "AAPL", "exchange": "NASDAQ"}
    assert events[-1] == Finished(FinishReason.TOOL_USE)


@pytest.mark.parametrize(
    ("status", "body", "headers", "error", "check"),
    [
        (401, fixture("openai/error_401_invalid_api_key.json").read_bytes(), {}, UpstreamAuthError, None),
        (
            400,
            b'{"error":{"message":"max_tokens is too large","type":"invalid_request_error"}}',
            {},
            UpstreamRejectedError,
            "max_tokens is too large",
        ),
        (
            429,
            b'{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}',
            {"retry-after": "7"},
            UpstreamRateLimitedError,
            None,
        ),
        (429, fixture("openai/error_429_insufficient_quota.json").read_bytes(), {}, UpstreamRateLimitedError, None),
        (529, b'{"error":{"message":"Overloaded","type":"server_error"}}', {}, UpstreamOverloadedError, None),
        (503, b"<html>Service Unavailable</html>", {}, UpstreamOverloadedError, None),
        (500, b'{"error":{"message":"boom","type":"server_error"}}', {}, UpstreamUnavailableError, None),
        (502, b"<html>Bad Gateway</html>", {}, UpstreamUnavailableError, None),
    ],
)
@pytest.mark.parametrize("streaming", [False, True])
async def test_error_statuses_become_domain_errors(
    upstream: OpenAIUpstream,
    fake_openai: FakeOpenAI,
    status: int,
    body: bytes,
    headers: dict[str, str],
    error: type[Exception],
    check: str | None,
    streaming: bool,
) -> None:
    from tests.fakes.scripted import Reply

    fake_openai.push(Reply(status=status, body=body, headers={"content-type": "application/json", **headers}))
    call = make_call(UpstreamKind.OPENAI, BASE, name="openai-main")
    with pytest.raises(error) as caught:
        await attempt(upstream, call, streaming=streaming)
    assert caught.value.upstream == "openai-main"  # type: ignore[attr-defined]
    if check is not None:
        assert caught.value.message == check  # type: ignore[attr-defined]
        assert caught.value.status == status  # type: ignore[attr-defined]
    if isinstance(caught.value, UpstreamRateLimitedError):
        exhausted = b"insufficient_quota" in body
        assert caught.value.retry_after == (7.0 if headers else EXHAUSTED_REST if exhausted else None)
        assert caught.value.exhausted is exhausted
    assert len(fake_openai.requests) == 1


async def test_answer_that_is_not_json_is_unavailable(upstream: OpenAIUpstream, fake_openai: FakeOpenAI) -> None:
    fake_openai.reply_json(b"<html>hello</html>")
    with pytest.raises(UpstreamUnavailableError, match="not JSON"):
        await upstream.complete(make_call(UpstreamKind.OPENAI, BASE), user_request())


async def test_in_stream_error_before_any_content_is_raised(upstream: OpenAIUpstream, fake_openai: FakeOpenAI) -> None:
    fake_openai.reply_sse(openai_frames([{"error": {"message": "The server is overloaded", "type": "overloaded"}}]))
    with pytest.raises(UpstreamOverloadedError, match=r"^The upstream is overloaded \(overloaded\)\.$"):
        await anext(upstream.stream(make_call(UpstreamKind.OPENAI, BASE), user_request()))


async def test_connection_cut_mid_stream_ends_with_stream_failed(
    upstream: OpenAIUpstream, fake_openai: FakeOpenAI
) -> None:
    fake_openai.replay(fixture("openai/chat_stream_text_include_usage.sse"), cut_after=4)
    events = await collect(upstream.stream(make_call(UpstreamKind.OPENAI, BASE), user_request()))
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["I'm", " unable", " to"]
    assert isinstance(events[-1], StreamFailed)
    assert events[-1].kind == "upstream"


async def test_connection_cut_before_the_first_event_is_raised(
    upstream: OpenAIUpstream, fake_openai: FakeOpenAI
) -> None:
    fake_openai.replay(fixture("openai/chat_stream_text_include_usage.sse"), cut_after=1)  # the role chunk only
    with pytest.raises(UpstreamUnavailableError):
        await anext(upstream.stream(make_call(UpstreamKind.OPENAI, BASE), user_request()))


@pytest.mark.parametrize("streaming", [False, True])
async def test_hang_before_first_byte_times_out_without_retry(
    openai_http: httpx.AsyncClient, fake_openai: FakeOpenAI, streaming: bool
) -> None:
    upstream = OpenAIUpstream(openai_http)  # default retry: a read timeout is not retried
    fake_openai.hang()
    call = make_call(UpstreamKind.OPENAI, BASE, timeouts=Timeouts(connect=1.0, read=0.2))
    with pytest.raises(UpstreamUnavailableError, match=r"sent nothing for 0\.2 seconds"):
        await attempt(upstream, call, streaming=streaming)
    assert len(fake_openai.requests) == 1
    assert await fake_openai.wait_disconnect()


async def test_silence_mid_stream_ends_with_stream_failed(upstream: OpenAIUpstream, fake_openai: FakeOpenAI) -> None:
    frames = openai_frames(
        [
            {"id": "c", "model": "m", "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}]},
            {"id": "c", "model": "m", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        ]
    )
    fake_openai.reply_sse(frames, delay=1.0)
    call = make_call(UpstreamKind.OPENAI, BASE, timeouts=Timeouts(connect=1.0, read=0.2))
    events = await collect(upstream.stream(call, user_request()))
    assert events[:2] == [MessageStarted(id="c", model="m"), TextDelta("Hi")]
    assert events[2] == StreamFailed("upstream", "The upstream sent nothing for 0.2 seconds.")
    assert len(events) == 3


async def test_closing_the_stream_early_cancels_the_upstream_request(
    upstream: OpenAIUpstream, fake_openai: FakeOpenAI
) -> None:
    fake_openai.replay(fixture("openai/chat_stream_text_include_usage.sse"), delay=0.02)
    events = upstream.stream(make_call(UpstreamKind.OPENAI, BASE), user_request())
    assert isinstance(await anext(events), MessageStarted)
    assert await anext(events) == TextDelta("I'm")
    await events.aclose()  # type: ignore[attr-defined]
    assert await fake_openai.wait_disconnect()
    outcome = fake_openai.outcomes[-1]
    assert not outcome.completed
    assert outcome.frames_sent < 10


async def test_list_models(upstream: OpenAIUpstream, fake_openai: FakeOpenAI) -> None:
    call = make_call(UpstreamKind.OPENAI, BASE)
    assert await upstream.list_models(call.upstream) == ["gpt-4o-mini", "gpt-4o"]
    assert fake_openai.last.path == "/v1/models"
    assert fake_openai.last.headers["authorization"] == f"Bearer {KEY}"


async def test_keyless_upstream_sends_no_authorization(upstream: OpenAIUpstream, fake_openai: FakeOpenAI) -> None:
    with pytest.raises(UpstreamAuthError):
        await upstream.list_models(Upstream(name="local", kind=UpstreamKind.OPENAI, base_url=BASE))
    assert "authorization" not in fake_openai.last.headers


async def test_configured_header_overrides_authorization(upstream: OpenAIUpstream, fake_openai: FakeOpenAI) -> None:
    call = make_call(UpstreamKind.OPENAI, BASE, secret="wrong", headers={"Authorization": f"Bearer {KEY}"})
    await upstream.complete(call, user_request())
    assert fake_openai.last.headers["authorization"] == f"Bearer {KEY}"


async def test_text_part_result_model_falls_back_to_the_configured_name(
    upstream: OpenAIUpstream, fake_openai: FakeOpenAI
) -> None:
    fake_openai.reply_json(
        {
            "id": "x",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        }
    )
    result = await upstream.complete(make_call(UpstreamKind.OPENAI, BASE, model="local-llama"), user_request())
    assert result.parts == (TextPart("ok"),)
    assert result.model == "local-llama"


# -- same dialect: an OpenAI client's own body, its answer relayed as the upstream sent it -------------------


def bounded(call: UpstreamCall, **bounds: int) -> UpstreamCall:
    upstream = attrs.evolve(call.upstream, **bounds)
    return UpstreamCall(upstream, call.account, call.model)


def openai_client_request(text: str = "hello there", *, include_usage: bool = False) -> object:
    raw: dict[str, object] = {"model": "demo", "messages": [{"role": "user", "content": text}], "stream": True}
    if include_usage:
        raw["stream_options"] = {"include_usage": True}
    return user_request(text, dialect="openai", raw=raw)


async def test_an_openai_clients_stream_is_relayed_in_the_upstreams_bytes(
    upstream: OpenAIUpstream, fake_openai: FakeOpenAI
) -> None:
    raw = fixture("openai/chat_stream_text_include_usage.sse").read_bytes()
    fake_openai.replay(fixture("openai/chat_stream_text_include_usage.sse"))
    request = openai_client_request(include_usage=True)

    events = await collect(upstream.stream(make_call(UpstreamKind.OPENAI, BASE), request))  # type: ignore[arg-type]

    assert isinstance(events[0], MessageStarted) and events[0].relayed
    relayed = b"".join(e.data for e in events if isinstance(e, Relayed))
    upstream_model = orjson.loads(raw.split(b"\n", 1)[0][6:])["model"]
    assert relayed.replace(b"\r\n", b"\n") == raw.replace(b"\r\n", b"\n").replace(
        b'"model":' + orjson.dumps(upstream_model), b'"model":"demo"'
    )
    assert [e.usage for e in events if isinstance(e, UsageReported)][-1] == Usage(input_tokens=14, output_tokens=30)
    assert events[-1] == Finished(FinishReason.END_TURN)
    assert fake_openai.last.body["stream_options"] == {"include_usage": True}


async def test_a_relayed_stream_cut_mid_way_ends_with_stream_failed(
    upstream: OpenAIUpstream, fake_openai: FakeOpenAI
) -> None:
    fake_openai.replay(fixture("openai/chat_stream_text_include_usage.sse"), cut_after=4)

    events = await collect(upstream.stream(make_call(UpstreamKind.OPENAI, BASE), openai_client_request()))  # type: ignore[arg-type]

    assert isinstance(events[-1], StreamFailed)
    assert b"unable" in b"".join(e.data for e in events if isinstance(e, Relayed))


async def test_a_relayed_stream_with_an_error_first_is_raised_for_failover(
    upstream: OpenAIUpstream, fake_openai: FakeOpenAI
) -> None:
    fake_openai.reply_sse(openai_frames([{"error": {"message": "The server is overloaded", "type": "overloaded"}}]))

    with pytest.raises(UpstreamOverloadedError):
        await anext(upstream.stream(make_call(UpstreamKind.OPENAI, BASE), openai_client_request()))  # type: ignore[arg-type]


async def test_a_relayed_event_past_the_size_cap_ends_the_stream(
    upstream: OpenAIUpstream, fake_openai: FakeOpenAI
) -> None:
    start = {"id": "c", "model": "m", "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}]}
    huge = {"id": "c", "model": "m", "choices": [{"index": 0, "delta": {"content": "x" * 5000}, "finish_reason": None}]}
    big = b"data: " + orjson.dumps(huge) + b"\n\n"
    fake_openai.reply_sse([*openai_frames([start], done=False), big[:3000], big[3000:]])
    call = bounded(make_call(UpstreamKind.OPENAI, BASE), max_event_bytes=2048)

    events = await collect(upstream.stream(call, openai_client_request()))  # type: ignore[arg-type]

    assert isinstance(events[-1], StreamFailed)
    assert "longer than 2048 bytes" in events[-1].message


async def test_relayed_tool_calls_are_bounded_by_the_response_cap(
    upstream: OpenAIUpstream, fake_openai: FakeOpenAI
) -> None:
    def call_chunk(arguments: str) -> dict[str, object]:
        fragment = {"index": 0, "id": "call_1", "function": {"name": "f", "arguments": arguments}}
        return {"id": "c", "model": "m", "choices": [{"index": 0, "delta": {"tool_calls": [fragment]}}]}

    fake_openai.reply_sse(openai_frames([call_chunk("{")] + [call_chunk("a" * 500) for _ in range(10)]), delay=0.01)
    call = bounded(make_call(UpstreamKind.OPENAI, BASE), max_response_bytes=2000)

    events = await collect(upstream.stream(call, openai_client_request()))  # type: ignore[arg-type]

    assert isinstance(events[-1], StreamFailed)
    assert "2000 bytes" in events[-1].message
