"""Exact cost arithmetic: per million tokens, cache prices falling back to the input price, rounded up to
the cost unit the ledgers count in."""

from __future__ import annotations

from decimal import Decimal

from apipod.domain.catalog import ModelPrices
from apipod.domain.chat import Usage
from apipod.domain.pricing import COST_QUANTUM, estimate_cost, from_units, to_units, usage_cost

PRICES = ModelPrices(input=Decimal("3"), output=Decimal("15"), cache_read=Decimal("0.3"), cache_write=Decimal("3.75"))


def test_each_kind_of_token_is_charged_at_its_own_price() -> None:
    usage = Usage(
        input_tokens=10_000,
        output_tokens=2_000,
        cached_input_tokens=6_000,
        cache_creation_input_tokens=1_000,
        reasoning_tokens=500,
    )

    # 3000 uncached x 3 + 6000 x 0.3 + 1000 x 3.75 + 2000 output (reasoning included) x 15, per million
    assert usage_cost(usage, PRICES) == Decimal("0.04455")


def test_missing_cache_prices_fall_back_to_the_input_price() -> None:
    usage = Usage(input_tokens=1_000_000, cached_input_tokens=500_000, cache_creation_input_tokens=100_000)

    assert usage_cost(usage, ModelPrices(input=Decimal("2"))) == Decimal("2")


def test_a_model_without_prices_costs_nothing() -> None:
    assert usage_cost(Usage(input_tokens=10**6, output_tokens=10**6), ModelPrices()) == 0


def test_cache_counts_larger_than_the_input_never_make_a_negative_charge() -> None:
    usage = Usage(input_tokens=10, cached_input_tokens=40)

    assert usage_cost(usage, PRICES) == Decimal("0.000012")  # 40 cached x 0.3 / 1e6


def test_amounts_are_exact_decimals_rounded_up_to_the_cost_unit() -> None:
    one_token = usage_cost(Usage(input_tokens=1), ModelPrices(input=Decimal("0.00015")))

    assert Decimal("1e-10") == COST_QUANTUM
    assert one_token == 2 * COST_QUANTUM  # 1.5e-10 rounds up: the books never count less than was spent
    assert usage_cost(Usage(input_tokens=7), ModelPrices(input=Decimal("0.15"))) == Decimal("0.00000105")


def test_units_round_trip_exactly() -> None:
    for amount in (Decimal("0"), Decimal("0.0000000001"), Decimal("25"), Decimal("12345678.9876543210")):
        assert from_units(to_units(amount)) == amount
    assert to_units(Decimal("25")) == 250_000_000_000
    assert str(from_units(to_units(Decimal("25.0")))) == "25"


def test_the_estimate_prices_input_and_output_at_the_dearest_candidate() -> None:
    candidates = [
        ModelPrices(input=Decimal("3"), output=Decimal("4")),
        ModelPrices(input=Decimal("1"), output=Decimal("15")),
        ModelPrices(),
    ]

    assert estimate_cost(1_000, 100, candidates) == Decimal("0.0045")  # 1000 x 3 + 100 x 15
    assert estimate_cost(1_000, 100, []) == 0
