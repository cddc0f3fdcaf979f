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

    async def delete_upstream(self, name: str) -> None:
        """Remove an upstream and its accounts. Raises NotFoundError when absent, ConflictError while a model
        names it."""
        ...

    async def delete_model(self, name: str) -> None:
        """Raises NotFoundError when absent, ConflictError while a plan's route or alias names it."""
        ...

    async def delete_plan(self, name: str) -> None:
        """Raises NotFoundError when absent. Keys on the plan stay (they answer 403 until moved)."""
        ...

    async def set_currency(self, currency: str) -> None:
        """The currency of every price and money budget (``Catalog.currency``)."""
        ...
