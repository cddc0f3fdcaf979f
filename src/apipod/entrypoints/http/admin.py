"""What every admin handler shares: wire errors as admin errors, and the catalog's reference checks."""

from __future__ import annotations

from apipod.dialects.catalog_wire import WireError
from apipod.domain.catalog import Catalog, Plan, UpstreamModel
from apipod.domain.errors import InvalidRequestError


def invalid(error: WireError) -> InvalidRequestError:
    """The admin error: the message says what is wrong, ``param`` is the path of the offending value."""
    message = f"{error.field}: {error.reason}" if error.field else error.reason
    return InvalidRequestError(message, param=error.field or None)


def check_model_references(model: UpstreamModel, known: Catalog) -> None:
    if model.upstream not in {u.name for u in known.upstreams}:
        raise WireError("provider", f"names unknown provider '{model.upstream}'")


def check_plan_references(plan: Plan, known: Catalog) -> None:
    models = {m.name for m in known.models}
    for i, route in enumerate(plan.routes):
        if route.model not in models:
            raise WireError(f"routes[{i}].model", f"names unknown model '{route.model}'")
    for a, alias in enumerate(plan.aliases):
        for i, route in enumerate(alias.routes):
            if route.model not in models:
                raise WireError(f"aliases[{a}].routes[{i}].model", f"names unknown model '{route.model}'")
