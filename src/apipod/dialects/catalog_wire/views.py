"""The admin API's answers. Shapes are part of the API: each name here is what clients read."""

from __future__ import annotations

from typing import Any

from apipod.dialects.catalog_wire.converter import converter
from apipod.domain.catalog import Plan, Upstream, UpstreamModel
from apipod.domain.keys import ApiKey
from apipod.domain.usage import Attempt, UsageRecord


def _time(value: Any) -> Any:
    return None if value is None else converter.unstructure(value)


def key_view(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "prefix": key.prefix,
        "name": key.name,
        "tier": key.plan,
        "active": key.active,
        "created_at": _time(key.created_at),
        "expires_at": _time(key.expires_at),
        "last_used_at": _time(key.last_used_at),
    }


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


def upstream_view(upstream: Upstream) -> dict[str, Any]:
    """Never the secrets: how many accounts the pool has is enough to manage it."""
    return {
        "name": upstream.name,
        "type": upstream.kind.value,
        "base_url": upstream.base_url,
        "accounts": len(upstream.accounts),
        "headers": sorted(upstream.headers),
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
        "status": row.status,
        "token_count": u.total_tokens,
        "input_tokens": u.input_tokens,
        "output_tokens": u.output_tokens,
        "cached_input_tokens": u.cached_input_tokens,
        "reasoning_tokens": u.reasoning_tokens,
        "latency_ms": round(row.latency_ms, 3),
        "ttft_ms": round(row.ttft_ms, 3) if row.ttft_ms is not None else None,
        "error": row.error,
        "attempts": [converter.unstructure(a, Attempt) for a in row.attempts],
        "timestamp": _time(row.timestamp),
    }
