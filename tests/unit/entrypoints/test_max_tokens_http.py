"""An absurd output cap is a clean 400 in the caller's dialect, before any upstream is called (finding 6)."""

from __future__ import annotations

import httpx

from tests.unit.application.fakes import World
from tests.unit.entrypoints.test_http_app import anthropic_chat, chat, client, new_key, world

__all__ = ["client", "world"]  # the fixtures, shared with the app's own tests


async def test_openai_max_tokens_of_1e18_is_400_naming_the_param(client: httpx.AsyncClient, world: World) -> None:
    key = await new_key(client)
    for field, value in (("max_tokens", 1e18), ("max_completion_tokens", 10**18)):
        answer = await client.post(
            "/v1/chat/completions", headers={"authorization": f"Bearer {key}"}, json=chat(**{field: value})
        )
        assert answer.status_code == 400, answer.text
        error = answer.json()["error"]
        assert (error["type"], error["param"]) == ("invalid_request_error", field)
        assert "must be at most 1000000" in error["message"]
    beyond = await client.post(
        "/v1/chat/completions", headers={"authorization": f"Bearer {key}"}, json=chat(max_tokens=2**70)
    )
    assert beyond.status_code == 400
    assert beyond.json()["error"]["param"] == "max_tokens"
    assert world.upstream.calls == []


async def test_anthropic_max_tokens_of_1e18_is_400(client: httpx.AsyncClient, world: World) -> None:
    key = await new_key(client)
    body = anthropic_chat()
    body["max_tokens"] = 10**18
    answer = await client.post("/v1/messages", headers={"x-api-key": key}, json=body)
    assert answer.status_code == 400, answer.text
    message = "max_tokens: Input should be less than or equal to 1000000"
    request_id = answer.headers["x-request-id"]
    assert answer.json() == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": message},
        "request_id": request_id,
    }
    body["max_tokens"] = 2**70
    beyond = await client.post("/v1/messages", headers={"x-api-key": key}, json=body)
    assert beyond.status_code == 400
    assert beyond.json()["error"]["type"] == "invalid_request_error"
    assert world.upstream.calls == []
