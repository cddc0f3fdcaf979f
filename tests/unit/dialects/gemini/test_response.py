"""decode_response: recorded and composed Gemini answers -> ChatResult with exact values."""

from __future__ import annotations

import itertools
import re
from typing import Any

import orjson
import pytest

from apipod.dialects.gemini import decode_response, new_call_id
from apipod.domain.chat import FinishReason, ImagePart, TextPart, ThinkingPart, ToolUsePart, Usage
from tests.fixture_path import fixture


def ids() -> Any:
    counter = itertools.count(1)
    return lambda: f"call_{next(counter)}"


def candidate(parts: list[dict[str, Any]], finish: str | None = "STOP", **extra: Any) -> dict[str, Any]:
    cand: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        cand["finishReason"] = finish
    return {"candidates": [cand], **extra}


def test_recorded_function_call_with_thought_signature() -> None:
    body = orjson.loads(fixture("gemini/response_function_call_thought_signature.json").read_bytes())
    result = decode_response(body, ids=ids())
    assert result.id == "JniLacKqGqH0xs0P0O776As"
    assert result.model == "gemini-3-pro-preview"
    assert result.parts == (
        ToolUsePart(
            id="call_1",
            name="weather",
            arguments='{"location":"San Francisco"}',
            signature="Eqo+Cqc+Ab4+9vtgONaaz6qwy6WXdp7gCd2w0X+Wz2gaBgY0Gv6A12JKo0y5vQwf9YQFyhMbKr1E9m17VT6HXd7jXzjaGYaE",
        ),
    )
    assert result.finish_reason is FinishReason.TOOL_USE  # Gemini said STOP
    assert result.usage == Usage(input_tokens=29, output_tokens=1816, reasoning_tokens=1801)


def test_thoughts_text_and_turn_signature() -> None:
    body = candidate(
        [
            {"text": "**Plan**", "thought": True},
            {"text": " more", "thought": True, "thoughtSignature": "T1"},
            {"text": "Hello"},
            {"text": " world", "thoughtSignature": "TURN"},
            {"text": ""},
        ],
        responseId="r1",
        usageMetadata={
            "promptTokenCount": 100,
            "cachedContentTokenCount": 60,
            "candidatesTokenCount": 5,
            "thoughtsTokenCount": 20,
            "totalTokenCount": 125,
        },
    )
    result = decode_response(body)
    assert result.parts == (ThinkingPart("**Plan** more", "T1"), TextPart("Hello world"), ThinkingPart("", "TURN"))
    assert result.finish_reason is FinishReason.END_TURN
    assert result.usage == Usage(input_tokens=100, output_tokens=25, cached_input_tokens=60, reasoning_tokens=20)


def test_parallel_calls_of_one_function_get_distinct_ids_and_upstream_ids_are_kept() -> None:
    body = candidate(
        [
            {"functionCall": {"name": "get", "args": {"n": 1}}, "thoughtSignature": "S"},
            {"functionCall": {"name": "get", "args": {"n": 2}}},
            {"functionCall": {"id": "toolu_vrtx_1", "name": "get"}},
        ]
    )
    parts = decode_response(body).parts
    assert all(isinstance(p, ToolUsePart) for p in parts)
    calls = [p for p in parts if isinstance(p, ToolUsePart)]
    assert [c.arguments for c in calls] == ['{"n":1}', '{"n":2}', "{}"]
    assert [c.signature for c in calls] == ["S", None, None]
    assert calls[2].id == "toolu_vrtx_1"
    assert calls[0].id != calls[1].id
    assert all(re.fullmatch(r"call_[A-Za-z0-9]{24}", c.id) for c in calls[:2])
    assert re.fullmatch(r"call_[A-Za-z0-9]{24}", new_call_id())


def test_rewritten_tool_names_are_restored() -> None:
    body = candidate([{"functionCall": {"name": "mcp_search", "args": {}}}])
    assert decode_response(body, ids=ids(), names={"mcp_search": "mcp/search"}).parts == (
        ToolUsePart("call_1", "mcp/search", "{}"),
    )


@pytest.mark.parametrize(
    ("finish", "with_call", "expected"),
    [
        ("STOP", False, FinishReason.END_TURN),
        ("MAX_TOKENS", False, FinishReason.MAX_TOKENS),
        ("MAX_TOKENS", True, FinishReason.MAX_TOKENS),
        ("SAFETY", False, FinishReason.CONTENT_FILTER),
        ("RECITATION", True, FinishReason.CONTENT_FILTER),
        ("PROHIBITED_CONTENT", False, FinishReason.CONTENT_FILTER),
        ("MALFORMED_FUNCTION_CALL", False, FinishReason.END_TURN),
        ("OTHER", True, FinishReason.TOOL_USE),
        (None, False, FinishReason.END_TURN),
    ],
)
def test_finish_reasons(finish: str | None, with_call: bool, expected: FinishReason) -> None:
    parts: list[dict[str, Any]] = [{"text": "x"}]
    if with_call:
        parts.append({"functionCall": {"name": "f", "args": {}}})
    assert decode_response(candidate(parts, finish)).finish_reason is expected


def test_blocked_prompt_is_a_content_filter_with_no_content() -> None:
    body = {
        "promptFeedback": {"blockReason": "SAFETY", "safetyRatings": []},
        "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7},
    }
    result = decode_response(body)
    assert result.parts == ()
    assert result.finish_reason is FinishReason.CONTENT_FILTER
    assert result.usage == Usage(input_tokens=7)


def test_safety_stop_without_content_and_image_output() -> None:
    assert decode_response({"candidates": [{"finishReason": "SAFETY"}]}).finish_reason is FinishReason.CONTENT_FILTER
    image = decode_response(candidate([{"inlineData": {"mimeType": "image/png", "data": "QUJD"}}]))
    assert image.parts == (ImagePart(media_type="image/png", data="QUJD"),)
