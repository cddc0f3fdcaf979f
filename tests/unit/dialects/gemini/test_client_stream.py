"""Canonical events -> streamGenerateContent chunks, in both framings, read back with the google-genai SDK types
and with apipod's own upstream-side decoder."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
from google.genai import types

from apipod.dialects.gemini import ClientStreamEncoder, StreamDecoder, decode_client_request, stream_error_frame
from apipod.domain.chat import FinishReason, Role, TextPart, ThinkingPart, ToolUsePart, Usage
from apipod.domain.stream import (
    BlockStopped,
    FailureKind,
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

SIGNATURE = base64.b64encode(b"call signature").decode()
THOUGHT_SIGNATURE = base64.b64encode(b"thought signature").decode()

TOOL_TURN: list[StreamEvent] = [
    MessageStarted(id="m", model="x", usage=Usage(input_tokens=50)),
    ThinkingDelta("Let me "),
    ThinkingDelta("check."),
    ThinkingSignature(THOUGHT_SIGNATURE),
    BlockStopped(),
    TextDelta("Reading "),
    TextDelta("files."),
    BlockStopped(),
    ToolCallStarted(key=0, id="call_1", name="read_file", signature=SIGNATURE),
    ToolCallDelta(key=0, fragment='{"file_pa'),
    ToolCallDelta(key=0, fragment='th":"a.txt"}'),
    BlockStopped(),
    RedactedThinking("hidden"),
    ToolCallStarted(key=1, id="call_2", name="read_file"),
    ToolCallDelta(key=1, fragment='{"file_path":"b.txt"}'),
    UsageReported(Usage(input_tokens=50, output_tokens=40, reasoning_tokens=15)),
    Finished(FinishReason.TOOL_USE),
]


def run(events: list[StreamEvent], *, sse: bool) -> list[bytes]:
    encoder = ClientStreamEncoder(model="gemini-3-pro-preview", response_id="resp-1", sse=sse)
    frames: list[bytes] = []
    for event in events:
        frames.extend(encoder.encode(event))
    return frames


def sse_chunks(frames: list[bytes]) -> list[dict[str, Any]]:
    chunks = []
    for frame in frames:
        assert frame.startswith(b"data: ")
        assert frame.endswith(b"\r\n\r\n")
        assert frame.count(b"\r\n\r\n") == 1
        chunks.append(orjson.loads(frame[6:]))
    return chunks


def sdk(chunk: dict[str, Any]) -> types.GenerateContentResponse:
    return types.GenerateContentResponse._from_response(response=chunk, kwargs={})


def parts_of(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [part for chunk in chunks for part in chunk["candidates"][0]["content"]["parts"]]


def test_sse_chunks_carry_only_their_new_part_and_parse_with_the_sdk() -> None:
    chunks = sse_chunks(run(TOOL_TURN, sse=True))
    assert parts_of(chunks) == [
        {"text": "Let me ", "thought": True},
        {"text": "check.", "thought": True},
        {"text": "", "thought": True, "thoughtSignature": THOUGHT_SIGNATURE},
        {"text": "Reading "},
        {"text": "files."},
        {
            "functionCall": {"id": "call_1", "name": "read_file", "args": {"file_path": "a.txt"}},
            "thoughtSignature": SIGNATURE,
        },
        {"functionCall": {"id": "call_2", "name": "read_file", "args": {"file_path": "b.txt"}}},
        {"text": ""},
    ]
    for chunk in chunks[:-1]:
        assert "finishReason" not in chunk["candidates"][0]
        assert "usageMetadata" not in chunk
        parsed = sdk(chunk)
        assert parsed.response_id == "resp-1"
        assert parsed.model_version == "gemini-3-pro-preview"
    last = sdk(chunks[-1])
    assert last.candidates[0].finish_reason == types.FinishReason.STOP  # type: ignore[index]
    meta = last.usage_metadata
    assert meta is not None
    assert (meta.prompt_token_count, meta.candidates_token_count, meta.thoughts_token_count) == (50, 25, 15)
    assert meta.total_token_count == 90


def test_a_call_goes_out_whole_once_its_arguments_are_complete() -> None:
    encoder = ClientStreamEncoder(model="m", response_id="r", sse=True)
    assert encoder.encode(ToolCallStarted(key=0, id="c", name="f")) == []
    assert encoder.encode(ToolCallDelta(key=0, fragment='{"a":')) == []
    assert encoder.encode(ToolCallDelta(key=0, fragment="1}")) == []
    (frame,) = encoder.encode(BlockStopped())
    (part,) = sse_chunks([frame])[0]["candidates"][0]["content"]["parts"]
    assert part == {"functionCall": {"id": "c", "name": "f", "args": {"a": 1}}}


def test_array_form_is_one_json_array() -> None:
    frames = run(TOOL_TURN, sse=False)
    assert frames[0].startswith(b"[{")
    assert frames[-1].endswith(b"}]")
    chunks = orjson.loads(b"".join(frames))
    assert isinstance(chunks, list)
    assert parts_of(chunks) == parts_of(sse_chunks(run(TOOL_TURN, sse=True)))
    for chunk in chunks:
        sdk(chunk)
    # the keep-alive the HTTP layer writes between frames is whitespace: still one JSON array
    assert orjson.loads(b"\r\n".join(frames)) == chunks


@pytest.mark.parametrize("sse", [True, False])
def test_a_stream_with_no_content_still_ends_with_a_valid_chunk(sse: bool) -> None:
    frames = run([MessageStarted(), Finished(FinishReason.END_TURN)], sse=sse)
    chunks = sse_chunks(frames) if sse else orjson.loads(b"".join(frames))
    (chunk,) = chunks
    parsed = sdk(chunk)
    assert parsed.candidates[0].finish_reason == types.FinishReason.STOP  # type: ignore[index]
    assert parsed.candidates[0].content.parts[0].text == ""  # type: ignore[index, union-attr]
    assert chunk["usageMetadata"] == {"promptTokenCount": 0, "candidatesTokenCount": 0, "totalTokenCount": 0}


def test_max_tokens_is_reported() -> None:
    chunks = sse_chunks(run([TextDelta("cut"), Finished(FinishReason.MAX_TOKENS)], sse=True))
    assert chunks[-1]["candidates"][0]["finishReason"] == "MAX_TOKENS"


def test_sse_failure_is_a_bare_error_object_of_its_own() -> None:
    failure = StreamFailed(kind=FailureKind.OVERLOADED, message="The model is overloaded.")
    events: list[StreamEvent] = [
        TextDelta("partial"),
        ToolCallStarted(key=0, id="c", name="f"),
        ToolCallDelta(key=0, fragment='{"a"'),
        failure,
    ]
    frames = run(events, sse=True)
    assert len(frames) == 2  # the text, then the error; the cut-off call is dropped
    assert frames[-1] == stream_error_frame(failure)
    assert orjson.loads(frames[-1]) == {
        "error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}
    }
    assert not frames[-1].startswith(b"data:")


@pytest.mark.parametrize(
    ("kind", "code", "status"),
    [
        (FailureKind.RATE_LIMITED, 429, "RESOURCE_EXHAUSTED"),
        (FailureKind.OVERLOADED, 503, "UNAVAILABLE"),
        (FailureKind.UPSTREAM, 503, "UNAVAILABLE"),
        (FailureKind.INTERNAL, 500, "INTERNAL"),
    ],
)
def test_failure_codes(kind: FailureKind, code: int, status: str) -> None:
    error = orjson.loads(stream_error_frame(StreamFailed(kind=kind, message="m")))["error"]
    assert (error["code"], error["status"]) == (code, status)


def test_array_failure_closes_the_array_with_the_error() -> None:
    failure = StreamFailed(kind=FailureKind.RATE_LIMITED, message="slow down")
    chunks = orjson.loads(b"".join(run([TextDelta("partial"), failure], sse=False)))
    assert chunks[0]["candidates"][0]["content"]["parts"] == [{"text": "partial"}]
    assert chunks[-1] == {"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}}
    assert orjson.loads(b"".join(run([MessageStarted(), failure], sse=False))) == [chunks[-1]]


def test_nothing_after_the_end() -> None:
    encoder = ClientStreamEncoder(model="m", response_id="r", sse=True)
    assert encoder.encode(Finished(FinishReason.END_TURN))
    assert encoder.encode(TextDelta("late")) == []
    assert encoder.encode(StreamFailed(kind=FailureKind.UPSTREAM, message="late")) == []


def test_apipods_own_gemini_decoder_reads_the_stream_back() -> None:
    decoder = StreamDecoder()
    events: list[StreamEvent] = []
    for frame in run(TOOL_TURN, sse=True):
        events.extend(decoder.feed(None, frame[6:].strip()))
    events.extend(decoder.close())
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Reading files."
    assert "".join(e.text for e in events if isinstance(e, ThinkingDelta)) == "Let me check."
    calls = [e for e in events if isinstance(e, ToolCallStarted)]
    assert [(c.id, c.name, c.signature) for c in calls] == [
        ("call_1", "read_file", SIGNATURE),
        ("call_2", "read_file", None),
    ]
    assert events[-1] == Finished(FinishReason.TOOL_USE)


def test_streamed_turn_sent_back_decodes_to_the_canonical_parts() -> None:
    """The client keeps the streamed parts as its model turn; apipod reads them back as the answer's parts."""
    turn = {"role": "model", "parts": parts_of(sse_chunks(run(TOOL_TURN, sse=True)))[:-1]}
    history = {"contents": [{"role": "user", "parts": [{"text": "read both"}]}, turn]}
    request = decode_client_request(history, model="m", stream=True, headers={})
    assistant = request.messages[1]
    assert assistant.role is Role.ASSISTANT
    assert assistant.parts == (
        ThinkingPart("Let me check.", THOUGHT_SIGNATURE),
        TextPart("Reading files."),
        ToolUsePart(id="call_1", name="read_file", arguments='{"file_path":"a.txt"}', signature=SIGNATURE),
        ToolUsePart(id="call_2", name="read_file", arguments='{"file_path":"b.txt"}'),
    )
