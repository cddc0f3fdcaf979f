"""The catalog as TOML tables (or the admin API's JSON of one table) into domain objects."""

from __future__ import annotations

from typing import Any

from apipod.dialects.catalog_wire.converter import currency, read
from apipod.dialects.catalog_wire.errors import WireError
from apipod.dialects.catalog_wire.tables import CatalogDocument, ModelTable, ProviderTable
from apipod.domain.catalog import Catalog, Plan, Upstream, UpstreamModel


def catalog_from_document(document: Any) -> Catalog:
    """A whole catalog file, already parsed from TOML and with ``${VAR}`` expanded."""
    parsed = read(document, CatalogDocument)
    return Catalog(
        upstreams=tuple(p.to_upstream() for p in parsed.providers),
        models=parsed.models,
        plans=parsed.plans,
        currency=parsed.currency,
    )


def upstream_from_table(table: Any) -> Upstream:
    return read(table, ProviderTable).to_upstream()


def model_from_table(table: Any) -> UpstreamModel:
    return read(table, ModelTable).to_model()


def plan_from_table(table: Any) -> Plan:
    return read(table, Plan)


def currency_from_value(value: Any, field: str = "currency") -> str:
    """The catalog's currency from an admin body's field (a three-letter code). Raises WireError naming
    ``field``."""
    try:
        return currency(value)
    except ValueError as exc:
        raise WireError(field, str(exc)) from None
