from __future__ import annotations

from typing import Any

import orjson
import pytest

from apipod.dialects.anthropic import decode_response, encode_response
from apipod.domain.chat import (
    ChatResult,
    FinishReason,
    RedactedThinkingPart,
    TextPart,
    ThinkingPart,
    ToolUsePart,
    Usage,
)
from tests.fixture_path import fixture

SIGNATURE = (
    "Eq4CCpIBCBIYAipAM+SGYGx7V1aPBT2LXi5M54elabwLjKMzxMZ7dQBpCn7jCn2ZkTBMgSLasCPWFF+8WMNYFp1xjC6uGZVxY3r8QDIRY2xh"
    "dWRlLXNvbm5ldC00LTY4AEIIdGhpbmtpbmdaJDNiOTNhNWRkLTczMDItNDgzZi1hZWFlLTM2MjA3NTU0OGFlMagBh7jq1QYSDNydXz9zcJ0A"
    "qizKMBoMWF4MBXod7dF4HVu3IjAqraMrYlluR4bgmuEmWgWhCkVJwHulmGCJQdC/sp1159oNVg2LtQomhtAXeciPrnwqSQ/VQUpZzAJ/SwqeRix"
    "WF0cnac6CC/ndDGQq0zwI9Ru9WzH59xuEbule/yBisuGwiyR6WwsfKaMDaXb51Obn56qHuGLD2Np2mOgYAQ=="
)


def load(name: str) -> dict[str, Any]:
    body: dict[str, Any] = orjson.loads(fixture(f"anthropic/{name}").read_bytes())
    return body


def test_decodes_text_message() -> None:
    assert decode_response(load("message_text.json")) == ChatResult(
        id="msg_01TestTextResponse",
        model="claude-opus-4-7",
        parts=(TextPart("Hello!"),),
        finish_reason=FinishReason.END_TURN,
        usage=Usage(input_tokens=10, output_tokens=5),
    )


def test_decodes_thinking_then_tool_use() -> None:
    result = decode_response(load("message_thinking_then_tool_use.json"))
    assert result.id == "msg_011CfWBu94HWxZXjXK6ZhEXM"
    assert result.model == "claude-sonnet-4-6"
    assert result.parts == (
        ThinkingPart("The user wants me to call checkSandboxErrors immediately.", SIGNATURE),
        ToolUsePart("toolu_017R7ACrx7NF7sLDDtvdQ1u9", "checkSandboxErrors", "{}"),
    )
    assert result.finish_reason is FinishReason.TOOL_USE
    assert result.usage == Usage(input_tokens=599, output_tokens=59, reasoning_tokens=18)


def test_encode_of_decoded_fixture_matches_the_recorded_message() -> None:
    recorded = load("message_thinking_then_tool_use.json")
    encoded = encode_response(decode_response(recorded), model="claude-sonnet-4-6")
    for key in ("id", "type", "role", "model", "stop_reason", "stop_sequence"):
        assert encoded[key] == recorded[key]
    assert encoded["content"] == [{k: v for k, v in block.items() if k != "caller"} for block in recorded["content"]]
    assert encoded["usage"] == {
        "input_tokens": 599,
        "output_tokens": 59,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def test_cache_usage_round_trip() -> None:
    usage = Usage(input_tokens=1200, output_tokens=50, cached_input_tokens=1000, cache_creation_input_tokens=150)
    result = ChatResult(id="msg_1", model="upstream", parts=(TextPart("ok"),), usage=usage)
    encoded = encode_response(result, model="client-name")
    assert encoded["model"] == "client-name"
    assert encoded["usage"] == {
        "input_tokens": 50,
        "output_tokens": 50,
        "cache_creation_input_tokens": 150,
        "cache_read_input_tokens": 1000,
    }
    assert decode_response(encoded).usage == usage
    inconsistent = ChatResult(id="m", model="m", parts=(), usage=Usage(input_tokens=10, cached_input_tokens=30))
    assert encode_response(inconsistent, model="m")["usage"]["input_tokens"] == 0


@pytest.mark.parametrize(
    ("wire", "canonical", "back"),
    [
        ("end_turn", FinishReason.END_TURN, "end_turn"),
        ("max_tokens", FinishReason.MAX_TOKENS, "max_tokens"),
        ("stop_sequence", FinishReason.STOP_SEQUENCE, "stop_sequence"),
        ("tool_use", FinishReason.TOOL_USE, "tool_use"),
        ("pause_turn", FinishReason.PAUSE_TURN, "pause_turn"),
        ("refusal", FinishReason.CONTENT_FILTER, "refusal"),
        ("model_context_window_exceeded", FinishReason.MAX_TOKENS, "max_tokens"),
        (None, FinishReason.END_TURN, "end_turn"),
        ("something_new", FinishReason.END_TURN, "end_turn"),
    ],
)
def test_stop_reasons(wire: str | None, canonical: FinishReason, back: str) -> None:
    result = decode_response({"id": "m", "content": [{"type": "text", "text": "x"}], "stop_reason": wire})
    assert result.finish_reason is canonical
    assert encode_response(result, model="m")["stop_reason"] == back


def test_encode_keeps_unsigned_thinking_and_drops_empty_text() -> None:
    result = ChatResult(
        id="msg_1",
        model="m",
        parts=(
            ThinkingPart("from an OpenAI-compatible upstream"),
            RedactedThinkingPart("opaque"),
            TextPart(""),
            TextPart("done"),
            ToolUsePart("call_1", "f", "[1]"),
        ),
        finish_reason=FinishReason.END_TURN,
        stop_sequence=None,
    )
    encoded = encode_response(result, model="m")
    assert encoded["content"] == [
        {"type": "thinking", "thinking": "from an OpenAI-compatible upstream", "signature": ""},
        {"type": "redacted_thinking", "data": "opaque"},
        {"type": "text", "text": "done"},
        {"type": "tool_use", "id": "call_1", "name": "f", "input": {"value": [1]}},
    ]
    assert encoded["stop_reason"] == "tool_use"


def test_decode_is_lenient_about_unknown_blocks() -> None:
    body = {
        "id": "msg_1",
        "model": "m",
        "content": [
            {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}},
            {"type": "text", "text": "found", "citations": []},
            "garbage",
        ],
        "stop_reason": "end_turn",
    }
    result = decode_response(body)
    assert result.parts == (TextPart("found"),)
    assert result.usage == Usage()
