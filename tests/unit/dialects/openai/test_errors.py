"""decode_error on recorded/composed error bodies, encode_error and encode_models shapes."""

from __future__ import annotations

import pytest

from apipod.dialects.openai import decode_error, encode_error, encode_models
from apipod.domain.errors import (
    UpstreamAuthError,
    UpstreamError,
    UpstreamOverloadedError,
    UpstreamRateLimitedError,
    UpstreamRejectedError,
    UpstreamUnavailableError,
)
from tests.fixture_path import fixture


def test_401_invalid_api_key_is_an_auth_error_without_the_key_fragment() -> None:
    error = decode_error(401, fixture("openai/error_401_invalid_api_key.json").read_bytes(), {})
    assert type(error) is UpstreamAuthError
    assert "invalid_api_key" in error.message
    assert "sk-test" not in error.message  # the account's key never reaches a client


def test_429_insufficient_quota_is_exhausted_with_retry_after() -> None:
    body = fixture("openai/error_429_insufficient_quota.json").read_bytes()
    error = decode_error(429, body, {"Retry-After": "20"})
    assert isinstance(error, UpstreamRateLimitedError)
    assert error.exhausted is True
    assert error.retry_after == 20.0
    assert "insufficient_quota" in error.message


def test_429_rate_limit_is_not_exhausted() -> None:
    body = (
        b'{"error":{"message":"Rate limit reached for gpt-4o in organization org-x",'
        b'"type":"requests","code":"rate_limit_exceeded"}}'
    )
    error = decode_error(429, body, {"retry-after-ms": "1500"})
    assert isinstance(error, UpstreamRateLimitedError)
    assert error.exhausted is False
    assert error.retry_after == 1.5
    assert "org-x" not in error.message


def test_copilot_400_is_passed_on_with_the_upstream_message() -> None:
    error = decode_error(400, fixture("copilot/error_400_model_not_supported.json").read_bytes(), {})
    assert isinstance(error, UpstreamRejectedError)
    assert error.status == 400
    assert error.message == "The requested model is not supported."


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (404, b'{"error":{"message":"The model `x` does not exist","code":"model_not_found"}}', UpstreamRejectedError),
        (413, b"request entity too large", UpstreamRejectedError),
        (422, b'{"detail":"bad field"}', UpstreamRejectedError),
        (403, b"<html>forbidden</html>", UpstreamAuthError),
        (402, b'{"error":{"message":"quota_exceeded"}}', UpstreamRateLimitedError),
        (503, b"", UpstreamOverloadedError),
        (529, b"{}", UpstreamOverloadedError),
        (500, b'{"error":{"message":"internal","type":"server_error"}}', UpstreamUnavailableError),
        (502, b"Bad gateway", UpstreamUnavailableError),
        (504, b"not json {", UpstreamUnavailableError),
        (408, b"", UpstreamUnavailableError),
    ],
)
def test_status_classification(status: int, body: bytes, expected: type[UpstreamError]) -> None:
    error = decode_error(status, body, {})
    assert type(error) is expected
    assert error.message


def test_rejected_messages_from_odd_bodies() -> None:
    assert decode_error(413, b"request entity too large", {}).message == "request entity too large"
    assert decode_error(422, b'{"detail":"bad field"}', {}).message == "bad field"
    assert decode_error(400, b'{"error":"plain"}', {}).message == "plain"
    assert decode_error(400, b"", {}).message == "The upstream rejected the request (HTTP 400)."


def test_other_4xx_is_a_plain_upstream_error_and_http_date_retry_after_needs_the_clock() -> None:
    error = decode_error(
        405, b'{"error":{"message":"Method not allowed"}}', {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}
    )
    assert type(error) is UpstreamError
    assert error.retry_after is None
    assert error.message == "The upstream answered with an error (HTTP 405)."
    assert error.detail == "Method not allowed"
    assert decode_error(503, b"", {"retry-after": "3"}).retry_after == 3.0


def test_encode_error_shape() -> None:
    assert encode_error(status=400, kind="invalid_request_error", message="bad", param="messages[0].role") == {
        "error": {"message": "bad", "type": "invalid_request_error", "param": "messages[0].role", "code": None}
    }
    assert encode_error(status=429, kind="insufficient_quota", message="spent", code="insufficient_quota") == {
        "error": {"message": "spent", "type": "insufficient_quota", "param": None, "code": "insufficient_quota"}
    }


def test_encode_models_shape() -> None:
    assert encode_models(["plan", "gpt-4o-mini"], created=1715367049) == {
        "object": "list",
        "data": [
            {"id": "plan", "object": "model", "created": 1715367049, "owned_by": "apipod"},
            {"id": "gpt-4o-mini", "object": "model", "created": 1715367049, "owned_by": "apipod"},
        ],
    }
    assert encode_models([], created=0) == {"object": "list", "data": []}
