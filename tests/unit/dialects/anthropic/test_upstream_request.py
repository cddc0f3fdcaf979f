"""Building an Anthropic upstream body from a request that arrived in another dialect."""

from __future__ import annotations

from typing import Any

import attrs

from apipod.dialects.anthropic import encode_request
from apipod.domain.chat import (
    ChatRequest,
    ImagePart,
    Message,
    Role,
    TextPart,
    ThinkingConfig,
    ThinkingMode,
    ThinkingPart,
    ToolChoice,
    ToolChoiceKind,
    ToolResultPart,
    ToolSpec,
    ToolUsePart,
)

WEATHER = ToolSpec("get_weather", "Weather", {"type": "object", "properties": {"city": {"type": "string"}}})
TIME = ToolSpec("get_time")

HISTORY = (
    Message(Role.SYSTEM, (TextPart("Be brief."),)),
    Message(Role.USER, (TextPart("hi"), TextPart("  "))),
    Message(
        Role.ASSISTANT,
        (
            ThinkingPart("unsigned reasoning from an OpenAI-compatible upstream"),
            TextPart("calling"),
            ToolUsePart("call_1", "get_weather", '{"city":"Paris"}'),
            ToolUsePart("call_2", "get_time", ""),
        ),
    ),
    Message(
        Role.TOOL,
        (
            ToolResultPart("call_1", (TextPart("18C"),)),
            ToolResultPart("call_2", (TextPart("noon"),), is_error=True),
        ),
    ),
    Message(Role.USER, (TextPart("thanks"), ImagePart(url="data:image/png;base64,AAAA"))),
)


def openai_request(**changes: Any) -> ChatRequest:
    base = ChatRequest(
        model="gpt-4o",
        messages=HISTORY,
        system=(TextPart("You are helpful."),),
        tools=(WEATHER, TIME),
        dialect="openai",
        raw={"model": "gpt-4o", "messages": [], "reasoning_effort": "high"},
    )
    return attrs.evolve(base, **changes)


def test_builds_a_valid_anthropic_body() -> None:
    request = openai_request(
        tool_choice=ToolChoice(ToolChoiceKind.REQUIRED),
        parallel_tool_calls=False,
        temperature=1.7,
        top_p=0.5,
        stop=("END",),
        user="u1",
        stream=True,
    )
    body = encode_request(request, model="claude-sonnet-4-5", stream=True)
    assert body == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 8192,
        "system": "You are helpful.\n\nBe brief.",
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "hi"}]},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "calling"},
                    {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": "call_2", "name": "get_time", "input": {}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
                    {"type": "tool_result", "tool_use_id": "call_2", "content": "noon", "is_error": True},
                    {"type": "text", "text": "thanks"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
                ],
            },
        ],
        "tools": [
            {"name": "get_weather", "description": "Weather", "input_schema": WEATHER.parameters},
            {"name": "get_time", "input_schema": {"type": "object", "properties": {}}},
        ],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "temperature": 1.0,
        "top_p": 0.5,
        "stop_sequences": ["END"],
        "metadata": {"user_id": "u1"},
        "stream": True,
    }
    assert "reasoning_effort" not in body  # another dialect's raw body never leaks


def test_reasoning_effort_becomes_a_budget_and_relaxes_conflicting_params() -> None:
    request = openai_request(
        messages=HISTORY[:2],
        thinking=ThinkingConfig(ThinkingMode.ENABLED, effort="high"),
        max_output_tokens=4000,
        temperature=0.5,
        top_k=5,
        top_p=0.9,
        tool_choice=ToolChoice(ToolChoiceKind.TOOL, name="get_weather"),
    )
    body = encode_request(request, model="claude", stream=False)
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 24576}
    assert body["max_tokens"] == 24576 + 4096
    assert body["tool_choice"] == {"type": "auto"}
    assert "temperature" not in body
    assert "top_k" not in body
    assert "top_p" not in body


def test_effort_budgets_and_room_for_the_answer() -> None:
    def thinking(effort: str, max_tokens: int | None = 100_000) -> tuple[object, int]:
        request = openai_request(
            messages=HISTORY[:2],
            thinking=ThinkingConfig(ThinkingMode.ENABLED, effort=effort),
            max_output_tokens=max_tokens,
        )
        body = encode_request(request, model="claude", stream=False)
        return body.get("thinking"), body["max_tokens"]

    assert thinking("low") == ({"type": "enabled", "budget_tokens": 2048}, 100_000)
    assert thinking("medium", None) == ({"type": "enabled", "budget_tokens": 8192}, 8192 + 4096)
    assert thinking("minimal") == ({"type": "disabled"}, 100_000)
    explicit = openai_request(messages=HISTORY[:2], thinking=ThinkingConfig(ThinkingMode.ENABLED, budget_tokens=500))
    assert encode_request(explicit, model="c", stream=False)["thinking"] == {"type": "enabled", "budget_tokens": 1024}


def test_thinking_is_dropped_when_the_tool_loop_has_no_signed_thinking() -> None:
    request = openai_request(messages=HISTORY[:4], thinking=ThinkingConfig(ThinkingMode.ENABLED, effort="low"))
    body = encode_request(request, model="claude", stream=False)
    assert "thinking" not in body  # the unsigned thinking was dropped, so Anthropic would answer 400
    assert body["max_tokens"] == 8192


def test_signed_thinking_is_kept_and_prefill_dropped_with_thinking() -> None:
    signed = Message(Role.ASSISTANT, (ThinkingPart("t", "sig"), ToolUsePart("call_1", "get_weather", "{}")))
    results = Message(Role.TOOL, (ToolResultPart("call_1", (TextPart("18C"),)),))
    prefill = Message(Role.ASSISTANT, (TextPart("The answer is"),))
    request = openai_request(
        messages=(HISTORY[1], signed, results, prefill),
        thinking=ThinkingConfig(ThinkingMode.ENABLED, budget_tokens=2048),
    )
    body = encode_request(request, model="claude", stream=False)
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert body["messages"][1]["content"][0] == {"type": "thinking", "thinking": "t", "signature": "sig"}
    assert body["messages"][-1]["role"] == "user"


def test_arguments_that_are_not_an_object() -> None:
    calls = Message(
        Role.ASSISTANT,
        (ToolUsePart("a", "f", "[1, 2]"), ToolUsePart("b", "f", "{oops"), ToolUsePart("c", "f", '"x"')),
    )
    body = encode_request(openai_request(messages=(HISTORY[1], calls)), model="c", stream=False)
    assert [b["input"] for b in body["messages"][1]["content"]] == [{"value": [1, 2]}, {}, {"value": "x"}]


def test_same_role_turns_merge_and_tool_results_come_first() -> None:
    messages = (
        Message(Role.USER, (TextPart("one"),)),
        Message(Role.USER, (TextPart("two"),)),
        Message(Role.ASSISTANT, (ToolUsePart("a", "f", "{}"),)),
        Message(Role.USER, (TextPart("note"),)),
        Message(Role.TOOL, (ToolResultPart("a", (TextPart("r"), ImagePart("image/bmp", data="Qk0")), name="f"),)),
    )
    body = encode_request(openai_request(messages=messages, tools=()), model="c", stream=False)
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "a", "name": "f", "input": {}}]},
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "a", "content": [{"type": "text", "text": "r"}]},
                {"type": "text", "text": "note"},
            ],
        },
    ]
    assert "tools" not in body
    assert "tool_choice" not in body


def test_anthropic_request_without_raw_is_built_and_keeps_cache_control() -> None:
    request = ChatRequest(
        model="m",
        messages=(Message(Role.USER, (TextPart("hi", cache_control={"type": "ephemeral"}),)),),
        system=(TextPart("sys", cache_control={"type": "ephemeral"}),),
        dialect="anthropic",
        max_output_tokens=100,
    )
    body = encode_request(request, model="claude", stream=False)
    assert body["system"] == [{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}]
    assert body["messages"][0]["content"][0]["cache_control"] == {"type": "ephemeral"}
    assert body["max_tokens"] == 100
