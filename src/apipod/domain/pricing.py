"""What tokens cost: exact decimal arithmetic on the catalog's per-million prices.

Every amount is rounded up to ``COST_QUANTUM`` (10^-10 of the currency), so the ledgers can count money as
integers of that unit (``to_units``) and a usage row, its ledger entry and a sum of rows always agree.
"""

from __future__ import annotations

import decimal
from collections.abc import Iterable
from decimal import Decimal

from apipod.domain.catalog import ModelPrices
from apipod.domain.chat import Usage

COST_PLACES = 10
COST_QUANTUM = Decimal(1).scaleb(-COST_PLACES)
PER_TOKENS = Decimal(1_000_000)
_ZERO = Decimal(0)
_ONE = Decimal(1)
_CONTEXT = decimal.Context(prec=60, rounding=decimal.ROUND_CEILING)


def rounded(amount: Decimal) -> Decimal:
    """``amount`` rounded up to the cost unit (the books never count less than was spent), written without
    trailing zeros (``0.0015``, ``25``), so it reads the same wherever it is shown."""
    return tidy(amount.quantize(COST_QUANTUM, context=_CONTEXT))


def tidy(amount: Decimal) -> Decimal:
    """The same value without trailing zeros or an exponent: ``0.0010000000`` -> ``0.001``, ``0E-10`` -> ``0``."""
    if amount == amount.to_integral_value():
        return amount.quantize(_ONE, context=_CONTEXT)
    return amount.normalize(_CONTEXT)


def to_units(amount: Decimal) -> int:
    """Integer count of cost units in ``amount`` (rounded up), as the ledgers store money."""
    if not amount:
        return 0  # PERF: an unpriced model's every request; skips three decimal operations
    return int(rounded(amount).scaleb(COST_PLACES, context=_CONTEXT))


def from_units(units: int) -> Decimal:
    return tidy(Decimal(units).scaleb(-COST_PLACES, context=_CONTEXT))


def usage_cost(usage: Usage, prices: ModelPrices) -> Decimal:
    """The cost of ``usage`` at ``prices``: uncached input (input minus cache reads and writes) at the input
    price, cache reads and writes at theirs (the input price when not given), output (reasoning included) at
    the output price; per million tokens, rounded up to the cost unit."""
    if prices.input is None and prices.output is None and prices.cache_read is None and prices.cache_write is None:
        return _ZERO  # PERF: an unpriced model costs nothing, without the decimal arithmetic
    cached = usage.cached_input_tokens
    created = usage.cache_creation_input_tokens
    uncached = max(usage.input_tokens - cached - created, 0)
    total = (
        uncached * _price(prices.input)
        + cached * _price(prices.cache_read, prices.input)
        + created * _price(prices.cache_write, prices.input)
        + usage.output_tokens * _price(prices.output)
    )
    return rounded(_CONTEXT.divide(total, PER_TOKENS))


def estimate_cost(input_tokens: int, output_tokens: int, candidates: Iterable[ModelPrices]) -> Decimal:
    """A conservative hold for a request whose model is not chosen yet: its input at the highest input price
    among ``candidates`` and its output at the highest output price."""
    prices = list(candidates)
    top_input = max((_price(p.input) for p in prices), default=_ZERO)
    top_output = max((_price(p.output) for p in prices), default=_ZERO)
    total = input_tokens * top_input + output_tokens * top_output
    return rounded(_CONTEXT.divide(total, PER_TOKENS))


def _price(price: Decimal | None, fallback: Decimal | None = None) -> Decimal:
    if price is not None:
        return price
    return fallback if fallback is not None else _ZERO
