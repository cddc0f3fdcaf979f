"""The Telemetry port's wiring: the pipeline reports each request once at its end (with the labels the
metrics need), failovers at the dispatcher, refusals where they are decided, waits in the queue."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import attrs

from apipod.application.chat_pipeline import ChatPipeline
from apipod.application.ports import REQUEST_NOTES, FinishedRequest, RequestNotes, Telemetry
from apipod.domain.catalog import Alias, Catalog, Route
from apipod.domain.chat import Usage
from apipod.domain.errors import QuotaExceededError, RateLimitedError, UpstreamUnavailableError
from apipod.domain.usage import AttemptOutcome, UsageStatus
from tests.unit.application.catalogs import daily_requests, daily_tokens, two_upstreams
from tests.unit.application.fakes import World, make_world, text_events, text_result, user_request


@attrs.define
class FakeTelemetry:
    finished: list[tuple[FinishedRequest, str]] = attrs.field(factory=list)
    failovers: list[tuple[str, str, str]] = attrs.field(factory=list)
    waits: list[bool] = attrs.field(factory=list)
    refusals: list[tuple[str, str]] = attrs.field(factory=list)
    responses: list[tuple[str, int]] = attrs.field(factory=list)

    def request_finished(self, finished: FinishedRequest, dialect: str) -> None:
        self.finished.append((finished, dialect))

    def response_sent(self, dialect: str, status: int) -> None:
        self.responses.append((dialect, status))

    def failover(self, provider: str, model: str, reason: str) -> None:
        self.failovers.append((provider, model, reason))

    def queue_wait(self, seconds: float, *, served: bool) -> None:
        assert seconds >= 0
        self.waits.append(served)

    def refused(self, plan: str, reason: str) -> None:
        self.refusals.append((plan, reason))


async def _world(
    catalog: Catalog | None = None, governance: dict[str, Any] | None = None, **shape: Any
) -> tuple[World, FakeTelemetry, str]:
    fake = FakeTelemetry()
    world = await make_world(catalog or two_upstreams(**shape), replace={Telemetry: fake}, **(governance or {}))
    key = (await world.gateway.issue_key(name="alice", plan="pro")).plaintext
    return world, fake, key


async def test_a_served_request_is_reported_once_with_its_row_and_the_callers_dialect() -> None:
    world, fake, key = await _world()
    world.upstream.script("a", text_result(usage=Usage(input_tokens=10, output_tokens=5, reasoning_tokens=2)))
    notes = RequestNotes("req_given", "openai")
    token = REQUEST_NOTES.set(notes)
    try:
        await world.gateway.complete(key, user_request(model="claude-whatever"), request_id="req_given")
    finally:
        REQUEST_NOTES.reset(token)
    [(finished, dialect)] = fake.finished
    assert dialect == "openai"
    assert notes.finished is finished  # left for the access log
    assert (finished.request_id, finished.plan, finished.route, finished.requested_model) == (
        "req_given",
        "pro",
        "default",  # never the raw model string
        "claude-whatever",
    )
    assert (finished.provider, finished.model, finished.account) == ("up1", "a", "up1/#0")
    assert finished.status is UsageStatus.SUCCESS
    assert (finished.usage.input_tokens, finished.usage.reasoning_tokens) == (10, 2)
    assert [a.outcome for a in finished.attempts] == [AttemptOutcome.SERVED]
    assert finished.ttft is None and finished.duration >= 0  # a whole answer: no first token of its own
    [row] = world.usage.records()
    assert finished.key_id == row.key_id
    assert fake.failovers == [] and fake.refusals == []


async def test_an_alias_the_client_named_is_the_route_label() -> None:
    catalog = two_upstreams()
    plan = attrs.evolve(catalog.plans[0], aliases=(Alias("fast", (Route("b", 1),)),))
    world, fake, key = await _world(catalog=attrs.evolve(catalog, plans=(plan,)))
    await world.gateway.complete(key, user_request(model="fast"))
    [(finished, dialect)] = fake.finished
    assert (finished.route, finished.provider, finished.model, dialect) == ("fast", "up2", "b", "")


async def test_a_failover_is_reported_by_reason_and_the_request_once() -> None:
    world, fake, key = await _world()
    world.upstream.script("a", UpstreamUnavailableError("down", upstream="up1"))
    await world.gateway.complete(key, user_request())
    assert fake.failovers == [("up1", "a", "UpstreamUnavailableError")]
    [(finished, _)] = fake.finished
    assert finished.status is UsageStatus.SUCCESS
    assert finished.attempts[0].outcome is AttemptOutcome.FAILED


async def test_a_spent_budget_is_a_refusal_and_a_finished_request() -> None:
    world, fake, key = await _world(budgets=daily_requests(1))
    await world.gateway.complete(key, user_request())
    try:
        await world.gateway.complete(key, user_request())
        raise AssertionError("the budget was not enforced")
    except QuotaExceededError:
        pass
    assert fake.refusals == [("pro", "budget")]
    assert [f.status for f, _ in fake.finished] == [UsageStatus.SUCCESS, UsageStatus.QUOTA_EXCEEDED]
    assert fake.finished[1][0].provider == ""


async def test_a_key_over_its_rate_is_refused_before_it_is_accounted() -> None:
    world, fake, key = await _world(plan_rpm=1)
    await world.gateway.complete(key, user_request())
    try:
        await world.gateway.complete(key, user_request())
        raise AssertionError("the rate was not enforced")
    except RateLimitedError:
        pass
    assert fake.refusals == [("pro", "key_rpm")]
    assert len(fake.finished) == 1  # no usage row, no request_finished


async def test_a_stream_is_reported_at_its_end_and_counted_in_flight_until_then() -> None:
    world, fake, key = await _world()
    pipeline = await world.container.get(ChatPipeline)
    world.upstream.script("a", text_events(["one", "two"]))
    stream = await world.gateway.stream(key, user_request(stream=True))
    assert pipeline.in_flight == 1
    assert fake.finished == []  # nothing per chunk, nothing before the end
    events = [event async for event in stream]
    assert events
    assert pipeline.in_flight == 0
    [(finished, _)] = fake.finished
    assert finished.status is UsageStatus.SUCCESS and finished.ttft is not None
    assert finished.usage.output_tokens == 2


async def test_a_wait_in_the_queue_is_reported_with_whether_it_was_served() -> None:
    world, fake, key = await _world(plan_concurrency=1, governance={"max_queue": 4, "queue_wait_seconds": 5})
    world.upstream.script("a", text_events(["held"]))
    holder = await world.gateway.stream(key, user_request(stream=True))  # the key's one slot is taken
    waiting = asyncio.create_task(world.gateway.complete(key, user_request()))
    await asyncio.sleep(0.02)
    assert not waiting.done() and fake.waits == []
    _ = [event async for event in holder]  # frees the slot
    await waiting
    assert fake.waits == [True]


async def test_an_answer_sent_first_takes_the_row_and_the_report_and_nothing_the_next_request_needs() -> None:
    """``after_answer`` (what the HTTP layer passes): the quota is settled and the slots are free when the call
    returns; the usage row and the telemetry report wait, once each, for the caller's answer to be out."""
    world, fake, key = await _world(budgets=daily_tokens(60), plan_concurrency=1)
    usage = Usage(input_tokens=10, output_tokens=5)
    world.upstream.script("a", text_result(usage=usage), text_result(usage=Usage(input_tokens=3, output_tokens=2)))
    later: list[Callable[[], Awaitable[None]]] = []
    await world.gateway.complete(key, user_request(max_tokens=40), after_answer=later.append)
    assert len(later) == 1
    assert world.usage.records() == [] and fake.finished == []
    principal = await world.gateway.authenticate(key)
    [standing] = await world.gateway.budgets(principal)
    assert standing.used == 15  # settled at the real spend: the hold of 40 output tokens is gone
    # The next request is admitted (one concurrent request allowed) and its hold of 40 fits beside the first's
    # spend (it would not beside the first's hold), before the first's row is written.
    await world.gateway.complete(key, user_request(max_tokens=40))
    assert [row.usage.output_tokens for row in world.usage.records()] == [2]
    await later.pop()()
    assert sorted(row.usage.output_tokens for row in world.usage.records()) == [2, 5]
    assert sorted(f.usage.output_tokens for f, _ in fake.finished) == [2, 5]
