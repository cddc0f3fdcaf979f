"""The Responses API and Gemini-native routes over an in-memory gateway and a scripted upstream: the HTTP
layer's part (routing, credentials, stored responses, error shapes, stream framing). The codecs have their
own tests in tests/unit/dialects; real clients drive these routes in tests/integration/http."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import orjson
import pytest

from apipod.domain.catalog import Catalog, Plan, Route, Upstream, UpstreamKind, UpstreamModel
from apipod.domain.chat import ChatResult, FinishReason, Role, TextPart, ToolUsePart, Usage
from apipod.domain.stream import MessageStarted, StreamFailed, TextDelta, UsageReported
from apipod.entrypoints.http.app import create_app
from apipod.entrypoints.http.request_scope import HttpRequestProvider, credential_of
from tests.unit.application.fakes import World, make_world, text_events, text_result

SECRET = "s" * 24
CATALOG = Catalog(
    upstreams=(Upstream(name="u", kind=UpstreamKind.OPENAI),),
    models=(UpstreamModel(name="m", upstream="u", upstream_model="gpt-x"),),
    plans=(Plan(name="basic", routes=(Route("m"),)),),
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


async def new_key(client: httpx.AsyncClient) -> str:
    answer = await client.post(
        "/admin/create-key", headers={"x-admin-secret": SECRET}, json={"name": "alice", "tier": "basic"}
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["api_key"])


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def sse_events(text: str) -> list[tuple[str, dict[str, object]]]:
    """(event name, data) of each Responses SSE frame."""
    out = []
    for frame in text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in frame.splitlines() if ": " in line and not line.startswith(":"))
        if "data" in lines:
            out.append((lines.get("event", ""), orjson.loads(lines["data"])))
    return out


# -- credentials -------------------------------------------------------------------------------------------


def test_gemini_credentials_come_from_x_goog_api_key_or_the_key_parameter() -> None:
    assert credential_of({"headers": [(b"x-goog-api-key", b"apk_g")], "path": "/v1beta/models"}) == "apk_g"
    on_gemini = {"headers": [], "path": "/v1beta/models/m:generateContent", "query_string": b"alt=sse&key=apk_q"}
    assert credential_of(on_gemini) == "apk_q"
    elsewhere = {"headers": [], "path": "/v1/chat/completions", "query_string": b"key=apk_q"}
    assert credential_of(elsewhere) is None  # a key in a URL only where Google's API takes one


# -- Responses ---------------------------------------------------------------------------------------------


async def test_a_responses_call_answers_a_response_object(client: httpx.AsyncClient, world: World) -> None:
    key = await new_key(client)
    world.upstream.script("m", text_result("hello!", Usage(input_tokens=9, output_tokens=2)))
    answer = await client.post(
        "/v1/responses", headers=bearer(key), json={"model": "basic", "input": "hi", "store": False}
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["object"] == "response"
    assert body["status"] == "completed"
    assert body["id"].startswith("resp_")
    assert body["output"][-1]["content"][0]["text"] == "hello!"
    assert (body["usage"]["input_tokens"], body["usage"]["output_tokens"]) == (9, 2)
    [seen] = world.upstream.calls
    assert seen.request.dialect == "responses"
    assert seen.request.messages[0].text() == "hi"
    [row] = world.usage.records()
    assert row.usage.input_tokens == 9


async def test_a_streamed_response_ends_with_one_terminal_event(client: httpx.AsyncClient, world: World) -> None:
    key = await new_key(client)
    world.upstream.script("m", text_events(["Hel", "lo"], Usage(input_tokens=7, output_tokens=2)))
    answer = await client.post(
        "/v1/responses", headers=bearer(key), json={"model": "basic", "input": "hi", "stream": True, "store": False}
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/event-stream")
    events = sse_events(answer.text)
    names = [name for name, _ in events]
    assert names[:2] == ["response.created", "response.in_progress"]
    assert names[-1] == "response.completed"
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    deltas = "".join(str(d["delta"]) for n, d in events if n == "response.output_text.delta")
    assert deltas == "Hello"


async def test_a_stored_response_continues_and_is_the_callers_own(client: httpx.AsyncClient, world: World) -> None:
    key, other = await new_key(client), await new_key(client)
    world.upstream.script("m", text_result("first answer"), text_result("second answer"))
    first = (await client.post("/v1/responses", headers=bearer(key), json={"model": "basic", "input": "one"})).json()

    got = await client.get(f"/v1/responses/{first['id']}", headers=bearer(key))
    assert got.status_code == 200
    assert got.json()["id"] == first["id"]
    assert (await client.get(f"/v1/responses/{first['id']}", headers=bearer(other))).status_code == 404

    follow = await client.post(
        "/v1/responses",
        headers=bearer(key),
        json={"model": "basic", "input": "two", "previous_response_id": first["id"]},
    )
    assert follow.status_code == 200, follow.text
    assert follow.json()["previous_response_id"] == first["id"]
    sent = world.upstream.calls[-1].request.messages
    assert [m.role for m in sent] == [Role.USER, Role.ASSISTANT, Role.USER]
    assert [m.text() for m in sent] == ["one", "first answer", "two"]

    strange = await client.post(
        "/v1/responses",
        headers=bearer(other),
        json={"model": "basic", "input": "x", "previous_response_id": first["id"]},
    )
    assert strange.status_code == 400  # OpenAI's answer to an unknown previous response
    assert strange.json()["error"]["code"] == "previous_response_not_found"

    deleted = await client.delete(f"/v1/responses/{first['id']}", headers=bearer(key))
    assert deleted.json() == {"id": first["id"], "object": "response", "deleted": True}
    assert (await client.get(f"/v1/responses/{first['id']}", headers=bearer(key))).status_code == 404


async def test_store_false_keeps_nothing(client: httpx.AsyncClient, world: World) -> None:
    key = await new_key(client)
    body = (
        await client.post("/v1/responses", headers=bearer(key), json={"model": "basic", "input": "x", "store": False})
    ).json()
    assert (await client.get(f"/v1/responses/{body['id']}", headers=bearer(key))).status_code == 404


async def test_a_streamed_response_is_stored_once_complete(client: httpx.AsyncClient, world: World) -> None:
    key = await new_key(client)
    world.upstream.script("m", text_events(["a", "b"]))
    answer = await client.post(
        "/v1/responses", headers=bearer(key), json={"model": "basic", "input": "x", "stream": True}
    )
    [(_, done)] = [(n, d) for n, d in sse_events(answer.text) if n == "response.completed"]
    response = done["response"]
    assert isinstance(response, dict)
    got = await client.get(f"/v1/responses/{response['id']}", headers=bearer(key))
    assert got.status_code == 200
    assert got.json()["output"] == response["output"]


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"model": "basic", "input": "x", "previous_response_id": 5}, 400, "previous_response_id"),
        ({"model": "basic", "input": "x", "store": "yes"}, 400, "store"),
        ({"model": "basic", "input": "x", "previous_response_id": "resp_nope"}, 400, "resp_nope"),
    ],
)
async def test_bad_responses_requests_are_openai_errors(
    client: httpx.AsyncClient, body: dict[str, object], status: int, fragment: str
) -> None:
    key = await new_key(client)
    answer = await client.post("/v1/responses", headers=bearer(key), json=body)
    assert answer.status_code == status, answer.text
    assert fragment in answer.json()["error"]["message"]


async def test_a_failed_stream_ends_with_response_failed(client: httpx.AsyncClient, world: World) -> None:
    key = await new_key(client)
    world.upstream.script(
        "m", [MessageStarted(), TextDelta("x"), StreamFailed(kind="overloaded", message="The upstream broke off.")]
    )
    answer = await client.post(
        "/v1/responses", headers=bearer(key), json={"model": "basic", "input": "hi", "stream": True, "store": False}
    )
    events = sse_events(answer.text)
    assert events[-1][0] == "response.failed"
    assert [n for n, _ in events].count("response.failed") == 1


# -- Gemini ------------------------------------------------------------------------------------------------

GEMINI_BODY = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


@pytest.mark.parametrize("prefix", ["/v1beta", "/v1"])
async def test_generate_content_answers_in_geminis_shape(client: httpx.AsyncClient, world: World, prefix: str) -> None:
    key = await new_key(client)
    world.upstream.script("m", text_result("hello!", Usage(input_tokens=9, output_tokens=2)))
    answer = await client.post(
        f"{prefix}/models/basic:generateContent", headers={"x-goog-api-key": key}, json=GEMINI_BODY
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["candidates"][0]["content"]["parts"][0]["text"] == "hello!"
    assert body["candidates"][0]["finishReason"] == "STOP"
    assert body["usageMetadata"]["promptTokenCount"] == 9
    [seen] = world.upstream.calls
    assert seen.request.dialect == "gemini"
    assert seen.request.model == "basic"


async def test_the_key_may_come_in_the_url(client: httpx.AsyncClient, world: World) -> None:
    key = await new_key(client)
    answer = await client.post(f"/v1beta/models/models/basic:generateContent?key={key}", json=GEMINI_BODY)
    assert answer.status_code == 200, answer.text


async def test_stream_generate_content_as_sse(client: httpx.AsyncClient, world: World) -> None:
    key = await new_key(client)
    world.upstream.script("m", text_events(["Hel", "lo"], Usage(input_tokens=7, output_tokens=2)))
    answer = await client.post(
        "/v1beta/models/basic:streamGenerateContent?alt=sse", headers={"x-goog-api-key": key}, json=GEMINI_BODY
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/event-stream")
    chunks = [orjson.loads(line[6:]) for line in answer.text.splitlines() if line.startswith("data: ")]
    text = "".join(p.get("text", "") for c in chunks for p in c["candidates"][0]["content"]["parts"])
    assert text == "Hello"
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"


async def test_stream_generate_content_without_alt_is_one_json_array(client: httpx.AsyncClient, world: World) -> None:
    key = await new_key(client)
    world.upstream.script("m", text_events(["Hel", "lo"]))
    answer = await client.post(
        "/v1beta/models/basic:streamGenerateContent", headers={"x-goog-api-key": key}, json=GEMINI_BODY
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    chunks = orjson.loads(answer.content)
    assert isinstance(chunks, list)
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"


async def test_count_tokens_needs_no_upstream(client: httpx.AsyncClient, world: World) -> None:
    key = await new_key(client)
    answer = await client.post("/v1beta/models/basic:countTokens", headers={"x-goog-api-key": key}, json=GEMINI_BODY)
    assert answer.status_code == 200, answer.text
    assert answer.json()["totalTokens"] >= 1
    assert world.upstream.calls == []


async def test_models_in_geminis_shape(client: httpx.AsyncClient) -> None:
    key = await new_key(client)
    listed = (await client.get("/v1beta/models", headers={"x-goog-api-key": key})).json()
    names = [m["name"] for m in listed["models"]]
    assert "models/basic" in names
    one = await client.get("/v1beta/models/basic", headers={"x-goog-api-key": key})
    assert one.json()["name"] == "models/basic"
    missing = await client.get("/v1beta/models/nope", headers={"x-goog-api-key": key})
    assert missing.status_code == 404
    assert missing.json()["error"]["status"] == "NOT_FOUND"
    openai_shape = await client.get("/v1/models/basic", headers=bearer(key))
    assert openai_shape.json()["id"] == "basic"
    assert openai_shape.json()["object"] == "model"


@pytest.mark.parametrize(
    ("path", "headers", "body", "status", "name"),
    [
        ("/v1beta/models/basic:generateContent", {"x-goog-api-key": "apk_nope"}, GEMINI_BODY, 401, "UNAUTHENTICATED"),
        ("/v1beta/models/basic:generateContent", {}, GEMINI_BODY, 401, "UNAUTHENTICATED"),
        ("/v1beta/models/basic:generateContent", None, b"{nope", 400, "INVALID_ARGUMENT"),
        ("/v1beta/models/basic:frobnicate", None, GEMINI_BODY, 404, "NOT_FOUND"),
        ("/v1beta/models/basic:streamGenerateContent?alt=xml", None, GEMINI_BODY, 400, "INVALID_ARGUMENT"),
    ],
)
async def test_gemini_errors_are_googles_envelope(
    client: httpx.AsyncClient,
    path: str,
    headers: dict[str, str] | None,
    body: object,
    status: int,
    name: str,
) -> None:
    key = await new_key(client)
    sent = headers if headers is not None else {"x-goog-api-key": key}
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    answer = await client.post(path, headers={**sent, "content-type": "application/json"}, content=content)
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert (error["code"], error["status"]) == (status, name)
    assert error["message"]


async def test_a_gemini_tool_call_reaches_the_client_whole(client: httpx.AsyncClient, world: World) -> None:
    key = await new_key(client)
    call = ToolUsePart(id="call_1", name="read_file", arguments='{"path": "a.txt"}')
    world.upstream.script(
        "m", ChatResult(id="r", model="gpt-x", parts=(TextPart("ok"), call), finish_reason=FinishReason.TOOL_USE)
    )
    answer = await client.post(
        "/v1beta/models/basic:generateContent", headers={"x-goog-api-key": key}, json=GEMINI_BODY
    )
    parts = answer.json()["candidates"][0]["content"]["parts"]
    assert {"name": "read_file", "args": {"path": "a.txt"}}.items() <= parts[-1]["functionCall"].items()


async def test_a_gemini_stream_failure_is_a_bare_error_object(client: httpx.AsyncClient, world: World) -> None:
    key = await new_key(client)
    world.upstream.script(
        "m",
        [
            MessageStarted(),
            TextDelta("x"),
            UsageReported(Usage(input_tokens=1, output_tokens=1)),
            StreamFailed(kind="overloaded", message="The upstream broke off."),
        ],
    )
    answer = await client.post(
        "/v1beta/models/basic:streamGenerateContent?alt=sse", headers={"x-goog-api-key": key}, json=GEMINI_BODY
    )
    last = answer.text.strip().splitlines()[-1]
    assert not last.startswith("data:")
    assert orjson.loads(last)["error"]["code"] in (500, 503)
