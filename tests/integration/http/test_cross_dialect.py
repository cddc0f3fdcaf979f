"""Across dialects, over real sockets: the Anthropic SDK against an OpenAI-compatible upstream and the OpenAI
SDK against an Anthropic-compatible upstream. Each test asserts what the client sees, the translated body
the fake upstream received (docs/protocols/translation.md), and the usage row (what the upstream reported)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from tests.fakes.fake_anthropic import anthropic_frames
from tests.fakes.fake_openai import openai_frames
from tests.fixture_path import fixture
from tests.integration.http.core_support import AN_UPSTREAM_MODEL, OA_UPSTREAM_MODEL, Stack, start_stack

OA_TEXT = (
    "I'm unable to provide real-time weather updates. To get the current weather in San Francisco, I recommend "
    "checking a reliable weather website or app like the Weather Channel or a local news station."
)
OA_STREAM_TEXT = (
    "I'm unable to provide real-time weather updates. To get the current weather in San Francisco, I recommend "
    "checking a reliable weather website or a weather app."
)
THINKING_TEXT = "The previous result was 925. Now I need to divide that by 5.\n\n925 ÷ 5 = 185"
AN_WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
OA_WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from start_stack(tmp_path_factory.mktemp("cross-dialect"))


@pytest.fixture(autouse=True)
def _clean(stack: Stack) -> None:
    stack.reset()


def _assert_usage(
    row: dict[str, Any], *, routed: str, input: int, output: int, cached: int = 0, reasoning: int = 0
) -> None:
    assert row["status"] == "success"
    assert row["routed_model"] == routed
    assert (row["input_tokens"], row["output_tokens"]) == (input, output)
    assert (row["cached_input_tokens"], row["reasoning_tokens"]) == (cached, reasoning)


def _oa_chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-x",
        "object": "chat.completion.chunk",
        "created": 1727346142,
        "model": "deepseek-reasoner",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


def _oa_usage(prompt: int, completion: int, **details: Any) -> dict[str, Any]:
    chunk = {
        "id": "chatcmpl-x",
        "object": "chat.completion.chunk",
        "created": 1727346142,
        "model": "deepseek-reasoner",
        "choices": [],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
    }
    chunk["usage"].update(details)
    return chunk


# == Anthropic client -> OpenAI upstream ======================================================================


def test_anthropic_client_openai_upstream_text(stack: Stack) -> None:
    key, key_id = stack.new_key("oa-plan")
    stack.oa.replay(fixture("openai/chat_completion_text.json"))
    answer = stack.anthropic(key).messages.create(
        model="claude-sonnet-4-6",
        max_tokens=300,
        system="Be brief.",
        stop_sequences=["END"],
        metadata={"user_id": "u-1"},
        extra_body={"temperature": 0.5, "top_k": 40},  # top_k has no OpenAI equivalent: dropped
        messages=[{"role": "user", "content": "What's the weather in San Francisco?"}],
    )
    assert answer.model == "claude-sonnet-4-6"
    assert answer.id.startswith("msg_"), answer.id  # an Anthropic message id (docs/protocols/translation.md §10.8)
    assert [(b.type, getattr(b, "text", None)) for b in answer.content] == [("text", OA_TEXT)]
    assert answer.stop_reason == "end_turn"
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (14, 37)
    assert stack.oa.last.path == "/v1/chat/completions"
    assert stack.oa.last.body == {
        "model": OA_UPSTREAM_MODEL,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What's the weather in San Francisco?"},
        ],
        "max_completion_tokens": 300,
        "temperature": 0.5,
        "stop": ["END"],
        "user": "u-1",
        "stream": False,
    }
    _assert_usage(stack.usage_row(key_id), routed="gpt", input=14, output=37)


def test_anthropic_client_openai_upstream_streamed_text(stack: Stack) -> None:
    key, key_id = stack.new_key("oa-plan")
    stack.oa.replay(fixture("openai/chat_stream_text_include_usage.sse"))
    with stack.anthropic(key).messages.stream(
        model="claude-sonnet-4-6", max_tokens=300, messages=[{"role": "user", "content": "Weather?"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == OA_STREAM_TEXT
    assert [(b.type, getattr(b, "text", None)) for b in final.content] == [("text", OA_STREAM_TEXT)]
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (14, 30)
    sent = stack.oa.last.body
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}
    _assert_usage(stack.usage_row(key_id), routed="gpt", input=14, output=30)


def test_anthropic_client_openai_upstream_streamed_parallel_tool_calls(stack: Stack) -> None:
    key, key_id = stack.new_key("oa-plan")
    stack.oa.replay(fixture("openai/chat_stream_parallel_tool_calls_include_usage.sse"))
    tools = [
        {"name": "GetWeatherArgs", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}},
        {"name": "get_stock_price", "input_schema": {"type": "object", "properties": {"ticker": {"type": "string"}}}},
    ]
    with stack.anthropic(key).messages.stream(
        model="claude-sonnet-4-6",
        max_tokens=300,
        tools=tools,  # type: ignore[arg-type]
        tool_choice={"type": "any"},
        messages=[{"role": "user", "content": "Weather in Edinburgh and AAPL?"}],
    ) as stream:
        pieces = [
            e.delta.partial_json
            for e in stream
            if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
        ]
        final = stream.get_final_message()
    assert len([p for p in pieces if p]) >= 20  # streamed fragment by fragment
    assert [(b.type, b.id, b.name, b.input) for b in final.content if b.type == "tool_use"] == [
        (
            "tool_use",
            "call_JMW1whyEaYG438VE1OIflxA2",
            "GetWeatherArgs",
            {"city": "Edinburgh", "country": "GB", "units": "c"},
        ),
        ("tool_use", "call_DNYTawLBoN8fj3KN6qU9N1Ou", "get_stock_price", {"ticker": "AAPL", "exchange": "NASDAQ"}),
    ]
    assert [b.type for b in final.content] == ["tool_use", "tool_use"]
    assert final.stop_reason == "tool_use"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (149, 60)
    sent = stack.oa.last.body
    assert sent["tools"] == [
        {"type": "function", "function": {"name": t["name"], "parameters": t["input_schema"]}} for t in tools
    ]
    assert sent["tool_choice"] == "required"
    _assert_usage(stack.usage_row(key_id), routed="gpt", input=149, output=60)


def test_anthropic_client_openai_upstream_non_streamed_tool_calls(stack: Stack) -> None:
    key, key_id = stack.new_key("oa-plan")
    stack.oa.replay(fixture("openai/chat_completion_parallel_tool_calls.json"))
    answer = stack.anthropic(key).messages.create(
        model="claude-sonnet-4-6",
        max_tokens=300,
        tools=[AN_WEATHER_TOOL],  # type: ignore[list-item]
        messages=[{"role": "user", "content": "Weather?"}],
    )
    assert [(b.type, b.id, b.name, b.input) for b in answer.content if b.type == "tool_use"] == [
        (
            "tool_use",
            "call_fdNz3vOBKYgOIpMdWotB9MjY",
            "GetWeatherArgs",
            {"city": "Edinburgh", "country": "GB", "units": "c"},
        ),
        ("tool_use", "call_h1DWI1POMJLb0KwIyQHWXD4p", "get_stock_price", {"ticker": "AAPL", "exchange": "NASDAQ"}),
    ]
    assert answer.stop_reason == "tool_use"
    assert stack.oa.last.body["tools"] == [OA_WEATHER_TOOL]
    _assert_usage(stack.usage_row(key_id), routed="gpt", input=149, output=60)


def test_anthropic_client_openai_upstream_reasoning_becomes_thinking(stack: Stack) -> None:
    key, key_id = stack.new_key("oa-plan")
    stack.oa.reply_sse(
        openai_frames(
            [
                _oa_chunk({"role": "assistant", "content": None, "reasoning_content": ""}),
                _oa_chunk({"reasoning_content": "The user asks 2+2."}),
                _oa_chunk({"reasoning_content": " That is 4."}),
                _oa_chunk({"content": "2 + 2 = "}),
                _oa_chunk({"content": "4"}),
                _oa_chunk({}, "stop"),
                _oa_usage(20, 42, completion_tokens_details={"reasoning_tokens": 30}),
            ]
        )
    )
    with stack.anthropic(key).messages.stream(
        model="claude-sonnet-4-6",
        max_tokens=16000,
        thinking={"type": "enabled", "budget_tokens": 8000},
        messages=[{"role": "user", "content": "2+2?"}],
    ) as stream:
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text"]
    thinking, text = final.content
    assert thinking.type == "thinking" and text.type == "text"
    assert thinking.thinking == "The user asks 2+2. That is 4."
    assert thinking.signature == ""  # OpenAI-compatible reasoning has no signature
    assert text.text == "2 + 2 = 4"
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (20, 42)
    sent = stack.oa.last.body
    assert sent["reasoning_effort"] == "medium"  # budget 8000: docs/protocols/translation.md §5.2
    assert "thinking" not in sent
    _assert_usage(stack.usage_row(key_id), routed="gpt", input=20, output=42, reasoning=30)


def test_anthropic_client_openai_upstream_multi_turn_tool_conversation(stack: Stack) -> None:
    key, key_id = stack.new_key("oa-plan")
    stack.oa.replay(fixture("openai/chat_completion_text.json"))
    history = [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Two cities: two calls.", "signature": "c2lnLWFudGhyb3BpYw=="},
                {"type": "text", "text": "Checking both."},
                {"type": "tool_use", "id": "toolu_01ParisCall", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_02RomeCall", "name": "get_weather", "input": {"city": "Rome"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01ParisCall", "content": "18C, cloudy"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_02RomeCall",
                    "content": [{"type": "text", "text": "service down"}],
                    "is_error": True,
                },
                {"type": "text", "text": "Answer in one sentence."},
            ],
        },
    ]
    answer = stack.anthropic(key).messages.create(
        model="claude-sonnet-4-6",
        max_tokens=300,
        system=[{"type": "text", "text": "You are a weather bot.", "cache_control": {"type": "ephemeral"}}],
        tools=[AN_WEATHER_TOOL],  # type: ignore[list-item]
        messages=history,  # type: ignore[arg-type]
    )
    assert answer.content[0].type == "text" and answer.content[0].text == OA_TEXT
    assert stack.oa.last.body == {
        "model": OA_UPSTREAM_MODEL,
        "messages": [
            {"role": "system", "content": "You are a weather bot."},
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {
                "role": "assistant",
                "content": "Checking both.",
                "tool_calls": [
                    {
                        "id": "toolu_01ParisCall",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    },
                    {
                        "id": "toolu_02RomeCall",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "toolu_01ParisCall", "content": "18C, cloudy"},
            {"role": "tool", "tool_call_id": "toolu_02RomeCall", "content": "Error: service down"},
            {"role": "user", "content": "Answer in one sentence."},
        ],
        "tools": [OA_WEATHER_TOOL],
        "max_completion_tokens": 300,
        "stream": False,
    }
    _assert_usage(stack.usage_row(key_id), routed="gpt", input=14, output=37)


# == OpenAI client -> Anthropic upstream ======================================================================


def test_openai_client_anthropic_upstream_text(stack: Stack) -> None:
    key, key_id = stack.new_key("an-plan")
    stack.an.replay(fixture("anthropic/message_text.json"))
    answer = stack.openai(key).chat.completions.create(
        model="gpt-4o",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Say hello"},
        ],
        max_tokens=100,
        temperature=1.7,
        stop=["END"],
        seed=5,  # no Anthropic equivalent: dropped
        user="u-2",
    )
    assert answer.model == "gpt-4o"
    assert answer.object == "chat.completion"
    [choice] = answer.choices
    assert choice.message.content == "Hello!"
    assert choice.finish_reason == "stop"
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens, answer.usage.total_tokens) == (10, 5, 15)
    sent = stack.an.last
    assert sent.path == "/v1/messages"
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert "anthropic-beta" not in sent.headers
    assert sent.body == {
        "model": AN_UPSTREAM_MODEL,
        "max_tokens": 100,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Say hello"}]}],
        "system": "Be brief.",
        "temperature": 1.0,  # clamped to Anthropic's range
        "stop_sequences": ["END"],
        "metadata": {"user_id": "u-2"},
        "stream": False,
    }
    _assert_usage(stack.usage_row(key_id), routed="claude", input=10, output=5)


def test_openai_client_anthropic_upstream_streamed_text(stack: Stack) -> None:
    key, key_id = stack.new_key("an-plan")
    stack.an.replay(fixture("anthropic/stream_text.sse"))
    chunks = list(
        stack.openai(key).chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "Hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content] == [
        "Hello",
        " there",
        "!",
    ]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert {c.model for c in chunks} == {"gpt-4o"}
    usage = chunks[-1].usage
    assert chunks[-1].choices == [] and usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (11, 6, 17)
    sent = stack.an.last.body
    assert sent["stream"] is True
    assert sent["max_tokens"] == 8192  # Anthropic needs one; the default when the client gives none
    assert "stream_options" not in sent
    _assert_usage(stack.usage_row(key_id), routed="claude", input=11, output=6)


def test_openai_client_anthropic_upstream_thinking_as_reasoning_content(stack: Stack) -> None:
    key, key_id = stack.new_key("an-plan")
    stack.an.replay(fixture("anthropic/stream_thinking_then_text.sse"))
    chunks = list(
        stack.openai(key).chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "Divide by 5."}],
            reasoning_effort="high",
            max_completion_tokens=1000,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    reasoning = [(c.choices[0].delta.model_extra or {}).get("reasoning_content") for c in chunks if c.choices]
    assert "".join(r for r in reasoning if r) == THINKING_TEXT
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "925 ÷ 5 = 185"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    usage = chunks[-1].usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (69, 53)
    sent = stack.an.last.body
    # effort high: docs/protocols/translation.md §5.2
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 24576}
    assert sent["max_tokens"] == 24576 + 4096  # raised above the budget
    _assert_usage(stack.usage_row(key_id), routed="claude", input=69, output=53)


def test_openai_client_anthropic_upstream_non_streamed_thinking_and_tool_call(stack: Stack) -> None:
    key, key_id = stack.new_key("an-plan")
    stack.an.replay(fixture("anthropic/message_thinking_then_tool_use.json"))
    answer = stack.openai(key).chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "Check the sandbox now."}],
        tools=[{"type": "function", "function": {"name": "checkSandboxErrors"}}],
        reasoning_effort="low",
    )
    [choice] = answer.choices
    assert (choice.message.model_extra or {}).get("reasoning_content") == (
        "The user wants me to call checkSandboxErrors immediately."
    )
    assert choice.message.content is None
    assert [(c.id, c.function.name, c.function.arguments) for c in choice.message.tool_calls or []] == [  # type: ignore[union-attr]
        ("toolu_017R7ACrx7NF7sLDDtvdQ1u9", "checkSandboxErrors", "{}")
    ]
    assert choice.finish_reason == "tool_calls"
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (599, 59)
    assert answer.usage.completion_tokens_details is not None
    assert answer.usage.completion_tokens_details.reasoning_tokens == 18
    sent = stack.an.last.body
    assert sent["tools"] == [{"name": "checkSandboxErrors", "input_schema": {"type": "object", "properties": {}}}]
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    _assert_usage(stack.usage_row(key_id), routed="claude", input=599, output=59, reasoning=18)


def test_openai_client_anthropic_upstream_streamed_tool_call(stack: Stack) -> None:
    key, key_id = stack.new_key("an-plan")
    stack.an.replay(fixture("anthropic/stream_text_then_tool_use.sse"))
    chunks = list(
        stack.openai(key).chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "What's the weather in Paris?"}],
            tools=[OA_WEATHER_TOOL],  # type: ignore[list-item]
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "I'll check the current weather in Paris for you."
    )
    calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert [(tc.index, tc.id, tc.function.name) for tc in calls if tc.id] == [  # type: ignore[union-attr]
        (0, "toolu_01NRLabsLyVHZPKxbKvkfSMn", "get_weather")
    ]
    assert {tc.index for tc in calls} == {0}
    assert "".join(tc.function.arguments or "" for tc in calls if tc.function) == '{"location": "Paris"}'
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]
    usage = chunks[-1].usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (377, 65)
    sent = stack.an.last.body
    assert sent["tools"] == [AN_WEATHER_TOOL]
    assert sent["tool_choice"] == {"type": "tool", "name": "get_weather"}
    _assert_usage(stack.usage_row(key_id), routed="claude", input=377, output=65)


def test_openai_client_anthropic_upstream_multi_turn_tool_conversation(stack: Stack) -> None:
    key, key_id = stack.new_key("an-plan")
    stack.an.replay(fixture("anthropic/message_text.json"))
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Weather in Edinburgh and the AAPL price?"},
        {
            "role": "assistant",
            "content": None,
            "reasoning_content": "Two tools are needed.",
            "tool_calls": [
                {
                    "id": "call_JMW1whyEaYG438VE1OIflxA2",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Edinburgh"}'},
                },
                {
                    "id": "call_DNYTawLBoN8fj3KN6qU9N1Ou",
                    "type": "function",
                    "function": {"name": "get_stock_price", "arguments": '{"ticker": "AAPL"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_JMW1whyEaYG438VE1OIflxA2", "content": "12C, drizzle"},
        {"role": "tool", "tool_call_id": "call_DNYTawLBoN8fj3KN6qU9N1Ou", "content": "227.52 USD"},
    ]
    answer = stack.openai(key).chat.completions.create(
        model="gpt-4o",
        messages=messages,  # type: ignore[arg-type]
        tools=[
            OA_WEATHER_TOOL,  # type: ignore[list-item]
            {"type": "function", "function": {"name": "get_stock_price", "parameters": {"type": "object"}}},
        ],
        reasoning_effort="medium",
    )
    assert answer.choices[0].message.content == "Hello!"
    assert stack.an.last.body == {
        "model": AN_UPSTREAM_MODEL,
        # no "thinking": the tool loop has no signed thinking to send (docs/protocols/translation.md §5.4)
        "max_tokens": 8192,
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Weather in Edinburgh and the AAPL price?"}]},
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "call_JMW1whyEaYG438VE1OIflxA2",
                        "name": "get_weather",
                        "input": {"city": "Edinburgh"},
                    },
                    {
                        "type": "tool_use",
                        "id": "call_DNYTawLBoN8fj3KN6qU9N1Ou",
                        "name": "get_stock_price",
                        "input": {"ticker": "AAPL"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "call_JMW1whyEaYG438VE1OIflxA2", "content": "12C, drizzle"},
                    {"type": "tool_result", "tool_use_id": "call_DNYTawLBoN8fj3KN6qU9N1Ou", "content": "227.52 USD"},
                ],
            },
        ],
        "system": "You are a helpful assistant.",
        "tools": [
            AN_WEATHER_TOOL,
            {"name": "get_stock_price", "input_schema": {"type": "object"}},
        ],
        "stream": False,
    }
    _assert_usage(stack.usage_row(key_id), routed="claude", input=10, output=5)


def test_streamed_round_trip_openai_client_anthropic_upstream_cache_usage(stack: Stack) -> None:
    """Anthropic's cache counts arrive at an OpenAI client as prompt_tokens (whole prompt) and cached_tokens."""
    key, key_id = stack.new_key("an-plan")
    start = {
        "id": "msg_c",
        "type": "message",
        "role": "assistant",
        "model": "claude",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {
            "input_tokens": 5,
            "cache_read_input_tokens": 1000,
            "cache_creation_input_tokens": 200,
            "output_tokens": 1,
        },
    }
    stack.an.reply_sse(
        anthropic_frames(
            [
                {"type": "message_start", "message": start},
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "ok"}},
                {"type": "content_block_stop", "index": 0},
                {"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, "usage": {"output_tokens": 2}},
                {"type": "message_stop"},
            ]
        )
    )
    chunks = list(
        stack.openai(key).chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["length"]
    usage = chunks[-1].usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (1205, 2)
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 1000
    _assert_usage(stack.usage_row(key_id), routed="claude", input=1205, output=2, cached=1000)


def test_body_the_fake_received_is_valid_json_for_its_dialect(stack: Stack) -> None:
    """A cross-dialect request never carries the other dialect's fields (docs/behaviour.md §4)."""
    key, _ = stack.new_key("an-plan")
    stack.an.replay(fixture("anthropic/message_text.json"))
    stack.openai(key).chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "hi"}],
        logit_bias={"1": 2},
        seed=3,
        n=1,
        response_format={"type": "text"},
        extra_body={"vendor_option": True},
    )
    sent = stack.an.last.body
    assert set(sent) == {"model", "max_tokens", "messages", "stream"}
    assert orjson.loads(orjson.dumps(sent)) == sent


# == whole loops driven by the SDKs ==========================================================================


def test_anthropic_client_tool_loop_through_an_openai_upstream_keeps_the_ids(stack: Stack) -> None:
    key, key_id = stack.new_key("oa-plan")
    client = stack.anthropic(key)
    tools = [{"name": "GetWeatherArgs", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]
    question = {"role": "user", "content": "Weather in Edinburgh?"}
    stack.oa.replay(fixture("openai/chat_stream_single_tool_call_include_usage.sse"))
    with client.messages.stream(model="claude-sonnet-4-6", max_tokens=300, tools=tools, messages=[question]) as stream:  # type: ignore[arg-type,list-item]
        first = stream.get_final_message()
    [call] = first.content
    assert call.type == "tool_use"
    assert (call.id, call.name, call.input) == (
        "call_c91SqDXlYFuETYv8mUHzz6pp",
        "GetWeatherArgs",
        {"city": "Edinburgh", "country": "UK", "units": "c"},
    )
    history = [
        question,
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "11C, windy"}]},
    ]
    stack.oa.replay(fixture("openai/chat_stream_text_include_usage.sse"))
    with client.messages.stream(model="claude-sonnet-4-6", max_tokens=300, tools=tools, messages=history) as stream:  # type: ignore[arg-type]
        second = stream.get_final_message()
    assert second.content[0].type == "text" and second.content[0].text == OA_STREAM_TEXT
    assert stack.oa.last.body["messages"] == [
        {"role": "user", "content": "Weather in Edinburgh?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_c91SqDXlYFuETYv8mUHzz6pp",
                    "type": "function",
                    "function": {
                        "name": "GetWeatherArgs",
                        "arguments": '{"city":"Edinburgh","country":"UK","units":"c"}',
                    },
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_c91SqDXlYFuETYv8mUHzz6pp", "content": "11C, windy"},
    ]
    rows = stack.usage_rows(key_id, 2)
    _assert_usage(rows[0], routed="gpt", input=76, output=24)
    _assert_usage(rows[1], routed="gpt", input=14, output=30)


def test_openai_client_tool_loop_through_an_anthropic_upstream_keeps_the_ids(stack: Stack) -> None:
    key, key_id = stack.new_key("an-plan")
    client = stack.openai(key)
    question = {"role": "user", "content": "What's the weather in Paris?"}
    stack.an.replay(fixture("anthropic/stream_text_then_tool_use.sse"))
    first = list(
        client.chat.completions.create(
            model="gpt-4o",
            messages=[question],
            tools=[OA_WEATHER_TOOL],
            stream=True,  # type: ignore[list-item]
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in first if c.choices)
    deltas = [tc for c in first if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    call_id = next(tc.id for tc in deltas if tc.id)
    arguments = "".join(tc.function.arguments or "" for tc in deltas if tc.function)
    history: list[dict[str, Any]] = [
        question,
        {
            "role": "assistant",
            "content": text,
            "tool_calls": [
                {"id": call_id, "type": "function", "function": {"name": "get_weather", "arguments": arguments}}
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "content": "18C, cloudy"},
    ]
    stack.an.replay(fixture("anthropic/stream_text.sse"))
    second = list(
        client.chat.completions.create(
            model="gpt-4o",
            messages=history,
            tools=[OA_WEATHER_TOOL],
            stream=True,  # type: ignore[arg-type,list-item]
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in second if c.choices) == "Hello there!"
    assert stack.an.last.body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "What's the weather in Paris?"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "I'll check the current weather in Paris for you."},
                {
                    "type": "tool_use",
                    "id": "toolu_01NRLabsLyVHZPKxbKvkfSMn",
                    "name": "get_weather",
                    "input": {"location": "Paris"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01NRLabsLyVHZPKxbKvkfSMn", "content": "18C, cloudy"}
            ],
        },
    ]
    rows = stack.usage_rows(key_id, 2)
    _assert_usage(rows[0], routed="claude", input=377, output=65)
    _assert_usage(rows[1], routed="claude", input=11, output=6)


def test_anthropic_client_openai_upstream_non_streamed_reasoning(stack: Stack) -> None:
    key, key_id = stack.new_key("oa-plan")
    stack.oa.reply_json(
        {
            "id": "chatcmpl-r",
            "object": "chat.completion",
            "created": 1727346142,
            "model": "deepseek-reasoner",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "4", "reasoning_content": "2+2 is 4."},
                    "finish_reason": "length",
                }
            ],
            "usage": {
                "prompt_tokens": 12,
                "completion_tokens": 30,
                "total_tokens": 42,
                "prompt_tokens_details": {"cached_tokens": 8},
                "completion_tokens_details": {"reasoning_tokens": 25},
            },
        }
    )
    answer = stack.anthropic(key).messages.create(
        model="claude-sonnet-4-6",
        max_tokens=30,
        thinking={"type": "enabled", "budget_tokens": 20000},
        messages=[{"role": "user", "content": "2+2?"}],
    )
    assert [b.type for b in answer.content] == ["thinking", "text"]
    thinking, text = answer.content
    assert thinking.type == "thinking" and text.type == "text"
    assert (thinking.thinking, thinking.signature, text.text) == ("2+2 is 4.", "", "4")
    assert answer.stop_reason == "max_tokens"
    # Anthropic's input_tokens excludes cache reads: 12 prompt tokens of which 8 were read from cache
    assert (answer.usage.input_tokens, answer.usage.cache_read_input_tokens, answer.usage.output_tokens) == (4, 8, 30)
    assert stack.oa.last.body["reasoning_effort"] == "high"
    _assert_usage(stack.usage_row(key_id), routed="gpt", input=12, output=30, cached=8, reasoning=25)
