from __future__ import annotations

import pytest

from apipod.dialects.anthropic import count_tokens, decode_error, encode_error, encode_models
from apipod.domain.chat import ChatRequest, ImagePart, Message, Role, TextPart, ToolSpec, ToolUsePart
from apipod.domain.errors import (
    UpstreamAuthError,
    UpstreamOverloadedError,
    UpstreamRateLimitedError,
    UpstreamRejectedError,
    UpstreamUnavailableError,
)
from tests.fixture_path import fixture


def test_400_fixture_is_the_callers_fault_with_the_upstream_message() -> None:
    error = decode_error(400, fixture("anthropic/error_400_invalid_request.json").read_bytes(), {})
    assert isinstance(error, UpstreamRejectedError)
    assert error.status == 400
    assert error.message == (
        "messages.2.content.0: unexpected `tool_use_id` found in `tool_result` blocks: "
        "srvtoolu_issue_17366_invalid. Each `tool_result` block must have a corresponding `tool_use` block in "
        "the previous message."
    )


def test_529_fixture_is_overloaded_with_retry_after() -> None:
    error = decode_error(529, fixture("anthropic/error_529_overloaded.json").read_bytes(), {"retry-after": "12"})
    assert isinstance(error, UpstreamOverloadedError)
    assert error.message == "The upstream is overloaded (HTTP 529 overloaded_error)."
    assert error.detail == "Overloaded"
    assert error.retry_after == 12.0


def test_rate_limit_and_exhausted_credit() -> None:
    body = b'{"type":"error","error":{"type":"rate_limit_error","message":"Number of requests exceeded"}}'
    limited = decode_error(429, body, {"Retry-After": "30"})
    assert isinstance(limited, UpstreamRateLimitedError)
    assert (limited.retry_after, limited.exhausted) == (30.0, False)
    credit = b'{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low"}}'
    exhausted = decode_error(400, credit, {})
    assert isinstance(exhausted, UpstreamRateLimitedError)
    assert exhausted.exhausted
    assert "credit" not in exhausted.message
    billing = decode_error(402, b'{"type":"error","error":{"type":"billing_error","message":"pay"}}', {})
    assert isinstance(billing, UpstreamRateLimitedError)
    assert billing.exhausted


@pytest.mark.parametrize(
    ("status", "body", "kind", "message", "detail"),
    [
        (
            401,
            b'{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}',
            UpstreamAuthError,
            "The upstream refused apipod's credentials (HTTP 401 authentication_error).",
            "invalid x-api-key",
        ),
        (403, b"", UpstreamAuthError, "The upstream refused apipod's credentials (HTTP 403).", ""),
        (
            404,
            b'{"type":"error","error":{"type":"not_found_error","message":"model: x"}}',
            UpstreamRejectedError,
            "model: x",
            "",
        ),
        (
            503,
            b"upstream connect error",
            UpstreamOverloadedError,
            "The upstream is overloaded (HTTP 503).",
            "upstream connect error",
        ),
        (
            500,
            b"<html>Internal Server Error</html>",
            UpstreamUnavailableError,
            "The upstream failed (HTTP 500).",
            "<html>Internal Server Error</html>",
        ),
        (502, b"", UpstreamUnavailableError, "The upstream failed (HTTP 502).", ""),
        (
            504,
            b'{"error": "gateway timeout"}',
            UpstreamUnavailableError,
            "The upstream failed (HTTP 504).",
            "gateway timeout",
        ),
        # 409 fails over, as for every upstream kind (it used to be passed on for Anthropic only)
        (409, b"[]", UpstreamUnavailableError, "The upstream failed (HTTP 409).", ""),
    ],
)
def test_status_mapping_is_robust_to_any_body(status: int, body: bytes, kind: type, message: str, detail: str) -> None:
    error = decode_error(status, body, {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert type(error) is kind
    assert error.message == message
    assert error.detail == detail
    assert error.retry_after is None  # an HTTP date needs the clock, and none was given


def test_encode_error_shape() -> None:
    body = encode_error(status=402, kind="billing_error", message="day budget spent", param="x", code="y")
    assert body == {"type": "error", "error": {"type": "billing_error", "message": "day budget spent"}}


def test_encode_models() -> None:
    assert encode_models(["demo", "gpt-4o-mini"], created=1_700_000_000) == {
        "data": [
            {"type": "model", "id": "demo", "display_name": "demo", "created_at": "2023-11-14T22:13:20Z"},
            {"type": "model", "id": "gpt-4o-mini", "display_name": "gpt-4o-mini", "created_at": "2023-11-14T22:13:20Z"},
        ],
        "has_more": False,
        "first_id": "demo",
        "last_id": "gpt-4o-mini",
    }
    assert encode_models([], created=0) == {"data": [], "has_more": False, "first_id": None, "last_id": None}


def test_count_tokens_is_a_deterministic_quarter_of_the_characters() -> None:
    schema = {"type": "object", "properties": {}}  # 33 characters of JSON
    request = ChatRequest(
        model="m",
        system=(TextPart("abcd" * 10),),
        messages=(Message(Role.USER, (TextPart("12345678"),)),),
        tools=(ToolSpec("t", "", schema),),
    )
    assert count_tokens(request) == 21  # (40 + 8 + 1 + 33) / 4, rounded up
    assert count_tokens(request) == 21
    with_call = ChatRequest(
        model="m",
        messages=(
            Message(Role.ASSISTANT, (ToolUsePart("id", "name", '{"a":1}'),)),  # 4 + 7 characters
            Message(Role.USER, (ImagePart("image/png", data="A" * 100_000),)),
        ),
    )
    assert count_tokens(with_call) == 3 + 1600
    assert count_tokens(ChatRequest(model="m", messages=())) == 1
