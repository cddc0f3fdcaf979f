"""Prices, money budgets and the currency in the catalog's TOML and admin JSON: exact decimals, strict
validation naming the field."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest

from apipod.dialects.catalog_wire import WireError, catalog_from_document, converter, model_from_table, plan_from_table
from apipod.dialects.catalog_wire.catalog import currency_from_value
from apipod.dialects.catalog_wire.views import usage_view
from apipod.domain.catalog import ModelPrices
from apipod.domain.quota import Budget, Window, WindowUnit
from apipod.domain.usage import UsageRecord

TOML = """
currency = "EUR"

[[providers]]
name = "mock"
type = "mock"

[[models]]
name = "mini"
provider = "mock"
input_price = 0.15
output_price = "0.60"
cache_read_price = 1
cache_write_price = 0.1875

[[plans]]
name = "metered"
routes = [{ model = "mini", weight = 1 }]
budgets = [{ window = "day", cost = 25.0 }, { window = "month", cost = "300.10", tokens = 1000 }]
"""


def test_toml_prices_and_money_budgets_are_read_exactly() -> None:
    catalog = catalog_from_document(tomllib.loads(TOML))

    assert catalog.currency == "EUR"
    assert catalog.models[0].prices == ModelPrices(
        input=Decimal("0.15"), output=Decimal("0.60"), cache_read=Decimal(1), cache_write=Decimal("0.1875")
    )
    assert catalog.plans[0].budgets == (
        Budget(window=Window(WindowUnit.DAY), cost=Decimal("25.0")),
        Budget(window=Window(WindowUnit.MONTH), cost=Decimal("300.10"), tokens=1000),
    )


def test_the_currency_defaults_to_usd() -> None:
    assert catalog_from_document({}).currency == "USD"


def test_json_prices_are_read_exactly_and_answered_as_decimal_strings() -> None:
    model = model_from_table(orjson.loads(b'{"name": "m", "provider": "p", "input_price": 0.1, "output_price": 0.3}'))

    assert model.prices.input == Decimal("0.1")
    view = converter.unstructure(model)
    assert (view["input_price"], view["output_price"], view["cache_read_price"]) == ("0.1", "0.3", None)
    tiny = model_from_table({"name": "m", "provider": "p", "input_price": "0.0000000002"})
    assert converter.unstructure(tiny)["input_price"] == "0.0000000002"  # never "2E-10"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (-1, "from 0"),
        (True, "not a boolean"),
        ("nan", "finite"),
        ("Infinity", "finite"),
        ("1e9", "from 0 to"),
        ("cheap", "not a decimal"),
        ([1], "not a list"),
    ],
)
def test_a_bad_price_names_its_field(value: object, reason: str) -> None:
    with pytest.raises(WireError) as caught:
        model_from_table({"name": "m", "provider": "p", "output_price": value})

    assert caught.value.field == "output_price"
    assert reason in caught.value.reason


def test_a_bad_money_budget_names_its_path() -> None:
    with pytest.raises(WireError) as caught:
        plan_from_table({"name": "p", "routes": [{"model": "m"}], "budgets": [{"window": "day", "cost": -5}]})

    assert caught.value.field == "budgets[0].cost"


def test_a_budget_limiting_only_money_is_a_budget() -> None:
    plan = plan_from_table({"name": "p", "routes": [{"model": "m"}], "budgets": [{"window": "day", "cost": 5}]})

    assert plan.budgets[0].cost == 5
    with pytest.raises(WireError, match="tokens, requests, cost"):
        plan_from_table({"name": "p", "routes": [{"model": "m"}], "budgets": [{"window": "day"}]})


@pytest.mark.parametrize("value", ["usd", "EURO", "", 840, None])
def test_a_currency_is_a_three_letter_code(value: object) -> None:
    with pytest.raises(WireError) as caught:
        currency_from_value(value)

    assert caught.value.field == "currency"
    with pytest.raises(WireError) as in_toml:
        catalog_from_document({"currency": value})
    assert in_toml.value.field == "currency"


def test_a_currency_code_is_accepted() -> None:
    assert currency_from_value("JPY") == "JPY"


@pytest.mark.parametrize(
    ("cost", "shown"),
    [(Decimal("1E-7"), "0.0000001"), (Decimal("0E-10"), "0.0000000000"), (Decimal("12.5"), "12.5")],
)
def test_a_usage_rows_cost_is_positional_decimal_text(cost: Decimal, shown: str) -> None:
    """A tiny cost is '0.0000001', never '1E-7' (which CSV readers and JavaScript parse differently)."""
    row = UsageRecord(
        request_id="r", key_id="k", user="u", requested_model="m", timestamp=datetime(2026, 1, 1, tzinfo=UTC), cost=cost
    )
    assert usage_view(row)["cost"] == shown
