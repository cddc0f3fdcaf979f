"""The Gemini CLI (``gemini -p``, tests/clients) -> apipod's Gemini-native ``streamGenerateContent`` -> a fake
OpenAI-compatible chat upstream, a fake Anthropic upstream and a fake Google AI Studio upstream, over real
sockets.

Two runs per upstream: a plain answer, and a ``read_file`` round trip (the upstream asks for a file of the
workspace, the CLI reads it and sends its text back, the upstream answers). The CLI must exit 0 and print the
upstream's text; every model turn is one usage row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import orjson
import pytest

from tests.fakes.fake_anthropic import anthropic_frames
from tests.fakes.fake_gemini import gemini_frames
from tests.fakes.fake_openai import openai_frames
from tests.fakes.scripted import Recorded, ScriptedUpstream
from tests.integration.clients.cli_support import (
    GM_UPSTREAM_MODEL,
    ClientsStack,
    cli_or_skip,
    expect_success,
    run_gemini,
    start_clients_stack,
)
from tests.integration.http.core_support import AN_UPSTREAM_MODEL, OA_UPSTREAM_MODEL

GREETING = "Hello from the scripted upstream."
NOTE = "remember the milk"
ANSWER = "The note says to remember the milk."
READ_ARGS = {"file_path": "notes.txt"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClientsStack]:
    cli_or_skip("gemini")  # before starting anything
    yield from start_clients_stack(tmp_path_factory.mktemp("gemini-cli"))


@pytest.fixture(autouse=True)
def _clean(stack: ClientsStack) -> None:
    stack.reset()


# -- scripted answers, one set per upstream kind --------------------------------------------------------------------


def _oa_chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
    head = {"id": "chatcmpl-g", "object": "chat.completion.chunk", "created": 1, "model": OA_UPSTREAM_MODEL}
    return {**head, "choices": [choice]}


def _oa_usage(prompt: int, completion: int) -> dict[str, Any]:
    usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    return {**_oa_chunk({}), "choices": [], "usage": usage}


def _oa_text(text: str, prompt: int, completion: int) -> list[bytes]:
    half = len(text) // 2
    chunks = [_oa_chunk({"role": "assistant", "content": text[:half]}), _oa_chunk({"content": text[half:]})]
    return openai_frames([*chunks, _oa_chunk({}, "stop"), _oa_usage(prompt, completion)])


def _oa_read_file(prompt: int, completion: int) -> list[bytes]:
    arguments = orjson.dumps(READ_ARGS).decode()
    call = {"index": 0, "id": "call_g1", "type": "function", "function": {"name": "read_file", "arguments": arguments}}
    chunks = [_oa_chunk({"role": "assistant", "content": None, "tool_calls": [call]}), _oa_chunk({}, "tool_calls")]
    return openai_frames([*chunks, _oa_usage(prompt, completion)])


def _oa_tool_result(request: Recorded) -> str:
    [result] = [m for m in request.body["messages"] if m["role"] == "tool"]
    assert result["tool_call_id"] == "call_g1"
    return orjson.dumps(result["content"]).decode()


def _an_events(block: dict[str, Any], deltas: list[dict[str, Any]], stop: str, usage: tuple[int, int]) -> list[bytes]:
    message: dict[str, Any] = {
        "id": "msg_g",
        "type": "message",
        "role": "assistant",
        "model": AN_UPSTREAM_MODEL,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": usage[0], "output_tokens": 1},
    }
    return anthropic_frames(
        [
            {"type": "message_start", "message": message},
            {"type": "content_block_start", "index": 0, "content_block": block},
            *({"type": "content_block_delta", "index": 0, "delta": d} for d in deltas),
            {"type": "content_block_stop", "index": 0},
            {"type": "message_delta", "delta": {"stop_reason": stop}, "usage": {"output_tokens": usage[1]}},
            {"type": "message_stop"},
        ]
    )


def _an_text(text: str, prompt: int, completion: int) -> list[bytes]:
    half = len(text) // 2
    deltas = [{"type": "text_delta", "text": text[:half]}, {"type": "text_delta", "text": text[half:]}]
    return _an_events({"type": "text", "text": ""}, deltas, "end_turn", (prompt, completion))


def _an_read_file(prompt: int, completion: int) -> list[bytes]:
    block = {"type": "tool_use", "id": "toolu_g1", "name": "read_file", "input": {}}
    deltas = [{"type": "input_json_delta", "partial_json": orjson.dumps(READ_ARGS).decode()}]
    return _an_events(block, deltas, "tool_use", (prompt, completion))


def _an_tool_result(request: Recorded) -> str:
    blocks = [b for m in request.body["messages"] if isinstance(m["content"], list) for b in m["content"]]
    [result] = [b for b in blocks if b["type"] == "tool_result"]
    assert result["tool_use_id"] == "toolu_g1"
    return orjson.dumps(result.get("content")).decode()


def _gm_chunk(parts: list[dict[str, Any]], finish: str | None = None, usage: tuple[int, int] | None = None) -> Any:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    chunk: dict[str, Any] = {"candidates": [candidate], "modelVersion": GM_UPSTREAM_MODEL, "responseId": "gm-resp"}
    if usage:
        chunk["usageMetadata"] = {
            "promptTokenCount": usage[0],
            "candidatesTokenCount": usage[1],
            "totalTokenCount": sum(usage),
        }
    return chunk


def _gm_text(text: str, prompt: int, completion: int) -> list[bytes]:
    half = len(text) // 2
    return gemini_frames(
        [_gm_chunk([{"text": text[:half]}]), _gm_chunk([{"text": text[half:]}], "STOP", (prompt, completion))]
    )


def _gm_read_file(prompt: int, completion: int) -> list[bytes]:
    call = {"functionCall": {"name": "read_file", "args": READ_ARGS}}
    return gemini_frames([_gm_chunk([call], "STOP", (prompt, completion))])


def _gm_tool_result(request: Recorded) -> str:
    parts = [p for c in request.body["contents"] for p in c.get("parts", [])]
    [result] = [p["functionResponse"] for p in parts if "functionResponse" in p]
    assert result["name"] == "read_file"
    return orjson.dumps(result["response"]).decode()


@attrs.frozen
class Upstream:
    """How one upstream kind is scripted and read back."""

    tier: str
    fake: Callable[[ClientsStack], ScriptedUpstream]
    path: str
    text: Callable[[str, int, int], list[bytes]]
    read_file: Callable[[int, int], list[bytes]]
    tool_result: Callable[[Recorded], str]


UPSTREAMS = {
    "openai": Upstream(
        "oa-plan", lambda s: s.core.oa, "/v1/chat/completions", _oa_text, _oa_read_file, _oa_tool_result
    ),
    "anthropic": Upstream("an-plan", lambda s: s.core.an, "/v1/messages", _an_text, _an_read_file, _an_tool_result),
    "google_ai_studio": Upstream(
        "gm-plan",
        lambda s: s.gm,
        f"/v1beta/models/{GM_UPSTREAM_MODEL}:streamGenerateContent",
        _gm_text,
        _gm_read_file,
        _gm_tool_result,
    ),
}


@pytest.fixture(params=list(UPSTREAMS))
def upstream(request: pytest.FixtureRequest) -> Upstream:
    return UPSTREAMS[str(request.param)]


# -- tests ------------------------------------------------------------------------------------------------------


def test_gemini_cli_prints_the_answer(stack: ClientsStack, upstream: Upstream, tmp_path: Path) -> None:
    fake = upstream.fake(stack)
    fake.reply_sse(upstream.text(GREETING, 700, 8))
    key, key_id = stack.core.new_key(upstream.tier)
    workdir = tmp_path / "work"
    workdir.mkdir()

    run = run_gemini(stack, key, "say hello", home=tmp_path / "home", workdir=workdir)

    expect_success(run, stack)
    assert GREETING in run.stdout, run.report()
    [sent] = fake.requests
    assert sent.path == upstream.path
    assert "say hello" in orjson.dumps(sent.body).decode()
    [row] = stack.core.usage_rows(key_id, 1)
    assert (row["status"], row["input_tokens"], row["output_tokens"]) == ("success", 700, 8)


def test_gemini_cli_reads_a_file_for_the_model(stack: ClientsStack, upstream: Upstream, tmp_path: Path) -> None:
    fake = upstream.fake(stack)
    fake.reply_sse(upstream.read_file(900, 12))
    fake.reply_sse(upstream.text(ANSWER, 950, 9))
    key, key_id = stack.core.new_key(upstream.tier)
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "notes.txt").write_text(NOTE + "\n")

    run = run_gemini(stack, key, "what is in notes.txt?", home=tmp_path / "home", workdir=workdir)

    expect_success(run, stack)
    assert ANSWER in run.stdout, run.report()
    first, second = fake.requests
    assert first.path == second.path == upstream.path
    assert "read_file" in orjson.dumps(first.body).decode(), "the CLI's tools reach the upstream"
    assert NOTE in upstream.tool_result(second), "the second turn carries the file's text"
    rows = stack.core.usage_rows(key_id, 2)
    assert [(r["status"], r["input_tokens"], r["output_tokens"]) for r in rows] == [
        ("success", 900, 12),
        ("success", 950, 9),
    ]
