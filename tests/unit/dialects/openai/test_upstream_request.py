"""encode_request: same-dialect passthrough and requests built from another dialect's canonical form."""

from __future__ import annotations

import copy

import orjson

from apipod.dialects.openai import decode_request, encode_request
from apipod.domain.chat import (
    ChatRequest,
    ImagePart,
    Message,
    RedactedThinkingPart,
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
from tests.fixture_path import fixture


def test_same_dialect_keeps_unknown_fields_and_sets_model_stream_and_usage() -> None:
    raw = orjson.loads(fixture("openai/chat_request_tools_vision.json").read_bytes())
    raw["response_format"] = {"type": "json_object"}
    raw["logit_bias"] = {"50256": -100}
    raw["stream_options"] = {"include_usage": False, "include_obfuscation": False}
    before = copy.deepcopy(raw)
    request = decode_request(raw)

    out = encode_request(request, model="gpt-4o-mini", stream=True)

    assert raw == before  # the client's body is never mutated
    expected = dict(before, model="gpt-4o-mini", stream=True)
    expected["stream_options"] = {"include_usage": True, "include_obfuscation": False}
    assert out == expected
    assert out["messages"] is raw["messages"]  # shallow: no needless copies


def test_same_dialect_non_streaming_drops_stream_options() -> None:
    request = decode_request(
        {"model": "a", "messages": [{"role": "user", "content": "hi"}], "stream": True, "stream_options": {}, "seed": 7}
    )
    out = encode_request(request, model="b", stream=False)
    assert out == {"model": "b", "messages": [{"role": "user", "content": "hi"}], "stream": False, "seed": 7}


def test_same_dialect_streaming_adds_stream_options_when_absent() -> None:
    request = decode_request({"model": "a", "messages": [{"role": "user", "content": "hi"}]})
    out = encode_request(request, model="b", stream=True)
    assert out["stream_options"] == {"include_usage": True}


def anthropic_like_request() -> ChatRequest:
    """What an Anthropic client's tool loop decodes to (built by hand: no other codec is needed)."""
    return ChatRequest(
        model="claude-sonnet-4-5",
        dialect="anthropic",
        raw={"anthropic_only": True},
        system=(TextPart("Be brief.", cache_control={"type": "ephemeral"}), TextPart("Use tools.")),
        messages=(
            Message(Role.USER, (TextPart("Weather?"), ImagePart(media_type="image/png", data="AAAA"))),
            Message(
                Role.ASSISTANT,
                (
                    ThinkingPart("let me think", signature="sig-anthropic"),
                    RedactedThinkingPart("opaque"),
                    TextPart("Checking."),
                    ToolUsePart("toolu_1", "get_weather", '{"city":"Paris"}'),
                    ToolUsePart("toolu_2", "get_weather", '{"city":"Rome"}', signature="gem-sig"),
                ),
            ),
            Message(
                Role.TOOL,
                (
                    ToolResultPart("toolu_1", (TextPart("18C"), ImagePart(url="https://x/map.png"))),
                    ToolResultPart("toolu_2", (TextPart("no data"),), is_error=True),
                ),
            ),
            Message(Role.USER, (TextPart("and now?"),)),
            Message(Role.SYSTEM, (TextPart("Answer in French."),)),
            Message(Role.ASSISTANT, (ThinkingPart("only thoughts"),)),
        ),
        tools=(ToolSpec("get_weather", "Current weather", {"type": "object", "properties": {}}),),
        tool_choice=ToolChoice(ToolChoiceKind.REQUIRED, disable_parallel=True),
        max_output_tokens=4096,
        temperature=0.7,
        top_p=0.9,
        top_k=40,
        stop=("a", "b", "c", "d", "e"),
        thinking=ThinkingConfig(ThinkingMode.ENABLED, budget_tokens=10000),
        user="user-1",
        metadata={"user_id": "user-1"},
    )


def test_cross_dialect_request_is_built_from_canonical_fields() -> None:
    out = encode_request(anthropic_like_request(), model="gpt-5", stream=True)
    assert out == {
        "model": "gpt-5",
        "messages": [
            {"role": "system", "content": "Be brief.\n\nUse tools."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Weather?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                ],
            },
            {
                "role": "assistant",
                "content": "Checking.",
                "tool_calls": [
                    {
                        "id": "toolu_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    },
                    {
                        "id": "toolu_2",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                        "extra_content": {"google": {"thought_signature": "gem-sig"}},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
            {"role": "tool", "tool_call_id": "toolu_2", "content": "Error: no data"},
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/map.png"}}]},
            {"role": "user", "content": "and now?"},
            {"role": "system", "content": "Answer in French."},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Current weather",
                    "parameters": {"type": "object", "properties": {}},
                },
            }
        ],
        "tool_choice": "required",
        "parallel_tool_calls": False,
        "max_completion_tokens": 4096,
        "temperature": 0.7,
        "top_p": 0.9,
        "stop": ["a", "b", "c", "d"],
        "user": "user-1",
        "reasoning_effort": "medium",
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    orjson.dumps(out)  # everything in it is JSON


def test_cross_dialect_forced_tool_and_no_tools() -> None:
    base = anthropic_like_request()
    forced = ChatRequest(
        model="m",
        messages=base.messages[:1],
        tools=base.tools,
        tool_choice=ToolChoice(ToolChoiceKind.TOOL, name="get_weather"),
    )
    out = encode_request(forced, model="x", stream=False)
    assert out["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert "parallel_tool_calls" not in out
    assert out["stream"] is False
    assert "stream_options" not in out

    # tool_choice without tools is rejected by OpenAI: left out
    bare = ChatRequest(model="m", messages=base.messages[:1], tool_choice=ToolChoice(ToolChoiceKind.AUTO))
    assert set(encode_request(bare, model="x", stream=False)) == {"model", "messages", "stream"}


def test_reasoning_effort_only_for_enabled_thinking_with_a_budget() -> None:
    def effort(thinking: ThinkingConfig | None) -> str | None:
        request = ChatRequest(model="m", messages=(Message(Role.USER, (TextPart("x"),)),), thinking=thinking)
        return encode_request(request, model="x", stream=False).get("reasoning_effort")

    assert effort(ThinkingConfig(ThinkingMode.ENABLED, budget_tokens=1024)) == "low"
    assert effort(ThinkingConfig(ThinkingMode.ENABLED, budget_tokens=4096)) == "medium"
    assert effort(ThinkingConfig(ThinkingMode.ENABLED, budget_tokens=16384)) == "high"
    assert effort(ThinkingConfig(ThinkingMode.ENABLED)) is None
    assert effort(ThinkingConfig(ThinkingMode.ADAPTIVE)) is None
    assert effort(ThinkingConfig(ThinkingMode.DISABLED)) is None
    assert effort(None) is None


def test_openai_request_without_raw_round_trips_through_canonical() -> None:
    """A request decoded from OpenAI but stripped of ``raw`` re-encodes to the same conversation."""
    raw = orjson.loads(fixture("openai/chat_request_tools_vision.json").read_bytes())
    decoded = decode_request(raw)
    rebuilt = ChatRequest(
        model=decoded.model,
        messages=decoded.messages,
        system=decoded.system,
        tools=decoded.tools,
        tool_choice=decoded.tool_choice,
        parallel_tool_calls=decoded.parallel_tool_calls,
        max_output_tokens=decoded.max_output_tokens,
        temperature=decoded.temperature,
    )
    out = encode_request(rebuilt, model="gpt-4o", stream=True)
    assert out["messages"][0] == raw["messages"][0]
    assert out["messages"][1]["content"][0] == raw["messages"][1]["content"][0]
    assert out["messages"][1]["content"][1]["image_url"]["url"] == raw["messages"][1]["content"][1]["image_url"]["url"]
    assert out["messages"][2:] == raw["messages"][2:]
    assert out["tools"] == raw["tools"]
    assert out["tool_choice"] == "auto"
    assert out["parallel_tool_calls"] is True
    assert out["max_completion_tokens"] == 1024
    assert decode_request(out).messages == decoded.messages
