"""Client requests: decode_request on the composed fixture, message shapes, parameters, validation."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from apipod.dialects.openai import decode_request
from apipod.domain.chat import (
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
from apipod.domain.errors import InvalidRequestError
from tests.fixture_path import fixture

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


def body(*messages: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"model": "m", "messages": list(messages) or [{"role": "user", "content": "hi"}], **fields}


def test_fixture_tools_vision_decodes_every_field() -> None:
    raw = orjson.loads(fixture("openai/chat_request_tools_vision.json").read_bytes())
    request = decode_request(raw)
    assert request.model == "gpt-4o"
    assert request.dialect == "openai"
    assert request.raw is raw
    assert request.stream is True
    assert request.max_output_tokens == 1024
    assert request.temperature == 0.2
    assert request.system == (TextPart("You are a helpful assistant."),)
    assert request.messages == (
        Message(
            Role.USER,
            (
                TextPart("What is in this picture, and what's the weather where it was taken (Paris)?"),
                ImagePart(media_type="image/png", data=PNG),
            ),
        ),
        Message(
            Role.ASSISTANT,
            (ToolUsePart(id="call_a1B2c3D4e5F6g7H8i9J0k1L2", name="get_weather", arguments='{"city":"Paris"}'),),
        ),
        Message(
            Role.TOOL,
            (ToolResultPart("call_a1B2c3D4e5F6g7H8i9J0k1L2", (TextPart("18C, cloudy"),), name="get_weather"),),
        ),
    )
    assert request.tools == (
        ToolSpec(
            name="get_weather",
            description="Current weather for a city",
            parameters={
                "type": "object",
                "properties": {"city": {"type": "string", "description": "City name"}},
                "required": ["city"],
                "additionalProperties": False,
            },
        ),
    )
    assert request.tool_choice == ToolChoice(ToolChoiceKind.AUTO)
    assert request.parallel_tool_calls is True
    assert request.thinking is None


def test_system_and_developer_messages_anywhere_are_lifted_in_order() -> None:
    request = decode_request(
        body(
            {"role": "system", "content": "one"},
            {"role": "user", "content": "hi"},
            {"role": "developer", "content": [{"type": "text", "text": "two"}, {"type": "text", "text": "three"}]},
            {"role": "assistant", "content": "hello"},
            {"role": "system", "content": "four"},
        )
    )
    assert [p.text for p in request.system] == ["one", "two", "three", "four"]
    assert [m.role for m in request.messages] == [Role.USER, Role.ASSISTANT]


def test_consecutive_tool_messages_become_one_tool_turn_with_names() -> None:
    request = decode_request(
        body(
            {"role": "user", "content": "Weather in Paris and Tokyo?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "call_a1", "type": "function", "function": {"name": "w", "arguments": '{"city":"Paris"}'}},
                    {
                        "id": "call_b2",
                        "type": "function",
                        "function": {"name": "w2", "arguments": '{"city":"Tokyo"}'},
                        "extra_content": {"google": {"thought_signature": "sig=="}},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_a1", "content": "18C"},
            {"role": "tool", "tool_call_id": "call_b2", "content": [{"type": "text", "text": "25C"}]},
            {"role": "user", "content": "thanks"},
        )
    )
    assistant, tool, user = request.messages[1:]
    assert assistant.parts == (
        ToolUsePart("call_a1", "w", '{"city":"Paris"}'),
        ToolUsePart("call_b2", "w2", '{"city":"Tokyo"}', signature="sig=="),
    )
    assert tool == Message(
        Role.TOOL,
        (
            ToolResultPart("call_a1", (TextPart("18C"),), name="w"),
            ToolResultPart("call_b2", (TextPart("25C"),), name="w2"),
        ),
    )
    assert user == Message(Role.USER, (TextPart("thanks"),))


def test_assistant_reasoning_content_becomes_a_leading_thinking_part() -> None:
    request = decode_request(
        body(
            {"role": "user", "content": "q"},
            {"role": "assistant", "reasoning_content": "hmm", "content": [{"type": "text", "text": "a"}]},
        )
    )
    assert request.messages[1].parts == (ThinkingPart("hmm"), TextPart("a"))


def test_image_urls_by_link_by_bare_string_and_by_data_url() -> None:
    request = decode_request(
        body(
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "high"}},
                    {"type": "image_url", "image_url": "data:image/jpeg;base64,AAAA"},
                    {"type": "input_audio", "input_audio": {"data": "x", "format": "wav"}},
                ],
            }
        )
    )
    assert request.messages[0].parts == (
        ImagePart(url="https://example.com/cat.png"),
        ImagePart(media_type="image/jpeg", data="AAAA"),
    )


def test_parameters_map_to_canonical_fields() -> None:
    request = decode_request(
        body(
            max_tokens=500,
            max_completion_tokens=300,
            top_p=0.5,
            stop="END",
            user="u-1",
            n=1,
            tool_choice={"type": "function", "function": {"name": "f"}},
            parallel_tool_calls=False,
            tools=[{"type": "function", "function": {"name": "f"}}],
        )
    )
    assert request.max_output_tokens == 300
    assert request.top_p == 0.5
    assert request.stop == ("END",)
    assert request.user == "u-1"
    assert request.stream is False
    assert request.tools == (ToolSpec(name="f"),)
    assert request.tool_choice == ToolChoice(ToolChoiceKind.TOOL, name="f", disable_parallel=True)
    assert request.parallel_tool_calls is False
    assert decode_request(body(stop=["a", "b"])).stop == ("a", "b")


@pytest.mark.parametrize(
    ("effort", "expected"),
    [
        ("low", ThinkingConfig(ThinkingMode.ENABLED, budget_tokens=2048, effort="low")),
        ("medium", ThinkingConfig(ThinkingMode.ENABLED, budget_tokens=8192, effort="medium")),
        ("high", ThinkingConfig(ThinkingMode.ENABLED, budget_tokens=24576, effort="high")),
        ("minimal", ThinkingConfig(ThinkingMode.DISABLED, effort="minimal")),
        ("none", ThinkingConfig(ThinkingMode.DISABLED, effort="none")),
    ],
)
def test_reasoning_effort_maps_to_thinking(effort: str, expected: ThinkingConfig) -> None:
    assert decode_request(body(reasoning_effort=effort)).thinking == expected


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": 3, "messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": "m"}, "messages"),
        ({"model": "m", "messages": {"role": "user"}}, "messages"),
        ({"model": "m", "messages": []}, "messages"),
        ({"model": "m", "messages": ["hi"]}, "messages[0]"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}, {"content": "y"}]}, "messages[1].role"),
        ({"model": "m", "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        ({"model": "m", "messages": [{"role": 1, "content": "x"}]}, "messages[0].role"),
        ({"model": "m", "messages": [{"role": "user"}]}, "messages[0].content"),
        ({"model": "m", "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"model": "m", "messages": [{"role": "user", "content": [{"type": "text"}]}]}, "messages[0].content[0].text"),
        (
            {"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
            "messages[0].content[0].image_url.url",
        ),
        (
            {"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": "data:x"}]}]},
            "messages[0].content[0].image_url",
        ),
        ({"model": "m", "messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
        (
            {"model": "m", "messages": [{"role": "assistant", "tool_calls": [{"id": "c", "function": {}}]}]},
            "messages[0].tool_calls[0].function.name",
        ),
        (
            {
                "model": "m",
                "messages": [
                    {"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": 1}}]}
                ],
            },
            "messages[0].tool_calls[0].function.arguments",
        ),
        (body(stream="yes"), "stream"),
        (body(temperature="hot"), "temperature"),
        (body(max_tokens=0), "max_tokens"),
        (body(max_completion_tokens=1.5), "max_completion_tokens"),
        (body(stop=["a", 1]), "stop[1]"),
        (body(tools={"type": "function"}), "tools"),
        (body(tools=[{"type": "function", "function": {"description": "d"}}]), "tools[0].function.name"),
        (
            body(tools=[{"type": "function", "function": {"name": "f", "parameters": []}}]),
            "tools[0].function.parameters",
        ),
        (body(tool_choice="sometimes"), "tool_choice"),
        (body(tool_choice={"type": "function", "function": {}}), "tool_choice.function.name"),
        (body(reasoning_effort="extreme"), "reasoning_effort"),
        (body(stream_options=True), "stream_options"),
        (body(n=2), "n"),
    ],
)
def test_invalid_bodies_name_the_offending_path(payload: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        decode_request(payload)
    assert caught.value.param == param
    assert caught.value.message


def test_error_message_is_readable() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        decode_request({"model": "m", "messages": [{"role": "user", "content": "x"}, {"role": "bot", "content": "y"}]})
    assert caught.value.message == (
        "Invalid 'messages[1].role': unknown role 'bot'; expected one of system, developer, user, assistant, tool."
    )
    with pytest.raises(InvalidRequestError) as caught:
        decode_request(body(n=3))
    assert "n=1" in caught.value.message


def test_body_must_be_an_object() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        decode_request([])  # type: ignore[arg-type]
    assert caught.value.param is None
