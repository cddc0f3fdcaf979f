"""The Falcon app over an in-memory gateway and a scripted upstream, through httpx's ASGI transport."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import orjson
import pytest

from apipod.domain.catalog import Alias, Catalog, Plan, Route, Upstream, UpstreamKind, UpstreamModel
from apipod.domain.chat import Usage
from apipod.domain.errors import UpstreamRejectedError
from apipod.domain.quota import Budget, Window, WindowUnit
from apipod.entrypoints.http.app import create_app
from apipod.entrypoints.http.request_scope import HttpRequestProvider
from tests.unit.application.fakes import World, make_world, text_events, text_result

SECRET = "s" * 24
CATALOG = Catalog(
    upstreams=(Upstream(name="u", kind=UpstreamKind.OPENAI),),
    models=(UpstreamModel(name="m", upstream="u", upstream_model="gpt-x"),),
    plans=(
        Plan(name="basic", routes=(Route("m"),), aliases=(Alias("fast", (Route("m"),)),)),
        Plan(name="tiny", routes=(Route("m"),), budgets=(Budget(window=Window(WindowUnit.DAY), requests=1),)),
        Plan(name="strict", routes=(Route("m"),), strict_models=True),
    ),
)


@pytest.fixture
async def world() -> World:
    return await make_world(CATALOG, HttpRequestProvider())


@pytest.fixture
async def client(world: World) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(lambda: world.container, admin_secret=SECRET, max_body_bytes=10_000)
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://apipod") as http:
        yield http


async def new_key(client: httpx.AsyncClient, tier: str = "basic") -> str:
    answer = await client.post(
        "/admin/create-key", headers={"x-admin-secret": SECRET}, json={"name": "alice", "tier": tier}
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["api_key"])


def chat(model: str = "basic", **extra: object) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], **extra}


def anthropic_chat(model: str = "basic", **extra: object) -> dict[str, object]:
    return {"model": model, "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}], **extra}


async def test_health_is_open(client: httpx.AsyncClient) -> None:
    answer = await client.get("/health")
    assert answer.status_code == 200
    assert answer.json() == {"status": "healthy", "service": "apipod-smart-proxy"}


async def test_create_key_answers_the_documented_shape(client: httpx.AsyncClient) -> None:
    answer = await client.post(
        "/admin/create-key",
        headers={"x-admin-secret": SECRET},
        json={"name": "bob", "sub_name": "basic", "expires_in": 0.5},
    )
    assert answer.status_code == 201
    body = answer.json()
    assert set(body) == {"id", "api_key", "name", "tier", "created_at", "expires_at"}
    assert body["tier"] == "basic"
    assert body["api_key"].startswith("apk_")
    assert body["expires_at"] == "2026-11-29T00:00:00Z"
    listed = (await client.get("/admin/keys", headers={"x-admin-secret": SECRET})).json()["data"]
    assert [k["name"] for k in listed] == ["bob"]
    assert body["api_key"] not in orjson.dumps(listed).decode()


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"tier": "basic"}, 400, "name"),
        ({"name": "x", "tier": "gold"}, 400, "Unknown plan"),
        ({"name": "x"}, 400, "tier"),
        ({"name": "x", "tier": "basic", "expires_in": "soon"}, 400, "expires_in"),
    ],
)
async def test_create_key_rejects_bad_bodies(
    client: httpx.AsyncClient, body: dict[str, object], status: int, fragment: str
) -> None:
    answer = await client.post("/admin/create-key", headers={"x-admin-secret": SECRET}, json=body)
    assert answer.status_code == status
    assert fragment in answer.json()["error"]["message"]
    assert answer.json()["error"]["type"] == "invalid_request"


@pytest.mark.parametrize("secret", [None, "wrong", SECRET + "x"])
async def test_admin_needs_the_secret(client: httpx.AsyncClient, secret: str | None) -> None:
    headers = {"x-admin-secret": secret} if secret else {}
    answer = await client.post("/admin/create-key", headers=headers, json={"name": "x", "tier": "basic"})
    assert answer.status_code == 403
    assert answer.json() == {"error": {"type": "forbidden", "message": "Invalid admin secret."}}


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_an_unknown_admin_path_is_refused_before_it_is_found_missing(
    client: httpx.AsyncClient, method: str
) -> None:
    """Without the secret no caller learns which admin paths exist; with it, the path is simply not found."""
    for headers in ({}, {"x-admin-secret": "wrong"}):
        answer = await client.request(method, "/admin/nope/fuzz", headers=headers, content=b'{"type":"mock"}')
        assert answer.status_code == 403
        assert answer.json() == {"error": {"type": "forbidden", "message": "Invalid admin secret."}}
    answer = await client.request(method, "/admin/nope/fuzz", headers={"x-admin-secret": SECRET})
    assert answer.status_code == 404
    assert answer.json()["error"]["type"] == "not_found"


async def test_openai_chat_round_trip_and_usage(client: httpx.AsyncClient, world: World) -> None:
    key = await new_key(client)
    world.upstream.script("m", text_result("hello!", Usage(input_tokens=9, output_tokens=2)))
    answer = await client.post("/v1/chat/completions", headers={"authorization": f"Bearer {key}"}, json=chat("gpt-4o"))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model"] == "gpt-4o"
    assert body["choices"][0]["message"]["content"] == "hello!"
    assert body["usage"]["prompt_tokens"] == 9
    assert body["usage"]["completion_tokens"] == 2


async def test_anthropic_stream_frames(client: httpx.AsyncClient, world: World) -> None:
    key = await new_key(client)
    world.upstream.script("m", text_events(["Hel", "lo"], Usage(input_tokens=7, output_tokens=2)))
    answer = await client.post("/v1/messages?beta=true", headers={"x-api-key": key}, json=anthropic_chat(stream=True))
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/event-stream")
    events = [line.removeprefix("event: ") for line in answer.text.splitlines() if line.startswith("event: ")]
    assert events[0] == "message_start"
    assert events[-1] == "message_stop"
    assert "Hel" in answer.text
    [row] = world.usage.records()
    assert row.usage.output_tokens == 2


@pytest.mark.parametrize(
    ("path", "headers_of", "error_type"),
    [
        ("/v1/chat/completions", lambda k: {}, "invalid_request_error"),
        ("/v1/chat/completions", lambda k: {"authorization": "Basic abc"}, "invalid_request_error"),
        ("/v1/chat/completions", lambda k: {"authorization": "Bearer apk_nope"}, "invalid_request_error"),
        ("/v1/messages", lambda k: {"x-api-key": "apk_nope"}, "authentication_error"),
    ],
)
async def test_bad_credentials_are_401_in_the_callers_dialect(
    client: httpx.AsyncClient, path: str, headers_of: object, error_type: str
) -> None:
    headers = headers_of(None)  # type: ignore[operator]
    answer = await client.post(path, headers=headers, json=anthropic_chat())
    assert answer.status_code == 401
    body = answer.json()
    if path == "/v1/messages":
        assert body["type"] == "error"
        assert body["error"]["type"] == error_type
    else:
        assert body["error"]["type"] == error_type
        assert body["error"]["code"] == "invalid_api_key"


async def test_revoked_key_is_403(client: httpx.AsyncClient) -> None:
    key = await new_key(client)
    listed = (await client.get("/admin/keys", headers={"x-admin-secret": SECRET})).json()["data"]
    revoked = await client.post(f"/admin/keys/{listed[0]['id']}/revoke", headers={"x-admin-secret": SECRET})
    assert revoked.json()["active"] is False
    answer = await client.post("/v1/messages", headers={"x-api-key": key}, json=anthropic_chat())
    assert answer.status_code == 403
    assert answer.json()["error"]["type"] == "permission_error"


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b"", "empty"),
        (b'{"messages": []}', "model"),
        (b'{"model": "x", "messages": "hi"}', "messages"),
    ],
)
async def test_malformed_bodies_are_400_in_each_dialect(client: httpx.AsyncClient, raw: bytes, fragment: str) -> None:
    key = await new_key(client)
    openai = await client.post("/v1/chat/completions", headers={"authorization": f"Bearer {key}"}, content=raw)
    assert openai.status_code == 400
    assert openai.json()["error"]["type"] == "invalid_request_error"
    assert fragment in openai.json()["error"]["message"] + str(openai.json()["error"].get("param"))
    anthropic = await client.post("/v1/messages", headers={"x-api-key": key}, content=raw)
    assert anthropic.status_code == 400
    assert anthropic.json()["type"] == "error"
    assert anthropic.json()["error"]["type"] == "invalid_request_error"


async def test_oversized_body_is_413(client: httpx.AsyncClient) -> None:
    key = await new_key(client)
    big = chat(messages=[{"role": "user", "content": "x" * 20_000}])
    answer = await client.post("/v1/chat/completions", headers={"authorization": f"Bearer {key}"}, json=big)
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "request_too_large"


async def test_a_body_sent_in_pieces_without_a_length_is_bounded_too(client: httpx.AsyncClient) -> None:
    key = await new_key(client)

    async def pieces(body: bytes) -> AsyncIterator[bytes]:  # chunked: no content-length to refuse it early
        for start in range(0, len(body), 1_000):
            yield body[start : start + 1_000]

    headers = {"authorization": f"Bearer {key}"}
    big = orjson.dumps(chat(messages=[{"role": "user", "content": "x" * 20_000}]))
    answer = await client.post("/v1/chat/completions", headers=headers, content=pieces(big))
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "request_too_large"
    fits = orjson.dumps(chat(messages=[{"role": "user", "content": "y" * 8_000}]))
    assert 8_000 < len(fits) <= 10_000
    answer = await client.post("/v1/chat/completions", headers=headers, content=pieces(fits))
    assert answer.status_code == 200


async def test_exhausted_budget_per_dialect(client: httpx.AsyncClient) -> None:
    key = await new_key(client, tier="tiny")
    ok = await client.post("/v1/chat/completions", headers={"authorization": f"Bearer {key}"}, json=chat())
    assert ok.status_code == 200
    openai = await client.post("/v1/chat/completions", headers={"authorization": f"Bearer {key}"}, json=chat())
    assert openai.status_code == 429
    assert openai.json()["error"]["code"] == "insufficient_quota"
    assert "day" in openai.json()["error"]["message"]
    assert int(openai.headers["retry-after"]) == 12 * 3600
    anthropic = await client.post("/v1/messages", headers={"x-api-key": key}, json=anthropic_chat())
    assert anthropic.status_code == 402
    assert anthropic.json()["error"]["type"] == "billing_error"
    assert "retry-after" in anthropic.headers


async def test_strict_plan_unknown_model_is_404(client: httpx.AsyncClient) -> None:
    key = await new_key(client, tier="strict")
    answer = await client.post("/v1/chat/completions", headers={"authorization": f"Bearer {key}"}, json=chat("gpt-9"))
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "model_not_found"


async def test_upstream_caller_fault_is_passed_on(client: httpx.AsyncClient, world: World) -> None:
    key = await new_key(client)
    world.upstream.script("m", UpstreamRejectedError("max_tokens is too large", status=400))
    answer = await client.post("/v1/messages", headers={"x-api-key": key}, json=anthropic_chat())
    assert answer.status_code == 400
    assert answer.json()["error"] == {"type": "invalid_request_error", "message": "max_tokens is too large"}


async def test_models_in_both_shapes(client: httpx.AsyncClient) -> None:
    key = await new_key(client)
    openai = (await client.get("/v1/models", headers={"authorization": f"Bearer {key}"})).json()
    assert openai["object"] == "list"
    assert [m["id"] for m in openai["data"]] == ["basic", "fast"]
    assert openai["data"][0]["owned_by"] == "apipod"
    anthropic = (await client.get("/v1/models", headers={"x-api-key": key, "anthropic-version": "2023-06-01"})).json()
    assert [m["id"] for m in anthropic["data"]] == ["basic", "fast"]
    assert anthropic["has_more"] is False
    assert anthropic["first_id"] == "basic"


async def test_count_tokens_needs_no_upstream(client: httpx.AsyncClient, world: World) -> None:
    key = await new_key(client)
    answer = await client.post(
        "/v1/messages/count_tokens",
        headers={"x-api-key": key},
        json={"model": "x", "messages": [{"role": "user", "content": "hello " * 100}]},
    )
    assert answer.status_code == 200
    assert answer.json()["input_tokens"] > 100
    assert world.upstream.calls == []


async def test_unknown_routes_answer_in_dialect(client: httpx.AsyncClient) -> None:
    answer = await client.get("/v1/nothing")
    assert answer.status_code == 404
    assert answer.json()["error"]["type"] == "invalid_request_error"
    wrong_method = await client.get("/v1/messages")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["type"] == "error"


async def test_a_key_holder_reads_its_own_standing(client: httpx.AsyncClient) -> None:
    key = await new_key(client, tier="tiny")  # one request a day
    before = await client.get("/v1/key", headers={"authorization": f"Bearer {key}"})
    assert before.status_code == 200, before.text
    body = before.json()
    assert body["plan"] == "tiny" and body["expires_at"] is None
    assert body["limits"] == {"rpm": None, "max_concurrency": None}
    assert body["budgets"] == [
        {
            "window": "day",
            "unit": "requests",
            "limit": 1,
            "used": 0,
            "remaining": 1,
            "resets_at": "2026-11-29T00:00:00Z",
        }
    ]
    assert "api_key" not in body and key not in before.text

    served = await client.post("/v1/chat/completions", headers={"authorization": f"Bearer {key}"}, json=chat("tiny"))
    assert served.status_code == 200
    after = (await client.get("/v1/key", headers={"authorization": f"Bearer {key}"})).json()
    assert after["budgets"][0]["used"] == 1 and after["budgets"][0]["remaining"] == 0


async def test_the_key_endpoint_needs_a_key(client: httpx.AsyncClient) -> None:
    answer = await client.get("/v1/key")
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "invalid_api_key"
