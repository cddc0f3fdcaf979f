"""The catalog: upstreams (configured endpoints with account pools), upstream models, and plans."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import attrs

from apipod.domain.quota import Budget


class UpstreamKind(enum.StrEnum):
    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    GOOGLE_AI_STUDIO = "google_ai_studio"
    COPILOT = "copilot"
    ANTIGRAVITY = "antigravity"
    MOCK = "mock"


KIND_ALIASES: Mapping[str, UpstreamKind] = {
    "groq": UpstreamKind.OPENAI,
    "deepseek": UpstreamKind.OPENAI,
    "antigravity_proxy": UpstreamKind.ANTHROPIC,
    "cliproxy": UpstreamKind.ANTHROPIC,
}


def parse_kind(value: str) -> UpstreamKind:
    """Accepts the canonical names and the original project's aliases. Raises ValueError otherwise."""
    if value in KIND_ALIASES:
        return KIND_ALIASES[value]
    return UpstreamKind(value)


@attrs.frozen
class Account:
    """One credential of an upstream's pool. ``secret`` is an API key, a GitHub token or a refresh token."""

    index: int
    secret: str = attrs.field(repr=False)
    project: str | None = None

    @property
    def label(self) -> str:
        return f"#{self.index}"


_POSITIVE_SECONDS = attrs.validators.gt(0.0)
_POSITIVE_BYTES = attrs.validators.gt(0)


@attrs.frozen(kw_only=True)
class Timeouts:
    """Seconds (docs/behaviour.md §6). ``first_event`` and ``total`` bound what ``read`` cannot:
    an upstream that keeps the connection alive (comments, pings) without ever answering, or never stops."""

    connect: float = attrs.field(default=10.0, validator=_POSITIVE_SECONDS)
    # idle: the longest silence between two chunks
    read: float = attrs.field(default=300.0, validator=_POSITIVE_SECONDS)
    # until the first SSE event (comments and pings do not count) or the first bytes of a JSON answer
    first_event: float = attrs.field(default=120.0, validator=_POSITIVE_SECONDS)
    # the whole call, streaming included
    total: float = attrs.field(default=1800.0, validator=_POSITIVE_SECONDS)


@attrs.frozen(kw_only=True)
class Upstream:
    """A configured upstream endpoint. ``options`` holds type-specific settings (token_url, delay_ms...)."""

    name: str
    kind: UpstreamKind
    base_url: str = ""
    accounts: tuple[Account, ...] = ()
    # Out of repr: a custom header often carries a credential, and options an OAuth client secret.
    headers: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    timeouts: Timeouts = Timeouts()
    options: Mapping[str, Any] = attrs.field(factory=dict, repr=False)
    # caps (docs/behaviour.md §6): one SSE event, and a non-streamed answer or one streamed tool
    # call's arguments
    max_event_bytes: int = attrs.field(default=4 * 1024 * 1024, validator=_POSITIVE_BYTES)
    max_response_bytes: int = attrs.field(default=16 * 1024 * 1024, validator=_POSITIVE_BYTES)


@attrs.frozen(kw_only=True)
class ModelLimits:
    rpm: int | None = None
    tpm: int | None = None
    rpd: int | None = None
    max_concurrency: int | None = None


@attrs.frozen(kw_only=True)
class ModelPrices:
    """What one million tokens of each kind cost on this model, in the catalog's currency (exact decimals).

    ``None``: no price given. A missing ``cache_read`` or ``cache_write`` price falls back to ``input`` (cached
    tokens are input tokens; a provider that does not discount them charges the input price); a missing
    ``input`` or ``output`` price means such tokens cost nothing in the books (domain/pricing.py)."""

    input: Decimal | None = None
    output: Decimal | None = None
    cache_read: Decimal | None = None
    cache_write: Decimal | None = None


@attrs.frozen(kw_only=True)
class UpstreamModel:
    name: str
    upstream: str
    upstream_model: str
    limits: ModelLimits = ModelLimits()
    prices: ModelPrices = ModelPrices()


@attrs.frozen
class Route:
    model: str
    weight: float = 1.0


@attrs.frozen
class Alias:
    name: str
    routes: tuple[Route, ...]


@attrs.frozen(kw_only=True)
class Plan:
    name: str
    routes: tuple[Route, ...]
    aliases: tuple[Alias, ...] = ()
    budgets: tuple[Budget, ...] = ()
    strict_models: bool = False
    rpm: int | None = None  # requests per minute per key
    max_concurrency: int | None = None  # concurrent requests per key

    def alias(self, name: str) -> Alias | None:
        for alias in self.aliases:
            if alias.name == name:
                return alias
        return None

    def model_names(self) -> tuple[str, ...]:
        """The names a key on this plan may ask for: the plan's own name and each alias."""
        return (self.name, *(a.name for a in self.aliases))


@attrs.frozen(kw_only=True)
class Catalog:
    """A whole catalog, as declared in TOML or held by a store."""

    upstreams: tuple[Upstream, ...] = ()
    models: tuple[UpstreamModel, ...] = ()
    plans: tuple[Plan, ...] = ()
    currency: str = "USD"  # of every price and money budget


def find_plan(catalog: Catalog, name: str) -> Plan | None:
    return next((p for p in catalog.plans if p.name == name), None)


def find_model(catalog: Catalog, name: str) -> UpstreamModel | None:
    return next((m for m in catalog.models if m.name == name), None)


def find_upstream(catalog: Catalog, name: str) -> Upstream | None:
    return next((u for u in catalog.upstreams if u.name == name), None)
