"""The TOML catalog (providers, models, plans), the environment shortcuts, and the first-run demo plan."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from apipod.bootstrap.settings import ConfigError
from apipod.domain.catalog import (
    Account,
    Alias,
    Catalog,
    ModelLimits,
    Plan,
    Route,
    Timeouts,
    Upstream,
    UpstreamKind,
    UpstreamModel,
    parse_kind,
)
from apipod.domain.quota import Budget, parse_window

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

COMMON_FIELDS = {"name", "type", "base_url", "headers", "timeout"}
ACCOUNT_FIELD = {
    UpstreamKind.OPENAI: "api_keys",
    UpstreamKind.ANTHROPIC: "api_keys",
    UpstreamKind.GOOGLE_AI_STUDIO: "api_keys",
    UpstreamKind.COPILOT: "github_tokens",
    UpstreamKind.ANTIGRAVITY: "refresh_tokens",
}
OPTION_FIELDS: Mapping[UpstreamKind, set[str]] = {
    UpstreamKind.OPENAI: set(),
    UpstreamKind.ANTHROPIC: set(),
    UpstreamKind.GOOGLE_AI_STUDIO: set(),
    UpstreamKind.COPILOT: {
        "token_url",
        "github_base_url",
        "client_id",
        "editor_version",
        "editor_plugin_version",
        "integration_id",
        "user_agent",
    },
    UpstreamKind.ANTIGRAVITY: {
        "base_urls",
        "oauth_token_url",
        "oauth_client_id",
        "oauth_client_secret",
        "projects",
        "user_agent",
    },
    UpstreamKind.MOCK: {"delay_ms"},
}
DEFAULT_BASE_URLS = {
    UpstreamKind.OPENAI: "https://api.openai.com/v1",
    UpstreamKind.ANTHROPIC: "https://api.anthropic.com",
    UpstreamKind.GOOGLE_AI_STUDIO: "https://generativelanguage.googleapis.com",
}
MODEL_FIELDS = {"name", "provider", "upstream_model", "rpm", "tpm", "rpd", "max_concurrency"}
PLAN_FIELDS = {"name", "routes", "aliases", "budgets", "strict_models", "rpm", "max_concurrency"}


def expand(value: Any, env: Mapping[str, str]) -> Any:
    """``${VAR}`` in any string reads the environment; an unset variable is an error, not an empty key."""
    if isinstance(value, str):

        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                raise ConfigError(f"the catalog refers to ${{{name}}}, which is not set")
            return env[name]

        return _VAR.sub(sub, value)
    if isinstance(value, list):
        return [expand(v, env) for v in value]
    if isinstance(value, dict):
        return {k: expand(v, env) for k, v in value.items()}
    return value


def _check_fields(where: str, table: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(unknown)}")


def _need(where: str, table: Mapping[str, Any], field: str, kind: type) -> Any:
    value = table.get(field)
    if not isinstance(value, kind):
        raise ConfigError(f"{where}: '{field}' is required and must be a {kind.__name__}")
    return value


def parse_upstream(table: Mapping[str, Any], where: str) -> Upstream:
    name = _need(where, table, "name", str)
    try:
        kind = parse_kind(_need(where, table, "type", str))
    except ValueError:
        raise ConfigError(f"{where}: unknown type {table.get('type')!r}") from None
    account_field = ACCOUNT_FIELD.get(kind)
    allowed = COMMON_FIELDS | OPTION_FIELDS[kind] | ({account_field} if account_field else set())
    _check_fields(f"{where} ({name})", table, allowed)
    secrets = table.get(account_field, []) if account_field else []
    if not isinstance(secrets, list) or not all(isinstance(s, str) for s in secrets):
        raise ConfigError(f"{where} ({name}): '{account_field}' must be a list of strings")
    projects = table.get("projects", [])
    accounts = tuple(
        Account(i, secret, projects[i] if i < len(projects) else None) for i, secret in enumerate(secrets) if secret
    )
    timeout = table.get("timeout", {})
    if not isinstance(timeout, dict) or set(timeout) - {"connect", "read"}:
        raise ConfigError(f"{where} ({name}): 'timeout' is a table of connect and read seconds")
    headers = table.get("headers", {})
    if not isinstance(headers, dict):
        raise ConfigError(f"{where} ({name}): 'headers' must be a table")
    return Upstream(
        name=name,
        kind=kind,
        base_url=str(table.get("base_url") or DEFAULT_BASE_URLS.get(kind, "")),
        accounts=accounts,
        headers={str(k): str(v) for k, v in headers.items()},
        timeouts=Timeouts(**{k: float(v) for k, v in timeout.items()}),
        options={k: table[k] for k in OPTION_FIELDS[kind] if k in table},
    )


def _positive(where: str, table: Mapping[str, Any], field: str) -> int | None:
    value = table.get(field)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"{where}: '{field}' must be a positive whole number")
    return value


def parse_model(table: Mapping[str, Any], where: str) -> UpstreamModel:
    _check_fields(where, table, MODEL_FIELDS)
    name = _need(where, table, "name", str)
    return UpstreamModel(
        name=name,
        upstream=_need(where, table, "provider", str),
        upstream_model=str(table.get("upstream_model") or name),
        limits=ModelLimits(**{f: _positive(where, table, f) for f in ("rpm", "tpm", "rpd", "max_concurrency")}),
    )


def _routes(where: str, value: Any) -> tuple[Route, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where}: 'routes' must be a non-empty list of {{ model, weight }}")
    routes = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: routes[{i}] must be a table")
        _check_fields(f"{where} routes[{i}]", item, {"model", "weight"})
        weight = item.get("weight", 1)
        if not isinstance(weight, int | float) or weight < 0:
            raise ConfigError(f"{where}: routes[{i}].weight must be a non-negative number")
        routes.append(Route(_need(f"{where} routes[{i}]", item, "model", str), float(weight)))
    return tuple(routes)


def parse_budget(where: str, item: Any) -> Budget:
    if not isinstance(item, dict):
        raise ConfigError(f"{where} must be a table")
    _check_fields(where, item, {"window", "tokens", "requests"})
    try:
        window = parse_window(item.get("window"))  # type: ignore[arg-type]
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    budget = Budget(window=window, tokens=_positive(where, item, "tokens"), requests=_positive(where, item, "requests"))
    if budget.tokens is None and budget.requests is None:
        raise ConfigError(f"{where}: a budget limits tokens, requests, or both")
    return budget


def parse_plan(table: Mapping[str, Any], where: str) -> Plan:
    _check_fields(where, table, PLAN_FIELDS)
    name = _need(where, table, "name", str)
    aliases = []
    for i, item in enumerate(table.get("aliases", [])):
        _check_fields(f"{where} aliases[{i}]", item, {"name", "routes"})
        aliases.append(Alias(_need(f"{where} aliases[{i}]", item, "name", str), _routes(where, item.get("routes"))))
    return Plan(
        name=name,
        routes=_routes(where, table.get("routes")),
        aliases=tuple(aliases),
        budgets=tuple(parse_budget(f"{where} budgets[{i}]", b) for i, b in enumerate(table.get("budgets", []))),
        strict_models=bool(table.get("strict_models", False)),
        rpm=_positive(where, table, "rpm"),
        max_concurrency=_positive(where, table, "max_concurrency"),
    )


def parse_catalog(document: Mapping[str, Any], env: Mapping[str, str]) -> Catalog:
    _check_fields("catalog", document, {"providers", "models", "plans"})
    document = expand(dict(document), env)
    upstreams = tuple(parse_upstream(t, f"providers[{i}]") for i, t in enumerate(document.get("providers", [])))
    models = tuple(parse_model(t, f"models[{i}]") for i, t in enumerate(document.get("models", [])))
    plans = tuple(parse_plan(t, f"plans[{i}]") for i, t in enumerate(document.get("plans", [])))
    check_references(Catalog(upstreams=upstreams, models=models, plans=plans))
    return Catalog(upstreams=upstreams, models=models, plans=plans)


def check_references(catalog: Catalog, known: Catalog | None = None) -> None:
    """Every model names a known provider, every route a known model."""
    upstreams = {u.name for u in catalog.upstreams} | {u.name for u in (known.upstreams if known else ())}
    models = {m.name for m in catalog.models} | {m.name for m in (known.models if known else ())}
    for model in catalog.models:
        if model.upstream not in upstreams:
            raise ConfigError(f"model '{model.name}' names unknown provider '{model.upstream}'")
    for plan in catalog.plans:
        for route in (*plan.routes, *(r for a in plan.aliases for r in a.routes)):
            if route.model not in models:
                raise ConfigError(f"plan '{plan.name}' routes to unknown model '{route.model}'")


def load_catalog_file(path: str | Path, env: Mapping[str, str]) -> Catalog:
    try:
        document = tomllib.loads(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read the catalog file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"the catalog file {path} is not valid TOML: {exc}") from None
    return parse_catalog(document, env)


def demo_catalog() -> Catalog:
    """First run: a ``mock`` upstream and a ``demo`` plan routed to it."""
    return Catalog(
        upstreams=(Upstream(name="mock", kind=UpstreamKind.MOCK),),
        models=(UpstreamModel(name="mock-echo", upstream="mock", upstream_model="mock-echo"),),
        plans=(Plan(name="demo", routes=(Route("mock-echo", 1.0),)),),
    )


def shortcut_catalog(shortcuts: Mapping[str, str]) -> Catalog:
    """The original's environment shortcuts: each configures an upstream, one model and a plan named after
    the upstream, so a key on that plan works at once."""
    entries: list[tuple[Upstream, str]] = []
    if key := shortcuts.get("OPENAI_API_KEY"):
        entries.append(
            (
                Upstream(
                    name="openai",
                    kind=UpstreamKind.OPENAI,
                    base_url=DEFAULT_BASE_URLS[UpstreamKind.OPENAI],
                    accounts=(Account(0, key),),
                ),
                "gpt-4o-mini",
            )
        )
    if key := shortcuts.get("GOOGLE_AI_STUDIO_KEY"):
        entries.append(
            (
                Upstream(
                    name="google_ai_studio",
                    kind=UpstreamKind.GOOGLE_AI_STUDIO,
                    base_url=DEFAULT_BASE_URLS[UpstreamKind.GOOGLE_AI_STUDIO],
                    accounts=(Account(0, key),),
                ),
                "gemini-2.5-flash",
            )
        )
    if (url := shortcuts.get("ANTIGRAVITY_URL")) and (key := shortcuts.get("ANTIGRAVITY_KEY")):
        entries.append(
            (
                Upstream(name="antigravity", kind=UpstreamKind.ANTHROPIC, base_url=url, accounts=(Account(0, key),)),
                "claude-sonnet-4-5",
            )
        )
    return Catalog(
        upstreams=tuple(u for u, _ in entries),
        models=tuple(UpstreamModel(name=m, upstream=u.name, upstream_model=m) for u, m in entries),
        plans=tuple(Plan(name=u.name, routes=(Route(m, 1.0),)) for u, m in entries),
    )
