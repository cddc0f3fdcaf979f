"""A canonical request shaped like the Codex CLI's second turn (tests/fixtures/codex-cli/*_request_2.json) as
the Responses client codec decodes it: developer text lifted to the system prompt, a developer message in
place (``Role.SYSTEM``), reasoning replayed with an origin, a function call and a custom (free-form) call with
their results, a namespaced tool flattened, and a JSON response format. Built by hand so that the upstream
encoders are tested on their own."""

from __future__ import annotations

from typing import Any

import orjson

from apipod.domain.chat import (
    ChatRequest,
    Message,
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
    ToolSpec,
    ToolUsePart,
)
from tests.fixture_path import fixture

CUSTOM_PARAMETERS = {"type": "object", "properties": {"input": {"type": "string"}}, "required": ["input"]}
PATCH = "*** Begin Patch\n*** Add File: hello.txt\n+hello\n*** End Patch\n"
SCHEMA = {
    "type": "object",
    "properties": {"summary": {"type": "string"}, "files": {"type": "array", "items": {"type": "string"}}},
    "required": ["summary", "files"],
    "additionalProperties": False,
}
EXEC_PARAMETERS = {
    "type": "object",
    "properties": {"cmd": {"type": "string"}, "yield_time_ms": {"type": "number"}},
    "required": ["cmd"],
    "additionalProperties": False,
}


def codex_body() -> dict[str, Any]:
    return orjson.loads(fixture("codex-cli/apply_patch_request_2.json").read_bytes())  # type: ignore[no-any-return]


def codex_request(*, origin: str = "openai", response_format: ResponseFormat | None = None) -> ChatRequest:
    """``origin``: the upstream kind that signed the replayed reasoning."""
    return ChatRequest(
        model="gpt-5.5",
        system=(TextPart("You are Codex, a coding agent."), TextPart("<skills_instructions>...")),
        messages=(
            Message(Role.USER, (TextPart("<environment_context>cwd</environment_context>"),)),
            Message(Role.USER, (TextPart("run echo hi, then create hello.txt"),)),
            Message(
                Role.ASSISTANT,
                (
                    ThinkingPart("**Running**", signature="enc-1", origin=origin),
                    ToolUsePart(id="call_1", name="exec_command", arguments='{"cmd":"echo hi"}'),
                ),
            ),
            Message(Role.TOOL, (ToolResultPart("call_1", (TextPart("hi\n"),), name="exec_command"),)),
            Message(Role.SYSTEM, (TextPart("<permissions>sandbox changed</permissions>"),)),
            Message(
                Role.ASSISTANT,
                (
                    ThinkingPart("**Creating the file**"),  # a summary without encrypted_content: unsigned
                    ToolUsePart(id="call_2", name="apply_patch", arguments=orjson.dumps({"input": PATCH}).decode()),
                ),
            ),
            Message(Role.TOOL, (ToolResultPart("call_2", (TextPart("Success."),), name="apply_patch"),)),
        ),
        tools=(
            ToolSpec("exec_command", "Runs a command.", EXEC_PARAMETERS),
            ToolSpec(
                "apply_patch", "Edit files. Grammar (lark): start: begin_patch hunk+ end_patch", CUSTOM_PARAMETERS
            ),
            ToolSpec("multi_agent_v1__close_agent", "Close an agent.", {"type": "object", "properties": {}}),
        ),
        tool_choice=ToolChoice(ToolChoiceKind.AUTO),
        parallel_tool_calls=True,
        thinking=ThinkingConfig(ThinkingMode.ENABLED, effort="medium"),
        stream=True,
        dialect="responses",
        raw=codex_body(),
        response_format=response_format,
        signed_origins=frozenset({origin}),
    )


JSON_SCHEMA_FORMAT = ResponseFormat(kind=ResponseFormatKind.JSON_SCHEMA, schema=SCHEMA, name="report", strict=True)
JSON_OBJECT_FORMAT = ResponseFormat(kind=ResponseFormatKind.JSON_OBJECT)
