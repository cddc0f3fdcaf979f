"""Usage records: one row per request, with the original project's columns plus what billing needs."""

from __future__ import annotations

from datetime import datetime

import attrs

from apipod.domain.chat import Usage


@attrs.frozen(kw_only=True)
class Attempt:
    """One candidate considered for a request, and what became of it ("served", "skipped: rpm", ...)."""

    model: str
    account: str
    outcome: str


@attrs.frozen(kw_only=True)
class UsageRecord:
    """What one request cost and how it went.

    Attributes:
        user: the key holder's name (the original's ``user``).
        status: "success", or the error kind ("upstream_error", "cancelled", ...).
        upstream: the upstream label, ``<upstream name>/<account>``.
    """

    request_id: str
    key_id: str
    user: str
    requested_model: str
    routed_model: str = ""
    upstream: str = ""
    status: str = "success"
    usage: Usage = Usage()
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    error: str | None = None
    timestamp: datetime
    attempts: tuple[Attempt, ...] = ()

    @property
    def token_count(self) -> int:
        return self.usage.total_tokens
