from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from apipod.dialects.anthropic import decode_count_tokens_request, decode_request, encode_request
from apipod.domain.chat import (
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
from apipod.domain.errors import InvalidRequestError
from tests.fixture_path import fixture

TOOL_ID = "toolu_01A2b3C4d5E6f7G8h9I0j1K2"


def load() -> dict[str, Any]:
    body: dict[str, Any] = orjson.loads(fixture("anthropic/request_thinking_tools.json").read_bytes())
    return body


def test_decodes_the_thinking_and_tools_fixture() -> None:
    body = load()
    request = decode_request(body, {"Anthropic-Beta": "interleaved-thinking-2025-05-14", "x-api-key": "secret"})
    assert request.raw is body
    assert request.dialect == "anthropic"
    assert request.raw_headers == {"anthropic-beta": "interleaved-thinking-2025-05-14"}
    assert request.model == "claude-sonnet-4-5"
    assert request.max_output_tokens == 16000
    assert request.stream is True
    assert request.thinking == ThinkingConfig(ThinkingMode.ENABLED, budget_tokens=4096)
    assert request.system == (TextPart("You are a coding agent.", cache_control={"type": "ephemeral"}),)
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    assert request.tools == (ToolSpec("get_weather", "Current weather for a city", schema),)
    assert request.tool_choice == ToolChoice(ToolChoiceKind.AUTO)
    assert request.parallel_tool_calls is None
    assert request.user == "user_123"
    assert request.metadata == {"user_id": "user_123"}
    assert request.messages == (
        Message(Role.USER, (TextPart("What's the weather in Paris?"),)),
        Message(
            Role.ASSISTANT,
            (
                ThinkingPart("The user wants the weather; call the tool.", "EqQBCgIYAhIMc2lnbmF0dXJlLWV4YW1wbGU="),
                ToolUsePart(TOOL_ID, "get_weather", '{"city":"Paris"}'),
            ),
        ),
        Message(Role.TOOL, (ToolResultPart(TOOL_ID, (TextPart("18C, cloudy"),)),)),
        Message(Role.USER, (TextPart("Answer in one sentence."),)),
    )


def test_same_dialect_passthrough_keeps_unknown_fields_and_cache_control() -> None:
    body = load()
    body["context_management"] = {"edits": [{"type": "clear_tool_uses_20250919"}]}
    body["messages"][2]["content"][1]["cache_control"] = {"type": "ephemeral", "ttl": "1h"}
    original = copy.deepcopy(body)
    request = decode_request(body)

    upstream = encode_request(request, model="claude-sonnet-4-5-20250929", stream=False)

    assert upstream["model"] == "claude-sonnet-4-5-20250929"
    assert upstream["stream"] is False
    assert upstream["context_management"] == {"edits": [{"type": "clear_tool_uses_20250919"}]}
    assert upstream["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert upstream["messages"][2]["content"][1]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
    assert upstream["thinking"] == {"type": "enabled", "budget_tokens": 4096}
    assert upstream["messages"] is body["messages"]  # a shallow copy: no re-encoding of the history
    assert body == original  # the client's body is untouched
    assert {k: v for k, v in upstream.items() if k not in ("model", "stream")} == {
        k: v for k, v in original.items() if k not in ("model", "stream")
    }


def test_claude_code_system_turns_stay_in_place() -> None:
    body = {
        "model": "m",
        "max_tokens": 10,
        "system": "top",
        "messages": [
            {"role": "user", "content": "hi"},
            {
                "role": "system",
                "content": [{"type": "text", "text": "reminder", "cache_control": {"type": "ephemeral"}}],
            },
            {"role": "user", "content": "again"},
        ],
    }
    request = decode_request(body)
    assert request.system == (TextPart("top"),)
    assert [m.role for m in request.messages] == [Role.USER, Role.SYSTEM, Role.USER]
    assert request.messages[1].parts == (TextPart("reminder", cache_control={"type": "ephemeral"}),)


def test_block_kinds() -> None:
    body = {
        "model": "m",
        "max_tokens": 10,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}},
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}},
                    {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "doc"}},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "redacted_thinking", "data": "opaque"},
                    {"type": "tool_use", "id": "t1", "name": "f", "input": '{"a": 1}'},
                    {"type": "tool_use", "id": "t2", "name": "g", "input": {"x": [1, "ü"]}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t1",
                        "is_error": True,
                        "content": [
                            {"type": "text", "text": "boom"},
                            {"type": "image", "source": {"type": "base64", "media_type": "image/gif", "data": "R0lG"}},
                        ],
                    },
                    {"type": "tool_result", "tool_use_id": "t2"},
                ],
            },
        ],
    }
    messages = decode_request(body).messages
    assert messages[0] == Message(
        Role.USER, (ImagePart("image/png", data="iVBOR"), ImagePart(url="https://example.com/a.jpg"))
    )
    assert messages[1] == Message(
        Role.ASSISTANT,
        (RedactedThinkingPart("opaque"), ToolUsePart("t1", "f", '{"a":1}'), ToolUsePart("t2", "g", '{"x":[1,"ü"]}')),
    )
    assert messages[2] == Message(
        Role.TOOL,
        (
            ToolResultPart("t1", (TextPart("boom"), ImagePart("image/gif", data="R0lG")), is_error=True),
            ToolResultPart("t2", ()),
        ),
    )
    assert len(messages) == 3  # no empty user message after the results


def test_tool_choice_and_sampling_fields() -> None:
    body = {
        "model": "m",
        "max_tokens": 10,
        "messages": [],
        "tool_choice": {"type": "tool", "name": "f", "disable_parallel_tool_use": True},
        "temperature": 0.2,
        "top_p": 0.9,
        "top_k": 40,
        "stop_sequences": ["###"],
        "thinking": {"type": "adaptive"},
    }
    request = decode_request(body)
    assert request.tool_choice == ToolChoice(ToolChoiceKind.TOOL, name="f", disable_parallel=True)
    assert request.parallel_tool_calls is False
    assert (request.temperature, request.top_p, request.top_k, request.stop) == (0.2, 0.9, 40, ("###",))
    assert request.thinking == ThinkingConfig(ThinkingMode.ADAPTIVE)
    assert request.stream is False
    any_choice = decode_request({**body, "tool_choice": {"type": "any"}, "thinking": {"type": "disabled"}})
    assert any_choice.tool_choice == ToolChoice(ToolChoiceKind.REQUIRED)
    assert any_choice.thinking == ThinkingConfig(ThinkingMode.DISABLED)


def test_server_tools_are_left_to_the_raw_body() -> None:
    tools = [
        {"type": "web_search_20250305", "name": "web_search"},
        {"name": "f", "input_schema": {"type": "object"}},
    ]
    request = decode_request({"model": "m", "max_tokens": 1, "messages": [], "tools": tools})
    assert [t.name for t in request.tools] == ["f"]


BASE = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"max_tokens": None}, "max_tokens"),
        ({"max_tokens": True}, "max_tokens"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"model": 3}, "model"),
        ({"messages": None}, "messages"),
        ({"messages": {"role": "user"}}, "messages"),
        ({"messages": [{"role": "user", "content": "a"}, {"role": "bot", "content": "b"}]}, "messages[1].role"),
        ({"messages": [{"role": "user"}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": 1}]}]},
            "messages[0].content[1].text",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "tool_use", "id": "a", "name": "b", "input": {}}]}]},
            "messages[0].content[0].type",
        ),
        ({"messages": [{"role": "user", "content": [{"type": "tool_result"}]}]}, "messages[0].content[0].tool_use_id"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "base64"}}]}]},
            "messages[0].content[0].source.media_type",
        ),
        ({"system": [{"type": "image"}]}, "system[0].type"),
        ({"system": 1}, "system"),
        ({"tools": [{"name": "f"}]}, "tools[0].input_schema"),
        ({"tools": [{"input_schema": {}}]}, "tools[0].name"),
        ({"tool_choice": {"type": "tool"}}, "tool_choice.name"),
        ({"tool_choice": {"type": "sometimes"}}, "tool_choice.type"),
        ({"thinking": {"type": "enabled"}}, "thinking.budget_tokens"),
        ({"stop_sequences": ["a", 2]}, "stop_sequences[1]"),
        ({"metadata": {"user_id": 5}}, "metadata.user_id"),
        ({"stream": "yes"}, "stream"),
        ({"temperature": "hot"}, "temperature"),
    ],
)
def test_validation_errors_name_the_json_path(change: dict[str, Any], param: str) -> None:
    body = {k: v for k, v in {**BASE, **change}.items() if v is not None}
    with pytest.raises(InvalidRequestError) as caught:
        decode_request(body)
    assert caught.value.param == param
    assert caught.value.message.startswith(f"{param}: ")


def test_missing_max_tokens_message() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        decode_request({"model": "m", "messages": []})
    assert caught.value.message == "max_tokens: Field required"


def test_body_must_be_an_object() -> None:
    with pytest.raises(InvalidRequestError, match="JSON object"):
        decode_request([])  # type: ignore[arg-type]


def test_count_tokens_body_needs_no_max_tokens() -> None:
    request = decode_count_tokens_request({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    assert request.max_output_tokens is None
    assert request.messages == (Message(Role.USER, (TextPart("hi"),)),)
