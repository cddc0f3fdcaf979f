"""ChatResult -> GenerateContentResponse, checked by parsing it with the official google-genai SDK types, and the
round trip a Gemini client makes: the model turn it received comes back and decodes to the same parts."""

from __future__ import annotations

import base64
from typing import Any

import orjson
from google.genai import types

from apipod.dialects.gemini import decode_client_request, encode_client_response
from apipod.domain.chat import (
    ChatResult,
    FinishReason,
    Part,
    RedactedThinkingPart,
    Role,
    TextPart,
    ThinkingPart,
    ToolUsePart,
    Usage,
)

SIGNATURE = base64.b64encode(b"opaque signature bytes").decode()
THOUGHT_SIGNATURE = base64.b64encode(b"thought signature").decode()


def encode(result: ChatResult) -> dict[str, Any]:
    body = encode_client_response(result, model="gemini-3-pro-preview", response_id="resp-1")
    orjson.dumps(body)  # plain JSON
    return body


def sdk(body: dict[str, Any]) -> types.GenerateContentResponse:
    return types.GenerateContentResponse._from_response(response=body, kwargs={})


def result(*parts: Part, reason: FinishReason = FinishReason.END_TURN, usage: Usage | None = None) -> ChatResult:
    return ChatResult(id="r", model="upstream-model", parts=parts, finish_reason=reason, usage=usage or Usage())


def test_text_answer_parses_with_the_sdk() -> None:
    usage = Usage(input_tokens=100, output_tokens=30, cached_input_tokens=40, reasoning_tokens=10)
    body = encode(result(TextPart("Hello"), usage=usage))
    parsed = sdk(body)
    assert parsed.text == "Hello"
    assert parsed.response_id == "resp-1"
    assert parsed.model_version == "gemini-3-pro-preview"
    candidate = parsed.candidates[0]  # type: ignore[index]
    assert candidate.finish_reason == types.FinishReason.STOP
    assert candidate.index == 0
    assert candidate.content.role == "model"  # type: ignore[union-attr]
    meta = parsed.usage_metadata
    assert meta is not None
    assert (meta.prompt_token_count, meta.candidates_token_count, meta.thoughts_token_count) == (100, 20, 10)
    assert (meta.cached_content_token_count, meta.total_token_count) == (40, 130)


def test_zero_thought_and_cache_counts_are_left_out() -> None:
    body = encode(result(TextPart("x"), usage=Usage(input_tokens=5, output_tokens=2)))
    assert body["usageMetadata"] == {"promptTokenCount": 5, "candidatesTokenCount": 2, "totalTokenCount": 7}


def test_thinking_and_a_signed_call() -> None:
    body = encode(
        result(
            ThinkingPart("Checking the weather", THOUGHT_SIGNATURE),
            ToolUsePart(id="call_1", name="weather", arguments='{"city":"Paris"}', signature=SIGNATURE),
            reason=FinishReason.TOOL_USE,
        )
    )
    assert body["candidates"][0]["content"]["parts"] == [
        {"text": "Checking the weather", "thought": True, "thoughtSignature": THOUGHT_SIGNATURE},
        {"functionCall": {"id": "call_1", "name": "weather", "args": {"city": "Paris"}}, "thoughtSignature": SIGNATURE},
    ]
    parsed = sdk(body)
    assert body["candidates"][0]["finishReason"] == "STOP"
    (call,) = parsed.function_calls or []
    assert (call.id, call.name, call.args) == ("call_1", "weather", {"city": "Paris"})
    parts = parsed.candidates[0].content.parts  # type: ignore[index, union-attr]
    assert parts[0].thought is True  # type: ignore[index]
    assert parts[1].thought_signature == b"opaque signature bytes"  # type: ignore[index]


def test_unparsable_arguments_become_an_empty_object() -> None:
    body = encode(result(ToolUsePart(id="c", name="f", arguments="not json"), reason=FinishReason.TOOL_USE))
    assert body["candidates"][0]["content"]["parts"] == [{"functionCall": {"id": "c", "name": "f", "args": {}}}]


def test_signature_after_text_goes_on_that_text() -> None:
    body = encode(result(TextPart("Hi"), ThinkingPart("", SIGNATURE)))
    assert body["candidates"][0]["content"]["parts"] == [{"text": "Hi", "thoughtSignature": SIGNATURE}]
    body = encode(result(ThinkingPart("", SIGNATURE), TextPart("Hi")))
    assert body["candidates"][0]["content"]["parts"] == [{"text": "", "thoughtSignature": SIGNATURE}, {"text": "Hi"}]


def test_finish_reasons() -> None:
    expected = {
        FinishReason.END_TURN: "STOP",
        FinishReason.TOOL_USE: "STOP",
        FinishReason.STOP_SEQUENCE: "STOP",
        FinishReason.PAUSE_TURN: "STOP",
        FinishReason.MAX_TOKENS: "MAX_TOKENS",
        FinishReason.CONTENT_FILTER: "SAFETY",
    }
    for reason, wire in expected.items():
        body = encode(result(TextPart("x"), reason=reason))
        assert body["candidates"][0]["finishReason"] == wire
        assert sdk(body).candidates[0].finish_reason == types.FinishReason(wire)  # type: ignore[index]


def test_an_empty_answer_still_has_one_part() -> None:
    for parts in ((), (RedactedThinkingPart("x"),), (TextPart(""),)):
        body = encode(result(*parts))
        assert body["candidates"][0]["content"]["parts"] == [{"text": ""}]
        assert sdk(body).candidates[0].content.parts[0].text == ""  # type: ignore[index, union-attr]


def test_a_json_answer_is_the_text() -> None:
    text = '{"complexity_reasoning": "trivial", "complexity_score": 5}'
    parsed = sdk(encode(result(TextPart(text))))
    assert orjson.loads(parsed.text or "") == {"complexity_reasoning": "trivial", "complexity_score": 5}


def test_round_trip_through_the_client() -> None:
    """The model turn the client got is sent back in its history and decodes to the same canonical parts."""
    parts: tuple[Part, ...] = (
        ThinkingPart("Let me look", THOUGHT_SIGNATURE),
        TextPart("Reading it."),
        ThinkingPart("", SIGNATURE),
        ToolUsePart(id="call_9", name="read_file", arguments='{"file_path":"a.txt"}', signature=SIGNATURE),
        ToolUsePart(id="call_10", name="read_file", arguments='{"file_path":"b.txt"}'),
    )
    body = encode(result(*parts, reason=FinishReason.TOOL_USE))
    turn = body["candidates"][0]["content"]
    history = {
        "contents": [
            {"role": "user", "parts": [{"text": "read both"}]},
            turn,
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"id": "call_9", "name": "read_file", "response": {"output": "A"}}},
                    {"functionResponse": {"id": "call_10", "name": "read_file", "response": {"output": "B"}}},
                ],
            },
        ]
    }
    request = decode_client_request(orjson.loads(orjson.dumps(history)), model="m", stream=True, headers={})
    assistant = request.messages[1]
    assert assistant.role is Role.ASSISTANT
    assert assistant.parts == parts
    assert [p.tool_use_id for p in request.messages[2].parts] == ["call_9", "call_10"]  # type: ignore[union-attr]
