"""encode_response: the Response object, checked against the official SDK's model."""

from __future__ import annotations

from typing import Any

from openai.types.responses import Response

from apipod.dialects.responses import encode_response
from apipod.domain.chat import (
    ChatResult,
    FinishReason,
    RedactedThinkingPart,
    TextPart,
    ThinkingPart,
    ToolUsePart,
    Usage,
)
from tests.unit.dialects.responses.test_request import load

TOOLS: list[dict[str, Any]] = [
    {"type": "function", "name": "exec_command", "parameters": {"type": "object"}, "strict": False},
    {"type": "custom", "name": "apply_patch", "format": {"type": "grammar", "syntax": "lark", "definition": "s"}},
    {
        "type": "namespace",
        "name": "ns",
        "description": "d",
        "tools": [{"type": "function", "name": "close", "parameters": None, "strict": None}],
    },
    {"type": "web_search", "external_web_access": False},
]
INCLUDE = ["reasoning.encrypted_content"]
USAGE = Usage(input_tokens=100, output_tokens=20, cached_input_tokens=64, reasoning_tokens=5)


def result(*parts: object, reason: FinishReason = FinishReason.END_TURN, origin: str = "anthropic") -> ChatResult:
    return ChatResult(id="up_1", model="my-alias", parts=parts, finish_reason=reason, usage=USAGE, origin=origin)  # type: ignore[arg-type]


def encode(res: ChatResult, **body: Any) -> dict[str, Any]:
    answer = encode_response(res, {"model": "x", "input": "hi", **body}, response_id="resp_abc", created=1700000000)
    Response.model_validate(answer)  # the official SDK reads it
    return answer


def test_text_answer() -> None:
    answer = encode(result(TextPart("Hello"), TextPart(" world")))
    assert answer["id"] == "resp_abc"
    assert answer["object"] == "response"
    assert answer["created_at"] == 1700000000
    assert answer["status"] == "completed"
    assert answer["model"] == "my-alias"
    assert answer["error"] is None
    assert answer["incomplete_details"] is None
    assert answer["output"] == [
        {
            "id": "msg_abc_0",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Hello world", "annotations": [], "logprobs": []}],
        }
    ]
    assert answer["usage"] == {
        "input_tokens": 100,
        "input_tokens_details": {"cached_tokens": 64, "cache_write_tokens": 0},
        "output_tokens": 20,
        "output_tokens_details": {"reasoning_tokens": 5},
        "total_tokens": 120,
    }
    assert answer["tools"] == []
    assert answer["tool_choice"] == "auto"
    assert answer["parallel_tool_calls"] is True
    assert answer["store"] is True
    assert answer["text"] == {"format": {"type": "text"}}
    parsed = Response.model_validate(answer)
    assert parsed.output_text == "Hello world"


def test_settings_are_echoed() -> None:
    answer = encode(
        result(TextPart("x")),
        instructions="Be brief.",
        tools=TOOLS,
        tool_choice="required",
        parallel_tool_calls=False,
        temperature=0.3,
        top_p=0.5,
        max_output_tokens=99,
        metadata={"k": "v"},
        store=False,
        text={"verbosity": "low"},
        reasoning={"effort": "medium", "summary": "auto"},
        previous_response_id="resp_prev",
    )
    assert answer["instructions"] == "Be brief."
    assert answer["tools"] == TOOLS
    assert answer["tool_choice"] == "required"
    assert answer["parallel_tool_calls"] is False
    assert (answer["temperature"], answer["top_p"], answer["max_output_tokens"]) == (0.3, 0.5, 99)
    assert answer["metadata"] == {"k": "v"}
    assert answer["store"] is False
    assert answer["text"] == {"verbosity": "low", "format": {"type": "text"}}
    assert answer["reasoning"] == {"effort": "medium", "summary": "auto"}
    assert answer["previous_response_id"] == "resp_prev"


def test_tool_calls_reasoning_and_ids() -> None:
    answer = encode(
        result(
            ThinkingPart("plan", signature="sig1"),
            TextPart("ok"),
            ToolUsePart(id="toolu_1", name="exec_command", arguments='{"cmd":"ls"}'),
            ToolUsePart(id="toolu_2", name="apply_patch", arguments='{"input":"*** Begin Patch\\n"}'),
            ToolUsePart(id="toolu_3", name="ns__close", arguments="{}"),
            RedactedThinkingPart("blob"),
        ),
        tools=TOOLS,
        include=INCLUDE,
    )
    output = answer["output"]
    assert [item["id"] for item in output] == ["rs_abc_0", "msg_abc_1", "fc_abc_2", "ctc_abc_3", "fc_abc_4", "rs_abc_5"]
    assert output[0] == {
        "id": "rs_abc_0",
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": "plan"}],
        "status": "completed",
        "encrypted_content": "anthropic~sig1",
    }
    assert output[2] == {
        "id": "fc_abc_2",
        "type": "function_call",
        "status": "completed",
        "call_id": "toolu_1",
        "name": "exec_command",
        "arguments": '{"cmd":"ls"}',
    }
    assert output[3] == {
        "id": "ctc_abc_3",
        "type": "custom_tool_call",
        "status": "completed",
        "call_id": "toolu_2",
        "name": "apply_patch",
        "input": "*** Begin Patch\n",
    }
    assert output[4]["name"] == "close"
    assert output[4]["namespace"] == "ns"
    assert output[5]["encrypted_content"] == "anthropic~redacted~blob"
    assert output[5]["summary"] == []


def test_encrypted_content_only_when_included() -> None:
    answer = encode(
        result(
            ThinkingPart("plan", signature="sig1"), RedactedThinkingPart("blob"), ThinkingPart("", "s2"), TextPart("x")
        )
    )
    assert [item["type"] for item in answer["output"]] == ["reasoning", "message"]
    assert "encrypted_content" not in answer["output"][0]


def test_part_origin_wins_and_unknown_origin_stays_bare() -> None:
    parts = (ThinkingPart("a", signature="s", origin="google_ai_studio"), ThinkingPart("b", signature="t"))
    answer = encode(result(*parts, origin=""), include=INCLUDE)
    assert [item["encrypted_content"] for item in answer["output"]] == ["google_ai_studio~s", "t"]


def test_custom_call_with_raw_arguments_keeps_the_text() -> None:
    answer = encode(result(ToolUsePart(id="c", name="apply_patch", arguments="*** Begin Patch")), tools=TOOLS)
    assert answer["output"][0]["input"] == "*** Begin Patch"


def test_max_tokens_is_incomplete() -> None:
    answer = encode(result(TextPart("cut"), reason=FinishReason.MAX_TOKENS))
    assert answer["status"] == "incomplete"
    assert answer["incomplete_details"] == {"reason": "max_output_tokens"}


def test_codex_body_echo_parses() -> None:
    for name in ("apply_patch_request_1.json", "exec_command_request_1.json"):
        raw = load(name)
        answer = encode_response(result(TextPart("x")), raw, response_id="resp_1", created=1)
        parsed = Response.model_validate(answer)
        assert len(parsed.tools) == len(raw["tools"])


def test_custom_call_without_arguments_has_empty_input() -> None:
    answer = encode(result(ToolUsePart(id="c", name="apply_patch")), tools=TOOLS)
    assert answer["output"][0]["input"] == ""
