"""Gemini client bodies -> ChatRequest: every Gemini CLI capture, then the mapping rules one by one."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from apipod.dialects.gemini import count_tokens, decode_client_request, decode_count_tokens_request
from apipod.domain.chat import (
    ChatRequest,
    ImagePart,
    Message,
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


def capture(name: str) -> dict[str, Any]:
    body = orjson.loads(fixture(f"gemini-cli/{name}.json").read_bytes())
    assert isinstance(body, dict)
    return body


def decode(body: dict[str, Any], model: str = "test-model", stream: bool = False) -> ChatRequest:
    return decode_client_request(body, model=model, stream=stream, headers={})


def user(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"role": "user", "parts": list(parts)}


def model_turn(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"role": "model", "parts": list(parts)}


# --- the captures -----------------------------------------------------------------------------------------------


def test_text_capture() -> None:
    body = capture("text_request")
    request = decode(body, stream=True)
    assert request.dialect == "gemini"
    assert request.raw is body
    assert request.model == "test-model"
    assert request.stream is True
    (message,) = request.messages
    assert message.role is Role.USER
    assert [type(p) for p in message.parts] == [TextPart, TextPart]
    assert message.parts[0].text.startswith("<session_context>")  # type: ignore[union-attr]
    assert request.system_text().startswith("You are Gemini CLI")
    assert (request.temperature, request.top_p, request.top_k) == (1, 0.95, 64)
    assert request.thinking == ThinkingConfig(ThinkingMode.ADAPTIVE)  # includeThoughts alone


def test_tools_with_parameters_json_schema_are_used_as_they_are() -> None:
    body = capture("read_file_request_1")
    request = decode(body)
    names = [t.name for t in request.tools]
    assert names == [
        "update_topic",
        "list_directory",
        "read_file",
        "grep_search",
        "glob",
        "google_web_search",
        "enter_plan_mode",
        "invoke_agent",
    ]
    read_file = request.tools[2]
    declared = body["tools"][0]["functionDeclarations"][2]
    assert read_file.description == declared["description"]
    assert read_file.parameters == declared["parametersJsonSchema"]
    assert read_file.parameters["properties"]["start_line"] == {
        "description": "Optional: The 1-based line number to start reading from.",
        "type": "integer",
        "minimum": 1,
    }
    assert request.tool_choice is None


def test_tool_round_trip_keeps_the_client_ids_and_drops_the_skip_sentinel() -> None:
    request = decode(capture("read_file_request_2"))
    roles = [m.role for m in request.messages]
    assert roles == [Role.USER, Role.ASSISTANT, Role.TOOL]
    (call,) = request.messages[1].parts
    assert call == ToolUsePart(
        id="read_file_1796232208225_0", name="read_file", arguments='{"file_path":"notes.txt"}', signature=None
    )
    (result,) = request.messages[2].parts
    assert result == ToolResultPart(
        tool_use_id="read_file_1796232208225_0",
        content=(TextPart('{"output":"remember the milk\\n"}'),),
        name="read_file",
    )


def test_image_after_a_function_response_belongs_to_that_result() -> None:
    body = capture("read_image_request_2")
    request = decode(body)
    (result,) = request.messages[-1].parts
    assert isinstance(result, ToolResultPart)
    assert result.tool_use_id == "read_file_1796232213194_0"
    text, image = result.content
    assert text == TextPart('{"output":"Binary content provided (1 item(s))."}')
    assert image == ImagePart(media_type="image/png", data=body["contents"][2]["parts"][1]["inlineData"]["data"])
    assert request.messages[-1].role is Role.TOOL
    assert len(request.messages) == 3  # no stray user message for the image


def test_count_tokens_capture() -> None:
    body = capture("read_image_count_tokens_request")
    request = decode_count_tokens_request(body, model="test-model")
    (message,) = request.messages
    (result,) = message.parts
    assert isinstance(result, ToolResultPart)
    assert result.tool_use_id == "read_file__read_file_1796232213194_0"  # no call to pair with: kept as sent
    assert isinstance(result.content[1], ImagePart)
    assert count_tokens(request) > 1600  # the image's fixed share plus the text


def test_count_tokens_with_a_generate_content_request_counts_system_and_tools() -> None:
    inner = capture("read_file_request_1")
    bare = decode_count_tokens_request({"contents": inner["contents"]}, model="m")
    full = decode_count_tokens_request({"generateContentRequest": {"model": "models/m", **inner}}, model="m")
    assert full.messages == bare.messages
    assert full.tools and full.system
    assert count_tokens(full) > count_tokens(bare) + 7000  # a 30 kB system prompt


def test_count_tokens_needs_contents() -> None:
    with pytest.raises(InvalidRequestError, match="contents"):
        decode_count_tokens_request({}, model="m")


def test_classifier_capture_asks_for_json_matching_its_schema() -> None:
    request = decode(capture("auto_route_classifier_request"), model="gemini-3.5-flash-lite")
    fmt = request.response_format
    assert fmt is not None
    assert fmt.kind is ResponseFormatKind.JSON_SCHEMA
    assert fmt.schema == {  # the CLI spells the types in upper case; JSON Schema wants lower case
        "type": "object",
        "properties": {
            "complexity_reasoning": {"type": "string", "description": "Brief explanation for the score."},
            "complexity_score": {"type": "integer", "description": "Complexity score from 1-100."},
        },
        "required": ["complexity_reasoning", "complexity_score"],
    }
    assert request.thinking == ThinkingConfig(ThinkingMode.ENABLED, budget_tokens=24576, effort="high")
    assert [m.role for m in request.messages] == [Role.USER, Role.USER]


def test_web_search_capture_drops_the_built_in_tool() -> None:
    body = capture("web_search_grounding_request")
    request = decode(body, model="gemini-3-flash-preview")
    assert request.tools == ()
    assert request.raw is not None
    assert request.raw["tools"] == [{"googleSearch": {}}]
    assert (request.temperature, request.top_p) == (0, 1)


@pytest.mark.parametrize(
    "name",
    [
        "text_request",
        "read_file_request_1",
        "read_file_request_2",
        "read_image_request_1",
        "read_image_request_2",
        "auto_route_classifier_request",
        "auto_route_main_request",
        "web_search_grounding_request",
    ],
)
def test_every_capture_decodes(name: str) -> None:
    request = decode(capture(name))
    assert request.messages
    assert request.messages[0].role is Role.USER


# --- contents ---------------------------------------------------------------------------------------------------


def test_calls_without_ids_get_stable_ids_and_results_pair_by_name_and_order() -> None:
    body = {
        "contents": [
            user({"text": "go"}),
            model_turn(
                {"functionCall": {"name": "a", "args": {"n": 1}}},
                {"functionCall": {"name": "b", "args": {}}},
                {"functionCall": {"name": "a", "args": {"n": 2}}},
            ),
            user(
                {"functionResponse": {"name": "b", "response": {"output": "B"}}},
                {"functionResponse": {"name": "a", "response": {"output": "A1"}}},
                {"functionResponse": {"name": "a", "response": {"output": "A2"}}},
            ),
        ]
    }
    first = decode(body)
    calls = [p for p in first.messages[1].parts if isinstance(p, ToolUsePart)]
    results = [p for p in first.messages[2].parts if isinstance(p, ToolResultPart)]
    assert [c.id for c in calls] == ["gemini_call_1_0", "gemini_call_1_1", "gemini_call_1_2"]
    assert [(r.tool_use_id, r.text()) for r in results] == [
        ("gemini_call_1_1", '{"output":"B"}'),
        ("gemini_call_1_0", '{"output":"A1"}'),
        ("gemini_call_1_2", '{"output":"A2"}'),
    ]
    assert decode(body).messages == first.messages  # stable across requests


def test_a_result_with_an_id_answers_a_call_without_one() -> None:
    body = {
        "contents": [
            user({"text": "go"}),
            model_turn({"functionCall": {"name": "a", "args": {}}}),
            user({"functionResponse": {"id": "client-made", "name": "a", "response": {"output": "x"}}}),
        ]
    }
    request = decode(body)
    assert request.messages[2].parts[0].tool_use_id == request.messages[1].parts[0].id  # type: ignore[union-attr]


def test_error_result_and_function_role() -> None:
    body = {
        "contents": [
            user({"text": "go"}),
            model_turn({"functionCall": {"id": "c1", "name": "run", "args": {}}}),
            {
                "role": "function",
                "parts": [{"functionResponse": {"id": "c1", "name": "run", "response": {"error": "boom"}}}],
            },
        ]
    }
    (result,) = decode(body).messages[2].parts
    assert isinstance(result, ToolResultPart)
    assert result.is_error
    assert result.text() == '{"error":"boom"}'


def test_results_and_text_in_one_turn_become_a_tool_then_a_user_message() -> None:
    body = {
        "contents": [
            user({"text": "go"}),
            model_turn({"functionCall": {"id": "c1", "name": "run", "args": {}}}),
            user({"functionResponse": {"id": "c1", "name": "run", "response": {"output": "ok"}}}, {"text": "and now?"}),
        ]
    }
    messages = decode(body).messages
    assert [m.role for m in messages] == [Role.USER, Role.ASSISTANT, Role.TOOL, Role.USER]
    assert messages[3] == Message(Role.USER, (TextPart("and now?"),))


def test_thought_signatures_land_where_the_upstream_side_puts_them() -> None:
    body = {
        "contents": [
            user({"text": "hi"}),
            model_turn(
                {"text": "Let me ", "thought": True},
                {"text": "think.", "thought": True},
                {"text": "", "thought": True, "thoughtSignature": "c2lnLXRob3VnaHQ="},
                {"text": "Hello"},
                {"text": " there", "thoughtSignature": "c2lnLXRleHQ="},
                {"functionCall": {"id": "c1", "name": "f", "args": {"x": 1}}, "thoughtSignature": "c2lnLWNhbGw="},
                {
                    "functionCall": {"id": "c2", "name": "f", "args": {}},
                    "thoughtSignature": "skip_thought_signature_validator",
                },
            ),
        ]
    }
    assert decode(body).messages[1].parts == (
        ThinkingPart("Let me think.", "c2lnLXRob3VnaHQ="),
        TextPart("Hello there"),
        ThinkingPart("", "c2lnLXRleHQ="),
        ToolUsePart(id="c1", name="f", arguments='{"x":1}', signature="c2lnLWNhbGw="),
        ToolUsePart(id="c2", name="f", arguments="{}", signature=None),
    )


def test_media_other_than_images_becomes_a_note() -> None:
    body = {
        "contents": [
            user(
                {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}},
                {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/a.jpg"}},
                {"fileData": {"mimeType": "video/mp4", "fileUri": "https://youtu.be/x"}},
                {"executableCode": {"language": "PYTHON", "code": "print(1)"}},
            )
        ]
    }
    (message,) = decode(body).messages
    pdf, jpeg, video = message.parts
    assert isinstance(pdf, TextPart) and "application/pdf" in pdf.text
    assert jpeg == ImagePart(media_type="image/jpeg", url="https://example.com/a.jpg")
    assert isinstance(video, TextPart) and "https://youtu.be/x" in video.text


def test_role_defaults_to_user_and_snake_case_fields_are_read() -> None:
    body = {
        "contents": [{"parts": [{"text": "hi"}]}],
        "system_instruction": {"parts": [{"text": "be brief"}]},
        "generation_config": {"max_output_tokens": 50, "stop_sequences": ["END"]},
        "tools": [{"function_declarations": [{"name": "f", "parameters_json_schema": {"type": "object"}}]}],
    }
    request = decode(body)
    assert request.messages == (Message(Role.USER, (TextPart("hi"),)),)
    assert request.system_text() == "be brief"
    assert request.max_output_tokens == 50
    assert request.stop == ("END",)
    assert request.tools[0].parameters == {"type": "object"}


def test_system_instruction_as_a_string() -> None:
    request = decode({"contents": [user({"text": "hi"})], "systemInstruction": "be brief"})
    assert request.system == (TextPart("be brief"),)


# --- tools, tool config, generation config ----------------------------------------------------------------------


def test_openapi_parameters_become_json_schema() -> None:
    parameters = {
        "type": "OBJECT",
        "properties": {
            "city": {"type": "STRING", "nullable": True, "enum": ["Paris", "Rome"]},
            "days": {"type": "INTEGER", "minimum": 1},
            "tags": {"type": "ARRAY", "items": {"type": "STRING"}},
            "type": {"type": "STRING", "description": "a property named type"},
        },
        "required": ["city"],
        "propertyOrdering": ["city", "days"],
    }
    request = decode(
        {
            "contents": [user({"text": "hi"})],
            "tools": [{"functionDeclarations": [{"name": "f", "parameters": parameters}]}],
        }
    )
    assert request.tools[0].parameters == {
        "type": "object",
        "properties": {
            "city": {"type": ["string", "null"], "enum": ["Paris", "Rome", None]},
            "days": {"type": "integer", "minimum": 1},
            "tags": {"type": "array", "items": {"type": "string"}},
            "type": {"type": "string", "description": "a property named type"},
        },
        "required": ["city"],
    }


def test_declaration_without_parameters_takes_no_arguments() -> None:
    request = decode({"contents": [user({"text": "hi"})], "tools": [{"functionDeclarations": [{"name": "now"}]}]})
    assert request.tools[0].parameters == {"type": "object", "properties": {}}


@pytest.mark.parametrize(
    ("config", "choice"),
    [
        ({"mode": "AUTO"}, ToolChoice(ToolChoiceKind.AUTO)),
        ({"mode": "VALIDATED"}, ToolChoice(ToolChoiceKind.AUTO)),
        ({"mode": "NONE"}, ToolChoice(ToolChoiceKind.NONE)),
        ({"mode": "ANY"}, ToolChoice(ToolChoiceKind.REQUIRED)),
        ({"mode": "ANY", "allowedFunctionNames": ["f"]}, ToolChoice(ToolChoiceKind.TOOL, name="f")),
        ({"mode": "ANY", "allowedFunctionNames": ["f", "g"]}, ToolChoice(ToolChoiceKind.REQUIRED)),
        ({}, None),
    ],
)
def test_tool_config(config: dict[str, Any], choice: ToolChoice | None) -> None:
    body = {
        "contents": [user({"text": "hi"})],
        "tools": [{"functionDeclarations": [{"name": "f"}, {"name": "g"}]}],
        "toolConfig": {"functionCallingConfig": config},
    }
    assert decode(body).tool_choice == choice


@pytest.mark.parametrize(
    ("thinking", "expected"),
    [
        ({"thinkingBudget": 0}, ThinkingConfig(ThinkingMode.DISABLED)),
        ({"thinkingBudget": -1, "includeThoughts": True}, ThinkingConfig(ThinkingMode.ADAPTIVE)),
        ({"thinkingBudget": 4096}, ThinkingConfig(ThinkingMode.ENABLED, budget_tokens=4096)),
        ({"thinkingLevel": "LOW"}, ThinkingConfig(ThinkingMode.ENABLED, budget_tokens=2048, effort="low")),
        ({"thinkingLevel": "MINIMAL"}, ThinkingConfig(ThinkingMode.DISABLED, effort="minimal")),
        ({"includeThoughts": True}, ThinkingConfig(ThinkingMode.ADAPTIVE)),
        ({"includeThoughts": False}, None),
    ],
)
def test_thinking_config(thinking: dict[str, Any], expected: ThinkingConfig | None) -> None:
    body = {"contents": [user({"text": "hi"})], "generationConfig": {"thinkingConfig": thinking}}
    assert decode(body).thinking == expected


def test_generation_config_and_response_formats() -> None:
    config = {
        "temperature": 0.2,
        "topP": 0.9,
        "topK": 40,
        "maxOutputTokens": 1000,
        "stopSequences": ["a", "b"],
        "candidateCount": 1,
        "responseMimeType": "application/json",
    }
    request = decode({"contents": [user({"text": "hi"})], "generationConfig": config, "safetySettings": []})
    assert (request.temperature, request.top_p, request.top_k) == (0.2, 0.9, 40)
    assert (request.max_output_tokens, request.stop) == (1000, ("a", "b"))
    assert request.response_format is not None
    assert request.response_format.kind is ResponseFormatKind.JSON_OBJECT

    schema = {"type": "OBJECT", "properties": {"n": {"type": "NUMBER"}}}
    config = {"responseMimeType": "application/json", "responseSchema": schema}
    fmt = decode({"contents": [user({"text": "hi"})], "generationConfig": config}).response_format
    assert fmt is not None
    assert fmt.kind is ResponseFormatKind.JSON_SCHEMA
    assert fmt.schema == {"type": "object", "properties": {"n": {"type": "number"}}}

    config = {"responseMimeType": "text/plain"}
    assert decode({"contents": [user({"text": "hi"})], "generationConfig": config}).response_format is None


# --- bad input --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "contents"),
        ({"contents": []}, "contents"),
        ({"contents": "hi"}, "contents"),
        ({"contents": [user({"executableCode": {"language": "PYTHON", "code": "1"}})]}, "contents"),
        ({"contents": [{"role": "bot", "parts": [{"text": "x"}]}]}, "contents[0].role"),
        ({"contents": [{"role": "user", "parts": [{"text": 5}]}]}, "contents[0].parts[0].text"),
        ({"contents": [model_turn({"functionCall": {"args": {}}})]}, "contents[0].parts[0].functionCall.name"),
        (
            {"contents": [model_turn({"functionCall": {"name": "f", "args": [1]}})]},
            "contents[0].parts[0].functionCall.args",
        ),
        (
            {"contents": [user({"functionResponse": {"response": {}}})]},
            "contents[0].parts[0].functionResponse.name",
        ),
        ({"contents": [user({"inlineData": {"mimeType": "image/png"}})]}, "contents[0].parts[0].inlineData.data"),
        (
            {"contents": [user({"text": "x"})], "tools": [{"functionDeclarations": [{}]}]},
            "tools[0].functionDeclarations[0].name",
        ),
        (
            {"contents": [user({"text": "x"})], "generationConfig": {"candidateCount": 2}},
            "generationConfig.candidateCount",
        ),
        (
            {"contents": [user({"text": "x"})], "generationConfig": {"maxOutputTokens": 0}},
            "generationConfig.maxOutputTokens",
        ),
        (
            {"contents": [user({"text": "x"})], "generationConfig": {"temperature": "hot"}},
            "generationConfig.temperature",
        ),
        (
            {"contents": [user({"text": "x"})], "generationConfig": {"thinkingConfig": {"thinkingLevel": "MAX"}}},
            "generationConfig.thinkingConfig.thinkingLevel",
        ),
        (
            {
                "contents": [user({"text": "x"})],
                "tools": [{"functionDeclarations": [{"name": "f"}]}],
                "toolConfig": {"functionCallingConfig": {"mode": "SOMETIMES"}},
            },
            "toolConfig.functionCallingConfig.mode",
        ),
    ],
)
def test_bad_input_names_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        decode(body)
    assert caught.value.param == param
    assert param in caught.value.message
