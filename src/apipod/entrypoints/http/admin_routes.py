"""Every admin API operation, declared once: the routes and the OpenAPI document are both made from
``OPERATIONS``. ``add_admin_routes`` puts them on the Falcon app."""

from __future__ import annotations

from typing import Any

import falcon.asgi

from apipod import __version__
from apipod.dialects.catalog_wire import CreateKeyBody
from apipod.dialects.catalog_wire.admin_queries import (
    KeyListQuery,
    PageQuery,
    PatchKeyBody,
    RotateKeyBody,
    UsageFilterQuery,
    UsageRowsQuery,
    UsageSummaryQuery,
)
from apipod.dialects.catalog_wire.tables import ModelTable, ProviderTable
from apipod.domain.catalog import Plan
from apipod.entrypoints.http import admin_catalog as catalog
from apipod.entrypoints.http import admin_keys as keys
from apipod.entrypoints.http import admin_usage as usage
from apipod.entrypoints.http.admin_api import AdminCall, Answer, Operation, UnknownAdminPath, resources
from apipod.entrypoints.http.admin_auth import SessionCheck
from apipod.entrypoints.http.admin_state import live_state
from apipod.entrypoints.http.openapi import openapi_document

_KEEPS_ACCOUNTS = (
    "Secrets are write-only: answers show `accounts` (a count) and `account_hints` (`sk-...9f2c`). A PUT "
    "without an account list (`api_keys`, `github_tokens`, `refresh_tokens`) keeps the stored accounts."
)


async def openapi_json(call: AdminCall) -> Answer:
    return Answer(DOCUMENT)


def _catalog_item(kind: str, title: str, body: type, answer: str, **put: Any) -> list[Operation]:
    path = f"/admin/{kind}/{{name}}"
    get = getattr(catalog, f"get_{title}")
    put_handler = getattr(catalog, f"put_{title}")
    delete = getattr(catalog, f"delete_{title}")
    return [
        Operation(
            method="GET",
            path=f"/admin/{kind}",
            summary=f"List {kind}",
            handler=getattr(catalog, f"list_{kind}"),
            tag="catalog",
            answers={200: f"{answer}List"},
        ),
        Operation(method="GET", path=path, summary=f"Get a {title}", handler=get, tag="catalog", answers={200: answer}),
        Operation(
            method="PUT",
            path=path,
            summary=f"Create or replace a {title}",
            handler=put_handler,
            tag="catalog",
            answers={200: answer},
            body=body,
            path_fields=("name",),
            **put,
        ),
        Operation(
            method="DELETE",
            path=path,
            summary=f"Delete a {title}",
            handler=delete,
            tag="catalog",
            answers={204: None, 409: "Error"},
            description=delete.__doc__ or "",
        ),
    ]


OPERATIONS: list[Operation] = [
    Operation(
        method="GET",
        path="/admin/openapi.json",
        summary="This document",
        handler=openapi_json,
        tag="meta",
        answers={200: "OpenAPIDocument"},
        public=True,
        description="Served without authentication: it describes the API, not the gateway's data.",
    ),
    # -- keys
    Operation(
        method="GET",
        path="/admin/keys",
        summary="List keys",
        handler=keys.list_keys,
        tag="keys",
        answers={200: "KeyList"},
        query=KeyListQuery,
        description="Oldest first. Without `limit` or `cursor` every matching key is answered.",
    ),
    Operation(
        method="POST",
        path="/admin/create-key",
        summary="Create a key",
        handler=keys.create_key,
        tag="keys",
        answers={201: "IssuedKey"},
        body=CreateKeyBody,
        description="The answer's `api_key` is the only time the secret is shown.",
    ),
    Operation(
        method="GET",
        path="/admin/keys/{key_id}",
        summary="Get a key",
        handler=keys.get_key,
        tag="keys",
        answers={200: "Key"},
    ),
    Operation(
        method="PATCH",
        path="/admin/keys/{key_id}",
        summary="Change a key's name, plan, expiry or active flag",
        handler=keys.change_key,
        tag="keys",
        answers={200: "Key"},
        body=PatchKeyBody,
    ),
    Operation(
        method="POST",
        path="/admin/keys/{key_id}/revoke",
        summary="Revoke a key",
        handler=keys.revoke_key,
        tag="keys",
        answers={200: "Key"},
    ),
    Operation(
        method="POST",
        path="/admin/keys/{key_id}/reactivate",
        summary="Reactivate a revoked key",
        handler=keys.reactivate_key,
        tag="keys",
        answers={200: "Key"},
    ),
    Operation(
        method="POST",
        path="/admin/keys/{key_id}/rotate",
        summary="Give a key a new secret",
        handler=keys.rotate_key,
        tag="keys",
        answers={200: "RotatedKey"},
        body=RotateKeyBody,
        body_optional=True,
        description="Same id, plan and budgets; the old secret stops at once, or after `grace_seconds`.",
    ),
    Operation(
        method="GET",
        path="/admin/keys/{key_id}/usage",
        summary="A key's usage rows",
        handler=keys.key_usage,
        tag="keys",
        answers={200: "UsagePage"},
        query=PageQuery,
    ),
    Operation(
        method="GET",
        path="/admin/keys/{key_id}/budgets",
        summary="A key's budgets: limit, used, remaining, reset, per window and unit",
        handler=keys.key_budgets,
        tag="keys",
        answers={200: "KeyBudgets"},
    ),
    # -- catalog
    Operation(
        method="GET",
        path="/admin/catalog",
        summary="The whole catalog",
        handler=catalog.get_catalog,
        tag="catalog",
        answers={200: "Catalog"},
    ),
    *_catalog_item("providers", "provider", ProviderTable, "Provider", description=_KEEPS_ACCOUNTS),
    *_catalog_item("models", "model", ModelTable, "Model"),
    *_catalog_item("plans", "plan", Plan, "Plan"),
    Operation(
        method="GET",
        path="/admin/providers/{name}/models",
        summary="The model ids a provider offers (asks the provider)",
        handler=catalog.provider_models,
        tag="catalog",
        answers={200: "ProviderModels", 502: "Error"},
    ),
    # -- usage and state
    Operation(
        method="GET",
        path="/admin/usage",
        summary="Usage rows, newest first",
        handler=usage.list_usage,
        tag="usage",
        answers={200: "UsagePage"},
        query=UsageRowsQuery,
    ),
    Operation(
        method="GET",
        path="/admin/usage/summary",
        summary="Usage per hour or day and group",
        handler=usage.summarize_usage,
        tag="usage",
        answers={200: "UsageSummary"},
        query=UsageSummaryQuery,
    ),
    Operation(
        method="GET",
        path="/admin/usage.csv",
        summary="Usage rows as CSV",
        handler=usage.usage_csv,
        tag="usage",
        answers={200: None},
        query=UsageFilterQuery,
        content_type=usage.CSV,
    ),
    Operation(
        method="GET",
        path="/admin/usage/summary.csv",
        summary="Usage per hour or day and group, as CSV",
        handler=usage.summary_csv,
        tag="usage",
        answers={200: None},
        query=UsageSummaryQuery,
        content_type=usage.CSV,
    ),
    Operation(
        method="GET",
        path="/admin/state",
        summary="Live state: upstream health, cooldowns, recent errors, queue, usage backlog",
        handler=live_state,
        tag="state",
        answers={200: "State"},
        description="Error rates count the attempts in usage rows of the last 5 minutes (at most 1000 rows).",
    ),
]

DOCUMENT = openapi_document(OPERATIONS, version=__version__)


def add_admin_routes(
    app: falcon.asgi.App[Any, Any], *, admin_secret: str, max_body_bytes: int, sessions: SessionCheck | None = None
) -> None:
    """Every admin operation on ``app``; ``sessions`` (the dashboard's ``AdminSessions``) lets its signed
    cookie stand in for the admin secret."""
    for path, resource in resources(
        OPERATIONS, admin_secret=admin_secret, max_body_bytes=max_body_bytes, sessions=sessions
    ):
        app.add_route(path, resource)
    # routes are matched before sinks: this answers only the /admin/ paths none of the above has
    app.add_sink(UnknownAdminPath(admin_secret=admin_secret, sessions=sessions), prefix="/admin/")
