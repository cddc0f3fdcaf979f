"""Data builders shared by the store contracts: plain domain values with sensible defaults."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from apipod.domain.catalog import (
    Account,
    Alias,
    ModelLimits,
    Plan,
    Route,
    Timeouts,
    Upstream,
    UpstreamKind,
    UpstreamModel,
)
from apipod.domain.chat import Usage
from apipod.domain.keys import ApiKey, digest_of, display_prefix
from apipod.domain.quota import Budget, Window, WindowUnit
from apipod.domain.usage import Attempt, UsageRecord

NOW = datetime(2026, 11, 28, 15, 30, tzinfo=UTC)
"""A Saturday afternoon: the day window ends at 2026-11-29T00:00:00Z, the month at 2026-12-01."""


def plaintext_for(key_id: str) -> str:
    return f"apk_{key_id}_{'x' * 20}"


def make_key(
    key_id: str = "key_1",
    *,
    plaintext: str | None = None,
    name: str = "alice",
    plan: str = "demo",
    active: bool = True,
    created_at: datetime = NOW,
    expires_at: datetime | None = None,
    last_used_at: datetime | None = None,
) -> ApiKey:
    secret = plaintext if plaintext is not None else plaintext_for(key_id)
    return ApiKey(
        id=key_id,
        digest=digest_of(secret),
        prefix=display_prefix(secret),
        name=name,
        plan=plan,
        active=active,
        created_at=created_at,
        expires_at=expires_at,
        last_used_at=last_used_at,
    )


def make_upstream(
    name: str = "openai",
    *,
    kind: UpstreamKind = UpstreamKind.OPENAI,
    base_url: str = "https://api.openai.com/v1",
    secrets: tuple[str, ...] = ("sk-one",),
    headers: Mapping[str, str] | None = None,
    timeouts: Timeouts = Timeouts(),
    options: Mapping[str, Any] | None = None,
) -> Upstream:
    return Upstream(
        name=name,
        kind=kind,
        base_url=base_url,
        accounts=tuple(Account(i, s) for i, s in enumerate(secrets)),
        headers=dict(headers or {}),
        timeouts=timeouts,
        options=dict(options or {}),
    )


def make_model(
    name: str = "mini",
    *,
    upstream: str = "openai",
    upstream_model: str = "gpt-4o-mini",
    limits: ModelLimits = ModelLimits(),
) -> UpstreamModel:
    return UpstreamModel(name=name, upstream=upstream, upstream_model=upstream_model, limits=limits)


def make_plan(
    name: str = "pro",
    *,
    routes: tuple[Route, ...] = (Route("mini", 1.0),),
    aliases: tuple[Alias, ...] = (),
    budgets: tuple[Budget, ...] = (),
    strict_models: bool = False,
    rpm: int | None = None,
    max_concurrency: int | None = None,
) -> Plan:
    return Plan(
        name=name,
        routes=routes,
        aliases=aliases,
        budgets=budgets,
        strict_models=strict_models,
        rpm=rpm,
        max_concurrency=max_concurrency,
    )


DAY = Window(WindowUnit.DAY)
HOUR = Window(WindowUnit.HOUR)
MONTH = Window(WindowUnit.MONTH)
FIVE_HOURS = Window(WindowUnit.HOURS, 5)


def make_record(
    request_id: str = "req_1",
    *,
    key_id: str = "key_1",
    timestamp: datetime = NOW,
    user: str = "alice",
    requested_model: str = "pro",
    routed_model: str = "mini",
    upstream: str = "openai/#0",
    status: str = "success",
    usage: Usage | None = None,
    latency_ms: float = 123.5,
    ttft_ms: float | None = 45.25,
    error: str | None = None,
    attempts: tuple[Attempt, ...] = (Attempt(model="mini", account="openai/#0", outcome="served"),),
) -> UsageRecord:
    return UsageRecord(
        request_id=request_id,
        key_id=key_id,
        user=user,
        requested_model=requested_model,
        routed_model=routed_model,
        upstream=upstream,
        status=status,
        usage=usage
        if usage is not None
        else Usage(
            input_tokens=120,
            output_tokens=80,
            cached_input_tokens=100,
            cache_creation_input_tokens=7,
            reasoning_tokens=30,
        ),
        latency_ms=latency_ms,
        ttft_ms=ttft_ms,
        error=error,
        timestamp=timestamp,
        attempts=attempts,
    )
