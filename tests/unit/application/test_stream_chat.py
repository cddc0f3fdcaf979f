from __future__ import annotations

import asyncio
import contextlib

import pytest

from apipod.domain.catalog import ModelLimits
from apipod.domain.chat import Usage
from apipod.domain.errors import UpstreamOverloadedError
from apipod.domain.limits import (
    GATEWAY_CONCURRENCY,
    LimitKind,
    account_cooldown,
    key_concurrency,
    model_limit,
)
from apipod.domain.stream import Finished, MessageStarted, StreamFailed, TextDelta
from tests.unit.application.catalogs import daily_tokens, two_upstreams
from tests.unit.application.fakes import make_world, text_events, user_request


async def test_events_pass_through_and_usage_is_settled_from_the_upstream_report() -> None:
    world = await make_world(two_upstreams(budgets=daily_tokens(100_000)))
    issued = await world.gateway.issue_key(name="alice", plan="pro")
    world.upstream.script("a", text_events(["Hello", " world"], Usage(input_tokens=20, output_tokens=2)))
    events = [e async for e in await world.gateway.stream(issued.plaintext, user_request(model="x", stream=True))]
    assert isinstance(events[0], MessageStarted) and events[0].model == "x"
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hello", " world"]
    assert isinstance(events[-1], Finished)
    [row] = world.usage.records()
    assert (row.status, row.usage.input_tokens, row.usage.output_tokens) == ("success", 20, 2)
    assert row.ttft_ms is not None
    [use] = await world.ledger.usage(key_id=issued.key.id, budgets=daily_tokens(100_000), now=world.clock.now())
    assert use.tokens == 22


async def test_failure_before_the_first_event_fails_over() -> None:
    world = await make_world(two_upstreams())
    key = (await world.gateway.issue_key(name="alice", plan="pro")).plaintext
    world.upstream.script("a", UpstreamOverloadedError("overloaded"), text_events(["ok"]))
    events = [e async for e in await world.gateway.stream(key, user_request(stream=True))]
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["ok"]
    assert len(world.upstream.calls) == 2


async def test_failure_after_the_first_event_ends_the_stream_in_band_without_retry() -> None:
    world = await make_world(two_upstreams())
    key = (await world.gateway.issue_key(name="alice", plan="pro")).plaintext
    world.upstream.script("a", [MessageStarted(), TextDelta("par"), ConnectionResetError("gone")])
    events = [e async for e in await world.gateway.stream(key, user_request(stream=True))]
    assert isinstance(events[-1], StreamFailed)
    assert len(world.upstream.calls) == 1
    [row] = world.usage.records()
    assert row.status == "upstream_error"
    assert row.usage.output_tokens >= 1  # what was relayed is charged, estimated


async def test_client_going_away_closes_the_upstream_and_settles_once() -> None:
    world = await make_world(two_upstreams(budgets=daily_tokens(100_000), plan_concurrency=1))
    issued = await world.gateway.issue_key(name="alice", plan="pro")
    world.upstream.script("a", text_events(["w"] * 100))
    stream = await world.gateway.stream(issued.plaintext, user_request(stream=True))
    seen = 0
    async for event in stream:
        seen += isinstance(event, TextDelta)
        if seen == 10:
            break
    await stream.aclose()  # type: ignore[attr-defined]
    assert world.upstream.closed_streams == 1
    [row] = world.usage.records()
    assert row.status == "cancelled"
    assert row.usage.output_tokens == 2  # 10 one-char words, estimated at 4 chars a token
    assert await world.limits.held(key_concurrency(issued.key.id)) == 0
    [use] = await world.ledger.usage(key_id=issued.key.id, budgets=daily_tokens(100_000), now=world.clock.now())
    assert use.tokens == row.usage.total_tokens


async def test_cancellation_mid_stream_releases_every_slot() -> None:
    world = await make_world(two_upstreams(plan_concurrency=2), max_concurrent_requests=5, model_concurrency_limit=3)
    key = (await world.gateway.issue_key(name="alice", plan="pro")).plaintext
    gate = asyncio.Event()

    async def consume() -> None:
        stream = await world.gateway.stream(key, user_request(stream=True))
        async with contextlib.aclosing(stream):  # type: ignore[type-var]
            async for _ in stream:
                await gate.wait()

    world.upstream.script("a", text_events(["a", "b"]), text_events(["c", "d"]))
    tasks = [asyncio.create_task(consume()) for _ in range(2)]
    await asyncio.sleep(0.01)
    assert await world.limits.held(GATEWAY_CONCURRENCY) == 2
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for lease in (
        GATEWAY_CONCURRENCY,
        model_limit(LimitKind.MODEL_CONCURRENCY, "a"),
        model_limit(LimitKind.MODEL_CONCURRENCY, "b"),
    ):
        assert await world.limits.held(lease) == 0, lease
    assert {r.status for r in world.usage.records()} == {"cancelled"}


@pytest.mark.parametrize("n", [1, 3])
async def test_key_concurrency_queue_times_out_with_429(n: int) -> None:
    from apipod.domain.errors import RateLimitedError

    world = await make_world(two_upstreams(plan_concurrency=n), queue_wait_seconds=0.05)
    key = (await world.gateway.issue_key(name="alice", plan="pro")).plaintext
    streams = []
    for _ in range(n):
        world.upstream.script("a", text_events(["x"]))
        streams.append(await world.gateway.stream(key, user_request(stream=True)))
    with pytest.raises(RateLimitedError) as caught:
        await world.gateway.complete(key, user_request())
    assert caught.value.retry_after is not None
    for stream in streams:
        await stream.aclose()  # type: ignore[attr-defined]
    await world.gateway.complete(key, user_request())


async def test_key_rpm_is_429_with_retry_after() -> None:
    from apipod.domain.errors import RateLimitedError

    world = await make_world(two_upstreams(plan_rpm=2))
    key = (await world.gateway.issue_key(name="alice", plan="pro")).plaintext
    await world.gateway.complete(key, user_request())
    world.clock.advance(10)
    await world.gateway.complete(key, user_request())
    with pytest.raises(RateLimitedError) as caught:
        await world.gateway.complete(key, user_request())
    assert caught.value.retry_after == pytest.approx(50, abs=0.01)


async def test_an_abandoned_stream_is_closed_by_the_event_loop_when_collected() -> None:
    world = await make_world(two_upstreams())
    key = (await world.gateway.issue_key(name="alice", plan="pro")).plaintext
    world.upstream.script("a", text_events(["a", "b", "c"]))

    async def consume_one() -> None:
        stream = await world.gateway.stream(key, user_request(stream=True))
        await anext(stream)

    await consume_one()
    for _ in range(5):
        await asyncio.sleep(0)
    assert world.upstream.closed_streams == 1
    assert [r.status for r in world.usage.records()] == ["cancelled"]


async def test_a_request_waits_in_the_queue_for_a_model_slot_then_is_served() -> None:
    world = await make_world(two_upstreams(limits_a=ModelLimits(max_concurrency=1)), queue_wait_seconds=2.0)
    world.upstream.scripts.clear()
    key = (await world.gateway.issue_key(name="alice", plan="pro")).plaintext
    # Only model "a" in this plan's mix matters: make "b" unusable so the queue is the only way.
    await world.limits.cool_down(account_cooldown("up2", 0), 3600)
    world.upstream.script("a", text_events(["first"]), text_events(["second"]))
    holder = await world.gateway.stream(key, user_request(stream=True))

    async def release_soon() -> None:
        await asyncio.sleep(0.05)
        await holder.aclose()  # type: ignore[attr-defined]

    releaser = asyncio.create_task(release_soon())
    started = asyncio.get_running_loop().time()
    events = [e async for e in await world.gateway.stream(key, user_request(stream=True))]
    waited = asyncio.get_running_loop().time() - started
    await releaser
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["second"]
    assert 0.04 < waited < 1.0


async def test_a_queued_request_gives_up_after_the_queue_wait() -> None:
    from apipod.domain.errors import NoCapacityError

    world = await make_world(two_upstreams(limits_a=ModelLimits(max_concurrency=1)), queue_wait_seconds=0.1)
    key = (await world.gateway.issue_key(name="alice", plan="pro")).plaintext
    await world.limits.cool_down(account_cooldown("up2", 0), 3600)
    world.upstream.script("a", text_events(["first"]))
    holder = await world.gateway.stream(key, user_request(stream=True))
    with pytest.raises(NoCapacityError) as caught:
        await world.gateway.complete(key, user_request())
    assert caught.value.retry_after == pytest.approx(1.0)
    await holder.aclose()  # type: ignore[attr-defined]
