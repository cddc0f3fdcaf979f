"""Issue 9 item 2 end to end: an Anthropic-type upstream refuses apipod's key with "invalid x-api-key
sk-ant-api03-SECRET"; through a real ``apipod serve`` process, no client answer (OpenAI or Anthropic dialect,
streamed or not, refused before or inside the stream) holds that text, while the gateway's log does, as a
WARNING, without the account's own key.

Every scenario has its own provider: a refused account rests (auth_failure_cooldown), and the next scenario
must reach the upstream again.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fakes.fake_anthropic import anthropic_frames
from tests.integration.harness import model, plan, provider
from tests.integration.http.core_support import Extra, Stack, start_stack

LEAK = "invalid x-api-key sk-ant-api03-SECRET"
ACCOUNT_KEY = "sk-ant-api03-OURACCOUNTKEY-0001"
SCENARIOS = ("oa", "an", "oa-stream", "an-stream", "an-midstream", "an-echo")
USER = [{"role": "user", "content": "hi"}]


def _catalog(oa_url: str, an_url: str) -> Extra:
    return {
        "providers": [provider(f"leaky-{s}", "anthropic", an_url, accounts=[ACCOUNT_KEY]) for s in SCENARIOS],
        "models": [model(f"leaky-{s}", f"leaky-{s}", "claude-leaky") for s in SCENARIOS],
        "plans": [plan(f"leaky-{s}", {f"leaky-{s}": 1}) for s in SCENARIOS],
    }


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from start_stack(tmp_path_factory.mktemp("upstream-account-errors"), extra=_catalog)


@pytest.fixture(autouse=True)
def _clean(stack: Stack) -> None:
    stack.reset()


def _openai(stack: Stack, key: str, *, stream: bool = False) -> httpx.Response:
    body: dict[str, Any] = {"model": "m", "messages": USER, "stream": stream}
    return httpx.post(f"{stack.url}/v1/chat/completions", headers={"authorization": f"Bearer {key}"}, json=body)


def _anthropic(stack: Stack, key: str, *, stream: bool = False) -> httpx.Response:
    body: dict[str, Any] = {"model": "m", "max_tokens": 20, "messages": USER, "stream": stream}
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    return httpx.post(f"{stack.url}/v1/messages", headers=headers, json=body)


def _assert_clean(answer: httpx.Response) -> None:
    assert "sk-ant" not in answer.text
    assert "x-api-key" not in answer.text
    assert not any("sk-ant" in value for value in answer.headers.values())


@pytest.mark.parametrize(
    ("scenario", "send"),
    [
        ("oa", lambda s, k: _openai(s, k)),
        ("an", lambda s, k: _anthropic(s, k)),
        ("oa-stream", lambda s, k: _openai(s, k, stream=True)),
        ("an-stream", lambda s, k: _anthropic(s, k, stream=True)),
    ],
)
def test_a_refused_account_never_shows_the_upstreams_text(stack: Stack, scenario: str, send: Any) -> None:
    key, _ = stack.new_key(f"leaky-{scenario}")
    stack.an.reply_error(401, LEAK)
    answer = send(stack, key)
    assert len(stack.an.requests) == 1  # the upstream was asked, and refused
    assert answer.status_code == 503, answer.text  # nothing else could serve (docs/behaviour.md §1 step 6: all down)
    assert answer.headers["content-type"].startswith("application/json")
    _assert_clean(answer)
    assert answer.json()["error"]["message"]
    assert LEAK in _warning(stack, f"leaky-{scenario}")  # the operator reads what the upstream said
    assert ACCOUNT_KEY not in stack.gateway.log()


def test_an_error_event_inside_the_stream_never_shows_the_upstreams_text(stack: Stack) -> None:
    key, _ = stack.new_key("leaky-an-midstream")
    stack.an.reply_sse(
        anthropic_frames(
            [
                {"type": "message_start", "message": {"id": "msg_1", "model": "claude-leaky", "usage": {}}},
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}},
                {"type": "error", "error": {"type": "authentication_error", "message": LEAK}},
            ]
        )
    )
    answer = _anthropic(stack, key, stream=True)
    assert answer.status_code == 200  # the stream had started: the failure is an in-stream error event
    assert "Hello" in answer.text
    assert "event: error" in answer.text
    _assert_clean(answer)


def test_the_account_key_echoed_by_the_upstream_is_redacted_in_the_log(stack: Stack) -> None:
    key, _ = stack.new_key("leaky-an-echo")
    stack.an.reply_error(403, f"key {ACCOUNT_KEY} has no access to claude-leaky")
    answer = _anthropic(stack, key)
    assert answer.status_code == 503
    assert ACCOUNT_KEY not in answer.text
    assert "key [redacted] has no access to claude-leaky" in _warning(stack, "leaky-an-echo")
    assert ACCOUNT_KEY not in stack.gateway.log()


def _warning(stack: Stack, upstream: str) -> str:
    """The gateway's WARNING line about ``upstream``."""
    [line] = [ln for ln in stack.gateway.log().splitlines() if "WARNING" in ln and f"upstream {upstream}:" in ln]
    return line
