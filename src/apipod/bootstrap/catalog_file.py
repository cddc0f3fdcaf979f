"""The TOML catalog (providers, models, plans), the environment shortcuts, and the first-run demo plan."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from apipod.bootstrap.settings import ConfigError
from apipod.dialects.catalog_wire import DEFAULT_BASE_URLS, WireError, catalog_from_document
from apipod.domain.catalog import Account, Catalog, Plan, Route, Upstream, UpstreamKind, UpstreamModel

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# DEFAULT_BASE_URLS lived here before the catalog wire format; it is still importable from here.
__all__ = ["DEFAULT_BASE_URLS", "check_references", "demo_catalog", "load_catalog_file", "parse_catalog"]


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


def parse_catalog(document: Mapping[str, Any], env: Mapping[str, str]) -> Catalog:
    """The catalog file's tables, read by the catalog wire format; a mistake names its path
    (``plans[0].budgets[1].window``)."""
    try:
        catalog = catalog_from_document(expand(dict(document), env))
    except WireError as exc:
        raise ConfigError(f"catalog: {exc.field}: {exc.reason}" if exc.field else f"catalog: {exc.reason}") from None
    check_references(catalog)
    return catalog


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
