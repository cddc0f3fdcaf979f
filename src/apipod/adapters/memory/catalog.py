"""CatalogStore in dicts, keyed by name in insertion order."""

from __future__ import annotations

import attrs

from apipod.application.ports import CatalogStore
from apipod.domain.catalog import Account, Catalog, Plan, Upstream, UpstreamModel
from apipod.domain.errors import ConflictError, NotFoundError


def routed_models(plan: Plan) -> set[str]:
    """Every model name a plan routes to, by default or through an alias."""
    return {r.model for r in plan.routes} | {r.model for a in plan.aliases for r in a.routes}


class InMemoryCatalogStore(CatalogStore):
    """The snapshot is rebuilt on each write and shared until the next one (values are frozen)."""

    def __init__(self, catalog: Catalog | None = None) -> None:
        self._upstreams: dict[str, Upstream] = {}
        self._models: dict[str, UpstreamModel] = {}
        self._plans: dict[str, Plan] = {}
        self._currency = "USD"
        self._snapshot = Catalog()
        if catalog is not None:
            self._currency = catalog.currency
            self._upstreams = {u.name: u for u in catalog.upstreams}
            self._models = {m.name: m for m in catalog.models}
            self._plans = {p.name: p for p in catalog.plans}
            self._refresh()

    async def snapshot(self) -> Catalog:
        return self._snapshot

    async def upsert_upstream(self, upstream: Upstream) -> None:
        self._upstreams[upstream.name] = upstream
        self._refresh()

    async def upsert_model(self, model: UpstreamModel) -> None:
        if model.upstream not in self._upstreams:
            raise NotFoundError(f"Model '{model.name}' names an unknown upstream '{model.upstream}'.")
        self._models[model.name] = model
        self._refresh()

    async def upsert_plan(self, plan: Plan) -> None:
        missing = sorted(routed_models(plan) - self._models.keys())
        if missing:
            raise NotFoundError(f"Plan '{plan.name}' routes to unknown models: {', '.join(missing)}.")
        self._plans[plan.name] = plan
        self._refresh()

    async def add_account(self, upstream: str, secret: str) -> Account:
        current = self._upstreams.get(upstream)
        if current is None:
            raise NotFoundError(f"No upstream named '{upstream}'.")
        index = max((a.index for a in current.accounts), default=-1) + 1
        account = Account(index, secret)
        self._upstreams[upstream] = attrs.evolve(current, accounts=(*current.accounts, account))
        self._refresh()
        return account

    async def delete_upstream(self, name: str) -> None:
        if name not in self._upstreams:
            raise NotFoundError(f"No upstream named '{name}'.")
        users = sorted(m.name for m in self._models.values() if m.upstream == name)
        if users:
            raise ConflictError(f"Upstream '{name}' is still used by models: {', '.join(users)}.")
        del self._upstreams[name]
        self._refresh()

    async def delete_model(self, name: str) -> None:
        if name not in self._models:
            raise NotFoundError(f"No model named '{name}'.")
        users = sorted(p.name for p in self._plans.values() if name in routed_models(p))
        if users:
            raise ConflictError(f"Model '{name}' is still routed to by plans: {', '.join(users)}.")
        del self._models[name]
        self._refresh()

    async def delete_plan(self, name: str) -> None:
        if self._plans.pop(name, None) is None:
            raise NotFoundError(f"No plan named '{name}'.")
        self._refresh()

    async def set_currency(self, currency: str) -> None:
        self._currency = currency
        self._refresh()

    def _refresh(self) -> None:
        self._snapshot = Catalog(
            upstreams=tuple(self._upstreams.values()),
            models=tuple(self._models.values()),
            plans=tuple(self._plans.values()),
            currency=self._currency,
        )
