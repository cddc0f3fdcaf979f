"""OpenAI SDK -> apipod (a real process) -> fake OpenAI-compatible upstream, over real sockets.

Same dialect: the upstream receives the client's body (only ``model``, ``stream`` and
``stream_options.include_usage`` set by apipod); the client receives the upstream's answer under the model
name it asked for; the usage row holds what the upstream reported.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fakes.fake_openai import openai_frames
from tests.fixture_path import fixture
from tests.integration.http.core_support import OA_UPSTREAM_MODEL, Stack, start_stack

TEXT = (
    "I'm unable to provide real-time weather updates. To get the current weather in San Francisco, I recommend "
    "checking a reliable weather website or app like the Weather Channel or a local news station."
)
STREAM_TEXT = (
    "I'm unable to provide real-time weather updates. To get the current weather in San Francisco, I recommend "
    "checking a reliable weather website or a weather app."
)
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "GetWeatherArgs",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "country": {"type": "string"}, "units": {"type": "string"}},
            "required": ["city", "country", "units"],
        },
    },
}
STOCK_TOOL = {
    "type": "function",
    "function": {
        "name": "get_stock_price",
        "parameters": {
            "type": "object",
            "properties": {"ticker": {"type": "string"}, "exchange": {"type": "string"}},
        },
    },
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from start_stack(tmp_path_factory.mktemp("openai-clients"))


@pytest.fixture(autouse=True)
def _clean(stack: Stack) -> None:
    stack.reset()


def _stream(stack: Stack, key: str, **params: Any) -> list[Any]:
    client = stack.openai(key)
    return list(client.chat.completions.create(stream=True, **params))


def _assert_usage(row: dict[str, Any], *, input: int, output: int, cached: int = 0, reasoning: int = 0) -> None:
    assert row["status"] == "success"
    assert row["routed_model"] == "gpt"
    assert row["upstream_provider"].startswith("oa/")
    assert (row["input_tokens"], row["output_tokens"]) == (input, output)
    assert (row["cached_input_tokens"], row["reasoning_tokens"]) == (cached, reasoning)
    assert row["token_count"] == input + output


# -- text --------------------------------------------------------------------------------------------------


def test_non_streamed_text(stack: Stack) -> None:
    key, key_id = stack.new_key("oa-plan")
    stack.oa.replay(fixture("openai/chat_completion_text.json"))
    answer = stack.openai(key).chat.completions.create(
        model="my-model", messages=[{"role": "user", "content": "What's the weather in San Francisco?"}]
    )
    assert answer.object == "chat.completion"
    assert answer.model == "my-model"
    [choice] = answer.choices
    assert choice.message.role == "assistant"
    assert choice.message.content == TEXT
    assert choice.message.tool_calls is None
    assert choice.finish_reason == "stop"
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens, answer.usage.total_tokens) == (14, 37, 51)
    sent = stack.oa.last
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer sk-test-0"
    assert sent.body["model"] == OA_UPSTREAM_MODEL
    assert sent.body["stream"] is False
    assert "stream_options" not in sent.body
    assert sent.body["messages"] == [{"role": "user", "content": "What's the weather in San Francisco?"}]
    row = stack.usage_row(key_id)
    assert row["requested_model"] == "my-model"
    _assert_usage(row, input=14, output=37)


def test_streamed_text_with_include_usage(stack: Stack) -> None:
    key, key_id = stack.new_key("oa-plan")
    stack.oa.replay(fixture("openai/chat_stream_text_include_usage.sse"))
    chunks = _stream(
        stack,
        key,
        model="my-model",
        messages=[{"role": "user", "content": "What's the weather in San Francisco?"}],
        stream_options={"include_usage": True},
    )
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    assert {c.model for c in chunks} == {"my-model"}
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == STREAM_TEXT
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.total_tokens) == (14, 30, 44)
    assert all(c.usage is None for c in chunks[:-1])
    sent = stack.oa.last.body
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}
    _assert_usage(stack.usage_row(key_id), input=14, output=30)


def test_streamed_text_without_include_usage_still_bills_the_upstream_usage(stack: Stack) -> None:
    key, key_id = stack.new_key("oa-plan")
    stack.oa.replay(fixture("openai/chat_stream_text_include_usage.sse"))
    chunks = _stream(stack, key, model="my-model", messages=[{"role": "user", "content": "weather?"}])
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == STREAM_TEXT
    assert all(c.usage is None for c in chunks)
    assert all(c.choices for c in chunks)  # no usage chunk: the client did not ask for one
    assert stack.oa.last.body["stream_options"] == {"include_usage": True}  # apipod asks anyway, to bill
    _assert_usage(stack.usage_row(key_id), input=14, output=30)


def test_streamed_finish_length(stack: Stack) -> None:
    key, key_id = stack.new_key("oa-plan")
    stack.oa.replay(fixture("openai/chat_stream_finish_length.sse"))
    chunks = _stream(
        stack,
        key,
        model="m",
        messages=[{"role": "user", "content": "json please"}],
        max_tokens=1,
        stream_options={"include_usage": True},
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == '{"'
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["length"]
    assert stack.oa.last.body["max_tokens"] == 1
    _assert_usage(stack.usage_row(key_id), input=79, output=1)


def test_cached_and_reasoning_tokens_reach_the_client_and_the_usage_row(stack: Stack) -> None:
    key, key_id = stack.new_key("oa-plan")
    stack.oa.reply_json(
        {
            "id": "chatcmpl-cached",
            "object": "chat.completion",
            "created": 1727346142,
            "model": "o3-mini",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "Cached hello.", "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": 2048,
                "completion_tokens": 77,
                "total_tokens": 2125,
                "prompt_tokens_details": {"cached_tokens": 1920},
                "completion_tokens_details": {"reasoning_tokens": 64},
            },
        }
    )
    answer = stack.openai(key).chat.completions.create(model="m", messages=[{"role": "user", "content": "hello again"}])
    assert answer.choices[0].message.content == "Cached hello."
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (2048, 77)
    assert answer.usage.prompt_tokens_details is not None
    assert answer.usage.prompt_tokens_details.cached_tokens == 1920
    assert answer.usage.completion_tokens_details is not None
    assert answer.usage.completion_tokens_details.reasoning_tokens == 64
    _assert_usage(stack.usage_row(key_id), input=2048, output=77, cached=1920, reasoning=64)


def test_streamed_cached_tokens_are_recorded(stack: Stack) -> None:
    key, key_id = stack.new_key("oa-plan")
    head = {"id": "chatcmpl-c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o"}
    stack.oa.reply_sse(
        openai_frames(
            [
                {
                    **head,
                    "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"}, "finish_reason": None}],
                },
                {**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
                {
                    **head,
                    "choices": [],
                    "usage": {
                        "prompt_tokens": 1500,
                        "completion_tokens": 3,
                        "total_tokens": 1503,
                        "prompt_tokens_details": {"cached_tokens": 1280},
                    },
                },
            ]
        )
    )
    chunks = _stream(
        stack, key, model="m", messages=[{"role": "user", "content": "hi"}], stream_options={"include_usage": True}
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hi"
    usage = chunks[-1].usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (1500, 3)
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 1280
    _assert_usage(stack.usage_row(key_id), input=1500, output=3, cached=1280)


# -- tools ---------------------------------------------------------------------------------------------------


def test_streamed_single_tool_call(stack: Stack) -> None:
    key, key_id = stack.new_key("oa-plan")
    stack.oa.replay(fixture("openai/chat_stream_single_tool_call_include_usage.sse"))
    chunks = _stream(
        stack,
        key,
        model="my-model",
        messages=[{"role": "user", "content": "Weather in Edinburgh?"}],
        tools=[WEATHER_TOOL],
        stream_options={"include_usage": True},
    )
    starts = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or []) if tc.id]
    assert [(tc.index, tc.id, tc.type, tc.function.name) for tc in starts] == [
        (0, "call_c91SqDXlYFuETYv8mUHzz6pp", "function", "GetWeatherArgs")
    ]
    fragments = [
        tc.function.arguments or ""
        for c in chunks
        if c.choices
        for tc in (c.choices[0].delta.tool_calls or [])
        if tc.function is not None
    ]
    assert len([f for f in fragments if f]) > 1  # streamed in pieces, not buffered into one
    assert "".join(fragments) == '{"city":"Edinburgh","country":"UK","units":"c"}'
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (76, 24)
    assert stack.oa.last.body["tools"] == [WEATHER_TOOL]
    _assert_usage(stack.usage_row(key_id), input=76, output=24)


def test_streamed_parallel_tool_calls(stack: Stack) -> None:
    key, key_id = stack.new_key("oa-plan")
    stack.oa.replay(fixture("openai/chat_stream_parallel_tool_calls_include_usage.sse"))
    chunks = _stream(
        stack,
        key,
        model="my-model",
        messages=[{"role": "user", "content": "Weather in Edinburgh and the AAPL price?"}],
        tools=[WEATHER_TOOL, STOCK_TOOL],
        parallel_tool_calls=True,
        stream_options={"include_usage": True},
    )
    calls: dict[int, dict[str, str]] = {}
    for c in chunks:
        for tc in (c.choices[0].delta.tool_calls or []) if c.choices else []:
            entry = calls.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
            if tc.id:
                entry["id"] = tc.id
            if tc.function is not None:
                entry["name"] += tc.function.name or ""
                entry["arguments"] += tc.function.arguments or ""
    assert calls == {
        0: {
            "id": "call_JMW1whyEaYG438VE1OIflxA2",
            "name": "GetWeatherArgs",
            "arguments": '{"city": "Edinburgh", "country": "GB", "units": "c"}',
        },
        1: {
            "id": "call_DNYTawLBoN8fj3KN6qU9N1Ou",
            "name": "get_stock_price",
            "arguments": '{"ticker": "AAPL", "exchange": "NASDAQ"}',
        },
    }
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (149, 60)
    assert stack.oa.last.body["parallel_tool_calls"] is True
    _assert_usage(stack.usage_row(key_id), input=149, output=60)


def test_non_streamed_parallel_tool_calls(stack: Stack) -> None:
    key, key_id = stack.new_key("oa-plan")
    stack.oa.replay(fixture("openai/chat_completion_parallel_tool_calls.json"))
    answer = stack.openai(key).chat.completions.create(
        model="my-model",
        messages=[{"role": "user", "content": "Weather in Edinburgh and the AAPL price?"}],
        tools=[WEATHER_TOOL, STOCK_TOOL],  # type: ignore[list-item]
    )
    [choice] = answer.choices
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = [(c.id, c.function.name, c.function.arguments) for c in choice.message.tool_calls or []]  # type: ignore[union-attr]
    assert calls == [
        ("call_fdNz3vOBKYgOIpMdWotB9MjY", "GetWeatherArgs", '{"city": "Edinburgh", "country": "GB", "units": "c"}'),
        ("call_h1DWI1POMJLb0KwIyQHWXD4p", "get_stock_price", '{"ticker": "AAPL", "exchange": "NASDAQ"}'),
    ]
    _assert_usage(stack.usage_row(key_id), input=149, output=60)


def test_multi_turn_tool_conversation_reaches_the_upstream_as_sent(stack: Stack) -> None:
    key, key_id = stack.new_key("oa-plan")
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Weather in Edinburgh and the AAPL price?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_JMW1whyEaYG438VE1OIflxA2",
                    "type": "function",
                    "function": {
                        "name": "GetWeatherArgs",
                        "arguments": '{"city": "Edinburgh", "country": "GB", "units": "c"}',
                    },
                },
                {
                    "id": "call_DNYTawLBoN8fj3KN6qU9N1Ou",
                    "type": "function",
                    "function": {"name": "get_stock_price", "arguments": '{"ticker": "AAPL", "exchange": "NASDAQ"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_JMW1whyEaYG438VE1OIflxA2", "content": "12C, drizzle"},
        {"role": "tool", "tool_call_id": "call_DNYTawLBoN8fj3KN6qU9N1Ou", "content": "AAPL 227.52 USD"},
    ]
    stack.oa.reply_json(
        {
            "id": "chatcmpl-final",
            "object": "chat.completion",
            "created": 1727346200,
            "model": "gpt-4o-2024-08-06",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "Edinburgh: 12C, drizzle. AAPL: 227.52 USD."},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 212, "completion_tokens": 17, "total_tokens": 229},
        }
    )
    answer = stack.openai(key).chat.completions.create(
        model="my-model",
        messages=messages,  # type: ignore[arg-type]
        tools=[WEATHER_TOOL, STOCK_TOOL],  # type: ignore[list-item]
        tool_choice="auto",
    )
    assert answer.choices[0].message.content == "Edinburgh: 12C, drizzle. AAPL: 227.52 USD."
    assert answer.choices[0].finish_reason == "stop"
    sent = stack.oa.last.body
    assert sent["messages"] == messages
    assert sent["tools"] == [WEATHER_TOOL, STOCK_TOOL]
    assert sent["tool_choice"] == "auto"
    _assert_usage(stack.usage_row(key_id), input=212, output=17)


def test_second_turn_streamed_after_a_streamed_tool_call(stack: Stack) -> None:
    """The whole loop through the SDK: stream a tool call, send its result back, stream the answer."""
    key, key_id = stack.new_key("oa-plan")
    client = stack.openai(key)
    stack.oa.replay(fixture("openai/chat_stream_single_tool_call_include_usage.sse"))
    first = list(
        client.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": "Weather in Edinburgh?"}],
            tools=[WEATHER_TOOL],  # type: ignore[list-item]
            stream=True,
        )
    )
    call_id = next(tc.id for c in first if c.choices for tc in (c.choices[0].delta.tool_calls or []) if tc.id)
    arguments = "".join(
        tc.function.arguments or ""
        for c in first
        if c.choices
        for tc in (c.choices[0].delta.tool_calls or [])
        if tc.function
    )
    history: list[dict[str, Any]] = [
        {"role": "user", "content": "Weather in Edinburgh?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": call_id, "type": "function", "function": {"name": "GetWeatherArgs", "arguments": arguments}}
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "content": json.dumps({"temp_c": 11})},
    ]
    stack.oa.replay(fixture("openai/chat_stream_text_include_usage.sse"))
    second = list(
        client.chat.completions.create(
            model="m",
            messages=history,  # type: ignore[arg-type]
            tools=[WEATHER_TOOL],  # type: ignore[list-item]
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in second if c.choices) == STREAM_TEXT
    assert stack.oa.last.body["messages"] == history
    assert stack.oa.last.body["messages"][1]["tool_calls"][0]["id"] == "call_c91SqDXlYFuETYv8mUHzz6pp"
    rows = stack.usage_rows(key_id, 2)
    _assert_usage(rows[0], input=76, output=24)
    _assert_usage(rows[1], input=14, output=30)


# -- passthrough ------------------------------------------------------------------------------------------


def test_fields_apipod_does_not_model_reach_the_upstream_untouched(stack: Stack) -> None:
    key, key_id = stack.new_key("oa-plan")
    stack.oa.replay(fixture("openai/chat_completion_text.json"))
    answer = stack.openai(key).chat.completions.create(
        model="my-model",
        messages=[{"role": "user", "content": "hi", "name": "alice"}],  # type: ignore[list-item]
        seed=424242,
        logit_bias={"50256": -100, "1734": 5},
        metadata={"trace": "t-1", "team": "core"},
        temperature=0.3,
        top_p=0.9,
        n=1,
        logprobs=True,
        top_logprobs=2,
        presence_penalty=0.5,
        frequency_penalty=-0.25,
        service_tier="flex",
        store=False,
        user="user-77",
        response_format={"type": "json_object"},
        extra_body={"vendor_option": {"nested": [1, 2, {"x": None}]}, "top_k": 40},
    )
    assert answer.choices[0].message.content == TEXT
    sent = stack.oa.last.body
    assert sent == {
        "model": OA_UPSTREAM_MODEL,
        "stream": False,
        "messages": [{"role": "user", "content": "hi", "name": "alice"}],
        "seed": 424242,
        "logit_bias": {"50256": -100, "1734": 5},
        "metadata": {"trace": "t-1", "team": "core"},
        "temperature": 0.3,
        "top_p": 0.9,
        "n": 1,
        "logprobs": True,
        "top_logprobs": 2,
        "presence_penalty": 0.5,
        "frequency_penalty": -0.25,
        "service_tier": "flex",
        "store": False,
        "user": "user-77",
        "response_format": {"type": "json_object"},
        "vendor_option": {"nested": [1, 2, {"x": None}]},
        "top_k": 40,
    }
    _assert_usage(stack.usage_row(key_id), input=14, output=37)


def test_streamed_passthrough_keeps_the_clients_stream_options(stack: Stack) -> None:
    key, _ = stack.new_key("oa-plan")
    stack.oa.replay(fixture("openai/chat_stream_text_include_usage.sse"))
    _stream(
        stack,
        key,
        model="m",
        messages=[{"role": "user", "content": "hi"}],
        seed=7,
        stream_options={"include_usage": False, "include_obfuscation": False},
    )
    sent = stack.oa.last.body
    assert sent["seed"] == 7
    assert sent["stream_options"] == {"include_usage": True, "include_obfuscation": False}


# -- models --------------------------------------------------------------------------------------------------


def test_models_lists_the_plan_in_openai_shape(stack: Stack) -> None:
    key, _ = stack.new_key("oa-plan")
    models = stack.openai(key).models.list()
    assert [m.id for m in models.data] == ["oa-plan"]
    [entry] = models.data
    assert entry.object == "model"
    assert entry.owned_by == "apipod"
    assert isinstance(entry.created, int) and entry.created > 1_700_000_000
    assert stack.oa.requests == []  # answered by apipod, not the upstream
