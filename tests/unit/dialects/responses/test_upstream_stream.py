"""The upstream Responses StreamDecoder on recorded OpenAI streams, on the streams Codex accepted, and on the
lenient cases of docs/protocols/openai-responses.md §6."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from apipod.dialects.responses.upstream_response import decode_response
from apipod.dialects.responses.upstream_stream import StreamDecoder
from apipod.domain.chat import FinishReason, Part, TextPart, ThinkingPart, ToolUsePart
from apipod.domain.stream import (
    BlockStopped,
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
from tests.fixture_path import fixture
from tests.unit.dialects.openai.sse import split_sse

CODEX_STREAMS = sorted(p.name for p in fixture("codex-cli").glob("*_response*.sse"))


def decode(raw: bytes, *, close: bool = True) -> list[StreamEvent]:
    decoder = StreamDecoder()
    events: list[StreamEvent] = []
    for name, data in split_sse(raw):
        events.extend(decoder.feed(name, data))
    if close:
        events.extend(decoder.close())
    return events


def frames(*payloads: dict[str, Any]) -> bytes:
    return b"".join(b"event: " + p["type"].encode() + b"\ndata: " + orjson.dumps(p) + b"\n\n" for p in payloads)


def terminal(path: Path) -> dict[str, Any]:
    """The Response object of a recorded stream's terminal event."""
    last = split_sse(path.read_bytes())[-1][1]
    payload = orjson.loads(last)
    assert payload["type"] in ("response.completed", "response.incomplete", "response.failed")
    return payload["response"]  # type: ignore[no-any-return]


def assemble(events: list[StreamEvent]) -> tuple[Part, ...]:
    """The canonical parts a stream's events build, the way a client encoder would (one part per block)."""
    parts: list[Part] = []
    text: list[str] = []
    thinking: list[str] = []
    signature = ""
    calls: dict[int, list[str]] = {}
    started: dict[int, ToolCallStarted] = {}

    def flush() -> None:
        nonlocal signature
        if thinking or signature:
            parts.append(ThinkingPart("".join(thinking), signature=signature))
        if text:
            parts.append(TextPart("".join(text)))
        for key, call in started.items():
            parts.append(ToolUsePart(id=call.id, name=call.name, arguments="".join(calls[key]) or "{}"))
        text.clear(), thinking.clear(), started.clear(), calls.clear()
        signature = ""

    for event in events:
        if isinstance(event, TextDelta):
            text.append(event.text)
        elif isinstance(event, ThinkingDelta):
            thinking.append(event.text)
        elif isinstance(event, ThinkingSignature):
            signature = event.signature
        elif isinstance(event, ToolCallStarted):
            started[event.key] = event
            calls[event.key] = []
        elif isinstance(event, ToolCallDelta):
            calls[event.key].append(event.fragment)
        elif isinstance(event, BlockStopped | Finished):
            flush()
    return tuple(parts)


def test_reasoning_then_function_call_recorded_from_openai() -> None:
    path = fixture("openai/responses_stream_reasoning_function_call.sse")
    events = decode(path.read_bytes())
    response = terminal(path)
    assert events[0] == MessageStarted(id=response["id"], model="gpt-5.1-codex-max")
    reasoning, call = response["output"]
    thinking = "".join(e.text for e in events if isinstance(e, ThinkingDelta))
    assert thinking == "\n\n".join(s["text"] for s in reasoning["summary"])
    # the value to replay is the one of output_item.done, not the one output_item.added carried (OpenAI encrypts
    # anew each time: added, done and completed all hold different blobs)
    done = [
        orjson.loads(data)["item"]
        for _, data in split_sse(path.read_bytes())
        if b'"response.output_item.done"' in data and b'"reasoning"' in data
    ]
    assert [e.signature for e in events if isinstance(e, ThinkingSignature)] == [done[0]["encrypted_content"]]
    assert ToolCallStarted(key=0, id=call["call_id"], name="calculator") in events
    assert "".join(e.fragment for e in events if isinstance(e, ToolCallDelta)) == call["arguments"]
    assert isinstance(events[-2], UsageReported)
    assert (events[-2].usage.input_tokens, events[-2].usage.output_tokens) == (134, 28)
    assert events[-1] == Finished(FinishReason.TOOL_USE)


def test_usage_comes_from_the_terminal_response() -> None:
    path = fixture("openai/responses_stream_reasoning_function_call.sse")
    usage = terminal(path)["usage"]
    reported = [e for e in decode(path.read_bytes()) if isinstance(e, UsageReported)]
    assert len(reported) == 1
    assert reported[0].usage.input_tokens == usage["input_tokens"]
    assert reported[0].usage.output_tokens == usage["output_tokens"]
    assert reported[0].usage.reasoning_tokens == usage["output_tokens_details"]["reasoning_tokens"]


def test_error_event_then_failed_ends_once_as_a_spent_quota() -> None:
    events = decode(fixture("openai/responses_stream_error_then_failed.sse").read_bytes())
    failures = [e for e in events if isinstance(e, StreamFailed)]
    assert len(failures) == 1
    assert failures[0].kind == "rate_limited"
    assert "insufficient_quota" in failures[0].message
    assert not any(isinstance(e, Finished) for e in events)
    assert events[-1] is failures[0]


@pytest.mark.parametrize("name", CODEX_STREAMS)
def test_codex_streams_build_what_the_terminal_response_holds(name: str) -> None:
    path = fixture(f"codex-cli/{name}")
    events = decode(path.read_bytes())
    expected = decode_response(terminal(path))
    assert isinstance(events[0], MessageStarted)
    assert events[0].id == expected.id
    assert assemble(events) == expected.parts
    assert events[-1] == Finished(expected.finish_reason)
    assert sum(isinstance(e, StreamFailed) for e in events) == 0


def test_codex_text_stream() -> None:
    events = decode(fixture("codex-cli/text_response.sse").read_bytes())
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Hello! How can I help you today?"
    assert next(e for e in events if isinstance(e, UsageReported)).usage.input_tokens == 2345
    assert events[-1] == Finished(FinishReason.END_TURN)


def test_custom_tool_call_streams_its_input_as_json_arguments() -> None:
    events = decode(fixture("codex-cli/apply_patch_response_1.sse").read_bytes())
    started = [e for e in events if isinstance(e, ToolCallStarted)]
    assert started == [ToolCallStarted(key=0, id="call_cap0002", name="apply_patch")]
    fragments = [e.fragment for e in events if isinstance(e, ToolCallDelta)]
    assert len(fragments) > 2  # streamed as it came, not buffered
    assert orjson.loads("".join(fragments)) == {
        "input": "*** Begin Patch\n*** Add File: hello.txt\n+hello from the model\n*** End Patch\n"
    }
    assert events[-1] == Finished(FinishReason.TOOL_USE)


def test_custom_input_with_quotes_and_control_characters_stays_valid_json() -> None:
    tricky = 'say "hi"\\n\t\x01 é'
    raw = frames(
        {"type": "response.created", "response": {"id": "resp_1", "model": "m"}},
        {"type": "response.output_item.added", "output_index": 0,
         "item": {"type": "custom_tool_call", "call_id": "call_1", "name": "apply_patch", "input": ""}},
        {"type": "response.custom_tool_call_input.delta", "output_index": 0, "delta": tricky[:5]},
        {"type": "response.custom_tool_call_input.delta", "output_index": 0, "delta": tricky[5:]},
        {"type": "response.output_item.done", "output_index": 0,
         "item": {"type": "custom_tool_call", "call_id": "call_1", "name": "apply_patch", "input": tricky}},
        {"type": "response.completed", "response": {"id": "resp_1", "status": "completed"}},
    )  # fmt: skip
    events = decode(raw)
    assert orjson.loads("".join(e.fragment for e in events if isinstance(e, ToolCallDelta))) == {"input": tricky}


def test_items_given_only_whole_at_done() -> None:
    raw = frames(
        {"type": "response.created", "response": {"id": "resp_1", "model": "m"}},
        {"type": "response.output_item.done", "output_index": 0,
         "item": {"type": "reasoning", "summary": [{"type": "summary_text", "text": "a"},
                                                   {"type": "summary_text", "text": "b"}],
                  "encrypted_content": "enc"}},
        {"type": "response.output_item.done", "output_index": 1,
         "item": {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hi"}]}},
        {"type": "response.output_item.done", "output_index": 2,
         "item": {"type": "function_call", "call_id": "call_9", "name": "f", "arguments": "{\"x\":1}"}},
        {"type": "response.completed", "response": {"id": "resp_1", "status": "completed"}},
    )  # fmt: skip
    events = decode(raw)
    assert assemble(events) == (
        ThinkingPart("a\n\nb", signature="enc"),
        TextPart("Hi"),
        ToolUsePart(id="call_9", name="f", arguments='{"x":1}'),
    )
    assert events[-1] == Finished(FinishReason.TOOL_USE)


def test_summary_parts_are_separated_by_a_blank_line() -> None:
    raw = frames(
        {"type": "response.created", "response": {"id": "r", "model": "m"}},
        {"type": "response.output_item.added", "output_index": 0, "item": {"type": "reasoning", "summary": []}},
        {"type": "response.reasoning_summary_part.added", "output_index": 0, "summary_index": 0},
        {"type": "response.reasoning_summary_text.delta", "output_index": 0, "summary_index": 0, "delta": "one"},
        {"type": "response.reasoning_summary_part.added", "output_index": 0, "summary_index": 1},
        {"type": "response.reasoning_summary_text.delta", "output_index": 0, "summary_index": 1, "delta": "two"},
        {"type": "response.output_item.done", "output_index": 0,
         "item": {"type": "reasoning", "summary": [{"type": "summary_text", "text": "one"},
                                                   {"type": "summary_text", "text": "two"}]}},
        {"type": "response.completed", "response": {"status": "completed"}},
    )  # fmt: skip
    events = decode(raw)
    assert "".join(e.text for e in events if isinstance(e, ThinkingDelta)) == "one\n\ntwo"
    assert not any(isinstance(e, ThinkingSignature) for e in events)


def test_namespaced_call_gets_one_flat_name() -> None:
    item = {"type": "function_call", "call_id": "call_1", "name": "close_agent", "namespace": "multi_agent_v1"}
    raw = frames(
        {"type": "response.created", "response": {"id": "r", "model": "m"}},
        {"type": "response.output_item.added", "output_index": 0, "item": {**item, "arguments": ""}},
        {"type": "response.function_call_arguments.delta", "output_index": 0, "delta": "{}"},
        {"type": "response.output_item.done", "output_index": 0, "item": {**item, "arguments": "{}"}},
        {"type": "response.completed", "response": {"status": "completed"}},
    )
    events = decode(raw)
    assert ToolCallStarted(key=0, id="call_1", name="multi_agent_v1__close_agent") in events
    assert [e.fragment for e in events if isinstance(e, ToolCallDelta)] == ["{}"]


@pytest.mark.parametrize(
    ("details", "reason"),
    [
        ({"reason": "max_output_tokens"}, FinishReason.MAX_TOKENS),
        ({"reason": "content_filter"}, FinishReason.CONTENT_FILTER),
        (None, FinishReason.MAX_TOKENS),
    ],
)
def test_incomplete_finishes_with_its_reason(details: object, reason: FinishReason) -> None:
    raw = frames(
        {"type": "response.created", "response": {"id": "r", "model": "m"}},
        {"type": "response.output_text.delta", "output_index": 0, "delta": "par"},
        {"type": "response.incomplete", "response": {"status": "incomplete", "incomplete_details": details}},
    )
    events = decode(raw)
    assert TextDelta("par") in events
    assert events[-1] == Finished(reason)


@pytest.mark.parametrize(
    ("code", "kind"),
    [("rate_limit_exceeded", "rate_limited"), ("server_error", "upstream"), ("context_length_exceeded", "upstream")],
)
def test_failed_response_maps_its_code(code: str, kind: str) -> None:
    raw = frames(
        {"type": "response.created", "response": {"id": "r", "model": "m"}},
        {"type": "response.failed", "response": {"status": "failed", "error": {"code": code, "message": "boom"}}},
    )
    events = decode(raw)
    assert isinstance(events[-1], StreamFailed)
    assert events[-1].kind == kind
    assert events[-1].detail == "boom"


def test_flat_error_event_as_the_sdk_models_it() -> None:
    raw = frames({"type": "error", "code": "rate_limit_exceeded", "message": "slow down", "param": None})
    events = decode(raw)
    assert isinstance(events[0], MessageStarted)
    assert isinstance(events[1], StreamFailed)
    assert events[1].kind == "rate_limited"
    assert len(events) == 2


def test_stream_cut_off_without_a_terminal_event_fails() -> None:
    raw = frames(
        {"type": "response.created", "response": {"id": "r", "model": "m"}},
        {"type": "response.output_text.delta", "output_index": 0, "delta": "Hel"},
    )
    events = decode(raw)
    assert isinstance(events[-1], StreamFailed)
    assert not any(isinstance(e, Finished) for e in events)


def test_nothing_after_the_terminal_event() -> None:
    decoder = StreamDecoder()
    decoder.feed(None, orjson.dumps({"type": "response.created", "response": {"id": "r"}}))
    assert decoder.feed(None, orjson.dumps({"type": "response.completed", "response": {}}))[-1] == Finished(
        FinishReason.END_TURN
    )
    assert decoder.feed(None, orjson.dumps({"type": "response.output_text.delta", "delta": "x"})) == []
    assert decoder.close() == []


def test_malformed_event_fails_the_stream() -> None:
    decoder = StreamDecoder()
    events = decoder.feed("response.created", b"{not json")
    assert len(events) == 1
    assert isinstance(events[0], StreamFailed)
    assert decoder.close() == []


def test_hosted_tool_items_and_keepalives_yield_nothing() -> None:
    decoder = StreamDecoder()
    decoder.feed(None, orjson.dumps({"type": "response.created", "response": {"id": "r"}}))
    item = {"type": "web_search_call", "id": "ws_1", "status": "completed"}
    assert (
        decoder.feed(None, orjson.dumps({"type": "response.output_item.added", "output_index": 0, "item": item})) == []
    )
    assert decoder.feed(None, orjson.dumps({"type": "response.web_search_call.searching", "output_index": 0})) == []
    assert (
        decoder.feed(None, orjson.dumps({"type": "response.output_item.done", "output_index": 0, "item": item})) == []
    )
    assert decoder.feed(None, orjson.dumps({"type": "response.in_progress", "response": {}})) == []
    assert decoder.feed(None, b"  ") == []
