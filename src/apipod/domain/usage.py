"""Usage records: one row per request, with the original project's columns plus what billing needs."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from decimal import Decimal

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
    plan: str = ""  # the key's plan when the request was made
    cost: Decimal = Decimal(0)  # at the routed model's prices when the row was written, in the catalog's currency

    @property
    def token_count(self) -> int:
        return self.usage.total_tokens


@attrs.frozen(kw_only=True)
class UsageFilter:
    """Which usage rows an operator asks for; every field given narrows the set. ``since`` inclusive, ``until``
    exclusive."""

    key_id: str | None = None
    plan: str | None = None
    requested_model: str | None = None
    routed_model: str | None = None
    provider: str | None = None  # the upstream's name (the part of ``upstream`` before the "/")
    status: UsageStatus | None = None
    request_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def exact_matches(self) -> list[tuple[str, str]]:
        """The (field, value) pairs that select rows by equality, for the stores' WHERE clauses (the fields are
        named as the usage tables' columns)."""
        pairs = (
            ("key_id", self.key_id),
            ("plan", self.plan),
            ("requested_model", self.requested_model),
            ("routed_model", self.routed_model),
            ("status", None if self.status is None else self.status.value),
            ("request_id", self.request_id),
        )
        return [(field, value) for field, value in pairs if value is not None]


@attrs.frozen(kw_only=True)
class UsageCursor:
    """Where the previous page of rows (newest first) ended: the last row's timestamp and row id."""

    timestamp: datetime
    row_id: int


@attrs.frozen(kw_only=True)
class UsagePage:
    rows: tuple[UsageRecord, ...]
    next_cursor: UsageCursor | None  # None: this was the last page
    row_ids: tuple[int, ...] = ()  # the stored id of each row, for the next cursor and links


class UsageGroup(enum.StrEnum):
    KEY = "key"
    PLAN = "plan"
    MODEL = "model"  # the model asked for
    UPSTREAM_MODEL = "upstream_model"  # the routed model
    PROVIDER = "provider"


class UsageBucket(enum.StrEnum):
    HOUR = "hour"
    DAY = "day"


@attrs.frozen(kw_only=True)
class UsageSummaryRow:
    """One group in one hour or day (UTC). Errors: rows whose status is not success or cancelled."""

    bucket_start: datetime
    group: str
    requests: int
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    cache_creation_input_tokens: int
    reasoning_tokens: int
    cost: Decimal
    errors: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None


OK_STATUSES = frozenset({UsageStatus.SUCCESS, UsageStatus.CANCELLED})  # every other status counts as an error


def provider_of(upstream: str) -> str:
    """The upstream's name in a row's ``upstream`` label (``<upstream name>/<account>``)."""
    return upstream.partition("/")[0]


def matches(record: UsageRecord, where: UsageFilter) -> bool:
    """Does ``record`` pass every condition of ``where`` (for stores that filter in Python)."""
    return (
        (where.key_id is None or record.key_id == where.key_id)
        and (where.plan is None or record.plan == where.plan)
        and (where.requested_model is None or record.requested_model == where.requested_model)
        and (where.routed_model is None or record.routed_model == where.routed_model)
        and (where.provider is None or provider_of(record.upstream) == where.provider)
        and (where.status is None or record.status == where.status)
        and (where.request_id is None or record.request_id == where.request_id)
        and (where.since is None or record.timestamp >= where.since)
        and (where.until is None or record.timestamp < where.until)
    )


def group_of(record: UsageRecord, group_by: UsageGroup) -> str:
    if group_by is UsageGroup.KEY:
        return record.key_id
    if group_by is UsageGroup.PLAN:
        return record.plan
    if group_by is UsageGroup.MODEL:
        return record.requested_model
    if group_by is UsageGroup.UPSTREAM_MODEL:
        return record.routed_model
    return provider_of(record.upstream)


def bucket_start(when: datetime, bucket: UsageBucket) -> datetime:
    """The start of the UTC hour or day holding ``when``."""
    start = when.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return start.replace(hour=0) if bucket is UsageBucket.DAY else start


def percentile(values: list[float], fraction: float) -> float | None:
    """The continuous percentile of sorted ``values`` (linear interpolation, as PostgreSQL's
    ``percentile_cont``), or None for no values."""
    if not values:
        return None
    position = fraction * (len(values) - 1)
    low = int(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


@attrs.define
class _Totals:
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    reasoning_tokens: int = 0
    cost: Decimal = Decimal(0)
    errors: int = 0
    latencies: list[float] = attrs.Factory(list)


class UsageSummary:
    """Adds rows up per (bucket, group) for the stores that summarize in Python (memory, SQLite)."""

    def __init__(self, group_by: UsageGroup, bucket: UsageBucket) -> None:
        self._group_by = group_by
        self._bucket = bucket
        self._totals: dict[tuple[datetime, str], _Totals] = {}

    def add(self, record: UsageRecord) -> None:
        slot = (bucket_start(record.timestamp, self._bucket), group_of(record, self._group_by))
        totals = self._totals.get(slot)
        if totals is None:
            totals = self._totals[slot] = _Totals()
        usage = record.usage
        totals.requests += 1
        totals.input_tokens += usage.input_tokens
        totals.output_tokens += usage.output_tokens
        totals.cached_input_tokens += usage.cached_input_tokens
        totals.cache_creation_input_tokens += usage.cache_creation_input_tokens
        totals.reasoning_tokens += usage.reasoning_tokens
        totals.cost += record.cost
        totals.errors += record.status not in OK_STATUSES
        totals.latencies.append(record.latency_ms)

    def rows(self) -> list[UsageSummaryRow]:
        """Ordered by bucket, then group."""
        rows = []
        for (start, group), totals in sorted(self._totals.items(), key=lambda item: item[0]):
            latencies = sorted(totals.latencies)
            rows.append(
                UsageSummaryRow(
                    bucket_start=start,
                    group=group,
                    requests=totals.requests,
                    input_tokens=totals.input_tokens,
                    output_tokens=totals.output_tokens,
                    cached_input_tokens=totals.cached_input_tokens,
                    cache_creation_input_tokens=totals.cache_creation_input_tokens,
                    reasoning_tokens=totals.reasoning_tokens,
                    cost=totals.cost,
                    errors=totals.errors,
                    latency_p50_ms=percentile(latencies, 0.5),
                    latency_p95_ms=percentile(latencies, 0.95),
                )
            )
        return rows
