from __future__ import annotations

from typing import Any

import orjson

from apipod.dialects.anthropic import PING_FRAME, StreamEncoder
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
from tests.unit.dialects.anthropic.sse import decode_fixture, frames_to_events, split_sse


def run(events: list[StreamEvent], **kwargs: Any) -> list[tuple[str, dict[str, Any]]]:
    encoder = StreamEncoder(model=kwargs.get("model", "claude-client"), message_id="msg_test", created=1)
    frames: list[bytes] = []
    for event in events:
        frames.extend(encoder.encode(event))
    return frames_to_events(frames)


def block_start(index: int, block: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return "content_block_start", {"type": "content_block_start", "index": index, "content_block": block}


def delta(index: int, kind: str, field: str, value: str) -> tuple[str, dict[str, Any]]:
    return "content_block_delta", {"type": "content_block_delta", "index": index, "delta": {"type": kind, field: value}}


def block_stop(index: int) -> tuple[str, dict[str, Any]]:
    return "content_block_stop", {"type": "content_block_stop", "index": index}


def message_start(usage: dict[str, int], model: str = "claude-client") -> tuple[str, dict[str, Any]]:
    message: dict[str, Any] = {
        "id": "msg_test",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage,
    }
    return "message_start", {"type": "message_start", "message": message}


def message_end(
    reason: str, usage: dict[str, int], stop_sequence: str | None = None
) -> list[tuple[str, dict[str, Any]]]:
    return [
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": reason, "stop_sequence": stop_sequence},
                "usage": usage,
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]


def wire_usage(inp: int = 0, out: int = 0, read: int = 0, created: int = 0) -> dict[str, int]:
    return {
        "input_tokens": inp,
        "output_tokens": out,
        "cache_creation_input_tokens": created,
        "cache_read_input_tokens": read,
    }


def test_text_sequence_with_full_usage() -> None:
    events: list[StreamEvent] = [
        MessageStarted("upstream-id", "upstream-model", Usage(input_tokens=120, cached_input_tokens=100)),
        TextDelta("Hel"),
        TextDelta(""),
        TextDelta("lo"),
        UsageReported(Usage(input_tokens=120, output_tokens=7, cached_input_tokens=100, cache_creation_input_tokens=5)),
        Finished(FinishReason.END_TURN),
    ]
    assert run(events) == [
        message_start(wire_usage(inp=20, read=100)),
        block_start(0, {"type": "text", "text": ""}),
        delta(0, "text_delta", "text", "Hel"),
        delta(0, "text_delta", "text", "lo"),
        block_stop(0),
        *message_end("end_turn", wire_usage(inp=15, out=7, read=100, created=5)),
    ]


def test_delta_frame_bytes_are_compact_and_escaped() -> None:
    encoder = StreamEncoder(model="m", message_id="msg_1", created=0)
    frames = encoder.encode(TextDelta('a "quoted"\nline ÷'))
    assert frames[-1] == (
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
        b'"delta":{"type":"text_delta","text":"a \\"quoted\\"\\nline \xc3\xb7"}}\n\n'
    )


def test_thinking_then_signature_then_text() -> None:
    events: list[StreamEvent] = [
        MessageStarted(usage=Usage(input_tokens=10)),
        ThinkingDelta("Let me"),
        ThinkingDelta(" think."),
        ThinkingSignature("sig=="),
        TextDelta("Answer."),
        UsageReported(Usage(output_tokens=30)),
        Finished(FinishReason.END_TURN),
    ]
    assert run(events) == [
        message_start(wire_usage(inp=10)),
        block_start(0, {"type": "thinking", "thinking": "", "signature": ""}),
        delta(0, "thinking_delta", "thinking", "Let me"),
        delta(0, "thinking_delta", "thinking", " think."),
        delta(0, "signature_delta", "signature", "sig=="),
        block_stop(0),
        block_start(1, {"type": "text", "text": ""}),
        delta(1, "text_delta", "text", "Answer."),
        block_stop(1),
        *message_end("end_turn", wire_usage(inp=10, out=30)),
    ]


def test_signature_without_open_thinking_gets_an_empty_thinking_block() -> None:
    events: list[StreamEvent] = [
        TextDelta("x"),
        ThinkingSignature("s"),
        BlockStopped(),
        Finished(FinishReason.END_TURN),
    ]
    assert run(events)[1:-2] == [
        block_start(0, {"type": "text", "text": ""}),
        delta(0, "text_delta", "text", "x"),
        block_stop(0),
        block_start(1, {"type": "thinking", "thinking": "", "signature": ""}),
        delta(1, "signature_delta", "signature", "s"),
        block_stop(1),
    ]


def test_parallel_tool_calls() -> None:
    events: list[StreamEvent] = [
        MessageStarted(),
        ToolCallStarted(0, "toolu_a", "get_weather"),
        ToolCallDelta(0, ""),
        ToolCallDelta(0, '{"city":'),
        ToolCallDelta(0, '"Paris"}'),
        ToolCallStarted(1, "toolu_b", "get_time"),
        ToolCallDelta(1, '{"tz":"CET"}'),
        UsageReported(Usage(input_tokens=149, output_tokens=60)),
        Finished(FinishReason.END_TURN),  # an OpenAI-style "stop" with tool calls still says tool_use
    ]
    assert run(events) == [
        message_start(wire_usage()),
        block_start(0, {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {}}),
        delta(0, "input_json_delta", "partial_json", '{"city":'),
        delta(0, "input_json_delta", "partial_json", '"Paris"}'),
        block_stop(0),
        block_start(1, {"type": "tool_use", "id": "toolu_b", "name": "get_time", "input": {}}),
        delta(1, "input_json_delta", "partial_json", '{"tz":"CET"}'),
        block_stop(1),
        *message_end("tool_use", wire_usage(inp=149, out=60)),
    ]


def test_midstream_error_is_the_last_frame() -> None:
    encoder = StreamEncoder(model="m", message_id="msg_1", created=0)
    frames = encoder.encode(TextDelta("Sure"))
    frames += encoder.encode(StreamFailed("overloaded", "Overloaded"))
    assert frames_to_events(frames)[-1] == (
        "error",
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
    )
    assert [name for name, _ in frames_to_events(frames)] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "error",
    ]
    assert encoder.done
    assert encoder.encode(Finished(FinishReason.END_TURN)) == []
    assert encoder.encode(TextDelta("more")) == []
    assert encoder.ping() == []


def test_failure_kinds() -> None:
    def error_type(kind: str) -> str:
        frames = StreamEncoder(model="m", message_id="msg_1", created=0).encode(StreamFailed(kind, "x"))
        return str(frames_to_events(frames)[0][1]["error"]["type"])

    assert error_type("rate_limited") == "rate_limit_error"
    assert error_type("upstream") == "api_error"
    assert error_type("internal") == "api_error"


def test_interleaved_tool_fragments_end_the_stream_with_an_error() -> None:
    events: list[StreamEvent] = [
        ToolCallStarted(0, "a", "f"),
        ToolCallStarted(1, "b", "g"),
        ToolCallDelta(0, "{}"),
        Finished(FinishReason.TOOL_USE),
    ]
    encoded = run(events)
    assert encoded[-1][0] == "error"
    assert encoded[-1][1]["error"]["type"] == "api_error"


def test_empty_completion_redacted_thinking_and_stop_sequence() -> None:
    assert run([Finished(FinishReason.END_TURN)]) == [
        message_start(wire_usage()),
        *message_end("end_turn", wire_usage()),
    ]
    encoded = run([RedactedThinking("opaque"), TextDelta("ok"), Finished(FinishReason.STOP_SEQUENCE, "###")])
    assert encoded[1:5] == [
        block_start(0, {"type": "redacted_thinking", "data": "opaque"}),
        block_stop(0),
        block_start(1, {"type": "text", "text": ""}),
        delta(1, "text_delta", "text", "ok"),
    ]
    assert encoded[-2][1]["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": "###"}


def test_ping_only_inside_the_message() -> None:
    encoder = StreamEncoder(model="m", message_id="msg_1", created=0)
    assert encoder.ping() == []
    encoder.encode(MessageStarted())
    assert encoder.ping() == [PING_FRAME]
    assert frames_to_events([PING_FRAME]) == [("ping", {"type": "ping"})]


def accumulate(events: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """Replays events the way an Anthropic client builds the final message."""
    message: dict[str, Any] = {}
    for name, payload in events:
        if name == "message_start":
            message = {k: v for k, v in payload["message"].items() if k != "usage"}
            message["content"] = []
        elif name == "content_block_start":
            assert payload["index"] == len(message["content"])
            message["content"].append({k: v for k, v in payload["content_block"].items() if k != "caller"})
            message["content"][-1].pop("signature", None)
        elif name == "content_block_delta":
            block, change = message["content"][payload["index"]], payload["delta"]
            field = {"text_delta": "text", "thinking_delta": "thinking", "signature_delta": "signature"}.get(
                change["type"]
            )
            if field is not None:
                block[field] = block.get(field, "") + change[field]
            else:
                block["partial_json"] = block.get("partial_json", "") + change["partial_json"]
        elif name == "message_delta":
            message["stop_reason"] = payload["delta"]["stop_reason"]
            message["output_tokens"] = payload["usage"]["output_tokens"]
    return message


def names(events: list[tuple[str, dict[str, Any]]]) -> list[str]:
    def empty(payload: dict[str, Any]) -> bool:
        change: dict[str, Any] = payload.get("delta", {})
        return change.get("partial_json") == "" or change.get("thinking") == ""

    return [name for name, payload in events if name != "ping" and not empty(payload)]


def round_trip(name: str) -> tuple[list[tuple[str, dict[str, Any]]], list[tuple[str, dict[str, Any]]]]:
    recorded = frames_to_events(
        b"event: %s\ndata: %s\n\n" % (event.encode(), orjson.dumps(orjson.loads(data)))
        for event, data in split_sse(fixture(f"anthropic/{name}").read_bytes())
        if event is not None
    )
    model = recorded[0][1]["message"]["model"]
    encoder = StreamEncoder(model=model, message_id=recorded[0][1]["message"]["id"], created=0)
    frames = [frame for event in decode_fixture(name) for frame in encoder.encode(event)]
    return recorded, frames_to_events(frames)


def test_round_trip_text_then_tool_use_reproduces_the_event_sequence() -> None:
    recorded, encoded = round_trip("stream_text_then_tool_use.sse")
    assert names(encoded) == names(recorded)
    assert accumulate(encoded) == accumulate(recorded)
    final = accumulate(encoded)
    assert final["content"][1]["partial_json"] == '{"location": "Paris"}'
    assert final["stop_reason"] == "tool_use"
    assert final["output_tokens"] == 65
    assert encoded[-2][1]["usage"] == wire_usage(inp=377, out=65)


def test_round_trip_thinking_keeps_signature_before_stop() -> None:
    recorded, encoded = round_trip("stream_thinking_then_text.sse")
    assert names(encoded) == names(recorded)
    assert accumulate(encoded) == accumulate(recorded)
