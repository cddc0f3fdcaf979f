from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from apipod.adapters.memory.catalog import InMemoryCatalogStore
from apipod.adapters.memory.limits import InMemoryLimitStore
from apipod.adapters.memory.system import FixedClock, SeededRandomness
from apipod.application.dispatch import Dispatcher
from apipod.application.route_model import RouteModel
from apipod.application.settings import GovernanceSettings
from apipod.application.wait_queue import WaitQueue
from apipod.domain.catalog import Alias, Plan, Route, Upstream, UpstreamKind, UpstreamModel
from apipod.domain.errors import ModelNotFoundError, UpstreamRateLimitedError
from apipod.domain.routing import weighted_pick
from apipod.domain.usage import AttemptOutcome
from tests.unit.application.fakes import OneClientRegistry, ScriptedUpstream

UPSTREAM = Upstream(name="u", kind=UpstreamKind.MOCK)
MODELS = tuple(UpstreamModel(name=n, upstream="u", upstream_model=n) for n in ("a", "b", "c"))
PLAN = Plan(
    name="mix",
    routes=(Route("a", 70), Route("b", 30)),
    aliases=(Alias("only-c", (Route("c", 1),)),),
)


async def router() -> RouteModel:
    store = InMemoryCatalogStore()
    await store.upsert_upstream(UPSTREAM)
    for model in MODELS:
        await store.upsert_model(model)
    await store.upsert_plan(PLAN)
    return RouteModel(store)


async def test_alias_routes_to_its_own_mix() -> None:
    route = await router()
    assert [c.model.name for c in await route.candidates(PLAN, "only-c")] == ["c"]


async def test_any_other_name_routes_to_the_default_mix() -> None:
    route = await router()
    for name in ("mix", "claude-sonnet-4-5", "cursor-pro-sonnet"):
        assert [c.model.name for c in await route.candidates(PLAN, name)] == ["a", "b"]


async def test_strict_plan_answers_unknown_models_with_not_found() -> None:
    route = await router()
    strict = Plan(name="mix", routes=PLAN.routes, aliases=PLAN.aliases, strict_models=True)
    assert [c.model.name for c in await route.candidates(strict, "mix")] == ["a", "b"]
    with pytest.raises(ModelNotFoundError, match="only-c"):
        await route.candidates(strict, "gpt-4")


async def test_first_picks_follow_the_weights_and_failover_takes_the_other() -> None:
    route = await router()
    candidates = await route.candidates(PLAN, "mix")
    clock = FixedClock(datetime(2026, 1, 1, tzinfo=UTC))
    settings = GovernanceSettings()
    dispatcher = Dispatcher(
        OneClientRegistry(ScriptedUpstream()),
        InMemoryLimitStore(clock),
        SeededRandomness(42),
        WaitQueue(settings),
        settings,
    )
    firsts: Counter[str] = Counter()
    for _ in range(10_000):
        attempts = dispatcher.begin(candidates, tokens=1)
        slot = await dispatcher.next_slot(attempts, deadline=0.0)
        firsts[slot.call.model.name] += 1
        await dispatcher.finished(attempts, slot, None, AttemptOutcome.SERVED)
    assert 0.67 < firsts["a"] / 10_000 < 0.73
    attempts = dispatcher.begin(candidates, tokens=1)
    first = await dispatcher.next_slot(attempts, deadline=0.0)
    await dispatcher.failed(attempts, first, UpstreamRateLimitedError("busy", retry_after=30))
    second = await dispatcher.next_slot(attempts, deadline=0.0)
    assert {first.call.model.name, second.call.model.name} == {"a", "b"}


def test_weighted_pick_edges() -> None:
    items = [("x", 1.0), ("y", 0.0), ("z", 3.0)]
    assert weighted_pick(items, 0.0) == "x"
    assert weighted_pick(items, 0.2499) == "x"
    assert weighted_pick(items, 0.25) == "z"
    assert weighted_pick(items, 0.999999) == "z"
    assert weighted_pick([("only", 0.0)], 0.5) == "only"
    with pytest.raises(ValueError, match="nothing"):
        weighted_pick([], 0.5)
