"""The admin API's answers. Shapes are part of the API: each name here is what clients read."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from apipod.dialects.catalog_wire.converter import converter
from apipod.domain.catalog import Plan, Upstream, UpstreamModel
from apipod.domain.keys import ApiKey
from apipod.domain.usage import Attempt, UsageRecord, UsageSummaryRow

HINT_MIN_LENGTH = 12  # a shorter secret shows no characters at all


def _time(value: Any) -> Any:
    return None if value is None else converter.unstructure(value)


def key_view(key: ApiKey, now: datetime | None = None) -> dict[str, Any]:
    """``tier`` is the plan's name (the original's spelling; ``plan`` says the same); ``status`` is
    active, revoked or expired at ``now`` (given by the caller's clock)."""
    view = {
        "id": key.id,
        "prefix": key.prefix,
        "name": key.name,
        "tier": key.plan,
        "plan": key.plan,
        "active": key.active,
        "created_at": _time(key.created_at),
        "expires_at": _time(key.expires_at),
        "last_used_at": _time(key.last_used_at),
        "previous_secret_valid_until": _time(key.previous_valid_until),
    }
    if now is not None:
        view["status"] = key.status(now)
    return view


def issued_key_view(key: ApiKey, plaintext: str) -> dict[str, Any]:
    """The answer to create-key: the only time the plaintext is shown."""
    return {
        "id": key.id,
        "api_key": plaintext,
        "name": key.name,
        "tier": key.plan,
        "created_at": _time(key.created_at),
        "expires_at": _time(key.expires_at),
    }


def rotated_key_view(key: ApiKey, plaintext: str) -> dict[str, Any]:
    """The answer to a rotation: create-key's, and until when the replaced secret still works (None: no more)."""
    return issued_key_view(key, plaintext) | {
        "prefix": key.prefix,
        "previous_secret_valid_until": _time(key.previous_valid_until),
    }


def secret_hint(secret: str) -> str:
    """Enough to tell accounts apart, never enough to use one: ``sk-...9f2c`` (first 3, last 4 characters)
    for a secret of at least 12 characters, else ``...``."""
    return f"{secret[:3]}...{secret[-4:]}" if len(secret) >= HINT_MIN_LENGTH else "..."


def upstream_view(upstream: Upstream) -> dict[str, Any]:
    """Never the secrets: the pool's size and a masked hint per account. Header names only (a header often
    carries a credential)."""
    return {
        "name": upstream.name,
        "type": upstream.kind.value,
        "base_url": upstream.base_url,
        "accounts": len(upstream.accounts),
        "account_hints": [secret_hint(a.secret) for a in upstream.accounts],
        "headers": sorted(upstream.headers),
        "timeout": converter.unstructure(upstream.timeouts),
        "max_event_bytes": upstream.max_event_bytes,
        "max_response_bytes": upstream.max_response_bytes,
    }


def model_view(model: UpstreamModel) -> dict[str, Any]:
    """The model table as the TOML spells it (limits inline)."""
    view: dict[str, Any] = converter.unstructure(model, UpstreamModel)
    return view


def plan_view(plan: Plan) -> dict[str, Any]:
    """The plan table as the TOML spells it; windows by name (``day``, ``5h``)."""
    view: dict[str, Any] = converter.unstructure(plan, Plan)
    return view


def usage_view(row: UsageRecord) -> dict[str, Any]:
    u = row.usage
    return {
        "request_id": row.request_id,
        "key_id": row.key_id,
        "user": row.user,
        "requested_model": row.requested_model,
        "routed_model": row.routed_model,
        "upstream_provider": row.upstream,
        "plan": row.plan,
        "status": row.status,
        "token_count": u.total_tokens,
        "input_tokens": u.input_tokens,
        "output_tokens": u.output_tokens,
        "cached_input_tokens": u.cached_input_tokens,
        "cache_creation_input_tokens": u.cache_creation_input_tokens,
        "reasoning_tokens": u.reasoning_tokens,
        "cost": format(row.cost, "f"),
        "latency_ms": round(row.latency_ms, 3),
        "ttft_ms": round(row.ttft_ms, 3) if row.ttft_ms is not None else None,
        "error": row.error,
        "attempts": [converter.unstructure(a, Attempt) for a in row.attempts],
        "timestamp": _time(row.timestamp),
    }


def money(value: Decimal | int) -> str | int:
    """Money is an exact decimal string in positional notation (never ``1E-7``); counts stay integers."""
    return format(value, "f") if isinstance(value, Decimal) else value


def summary_view(row: UsageSummaryRow) -> dict[str, Any]:
    return {
        "bucket_start": _time(row.bucket_start),
        "group": row.group,
        "requests": row.requests,
        "input_tokens": row.input_tokens,
        "output_tokens": row.output_tokens,
        "cached_input_tokens": row.cached_input_tokens,
        "cache_creation_input_tokens": row.cache_creation_input_tokens,
        "reasoning_tokens": row.reasoning_tokens,
        "cost": format(row.cost, "f"),
        "errors": row.errors,
        "latency_p50_ms": None if row.latency_p50_ms is None else round(row.latency_p50_ms, 3),
        "latency_p95_ms": None if row.latency_p95_ms is None else round(row.latency_p95_ms, 3),
    }
