"""AnthropicUpstream against the fake Anthropic server, in process."""

from __future__ import annotations

from collections.abc import AsyncIterator

import attrs
import httpx
import pytest

from apipod.adapters.retry import NO_RETRY
from apipod.adapters.upstreams.anthropic import AnthropicUpstream
from apipod.application.ports import UpstreamCall
from apipod.dialects import anthropic as dialect
from apipod.dialects import openai as openai_dialect
from apipod.domain.catalog import UpstreamKind
from apipod.domain.chat import FinishReason, ThinkingPart, ToolUsePart, Usage
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
    ThinkingDelta,
    ThinkingSignature,
    ToolCallDelta,
    ToolCallStarted,
    UsageReported,
)
from tests.fakes.fake_anthropic import FakeAnthropic, anthropic_frames
from tests.fixture_path import fixture
from tests.unit.adapters.upstreams.conftest import KEY, make_call, user_request

BASE = "http://fake-anthropic"
MODEL = "claude-sonnet-4-5"
STREAM_FIXTURES = [
    "anthropic/stream_text.sse",
    "anthropic/stream_text_then_tool_use.sse",
    "anthropic/stream_thinking_then_text.sse",
    "anthropic/stream_error_midstream.sse",
]
BETA = "interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14"


@pytest.fixture
def upstream(anthropic_http: httpx.AsyncClient) -> AnthropicUpstream:
    return AnthropicUpstream(anthropic_http, retry=NO_RETRY)


def call(**fields: object):  # type: ignore[no-untyped-def]
    return make_call(UpstreamKind.ANTHROPIC, BASE, model=MODEL, **fields)  # type: ignore[arg-type]


async def collect(events: AsyncIterator[StreamEvent]) -> list[StreamEvent]:
    return [event async for event in events]


def reference_events(raw: bytes) -> list[StreamEvent]:
    decoder = dialect.StreamDecoder()
    events: list[StreamEvent] = []
    for block in raw.split(b"\n\n"):
        lines = block.split(b"\n")
        if len(lines) == 2:
            events += decoder.feed(lines[0][7:].decode(), lines[1][6:])
    return events + decoder.close()


def claude_request(**extra: object) -> dict[str, object]:
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]}
        ],
        **extra,
    }


async def test_complete_echoes_and_sends_the_wire_request(
    upstream: AnthropicUpstream, fake_anthropic: FakeAnthropic
) -> None:
    result = await upstream.complete(call(), user_request("hello there", max_output_tokens=50))
    assert result.text() == "Echo: hello there"
    assert result.finish_reason is FinishReason.END_TURN
    assert result.model == MODEL
    seen = fake_anthropic.last
    assert (seen.method, seen.path) == ("POST", "/v1/messages")
    assert seen.headers["x-api-key"] == KEY
    assert seen.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in seen.headers
    assert "anthropic-beta" not in seen.headers
    assert seen.body["model"] == MODEL
    assert seen.body["max_tokens"] == 50
    assert seen.body["stream"] is False


async def test_complete_decodes_recorded_thinking_and_tool_use(
    upstream: AnthropicUpstream, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.replay(fixture("anthropic/message_thinking_then_tool_use.json"))
    result = await upstream.complete(call(), user_request())
    thinking, tool = result.parts
    assert isinstance(thinking, ThinkingPart)
    assert thinking.text == "The user wants me to call checkSandboxErrors immediately."
    assert thinking.signature.startswith("Eq4CCpIBCBIYAipAM+SG")
    assert isinstance(tool, ToolUsePart)
    assert (tool.id, tool.name, tool.arguments) == ("toolu_017R7ACrx7NF7sLDDtvdQ1u9", "checkSandboxErrors", "{}")
    assert result.finish_reason is FinishReason.TOOL_USE
    assert result.model == "claude-sonnet-4-6"
    assert (result.usage.input_tokens, result.usage.output_tokens) == (599, 59)


async def test_same_dialect_request_forwards_beta_header_and_unknown_fields(
    upstream: AnthropicUpstream, fake_anthropic: FakeAnthropic
) -> None:
    request = dialect.decode_request(claude_request(metadata={"user_id": "u1"}), {"anthropic-beta": BETA})
    await upstream.complete(call(), request)
    seen = fake_anthropic.last
    assert seen.headers["anthropic-beta"] == BETA
    assert seen.body["metadata"] == {"user_id": "u1"}
    assert seen.body["messages"][0]["content"][0]["cache_control"] == {"type": "ephemeral"}
    assert seen.body["model"] == MODEL


async def test_configured_beta_flags_are_added_to_the_clients(
    upstream: AnthropicUpstream, fake_anthropic: FakeAnthropic
) -> None:
    request = dialect.decode_request(claude_request(), {"anthropic-beta": BETA})
    await upstream.complete(call(headers={"Anthropic-Beta": "context-1m-2025-08-07"}), request)
    assert fake_anthropic.last.headers["anthropic-beta"] == f"{BETA},context-1m-2025-08-07"


async def test_beta_header_is_not_forwarded_across_dialects(
    upstream: AnthropicUpstream, fake_anthropic: FakeAnthropic
) -> None:
    request = openai_dialect.decode_request({"model": "x", "messages": [{"role": "user", "content": "hi"}]})
    await upstream.complete(call(), request)
    assert "anthropic-beta" not in fake_anthropic.last.headers
    assert fake_anthropic.last.body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]


async def test_stream_default_answer(upstream: AnthropicUpstream, fake_anthropic: FakeAnthropic) -> None:
    events = await collect(upstream.stream(call(), user_request("one two")))
    assert isinstance(events[0], MessageStarted)
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Echo: ", "one ", "two"]
    assert [e.usage for e in events if isinstance(e, UsageReported)][-1].output_tokens == 3
    assert events[-1] == Finished(FinishReason.END_TURN)
    assert fake_anthropic.last.body["stream"] is True


@pytest.mark.parametrize("name", STREAM_FIXTURES)
async def test_stream_of_each_recorded_fixture(
    upstream: AnthropicUpstream, fake_anthropic: FakeAnthropic, name: str
) -> None:
    fake_anthropic.replay(fixture(name))
    events = await collect(upstream.stream(call(), user_request()))
    assert events == reference_events(fixture(name).read_bytes())
    assert isinstance(events[0], MessageStarted)
    assert isinstance(events[-1], Finished | StreamFailed)


async def test_stream_of_recorded_text(upstream: AnthropicUpstream, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.replay(fixture("anthropic/stream_text.sse"))
    events = await collect(upstream.stream(call(), user_request()))
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Hello there!"
    assert events[-1] == Finished(FinishReason.END_TURN)


async def test_stream_of_recorded_tool_use(upstream: AnthropicUpstream, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.replay(fixture("anthropic/stream_text_then_tool_use.sse"))
    events = await collect(upstream.stream(call(), user_request()))
    (start,) = [e for e in events if isinstance(e, ToolCallStarted)]
    assert start.key == 0
    assert start.id.startswith("toolu_")
    assert "".join(e.fragment for e in events if isinstance(e, ToolCallDelta)).startswith("{")
    usage = [e.usage for e in events if isinstance(e, UsageReported)][-1]
    assert (usage.input_tokens, usage.output_tokens) == (377, 65)
    assert events[-1] == Finished(FinishReason.TOOL_USE)


async def test_stream_of_recorded_thinking(upstream: AnthropicUpstream, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.replay(fixture("anthropic/stream_thinking_then_text.sse"))
    events = await collect(upstream.stream(call(), user_request()))
    kinds = [type(e) for e in events if isinstance(e, ThinkingDelta | ThinkingSignature | TextDelta)]
    assert kinds.index(ThinkingSignature) < kinds.index(TextDelta)
    assert kinds[0] is ThinkingDelta
    assert [e.usage for e in events if isinstance(e, UsageReported)][-1] == Usage(input_tokens=69, output_tokens=53)


async def test_error_event_mid_stream_ends_with_stream_failed(
    upstream: AnthropicUpstream, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.replay(fixture("anthropic/stream_error_midstream.sse"))
    events = await collect(upstream.stream(call(), user_request()))
    assert [e for e in events if isinstance(e, TextDelta)] == [TextDelta("Sure, here is")]
    assert events[-1] == StreamFailed("overloaded", "The upstream is overloaded (overloaded_error).")


async def test_error_event_right_after_message_start_is_raised(
    upstream: AnthropicUpstream, fake_anthropic: FakeAnthropic
) -> None:
    frames = anthropic_frames(
        [
            {"type": "message_start", "message": {"id": "msg_1", "model": MODEL, "usage": {"input_tokens": 9}}},
            {"type": "ping"},
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        ]
    )
    fake_anthropic.reply_sse(frames)
    with pytest.raises(UpstreamOverloadedError, match=r"^The upstream is overloaded \(overloaded_error\)\.$"):
        await anext(upstream.stream(call(), user_request()))


@pytest.mark.parametrize(
    ("status", "message", "headers", "error"),
    [
        (401, "invalid x-api-key", {}, UpstreamAuthError),
        (403, "no access to this model", {}, UpstreamAuthError),
        (
            429,
            "Number of request tokens has exceeded your per-minute rate limit",
            {"retry-after": "12"},
            UpstreamRateLimitedError,
        ),
        (529, "Overloaded", {}, UpstreamOverloadedError),
        (500, "Internal server error", {}, UpstreamUnavailableError),
    ],
)
@pytest.mark.parametrize("streaming", [False, True])
async def test_error_statuses_become_domain_errors(
    upstream: AnthropicUpstream,
    fake_anthropic: FakeAnthropic,
    status: int,
    message: str,
    headers: dict[str, str],
    error: type[Exception],
    streaming: bool,
) -> None:
    fake_anthropic.reply_error(status, message, headers=headers)
    target = call(name="claude")
    with pytest.raises(error) as caught:
        await (
            anext(upstream.stream(target, user_request())) if streaming else upstream.complete(target, user_request())
        )
    assert caught.value.upstream == "claude"  # type: ignore[attr-defined]
    if headers:
        assert caught.value.retry_after == 12.0  # type: ignore[attr-defined]


async def test_bad_request_passes_the_upstream_message_on(
    upstream: AnthropicUpstream, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.replay(fixture("anthropic/error_400_invalid_request.json"))
    with pytest.raises(UpstreamRejectedError) as caught:
        await upstream.complete(call(), user_request())
    assert caught.value.status == 400
    assert caught.value.message.startswith("messages.2.content.0: unexpected `tool_use_id` found")


async def test_recorded_overloaded_answer(upstream: AnthropicUpstream, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.replay(fixture("anthropic/error_529_overloaded.json"))
    with pytest.raises(UpstreamOverloadedError, match=r"^The upstream is overloaded \(HTTP 529 overloaded_error\)\.$"):
        await anext(upstream.stream(call(), user_request()))


async def test_the_fake_insists_on_the_version_header(anthropic_http: httpx.AsyncClient) -> None:
    response = await anthropic_http.post(f"{BASE}/v1/messages", headers={"x-api-key": KEY}, json=claude_request())
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "anthropic-version: header is required"


async def test_list_models_follows_pages(upstream: AnthropicUpstream, fake_anthropic: FakeAnthropic) -> None:
    page = {"data": [{"type": "model", "id": "a"}, {"type": "model", "id": "b"}], "has_more": True, "last_id": "b"}
    fake_anthropic.reply_json(page)
    fake_anthropic.reply_json({"data": [{"type": "model", "id": "c"}], "has_more": False, "last_id": "c"})
    assert await upstream.list_models(call().upstream) == ["a", "b", "c"]
    first, second = fake_anthropic.requests
    assert first.path == "/v1/models"
    assert first.query == {"limit": ["1000"]}
    assert second.query == {"limit": ["1000"], "after_id": ["b"]}
    assert second.headers["x-api-key"] == KEY


async def test_list_models_of_the_fake(upstream: AnthropicUpstream) -> None:
    assert await upstream.list_models(call().upstream) == ["claude-sonnet-4-5", "claude-haiku-4-5"]


async def test_relayed_tool_input_is_bounded_by_the_response_cap(
    upstream: AnthropicUpstream, fake_anthropic: FakeAnthropic
) -> None:
    """The same-dialect relay does not parse content events, yet an endless tool input still ends the stream."""
    tool = {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}
    start = {"type": "message_start", "message": {"id": "msg_1", "model": MODEL, "usage": {"input_tokens": 9}}}
    pieces = [
        {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "a" * 500}}
        for _ in range(10)
    ]
    frames = anthropic_frames([start, {"type": "content_block_start", "index": 0, "content_block": tool}, *pieces])
    fake_anthropic.reply_sse(frames, delay=0.01)
    bounded = attrs.evolve(call().upstream, max_response_bytes=2000)
    request = dialect.decode_request(claude_request(stream=True), {})

    events = await collect(upstream.stream(UpstreamCall(bounded, call().account, call().model), request))

    assert any(isinstance(e, Relayed) for e in events)  # the relay, not the decoder, carried the stream
    assert isinstance(events[-1], StreamFailed)
    assert "2000 bytes" in events[-1].message
