"""StreamDecoder: the recorded and composed Gemini SSE fixtures -> exact canonical event lists."""

from __future__ import annotations

import itertools

import orjson

from apipod.dialects.gemini import StreamDecoder
from apipod.domain.chat import FinishReason, Usage
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


def sse_payloads(raw: bytes) -> list[bytes]:
    """``data:`` payloads of an SSE body framed with ``\\r\\n`` or ``\\n`` line endings."""
    lines = raw.replace(b"\r\n", b"\n").split(b"\n")
    return [line[6:] if line.startswith(b"data: ") else line[5:] for line in lines if line.startswith(b"data:")]


def decode(name: str) -> list[StreamEvent]:
    counter = itertools.count(1)
    decoder = StreamDecoder(ids=lambda: f"call_{next(counter)}")
    events: list[StreamEvent] = []
    for payload in sse_payloads(fixture(name).read_bytes()):
        events.extend(decoder.feed(None, payload))
    events.extend(decoder.close())
    assert decoder.close() == []
    return events


def test_function_call_with_thought_signature() -> None:
    raw = fixture("gemini/stream_function_call_thought_signature.sse").read_bytes()
    assert raw.count(b"\r\n\r\n") == 2
    signature = orjson.loads(sse_payloads(raw)[0])["candidates"][0]["content"]["parts"][0]["thoughtSignature"]
    assert signature.startswith("EpEgCo4gAb4+9vvWwdN+NkNiCCwrqvFI8uf9")
    usage = Usage(input_tokens=29, output_tokens=819, reasoning_tokens=804)
    assert decode("gemini/stream_function_call_thought_signature.sse") == [
        MessageStarted(id="QHiLaa6LBrb8vdIPoNztsAg", model="gemini-3-pro-preview", usage=usage),
        ToolCallStarted(key=0, id="call_1", name="weather", signature=signature),
        ToolCallDelta(key=0, fragment='{"location":"San Francisco"}'),
        BlockStopped(),
        Finished(FinishReason.TOOL_USE),  # the last usage is the one MessageStarted already carried
    ]


def test_text_with_trailing_thought_signature() -> None:
    raw = fixture("gemini/stream_text_trailing_thought_signature.sse").read_bytes()
    signature = orjson.loads(sse_payloads(raw)[2])["candidates"][0]["content"]["parts"][0]["thoughtSignature"]
    assert signature.startswith("EpAICo0IAb4+9vuku3oDHR5EQSMf") and signature.endswith("kIsk9vG9i114=")
    first = Usage(input_tokens=9, output_tokens=315, reasoning_tokens=302)
    assert decode("gemini/stream_text_trailing_thought_signature.sse") == [
        MessageStarted(id="M3iLaY-AI7zTxN8P3Piw4Qg", model="gemini-3-pro-preview", usage=first),
        TextDelta('There are **3** "r"s in strawberry.\n\n'),
        TextDelta("St**r**awbe**rr**y"),
        ThinkingSignature(signature),
        UsageReported(Usage(input_tokens=9, output_tokens=325, reasoning_tokens=302)),  # once, when it finishes
        Finished(FinishReason.END_TURN),
    ]


def test_thought_summaries_then_text() -> None:
    first = Usage(input_tokens=12, output_tokens=148, reasoning_tokens=148)
    assert decode("gemini/stream_thought_summaries.sse") == [
        MessageStarted(id="c29tZS1yZXNwb25zZS1pZA", model="gemini-2.5-flash", usage=first),
        ThinkingDelta("**Planning the answer**\n\nThe user asks for the capital of France; answer directly."),
        TextDelta("The capital of France"),
        TextDelta(" is Paris."),
        UsageReported(Usage(input_tokens=12, output_tokens=156, reasoning_tokens=148)),
        Finished(FinishReason.END_TURN),
    ]


def chunk(parts: list[dict[str, object]], **extra: object) -> bytes:
    return orjson.dumps({"candidates": [{"content": {"role": "model", "parts": parts}, **extra}]})


def test_parallel_calls_in_one_chunk_are_keyed_in_order_and_signed_thoughts() -> None:
    decoder = StreamDecoder(ids=iter(["a", "b"]).__next__)
    events = decoder.feed(
        None,
        chunk(
            [
                {"text": "hmm", "thought": True, "thoughtSignature": "TS"},
                {"functionCall": {"name": "f", "args": {"q": "é"}}, "thoughtSignature": "S1"},
                {"functionCall": {"name": "f", "args": {}}},
            ],
            finishReason="STOP",
        ),
    )
    assert events == [
        MessageStarted(),
        ThinkingDelta("hmm"),
        ThinkingSignature("TS"),
        ToolCallStarted(key=0, id="a", name="f", signature="S1"),
        ToolCallDelta(key=0, fragment='{"q":"é"}'),
        BlockStopped(),
        ToolCallStarted(key=1, id="b", name="f", signature=None),
        ToolCallDelta(key=1, fragment="{}"),
        BlockStopped(),
    ]
    assert decoder.close() == [Finished(FinishReason.TOOL_USE)]


def test_max_tokens_and_blocked_prompt() -> None:
    decoder = StreamDecoder()
    decoder.feed(None, chunk([{"text": "cut"}], finishReason="MAX_TOKENS"))
    assert decoder.close() == [Finished(FinishReason.MAX_TOKENS)]
    blocked = StreamDecoder()
    assert blocked.feed(None, b'{"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}}') == [MessageStarted()]
    assert blocked.close() == [Finished(FinishReason.CONTENT_FILTER)]


def test_in_stream_error_ends_the_stream() -> None:
    decoder = StreamDecoder()
    decoder.feed(None, chunk([{"text": "partial"}]))
    error = b'{"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}'
    assert decoder.feed(None, error) == [
        StreamFailed(kind="overloaded", message="The upstream is overloaded (HTTP 503 UNAVAILABLE).")
    ]
    assert decoder.feed(None, chunk([{"text": "more"}])) == []
    assert decoder.close() == []
    limited = StreamDecoder()
    assert limited.feed(None, b'{"error": {"code": 429, "message": "slow down"}}') == [
        StreamFailed(kind="rate_limited", message="The upstream account's rate limit was hit (HTTP 429).")
    ]


def test_malformed_and_empty_streams() -> None:
    decoder = StreamDecoder()
    assert decoder.feed(None, b"  ") == []
    assert decoder.feed(None, b"{not json") == [
        StreamFailed(kind="upstream", message="The upstream sent a malformed stream chunk.")
    ]
    empty = StreamDecoder()
    assert empty.close() == [StreamFailed(kind="upstream", message="The upstream ended the stream without an answer.")]


def test_a_body_ending_without_a_finish_reason_is_a_failure() -> None:
    decoder = StreamDecoder()
    assert decoder.feed(None, chunk([{"text": "half an ans"}])) == [MessageStarted(), TextDelta("half an ans")]
    assert decoder.close() == [
        StreamFailed(kind="upstream", message="The upstream stream ended before the answer finished.")
    ]


def test_feed_json_takes_parsed_chunks() -> None:
    decoder = StreamDecoder()
    assert decoder.feed_json(orjson.loads(chunk([{"text": "hi"}], finishReason="STOP"))) == [
        MessageStarted(),
        TextDelta("hi"),
    ]
    assert decoder.close() == [Finished(FinishReason.END_TURN)]


def usage_chunk(text: str, output: int, **extra: object) -> bytes:
    body = orjson.loads(chunk([{"text": text}], **extra))
    body["usageMetadata"] = {"promptTokenCount": 7, "candidatesTokenCount": output, "totalTokenCount": 7 + output}
    return orjson.dumps(body)


def test_the_running_usage_is_reported_once_when_the_answer_finishes() -> None:
    decoder = StreamDecoder()
    events = [e for n in range(1, 5) for e in decoder.feed(None, usage_chunk(f"w{n}", n))]
    events += decoder.feed(None, usage_chunk("", 5, finishReason="STOP"))
    assert [e for e in events if isinstance(e, UsageReported)] == [
        UsageReported(Usage(input_tokens=7, output_tokens=5))
    ]
    assert events[0] == MessageStarted(usage=Usage(input_tokens=7, output_tokens=1))
    assert decoder.close() == [Finished(FinishReason.END_TURN)]


def test_a_stream_that_breaks_off_still_reports_its_latest_usage() -> None:
    cut = StreamDecoder()
    cut.feed(None, usage_chunk("one", 1))
    cut.feed(None, usage_chunk(" two", 2))
    assert cut.close() == [
        UsageReported(Usage(input_tokens=7, output_tokens=2)),
        StreamFailed(kind="upstream", message="The upstream stream ended before the answer finished."),
    ]
    failed = StreamDecoder()
    failed.feed(None, usage_chunk("one", 1))
    failed.feed(None, usage_chunk(" two", 3))
    error = b'{"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}'
    assert failed.feed(None, error) == [
        UsageReported(Usage(input_tokens=7, output_tokens=3)),
        StreamFailed(kind="overloaded", message="The upstream is overloaded (HTTP 503 UNAVAILABLE)."),
    ]
