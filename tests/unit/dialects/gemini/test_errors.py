"""decode_error: Gemini error answers -> the domain's upstream errors."""

from __future__ import annotations

import orjson
import pytest

from apipod.dialects.gemini import decode_error, parse_duration
from apipod.domain.errors import (
    UpstreamAuthError,
    UpstreamError,
    UpstreamOverloadedError,
    UpstreamRateLimitedError,
    UpstreamRejectedError,
    UpstreamUnavailableError,
)
from tests.fixture_path import fixture


def test_recorded_429_resource_exhausted() -> None:
    error = decode_error(429, fixture("gemini/error_429_resource_exhausted.json").read_bytes(), {})
    assert isinstance(error, UpstreamRateLimitedError)
    assert error.message == "The upstream account's rate limit was hit (HTTP 429 RESOURCE_EXHAUSTED)."
    assert error.retry_after == pytest.approx(34.4)
    assert error.exhausted is False  # a per-minute quota


def test_per_day_quota_is_exhausted_and_header_is_the_fallback_delay() -> None:
    body = {
        "error": {
            "code": 429,
            "message": "quota",
            "status": "RESOURCE_EXHAUSTED",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [{"quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier"}],
                }
            ],
        }
    }
    error = decode_error(429, orjson.dumps(body), {"retry-after": "17"})
    assert isinstance(error, UpstreamRateLimitedError)
    assert error.exhausted is True
    assert error.retry_after == 17.0
    assert error.message == "The upstream account's quota is exhausted (HTTP 429 RESOURCE_EXHAUSTED)."
    assert error.detail == "quota"


def test_recorded_400_invalid_argument() -> None:
    error = decode_error(400, fixture("gemini/error_400_invalid_argument.json").read_bytes(), {})
    assert isinstance(error, UpstreamRejectedError)
    assert error.status == 400
    assert error.message == "Penalty is not enabled for models/gemini-2.5-flash"


def test_invalid_key_and_failed_precondition_blame_the_account() -> None:
    body = {
        "error": {
            "code": 400,
            "message": "API key not valid. Please pass a valid API key.",
            "status": "INVALID_ARGUMENT",
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}],
        }
    }
    error = decode_error(400, orjson.dumps(body), {})
    assert isinstance(error, UpstreamAuthError)
    assert error.message == "The upstream refused apipod's credentials (HTTP 400 INVALID_ARGUMENT API_KEY_INVALID)."
    assert error.detail == "API key not valid. Please pass a valid API key."
    region = {"error": {"code": 400, "message": "User location is not supported", "status": "FAILED_PRECONDITION"}}
    assert isinstance(decode_error(400, orjson.dumps(region), {}), UpstreamAuthError)


@pytest.mark.parametrize(
    ("status", "rpc", "kind", "message"),
    [
        (
            401,
            "UNAUTHENTICATED",
            UpstreamAuthError,
            "The upstream refused apipod's credentials (HTTP 401 UNAUTHENTICATED).",
        ),
        (
            403,
            "PERMISSION_DENIED",
            UpstreamAuthError,
            "The upstream refused apipod's credentials (HTTP 403 PERMISSION_DENIED).",
        ),
        (404, "NOT_FOUND", UpstreamRejectedError, "models/nope is not found"),
        (503, "UNAVAILABLE", UpstreamOverloadedError, "The upstream is overloaded (HTTP 503 UNAVAILABLE)."),
        (500, "INTERNAL", UpstreamUnavailableError, "The upstream failed (HTTP 500 INTERNAL)."),
        (504, "DEADLINE_EXCEEDED", UpstreamUnavailableError, "The upstream failed (HTTP 504 DEADLINE_EXCEEDED)."),
        (408, "", UpstreamUnavailableError, "The upstream failed (HTTP 408)."),
        (405, "", UpstreamError, "The upstream answered with an error (HTTP 405)."),
    ],
)
def test_status_mapping(status: int, rpc: str, kind: type[Exception], message: str) -> None:
    body = orjson.dumps({"error": {"code": status, "message": "models/nope is not found", "status": rpc}})
    error = decode_error(status, body, {"retry-after": "3"})
    assert type(error) is kind
    assert error.message == message
    if kind in (UpstreamOverloadedError, UpstreamUnavailableError):
        assert error.retry_after == 3.0


def test_non_json_bodies() -> None:
    error = decode_error(400, b"<html>Bad Request</html>", {})
    assert isinstance(error, UpstreamRejectedError)
    assert error.message == "<html>Bad Request</html>"
    assert decode_error(404, b"", {}).message == "The upstream rejected the request (HTTP 404)."
    assert isinstance(decode_error(502, b"<html>Bad Gateway</html>", {}), UpstreamUnavailableError)
    wrapped = decode_error(200, b'[{"error": {"message": "slow", "status": "RESOURCE_EXHAUSTED"}}]', {})
    assert isinstance(wrapped, UpstreamRateLimitedError)
    assert wrapped.retry_after is None


def test_durations() -> None:
    assert parse_duration("0.479417207s") == pytest.approx(0.479417207)
    assert parse_duration("34s") == 34.0
    assert parse_duration("abc") is None
    assert parse_duration(3) is None
