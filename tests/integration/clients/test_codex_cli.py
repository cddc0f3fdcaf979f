"""The Codex CLI (``codex exec``, tests/clients) -> apipod ``POST /v1/responses`` -> a fake OpenAI-compatible chat
upstream, and a fake Anthropic upstream, over real sockets.

One task that needs a tool call: the upstream's first answer runs a shell command through Codex's
``exec_command`` tool, its second (which must carry the command's output) ends the task with text. Codex must
exit 0 and print that text, the command must have run (the file it writes exists), and every model turn is one
usage row.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.fakes.fake_anthropic import anthropic_frames
from tests.fakes.fake_openai import openai_frames
from tests.integration.clients.cli_support import (
    ClientsStack,
    cli_or_skip,
    expect_success,
    run_codex,
    start_clients_stack,
)
from tests.integration.http.core_support import AN_UPSTREAM_MODEL, OA_UPSTREAM_MODEL

MARK = "made-by-codex"
COMMAND = f"printf {MARK} > out.txt && cat out.txt"
ARGUMENTS = orjson.dumps({"cmd": COMMAND}).decode()
FINAL = "Done: out.txt now holds the mark."
PROMPT = "Write the mark into out.txt with a shell command, then say you are done."


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClientsStack]:
    cli_or_skip("codex")  # before starting anything
    yield from start_clients_stack(tmp_path_factory.mktemp("codex-cli"))


@pytest.fixture(autouse=True)
def _clean(stack: ClientsStack) -> None:
    stack.reset()


def _run(stack: ClientsStack, tier: str, tmp_path: Path) -> str:
    """Runs the task with a new key on ``tier``; checks what Codex printed and did. Returns the key's id."""
    key, key_id = stack.core.new_key(tier)
    workdir = tmp_path / "work"
    workdir.mkdir()
    run = run_codex(stack, key, PROMPT, home=tmp_path / "home", workdir=workdir)
    expect_success(run, stack)
    assert FINAL in run.stdout, run.report()
    assert (workdir / "out.txt").read_text() == MARK, run.report()
    return key_id


# -- OpenAI-compatible chat upstream ------------------------------------------------------------------------------


def _oa_chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-codex",
        "object": "chat.completion.chunk",
        "created": 1727346142,
        "model": OA_UPSTREAM_MODEL,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


def _oa_usage(prompt: int, completion: int) -> dict[str, Any]:
    usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    return {**_oa_chunk({}), "choices": [], "usage": usage}


def _oa_tool_call() -> list[bytes]:
    call = {"index": 0, "id": "call_codex_1", "type": "function", "function": {"name": "exec_command", "arguments": ""}}
    half = len(ARGUMENTS) // 2
    return openai_frames(
        [
            _oa_chunk({"role": "assistant", "content": None, "tool_calls": [call]}),
            _oa_chunk({"tool_calls": [{"index": 0, "function": {"arguments": ARGUMENTS[:half]}}]}),
            _oa_chunk({"tool_calls": [{"index": 0, "function": {"arguments": ARGUMENTS[half:]}}]}),
            _oa_chunk({}, "tool_calls"),
            _oa_usage(900, 20),
        ]
    )


def _oa_text(text: str) -> list[bytes]:
    return openai_frames(
        [
            _oa_chunk({"role": "assistant", "content": ""}),
            _oa_chunk({"content": text[: len(text) // 2]}),
            _oa_chunk({"content": text[len(text) // 2 :]}),
            _oa_chunk({}, "stop"),
            _oa_usage(950, 9),
        ]
    )


def test_codex_runs_a_tool_against_an_openai_chat_upstream(stack: ClientsStack, tmp_path: Path) -> None:
    stack.core.oa.reply_sse(_oa_tool_call())
    stack.core.oa.reply_sse(_oa_text(FINAL))

    key_id = _run(stack, "oa-plan", tmp_path)

    first, second = stack.core.oa.requests
    assert first.path == second.path == "/v1/chat/completions"
    assert any(t["function"]["name"] == "exec_command" for t in first.body["tools"])
    [call] = [m for m in second.body["messages"] if m.get("tool_calls")][-1]["tool_calls"]
    assert (call["id"], call["function"]["name"]) == ("call_codex_1", "exec_command")
    assert orjson.loads(call["function"]["arguments"]) == {"cmd": COMMAND}
    [result] = [m for m in second.body["messages"] if m["role"] == "tool"]
    assert result["tool_call_id"] == "call_codex_1"
    assert MARK in _text(result["content"]), result
    rows = stack.core.usage_rows(key_id, 2)
    assert [(r["input_tokens"], r["output_tokens"]) for r in rows] == [(900, 20), (950, 9)]
    assert all(r["status"] == "success" for r in rows)


# -- Anthropic upstream ---------------------------------------------------------------------------------------------


def _an_message(usage_in: int) -> dict[str, Any]:
    return {
        "id": "msg_codex",
        "type": "message",
        "role": "assistant",
        "model": AN_UPSTREAM_MODEL,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": usage_in, "output_tokens": 1},
    }


def _an_tool_call() -> list[bytes]:
    half = len(ARGUMENTS) // 2
    block = {"type": "tool_use", "id": "toolu_codex_1", "name": "exec_command", "input": {}}
    return anthropic_frames(
        [
            {"type": "message_start", "message": _an_message(800)},
            {"type": "content_block_start", "index": 0, "content_block": block},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": ""}},
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": ARGUMENTS[:half]},
            },
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": ARGUMENTS[half:]},
            },
            {"type": "content_block_stop", "index": 0},
            {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 30}},
            {"type": "message_stop"},
        ]
    )


def _an_text(text: str) -> list[bytes]:
    half = len(text) // 2
    return anthropic_frames(
        [
            {"type": "message_start", "message": _an_message(850)},
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text[:half]}},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text[half:]}},
            {"type": "content_block_stop", "index": 0},
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 11}},
            {"type": "message_stop"},
        ]
    )


def test_codex_runs_a_tool_against_an_anthropic_upstream(stack: ClientsStack, tmp_path: Path) -> None:
    stack.core.an.reply_sse(_an_tool_call())
    stack.core.an.reply_sse(_an_text(FINAL))

    key_id = _run(stack, "an-plan", tmp_path)

    first, second = stack.core.an.requests
    assert first.path == second.path == "/v1/messages"
    assert first.body["system"], "Codex's developer messages become the system prompt"
    assert any(t["name"] == "exec_command" for t in first.body["tools"])
    answered = [b for m in second.body["messages"] if m["role"] == "assistant" for b in _blocks(m)]
    uses = [b for b in answered if b["type"] == "tool_use"]
    assert [(u["id"], u["name"], u["input"]) for u in uses] == [("toolu_codex_1", "exec_command", {"cmd": COMMAND})]
    results = [b for m in second.body["messages"] if m["role"] == "user" for b in _blocks(m)]
    [result] = [b for b in results if b["type"] == "tool_result"]
    assert result["tool_use_id"] == "toolu_codex_1"
    assert MARK in _text(result.get("content")), result
    rows = stack.core.usage_rows(key_id, 2)
    assert [(r["input_tokens"], r["output_tokens"]) for r in rows] == [(800, 30), (850, 11)]
    assert all(r["status"] == "success" for r in rows)


# -- helpers --------------------------------------------------------------------------------------------------------


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message["content"]
    return [{"type": "text", "text": content}] if isinstance(content, str) else list(content)


def _text(content: Any) -> str:
    """A tool result's text, whether a string or a list of text parts/blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""
