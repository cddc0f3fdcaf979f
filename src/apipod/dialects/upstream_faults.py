"""One policy for every upstream's error answer: which domain error it is, what the dispatcher does about
it, what the client may read, and how long to wait before asking that account again.

Each dialect's ``decode_error`` only reads its own error shape (type, code, rpc status, reason, message)
and hands the result to ``upstream_error``; the decision is made here, by ``RULES``, the same for every
upstream kind.

Decisions worth knowing:

- 409 fails over everywhere. An upstream's conflict (a concurrent request on the same account, an
  aborted transaction) says nothing about the caller's body: another account or upstream can serve the
  same request. Passing it on would fail a request that failover would have served.
- Any other status nothing else claims (405, 410, 3xx...) fails over as a plain ``UpstreamError``: it
  points at a misconfigured upstream, not at the caller.
- Only a caller-fault rejection (400, 404, 413, 422 with no account hint) carries the upstream's own text
  to the client. Every other fault gets a generic message naming the status and the vendor's error code;
  the upstream's text goes in ``UpstreamError.detail``, which is for the operator's log only. An account
  error's text can hold a key fragment, an organisation or project id, or a quota name.
- A spent quota (``exhausted``) without a stated reset rests for ``EXHAUSTED_REST`` instead of the short
  rate-limit default: asking an empty account again every few seconds only fails again.

Pure: no I/O; the wall clock comes in as ``now`` (an HTTP date and Anthropic's reset timestamps are
absolute).
"""

from __future__ import annotations

import email.utils
import enum
import math
import re
from collections.abc import Container, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import attrs

from apipod.domain.errors import (
    UpstreamAuthError,
    UpstreamError,
    UpstreamOverloadedError,
    UpstreamRateLimitedError,
    UpstreamRejectedError,
    UpstreamUnavailableError,
)
from apipod.domain.stream import StreamFailed

__all__ = [
    "EXHAUSTED_REST",
    "MAX_DETAIL",
    "RULES",
    "Action",
    "Fault",
    "Rule",
    "classify",
    "parse_duration",
    "parse_go_duration",
    "retry_after",
    "retry_info_delay",
    "stream_failure",
    "upstream_error",
]

EXHAUSTED_REST = 300.0
"""Seconds a spent quota rests when the upstream states no reset (ten times the rate-limit default)."""

MAX_DETAIL = 500
"""The upstream's text kept for the operator, in characters."""


class Action(enum.Enum):
    """What the dispatcher does with a fault; it acts on the domain error's class, which ``Fault`` ties
    to exactly one action."""

    TO_CALLER = "to caller"  # the caller's fault: the upstream's status and message go back, nothing rests
    REST_PAIR = "rest pair"  # limited or spent: rest this account for this model, try the next candidate
    REST_ACCOUNT = "rest account"  # credentials refused: rest the whole account for long, fail over
    FAIL_OVER = "fail over"  # the upstream failed: rest the account briefly, try the next candidate


@attrs.frozen
class Fault:
    """One kind of failure. ``summary`` is what a client reads (unless ``Action.TO_CALLER``)."""

    name: str
    error: type[UpstreamError]
    action: Action
    summary: str
    exhausted: bool = False


REJECTED = Fault("rejected", UpstreamRejectedError, Action.TO_CALLER, "The upstream rejected the request")
EXHAUSTED = Fault(
    "exhausted", UpstreamRateLimitedError, Action.REST_PAIR, "The upstream account's quota is exhausted", True
)
RATE_LIMITED = Fault(
    "rate_limited", UpstreamRateLimitedError, Action.REST_PAIR, "The upstream account's rate limit was hit"
)
AUTH = Fault("auth", UpstreamAuthError, Action.REST_ACCOUNT, "The upstream refused apipod's credentials")
NO_CAPACITY = Fault("no_capacity", UpstreamOverloadedError, Action.FAIL_OVER, "The model has no capacity right now")
OVERLOADED = Fault("overloaded", UpstreamOverloadedError, Action.FAIL_OVER, "The upstream is overloaded")
UNAVAILABLE = Fault("unavailable", UpstreamUnavailableError, Action.FAIL_OVER, "The upstream failed")
OTHER = Fault("other", UpstreamError, Action.FAIL_OVER, "The upstream answered with an error")


@attrs.frozen
class Rule:
    """Matches when the status is in ``statuses`` (None: any status, and also none) and ``hint`` (None:
    any) is among the answer's hints, compared case-insensitively. An error sent inside a stream has no
    status (``None``)."""

    fault: Fault
    statuses: Container[int | None] | None = None
    hint: str | None = None


# Where vendors report a spent account (and in a stream); elsewhere "quota" in a code means something else.
_ACCOUNT_SPENT_STATUSES = frozenset({None, 400, 402, 403, 429})
_CALLER_FAULT = frozenset({400, 404, 413, 422})
_SERVER = range(500, 600)

RULES: tuple[Rule, ...] = (
    # A model out of capacity is Google's problem, not the account's (Antigravity).
    Rule(NO_CAPACITY, hint="model_capacity_exhausted"),
    # A spent account, however the vendor says it: OpenAI, Copilot, Anthropic, Gemini per-day, Cloud Code.
    *(
        Rule(EXHAUSTED, _ACCOUNT_SPENT_STATUSES, hint)
        for hint in (
            "insufficient_quota",
            "quota_exceeded",
            "billing_error",
            "billing_hard_limit_reached",
            "billing_not_active",
            "daily_quota",
            "quota_exhausted",
            "insufficient_g1_credits_balance",
        )
    ),
    Rule(EXHAUSTED, {402}),
    Rule(RATE_LIMITED, {429}),
    *(Rule(RATE_LIMITED, None, hint) for hint in ("resource_exhausted", "rate_limit_error", "rate_limit_exceeded")),
    Rule(AUTH, {401, 403}),
    *(
        Rule(AUTH, None, hint)
        for hint in (
            "authentication_error",
            "permission_error",
            "invalid_api_key",
            "api_key_invalid",
            "unauthenticated",
            "permission_denied",
            "failed_precondition",  # Gemini: the key's project or region cannot be used at all
        )
    ),
    *(
        Rule(OVERLOADED, None, hint)
        for hint in ("overloaded_error", "overloaded", "service_unavailable", "unavailable")
    ),
    Rule(REJECTED, _CALLER_FAULT),
    Rule(OVERLOADED, {503, 529}),
    Rule(UNAVAILABLE, {408, 409}),
    Rule(UNAVAILABLE, _SERVER),
)


def classify(status: int | None, hints: Iterable[str]) -> Fault:
    """The first rule that matches; ``OTHER`` when none does."""
    found = {h.lower() for h in hints if h}
    for rule in RULES:
        if rule.statuses is not None and status not in rule.statuses:
            continue
        if rule.hint is not None and rule.hint not in found:
            continue
        return rule.fault
    return OTHER


def upstream_error(
    status: int,
    *,
    codes: Iterable[str] = (),
    hints: Iterable[str] = (),
    message: str = "",
    headers: Mapping[str, str],
    now: datetime | None = None,
    details: Iterable[Any] = (),
    delay: float | None = None,
) -> UpstreamError:
    """The domain error for an upstream's error answer.

    Args:
        codes: the body's own error type/code/status; they decide and are shown in the client's message.
        hints: what the dialect read elsewhere (an ErrorInfo reason, a per-day quota); they decide only.
        message: the upstream's text: the client's message for a rejection, otherwise ``detail`` only.
        details: google.rpc ``details`` (for ``RetryInfo``).
        delay: a wait the dialect found itself (Antigravity's reset metadata); wins over everything.
    """
    codes = tuple(codes)
    fault = classify(status, (*codes, *hints))
    client_message = _client_message(fault, status, codes)
    text = message.strip()[:MAX_DETAIL]
    if fault.action is Action.TO_CALLER:
        return UpstreamRejectedError(text or client_message, status=status)
    wait = delay
    if wait is None:
        wait = retry_after(headers, now=now, details=details, limits=fault.error is UpstreamRateLimitedError)
    if fault.error is UpstreamRateLimitedError:
        if wait is None and fault.exhausted:
            wait = EXHAUSTED_REST
        return UpstreamRateLimitedError(client_message, retry_after=wait, exhausted=fault.exhausted, detail=text)
    if fault.error is UpstreamAuthError:
        return UpstreamAuthError(client_message, detail=text)  # its rest is the dispatcher's, not the vendor's
    return fault.error(client_message, retry_after=wait, detail=text)


def stream_failure(
    status: int | None, *, codes: Iterable[str] = (), hints: Iterable[str] = (), message: str
) -> StreamFailed:
    """An error the upstream sent inside a stream, under the same policy: the client reads the upstream's
    text only when it is a rejection of the request."""
    codes = tuple(codes)
    fault = classify(status, (*codes, *hints))
    text = message.strip()[:MAX_DETAIL]
    if fault.error is UpstreamRateLimitedError:
        kind = "rate_limited"
    elif fault.error is UpstreamOverloadedError:
        kind = "overloaded"
    else:
        kind = "upstream"
    shown = text if fault.action is Action.TO_CALLER and text else _client_message(fault, status, codes)
    return StreamFailed(kind, shown, detail=text)


# -- the one Retry-After parser ----------------------------------------------------------------------------

_TOKEN = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_RESET = re.compile(r"^(?:x-ratelimit-reset-(?P<oa>[a-z-]+)|anthropic-ratelimit-(?P<an>[a-z-]+)-reset)$")
_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"


def retry_after(
    headers: Mapping[str, str], *, now: datetime | None = None, details: Iterable[Any] = (), limits: bool = True
) -> float | None:
    """Seconds to wait before asking again, from the first source that states it, or None.

    In order: ``retry-after-ms``; ``retry-after`` as seconds or an HTTP date (relative to ``now``); Gemini's
    ``RetryInfo.retryDelay`` in the body's ``details``; then, with ``limits`` (a rate limit or spent quota),
    the vendors' reset headers: OpenAI's ``x-ratelimit-reset-*`` durations and Anthropic's
    ``anthropic-ratelimit-*-reset`` timestamps, preferring the limits whose ``remaining`` is 0. A negative,
    non-finite or unreadable value is None; a moment already past is 0.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    millis = _seconds(lowered.get("retry-after-ms"))
    if millis is not None:
        return millis / 1000.0
    value = lowered.get("retry-after")
    if value is not None:
        seconds = _seconds(value)
        if seconds is None and now is not None:
            seconds = _http_date(value, now)
        if seconds is not None:
            return seconds
    delay = retry_info_delay(details)
    if delay is not None:
        return delay
    return _reset_headers(lowered, now) if limits else None


def retry_info_delay(details: Iterable[Any]) -> float | None:
    """``RetryInfo.retryDelay`` from a google.rpc ``details`` list (a Duration: ``"34.4s"``)."""
    for detail in details:
        if isinstance(detail, Mapping) and detail.get("@type") == _RETRY_INFO:
            delay = parse_duration(detail.get("retryDelay"))
            if delay is not None:
                return delay
    return None


def parse_duration(value: Any) -> float | None:
    """A protobuf Duration in JSON (``"34.4s"``, ``"0.479417207s"``) in seconds, or None."""
    if not isinstance(value, str) or not value.endswith("s"):
        return None
    return _seconds(value[:-1])


def parse_go_duration(value: Any) -> float | None:
    """A Go duration (``"20ms"``, ``"1.5s"``, ``"6m0s"``, ``"1h2m3s"``) in seconds, or None."""
    if not isinstance(value, str) or not value:
        return None
    total = 0.0
    end = 0
    for match in _GO_DURATION.finditer(value):
        if match.start() != end:
            return None
        total += float(match.group(1)) * _GO_UNITS[match.group(2)]
        end = match.end()
    return total if end == len(value) and math.isfinite(total) else None


def _seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _http_date(value: str, now: datetime) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return _until(when, now)


def _timestamp(value: str, now: datetime | None) -> float | None:
    if now is None:
        return None
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return _until(when, now)


def _until(when: datetime, now: datetime) -> float:
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def _reset_headers(headers: Mapping[str, str], now: datetime | None) -> float | None:
    """The vendors' per-limit reset headers: the latest reset among the limits that ran out (remaining 0),
    or among all of them when none says so."""
    spent: list[float] = []
    every: list[float] = []
    for name, value in headers.items():
        match = _RESET.match(name)
        if match is None:
            continue
        if match["oa"]:
            seconds = parse_go_duration(value.strip())
            remaining = headers.get(f"x-ratelimit-remaining-{match['oa']}")
        else:
            seconds = _timestamp(value, now)
            remaining = headers.get(f"anthropic-ratelimit-{match['an']}-remaining")
        if seconds is None:
            continue
        every.append(seconds)
        if remaining is not None and remaining.strip() == "0":
            spent.append(seconds)
    chosen = spent or every
    return max(chosen) if chosen else None


def _client_message(fault: Fault, status: int | None, codes: Iterable[str]) -> str:
    """``The upstream is overloaded (HTTP 529 overloaded_error).``: the fault, the status and the vendor's
    codes, only those that look like codes (a free-form string from a compatible server could hold
    anything)."""
    parts = [f"HTTP {status}"] if status is not None else []
    for code in codes:
        if code and _TOKEN.match(code) and code not in parts:
            parts.append(code)
    return f"{fault.summary} ({' '.join(parts)})." if parts else f"{fault.summary}."
