"""The official ``anthropic`` SDK must read what the encoders produce, exactly as it reads Anthropic.

The SDK is fed through its HTTP transport seam (``MockTransport``), with no network.
"""

from __future__ import annotations

from collections.abc import Callable

import anthropic
import httpx2 as httpx  # the SDK (2.x) runs on httpx2 and rejects httpx objects
import orjson
import pytest

from apipod.dialects.anthropic import StreamEncoder, encode_error, encode_response
from apipod.domain.chat import ChatResult, FinishReason, TextPart, ThinkingPart, ToolUsePart, Usage
from apipod.domain.stream import (
    Finished,
    MessageStarted,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ThinkingSignature,
    ToolCallDelta,
    ToolCallStarted,
    UsageReported,
)

Handler = Callable[[httpx.Request], httpx.Response]


def client(handler: Handler) -> anthropic.AsyncAnthropic:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return anthropic.AsyncAnthropic(api_key="apk_test", base_url="http://apipod.test", http_client=http, max_retries=0)


async def test_sdk_parses_a_non_streamed_answer() -> None:
    result = ChatResult(
        id="msg_01Abc",
        model="upstream-model",
        parts=(
            ThinkingPart("Need the tool.", "c2lnbmF0dXJl"),
            TextPart("Checking."),
            ToolUsePart("toolu_01X", "get_weather", '{"city":"Paris"}'),
        ),
        finish_reason=FinishReason.TOOL_USE,
        usage=Usage(input_tokens=1200, output_tokens=42, cached_input_tokens=1000, cache_creation_input_tokens=100),
    )
    body = orjson.dumps(encode_response(result, model="cursor-pro-sonnet"))
    sdk = client(lambda request: httpx.Response(200, content=body, headers={"content-type": "application/json"}))

    message = await sdk.messages.create(
        model="cursor-pro-sonnet", max_tokens=1024, messages=[{"role": "user", "content": "weather?"}]
    )

    assert message.id == "msg_01Abc"
    assert message.model == "cursor-pro-sonnet"
    thinking, text, tool = message.content
    assert thinking.type == "thinking"
    assert (thinking.thinking, thinking.signature) == ("Need the tool.", "c2lnbmF0dXJl")
    assert text.type == "text"
    assert text.text == "Checking."
    assert tool.type == "tool_use"
    assert (tool.id, tool.name, tool.input) == ("toolu_01X", "get_weather", {"city": "Paris"})
    assert message.stop_reason == "tool_use"
    assert message.usage.input_tokens == 100
    assert message.usage.cache_read_input_tokens == 1000
    assert message.usage.cache_creation_input_tokens == 100
    assert message.usage.output_tokens == 42


async def test_sdk_accumulates_a_streamed_answer() -> None:
    events: list[StreamEvent] = [
        MessageStarted(usage=Usage(input_tokens=420)),
        ThinkingDelta("User wants the weather; "),
        ThinkingDelta("call the tool."),
        ThinkingSignature("EqQBCgIYAhIM"),
        TextDelta("Checking "),
        TextDelta("Paris."),
        ToolCallStarted(0, "toolu_01X", "get_weather"),
        ToolCallDelta(0, '{"city": "Pa'),
        ToolCallDelta(0, 'ris"}'),
        ToolCallStarted(1, "toolu_01Y", "get_time"),
        UsageReported(Usage(input_tokens=420, output_tokens=87)),
        Finished(FinishReason.TOOL_USE),
    ]
    encoder = StreamEncoder(model="cursor-pro-sonnet", message_id="msg_01A", created=0)
    body = b"".join(frame for event in events for frame in encoder.encode(event))
    sdk = client(lambda request: httpx.Response(200, content=body, headers={"content-type": "text/event-stream"}))

    texts: list[str] = []
    async with sdk.messages.stream(
        model="cursor-pro-sonnet", max_tokens=1024, messages=[{"role": "user", "content": "weather?"}]
    ) as stream:
        async for chunk in stream.text_stream:
            texts.append(chunk)
        final = await stream.get_final_message()

    assert texts == ["Checking ", "Paris."]
    assert final.id == "msg_01A"
    assert final.model == "cursor-pro-sonnet"
    assert [block.type for block in final.content] == ["thinking", "text", "tool_use", "tool_use"]
    thinking, text, weather, clock = final.content
    assert thinking.type == "thinking"
    assert (thinking.thinking, thinking.signature) == ("User wants the weather; call the tool.", "EqQBCgIYAhIM")
    assert text.type == "text"
    assert text.text == "Checking Paris."
    assert weather.type == "tool_use"
    assert (weather.id, weather.name, weather.input) == ("toolu_01X", "get_weather", {"city": "Paris"})
    assert clock.type == "tool_use"
    assert clock.input == {}
    assert final.stop_reason == "tool_use"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (420, 87)


async def test_sdk_raises_the_encoded_error() -> None:
    body = orjson.dumps(encode_error(status=400, kind="invalid_request_error", message="max_tokens: Field required"))
    sdk = client(lambda request: httpx.Response(400, content=body, headers={"content-type": "application/json"}))
    with pytest.raises(anthropic.BadRequestError) as caught:
        await sdk.messages.create(model="m", max_tokens=1, messages=[{"role": "user", "content": "x"}])
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "max_tokens: Field required"},
    }
