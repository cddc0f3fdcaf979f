"""Every upstream encoder on a Responses client's request (Codex CLI shape) and on a Gemini client's one: the
Responses body is always translated (never sent as ``raw`` to another dialect), the Gemini body is forwarded
to Gemini upstreams, and ``response_format`` reaches each upstream in its own terms."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import attrs
import orjson
import pytest

from apipod.adapters.upstreams import antigravity_wire
from apipod.adapters.upstreams.copilot import _flatten_assistant_content, initiator
from apipod.application.signature_memory import SignatureMemory
from apipod.dialects import anthropic, gemini, openai
from apipod.dialects.anthropic.upstream_request import json_instruction
from apipod.dialects.responses import decode_request as decode_responses_request
from apipod.domain.chat import ChatRequest, Message, ResponseFormat, ResponseFormatKind, Role, TextPart
from tests.fixture_path import fixture
from tests.unit.adapters.upstreams.codex_shape import (
    JSON_OBJECT_FORMAT,
    JSON_SCHEMA_FORMAT,
    PATCH,
    SCHEMA,
    codex_request,
)

# Fields only the Codex body has: none may reach an upstream of another dialect.
RAW_ONLY = (b"client_metadata", b"prompt_cache_key", b"encrypted_content", b'"include"', b'"input":[')


def assert_translated(body: dict[str, Any]) -> None:
    dumped = orjson.dumps(body)
    for marker in RAW_ONLY:
        assert marker not in dumped, marker


# -- OpenAI Chat Completions (and Copilot, which uses the same encoder) ------------------------------------------
def test_openai_encoder_translates_a_responses_request() -> None:
    body = openai.encode_request(codex_request(), model="gpt-4.1", stream=True)
    assert_translated(body)
    messages = body["messages"]
    assert messages[0] == {"role": "system", "content": "You are Codex, a coding agent.\n\n<skills_instructions>..."}
    roles = [m["role"] for m in messages]
    assert roles == ["system", "user", "user", "assistant", "tool", "system", "assistant", "tool"]
    assert messages[5]["content"] == "<permissions>sandbox changed</permissions>"  # the system turn in place
    assert messages[4] == {"role": "tool", "tool_call_id": "call_1", "content": "hi\n"}
    patch_call = messages[6]["tool_calls"][0]
    assert patch_call["id"] == "call_2"
    assert orjson.loads(patch_call["function"]["arguments"]) == {"input": PATCH}
    assert "reasoning_text" not in messages[3]  # OpenAI proper gets no thinking history
    assert [t["function"]["name"] for t in body["tools"]] == [
        "exec_command",
        "apply_patch",
        "multi_agent_v1__close_agent",
    ]
    assert body["reasoning_effort"] == "medium"
    assert body["parallel_tool_calls"] is True
    assert "response_format" not in body


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (JSON_SCHEMA_FORMAT,
         {"type": "json_schema", "json_schema": {"name": "report", "schema": SCHEMA, "strict": True}}),
        (ResponseFormat(kind=ResponseFormatKind.JSON_SCHEMA, schema=SCHEMA),
         {"type": "json_schema", "json_schema": {"name": "response", "schema": SCHEMA}}),
        (ResponseFormat(kind=ResponseFormatKind.JSON_SCHEMA), {"type": "json_object"}),
        (JSON_OBJECT_FORMAT, {"type": "json_object"}),
        (ResponseFormat(kind=ResponseFormatKind.TEXT), None),
    ],
)  # fmt: skip
def test_openai_encoder_response_format(spec: ResponseFormat, expected: dict[str, Any] | None) -> None:
    body = openai.encode_request(codex_request(response_format=spec), model="gpt-4.1", stream=False)
    assert body.get("response_format") == expected


def test_openai_same_dialect_keeps_the_client_response_format_as_sent() -> None:
    raw = {"model": "x", "messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "json_object"}}
    request = openai.decode_request(raw)
    assert request.response_format == JSON_OBJECT_FORMAT
    assert openai.encode_request(request, model="m", stream=False)["response_format"] == {"type": "json_object"}


def test_copilot_encoding_of_a_responses_request() -> None:
    request = codex_request(origin="copilot")
    assert _flatten_assistant_content(request) is request  # the Codex body is not chat-shaped: left alone
    assert initiator(request) == "agent"
    body = openai.encode_request(request, model="gpt-5-mini", stream=True, reasoning_opaque=True)
    assert_translated(body)
    signed = body["messages"][3]
    assert (signed["reasoning_text"], signed["reasoning_opaque"]) == ("**Running**", "enc-1")
    assert "reasoning_opaque" not in body["messages"][6]  # unsigned thinking is not replayed


# -- Anthropic ------------------------------------------------------------------------------------------------------
def test_anthropic_encoder_translates_a_responses_request() -> None:
    body = anthropic.encode_request(
        codex_request(origin="anthropic", response_format=JSON_SCHEMA_FORMAT), model="claude-sonnet-4-5", stream=True
    )
    assert_translated(body)
    system = body["system"]
    assert system.startswith("You are Codex, a coding agent.\n\n<skills_instructions>...")
    assert "<permissions>sandbox changed</permissions>" in system  # the system turn, lifted
    assert system.endswith(json_instruction(JSON_SCHEMA_FORMAT) or "?")
    messages = body["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "user"]
    assert messages[1]["content"][0] == {"type": "thinking", "thinking": "**Running**", "signature": "enc-1"}
    assert [b["type"] for b in messages[3]["content"]] == ["tool_use"]  # unsigned thinking dropped
    assert messages[3]["content"][0]["input"] == {"input": PATCH}
    assert messages[4]["content"][0] == {"type": "tool_result", "tool_use_id": "call_2", "content": "Success."}
    assert {t["name"] for t in body["tools"]} == {"exec_command", "apply_patch", "multi_agent_v1__close_agent"}


def test_anthropic_json_instruction() -> None:
    plain = json_instruction(JSON_OBJECT_FORMAT)
    assert plain is not None
    assert "JSON object" in plain
    assert "Schema" not in plain
    with_schema = json_instruction(JSON_SCHEMA_FORMAT)
    assert with_schema is not None
    assert with_schema.startswith(plain)
    assert orjson.dumps(SCHEMA).decode() in with_schema
    assert json_instruction(ResponseFormat(kind=ResponseFormatKind.TEXT)) is None


def test_anthropic_json_instruction_joins_cached_system_blocks() -> None:
    request = attrs.evolve(
        codex_request(response_format=JSON_OBJECT_FORMAT),
        system=(TextPart("Be brief.", cache_control={"type": "ephemeral"}),),
    )
    system = anthropic.encode_request(request, model="claude-sonnet-4-5", stream=False)["system"]
    assert system[0] == {"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}
    assert system[-1] == {"type": "text", "text": json_instruction(JSON_OBJECT_FORMAT)}


# -- Gemini (AI Studio) and Antigravity ----------------------------------------------------------------------------
def parts_text(content: dict[str, Any]) -> list[str]:
    return [p["text"] for p in content["parts"] if "text" in p]


def test_gemini_encoder_translates_a_responses_request() -> None:
    request = codex_request(origin="google_ai_studio", response_format=JSON_SCHEMA_FORMAT)
    body = gemini.encode_request(request, model="gemini-2.5-pro", stream=True)
    assert_translated(body)
    assert parts_text(body["systemInstruction"]) == [
        "You are Codex, a coding agent.",
        "<skills_instructions>...",
        "<permissions>sandbox changed</permissions>",
    ]
    contents = body["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user", "model", "user"]
    assert contents[1]["parts"][0] == {"text": "**Running**", "thought": True, "thoughtSignature": "enc-1"}
    assert contents[2]["parts"][0]["functionResponse"]["name"] == "exec_command"
    assert contents[3]["parts"][-1]["functionCall"] == {"name": "apply_patch", "args": {"input": PATCH}}
    assert contents[4]["parts"][0]["functionResponse"] == {"name": "apply_patch", "response": {"result": "Success."}}
    declarations = body["tools"][0]["functionDeclarations"]
    assert [d["name"] for d in declarations] == ["exec_command", "apply_patch", "multi_agent_v1__close_agent"]
    assert "parameters" not in declarations[2]  # no arguments: Gemini rejects an empty OBJECT
    config = body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"] == SCHEMA


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (JSON_OBJECT_FORMAT, {"responseMimeType": "application/json"}),
        (ResponseFormat(kind=ResponseFormatKind.JSON_SCHEMA), {"responseMimeType": "application/json"}),
        (ResponseFormat(kind=ResponseFormatKind.TEXT), {}),
        (None, {}),
    ],
)
def test_gemini_response_format(spec: ResponseFormat | None, expected: dict[str, Any]) -> None:
    config = gemini.encode_request(codex_request(response_format=spec), model="gemini-2.5-flash", stream=False)[
        "generationConfig"
    ]
    assert {k: v for k, v in config.items() if k.startswith("response")} == expected


def test_antigravity_gemini_model_translates_a_responses_request() -> None:
    request = codex_request(origin="antigravity", response_format=JSON_SCHEMA_FORMAT)
    body = antigravity_wire.build_body(request, model="gemini-3-pro-high", stream=True)
    assert_translated(body)
    assert body["systemInstruction"]["role"] == "user"
    assert body["generationConfig"]["responseJsonSchema"] == SCHEMA
    assert body["sessionId"].startswith("-")


def test_antigravity_claude_model_gets_a_json_instruction_instead_of_a_json_mode() -> None:
    request = codex_request(origin="antigravity", response_format=JSON_SCHEMA_FORMAT)
    body = antigravity_wire.build_body(request, model="claude-sonnet-4-6-thinking", stream=True)
    assert_translated(body)
    config = body.get("generationConfig", {})  # thinking is off: the last call turn carries no signed thinking
    assert "responseMimeType" not in config
    assert "responseJsonSchema" not in config
    assert body["systemInstruction"]["parts"][-1] == {"text": json_instruction(JSON_SCHEMA_FORMAT)}
    assert body["systemInstruction"]["role"] == "user"
    calls = [p["functionCall"] for c in body["contents"] for p in c["parts"] if "functionCall" in p]
    assert [c["id"] for c in calls] == ["call_1", "call_2"]  # Claude pairs by id
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "VALIDATED"}}


# -- a Gemini client's own body ------------------------------------------------------------------------------------
def gemini_cli_request(**fields: Any) -> ChatRequest:
    raw = orjson.loads(fixture("gemini-cli/read_file_request_2.json").read_bytes())
    raw.update(fields)
    return ChatRequest(
        model="gemini-2.5-pro",
        messages=(Message(Role.USER, (TextPart("read the file"),)),),
        dialect="gemini",
        raw=raw,
        stream=True,
    )


def test_ai_studio_forwards_a_gemini_client_body_as_it_is() -> None:
    request = gemini_cli_request(
        safetySettings=[{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
        cachedContent="cachedContents/abc",
        toolConfig={"functionCallingConfig": {"mode": "AUTO"}},
        labels={"not": "forwarded"},
    )
    assert request.raw is not None
    before = copy.deepcopy(request.raw)
    body = gemini.encode_request(request, model="gemini-2.5-pro", stream=True)
    assert request.raw == before
    assert body == {
        name: before[name]
        for name in (
            "contents",
            "systemInstruction",
            "tools",
            "toolConfig",
            "generationConfig",
            "safetySettings",
            "cachedContent",
        )
    }
    declaration = body["tools"][0]["functionDeclarations"][0]
    assert "parametersJsonSchema" in declaration  # not cleaned into `parameters`
    signed = body["contents"][1]["parts"][0]
    assert "thoughtSignature" in signed  # the client's signature goes back as it is


def test_gemini_body_is_translated_when_asked() -> None:
    request = gemini_cli_request()
    body = gemini.encode_request(request, model="gemini-2.5-pro", stream=True, forward=False)
    assert body["contents"] == [{"role": "user", "parts": [{"text": "read the file"}]}]


def test_antigravity_forwards_a_gemini_client_body_in_its_envelope() -> None:
    request = gemini_cli_request(safetySettings=[{"category": "X", "threshold": "BLOCK_NONE"}])
    assert request.raw is not None
    before = copy.deepcopy(request.raw)
    body = antigravity_wire.build_body(request, model="gemini-3-pro-high", stream=True)
    assert request.raw == before  # role added and declarations rebuilt on copies
    assert body["contents"] == before["contents"]
    assert body["systemInstruction"] == {**before["systemInstruction"], "role": "user"}
    assert body["tools"] == before["tools"]  # parametersJsonSchema is not a `parameters` schema: untouched
    assert body["generationConfig"] == before["generationConfig"]
    assert "safetySettings" not in body
    assert body["sessionId"] == antigravity_wire.session_id(request)
    assert antigravity_wire.tool_names(request, "gemini-3-pro-high") == {}
    wrapped = antigravity_wire.envelope(body, model="gemini-3-pro-high", project="p-1", now_ms=0)
    assert wrapped["request"] is body
    assert wrapped["model"] == "gemini-3-pro-high"


def test_antigravity_strict_schemas_apply_to_forwarded_parameters_on_a_copy() -> None:
    tools = [{"functionDeclarations": [{"name": "f", "parameters": {"type": "OBJECT", "properties": {
        "n": {"type": "INTEGER", "minimum": 1, "default": 2}}}}]}]  # fmt: skip
    request = gemini_cli_request(tools=tools)
    before = copy.deepcopy(tools)
    body = antigravity_wire.build_body(request, model="gemini-2.5-flash", stream=False)
    schema = body["tools"][0]["functionDeclarations"][0]["parameters"]["properties"]["n"]
    assert "minimum" not in schema
    assert "default" not in schema
    assert tools == before


def test_antigravity_claude_model_translates_a_gemini_client_body() -> None:
    request = gemini_cli_request()
    body = antigravity_wire.build_body(request, model="claude-sonnet-4-6", stream=True)
    assert body["contents"] == [{"role": "user", "parts": [{"text": "read the file"}]}]
    assert antigravity_wire.tool_names(request, "claude-sonnet-4-6") == {}


def test_no_foreign_raw_toward_openai_or_anthropic_from_a_gemini_client() -> None:
    request = gemini_cli_request()
    for body in (
        openai.encode_request(request, model="gpt-4.1", stream=True),
        anthropic.encode_request(request, model="claude-sonnet-4-5", stream=True),
    ):
        dumped = orjson.dumps(body)
        assert b"systemInstruction" not in dumped
        assert b"parametersJsonSchema" not in dumped


# -- the Codex captures through the Responses client codec, then every upstream encoder ---------------------------
class _Clock:
    def now(self) -> datetime:
        return datetime(2026, 1, 1, tzinfo=UTC)

    def monotonic(self) -> float:
        return 0.0


def decoded_capture(name: str, origin: str) -> ChatRequest:
    """A Codex capture as the client codec decodes it, with what the application does before an upstream of
    kind ``origin`` (reasoning another kind signed is dropped)."""
    body = orjson.loads(fixture(f"codex-cli/{name}.json").read_bytes())
    return SignatureMemory(_Clock()).restore(decode_responses_request(body, {}), origin)


CAPTURES = ["exec_command_request_2", "apply_patch_request_2"]


@pytest.mark.parametrize("name", CAPTURES)
def test_codex_captures_through_every_encoder(name: str) -> None:
    bodies = {
        "openai": openai.encode_request(decoded_capture(name, "openai"), model="gpt-4.1", stream=True),
        "copilot": openai.encode_request(
            decoded_capture(name, "copilot"), model="gpt-5-mini", stream=True, reasoning_opaque=True
        ),
        "anthropic": anthropic.encode_request(decoded_capture(name, "anthropic"), model="claude-opus-4-1", stream=True),
        "google_ai_studio": gemini.encode_request(
            decoded_capture(name, "google_ai_studio"), model="gemini-3-pro-preview", stream=True
        ),
        "antigravity": antigravity_wire.build_body(
            decoded_capture(name, "antigravity"), model="claude-sonnet-4-6-thinking", stream=True
        ),
    }
    for kind, body in bodies.items():
        assert_translated(body)
        dumped = orjson.dumps(body)
        assert b"web_search" not in dumped, kind  # a hosted tool: never offered to another upstream
        assert b"gAAAA" not in dumped, kind  # OpenAI's reasoning blob goes nowhere but OpenAI
        assert b"You are" in dumped, kind  # the developer text became the system prompt
    anthropic_messages = bodies["anthropic"]["messages"]
    assert anthropic_messages[-1]["content"][0]["type"] == "tool_result"
    if name == "apply_patch_request_2":
        call = anthropic_messages[-2]["content"][-1]
        assert call["name"] == "apply_patch"
        assert set(call["input"]) == {"input"}
        assert call["input"]["input"].startswith("*** Begin Patch")
