from __future__ import annotations

import orjson

from apipod.dialects.anthropic import StreamDecoder
from apipod.domain.chat import FinishReason, Usage
from apipod.domain.stream import (
    BlockStopped,
    Finished,
    MessageStarted,
    RedactedThinking,
    StreamEvent,
    StreamFailed,
    TextDelta,
    ThinkingDelta,
    ThinkingSignature,
    ToolCallDelta,
    ToolCallStarted,
    UsageReported,
)
from tests.fixture_path import fixture
from tests.unit.dialects.anthropic.sse import decode_fixture, split_sse

THINKING_SIGNATURE = (
    "EvQBCkYICxgCKkAxhD4NUKFzudtZ6NzbZdEiBACIScTzqjPViM596iWLZIk4EFKYYBj3B6Ptl3b0dcQv/VeJBNbejNWIWRBn+KPNEgz6HWtK"
    "x7p+QRgKsEoaDGjsiqfht7gTRFYHiyIwD1VSmNqHxv3wy8KEMP+LYb/TC4UH3H97tuoaADARFFcA0phdfxnzKQxFnc9lwY+dKlzUsaKSUAFe"
    "u1bDL5ikZJ1vL0Fkz6JjoFke0L/wOJRIUDUlDUOFJ1tZ3ea7g6LGE/5hwuvWgLwewdcm64d+43l7F57XrOmqNd6flI2K/oPr/4yzNgvi/EhT"
    "6Ca17BgB"
)


def feed_all(decoder: StreamDecoder, payloads: list[dict[str, object]]) -> list[StreamEvent]:
    events: list[StreamEvent] = []
    for payload in payloads:
        events.extend(decoder.feed(str(payload["type"]), orjson.dumps(payload)))
    return events


def test_text_stream_fixture() -> None:
    start_usage = Usage(input_tokens=11, output_tokens=1)
    assert decode_fixture("stream_text.sse") == [
        MessageStarted("msg_4QpJur2dWWDjF6C758FbBw5vm12BaVipnK", "claude-3-opus-latest", start_usage),
        UsageReported(start_usage),
        TextDelta("Hello"),
        TextDelta(" there"),
        TextDelta("!"),
        BlockStopped(),
        UsageReported(Usage(input_tokens=11, output_tokens=6)),
        Finished(FinishReason.END_TURN),
    ]


def test_text_then_tool_use_fixture() -> None:
    events = decode_fixture("stream_text_then_tool_use.sse")
    start_usage = Usage(input_tokens=377, output_tokens=1)
    assert events == [
        MessageStarted("msg_019Q1hrJbZG26Fb9BQhrkHEr", "claude-sonnet-4-20250514", start_usage),
        UsageReported(start_usage),
        TextDelta("I"),
        TextDelta("'ll check the current weather in Paris for you."),
        BlockStopped(),
        ToolCallStarted(0, "toolu_01NRLabsLyVHZPKxbKvkfSMn", "get_weather"),
        ToolCallDelta(0, '{"locati'),
        ToolCallDelta(0, 'on": "P'),
        ToolCallDelta(0, "ar"),
        ToolCallDelta(0, 'is"}'),
        BlockStopped(),
        UsageReported(Usage(input_tokens=377, output_tokens=65)),
        Finished(FinishReason.TOOL_USE),
    ]
    arguments = "".join(e.fragment for e in events if isinstance(e, ToolCallDelta))
    assert orjson.loads(arguments) == {"location": "Paris"}


def test_thinking_then_text_fixture() -> None:
    events = decode_fixture("stream_thinking_then_text.sse")
    thinking = "".join(e.text for e in events if isinstance(e, ThinkingDelta))
    assert thinking == "The previous result was 925. Now I need to divide that by 5.\n\n925 ÷ 5 = 185"
    assert not any(isinstance(e, ThinkingDelta) and not e.text for e in events)  # the empty delta is skipped
    assert [e for e in events if isinstance(e, ThinkingSignature)] == [ThinkingSignature(THINKING_SIGNATURE)]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "925 ÷ 5 = 185"
    kinds = [type(e).__name__ for e in events if not isinstance(e, ThinkingDelta | TextDelta)]
    assert kinds == [
        "MessageStarted",
        "UsageReported",
        "ThinkingSignature",
        "BlockStopped",
        "BlockStopped",
        "UsageReported",
        "Finished",
    ]
    assert events[0] == MessageStarted(
        "msg_01Y6V41gqPaKWEw7iPouH7iW", "claude-sonnet-4-5-20250929", Usage(input_tokens=69, output_tokens=2)
    )
    assert events[-2:] == [UsageReported(Usage(input_tokens=69, output_tokens=53)), Finished(FinishReason.END_TURN)]


def test_midstream_error_fixture_ends_with_stream_failed() -> None:
    decoder = StreamDecoder()
    events: list[StreamEvent] = []
    for name, data in split_sse(fixture("anthropic/stream_error_midstream.sse").read_bytes()):
        events.extend(decoder.feed(name, data))
    assert events == [
        MessageStarted("msg_01ExampleMidStreamError", "claude-sonnet-4-5", Usage(input_tokens=25, output_tokens=1)),
        UsageReported(Usage(input_tokens=25, output_tokens=1)),
        TextDelta("Sure, here is"),
        StreamFailed("overloaded", "The upstream is overloaded (overloaded_error)."),
    ]
    assert decoder.close() == []  # the failure was the end


def test_cache_counts_are_added_to_input_and_never_erased_by_message_delta() -> None:
    decoder = StreamDecoder()
    usage = {"input_tokens": 5, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 20, "output_tokens": 1}
    events = feed_all(
        decoder,
        [
            {"type": "message_start", "message": {"id": "msg_1", "model": "m", "usage": usage}},
            {"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, "usage": {"output_tokens": 40}},
            {
                "type": "message_delta",
                "delta": {},
                "usage": {"input_tokens": 0, "output_tokens": 41, "output_tokens_details": {"thinking_tokens": 9}},
            },
            {"type": "message_stop"},
        ],
    )
    first = Usage(input_tokens=125, output_tokens=1, cached_input_tokens=100, cache_creation_input_tokens=20)
    assert events == [
        MessageStarted("msg_1", "m", first),
        UsageReported(first),
        UsageReported(Usage(125, 40, 100, 20)),
        UsageReported(Usage(125, 41, 100, 20, reasoning_tokens=9)),
        Finished(FinishReason.MAX_TOKENS),
    ]


def test_tool_keys_are_ordinals_among_tool_blocks() -> None:
    decoder = StreamDecoder()
    events = feed_all(
        decoder,
        [
            {"type": "message_start", "message": {"id": "msg_1", "model": "m"}},
            {"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "a", "name": "f"}},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "{}"}},
            {"type": "content_block_stop", "index": 0},
            {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
            {"type": "content_block_stop", "index": 1},
            {"type": "content_block_start", "index": 2, "content_block": {"type": "server_tool_use", "id": "s"}},
            {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{"}},
            {"type": "content_block_stop", "index": 2},
            {"type": "content_block_start", "index": 3, "content_block": {"type": "redacted_thinking", "data": "xyz"}},
            {"type": "content_block_stop", "index": 3},
            {"type": "content_block_start", "index": 4, "content_block": {"type": "tool_use", "id": "b", "name": "g"}},
            {"type": "content_block_delta", "index": 4, "delta": {"type": "input_json_delta", "partial_json": "{}"}},
            {"type": "content_block_stop", "index": 4},
            {"type": "ping"},
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 3}},
            {"type": "message_stop"},
        ],
    )
    assert events[1:] == [
        ToolCallStarted(0, "a", "f"),
        ToolCallDelta(0, "{}"),
        BlockStopped(),
        BlockStopped(),
        RedactedThinking("xyz"),
        BlockStopped(),
        ToolCallStarted(1, "b", "g"),
        ToolCallDelta(1, "{}"),
        BlockStopped(),
        UsageReported(Usage(output_tokens=3)),
        Finished(FinishReason.TOOL_USE),  # a tool call overrides end_turn (docs/protocols/translation.md §6.1)
    ]


def test_error_kinds() -> None:
    def failure(error_type: str) -> list[StreamEvent]:
        return StreamDecoder().feed(
            "error", orjson.dumps({"type": "error", "error": {"type": error_type, "message": "m"}})
        )

    assert failure("overloaded_error") == [StreamFailed("overloaded", "The upstream is overloaded (overloaded_error).")]
    assert failure("rate_limit_error") == [
        StreamFailed("rate_limited", "The upstream account's rate limit was hit (rate_limit_error).")
    ]
    assert failure("api_error") == [StreamFailed("upstream", "The upstream answered with an error (api_error).")]
    # the upstream's text never reaches the client from inside a stream either
    assert failure("authentication_error") == [
        StreamFailed("upstream", "The upstream refused apipod's credentials (authentication_error).")
    ]


def test_nothing_after_finished_or_failed() -> None:
    decoder = StreamDecoder()
    feed_all(decoder, [{"type": "message_start", "message": {"id": "msg_1"}}, {"type": "message_stop"}])
    assert decoder.feed("content_block_start", b'{"type":"content_block_start","index":0}') == []
    assert decoder.close() == []


def test_close_without_message_stop() -> None:
    truncated = StreamDecoder()
    feed_all(truncated, [{"type": "message_start", "message": {"id": "msg_1"}}])
    assert truncated.close() == [StreamFailed("upstream", "the upstream stream ended before the message was complete")]
    stopped = StreamDecoder()
    feed_all(
        stopped,
        [
            {"type": "message_start", "message": {"id": "msg_1"}},
            {"type": "message_delta", "delta": {"stop_reason": "refusal"}},
        ],
    )
    assert stopped.close() == [Finished(FinishReason.CONTENT_FILTER)]


def test_message_started_is_first_even_without_message_start() -> None:
    decoder = StreamDecoder()
    events = feed_all(
        decoder, [{"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": "Hi"}}]
    )
    assert events == [MessageStarted(), TextDelta("Hi")]


def test_unreadable_event_fails_the_stream() -> None:
    decoder = StreamDecoder()
    assert decoder.feed("ping", b"not json") == []
    assert decoder.feed("content_block_delta", b"{not json") == [
        StreamFailed("upstream", "the upstream sent an unreadable stream event")
    ]
