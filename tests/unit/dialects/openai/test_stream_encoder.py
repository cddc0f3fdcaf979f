"""StreamEncoder: exact frame sequences, and the official SDK reading what it emits."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpx2
import openai
import pytest

from apipod.dialects.openai import StreamEncoder
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
from tests.unit.dialects.openai.sse import chunks, decode_fixture

HEAD = {"id": "chatcmpl-abc", "object": "chat.completion.chunk", "created": 1700000000, "model": "my-alias"}


def encode(events: Iterable[StreamEvent], *, include_usage: bool = True) -> list[bytes]:
    encoder = StreamEncoder(
        model="my-alias", message_id="chatcmpl-abc", created=1700000000, include_usage=include_usage
    )
    return [frame for event in events for frame in encoder.encode(event)]


def delta(payload: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {**HEAD, "choices": [{"index": 0, "delta": payload, "finish_reason": finish}]}


ROLE = delta({"role": "assistant", "content": ""})

TEXT_EVENTS: list[StreamEvent] = [
    MessageStarted(id="upstream-id", model="gpt-4o", usage=Usage(input_tokens=14)),
    TextDelta("Hello"),
    TextDelta(""),
    TextDelta(" world"),
    UsageReported(Usage(output_tokens=2)),
    Finished(FinishReason.END_TURN),
]


def test_text_frames() -> None:
    assert chunks(encode(TEXT_EVENTS)) == [
        ROLE,
        delta({"content": "Hello"}),
        delta({"content": " world"}),
        delta({}, "stop"),
        {
            **HEAD,
            "choices": [],
            "usage": {
                "prompt_tokens": 14,
                "completion_tokens": 2,
                "total_tokens": 16,
                "prompt_tokens_details": {"cached_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0},
            },
        },
        "[DONE]",
    ]


def test_without_include_usage_there_is_no_usage_chunk() -> None:
    assert chunks(encode(TEXT_EVENTS, include_usage=False))[-2:] == [delta({}, "stop"), "[DONE]"]


def test_parallel_tool_calls_use_ordinals_not_keys() -> None:
    events: list[StreamEvent] = [
        MessageStarted(),
        TextDelta("Let me look."),
        BlockStopped(),
        ToolCallStarted(key=7, id="toolu_a", name="get_weather", signature="sig-a"),
        ToolCallDelta(7, '{"city":'),
        ToolCallDelta(7, ""),
        ToolCallDelta(7, '"Paris"}'),
        BlockStopped(),
        ToolCallStarted(key=9, id="toolu_b", name="get_stock_price"),
        ToolCallDelta(9, '{"ticker":"AAPL"}'),
        Finished(FinishReason.END_TURN),  # tool calls seen: reported as tool_calls
    ]
    assert chunks(encode(events, include_usage=False)) == [
        ROLE,
        delta({"content": "Let me look."}),
        delta(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "toolu_a",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                        "extra_content": {"google": {"thought_signature": "sig-a"}},
                    }
                ]
            }
        ),
        delta({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
        delta({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
        delta(
            {
                "tool_calls": [
                    {
                        "index": 1,
                        "id": "toolu_b",
                        "type": "function",
                        "function": {"name": "get_stock_price", "arguments": ""},
                    }
                ]
            }
        ),
        delta({"tool_calls": [{"index": 1, "function": {"arguments": '{"ticker":"AAPL"}'}}]}),
        delta({}, "tool_calls"),
        "[DONE]",
    ]


def test_thinking_goes_out_as_reasoning_content_and_its_signature_as_reasoning_opaque() -> None:
    events: list[StreamEvent] = [
        ThinkingDelta("Let me"),
        ThinkingDelta(""),
        ThinkingDelta(" think."),
        ThinkingSignature("EqQB"),
        RedactedThinking("xyz"),
        TextDelta("Answer."),
        Finished(FinishReason.MAX_TOKENS),
    ]
    assert chunks(encode(events, include_usage=False)) == [
        ROLE,  # sent before the first event even without MessageStarted
        delta({"reasoning_content": "Let me"}),
        delta({"reasoning_content": " think."}),
        delta({"reasoning_opaque": "EqQB"}),
        delta({"content": "Answer."}),
        delta({}, "length"),
        "[DONE]",
    ]


@pytest.mark.parametrize(
    ("kind", "type_", "code"),
    [
        ("rate_limited", "rate_limit_error", "rate_limit_exceeded"),
        ("overloaded", "server_error", "overloaded"),
        ("upstream", "server_error", "upstream_error"),
        ("internal", "server_error", None),
    ],
)
def test_error_mid_stream_is_the_last_frame(kind: str, type_: str, code: str | None) -> None:
    events: list[StreamEvent] = [
        MessageStarted(),
        TextDelta("Hi"),
        StreamFailed(kind, "went wrong"),
        TextDelta("late"),
        Finished(FinishReason.END_TURN),
    ]
    assert chunks(encode(events)) == [
        ROLE,
        delta({"content": "Hi"}),
        {"error": {"message": "went wrong", "type": type_, "param": None, "code": code}},
    ]


def test_nothing_after_done() -> None:
    encoder = StreamEncoder(model="m", message_id="chatcmpl-1", created=1)
    frames = encoder.encode(Finished(FinishReason.END_TURN))
    assert frames[-1] == b"data: [DONE]\n\n"
    assert encoder.encode(TextDelta("x")) == []
    assert encoder.encode(StreamFailed("upstream", "x")) == []


def test_frames_are_compact_json() -> None:
    frames = encode([MessageStarted(), TextDelta("a")])
    assert frames[1] == (
        b'data: {"id":"chatcmpl-abc","object":"chat.completion.chunk","created":1700000000,"model":"my-alias",'
        b'"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}]}\n\n'
    )


def sdk_client(frames: list[bytes]) -> tuple[httpx2.AsyncClient, openai.AsyncOpenAI]:
    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=b"".join(frames))

    http = httpx2.AsyncClient(transport=httpx2.MockTransport(answer))
    return http, openai.AsyncOpenAI(api_key="k", base_url="http://apipod.test/v1", http_client=http, max_retries=0)


async def test_openai_sdk_reads_a_text_stream() -> None:
    http, client = sdk_client(encode(TEXT_EVENTS))
    async with http:
        stream = await client.chat.completions.create(
            model="my-alias", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        received = [chunk async for chunk in stream]
    assert {c.id for c in received} == {"chatcmpl-abc"}
    assert "".join(c.choices[0].delta.content or "" for c in received if c.choices) == "Hello world"
    assert received[-2].choices[0].finish_reason == "stop"
    assert received[-1].choices == []
    assert received[-1].usage is not None
    assert (received[-1].usage.prompt_tokens, received[-1].usage.completion_tokens) == (14, 2)


async def test_openai_sdk_accumulates_a_recorded_tool_call_stream_re_encoded() -> None:
    """Upstream recording -> StreamDecoder -> StreamEncoder -> the SDK's own stream accumulator."""
    events = decode_fixture("openai/chat_stream_parallel_tool_calls_include_usage.sse")
    http, client = sdk_client(encode(events))
    async with (
        http,
        client.chat.completions.stream(model="my-alias", messages=[{"role": "user", "content": "hi"}]) as stream,
    ):
        completion = await stream.get_final_completion()
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    calls = [(c.id, c.function.name, c.function.arguments) for c in choice.message.tool_calls]  # type: ignore[union-attr]
    assert calls == [
        ("call_JMW1whyEaYG438VE1OIflxA2", "GetWeatherArgs", '{"city": "Edinburgh", "country": "GB", "units": "c"}'),
        ("call_DNYTawLBoN8fj3KN6qU9N1Ou", "get_stock_price", '{"ticker": "AAPL", "exchange": "NASDAQ"}'),
    ]
    assert completion.usage is not None
    assert completion.usage.total_tokens == 209


async def test_openai_sdk_raises_on_the_in_stream_error() -> None:
    frames = encode([MessageStarted(), TextDelta("Hi"), StreamFailed("overloaded", "Upstream overloaded")])
    http, client = sdk_client(frames)
    seen: list[str] = []
    async with http:
        stream = await client.chat.completions.create(
            model="my-alias", messages=[{"role": "user", "content": "hi"}], stream=True
        )

        async def read() -> None:
            async for chunk in stream:
                seen.append(chunk.choices[0].delta.content or "")

        with pytest.raises(openai.APIError, match="Upstream overloaded"):
            await read()
    assert seen == ["", "Hi"]
