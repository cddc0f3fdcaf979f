"""encode_passthrough: a Responses client's own body toward an upstream's /responses."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from apipod.dialects.responses.upstream_request import encode_passthrough, untag
from apipod.domain.chat import ChatRequest
from tests.fixture_path import fixture


def request_of(body: dict[str, Any]) -> ChatRequest:
    return ChatRequest(model=str(body.get("model", "")), messages=(), dialect="responses", raw=body, stream=True)


def codex(name: str) -> dict[str, Any]:
    return orjson.loads(fixture(f"codex-cli/{name}.json").read_bytes())  # type: ignore[no-any-return]


def test_codex_body_is_forwarded_with_what_apipod_owns_replaced() -> None:
    body = codex("exec_command_request_2")
    before = copy.deepcopy(body)
    out = encode_passthrough(request_of(body), model="gpt-5.1-codex", stream=True)
    assert body == before  # the client's body is never modified
    assert out["model"] == "gpt-5.1-codex"
    assert out["stream"] is True
    assert out["store"] is False
    assert "client_metadata" not in out
    assert out["input"] is body["input"]  # nothing to change in it: shared, not copied
    kept = {k: v for k, v in body.items() if k not in ("model", "client_metadata")}
    assert {k: out[k] for k in kept} == kept  # tools (namespace, web_search), include, reasoning... untouched


def test_untagged_reasoning_is_openai_own_and_kept() -> None:
    body = codex("apply_patch_request_2")
    out = encode_passthrough(request_of(body), model="gpt-5.5", stream=True)
    assert out["input"] == body["input"]
    assert [i["type"] for i in out["input"]].count("reasoning") == 1


def test_reasoning_items_are_untagged_or_dropped_by_origin() -> None:
    items = [
        {"type": "message", "role": "user", "content": "hi"},
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "openai~AAA"},
        {"type": "reasoning", "id": "rs_2", "summary": [], "encrypted_content": "anthropic~sig"},
        {"type": "reasoning", "id": "rs_3", "summary": [], "encrypted_content": "gAAAAB-own"},
        {"type": "reasoning", "id": "rs_4", "summary": [], "encrypted_content": "anthropic~redacted~data"},
        {"type": "reasoning", "id": "rs_5", "summary": [{"type": "summary_text", "text": "s"}]},
        {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
    ]
    body = {"model": "x", "input": items, "previous_response_id": "resp_9", "store": True}
    out = encode_passthrough(request_of(body), model="m", stream=False)
    assert out["input"] == [
        items[0],
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "AAA"},
        items[3],
        items[6],
    ]
    assert "previous_response_id" not in out
    assert out["store"] is False
    assert items[1]["encrypted_content"] == "openai~AAA"  # copied, not changed in place


def test_another_origin_keeps_only_its_own() -> None:
    items = [
        {"type": "reasoning", "encrypted_content": "openai~AAA"},
        {"type": "reasoning", "encrypted_content": "copilot~BBB"},
        {"type": "reasoning", "encrypted_content": "untagged"},
    ]
    out = encode_passthrough(request_of({"input": items}), model="m", stream=True, origin="copilot")
    assert out["input"] == [{"type": "reasoning", "encrypted_content": "BBB"}]


@pytest.mark.parametrize(
    ("content", "origin", "expected"),
    [
        ("openai~p", "openai", "p"),
        ("openai~a~b", "openai", "a~b"),
        ("gAAAA_x-y=", "openai", "gAAAA_x-y="),
        ("Not-A-Tag~x", "openai", "Not-A-Tag~x"),
        ("anthropic~p", "openai", None),
        ("openai~redacted~d", "openai", None),
        ("plain", "anthropic", None),
    ],
)
def test_untag(content: str, origin: str, expected: str | None) -> None:
    assert untag(content, origin) == expected


def test_string_input_and_stream_options() -> None:
    body = {"model": "x", "input": "hello", "stream_options": {"include_obfuscation": False}}
    assert encode_passthrough(request_of(body), model="m", stream=False) == {
        "model": "m",
        "input": "hello",
        "stream": False,
        "store": False,
    }
    assert encode_passthrough(request_of(body), model="m", stream=True)["stream_options"] == {
        "include_obfuscation": False
    }


def test_refuses_a_request_of_another_dialect() -> None:
    with pytest.raises(ValueError, match="Responses"):
        encode_passthrough(ChatRequest(model="m", messages=(), dialect="openai", raw={}), model="m", stream=True)
