"""decode_request: the Codex CLI's captured bodies, and each input item, tool and setting form."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from apipod.dialects.responses import decode_request
from apipod.domain.chat import (
    ImagePart,
    Message,
    RedactedThinkingPart,
    ResponseFormat,
    ResponseFormatKind,
    Role,
    TextPart,
    ThinkingConfig,
    ThinkingMode,
    ThinkingPart,
    ToolChoice,
    ToolChoiceKind,
    ToolResultPart,
    ToolUsePart,
)
from apipod.domain.errors import InvalidRequestError
from tests.fixture_path import fixture

CODEX_REQUESTS = sorted(
    path.name
    for path in fixture("codex-cli").iterdir()
    if "_request" in path.name and path.suffix == ".json" and not path.name.endswith(".headers.json")
)


def load(name: str) -> dict[str, Any]:
    body: dict[str, Any] = orjson.loads(Path(fixture(f"codex-cli/{name}")).read_bytes())
    return body


def body(**fields: Any) -> dict[str, Any]:
    return {"model": "m", "input": "hi", **fields}


# --- Codex CLI captures ---------------------------------------------------------------------------


def test_every_codex_capture_decodes() -> None:
    assert len(CODEX_REQUESTS) == 6
    for name in CODEX_REQUESTS:
        raw = load(name)
        request = decode_request(raw, {})
        assert request.dialect == "responses"
        assert request.raw is raw
        assert request.stream is True
        assert request.messages[0].role is Role.USER
        assert request.system, name


def test_codex_developer_messages_become_the_system_prompt_in_order() -> None:
    raw = load("exec_command_request_1.json")
    request = decode_request(raw, {})
    expected = [part["text"] for item in raw["input"][:2] for part in item["content"]]
    assert [part.text for part in request.system] == expected
    assert request.system[0].text.startswith("You are a coding agent running in the Codex CLI")
    assert request.messages[0].text().startswith("<environment_context>")
    assert request.messages[-1] == Message(Role.USER, (TextPart("run echo hi"),))


def test_codex_tools_flatten_namespaces_and_drop_hosted_ones() -> None:
    request = decode_request(load("exec_command_request_1.json"), {})
    names = [tool.name for tool in request.tools]
    assert "multi_agent_v1__spawn_agent" in names
    assert "exec_command" in names
    assert "web_search" not in names
    assert len(names) == 12
    spawn = next(tool for tool in request.tools if tool.name == "multi_agent_v1__close_agent")
    assert spawn.parameters["type"] == "object"
    assert request.tool_choice == ToolChoice(ToolChoiceKind.AUTO)
    assert request.parallel_tool_calls is True
    assert request.thinking is None  # {"summary": "auto"} alone


def test_codex_custom_apply_patch_becomes_a_one_string_function() -> None:
    raw = load("apply_patch_request_1.json")
    request = decode_request(raw, {})
    names = [tool.name for tool in request.tools]
    assert "tool_search" not in names
    assert "web_search" not in names
    patch = next(tool for tool in request.tools if tool.name == "apply_patch")
    assert patch.parameters == {
        "type": "object",
        "properties": {"input": {"type": "string"}},
        "required": ["input"],
    }
    declared = next(tool for tool in raw["tools"] if tool.get("name") == "apply_patch")
    assert patch.description.startswith(declared["description"])
    assert declared["format"]["definition"] in patch.description
    assert "lark grammar" in patch.description
    assert request.thinking == ThinkingConfig(ThinkingMode.ENABLED, budget_tokens=8192, effort="medium")


def test_codex_function_call_and_output_pair_by_call_id() -> None:
    request = decode_request(load("exec_command_request_2.json"), {})
    call, result = request.messages[-2:]
    assert call == Message(
        Role.ASSISTANT,
        (
            ToolUsePart(
                id="call_cap0001",
                name="exec_command",
                arguments='{"cmd":"echo hi","login":false,"yield_time_ms":1000}',
            ),
        ),
    )
    assert result.role is Role.TOOL
    (part,) = result.parts
    assert isinstance(part, ToolResultPart)
    assert part.tool_use_id == "call_cap0001"
    assert part.name == "exec_command"
    assert part.text().endswith("Output:\nhi\n")


def test_codex_reasoning_and_custom_tool_call_replay() -> None:
    raw = load("apply_patch_request_2.json")
    request = decode_request(raw, {})
    assistant, result = request.messages[-2:]
    thinking, call = assistant.parts
    reasoning = raw["input"][4]
    assert thinking == ThinkingPart(
        "**Creating the file**\n\nI will add hello.txt with a patch.",
        signature=reasoning["encrypted_content"],
        origin="openai",
    )
    assert request.signed_origins == frozenset({"openai"})
    assert call == ToolUsePart(
        id="call_cap0002",
        name="apply_patch",
        arguments=orjson.dumps({"input": raw["input"][5]["input"]}).decode(),
    )
    assert isinstance(result.parts[0], ToolResultPart)
    assert result.parts[0].tool_use_id == "call_cap0002"
    assert result.parts[0].name == "apply_patch"


def test_codex_compaction_turn() -> None:
    request = decode_request(load("compaction_request.json"), {})
    assert request.tools == ()
    assert request.tool_choice == ToolChoice(ToolChoiceKind.AUTO, disable_parallel=True)
    assert request.messages[-1].text().startswith("You are performing a CONTEXT CHECKPOINT COMPACTION")


# --- input forms ----------------------------------------------------------------------------------


def test_string_input_is_one_user_message() -> None:
    request = decode_request(body(input="hello", instructions="Be brief."), {})
    assert request.system == (TextPart("Be brief."),)
    assert request.messages == (Message(Role.USER, (TextPart("hello"),)),)
    assert request.stream is False


def test_instructions_come_before_leading_system_messages_and_later_ones_stay_in_place() -> None:
    items = [
        {"role": "system", "content": "one"},
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "two"}]},
        {"role": "user", "content": "q"},
        {"role": "developer", "content": "mid"},
        {"role": "assistant", "content": "a"},
    ]
    request = decode_request(body(input=items, instructions="zero"), {})
    assert [part.text for part in request.system] == ["zero", "one", "two"]
    assert request.messages == (
        Message(Role.USER, (TextPart("q"),)),
        Message(Role.SYSTEM, (TextPart("mid"),)),
        Message(Role.ASSISTANT, (TextPart("a"),)),
    )


def test_user_parts_and_images() -> None:
    content = [
        {"type": "input_text", "text": "look"},
        {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "high"},
        {"type": "input_image", "image_url": "https://x/y.png"},
        {"type": "input_image", "file_id": "file_1"},
        {"type": "input_file", "file_id": "file_2"},
    ]
    request = decode_request(body(input=[{"role": "user", "content": content}]), {})
    assert request.messages[0].parts == (
        TextPart("look"),
        ImagePart(media_type="image/png", data="AAAA"),
        ImagePart(url="https://x/y.png"),
    )


def test_assistant_items_merge_and_outputs_merge() -> None:
    items = [
        {"role": "user", "content": "q"},
        {
            "type": "reasoning",
            "id": "rs_1",
            "summary": [{"type": "summary_text", "text": "a"}, {"type": "summary_text", "text": "b"}],
        },
        {
            "type": "message",
            "role": "assistant",
            "id": "msg_1",
            "status": "completed",
            "content": [
                {"type": "output_text", "text": "calling", "annotations": []},
                {"type": "refusal", "refusal": "no"},
            ],
        },
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}", "id": "fc_1", "status": "completed"},
        {"type": "function_call", "call_id": "c2", "name": "close_agent", "namespace": "ns", "arguments": ""},
        {"type": "function_call_output", "call_id": "c1", "output": [{"type": "input_text", "text": "r1"}]},
        {"type": "function_call_output", "call_id": "c2", "output": "r2"},
        {"type": "web_search_call", "id": "ws_1", "status": "completed"},
        {"role": "user", "content": "next"},
    ]
    request = decode_request(body(input=items), {})
    assert request.messages == (
        Message(Role.USER, (TextPart("q"),)),
        Message(
            Role.ASSISTANT,
            (
                ThinkingPart("a\n\nb"),
                TextPart("calling"),
                TextPart("no"),
                ToolUsePart(id="c1", name="f", arguments="{}"),
                ToolUsePart(id="c2", name="ns__close_agent", arguments="{}"),
            ),
        ),
        Message(
            Role.TOOL,
            (
                ToolResultPart("c1", (TextPart("r1"),), name="f"),
                ToolResultPart("c2", (TextPart("r2"),), name="ns__close_agent"),
            ),
        ),
        Message(Role.USER, (TextPart("next"),)),
    )
    assert request.signed_origins == frozenset()


@pytest.mark.parametrize(
    ("content", "part"),
    [
        ("gAAAAABxyz-_", ThinkingPart("t", signature="gAAAAABxyz-_", origin="openai")),
        ("anthropic~EqQBCkYI", ThinkingPart("t", signature="EqQBCkYI", origin="anthropic")),
        ("google_ai_studio~a~b", ThinkingPart("t", signature="a~b", origin="google_ai_studio")),
        ("anthropic~redacted~ZGF0YQ==", RedactedThinkingPart("ZGF0YQ==", origin="anthropic")),
        ("nokind~abc", ThinkingPart("t", signature="nokind~abc", origin="openai")),
    ],
)
def test_reasoning_tags(content: str, part: object) -> None:
    item = {"type": "reasoning", "summary": [{"type": "summary_text", "text": "t"}], "encrypted_content": content}
    request = decode_request(body(input=[{"role": "user", "content": "q"}, item]), {})
    assert request.messages[1].parts == (part,)
    assert request.signed_origins == frozenset({part.origin})  # type: ignore[attr-defined]


def test_reasoning_without_text_or_payload_is_dropped() -> None:
    items = [{"role": "user", "content": "q"}, {"type": "reasoning", "summary": [], "content": None}]
    request = decode_request(body(input=items), {})
    assert request.messages == (Message(Role.USER, (TextPart("q"),)),)


def test_custom_tool_call_output_with_parts() -> None:
    items = [
        {"type": "custom_tool_call", "call_id": "c", "name": "apply_patch", "input": "*** Begin Patch"},
        {"type": "custom_tool_call_output", "call_id": "c", "output": [{"type": "input_text", "text": "ok"}]},
    ]
    request = decode_request(body(input=items), {})
    assert request.messages[1].parts == (ToolResultPart("c", (TextPart("ok"),), name="apply_patch"),)


# --- settings -------------------------------------------------------------------------------------


def test_settings() -> None:
    request = decode_request(
        body(
            max_output_tokens=100,
            temperature=0.5,
            top_p=0.9,
            metadata={"a": "b"},
            safety_identifier="u1",
            store=False,
            previous_response_id="resp_ignored",
            include=["reasoning.encrypted_content"],
            reasoning={"effort": "high", "summary": "detailed"},
        ),
        {},
    )
    assert request.max_output_tokens == 100
    assert request.temperature == 0.5
    assert request.top_p == 0.9
    assert request.metadata == {"a": "b"}
    assert request.user == "u1"
    assert request.thinking == ThinkingConfig(ThinkingMode.ENABLED, budget_tokens=24576, effort="high")
    assert decode_request(body(user="u0", safety_identifier="u1"), {}).user == "u0"
    assert decode_request(body(reasoning={"effort": "none"}), {}).thinking == ThinkingConfig(
        ThinkingMode.DISABLED, effort="none"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ({"format": {"type": "text"}, "verbosity": "low"}, None),
        ({"verbosity": "low"}, None),
        ({"format": {"type": "json_object"}}, ResponseFormat(kind=ResponseFormatKind.JSON_OBJECT)),
        (
            {"format": {"type": "json_schema", "name": "out", "strict": True, "schema": {"type": "object"}}},
            ResponseFormat(kind=ResponseFormatKind.JSON_SCHEMA, schema={"type": "object"}, name="out", strict=True),
        ),
    ],
)
def test_text_format(text: dict[str, Any], expected: ResponseFormat | None) -> None:
    assert decode_request(body(text=text), {}).response_format == expected


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("none", ToolChoice(ToolChoiceKind.NONE)),
        ("required", ToolChoice(ToolChoiceKind.REQUIRED)),
        ({"type": "function", "name": "f"}, ToolChoice(ToolChoiceKind.TOOL, name="f")),
        ({"type": "custom", "name": "apply_patch"}, ToolChoice(ToolChoiceKind.TOOL, name="apply_patch")),
        ({"type": "allowed_tools", "mode": "required", "tools": []}, ToolChoice(ToolChoiceKind.REQUIRED)),
        ({"type": "allowed_tools", "mode": "auto", "tools": []}, ToolChoice(ToolChoiceKind.AUTO)),
        ({"type": "web_search"}, None),
    ],
)
def test_tool_choice(choice: object, expected: ToolChoice | None) -> None:
    assert decode_request(body(tool_choice=choice), {}).tool_choice == expected


def test_function_and_custom_tools() -> None:
    tools = [
        {"type": "function", "name": "f", "description": "d", "parameters": {"type": "object"}, "strict": True},
        {"type": "function", "name": "g", "parameters": None, "strict": None},
        {"type": "custom", "name": "free"},
        {"type": "namespace", "name": "ns", "tools": [{"type": "custom", "name": "c", "description": "cd"}]},
        {"type": "file_search", "vector_store_ids": []},
    ]
    specs = decode_request(body(tools=tools), {}).tools
    assert [(spec.name, spec.description.split("\n")[0]) for spec in specs] == [
        ("f", "d"),
        ("g", ""),
        ("free", "Pass the tool's raw input text as the `input` string argument (not JSON-encoded content)."),
        ("ns__c", "cd"),
    ]
    assert specs[0].parameters == {"type": "object"}
    assert specs[1].parameters == {"type": "object", "properties": {}}


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"model": None}, "model"),
        ({"input": None}, "input"),
        ({"input": 3}, "input"),
        ({"input": [{"role": "bot", "content": "x"}]}, "input[0].role"),
        ({"input": [{"role": "user"}]}, "input[0].content"),
        ({"input": [{"type": "function_call", "name": "f", "arguments": "{}"}]}, "input[0].call_id"),
        ({"input": [{"type": "function_call_output", "call_id": "c", "output": 1}]}, "input[0].output"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "data:x"}]}]},
            "input[0].content[0].image_url",
        ),
        ({"tools": [{"type": "function"}]}, "tools[0].name"),
        (
            {"tools": [{"type": "namespace", "name": "n", "tools": [{"type": "function", "name": 1}]}]},
            "tools[0].tools[0].name",
        ),
        ({"tool_choice": "sometimes"}, "tool_choice"),
        ({"tool_choice": {"type": "function"}}, "tool_choice.name"),
        ({"reasoning": {"effort": "extreme"}}, "reasoning.effort"),
        ({"text": {"format": {"type": "xml"}}}, "text.format.type"),
        ({"text": {"format": 1}}, "text.format"),
        ({"metadata": {"k": 1}}, "metadata.k"),
        ({"max_output_tokens": 0}, "max_output_tokens"),
        ({"temperature": "hot"}, "temperature"),
    ],
)
def test_bad_input_names_the_field(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        decode_request(body(**fields), {})
    assert caught.value.param == param
    assert param in str(caught.value)
