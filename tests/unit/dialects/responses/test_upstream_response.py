"""decode_response: an upstream's non-streamed Response object -> ChatResult (openai-responses.md §5, §7-§8)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from apipod.dialects.responses.upstream_response import decode_response
from apipod.domain.chat import FinishReason, TextPart, ThinkingPart, ToolUsePart, Usage
from apipod.domain.errors import UpstreamError, UpstreamRateLimitedError
from tests.fixture_path import fixture
from tests.unit.dialects.openai.sse import split_sse


def completed(relative: str) -> dict[str, Any]:
    payload = orjson.loads(split_sse(fixture(relative).read_bytes())[-1][1])
    return payload["response"]  # type: ignore[no-any-return]


def test_reasoning_and_function_call() -> None:
    answer = completed("openai/responses_stream_reasoning_function_call.sse")
    result = decode_response(answer)
    reasoning, call = answer["output"]
    assert result.id == answer["id"]
    assert result.model == "gpt-5.1-codex-max"
    assert result.parts == (
        ThinkingPart("\n\n".join(s["text"] for s in reasoning["summary"]), signature=reasoning["encrypted_content"]),
        ToolUsePart(id=call["call_id"], name="calculator", arguments=call["arguments"]),
    )
    assert result.finish_reason is FinishReason.TOOL_USE
    assert result.usage.input_tokens == 134
    assert result.usage.output_tokens == 28


def test_custom_tool_call_becomes_an_input_argument() -> None:
    result = decode_response(completed("codex-cli/apply_patch_response_1.sse"))
    call = result.parts[-1]
    assert isinstance(call, ToolUsePart)
    assert (call.id, call.name) == ("call_cap0002", "apply_patch")
    assert orjson.loads(call.arguments) == {
        "input": "*** Begin Patch\n*** Add File: hello.txt\n+hello from the model\n*** End Patch\n"
    }
    assert result.finish_reason is FinishReason.TOOL_USE


def test_text_and_usage_details() -> None:
    result = decode_response(
        {
            "id": "resp_1",
            "model": "gpt-5",
            "status": "completed",
            "output": [
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hi"}]},
                {"type": "message", "role": "assistant", "content": [{"type": "refusal", "refusal": "No."}]},
                {"type": "web_search_call", "id": "ws_1", "status": "completed"},
            ],
            "usage": {
                "input_tokens": 3300,
                "input_tokens_details": {"cached_tokens": 3072, "cache_write_tokens": 5},
                "output_tokens": 60,
                "output_tokens_details": {"reasoning_tokens": 18},
                "total_tokens": 3360,
            },
        }
    )
    assert result.parts == (TextPart("Hi"), TextPart("No."))
    assert result.finish_reason is FinishReason.END_TURN
    assert result.usage == Usage(
        input_tokens=3300,
        output_tokens=60,
        cached_input_tokens=3072,
        cache_creation_input_tokens=5,
        reasoning_tokens=18,
    )


def test_incomplete_is_a_cut_off() -> None:
    result = decode_response(
        {"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}, "output": []}
    )
    assert result.finish_reason is FinishReason.MAX_TOKENS
    assert result.parts == ()


def test_lenient_about_wrong_types() -> None:
    result = decode_response({"id": 5, "model": None, "output": [1, {"type": "function_call", "arguments": 3}]})
    assert result.id == ""
    assert result.parts == (ToolUsePart(id="", name="", arguments="{}"),)


@pytest.mark.parametrize(
    ("code", "error"), [("rate_limit_exceeded", UpstreamRateLimitedError), ("server_error", UpstreamError)]
)
def test_failed_response_raises_by_code(code: str, error: type[UpstreamError]) -> None:
    with pytest.raises(error) as caught:
        decode_response({"status": "failed", "error": {"code": code, "message": "details"}, "output": []})
    assert caught.value.detail == "details"
    assert code in caught.value.message
