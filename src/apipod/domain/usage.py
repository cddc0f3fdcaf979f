"""Usage records: one row per request, with the original project's columns plus what billing needs."""

from __future__ import annotations

import enum
from datetime import datetime

import attrs

from apipod.domain.chat import Usage


class UsageStatus(enum.StrEnum):
    """How a request ended; the usage row's ``status``."""

    SUCCESS = "success"
    CANCELLED = "cancelled"  # the client went away, or the caller closed the stream early
    UPSTREAM_ERROR = "upstream_error"  # the stream broke off after its first event
    REJECTED = "rejected"  # the upstream refused the request as the caller's fault
    QUOTA_EXCEEDED = "quota_exceeded"
    RATE_LIMITED = "rate_limited"
    UPSTREAM_UNAVAILABLE = "upstream_unavailable"
    ERROR = "error"


class AttemptOutcome(enum.StrEnum):
    SERVED = "served"
    SKIPPED = "skipped"  # set aside without a call: over a limit, cooling down, no account left
    FAILED = "failed"  # called, failed before the first byte; the next candidate was tried
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    UPSTREAM_ERROR = "upstream_error"
    ERROR = "error"


def _outcome(value: str) -> AttemptOutcome:
    return value if isinstance(value, AttemptOutcome) else AttemptOutcome(value)


def _status(value: str) -> UsageStatus:
    return value if isinstance(value, UsageStatus) else UsageStatus(value)


@attrs.frozen(kw_only=True)
class Attempt:
    """One candidate considered for a request, what became of it, and why (a limit, an error class).

    ``summary`` ("failed: UpstreamRateLimitedError", "skipped: limited: rpm") is how rows store it."""

    model: str
    account: str
    outcome: AttemptOutcome = attrs.field(converter=_outcome)
    reason: str = ""

    @property
    def summary(self) -> str:
        return f"{self.outcome.value}: {self.reason}" if self.reason else self.outcome.value

    @classmethod
    def from_summary(cls, *, model: str, account: str, summary: str) -> Attempt:
        outcome, _, reason = summary.partition(": ")
        try:
            return cls(model=model, account=account, outcome=AttemptOutcome(outcome), reason=reason)
        except ValueError:  # a row written by an older version
            return cls(model=model, account=account, outcome=AttemptOutcome.ERROR, reason=summary)


@attrs.frozen(kw_only=True)
class UsageRecord:
    """What one request cost and how it went.

    Attributes:
        user: the key holder's name (the original's ``user``).
        status: how the request ended.
        upstream: the upstream label, ``<upstream name>/<account>``.
    """

    request_id: str
    key_id: str
    user: str
    requested_model: str
    routed_model: str = ""
    upstream: str = ""
    status: UsageStatus = attrs.field(default=UsageStatus.SUCCESS, converter=_status)
    usage: Usage = Usage()
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    error: str | None = None
    timestamp: datetime
    attempts: tuple[Attempt, ...] = ()

    @property
    def token_count(self) -> int:
        return self.usage.total_tokens
