"""Cost accounting on the chat path: the row's cost at the routed model's prices, the plan on the row, a
money budget held at the dearest candidate's prices and settled at the real cost."""

from __future__ import annotations

from decimal import Decimal

import attrs
import pytest

from apipod.domain.catalog import Catalog, ModelPrices
from apipod.domain.chat import Usage
from apipod.domain.errors import QuotaExceededError
from apipod.domain.quota import Budget, Window, WindowUnit
from tests.unit.application.catalogs import two_upstreams
from tests.unit.application.fakes import make_world, text_events, text_result, user_request

DEAR = ModelPrices(input=Decimal("3"), output=Decimal("15"), cache_read=Decimal("0.3"))
CHEAP = ModelPrices(input=Decimal("0.15"), output=Decimal("0.6"))
DAY = Window(WindowUnit.DAY)


def priced(budgets: tuple[Budget, ...] = ()) -> Catalog:
    catalog = two_upstreams(budgets=budgets)
    a, b = catalog.models
    return attrs.evolve(catalog, models=(attrs.evolve(a, prices=DEAR), attrs.evolve(b, prices=CHEAP)))


async def test_the_usage_row_records_the_cost_at_the_routed_models_prices_and_the_plan() -> None:
    world = await make_world(priced())
    key = (await world.gateway.issue_key(name="alice", plan="pro")).plaintext
    usage = Usage(input_tokens=1000, output_tokens=200, cached_input_tokens=400, reasoning_tokens=50)
    world.upstream.script("a", text_result(usage=usage))

    await world.gateway.complete(key, user_request())

    (row,) = world.usage.records()
    assert row.routed_model == "a"
    assert row.plan == "pro"
    # 600 uncached x 3 + 400 cached x 0.3 + 200 output x 15, per million
    assert row.cost == Decimal("0.00492")


async def test_a_price_change_does_not_rewrite_earlier_rows() -> None:
    world = await make_world(priced())
    key = (await world.gateway.issue_key(name="alice", plan="pro")).plaintext
    world.upstream.script(
        "a", text_result(usage=Usage(input_tokens=1_000_000)), text_result(usage=Usage(input_tokens=1_000_000))
    )
    await world.gateway.complete(key, user_request())

    catalog = priced()
    await world.gateway.apply_catalog(
        attrs.evolve(catalog, models=(attrs.evolve(catalog.models[0], prices=ModelPrices(input=Decimal("5"))),))
    )
    await world.gateway.complete(key, user_request())

    assert [r.cost for r in world.usage.records()] == [Decimal("3"), Decimal("5")]


async def test_a_money_budget_holds_the_dearest_candidates_prices_while_a_request_runs() -> None:
    world = await make_world(priced((Budget(window=DAY, cost=Decimal("1")),)))
    key = (await world.gateway.issue_key(name="alice", plan="pro")).plaintext
    world.upstream.script("a", text_events(["held"], usage=Usage(input_tokens=10, output_tokens=1)))

    stream = await world.gateway.stream(key, user_request(stream=True, max_tokens=100))
    principal = await world.gateway.authenticate(key)
    (held,) = await world.gateway.budgets(principal)
    async for _ in stream:
        pass
    (settled,) = await world.gateway.budgets(principal)

    # input estimate 1 token x 3 + 100 output tokens x 15 (both the dearest of the plan's two models)
    assert (held.unit, held.limit, held.used) == ("cost", Decimal("1"), Decimal("0.001503"))
    assert held.remaining == Decimal("0.998497")
    assert settled.used == Decimal("0.000045")  # 10 x 3 + 1 x 15, per million: the real cost


async def test_a_money_budget_stops_the_key_at_its_limit() -> None:
    # each request holds (1 x 3 + 100 x 15) / 1e6 = 0.001503 and spends exactly that
    world = await make_world(priced((Budget(window=DAY, cost=Decimal("0.006012")),)))
    key = (await world.gateway.issue_key(name="alice", plan="pro")).plaintext
    world.upstream.default = lambda call: text_result(usage=Usage(input_tokens=1, output_tokens=100))

    for _ in range(4):
        await world.gateway.complete(key, user_request(max_tokens=100))
    with pytest.raises(QuotaExceededError) as caught:
        await world.gateway.complete(key, user_request(max_tokens=100))

    assert caught.value.window == "day"
    principal = await world.gateway.authenticate(key)
    (standing,) = await world.gateway.budgets(principal)
    assert (standing.used, standing.remaining) == (Decimal("0.006012"), Decimal(0))
    assert sum(r.cost for r in world.usage.records()) == Decimal("0.006012")
