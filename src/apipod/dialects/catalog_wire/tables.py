"""The TOML catalog's tables where they differ from the domain: a provider (its type decides which
account list and options it takes) and a model (limits inline). Plans are read straight into the domain.
The admin API takes the same tables as JSON."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import attrs

from apipod.domain.catalog import (
    Account,
    ModelLimits,
    ModelPrices,
    Plan,
    Timeouts,
    Upstream,
    UpstreamKind,
    UpstreamModel,
)

DEFAULT_BASE_URLS: Mapping[UpstreamKind, str] = {
    UpstreamKind.OPENAI: "https://api.openai.com/v1",
    UpstreamKind.ANTHROPIC: "https://api.anthropic.com",
    UpstreamKind.GOOGLE_AI_STUDIO: "https://generativelanguage.googleapis.com",
}
_DEFAULT = Upstream(name="-", kind=UpstreamKind.MOCK)


@attrs.frozen(kw_only=True)
class ProviderTable:
    """The fields every provider takes. ``type`` picks the subclass that adds the rest."""

    name: str
    type: UpstreamKind
    base_url: str | None = None
    headers: Mapping[str, str] = attrs.field(factory=dict)
    timeout: Timeouts = Timeouts()
    max_event_bytes: int = _DEFAULT.max_event_bytes
    max_response_bytes: int = _DEFAULT.max_response_bytes

    def secrets(self) -> tuple[str, ...]:
        return ()

    def account_projects(self) -> tuple[str, ...]:
        return ()

    def options(self) -> dict[str, Any]:
        """The type's own settings that were given, as they will be stored (lists, not tuples)."""
        common = {a.name for a in attrs.fields(ProviderTable)} | {"api_keys", "github_tokens", "refresh_tokens"}
        return {
            a.name: list(value) if isinstance(value, tuple) else value
            for a in attrs.fields(type(self))
            if a.name not in common and (value := getattr(self, a.name)) is not None
        }

    def to_upstream(self) -> Upstream:
        projects = self.account_projects()
        return Upstream(
            name=self.name,
            kind=self.type,
            base_url=self.base_url or DEFAULT_BASE_URLS.get(self.type, ""),
            accounts=tuple(
                Account(i, secret, projects[i] if i < len(projects) else None)
                for i, secret in enumerate(self.secrets())
                if secret
            ),
            headers=dict(self.headers),
            timeouts=self.timeout,
            options=self.options(),
            max_event_bytes=self.max_event_bytes,
            max_response_bytes=self.max_response_bytes,
        )


@attrs.frozen(kw_only=True)
class KeyedProviderTable(ProviderTable):
    """openai, anthropic, google_ai_studio (and their aliases): a pool of API keys."""

    api_keys: tuple[str, ...] = ()

    def secrets(self) -> tuple[str, ...]:
        return self.api_keys


@attrs.frozen(kw_only=True)
class OpenAIProviderTable(KeyedProviderTable):
    """openai (and its aliases). ``responses_api``: the provider also serves ``/responses``, so Responses-API
    clients are forwarded there in their own dialect instead of being translated to chat completions."""

    responses_api: bool | None = None


@attrs.frozen(kw_only=True)
class CopilotProviderTable(ProviderTable):
    github_tokens: tuple[str, ...] = ()
    token_url: str | None = None
    github_base_url: str | None = None
    client_id: str | None = None
    editor_version: str | None = None
    editor_plugin_version: str | None = None
    integration_id: str | None = None
    user_agent: str | None = None

    def secrets(self) -> tuple[str, ...]:
        return self.github_tokens


@attrs.frozen(kw_only=True)
class AntigravityProviderTable(ProviderTable):
    refresh_tokens: tuple[str, ...] = ()
    base_urls: tuple[str, ...] | None = None
    oauth_token_url: str | None = None
    oauth_client_id: str | None = None
    oauth_client_secret: str | None = None
    projects: tuple[str, ...] | None = None  # the Cloud project of each account, by position
    user_agent: str | None = None

    def secrets(self) -> tuple[str, ...]:
        return self.refresh_tokens

    def account_projects(self) -> tuple[str, ...]:
        return self.projects or ()


@attrs.frozen(kw_only=True)
class MockProviderTable(ProviderTable):
    delay_ms: float | None = None


PROVIDER_TABLES: Mapping[UpstreamKind, type[ProviderTable]] = {
    UpstreamKind.OPENAI: OpenAIProviderTable,
    UpstreamKind.ANTHROPIC: KeyedProviderTable,
    UpstreamKind.GOOGLE_AI_STUDIO: KeyedProviderTable,
    UpstreamKind.COPILOT: CopilotProviderTable,
    UpstreamKind.ANTIGRAVITY: AntigravityProviderTable,
    UpstreamKind.MOCK: MockProviderTable,
}


@attrs.frozen(kw_only=True)
class ModelTable:
    """A model as the TOML, the admin API and the models table spell it: limits and prices inline (prices per
    million tokens, in the catalog's currency)."""

    name: str
    provider: str
    upstream_model: str | None = None
    rpm: int | None = None
    tpm: int | None = None
    rpd: int | None = None
    max_concurrency: int | None = None
    input_price: Decimal | None = None
    output_price: Decimal | None = None
    cache_read_price: Decimal | None = None
    cache_write_price: Decimal | None = None

    def to_model(self) -> UpstreamModel:
        return UpstreamModel(
            name=self.name,
            upstream=self.provider,
            upstream_model=self.upstream_model or self.name,
            limits=ModelLimits(rpm=self.rpm, tpm=self.tpm, rpd=self.rpd, max_concurrency=self.max_concurrency),
            prices=ModelPrices(
                input=self.input_price,
                output=self.output_price,
                cache_read=self.cache_read_price,
                cache_write=self.cache_write_price,
            ),
        )


@attrs.frozen(kw_only=True)
class CatalogDocument:
    """The whole TOML file. ``currency``: of every price and money budget."""

    currency: str = "USD"
    providers: tuple[ProviderTable, ...] = ()
    models: tuple[UpstreamModel, ...] = ()
    plans: tuple[Plan, ...] = ()
