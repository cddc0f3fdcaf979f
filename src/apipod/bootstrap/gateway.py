"""The library API: build a gateway in Python, without HTTP.

async with apipod.open_gateway(catalog=catalog) as gateway:          # in memory
    issued = await gateway.issue_key(name="alice", plan="demo")
    result = await gateway.complete(issued.plaintext, request)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from apipod.application.gateway import Gateway
from apipod.application.settings import GovernanceSettings
from apipod.bootstrap.catalog_file import demo_catalog
from apipod.bootstrap.container import build_container, replacing
from apipod.bootstrap.settings import Settings
from apipod.domain.catalog import Catalog

__all__ = ["Gateway", "open_gateway"]


@asynccontextmanager
async def open_gateway(
    *,
    catalog: Catalog | None = None,
    database_url: str = "memory://",
    redis_url: str | None = None,
    governance: GovernanceSettings | None = None,
    migrate: bool = True,
    replace: Mapping[Any, object] | None = None,
) -> AsyncIterator[Gateway]:
    """A gateway over the stores of ``database_url`` (in memory by default), with ``catalog`` applied
    (the demo catalog when None). Everything is closed (usage flushed) when the block ends.

    ``replace`` puts your own adapters in place of the built-in ones, by port:
    ``{UpstreamRegistry: mine, Clock: FixedClock()}`` (any port of ``apipod.application.ports``)."""
    settings = Settings(
        database_url=database_url,
        redis_url=redis_url,
        governance=governance or GovernanceSettings(),
        migrate_on_start=migrate,
    )
    override, context = replacing(replace or {})
    container = build_container(settings, override, context=context)
    try:
        gateway = await container.get(Gateway)
        await gateway.apply_catalog(catalog if catalog is not None else demo_catalog())
        yield gateway
        await gateway.usage_log.flush()
    finally:
        await container.close()
