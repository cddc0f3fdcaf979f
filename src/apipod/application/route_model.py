"""RouteModel: which upstream models may serve a request, in the order to try them."""

from __future__ import annotations

import attrs

from apipod.application.ports import CatalogStore
from apipod.domain.catalog import Catalog, Plan, Route, Upstream, UpstreamModel, find_model, find_upstream
from apipod.domain.errors import ModelNotFoundError, StorageError


@attrs.frozen
class Candidate:
    model: UpstreamModel
    upstream: Upstream
    weight: float


class RouteModel:
    """Rules (docs/behaviour.md §1):
    - a requested model that is an alias of the plan routes to the alias's weighted mix;
    - anything else routes to the plan's default mix (clients send names like ``claude-sonnet-4-5``),
      unless the plan is ``strict_models``: then only the plan's own name and its aliases are accepted (404);
    - the dispatcher picks among the candidates by weight at each attempt, after setting aside those over
      their limits or cooling down.
    """

    def __init__(self, catalog: CatalogStore) -> None:
        self._catalog = catalog

    async def candidates(self, plan: Plan, requested: str) -> list[Candidate]:
        catalog = await self._catalog.snapshot()
        routes = self.routes(plan, requested)
        return resolve(catalog, routes)

    @staticmethod
    def routes(plan: Plan, requested: str) -> tuple[Route, ...]:
        alias = plan.alias(requested)
        if alias is not None:
            return alias.routes
        if plan.strict_models and requested != plan.name:
            offered = ", ".join(plan.model_names())
            raise ModelNotFoundError(f"The model '{requested}' does not exist for this key; available: {offered}.")
        return plan.routes


def resolve(catalog: Catalog, routes: tuple[Route, ...]) -> list[Candidate]:
    found = []
    for route in routes:
        model = find_model(catalog, route.model)
        upstream = find_upstream(catalog, model.upstream) if model is not None else None
        if model is None or upstream is None:
            raise StorageError(f"The catalog routes to '{route.model}', which is not configured.")
        found.append(Candidate(model=model, upstream=upstream, weight=route.weight))
    return found
