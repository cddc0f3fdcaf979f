"""The chat pipeline's own rules: one wait queue, typed limit keys, holds released on their own, time to
first token, one request id."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from apipod.adapters.memory.system import FixedClock
from apipod.application.ports import LimitStore, UpstreamCall
from apipod.domain.catalog import Catalog, ModelLimits, Plan, Route, Upstream, UpstreamKind, UpstreamModel
from apipod.domain.chat import ChatRequest
from apipod.domain.errors import NoCapacityError, RateLimitedError
from apipod.domain.limits import (
    GATEWAY_CONCURRENCY,
    LimitKey,
    LimitKind,
    account_cooldown,
    key_concurrency,
    model_limit,
    pair_cooldown,
)
from apipod.domain.stream import StreamEvent
from tests.unit.application.catalogs import daily_tokens, two_upstreams
from tests.unit.application.fakes import (
    OneClientRegistry,
    ScriptedUpstream,
    make_world,
    text_events,
    text_result,
    user_request,
)


async def test_requests_waiting_in_admission_and_in_dispatch_share_one_queue_bound() -> None:
    world = await make_world(
        two_upstreams(limits_a=ModelLimits(max_concurrency=1), plan_concurrency=1), max_queue=1, queue_wait_seconds=5
    )
    first = (await world.gateway.issue_key(name="alice", plan="pro")).plaintext
    second = (await world.gateway.issue_key(name="bob", plan="pro")).plaintext
    await world.limits.cool_down(account_cooldown("up2", 0), 3600)  # only model "a" can serve
    world.upstream.script("a", text_events(["held"]))
    holder = await world.gateway.stream(first, user_request(stream=True))  # key slot and model slot taken
    waiting_in_admission = asyncio.create_task(world.gateway.complete(first, user_request()))
    await asyncio.sleep(0.02)
    assert not waiting_in_admission.done()

    # The queue holds one request already: a second one, wanting to wait for the model slot, is refused at once.
    with pytest.raises(NoCapacityError):
        await asyncio.wait_for(world.gateway.complete(second, user_request()), timeout=1.0)

    await holder.aclose()
    assert (await waiting_in_admission).text() == "hello"


async def test_a_model_named_like_a_gateway_limit_has_its_own_counter() -> None:
    catalog = Catalog(
        upstreams=(Upstream(name="u", kind=UpstreamKind.OPENAI),),
        models=(
            UpstreamModel(name="gateway", upstream="u", upstream_model="x", limits=ModelLimits(max_concurrency=1)),
        ),
        plans=(Plan(name="p", routes=(Route("gateway"),)),),
    )
    world = await make_world(catalog, max_concurrent_requests=1, queue_wait_seconds=0.05)
    key = (await world.gateway.issue_key(name="alice", plan="p")).plaintext

    assert (await world.gateway.complete(key, user_request())).text() == "hello"
    assert model_limit(LimitKind.MODEL_CONCURRENCY, "gateway") != GATEWAY_CONCURRENCY
    assert GATEWAY_CONCURRENCY.value != model_limit(LimitKind.MODEL_CONCURRENCY, "gateway").value


def test_limit_keys_escape_catalog_names() -> None:
    assert account_cooldown("a/b", 0).value != account_cooldown("a", 0).value
    assert pair_cooldown("a:1", 0, "m").value != pair_cooldown("a", 1, "0:m").value


class FailingRelease:
    """A LimitStore whose release of one key's leases fails."""

    def __init__(self, inner: LimitStore, broken: LimitKey) -> None:
        self._inner = inner
        self._broken = broken

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    async def release(self, key: LimitKey, lease_id: str) -> None:
        if key == self._broken:
            raise ConnectionError("limit store down")
        await self._inner.release(key, lease_id)


async def test_a_failing_release_skips_no_other_hold() -> None:
    world = await make_world(
        two_upstreams(limits_a=ModelLimits(max_concurrency=2), plan_concurrency=2, budgets=daily_tokens(10_000)),
        max_concurrent_requests=5,
    )
    issued = await world.gateway.issue_key(name="alice", plan="pro")
    # Swap the store the admission and dispatch use for one whose gateway-lease release fails.
    from apipod.application.admit_request import AdmitRequest
    from apipod.application.dispatch import Dispatcher

    admit = await world.container.get(AdmitRequest)
    dispatcher = await world.container.get(Dispatcher)
    broken = FailingRelease(world.limits, GATEWAY_CONCURRENCY)
    admit._limits = broken  # type: ignore[assignment]
    dispatcher._limits = broken  # type: ignore[assignment]

    await world.gateway.complete(issued.plaintext, user_request())

    assert await world.limits.held(GATEWAY_CONCURRENCY) == 1  # the failed release: left to expire
    assert await world.limits.held(key_concurrency(issued.key.id)) == 0
    assert await world.limits.held(model_limit(LimitKind.MODEL_CONCURRENCY, "a")) == 0
    (use,) = await world.ledger.usage(key_id=issued.key.id, budgets=daily_tokens(10_000), now=world.clock.now())
    assert use.tokens == 15  # settled to the real usage, not left held
    assert len(world.usage.records()) == 1


async def test_a_queued_request_that_is_cancelled_gives_every_hold_back() -> None:
    world = await make_world(
        two_upstreams(limits_a=ModelLimits(max_concurrency=1), budgets=daily_tokens(10_000)),
        max_concurrent_requests=5,
        queue_wait_seconds=5,
    )
    await world.limits.cool_down(account_cooldown("up2", 0), 3600)
    issued = await world.gateway.issue_key(name="alice", plan="pro")
    world.upstream.script("a", text_events(["held"]))
    holder = await world.gateway.stream(issued.plaintext, user_request(stream=True))
    queued = asyncio.create_task(world.gateway.complete(issued.plaintext, user_request()))
    await asyncio.sleep(0.02)
    assert await world.limits.held(GATEWAY_CONCURRENCY) == 2

    queued.cancel()
    with pytest.raises(asyncio.CancelledError):
        await queued

    assert await world.limits.held(GATEWAY_CONCURRENCY) == 1  # only the holder's
    (use,) = await world.ledger.usage(key_id=issued.key.id, budgets=daily_tokens(10_000), now=world.clock.now())
    held_by_holder = use.tokens
    await holder.aclose()
    (use,) = await world.ledger.usage(key_id=issued.key.id, budgets=daily_tokens(10_000), now=world.clock.now())
    assert use.tokens <= held_by_holder  # the cancelled request's hold was released, not left to expire
    statuses = sorted(r.status for r in world.usage.records())
    assert statuses == ["cancelled", "cancelled"]
    assert await world.limits.held(GATEWAY_CONCURRENCY) == 0


class SlowFirstEvent(ScriptedUpstream):
    """Takes two (fake) seconds to its first event."""

    clock: FixedClock | None = None

    async def stream(self, call: UpstreamCall, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        assert self.clock is not None
        self.clock.advance(2.0)
        async for event in super().stream(call, request):
            yield event


async def test_time_to_first_token_is_taken_when_the_upstream_answers() -> None:
    slow = SlowFirstEvent()
    slow.script("a", text_events(["one", "two"]))
    world = await make_world(two_upstreams(), registry=OneClientRegistry(slow))
    slow.clock = world.clock
    key = (await world.gateway.issue_key(name="alice", plan="pro")).plaintext

    stream = await world.gateway.stream(key, user_request(stream=True), request_id="req_abc")
    world.clock.advance(5.0)  # the client takes its time to read
    async for _ in stream:
        pass

    (row,) = world.usage.records()
    assert row.ttft_ms == pytest.approx(2000.0)
    assert row.request_id == "req_abc"


async def test_a_refused_admission_writes_no_usage_row_and_holds_nothing() -> None:
    world = await make_world(two_upstreams(plan_rpm=1))
    issued = await world.gateway.issue_key(name="alice", plan="pro")
    world.upstream.script("a", text_result("one"))
    await world.gateway.complete(issued.plaintext, user_request())
    with pytest.raises(RateLimitedError):
        await world.gateway.complete(issued.plaintext, user_request())
    assert len(world.usage.records()) == 1
    assert await world.limits.held(key_concurrency(issued.key.id)) == 0
