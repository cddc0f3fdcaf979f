"""The upstream clients by kind. Adding a provider type is one client here and one adapter module."""

from __future__ import annotations

import httpx

from apipod.application.ports import CatalogStore, Clock, IdGenerator, UpstreamClient, UpstreamRegistry
from apipod.domain.catalog import UpstreamKind


def build_registry(
    client: httpx.AsyncClient, *, ids: IdGenerator, clock: Clock, catalog: CatalogStore
) -> UpstreamRegistry:
    from apipod.adapters.upstreams.anthropic import AnthropicUpstream
    from apipod.adapters.upstreams.antigravity import AntigravityUpstream
    from apipod.adapters.upstreams.copilot import CopilotUpstream
    from apipod.adapters.upstreams.google_ai_studio import GoogleAIStudioUpstream
    from apipod.adapters.upstreams.mock import MockUpstream
    from apipod.adapters.upstreams.openai import OpenAIUpstream
    from apipod.adapters.upstreams.registry import UpstreamClientRegistry

    clients: dict[UpstreamKind, UpstreamClient] = {
        UpstreamKind.OPENAI: OpenAIUpstream(client, clock=clock),
        UpstreamKind.ANTHROPIC: AnthropicUpstream(client, clock=clock),
        UpstreamKind.GOOGLE_AI_STUDIO: GoogleAIStudioUpstream(client, clock=clock),
        UpstreamKind.COPILOT: CopilotUpstream(client, clock),
        UpstreamKind.ANTIGRAVITY: AntigravityUpstream(client, clock),
        UpstreamKind.MOCK: MockUpstream(),
    }
    return UpstreamClientRegistry(clients)
