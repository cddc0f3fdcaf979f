"""Bodies written by the google-genai Python SDK (captured through a mock transport): it mixes camelCase with
snake_case (``inlineData.mime_type``, ``thinking_budget``, schema keywords such as ``max_items``)."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
from google.genai import Client, types

from apipod.dialects.gemini import decode_client_request
from apipod.domain.chat import (
    ImagePart,
    ResponseFormatKind,
    TextPart,
    ThinkingConfig,
    ThinkingMode,
    ThinkingPart,
    ToolChoice,
    ToolChoiceKind,
    ToolResultPart,
    ToolUsePart,
)

PERSON = types.Schema(
    type=types.Type.OBJECT,
    properties={
        "name": types.Schema(type=types.Type.STRING, nullable=True, min_length=1),
        "tags": types.Schema(type=types.Type.ARRAY, items=types.Schema(type=types.Type.STRING), max_items=3),
    },
    required=["name"],
)
PERSON_JSON_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": ["string", "null"], "minLength": 1},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
    },
    "required": ["name"],
}
ANSWER = {"candidates": [{"content": {"parts": [{"text": "{}"}], "role": "model"}, "finishReason": "STOP"}]}


def sdk_body(contents: Any, config: types.GenerateContentConfig) -> dict[str, Any]:
    bodies: list[dict[str, Any]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        bodies.append(orjson.loads(request.content))
        return httpx.Response(200, json=ANSWER)

    transport = httpx.Client(transport=httpx.MockTransport(answer))
    client = Client(api_key="k", http_options=types.HttpOptions(base_url="http://gw", httpx_client=transport))
    client.models.generate_content(model="m", contents=contents, config=config)
    (body,) = bodies
    return body


def test_sdk_body_with_snake_case_fields() -> None:
    contents = [
        types.Content(
            role="user",
            parts=[types.Part(text="hi"), types.Part(inline_data=types.Blob(mime_type="image/png", data=b"png"))],
        )
    ]
    config = types.GenerateContentConfig(
        system_instruction="be brief",
        response_mime_type="application/json",
        response_schema=PERSON,
        tools=[types.Tool(function_declarations=[types.FunctionDeclaration(name="save", parameters=PERSON)])],
        tool_config=types.ToolConfig(
            function_calling_config=types.FunctionCallingConfig(
                mode=types.FunctionCallingConfigMode.ANY, allowed_function_names=["save"]
            )
        ),
        thinking_config=types.ThinkingConfig(thinking_budget=100, include_thoughts=True),
        max_output_tokens=300,
    )
    body = sdk_body(contents, config)
    request = decode_client_request(body, model="m", stream=False, headers={})
    (message,) = request.messages
    assert message.parts == (TextPart("hi"), ImagePart(media_type="image/png", data="cG5n"))
    assert request.system == (TextPart("be brief"),)
    assert request.tools[0].parameters == PERSON_JSON_SCHEMA
    assert request.tool_choice == ToolChoice(ToolChoiceKind.TOOL, name="save")
    assert request.thinking == ThinkingConfig(ThinkingMode.ENABLED, budget_tokens=100)
    assert request.max_output_tokens == 300
    fmt = request.response_format
    assert fmt is not None
    assert fmt.kind is ResponseFormatKind.JSON_SCHEMA
    assert fmt.schema == PERSON_JSON_SCHEMA  # the SDK's property_ordering is gone


def test_sdk_history_with_signatures_and_a_file() -> None:
    contents = [
        types.Content(role="user", parts=[types.Part(text="hi")]),
        types.Content(
            role="model",
            parts=[
                types.Part(text="hmm", thought=True, thought_signature=b"sig"),
                types.Part(
                    function_call=types.FunctionCall(id="c1", name="f", args={"a": 1}), thought_signature=b"sig2"
                ),
                types.Part(file_data=types.FileData(file_uri="https://x/y.png", mime_type="image/png")),
            ],
        ),
        types.Content(
            role="user",
            parts=[types.Part(function_response=types.FunctionResponse(id="c1", name="f", response={"output": "x"}))],
        ),
    ]
    config = types.GenerateContentConfig(tools=[types.Tool(google_search=types.GoogleSearch())], stop_sequences=["x"])
    request = decode_client_request(sdk_body(contents, config), model="m", stream=False, headers={})
    assert request.messages[1].parts == (
        ThinkingPart("hmm", "c2ln"),
        ToolUsePart(id="c1", name="f", arguments='{"a":1}', signature="c2lnMg=="),
        ImagePart(media_type="image/png", url="https://x/y.png"),
    )
    assert request.messages[2].parts == (
        ToolResultPart(tool_use_id="c1", content=(TextPart('{"output":"x"}'),), name="f"),
    )
    assert request.tools == ()
    assert request.stop == ("x",)
