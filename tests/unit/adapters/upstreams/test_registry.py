from __future__ import annotations

import httpx
import pytest

from apipod.adapters.upstreams.mock import MockUpstream
from apipod.adapters.upstreams.openai import OpenAIUpstream
from apipod.adapters.upstreams.registry import UpstreamClientRegistry
from apipod.domain.catalog import Upstream, UpstreamKind
from apipod.domain.errors import NotFoundError


async def test_client_for_the_upstreams_kind() -> None:
    mock = MockUpstream()
    async with httpx.AsyncClient() as client:
        openai = OpenAIUpstream(client)
        registry = UpstreamClientRegistry({UpstreamKind.MOCK: mock, UpstreamKind.OPENAI: openai})
        assert registry.client_for(Upstream(name="m", kind=UpstreamKind.MOCK)) is mock
        assert registry.client_for(Upstream(name="o", kind=UpstreamKind.OPENAI)) is openai
        assert registry.kinds == {UpstreamKind.MOCK, UpstreamKind.OPENAI}


def test_unknown_kind_is_not_found() -> None:
    registry = UpstreamClientRegistry({UpstreamKind.MOCK: MockUpstream()})
    with pytest.raises(NotFoundError, match="copilot"):
        registry.client_for(Upstream(name="c", kind=UpstreamKind.COPILOT))
