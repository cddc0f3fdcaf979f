"""The one upstream error policy (issue 8) and its Retry-After parser, and issue 9 item 2: no upstream's
authentication or account error text reaches a client, whatever the upstream's kind."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from apipod.adapters.upstreams import antigravity_errors
from apipod.dialects import anthropic, gemini, openai
from apipod.dialects.upstream_faults import (
    AUTH,
    EXHAUSTED,
    EXHAUSTED_REST,
    NO_CAPACITY,
    OTHER,
    OVERLOADED,
    RATE_LIMITED,
    REJECTED,
    RULES,
    UNAVAILABLE,
    Action,
    Fault,
    classify,
    parse_duration,
    parse_go_duration,
    retry_after,
    retry_info_delay,
    stream_failure,
    upstream_error,
)
from apipod.domain.errors import (
    UpstreamAuthError,
    UpstreamError,
    UpstreamOverloadedError,
    UpstreamRateLimitedError,
    UpstreamRejectedError,
    UpstreamUnavailableError,
)
from apipod.domain.stream import StreamEvent, StreamFailed

NOW = datetime(2026, 3, 14, 12, 0, 0, tzinfo=UTC)
SECRET = "sk-ant-api03-SECRET"
Decoder = Callable[[int, bytes, Mapping[str, str]], UpstreamError]


# -- every upstream kind's decoder, and how each spells an error ---------------------------------------------
def _openai_body(status: int, message: str, code: str = "") -> bytes:
    return orjson.dumps({"error": {"message": message, "type": code or "api_error", "code": None}})


def _anthropic_body(status: int, message: str, code: str = "") -> bytes:
    return orjson.dumps({"type": "error", "error": {"type": code or "api_error", "message": message}})


def _google_body(status: int, message: str, code: str = "") -> bytes:
    return orjson.dumps({"error": {"code": status, "message": message, "status": code}})


def _antigravity(status: int, body: bytes, headers: Mapping[str, str]) -> UpstreamError:
    return antigravity_errors.decode_error(status, body, headers, now=NOW)


# Copilot's chat answers go through the OpenAI decoder (and its native /v1/messages through Anthropic's).
KINDS: dict[str, tuple[Decoder, Callable[..., bytes]]] = {
    "openai": (openai.decode_error, _openai_body),
    "copilot": (openai.decode_error, _openai_body),
    "anthropic": (anthropic.decode_error, _anthropic_body),
    "google_ai_studio": (gemini.decode_error, _google_body),
    "antigravity": (_antigravity, _google_body),
}


def decode(
    kind: str, status: int, message: str = "boom", code: str = "", headers: Mapping[str, str] | None = None
) -> UpstreamError:
    decoder, body = KINDS[kind]
    return decoder(status, body(status, message, code), headers or {})


# The dispatcher acts on the error's class: each class stands for exactly one action.
ACTION_OF_CLASS: dict[type[UpstreamError], Action] = {
    UpstreamRejectedError: Action.TO_CALLER,
    UpstreamRateLimitedError: Action.REST_PAIR,
    UpstreamAuthError: Action.REST_ACCOUNT,
    UpstreamOverloadedError: Action.FAIL_OVER,
    UpstreamUnavailableError: Action.FAIL_OVER,
    UpstreamError: Action.FAIL_OVER,
}


def test_every_fault_has_the_action_of_its_error_class() -> None:
    faults = {rule.fault for rule in RULES} | {OTHER}
    assert all(ACTION_OF_CLASS[fault.error] is fault.action for fault in faults)
    assert {fault.action for fault in faults} == set(Action)


# -- the table, row by row ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "hints", "fault"),
    [
        (429, ("model_capacity_exhausted",), NO_CAPACITY),
        (None, ("MODEL_CAPACITY_EXHAUSTED",), NO_CAPACITY),
        (429, ("insufficient_quota",), EXHAUSTED),
        (403, ("quota_exceeded",), EXHAUSTED),
        (400, ("billing_error",), EXHAUSTED),
        (429, ("billing_hard_limit_reached",), EXHAUSTED),
        (400, ("billing_not_active",), EXHAUSTED),
        (429, ("RESOURCE_EXHAUSTED", "daily_quota"), EXHAUSTED),
        (429, ("QUOTA_EXHAUSTED",), EXHAUSTED),
        (429, ("INSUFFICIENT_G1_CREDITS_BALANCE",), EXHAUSTED),
        (None, ("insufficient_quota",), EXHAUSTED),
        (404, ("insufficient_quota",), REJECTED),  # not where a spent account is reported
        (402, (), EXHAUSTED),
        (429, (), RATE_LIMITED),
        (200, ("RESOURCE_EXHAUSTED",), RATE_LIMITED),
        (None, ("rate_limit_error",), RATE_LIMITED),
        (None, ("rate_limit_exceeded",), RATE_LIMITED),
        (401, (), AUTH),
        (403, (), AUTH),
        (400, ("INVALID_ARGUMENT", "API_KEY_INVALID"), AUTH),
        (400, ("FAILED_PRECONDITION",), AUTH),
        (None, ("authentication_error",), AUTH),
        (None, ("permission_error",), AUTH),
        (None, ("invalid_api_key",), AUTH),
        (None, ("UNAUTHENTICATED",), AUTH),
        (None, ("PERMISSION_DENIED",), AUTH),
        (500, ("overloaded_error",), OVERLOADED),
        (None, ("overloaded",), OVERLOADED),
        (None, ("service_unavailable",), OVERLOADED),
        (500, ("UNAVAILABLE",), OVERLOADED),
        (400, (), REJECTED),
        (404, (), REJECTED),
        (413, (), REJECTED),
        (422, (), REJECTED),
        (503, (), OVERLOADED),
        (529, (), OVERLOADED),
        (408, (), UNAVAILABLE),
        (409, (), UNAVAILABLE),
        (500, (), UNAVAILABLE),
        (502, (), UNAVAILABLE),
        (504, (), UNAVAILABLE),
        (599, (), UNAVAILABLE),
        (405, (), OTHER),
        (410, (), OTHER),
        (302, (), OTHER),
        (None, (), OTHER),
        (None, ("invalid_request_error",), OTHER),  # in a stream nothing proves it is the caller's fault
    ],
)
def test_classify(status: int | None, hints: tuple[str, ...], fault: Fault) -> None:
    assert classify(status, hints) is fault


STATUS_ROWS: list[tuple[int, type[UpstreamError], Action]] = [
    (400, UpstreamRejectedError, Action.TO_CALLER),
    (404, UpstreamRejectedError, Action.TO_CALLER),
    (413, UpstreamRejectedError, Action.TO_CALLER),
    (422, UpstreamRejectedError, Action.TO_CALLER),
    (401, UpstreamAuthError, Action.REST_ACCOUNT),
    (403, UpstreamAuthError, Action.REST_ACCOUNT),
    (402, UpstreamRateLimitedError, Action.REST_PAIR),
    (429, UpstreamRateLimitedError, Action.REST_PAIR),
    (408, UpstreamUnavailableError, Action.FAIL_OVER),
    (409, UpstreamUnavailableError, Action.FAIL_OVER),
    (500, UpstreamUnavailableError, Action.FAIL_OVER),
    (502, UpstreamUnavailableError, Action.FAIL_OVER),
    (504, UpstreamUnavailableError, Action.FAIL_OVER),
    (503, UpstreamOverloadedError, Action.FAIL_OVER),
    (529, UpstreamOverloadedError, Action.FAIL_OVER),
    (405, UpstreamError, Action.FAIL_OVER),
]


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize(("status", "error", "action"), STATUS_ROWS)
def test_the_same_status_means_the_same_thing_for_every_upstream_kind(
    kind: str, status: int, error: type[UpstreamError], action: Action
) -> None:
    decoded = decode(kind, status, "something went wrong")
    assert isinstance(decoded, error)
    # the exact class, except Antigravity's 401, which refreshes its token first and is still an auth error
    assert type(decoded) is error or (kind == "antigravity" and status == 401)
    assert ACTION_OF_CLASS[error] is action
    if action is Action.TO_CALLER:
        assert decoded.message == "something went wrong"
        assert isinstance(decoded, UpstreamRejectedError) and decoded.status == status
    else:
        assert decoded.message.startswith("The upstream")
        assert f"HTTP {status}" in decoded.message
        assert decoded.detail == "something went wrong"
    if isinstance(decoded, UpstreamRateLimitedError):
        assert decoded.exhausted is (status == 402)


@pytest.mark.parametrize(
    ("kind", "status", "code", "message"),
    [
        ("openai", 429, "insufficient_quota", "You exceeded your current quota"),
        ("copilot", 403, "quota_exceeded", "premium requests used up"),
        ("copilot", 402, "", "monthly premium requests used up"),
        ("anthropic", 400, "invalid_request_error", "Your credit balance is too low to access the API."),
        ("anthropic", 402, "billing_error", "pay"),
        ("antigravity", 429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    ],
)
def test_a_spent_account_rests_longer_and_says_so_generically(kind: str, status: int, code: str, message: str) -> None:
    decoded = decode(kind, status, message, code)
    assert isinstance(decoded, UpstreamRateLimitedError)
    assert decoded.exhausted is True
    assert decoded.retry_after == (antigravity_errors.EXHAUSTED_REST if kind == "antigravity" else EXHAUSTED_REST)
    assert message not in decoded.message
    assert decoded.detail == message


def test_a_spent_quota_keeps_the_reset_the_upstream_states() -> None:
    decoded = decode("openai", 429, "spent", "insufficient_quota", {"retry-after": "42"})
    assert isinstance(decoded, UpstreamRateLimitedError)
    assert (decoded.exhausted, decoded.retry_after) == (True, 42.0)


def test_a_short_rate_limit_leaves_the_rest_to_the_dispatcher_when_the_upstream_says_nothing() -> None:
    decoded = decode("openai", 429, "slow down", "requests")
    assert isinstance(decoded, UpstreamRateLimitedError)
    assert (decoded.exhausted, decoded.retry_after) == (False, None)


def test_client_message_shows_only_code_like_values() -> None:
    body = orjson.dumps({"error": {"message": "m", "type": "server_error", "code": "key sk-proj-123 is bad"}})
    decoded = openai.decode_error(500, body, {})
    assert decoded.message == "The upstream failed (HTTP 500 server_error)."


def test_detail_is_capped_and_not_part_of_the_exception_text() -> None:
    decoded = upstream_error(401, message="x" * 2000, headers={})
    assert len(decoded.detail) == 500
    assert decoded.detail not in str(decoded) and decoded.detail not in repr(decoded)


# -- Retry-After ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "12"}, 12.0),
        ({"Retry-After": "1.5"}, 1.5),
        ({"retry-after": "0"}, 0.0),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),  # the finer one wins
        ({"retry-after": "Sat, 14 Mar 2026 12:00:30 GMT"}, 30.0),
        ({"retry-after": "Sat, 14 Mar 2026 11:59:00 GMT"}, 0.0),  # already past
        ({"retry-after": "soon"}, None),
        ({"retry-after": "-5"}, None),
        ({"retry-after-ms": "-1", "retry-after": "4"}, 4.0),
        ({"retry-after": "nan"}, None),
        ({"retry-after": "inf"}, None),
        ({}, None),
        ({"x-ratelimit-reset-requests": "1s", "x-ratelimit-reset-tokens": "6m0s"}, 360.0),
        ({"x-ratelimit-reset-tokens": "20ms"}, 0.02),
        (
            {
                "x-ratelimit-reset-requests": "17s",
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-tokens": "6m0s",
                "x-ratelimit-remaining-tokens": "1200",
            },
            17.0,  # the limit that ran out, not the longest
        ),
        ({"x-ratelimit-reset-requests": "a while"}, None),
        ({"anthropic-ratelimit-requests-reset": "2026-03-14T12:00:45Z"}, 45.0),
        (
            {
                "anthropic-ratelimit-requests-reset": "2026-03-14T12:00:05Z",
                "anthropic-ratelimit-requests-remaining": "12",
                "anthropic-ratelimit-output-tokens-reset": "2026-03-14T12:01:00+00:00",
                "anthropic-ratelimit-output-tokens-remaining": "0",
            },
            60.0,
        ),
        ({"anthropic-ratelimit-tokens-reset": "2026-03-14T11:00:00Z"}, 0.0),
        ({"anthropic-ratelimit-tokens-reset": "tomorrow"}, None),
        ({"retry-after": "3", "x-ratelimit-reset-tokens": "6m0s"}, 3.0),  # Retry-After comes first
    ],
)
def test_retry_after(headers: dict[str, str], expected: float | None) -> None:
    found = retry_after(headers, now=NOW)
    assert found == (pytest.approx(expected) if expected is not None else None)


def test_absolute_times_need_now() -> None:
    assert retry_after({"retry-after": "Sat, 14 Mar 2026 12:00:30 GMT"}) is None
    assert retry_after({"anthropic-ratelimit-requests-reset": "2026-03-14T12:00:45Z"}) is None
    assert retry_after({"x-ratelimit-reset-requests": "2s"}) == 2.0  # relative: no clock needed
    later = NOW + timedelta(seconds=20)
    assert retry_after({"retry-after": "Sat, 14 Mar 2026 12:00:30 GMT"}, now=later) == 10.0


def test_vendor_reset_headers_only_for_limits() -> None:
    headers = {"x-ratelimit-reset-tokens": "6m0s"}
    assert retry_after(headers, now=NOW, limits=False) is None
    # an overloaded answer does not rest for the token window's reset
    overloaded = openai.decode_error(503, b"", headers)
    assert overloaded.retry_after is None
    limited = openai.decode_error(429, b"", headers)
    assert limited.retry_after == 360.0


RETRY_DETAILS: list[dict[str, object]] = [
    {"@type": "type.googleapis.com/google.rpc.Help", "links": []},
    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "34.4s"},
]
GOOGLE_RETRY = {"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED", "details": RETRY_DETAILS}}


def test_gemini_retry_info() -> None:
    details = RETRY_DETAILS
    assert retry_info_delay(details) == pytest.approx(34.4)
    assert retry_after({}, now=NOW, details=details) == pytest.approx(34.4)
    assert retry_after({"retry-after": "2"}, now=NOW, details=details) == 2.0
    assert retry_info_delay([{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "soon"}]) is None
    assert retry_info_delay(["not a mapping", 3]) is None
    decoded = gemini.decode_error(429, orjson.dumps(GOOGLE_RETRY), {})
    assert decoded.retry_after == pytest.approx(34.4)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("34.4s", 34.4), ("0.479417207s", 0.479417207), ("0s", 0.0), ("-3s", None), ("34", None), ("s", None)],
)
def test_protobuf_durations(text: str, seconds: float | None) -> None:
    assert parse_duration(text) == (pytest.approx(seconds) if seconds is not None else None)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1s", 1.0), ("6m0s", 360.0), ("20ms", 0.02), ("1h2m3.5s", 3723.5), ("", None), ("5", None), ("1x", None)],
)
def test_go_durations(text: str, seconds: float | None) -> None:
    assert parse_go_duration(text) == (pytest.approx(seconds) if seconds is not None else None)


def test_parsers_refuse_what_is_not_text() -> None:
    assert parse_duration(3) is None
    assert parse_go_duration(None) is None


# -- issue 9 item 2: an account's error text never reaches a client ------------------------------------------
LEAKY = f"invalid x-api-key {SECRET}"


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("status", [401, 403])
def test_an_auth_refusal_never_carries_the_upstreams_text(kind: str, status: int) -> None:
    decoded = decode(kind, status, LEAKY, "authentication_error" if kind == "anthropic" else "")
    assert isinstance(decoded, UpstreamAuthError)
    for shown in (decoded.message, str(decoded), repr(decoded), str(decoded.args)):
        assert SECRET not in shown and "x-api-key" not in shown
    assert SECRET in decoded.detail  # the operator's, for the log


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("status", [400, 402, 405, 409, 429, 500, 503, 529])
def test_nothing_but_a_callers_rejection_carries_the_upstreams_text(kind: str, status: int) -> None:
    """An account hint on a 400 (a key, a spent credit) makes it the account's error too."""
    if status != 400:
        decoded = decode(kind, status, LEAKY)
    elif kind in ("google_ai_studio", "antigravity"):
        decoded = KINDS[kind][0](400, _google_key_invalid(LEAKY), {})
    else:
        decoded = decode(kind, 400, LEAKY, "authentication_error" if kind == "anthropic" else "invalid_api_key")
    assert not isinstance(decoded, UpstreamRejectedError)
    assert SECRET not in decoded.message and SECRET not in str(decoded)


def _google_key_invalid(message: str) -> bytes:
    info = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}
    return orjson.dumps({"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT", "details": [info]}})


def _mid_stream(kind: str, error_type: str, message: str) -> list[StreamEvent]:
    if kind == "anthropic":
        payload = {"type": "error", "error": {"type": error_type, "message": message}}
        return anthropic.StreamDecoder().feed("error", orjson.dumps(payload))
    if kind == "openai":
        return openai.StreamDecoder().feed(None, orjson.dumps({"error": {"message": message, "code": error_type}}))
    status = {"UNAUTHENTICATED": 401, "UNAVAILABLE": 503}.get(error_type, 500)
    return gemini.StreamDecoder().feed(
        None, orjson.dumps({"error": {"code": status, "message": message, "status": error_type}})
    )


@pytest.mark.parametrize(
    ("kind", "error_type", "expected_kind"),
    [
        ("anthropic", "authentication_error", "upstream"),
        ("anthropic", "overloaded_error", "overloaded"),
        ("anthropic", "api_error", "upstream"),
        ("openai", "invalid_api_key", "upstream"),
        ("openai", "rate_limit_exceeded", "rate_limited"),
        ("gemini", "UNAUTHENTICATED", "upstream"),
        ("gemini", "UNAVAILABLE", "overloaded"),
    ],
)
def test_errors_inside_a_stream_follow_the_same_policy(kind: str, error_type: str, expected_kind: str) -> None:
    events = _mid_stream(kind, error_type, LEAKY)
    assert len(events) == 1 and isinstance(events[0], StreamFailed)
    assert events[0].kind == expected_kind
    assert SECRET not in events[0].message and "x-api-key" not in events[0].message


def test_stream_failure_passes_a_rejection_on() -> None:
    assert stream_failure(400, codes=("INVALID_ARGUMENT",), message="bad schema") == StreamFailed(
        "upstream", "bad schema"
    )
    assert stream_failure(None, message="") == StreamFailed("upstream", "The upstream answered with an error.")
