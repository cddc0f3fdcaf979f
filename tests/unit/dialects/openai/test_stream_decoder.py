"""StreamDecoder on recorded OpenAI and Copilot streams, and on the quirks of docs/protocols/openai-chat.md §6.5."""

from __future__ import annotations

from typing import Any

import orjson

from apipod.dialects.openai import StreamDecoder
from apipod.domain.chat import FinishReason, Usage
from apipod.domain.stream import (
    Finished,
    MessageStarted,
    StreamEvent,
    StreamFailed,
    TextDelta,
    ThinkingDelta,
    ThinkingSignature,
    ToolCallDelta,
    ToolCallStarted,
    UsageReported,
)
from tests.unit.dialects.openai.sse import decode_fixture, decode_stream


def text_of(events: list[StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def arguments(events: list[StreamEvent]) -> dict[int, str]:
    joined: dict[int, str] = {}
    for event in events:
        if isinstance(event, ToolCallDelta):
            joined[event.key] = joined.get(event.key, "") + event.fragment
    return joined


def test_text_stream_with_usage_chunk() -> None:
    events = decode_fixture("openai/chat_stream_text_include_usage.sse")
    assert events[0] == MessageStarted(id="chatcmpl-ABfw031mOJeYCSHe4yI2ZjOA6kMJL", model="gpt-4o-2024-08-06")
    assert text_of(events) == (
        "I'm unable to provide real-time weather updates. To get the current weather in San Francisco, I "
        "recommend checking a reliable weather website or a weather app."
    )
    assert events[-2:] == [UsageReported(Usage(input_tokens=14, output_tokens=30)), Finished(FinishReason.END_TURN)]
    assert sum(isinstance(e, MessageStarted) for e in events) == 1
    assert all(e.text for e in events if isinstance(e, TextDelta))  # the empty role-chunk content is skipped


def test_parallel_tool_calls_stream() -> None:
    events = decode_fixture("openai/chat_stream_parallel_tool_calls_include_usage.sse")
    assert events[0] == MessageStarted(id="chatcmpl-ABfwAwrNePHUgBBezonVC6MX3zd63", model="gpt-4o-2024-08-06")
    starts = [e for e in events if isinstance(e, ToolCallStarted)]
    assert starts == [
        ToolCallStarted(key=0, id="call_JMW1whyEaYG438VE1OIflxA2", name="GetWeatherArgs"),
        ToolCallStarted(key=1, id="call_DNYTawLBoN8fj3KN6qU9N1Ou", name="get_stock_price"),
    ]
    assert arguments(events) == {
        0: '{"city": "Edinburgh", "country": "GB", "units": "c"}',
        1: '{"ticker": "AAPL", "exchange": "NASDAQ"}',
    }
    assert (
        sum(isinstance(e, ToolCallDelta) for e in events) == 11 + 9
    )  # the empty first fragment of each call is not an event
    # every fragment of call 0 comes after its start and before call 1 starts
    assert events.index(starts[1]) > max(i for i, e in enumerate(events) if isinstance(e, ToolCallDelta) and e.key == 0)
    assert text_of(events) == ""
    assert events[-2:] == [UsageReported(Usage(input_tokens=149, output_tokens=60)), Finished(FinishReason.TOOL_USE)]


def test_single_tool_call_started_in_role_chunk() -> None:
    events = decode_fixture("openai/chat_stream_single_tool_call_include_usage.sse")
    assert events[:2] == [
        MessageStarted(id="chatcmpl-ABfw8AOXnoa2kzy11vVTSjuQhHCQr", model="gpt-4o-2024-08-06"),
        ToolCallStarted(key=0, id="call_c91SqDXlYFuETYv8mUHzz6pp", name="GetWeatherArgs"),
    ]
    assert arguments(events) == {0: '{"city":"Edinburgh","country":"UK","units":"c"}'}
    assert events[-2:] == [UsageReported(Usage(input_tokens=76, output_tokens=24)), Finished(FinishReason.TOOL_USE)]


def test_finish_length_stream() -> None:
    events = decode_fixture("openai/chat_stream_finish_length.sse")
    assert events == [
        MessageStarted(id="chatcmpl-ABfw3Oqj8RD0z6aJiiX37oTjV2HFh", model="gpt-4o-2024-08-06"),
        TextDelta('{"'),
        UsageReported(Usage(input_tokens=79, output_tokens=1)),
        Finished(FinishReason.MAX_TOKENS),
    ]


def test_copilot_prompt_filter_chunk_and_usage_on_finish_chunk() -> None:
    events = decode_fixture("copilot/stream_usage_in_finish_chunk.sse")
    assert events == [
        MessageStarted(id="chatcmpl-ExampleCopilot01", model="gpt-4.1-2025-04-14"),
        TextDelta("Hello"),
        TextDelta("!"),
        UsageReported(Usage(input_tokens=9, output_tokens=2)),
        Finished(FinishReason.END_TURN),
    ]


def sse(*chunks: Any, done: bool = True) -> bytes:
    body = b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks)
    return body + (b"data: [DONE]\n\n" if done else b"")


def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"id": "c1", "model": "m", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}


def test_new_id_on_a_reused_index_is_a_new_call() -> None:
    events = decode_stream(
        sse(
            chunk({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": '{"x":1}'}}]}),
            chunk({"tool_calls": [{"index": 0, "id": "b", "function": {"name": "g", "arguments": '{"y":'}}]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": "2}"}}]}),
            chunk({"tool_calls": [{"index": 1, "id": "c", "function": {"name": "h", "arguments": "{}"}}]}),
            chunk({}, "stop"),
        )
    )
    assert [e for e in events if isinstance(e, ToolCallStarted)] == [
        ToolCallStarted(0, "a", "f"),
        ToolCallStarted(1, "b", "g"),
        ToolCallStarted(2, "c", "h"),
    ]
    assert arguments(events) == {0: '{"x":1}', 1: '{"y":2}', 2: "{}"}
    assert events[-1] == Finished(FinishReason.TOOL_USE)  # "stop" with tool calls means tool use


def test_length_is_kept_over_tool_use_and_signature_is_read() -> None:
    sig = {"google": {"thought_signature": "EpEg"}}
    events = decode_stream(
        sse(
            chunk(
                {
                    "role": "assistant",
                    "tool_calls": [{"index": 0, "id": "a", "function": {"name": "f"}, "extra_content": sig}],
                }
            ),
            chunk({}, "length"),
        )
    )
    assert ToolCallStarted(0, "a", "f", signature="EpEg") in events
    assert events[-1] == Finished(FinishReason.MAX_TOKENS)


def test_reasoning_fields_usage_details_and_finish_chunk_with_content() -> None:
    usage = {
        "prompt_tokens": 50,
        "completion_tokens": 20,
        "prompt_tokens_details": {"cached_tokens": 40},
        "completion_tokens_details": {"reasoning_tokens": 7},
    }
    events = decode_stream(
        sse(
            chunk({"role": "assistant", "reasoning_content": "a"}, usage=None),
            chunk({"reasoning": "b", "reasoning_details": [{"text": "b"}]}),
            chunk({"reasoning_text": "c", "reasoning_opaque": "op"}),
            chunk({"content": "done"}, "stop", usage=usage),
        )
    )
    assert events == [
        MessageStarted(id="c1", model="m"),
        ThinkingDelta("a"),
        ThinkingDelta("b"),
        ThinkingDelta("c"),
        ThinkingSignature("op"),
        TextDelta("done"),
        UsageReported(Usage(input_tokens=50, output_tokens=20, cached_input_tokens=40, reasoning_tokens=7)),
        Finished(FinishReason.END_TURN),
    ]


def test_error_payload_mid_stream_fails_and_stops() -> None:
    decoder = StreamDecoder()
    events = decoder.feed(None, orjson.dumps(chunk({"content": "Hi"})))
    events += decoder.feed(
        None, b'{"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}'
    )
    events += decoder.feed(None, orjson.dumps(chunk({"content": "late"})))
    events += decoder.feed(None, b"[DONE]")
    events += decoder.close()
    assert events == [
        MessageStarted(id="c1", model="m"),
        TextDelta("Hi"),
        StreamFailed("rate_limited", "The upstream account's rate limit was hit (requests rate_limit_exceeded)."),
    ]


def test_error_kinds() -> None:
    def fail(error: Any) -> StreamEvent:
        decoder = StreamDecoder()
        (event,) = decoder.feed(None, orjson.dumps({"error": error}))
        return event

    # the same policy as an error answer: the client reads what kind of failure it was, not the upstream's text
    assert fail({"message": "busy", "type": "server_error", "code": "overloaded"}) == StreamFailed(
        "overloaded", "The upstream is overloaded (server_error overloaded)."
    )
    assert fail({"message": "x", "type": "insufficient_quota"}) == StreamFailed(
        "rate_limited", "The upstream account's quota is exhausted (insufficient_quota)."
    )
    assert fail({"message": "bad", "type": "server_error"}) == StreamFailed(
        "upstream", "The upstream answered with an error (server_error)."
    )
    assert fail("plain text") == StreamFailed("upstream", "The upstream answered with an error.")
    leaked = fail({"message": "Incorrect API key provided: sk-proj-SECRET", "code": "invalid_api_key"})
    assert leaked == StreamFailed("upstream", "The upstream refused apipod's credentials (invalid_api_key).")


def test_end_of_body_without_done_finishes_when_a_reason_was_given() -> None:
    events = decode_stream(sse(chunk({"content": "x"}), chunk({}, "stop"), done=False))
    assert events[-1] == Finished(FinishReason.END_TURN)


def test_end_of_body_without_any_finish_is_a_failure() -> None:
    events = decode_stream(sse(chunk({"content": "x"}), done=False))
    assert events[:2] == [MessageStarted(id="c1", model="m"), TextDelta("x")]
    assert isinstance(events[-1], StreamFailed)
    assert events[-1].kind == "upstream"


def test_done_alone_still_starts_and_finishes() -> None:
    assert decode_stream(b"data: [DONE]\n\n") == [MessageStarted(), Finished(FinishReason.END_TURN)]


def test_malformed_chunk_fails_the_stream() -> None:
    decoder = StreamDecoder()
    assert decoder.feed(None, b"{not json") == [StreamFailed("upstream", "The upstream sent a malformed stream chunk.")]
    assert decoder.close() == []


def test_nothing_after_finish() -> None:
    decoder = StreamDecoder()
    decoder.feed(None, orjson.dumps(chunk({"content": "x"}, "stop")))
    assert decoder.feed(None, b"[DONE]")[-1] == Finished(FinishReason.END_TURN)
    assert decoder.feed(None, orjson.dumps(chunk({"content": "y"}))) == []
    assert decoder.close() == []
