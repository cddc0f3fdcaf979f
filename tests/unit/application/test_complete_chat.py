from __future__ import annotations

import pytest

from apipod.domain.catalog import ModelLimits
from apipod.domain.chat import Usage
from apipod.domain.errors import (
    NoCapacityError,
    QuotaExceededError,
    UpstreamAuthError,
    UpstreamRateLimitedError,
    UpstreamRejectedError,
    UpstreamUnavailableError,
)
from apipod.domain.limits import (
    account_cooldown,
    pair_cooldown,
)
from tests.unit.application.catalogs import daily_requests, daily_tokens, two_upstreams
from tests.unit.application.fakes import make_world, text_result, user_request


async def test_answer_carries_the_requested_model_and_usage_is_recorded_exactly() -> None:
    world = await make_world(two_upstreams())
    key = (await world.gateway.issue_key(name="alice", plan="pro")).plaintext
    world.upstream.script("a", text_result("hi there", Usage(input_tokens=12, output_tokens=3, cached_input_tokens=4)))
    result = await world.gateway.complete(key, user_request(model="claude-sonnet-4-5"))
    assert result.text() == "hi there"
    assert result.model == "claude-sonnet-4-5"
    [row] = world.usage.records()
    assert (row.user, row.requested_model, row.routed_model, row.status) == (
        "alice",
        "claude-sonnet-4-5",
        "a",
        "success",
    )
    assert row.upstream == "up1/#0"
    assert (row.usage.input_tokens, row.usage.output_tokens, row.usage.cached_input_tokens) == (12, 3, 4)
    assert row.token_count == 15


async def test_accounts_of_an_upstream_are_used_in_turn() -> None:
    world = await make_world(two_upstreams())
    key = (await world.gateway.issue_key(name="alice", plan="pro")).plaintext
    for _ in range(4):
        await world.gateway.complete(key, user_request())
    picked = [(s.call.model.name, s.call.account.index) for s in world.upstream.calls]
    assert [a for m, a in picked if m == "a"][:4] == [0, 1, 0, 1]


async def test_a_server_error_fails_over_to_the_next_account_and_rests_the_failed_one() -> None:
    world = await make_world(two_upstreams())
    key = (await world.gateway.issue_key(name="alice", plan="pro")).plaintext
    world.upstream.script("a", UpstreamUnavailableError("boom", upstream="up1"), text_result("second"))
    result = await world.gateway.complete(key, user_request())
    assert result.text() == "second"
    calls = [(s.call.model.name, s.call.account.index) for s in world.upstream.calls]
    assert calls == [("a", 0), ("a", 1)]
    assert await world.limits.cooling(account_cooldown("up1", 0)) > 0
    [row] = world.usage.records()
    assert [a.summary for a in row.attempts] == ["failed: UpstreamUnavailableError", "served"]


async def test_rate_limited_pair_rests_for_the_upstreams_retry_after() -> None:
    world = await make_world(two_upstreams())
    key = (await world.gateway.issue_key(name="alice", plan="pro")).plaintext
    world.upstream.script("a", UpstreamRateLimitedError("slow down", retry_after=42.0))
    await world.gateway.complete(key, user_request())
    assert 41.9 < await world.limits.cooling(pair_cooldown("up1", 0, "a")) <= 42.0
    assert await world.limits.cooling(account_cooldown("up1", 0)) == 0


async def test_caller_fault_is_passed_on_without_failover() -> None:
    world = await make_world(two_upstreams())
    key = (await world.gateway.issue_key(name="alice", plan="pro")).plaintext
    world.upstream.script("a", UpstreamRejectedError("messages: bad", status=400))
    with pytest.raises(UpstreamRejectedError, match="bad"):
        await world.gateway.complete(key, user_request())
    assert len(world.upstream.calls) == 1
    [row] = world.usage.records()
    assert row.status == "rejected"


async def test_every_candidate_failing_is_503_and_costs_nothing() -> None:
    world = await make_world(two_upstreams(budgets=daily_requests(5)), max_attempts=5)
    issued = await world.gateway.issue_key(name="alice", plan="pro")
    down = UpstreamUnavailableError("refused")
    world.upstream.script("a", down, down)
    world.upstream.script("b", UpstreamAuthError("bad key"))
    with pytest.raises(UpstreamUnavailableError):
        await world.gateway.complete(issued.plaintext, user_request())
    assert len(world.upstream.calls) == 3
    [use] = await world.ledger.usage(key_id=issued.key.id, budgets=daily_requests(5), now=world.clock.now())
    assert (use.requests, use.tokens) == (0, 0)


async def test_every_candidate_limited_is_429_with_the_earliest_retry_after() -> None:
    world = await make_world(two_upstreams())
    key = (await world.gateway.issue_key(name="alice", plan="pro")).plaintext
    await world.limits.cool_down(pair_cooldown("up1", 0, "a"), 30)
    await world.limits.cool_down(pair_cooldown("up1", 1, "a"), 20)
    await world.limits.cool_down(account_cooldown("up2", 0), 50)
    with pytest.raises(NoCapacityError) as caught:
        await world.gateway.complete(key, user_request())
    assert caught.value.retry_after == pytest.approx(20, abs=0.01)
    assert world.upstream.calls == []


async def test_model_rpm_sets_the_candidate_aside_until_the_window_frees() -> None:
    world = await make_world(two_upstreams(limits_a=ModelLimits(rpm=2)))
    key = (await world.gateway.issue_key(name="alice", plan="pro")).plaintext
    for _ in range(3):
        await world.gateway.complete(key, user_request())
    assert [s.call.model.name for s in world.upstream.calls] == ["a", "a", "b"]
    world.clock.advance(61)
    await world.gateway.complete(key, user_request())
    assert world.upstream.calls[-1].call.model.name == "a"


async def test_request_budget_admits_exactly_its_worth() -> None:
    world = await make_world(two_upstreams(budgets=daily_requests(3)))
    key = (await world.gateway.issue_key(name="alice", plan="pro")).plaintext
    for _ in range(3):
        await world.gateway.complete(key, user_request())
    with pytest.raises(QuotaExceededError) as caught:
        await world.gateway.complete(key, user_request())
    assert caught.value.window == "day"
    assert caught.value.retry_after == pytest.approx(12 * 3600, abs=1)
    assert [r.status for r in world.usage.records()].count("quota_exceeded") == 1


async def test_token_budget_is_settled_with_real_usage() -> None:
    world = await make_world(two_upstreams(budgets=daily_tokens(10_000)))
    issued = await world.gateway.issue_key(name="alice", plan="pro")
    world.upstream.script("a", text_result("x", Usage(input_tokens=100, output_tokens=23)))
    await world.gateway.complete(issued.plaintext, user_request(max_tokens=2000))
    [use] = await world.ledger.usage(key_id=issued.key.id, budgets=daily_tokens(10_000), now=world.clock.now())
    assert use.tokens == 123
