"""The catalog wire format: TOML tables to domain objects and back to the admin views, and the path of
every mistake."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from typing import Any

import pytest

from apipod.dialects.catalog_wire import (
    WireError,
    catalog_from_document,
    converter,
    create_key_body,
    from_row,
    model_from_table,
    model_view,
    plan_from_table,
    plan_view,
    upstream_from_table,
    upstream_view,
    usage_query,
)
from apipod.domain.catalog import Plan, Upstream, UpstreamKind
from apipod.domain.errors import StorageError
from apipod.domain.keys import ApiKey
from apipod.domain.quota import Window, WindowUnit

DOCUMENT = """
[[providers]]
name = "openai"
type = "groq"
api_keys = ["sk-1", "", "sk-3"]
headers = { "x-team" = "blue" }
timeout = { connect = 3, read = 120, first_event = 30, total = 600 }
max_event_bytes = 65536
max_response_bytes = 1048576

[[providers]]
name = "ag"
type = "antigravity"
refresh_tokens = ["r0", "r1"]
projects = ["p0"]
base_urls = ["https://a.example", "https://b.example"]

[[providers]]
name = "local"
type = "mock"
delay_ms = 5

[[models]]
name = "mini"
provider = "openai"
upstream_model = "gpt-4o-mini"
rpm = 500

[[models]]
name = "echo"
provider = "local"

[[plans]]
name = "pro"
routes = [{ model = "mini", weight = 70 }, { model = "echo", weight = 0 }]
aliases = [{ name = "fast", routes = [{ model = "echo" }] }]
budgets = [{ window = "day", tokens = 100 }, { window = { hours = 5 }, requests = 3 }, { window = "8h", tokens = 1 }]
strict_models = true
rpm = 60
"""


def catalog() -> Any:
    return catalog_from_document(tomllib.loads(DOCUMENT))


def test_the_toml_tables_become_domain_objects() -> None:
    openai, ag, local = catalog().upstreams
    assert openai.kind is UpstreamKind.OPENAI
    assert openai.base_url == "https://api.openai.com/v1"
    assert [(a.index, a.secret) for a in openai.accounts] == [(0, "sk-1"), (2, "sk-3")]
    assert openai.headers == {"x-team": "blue"}
    timeouts = openai.timeouts
    assert (timeouts.connect, timeouts.read, timeouts.first_event, timeouts.total) == (3.0, 120.0, 30.0, 600.0)
    assert (openai.max_event_bytes, openai.max_response_bytes) == (65536, 1048576)
    assert [(a.secret, a.project) for a in ag.accounts] == [("r0", "p0"), ("r1", None)]
    assert ag.options == {"base_urls": ["https://a.example", "https://b.example"], "projects": ["p0"]}
    assert local.options == {"delay_ms": 5}
    assert local.timeouts.first_event == 120.0  # the defaults


def test_views_keep_the_table_shape() -> None:
    parsed = catalog()
    mini, echo = parsed.models
    assert model_view(mini) == {
        "name": "mini",
        "provider": "openai",
        "upstream_model": "gpt-4o-mini",
        "rpm": 500,
        "tpm": None,
        "rpd": None,
        "max_concurrency": None,
        "input_price": None,
        "output_price": None,
        "cache_read_price": None,
        "cache_write_price": None,
    }
    assert model_view(echo)["upstream_model"] == "echo"
    [plan] = parsed.plans
    assert plan_view(plan) == {
        "name": "pro",
        "routes": [{"model": "mini", "weight": 70.0}, {"model": "echo", "weight": 0.0}],
        "aliases": [{"name": "fast", "routes": [{"model": "echo", "weight": 1.0}]}],
        "budgets": [
            {"window": "day", "tokens": 100, "requests": None, "cost": None},
            {"window": "5h", "tokens": None, "requests": 3, "cost": None},
            {"window": "8h", "tokens": 1, "requests": None, "cost": None},
        ],
        "strict_models": True,
        "rpm": 60,
        "max_concurrency": None,
    }
    assert upstream_view(parsed.upstreams[0]) == {
        "name": "openai",
        "type": "openai",
        "base_url": "https://api.openai.com/v1",
        "accounts": 2,
        "account_hints": ["...", "..."],
        "headers": ["x-team"],
        "timeout": {"connect": 3.0, "read": 120.0, "first_event": 30.0, "total": 600.0},
        "max_event_bytes": 65536,
        "max_response_bytes": 1048576,
    }


def test_a_plan_view_reads_back_as_the_same_plan() -> None:
    [plan] = catalog().plans
    assert plan_from_table(plan_view(plan)) == plan
    assert model_from_table(model_view(catalog().models[0])) == catalog().models[0]


def test_an_upstream_row_reads_back_whole() -> None:
    upstream = catalog().upstreams[1]
    row = converter.unstructure(upstream, Upstream)
    assert from_row(row, Upstream, "upstreams") == upstream


@pytest.mark.parametrize(
    ("document", "field", "fragment"),
    [
        (
            {
                "plans": [
                    {
                        "name": "p",
                        "routes": [{"model": "m"}],
                        "budgets": [{"window": "day", "tokens": 1}, {"window": "0h", "tokens": 1}],
                    }
                ]
            },
            "plans[0].budgets[1].window",
            "not a window",
        ),
        ({"plans": [{"name": "p", "routes": [{"model": "m", "weight": -1}]}]}, "plans[0].routes[0].weight", "from 0"),
        (
            {"plans": [{"name": "p", "routes": [{"model": "m", "weight": "1"}]}]},
            "plans[0].routes[0].weight",
            "not a string",
        ),
        (
            {"plans": [{"name": "p", "routes": [{"model": "m", "weight": float("inf")}]}]},
            "plans[0].routes[0].weight",
            "finite",
        ),
        ({"plans": [{"name": "p", "routes": []}]}, "plans[0].routes", "at least one"),
        ({"plans": [{"name": "p", "routes": [{"model": "m"}], "aliases": [["x"]]}]}, "plans[0].aliases[0]", "table"),
        (
            {"plans": [{"name": "p", "routes": [{"model": "m"}], "budgets": {"window": "day"}}]},
            "plans[0].budgets",
            "list",
        ),
        (
            {"plans": [{"name": "p", "routes": [{"model": "m"}], "budgets": [{"window": "day"}]}]},
            "plans[0].budgets[0]",
            "tokens, requests",
        ),
        ({"plans": [{"name": "p", "routes": [{"model": "m"}], "rpm": True}]}, "plans[0].rpm", "whole number"),
        (
            {"providers": [{"name": "p", "type": "openai", "timeout": {"read": "30"}}]},
            "providers[0].timeout.read",
            "not a string",
        ),
        (
            {"providers": [{"name": "p", "type": "openai", "timeout": {"read": 0}}]},
            "providers[0].timeout.read",
            "above 0",
        ),
        (
            {"providers": [{"name": "p", "type": "openai", "timeout": {"idle": 3}}]},
            "providers[0].timeout.idle",
            "unknown",
        ),
        (
            {"providers": [{"name": "p", "type": "openai", "base_url": "https://u:pw@x.example"}]},
            "providers[0].base_url",
            "credentials",
        ),
        (
            {"providers": [{"name": "p", "type": "openai", "base_url": "file:///etc"}]},
            "providers[0].base_url",
            "http(s)",
        ),
        ({"providers": [{"name": "p", "type": "openai", "api_keys": "sk"}]}, "providers[0].api_keys", "list"),
        (
            {"providers": [{"name": "p", "type": "openai", "responses_api": "maybe"}]},
            "providers[0].responses_api",
            "true or false",
        ),
        (
            {"providers": [{"name": "p", "type": "anthropic", "responses_api": True}]},
            "providers[0].responses_api",
            "unknown",
        ),
        ({"providers": [{"name": "p", "type": "mock", "api_keys": ["sk"]}]}, "providers[0].api_keys", "unknown"),
        ({"providers": [{"name": "p", "type": "antigravity", "projects": "x"}]}, "providers[0].projects", "list"),
        (
            {"providers": [{"name": "p", "type": "antigravity", "base_urls": ["https://a", "ftp://b"]}]},
            "providers[0].base_urls[1]",
            "http(s)",
        ),
        (
            {"providers": [{"name": "p", "type": "openai", "headers": {"bad name": "x"}}]},
            'providers[0].headers["bad name"]',
            "header name",
        ),
        (
            {"providers": [{"name": "p", "type": "openai", "max_event_bytes": 0}]},
            "providers[0].max_event_bytes",
            "bytes",
        ),
        ({"providers": [{"name": "p", "type": "nope"}]}, "providers[0].type", "unknown type"),
        ({"providers": [{"name": "p"}]}, "providers[0].type", "required"),
        ({"models": [{"name": "m\x07", "provider": "p"}]}, "models[0].name", "control"),
        ({"models": [{"name": " ", "provider": "p"}]}, "models[0].name", "empty"),
        ({"models": [{"name": "m", "provider": "p", "tpm": 2**40}]}, "models[0].tpm", "whole number"),
        ({"models": [{"name": "m"}]}, "models[0].provider", "required"),
        ({"keys": []}, "keys", "unknown"),
    ],
)
def test_mistakes_name_their_path(document: dict[str, Any], field: str, fragment: str) -> None:
    with pytest.raises(WireError) as caught:
        catalog_from_document(document)
    assert caught.value.field == field
    assert fragment in caught.value.reason


def test_one_table_names_paths_from_its_own_root() -> None:
    with pytest.raises(WireError) as caught:
        plan_from_table(
            {
                "name": "p",
                "routes": [{"model": "m"}],
                "budgets": [{"tokens": 1, "window": "day"}, {"window": 0, "tokens": 1}],
            }
        )
    assert caught.value.field == "budgets[1].window"
    with pytest.raises(WireError) as caught:
        upstream_from_table({"name": "p", "type": "openai", "timeout": {"connect": 1, "read": "x"}})
    assert caught.value.field == "timeout.read"


@pytest.mark.parametrize("hours", [0, -1, 10**9])
def test_a_window_of_no_length_cannot_exist(hours: int) -> None:
    with pytest.raises(ValueError, match="hours long"):
        Window(WindowUnit.HOURS, hours)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"tier": "basic"}, "name"),
        ({"name": "", "tier": "basic"}, "name"),
        ({"name": "a\nb", "tier": "basic"}, "name"),
        ({"name": "x"}, "tier"),
        ({"name": "x", "tier": ["basic"]}, "tier"),
        ({"name": "x", "tier": "basic", "expires_in": 1e12}, "expires_in"),
        ({"name": "x", "tier": "basic", "expires_in": float("nan")}, "expires_in"),
        ({"name": "x", "tier": "basic", "expires_in": -1}, "expires_in"),
        ({"name": "x", "tier": "basic", "expires_in": True}, "expires_in"),
        ({"name": "x", "tier": "basic", "expires_at": "2030-01-01T00:00:00"}, "expires_at"),
        ({"name": "x", "tier": "basic", "expires_at": "9999-12-31T23:59:59-12:00"}, "expires_at"),
        ({"name": "x", "tier": "basic", "expires_at": 17}, "expires_at"),
        ({"name": "x", "tier": "basic", "expires_at": "0001-01-01T00:00:00+01:00"}, "expires_at"),
    ],
)
def test_create_key_bodies_are_checked(body: dict[str, Any], field: str) -> None:
    with pytest.raises(WireError) as caught:
        create_key_body(body).plan_name()
    assert caught.value.field == field


def test_an_expiry_is_held_in_utc() -> None:
    body = create_key_body({"name": "x", "tier": "basic", "expires_at": "9999-12-31T23:59:59+14:00"})
    assert body.expiry(datetime(2026, 1, 1, tzinfo=UTC)) == datetime(9999, 12, 31, 9, 59, 59, tzinfo=UTC)
    assert body.plan_name() == "basic"
    assert create_key_body({"name": "x", "sub_name": "gold", "extra": 1}).plan_name() == "gold"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "2026-01-01T00:00:00"}, "since"),
        ({"since": "yesterday"}, "since"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"limit": "0"}, "limit"),
        ({"limit": "1.5"}, "limit"),
    ],
)
def test_usage_queries_are_checked(params: dict[str, str], field: str) -> None:
    with pytest.raises(WireError) as caught:
        usage_query(params)
    assert caught.value.field == field


def test_a_usage_query_reads_its_parameters() -> None:
    query = usage_query({"since": "2026-01-01T02:00:00+02:00", "limit": "5", "key_id": "k1"})
    assert (query.since, query.limit, query.key_id) == (datetime(2026, 1, 1, tzinfo=UTC), 5, "k1")
    assert usage_query({}).limit == 100
    assert usage_query({"limit": "10001"}).limit == usage_query({"limit": "9" * 5000}).limit == 10_000


def test_a_damaged_row_is_a_storage_error_without_its_values() -> None:
    row = {
        "id": "k1",
        "digest": "secret-digest",
        "prefix": "apk_x",
        "name": "n",
        "plan": "p",
        "active": True,
        "created_at": "not a time",
        "expires_at": None,
        "last_used_at": None,
    }
    with pytest.raises(StorageError) as caught:
        from_row(row, ApiKey, "api_keys")
    assert "created_at" in caught.value.message
    assert "secret-digest" not in caught.value.message
    row["created_at"] = datetime(2026, 1, 1, tzinfo=UTC)
    assert from_row(row, ApiKey, "api_keys").created_at == datetime(2026, 1, 1, tzinfo=UTC)


def test_a_stored_plan_reads_with_windows_by_name() -> None:
    plan = from_row(
        {
            "name": "p",
            "routes": [{"model": "m", "weight": 1.0}],
            "aliases": [],
            "budgets": [{"window": "5h", "tokens": None, "requests": 2}],
            "strict_models": False,
            "rpm": None,
            "max_concurrency": None,
        },
        Plan,
        "plans",
    )
    assert plan.budgets[0].window == Window(WindowUnit.HOURS, 5)


def test_an_openai_provider_may_say_it_serves_the_responses_api() -> None:
    catalog = catalog_from_document({"providers": [{"name": "p", "type": "openai", "responses_api": True}]})
    assert catalog.upstreams[0].options == {"responses_api": True}
