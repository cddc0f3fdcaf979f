"""The JSON Schemas of the admin API's answers (``views.py`` builds them). The tests validate real answers
against these, so a view and its schema cannot drift apart unnoticed."""

from __future__ import annotations

from typing import Any

from apipod.dialects.catalog_wire.schema import DECIMAL, nullable
from apipod.domain.usage import UsageStatus

S = dict[str, Any]
STRING: S = {"type": "string"}
INTEGER: S = {"type": "integer"}
NUMBER: S = {"type": "number"}
BOOLEAN: S = {"type": "boolean"}
TIME: S = {"type": "string", "format": "date-time"}


def obj(properties: dict[str, S], *, optional: tuple[str, ...] = (), open_: bool = False) -> S:
    """An object with every property required but ``optional``; ``open_``: more properties may come."""
    return {
        "type": "object",
        "properties": properties,
        "required": [name for name in properties if name not in optional],
        "additionalProperties": open_,
    }


def array(items: S) -> S:
    return {"type": "array", "items": items}


def ref(name: str) -> S:
    return {"$ref": f"#/components/schemas/{name}"}


KEY = obj(
    {
        "id": STRING,
        "prefix": STRING,
        "name": STRING,
        "tier": STRING,
        "plan": STRING,
        "active": BOOLEAN,
        "status": {"enum": ["active", "revoked", "expired"]},
        "created_at": TIME,
        "expires_at": nullable(TIME),
        "last_used_at": nullable(TIME),
        "previous_secret_valid_until": nullable(TIME),
    },
    optional=("status",),
)
_ISSUED: dict[str, S] = {
    "id": STRING,
    "api_key": {"type": "string", "description": "The secret: shown in this answer only."},
    "name": STRING,
    "tier": STRING,
    "created_at": TIME,
    "expires_at": nullable(TIME),
}
ISSUED_KEY = obj(_ISSUED)
ROTATED_KEY = obj(_ISSUED | {"prefix": STRING, "previous_secret_valid_until": nullable(TIME)})
PAGE_CURSOR: S = nullable({"type": "string", "description": "Pass as `cursor` for the next page; null: last."})
KEY_LIST = obj({"data": array(ref("Key")), "next_cursor": PAGE_CURSOR}, optional=("next_cursor",))
BUDGET = obj(
    {
        "window": STRING,
        "unit": {"enum": ["tokens", "requests", "cost"]},
        "limit": {"anyOf": [INTEGER, DECIMAL]},
        "used": {"anyOf": [INTEGER, DECIMAL]},
        "remaining": {"anyOf": [INTEGER, DECIMAL]},
        "resets_at": TIME,
    }
)
KEY_BUDGETS = obj({"key_id": STRING, "plan": STRING, "currency": STRING, "data": array(ref("BudgetStanding"))})
ATTEMPT = obj(
    {"model": STRING, "account": STRING, "outcome": STRING, "reason": STRING}, optional=("reason",), open_=True
)
USAGE_ROW = obj(
    {
        "request_id": STRING,
        "key_id": STRING,
        "user": nullable(STRING),
        "requested_model": STRING,
        "routed_model": nullable(STRING),
        "upstream_provider": nullable(STRING),
        "plan": STRING,
        "status": {"enum": [s.value for s in UsageStatus]},
        "token_count": INTEGER,
        "input_tokens": INTEGER,
        "output_tokens": INTEGER,
        "cached_input_tokens": INTEGER,
        "cache_creation_input_tokens": INTEGER,
        "reasoning_tokens": INTEGER,
        "cost": DECIMAL,
        "latency_ms": NUMBER,
        "ttft_ms": nullable(NUMBER),
        "error": nullable(STRING),
        "attempts": array(ATTEMPT),
        "timestamp": TIME,
    }
)
USAGE_PAGE = obj({"data": array(ref("UsageRow")), "next_cursor": PAGE_CURSOR}, optional=("next_cursor",))
SUMMARY_ROW = obj(
    {
        "bucket_start": TIME,
        "group": STRING,
        "requests": INTEGER,
        "input_tokens": INTEGER,
        "output_tokens": INTEGER,
        "cached_input_tokens": INTEGER,
        "cache_creation_input_tokens": INTEGER,
        "reasoning_tokens": INTEGER,
        "cost": DECIMAL,
        "errors": INTEGER,
        "latency_p50_ms": nullable(NUMBER),
        "latency_p95_ms": nullable(NUMBER),
    }
)
SUMMARY = obj({"group_by": STRING, "bucket": STRING, "currency": STRING, "data": array(ref("UsageSummaryRow"))})
PROVIDER = obj(
    {
        "name": STRING,
        "type": STRING,
        "base_url": STRING,
        "accounts": {"type": "integer", "description": "How many accounts (credentials) the pool has."},
        "account_hints": array({"type": "string", "description": "`sk-...9f2c`: never the secret."}),
        "headers": array({"type": "string", "description": "Header names; values are write-only."}),
        "timeout": {"type": "object", "additionalProperties": NUMBER},
        "max_event_bytes": INTEGER,
        "max_response_bytes": INTEGER,
    }
)
# Models and plans answer the catalog table as written (``converter.unstructure``): its fields are those of
# the PUT body, so the document lists them there; an answer may omit defaults.
MODEL: S = {"type": "object", "required": ["name", "provider", "upstream_model"], "additionalProperties": True}
PLAN: S = {"type": "object", "required": ["name", "routes"], "additionalProperties": True}
CATALOG = obj(
    {
        "providers": array(ref("Provider")),
        "models": array(ref("Model")),
        "plans": array(ref("Plan")),
        "currency": STRING,
    },
    optional=("currency",),
)
ACCOUNT_STATE = obj(
    {
        "account": INTEGER,
        "health": {"enum": ["healthy", "cooling_down", "unhealthy"]},
        "until": nullable(TIME),
        "reason": nullable(STRING),
        "failures_in_a_row": INTEGER,
        "attempts": {"type": "integer", "description": "Attempts in the error-rate window."},
        "error_rate": nullable({"type": "number", "minimum": 0, "maximum": 1}),
    }
)
STATE = obj(
    {
        "at": TIME,
        "in_flight": INTEGER,
        "queue_depth": INTEGER,
        "usage_backlog": INTEGER,
        "error_rate_window_seconds": NUMBER,
        "models": array(
            obj(
                {
                    "model": STRING,
                    "upstream": STRING,
                    "in_flight": nullable(INTEGER),
                    "accounts": array(ref("AccountState")),
                }
            )
        ),
    }
)
OPENAPI_DOCUMENT: S = {"type": "object", "required": ["openapi", "info", "paths"]}
PROVIDER_MODELS = obj({"provider": STRING, "data": array(STRING)})
ERROR = obj(
    {"error": obj({"type": STRING, "message": STRING, "field": nullable(STRING)}, optional=("field",), open_=True)},
    open_=True,
)

COMPONENTS: dict[str, S] = {
    "Key": KEY,
    "IssuedKey": ISSUED_KEY,
    "RotatedKey": ROTATED_KEY,
    "KeyList": KEY_LIST,
    "BudgetStanding": BUDGET,
    "KeyBudgets": KEY_BUDGETS,
    "UsageRow": USAGE_ROW,
    "UsagePage": USAGE_PAGE,
    "UsageSummaryRow": SUMMARY_ROW,
    "UsageSummary": SUMMARY,
    "Provider": PROVIDER,
    "ProviderList": obj({"data": array(ref("Provider"))}),
    "Model": MODEL,
    "ModelList": obj({"data": array(ref("Model"))}),
    "Plan": PLAN,
    "PlanList": obj({"data": array(ref("Plan"))}),
    "OpenAPIDocument": OPENAPI_DOCUMENT,
    "Catalog": CATALOG,
    "AccountState": ACCOUNT_STATE,
    "State": STATE,
    "ProviderModels": PROVIDER_MODELS,
    "Error": ERROR,
}
