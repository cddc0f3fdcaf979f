"""The documented error answers (docs/behaviour.md §2 quota, §3 errors and who is at fault), as each official SDK
sees them: the exception type, the status, the body in the caller's dialect, and the usage row."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.fixture_path import fixture
from tests.integration.harness import model, plan, provider
from tests.integration.http.core_support import Extra, Stack, start_stack

INVALID_TOOL_RESULT = (
    "messages.2.content.0: unexpected `tool_use_id` found in `tool_result` blocks: srvtoolu_issue_17366_invalid. "
    "Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
)
USER = [{"role": "user", "content": "hi"}]


def _catalog(oa_url: str, an_url: str) -> Extra:
    """Candidates that will answer 500 get providers of their own: a failure rests them for a while."""
    return {
        "providers": [
            provider("oa-down-1", "openai", oa_url + "/v1"),
            provider("oa-down-2", "openai", oa_url + "/v1"),
            provider("an-down-1", "anthropic", an_url),
            provider("an-down-2", "anthropic", an_url),
            provider("an-down-3", "anthropic", an_url),
            provider("oa-limited", "openai", oa_url + "/v1"),
            provider("oa-limited-short", "openai", oa_url + "/v1"),
        ],
        "models": [
            model("oa-d1", "oa-down-1", "gpt-d1"),
            model("oa-d2", "oa-down-2", "gpt-d2"),
            model("an-d1", "an-down-1", "claude-d1"),
            model("an-d2", "an-down-2", "claude-d2"),
            model("an-d3", "an-down-3", "claude-d3"),
            model("oa-l", "oa-limited", "gpt-limited"),
            model("oa-ls", "oa-limited-short", "gpt-limited-short"),
        ],
        "plans": [
            plan("oa-down", {"oa-d1": 1, "oa-d2": 1}),
            plan("an-down", {"an-d1": 1, "an-d2": 1}),
            plan("an-down-stream", {"an-d3": 1}),
            plan("limited", {"oa-l": 1}),
            plan("limited-short", {"oa-ls": 1}),
            plan("one-request", {"gpt": 1}, extra='budgets = [{ window = "day", requests = 1 }]\n'),
            plan("an-tokens", {"claude": 1}, extra='budgets = [{ window = "day", tokens = 1000 }]\n'),
            plan(
                "strict",
                {"gpt": 1},
                extra='strict_models = true\naliases = [{ name = "gpt-4o-mini", routes = [{ model = "gpt" }] }]\n',
            ),
        ],
    }


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from start_stack(tmp_path_factory.mktemp("error-answers"), extra=_catalog)


@pytest.fixture(autouse=True)
def _clean(stack: Stack) -> None:
    stack.reset()


def _day_reset() -> tuple[str, float]:
    now = datetime.now(UTC)
    end = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return end.strftime("%Y-%m-%dT%H:%M:%SZ"), (end - now).total_seconds()


def _assert_json(response: httpx.Response) -> dict[str, Any]:
    """The JSON body, less the request id it carries (checked against the ``x-request-id`` header)."""
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body, dict)
    return _untraced(body, response.headers)


def _traced(error: openai.APIStatusError | anthropic.APIStatusError) -> object:
    """An SDK error's body, less its request id (which must be the answer's ``x-request-id``)."""
    body = error.body
    assert isinstance(body, dict)
    return _untraced(body, error.response.headers)


def _untraced(body: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
    """Anthropic's shape has the request id at the top, OpenAI's inside the error object; admin has none."""
    request_id = headers["x-request-id"]
    if body.get("type") == "error":
        assert body.pop("request_id") == request_id == headers["request-id"]
    elif isinstance(body.get("error"), dict) and "request_id" in body["error"]:
        assert body["error"].pop("request_id") == request_id
    elif "request_id" in body:  # an OpenAI error object as the SDK hands it over
        assert body.pop("request_id") == request_id
    return body


# -- quota ---------------------------------------------------------------------------------------------------


def test_exhausted_quota_openai_429_insufficient_quota(stack: Stack) -> None:
    key, key_id = stack.new_key("one-request")
    client = stack.openai(key)
    stack.oa.replay(fixture("openai/chat_completion_text.json"))
    client.chat.completions.create(model="m", messages=USER)  # type: ignore[arg-type]
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="m", messages=USER)  # type: ignore[arg-type]
    error = caught.value
    reset, seconds = _day_reset()
    message = f"Request budget for window 'day' is exhausted; it resets at {reset}"
    assert error.status_code == 429
    assert _traced(error) == {
        "message": message,
        "type": "insufficient_quota",
        "param": None,
        "code": "insufficient_quota",
    }
    assert error.code == "insufficient_quota"
    assert abs(int(error.response.headers["retry-after"]) - math.ceil(seconds)) <= 2
    assert error.response.headers["content-type"].startswith("application/json")
    assert len(stack.oa.requests) == 1  # the refused request never reached the upstream
    rows = stack.usage_rows(key_id, 2)
    assert [r["status"] for r in rows] == ["success", "quota_exceeded"]
    assert (rows[1]["input_tokens"], rows[1]["output_tokens"]) == (0, 0)
    assert rows[1]["error"] == message


def test_exhausted_quota_anthropic_402_billing_error(stack: Stack) -> None:
    key, key_id = stack.new_key("an-tokens")
    client = stack.anthropic(key)
    stack.an.reply_json(
        {
            "id": "msg_big",
            "type": "message",
            "role": "assistant",
            "model": "claude",
            "content": [{"type": "text", "text": "A long answer."}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 900, "output_tokens": 95},
        }
    )
    first = client.messages.create(model="m", max_tokens=50, messages=USER)  # type: ignore[arg-type]
    assert (first.usage.input_tokens, first.usage.output_tokens) == (900, 95)
    with pytest.raises(anthropic.PaymentRequiredError) as caught:
        client.messages.create(model="m", max_tokens=50, messages=USER)  # type: ignore[arg-type]
    error = caught.value
    reset, seconds = _day_reset()
    message = f"Token budget for window 'day' is exhausted; it resets at {reset}"
    assert error.status_code == 402
    assert _traced(error) == {"type": "error", "error": {"type": "billing_error", "message": message}}
    assert abs(int(error.response.headers["retry-after"]) - math.ceil(seconds)) <= 2
    assert len(stack.an.requests) == 1
    rows = stack.usage_rows(key_id, 2)
    assert [(r["status"], r["input_tokens"], r["output_tokens"]) for r in rows] == [
        ("success", 900, 95),
        ("quota_exceeded", 0, 0),
    ]


def test_exhausted_quota_streamed_request_is_refused_before_the_stream(stack: Stack) -> None:
    key, _ = stack.new_key("one-request")
    stack.oa.replay(fixture("openai/chat_completion_text.json"))
    stack.anthropic(key).messages.create(model="m", max_tokens=50, messages=USER)  # type: ignore[arg-type]
    answer = httpx.post(
        f"{stack.url}/v1/messages",
        headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
        json={"model": "m", "max_tokens": 50, "messages": USER, "stream": True},
    )
    assert answer.status_code == 402
    body = _assert_json(answer)
    assert body["type"] == "error"
    assert body["error"]["type"] == "billing_error"
    assert body["error"]["message"].startswith("Request budget for window 'day' is exhausted")


# -- malformed and incomplete requests ------------------------------------------------------------------------


def test_malformed_json_openai(stack: Stack) -> None:
    key, key_id = stack.new_key("oa-plan")
    answer = httpx.post(
        f"{stack.url}/v1/chat/completions",
        headers={"authorization": f"Bearer {key}", "content-type": "application/json"},
        content=b'{"model": "m", "messages": [',
    )
    assert answer.status_code == 400
    body = _assert_json(answer)
    assert set(body) == {"error"}
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["message"].startswith("The request body is not valid JSON")
    assert (body["error"]["param"], body["error"]["code"]) == (None, None)
    assert stack.oa.requests == []
    assert stack.gateway.usage(key_id=key_id) == []


def test_malformed_json_anthropic(stack: Stack) -> None:
    key, _ = stack.new_key("an-plan")
    answer = httpx.post(
        f"{stack.url}/v1/messages",
        headers={"x-api-key": key, "anthropic-version": "2023-06-01", "content-type": "application/json"},
        content=b"{not json}",
    )
    assert answer.status_code == 400
    body = _assert_json(answer)
    assert body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["message"].startswith("The request body is not valid JSON")
    assert stack.an.requests == []


def test_body_that_is_not_an_object(stack: Stack) -> None:
    key, _ = stack.new_key("oa-plan")
    answer = httpx.post(f"{stack.url}/v1/chat/completions", headers={"authorization": f"Bearer {key}"}, json=[1, 2])
    assert answer.status_code == 400
    assert _assert_json(answer)["error"]["message"] == "The request body must be a JSON object."


def test_missing_fields_openai_sdk(stack: Stack) -> None:
    key, _ = stack.new_key("oa-plan")
    client = stack.openai(key)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="m", messages=[{"content": "no role"}])  # type: ignore[list-item]
    assert caught.value.status_code == 400
    body = caught.value.body
    assert isinstance(body, dict)
    assert (body["type"], body["param"], body["code"]) == ("invalid_request_error", "messages[0].role", None)
    assert "messages[0].role" in body["message"]
    assert "required" in body["message"]
    answer = httpx.post(
        f"{stack.url}/v1/chat/completions", headers={"authorization": f"Bearer {key}"}, json={"messages": USER}
    )
    assert answer.status_code == 400
    assert _assert_json(answer)["error"]["param"] == "model"
    assert stack.oa.requests == []


def test_missing_fields_anthropic_sdk(stack: Stack) -> None:
    key, _ = stack.new_key("an-plan")
    client = stack.anthropic(key)
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model="m", max_tokens=10, messages=[{"role": "user"}])  # type: ignore[typeddict-item]
    assert caught.value.status_code == 400
    assert _traced(caught.value) == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "messages[0].content: Field required"},
    }
    answer = httpx.post(
        f"{stack.url}/v1/messages",
        headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
        json={"model": "m", "messages": USER},
    )
    assert answer.status_code == 400
    assert _assert_json(answer) == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "max_tokens: Field required"},
    }
    assert stack.an.requests == []


# -- keys ----------------------------------------------------------------------------------------------------


def test_create_key_unknown_plan_missing_name_and_wrong_secret(stack: Stack) -> None:
    url = f"{stack.url}/admin/create-key"
    unknown = httpx.post(url, headers=stack.gateway.admin, json={"name": "n", "tier": "no-such-plan"})
    assert unknown.status_code == 400
    assert _assert_json(unknown) == {
        "error": {"type": "invalid_request", "message": "Unknown plan 'no-such-plan'.", "field": "tier"}
    }
    nameless = httpx.post(url, headers=stack.gateway.admin, json={"tier": "oa-plan"})
    assert nameless.status_code == 400
    assert _assert_json(nameless) == {
        "error": {"type": "invalid_request", "message": "name: is required", "field": "name"}
    }
    wrong = httpx.post(url, headers={"x-admin-secret": "not-the-secret-at-all"}, json={"name": "n", "tier": "oa-plan"})
    assert wrong.status_code == 403
    assert _assert_json(wrong) == {"error": {"type": "forbidden", "message": "Invalid admin secret."}}
    created = httpx.post(url, headers=stack.gateway.admin, json={"name": "n", "plan": "oa-plan", "expires_in": 0.5})
    assert created.status_code == 201
    body = created.json()
    assert body["tier"] == "oa-plan"
    expires = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    created_at = datetime.fromisoformat(body["created_at"].replace("Z", "+00:00"))
    assert abs((expires - created_at) - timedelta(hours=12)) < timedelta(seconds=1)


def test_expired_key_is_refused_with_403(stack: Stack) -> None:
    expires = datetime.now(UTC) + timedelta(seconds=1.5)
    key, key_id = stack.new_key("oa-plan", expires_at=expires.isoformat().replace("+00:00", "Z"))
    fraction_key, _ = stack.new_key("an-plan", expires_in=1.5 / 86_400)  # a fraction of a day: 1.5 s
    oa_client, an_client = stack.openai(key), stack.anthropic(fraction_key)
    stack.oa.replay(fixture("openai/chat_completion_text.json"))
    oa_client.chat.completions.create(model="m", messages=USER)  # type: ignore[arg-type]
    stack.an.replay(fixture("anthropic/message_text.json"))
    an_client.messages.create(model="m", max_tokens=5, messages=USER)  # type: ignore[arg-type]
    time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.3)
    with pytest.raises(openai.PermissionDeniedError) as oa_caught:
        oa_client.chat.completions.create(model="m", messages=USER)  # type: ignore[arg-type]
    assert oa_caught.value.status_code == 403
    assert _traced(oa_caught.value) == {
        "message": "This API key has expired.",
        "type": "invalid_request_error",
        "param": None,
        "code": "permission_denied",
    }
    with pytest.raises(anthropic.PermissionDeniedError) as an_caught:
        an_client.messages.create(model="m", max_tokens=5, messages=USER)  # type: ignore[arg-type]
    assert an_caught.value.status_code == 403
    assert _traced(an_caught.value) == {
        "type": "error",
        "error": {"type": "permission_error", "message": "This API key has expired."},
    }
    assert (len(stack.oa.requests), len(stack.an.requests)) == (1, 1)
    assert [r["status"] for r in stack.usage_rows(key_id, 1)] == ["success"]


def test_revoked_key_is_refused_with_403(stack: Stack) -> None:
    key, key_id = stack.new_key("an-plan")
    client = stack.anthropic(key)
    stack.an.replay(fixture("anthropic/message_text.json"))
    assert client.messages.create(model="m", max_tokens=5, messages=USER).content[0].type == "text"  # type: ignore[arg-type]
    revoked = httpx.post(f"{stack.url}/admin/keys/{key_id}/revoke", headers=stack.gateway.admin)
    assert revoked.status_code == 200
    assert revoked.json()["active"] is False
    with pytest.raises(anthropic.PermissionDeniedError) as an_caught:
        client.messages.create(model="m", max_tokens=5, messages=USER)  # type: ignore[arg-type]
    assert an_caught.value.status_code == 403
    assert _traced(an_caught.value) == {
        "type": "error",
        "error": {"type": "permission_error", "message": "This API key has been revoked."},
    }
    with pytest.raises(openai.PermissionDeniedError) as oa_caught:
        stack.openai(key).models.list()
    assert oa_caught.value.body["message"] == "This API key has been revoked."  # type: ignore[index]
    assert len(stack.an.requests) == 1


def test_unknown_and_missing_keys_are_401(stack: Stack) -> None:
    with pytest.raises(openai.AuthenticationError) as oa_caught:
        stack.openai("apk_" + "A" * 43).chat.completions.create(model="m", messages=USER)  # type: ignore[arg-type]
    assert _traced(oa_caught.value) == {
        "message": "Invalid API key.",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    }
    with pytest.raises(anthropic.AuthenticationError) as an_caught:
        stack.anthropic("apk_" + "B" * 43).messages.create(model="m", max_tokens=5, messages=USER)  # type: ignore[arg-type]
    assert _traced(an_caught.value) == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "Invalid API key."},
    }
    missing = httpx.post(f"{stack.url}/v1/messages", json={"model": "m", "max_tokens": 5, "messages": USER})
    assert missing.status_code == 401
    assert _assert_json(missing)["error"]["type"] == "authentication_error"
    malformed = httpx.post(
        f"{stack.url}/v1/chat/completions", headers={"authorization": "Basic abc"}, json={"model": "m"}
    )
    assert malformed.status_code == 401
    assert _assert_json(malformed)["error"]["code"] == "invalid_api_key"


def test_unknown_model_on_a_strict_plan_is_404(stack: Stack) -> None:
    key, key_id = stack.new_key("strict")
    message = "The model 'gpt-9-ultra' does not exist for this key; available: strict, gpt-4o-mini."
    with pytest.raises(openai.NotFoundError) as oa_caught:
        stack.openai(key).chat.completions.create(model="gpt-9-ultra", messages=USER)  # type: ignore[arg-type]
    assert oa_caught.value.status_code == 404
    assert _traced(oa_caught.value) == {
        "message": message,
        "type": "invalid_request_error",
        "param": None,
        "code": "model_not_found",
    }
    with pytest.raises(anthropic.NotFoundError) as an_caught:
        stack.anthropic(key).messages.create(model="gpt-9-ultra", max_tokens=5, messages=USER)  # type: ignore[arg-type]
    assert _traced(an_caught.value) == {"type": "error", "error": {"type": "not_found_error", "message": message}}
    assert stack.oa.requests == []
    stack.oa.replay(fixture("openai/chat_completion_text.json"))
    ok = stack.openai(key).chat.completions.create(model="gpt-4o-mini", messages=USER)  # type: ignore[arg-type]
    assert ok.model == "gpt-4o-mini"
    assert stack.oa.last.body["model"] == "gpt-4o-up"
    assert [m.id for m in stack.openai(key).models.list().data] == ["strict", "gpt-4o-mini"]
    [row] = stack.usage_rows(key_id, 1)  # refused at routing: no usage row, nothing billed
    assert (row["requested_model"], row["status"]) == ("gpt-4o-mini", "success")


# -- upstream errors -------------------------------------------------------------------------------------------


def test_upstream_400_is_passed_on_with_its_message_openai(stack: Stack) -> None:
    key, key_id = stack.new_key("oa-plan")
    stack.oa.reply_error(400, "Invalid 'messages[0].content': string too long.", code="string_above_max_length")
    with pytest.raises(openai.BadRequestError) as caught:
        stack.openai(key).chat.completions.create(model="m", messages=USER)  # type: ignore[arg-type]
    assert caught.value.status_code == 400
    assert _traced(caught.value) == {
        "message": "Invalid 'messages[0].content': string too long.",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    assert len(stack.oa.requests) == 1  # the caller's fault: no failover, no retry
    stack.oa.replay(fixture("openai/chat_completion_text.json"))
    stack.openai(key).chat.completions.create(model="m", messages=USER)  # type: ignore[arg-type]
    rows = stack.usage_rows(key_id, 2)
    assert [(r["status"], r["input_tokens"], r["output_tokens"]) for r in rows] == [
        ("rejected", 0, 0),
        ("success", 14, 37),  # the account was not rested for the caller's mistake
    ]
    assert rows[0]["error"] == "Invalid 'messages[0].content': string too long."


def test_upstream_400_is_passed_on_with_its_message_anthropic(stack: Stack) -> None:
    key, key_id = stack.new_key("an-plan")
    stack.an.replay(fixture("anthropic/error_400_invalid_request.json"))
    with pytest.raises(anthropic.BadRequestError) as caught:
        stack.anthropic(key).messages.create(model="m", max_tokens=5, messages=USER)  # type: ignore[arg-type]
    assert caught.value.status_code == 400
    assert _traced(caught.value) == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": INVALID_TOOL_RESULT},
    }
    assert stack.usage_row(key_id)["status"] == "rejected"


def test_upstream_400_across_dialects_keeps_the_message(stack: Stack) -> None:
    key, _ = stack.new_key("an-plan")
    stack.an.replay(fixture("anthropic/error_400_invalid_request.json"))
    with pytest.raises(openai.BadRequestError) as caught:
        stack.openai(key).chat.completions.create(model="m", messages=USER)  # type: ignore[arg-type]
    assert _traced(caught.value) == {
        "message": INVALID_TOOL_RESULT,
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }


def test_upstream_500_on_every_candidate_is_503_openai(stack: Stack) -> None:
    key, key_id = stack.new_key("oa-down")
    stack.oa.reply_error(500, "The server had an error while processing your request.", kind="server_error")
    stack.oa.reply_error(500, "The server had an error while processing your request.", kind="server_error")
    with pytest.raises(openai.InternalServerError) as caught:
        stack.openai(key).chat.completions.create(model="m", messages=USER)  # type: ignore[arg-type]
    assert caught.value.status_code == 503
    body = caught.value.body
    assert isinstance(body, dict)
    assert (body["type"], body["param"], body["code"]) == ("server_error", None, None)
    assert body["message"].startswith("No upstream could serve the request")
    assert sorted(r.body["model"] for r in stack.oa.requests) == ["gpt-d1", "gpt-d2"]  # both candidates tried
    row = stack.usage_row(key_id)
    assert (row["status"], row["input_tokens"], row["output_tokens"]) == ("upstream_unavailable", 0, 0)
    assert sorted(a["model"] for a in row["attempts"] if a["outcome"].startswith("failed")) == ["oa-d1", "oa-d2"]


def test_upstream_500_on_every_candidate_is_503_anthropic(stack: Stack) -> None:
    key, key_id = stack.new_key("an-down")
    stack.an.reply_error(500, "Internal server error")
    stack.an.reply_error(500, "Internal server error")
    with pytest.raises(anthropic.ServiceUnavailableError) as caught:
        stack.anthropic(key).messages.create(model="m", max_tokens=5, messages=USER)  # type: ignore[arg-type]
    assert caught.value.status_code == 503
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["type"] == "error"
    assert body["error"]["type"] == "api_error"
    assert body["error"]["message"].startswith("No upstream could serve the request")
    assert sorted(r.body["model"] for r in stack.an.requests) == ["claude-d1", "claude-d2"]
    assert stack.usage_row(key_id)["status"] == "upstream_unavailable"


def test_upstream_error_mid_stream_anthropic_client(stack: Stack) -> None:
    key, key_id = stack.new_key("an-plan")
    stack.an.replay(fixture("anthropic/stream_error_midstream.sse"))
    texts: list[str] = []
    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        stack.anthropic(key).messages.stream(model="m", max_tokens=50, messages=USER) as stream,  # type: ignore[arg-type]
    ):
        texts.extend(stream.text_stream)  # the error event arrives inside the stream
    assert texts == ["Sure, here is"]
    # the upstream's own text stays out of the client's answer (upstream_faults): it says what kind of failure
    overloaded = "The upstream is overloaded (overloaded_error)."
    # an error event inside a stream is the stream encoder's: the request id is in the stream's headers
    assert caught.value.response.headers["request-id"] == caught.value.response.headers["x-request-id"]
    assert caught.value.body == {"type": "error", "error": {"type": "overloaded_error", "message": overloaded}}
    row = stack.usage_row(key_id)
    assert (row["status"], row["error"]) == ("upstream_error", overloaded)
    assert (row["input_tokens"], row["output_tokens"]) == (25, 1)  # what the upstream reported before failing


def test_upstream_error_mid_stream_raw_frames_end_after_the_error(stack: Stack) -> None:
    key, _ = stack.new_key("an-plan")
    stack.an.replay(fixture("anthropic/stream_error_midstream.sse"))
    with httpx.stream(
        "POST",
        f"{stack.url}/v1/messages",
        headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
        json={"model": "m", "max_tokens": 50, "messages": USER, "stream": True},
    ) as answer:
        assert answer.status_code == 200
        raw = answer.read()
    assert raw.endswith(
        b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error",'
        b'"message":"The upstream is overloaded (overloaded_error)."}}\n\n'
    )
    assert b"message_stop" not in raw


def test_upstream_error_mid_stream_openai_client(stack: Stack) -> None:
    key, key_id = stack.new_key("an-plan")
    stack.an.replay(fixture("anthropic/stream_error_midstream.sse"))
    texts: list[str] = []
    with pytest.raises(openai.APIError) as caught:  # noqa: PT012 - the error arrives inside the stream
        for chunk in stack.openai(key).chat.completions.create(model="m", messages=USER, stream=True):  # type: ignore[arg-type]
            if chunk.choices and chunk.choices[0].delta.content:
                texts.append(chunk.choices[0].delta.content)
    assert texts == ["Sure, here is"]
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["message"] == "The upstream is overloaded (overloaded_error)."
    assert caught.value.message == "The upstream is overloaded (overloaded_error)."
    assert stack.usage_row(key_id)["status"] == "upstream_error"


def test_upstream_rate_limit_on_every_candidate_is_429_with_retry_after(stack: Stack) -> None:
    key, key_id = stack.new_key("limited")
    stack.oa.reply_error(
        429,
        "Rate limit reached for gpt-4o.",
        kind="requests",
        code="rate_limit_exceeded",
        headers={"retry-after": "30"},
    )
    with pytest.raises(openai.RateLimitError) as oa_caught:
        stack.openai(key).chat.completions.create(model="m", messages=USER)  # type: ignore[arg-type]
    assert oa_caught.value.status_code == 429
    body = oa_caught.value.body
    assert isinstance(body, dict)
    assert (body["type"], body["code"]) == ("rate_limit_error", "rate_limit_exceeded")
    assert oa_caught.value.response.headers["retry-after"] == "30"
    # The pair rests for the upstream's Retry-After: the next caller is answered without an upstream call.
    with pytest.raises(anthropic.RateLimitError) as an_caught:
        stack.anthropic(key).messages.create(model="m", max_tokens=5, messages=USER)  # type: ignore[arg-type]
    assert an_caught.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert 27 <= int(an_caught.value.response.headers["retry-after"]) <= 30
    assert len(stack.oa.requests) == 1
    assert [r["status"] for r in stack.usage_rows(key_id, 2)] == ["rate_limited", "rate_limited"]


def test_upstream_errors_before_the_first_byte_of_a_stream_are_http_errors(stack: Stack) -> None:
    """Streaming asked for, but nothing was sent yet: the client gets a real HTTP status, not a 200 stream."""
    key, _ = stack.new_key("oa-plan")
    stack.oa.reply_error(400, "'tools[0].function.name' is invalid.")
    with pytest.raises(openai.BadRequestError) as caught:
        list(stack.openai(key).chat.completions.create(model="m", messages=USER, stream=True))  # type: ignore[arg-type]
    assert caught.value.status_code == 400
    assert caught.value.body["message"] == "'tools[0].function.name' is invalid."  # type: ignore[index]
    down_key, _ = stack.new_key("an-down-stream")
    stack.an.reply_error(500, "Internal server error")
    with (
        pytest.raises(anthropic.ServiceUnavailableError) as an_caught,
        stack.anthropic(down_key).messages.stream(model="m", max_tokens=5, messages=USER) as stream,  # type: ignore[arg-type]
    ):
        stream.get_final_message()
    assert an_caught.value.status_code == 503
    assert an_caught.value.body["error"]["type"] == "api_error"  # type: ignore[index]


def test_short_upstream_rate_limit_is_not_reported_as_an_outage(stack: Stack) -> None:
    """An upstream 429 with a Retry-After shorter than QUEUE_WAIT_SECONDS on the only candidate: the
    candidate is resting, not down. docs/behaviour.md §1 step 6: 429 with Retry-After (or, after waiting for
    the rest to end, a retry that succeeds) -- never 503 "all down"."""
    key, _ = stack.new_key("limited-short")
    stack.oa.reply_error(
        429, "Rate limit reached for gpt-4o.", kind="requests", code="rate_limit_exceeded", headers={"retry-after": "1"}
    )
    stack.oa.replay(fixture("openai/chat_completion_text.json"))
    answer = httpx.post(
        f"{stack.url}/v1/chat/completions",
        headers={"authorization": f"Bearer {key}"},
        json={"model": "m", "messages": USER},
    )
    if answer.status_code == 200:  # waited for the rest to end, then retried
        assert answer.json()["choices"][0]["message"]["content"].startswith("I'm unable to provide real-time")
        assert len(stack.oa.requests) == 2
    else:
        body = _assert_json(answer)
        assert (answer.status_code, body["error"]["type"]) == (429, "rate_limit_error"), answer.text
        assert answer.headers["retry-after"] == "1"
