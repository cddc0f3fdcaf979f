"""Non-streamed answers: decode_response on recorded OpenAI answers, encode_response read by the SDK."""

from __future__ import annotations

from typing import Any

import httpx2
import openai
import orjson
import pytest

from apipod.dialects.openai import decode_response, encode_response
from apipod.domain.chat import ChatResult, FinishReason, TextPart, ThinkingPart, ToolUsePart, Usage
from apipod.domain.errors import UpstreamError
from tests.fixture_path import fixture


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(fixture(f"openai/{name}").read_bytes())
    return data


def test_decode_text_answer() -> None:
    result = decode_response(load("chat_completion_text.json"))
    assert result.id == "chatcmpl-ABfvaueLEMLNYbT8YzpJxsmiQ6HSY"
    assert result.model == "gpt-4o-2024-08-06"
    assert result.parts == (
        TextPart(
            "I'm unable to provide real-time weather updates. To get the current weather in San Francisco, I "
            "recommend checking a reliable weather website or app like the Weather Channel or a local news station."
        ),
    )
    assert result.finish_reason is FinishReason.END_TURN
    assert result.usage == Usage(input_tokens=14, output_tokens=37)


def test_decode_parallel_tool_calls() -> None:
    result = decode_response(load("chat_completion_parallel_tool_calls.json"))
    assert result.id == "chatcmpl-ABfvyvfNWKcl7Ohqos4UFrmMs1v4C"
    assert result.parts == (
        ToolUsePart(
            "call_fdNz3vOBKYgOIpMdWotB9MjY",
            "GetWeatherArgs",
            '{"city": "Edinburgh", "country": "GB", "units": "c"}',
        ),
        ToolUsePart("call_h1DWI1POMJLb0KwIyQHWXD4p", "get_stock_price", '{"ticker": "AAPL", "exchange": "NASDAQ"}'),
    )
    assert result.finish_reason is FinishReason.TOOL_USE
    assert result.usage == Usage(input_tokens=149, output_tokens=60)


def test_decode_finish_length() -> None:
    result = decode_response(load("chat_completion_finish_length.json"))
    assert result.id == "chatcmpl-ABfvvX7eB1KsfeZj8VcF3z7G7SbaA"
    assert result.parts == (TextPart('{"'),)
    assert result.finish_reason is FinishReason.MAX_TOKENS
    assert result.usage == Usage(input_tokens=79, output_tokens=1)


def test_decode_vendor_reasoning_cached_usage_and_signatures() -> None:
    body = {
        "id": "gen-1",
        "model": "deepseek-reasoner",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "reasoning_text": "thinking...",
                    "reasoning_opaque": "opaque-state",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "f", "arguments": ""},
                            "extra_content": {"google": {"thought_signature": "CiQB"}},
                        }
                    ],
                },
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 100,
            "completion_tokens": 50,
            "total_tokens": 150,
            "prompt_tokens_details": {"cached_tokens": 80},
            "completion_tokens_details": {"reasoning_tokens": 30},
        },
    }
    result = decode_response(body)
    assert result.parts == (
        ThinkingPart("thinking...", signature="opaque-state"),
        ToolUsePart("call_1", "f", "{}", signature="CiQB"),
    )
    assert result.finish_reason is FinishReason.TOOL_USE  # a tool call wins over "stop"
    assert result.usage == Usage(input_tokens=100, output_tokens=50, cached_input_tokens=80, reasoning_tokens=30)


def test_decode_tolerates_odd_shapes() -> None:
    result = decode_response({"choices": [], "usage": None, "id": 5})
    assert result == ChatResult(id="", model="", parts=())
    weird = decode_response(
        {"choices": [{"message": {"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}}]}
    )
    assert weird.parts == (TextPart("ab"),)
    assert weird.finish_reason is FinishReason.END_TURN
    assert decode_response({"choices": [{"message": {"content": "x"}, "finish_reason": "eos"}]}).finish_reason is (
        FinishReason.END_TURN
    )


def test_decode_error_body_sent_with_success_status_raises() -> None:
    with pytest.raises(UpstreamError, match="boom"):
        decode_response({"error": {"message": "boom", "type": "server_error"}})


RESULT = ChatResult(
    id="msg_01ABC",
    model="claude-sonnet-4-5",
    parts=(
        ThinkingPart("Let me check.", signature="sig"),
        TextPart("Checking the weather."),
        ToolUsePart("toolu_1", "get_weather", '{"city":"Paris"}', signature="gem-sig"),
    ),
    finish_reason=FinishReason.TOOL_USE,
    usage=Usage(input_tokens=120, output_tokens=40, cached_input_tokens=100, reasoning_tokens=12),
)


def test_encode_response_shape() -> None:
    body = encode_response(RESULT, model="my-alias", created=1700000000)
    assert body == {
        "id": "chatcmpl-msg_01ABC",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "my-alias",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Checking the weather.",
                    "refusal": None,
                    "reasoning_content": "Let me check.",
                    "reasoning_opaque": "sig",
                    "tool_calls": [
                        {
                            "id": "toolu_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                            "extra_content": {"google": {"thought_signature": "gem-sig"}},
                        }
                    ],
                },
                "logprobs": None,
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {
            "prompt_tokens": 120,
            "completion_tokens": 40,
            "total_tokens": 160,
            "prompt_tokens_details": {"cached_tokens": 100},
            "completion_tokens_details": {"reasoning_tokens": 12},
        },
    }


def test_encode_keeps_chatcmpl_ids_and_maps_finish_reasons() -> None:
    def finish(reason: FinishReason, *parts: Any) -> str:
        result = ChatResult(id="chatcmpl-x", model="m", parts=parts, finish_reason=reason)
        body = encode_response(result, model="m", created=1)
        assert body["id"] == "chatcmpl-x"
        reason_text: str = body["choices"][0]["finish_reason"]
        return reason_text

    call = ToolUsePart("c", "f")
    assert finish(FinishReason.END_TURN) == "stop"
    assert finish(FinishReason.STOP_SEQUENCE) == "stop"
    assert finish(FinishReason.PAUSE_TURN) == "stop"
    assert finish(FinishReason.MAX_TOKENS) == "length"
    assert finish(FinishReason.MAX_TOKENS, call) == "length"
    assert finish(FinishReason.CONTENT_FILTER) == "content_filter"
    assert finish(FinishReason.END_TURN, call) == "tool_calls"
    assert finish(FinishReason.TOOL_USE) == "tool_calls"


def test_decode_of_encode_is_the_same_answer() -> None:
    decoded = decode_response(encode_response(RESULT, model="m", created=1))
    assert decoded.parts == RESULT.parts  # the thinking signature comes back as reasoning_opaque
    assert decoded.usage == RESULT.usage
    assert decoded.finish_reason is FinishReason.TOOL_USE


async def test_openai_sdk_parses_encoded_response() -> None:
    body = encode_response(RESULT, model="my-alias", created=1700000000)

    def answer(request: httpx2.Request) -> httpx2.Response:
        assert request.url.path == "/v1/chat/completions"
        return httpx2.Response(200, json=body)

    async with httpx2.AsyncClient(transport=httpx2.MockTransport(answer)) as http:
        client = openai.AsyncOpenAI(api_key="k", base_url="http://apipod.test/v1", http_client=http)
        completion = await client.chat.completions.create(
            model="my-alias", messages=[{"role": "user", "content": "hi"}]
        )
    assert completion.id == "chatcmpl-msg_01ABC"
    assert completion.model == "my-alias"
    message = completion.choices[0].message
    assert message.content == "Checking the weather."
    assert message.tool_calls is not None
    call = message.tool_calls[0]
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert call.function.arguments == '{"city":"Paris"}'
    assert completion.choices[0].finish_reason == "tool_calls"
    assert completion.usage is not None
    assert completion.usage.total_tokens == 160
    assert completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 100
    assert completion.usage.completion_tokens_details is not None
    assert completion.usage.completion_tokens_details.reasoning_tokens == 12
