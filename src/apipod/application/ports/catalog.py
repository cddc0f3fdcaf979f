from __future__ import annotations

from typing import Protocol

from apipod.domain.catalog import Account, Catalog, Plan, Upstream, UpstreamModel


class CatalogStore(Protocol):
    """Upstreams, upstream models and plans. Names are unique within each kind; upserts go by name."""

    async def snapshot(self) -> Catalog:
        """The whole catalog as it is now. Cheap: adapters may serve it from an in-process copy that
        their own writes refresh."""
        ...

    async def upsert_upstream(self, upstream: Upstream) -> None:
        """Create or replace an upstream, accounts included."""
        ...

    async def upsert_model(self, model: UpstreamModel) -> None:
        """Create or replace a model. Raises NotFoundError when its upstream does not exist."""
        ...

    async def upsert_plan(self, plan: Plan) -> None:
        """Create or replace a plan. Raises NotFoundError when a route names an unknown model."""
        ...

    async def add_account(self, upstream: str, secret: str) -> Account:
        """Append a credential to an upstream's pool (``apipod copilot login``). Raises NotFoundError."""
        ...
