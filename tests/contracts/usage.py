"""Behaviour every UsageLog must show. Subclass and provide an (async) ``log`` fixture that yields an empty
log."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal
from typing import Any

import attrs
import pytest

from apipod.application.ports import UsageLog
from apipod.domain.chat import Usage
from apipod.domain.usage import (
    Attempt,
    UsageBucket,
    UsageCursor,
    UsageFilter,
    UsageGroup,
    UsageRecord,
    UsageStatus,
)
from tests.contracts.builders import NOW, make_record


class UsageLogContract:
    @pytest.fixture
    def log(self) -> UsageLog:
        raise NotImplementedError("subclasses provide an empty UsageLog")

    async def test_a_recorded_row_comes_back_whole(self, log: UsageLog) -> None:
        record = make_record(
            "req_1",
            attempts=(
                Attempt(model="big", account="openai/#1", outcome="failed", reason="UpstreamUnavailableError"),
                Attempt(model="mini", account="openai/#0", outcome="served"),
            ),
        )

        await log.record(record)
        await log.flush()

        assert await log.query() == [record]

    async def test_a_failed_row_keeps_its_error_and_missing_ttft(self, log: UsageLog) -> None:
        record = make_record(
            "req_err",
            status="upstream_error",
            usage=Usage(),
            ttft_ms=None,
            error="upstream answered 503",
            routed_model="",
            upstream="",
            attempts=(),
        )

        await log.record(record)
        await log.flush()

        assert await log.query() == [record]

    async def test_query_sees_rows_without_an_explicit_flush(self, log: UsageLog) -> None:
        await log.record(make_record("req_1"))

        assert [r.request_id for r in await log.query()] == ["req_1"]

    async def test_query_is_newest_first(self, log: UsageLog) -> None:
        await log.record(make_record("req_b", timestamp=NOW + timedelta(seconds=5)))
        await log.record(make_record("req_c", timestamp=NOW + timedelta(minutes=1)))
        await log.record(make_record("req_a", timestamp=NOW))
        await log.flush()

        assert [r.request_id for r in await log.query()] == ["req_c", "req_b", "req_a"]

    async def test_query_filters_by_key(self, log: UsageLog) -> None:
        await log.record(make_record("req_1", key_id="key_1", timestamp=NOW))
        await log.record(make_record("req_2", key_id="key_2", timestamp=NOW + timedelta(seconds=1)))
        await log.record(make_record("req_3", key_id="key_1", timestamp=NOW + timedelta(seconds=2)))
        await log.flush()

        assert [r.request_id for r in await log.query(key_id="key_1")] == ["req_3", "req_1"]
        assert await log.query(key_id="key_9") == []

    async def test_query_since_includes_rows_at_that_moment(self, log: UsageLog) -> None:
        for i in range(4):
            await log.record(make_record(f"req_{i}", timestamp=NOW + timedelta(minutes=i)))
        await log.flush()

        since = await log.query(since=NOW + timedelta(minutes=2))

        assert [r.request_id for r in since] == ["req_3", "req_2"]

    async def test_query_combines_key_and_since(self, log: UsageLog) -> None:
        await log.record(make_record("req_1", key_id="key_1", timestamp=NOW))
        await log.record(make_record("req_2", key_id="key_2", timestamp=NOW + timedelta(minutes=1)))
        await log.record(make_record("req_3", key_id="key_1", timestamp=NOW + timedelta(minutes=2)))
        await log.flush()

        rows = await log.query(key_id="key_1", since=NOW + timedelta(seconds=30))

        assert [r.request_id for r in rows] == ["req_3"]

    async def test_query_limit_keeps_the_newest(self, log: UsageLog) -> None:
        for i in range(5):
            await log.record(make_record(f"req_{i}", timestamp=NOW + timedelta(seconds=i)))
        await log.flush()

        assert [r.request_id for r in await log.query(limit=2)] == ["req_4", "req_3"]

    async def test_an_empty_log_answers_an_empty_list(self, log: UsageLog) -> None:
        await log.flush()

        assert await log.query() == []

    async def test_concurrent_records_are_all_kept(self, log: UsageLog) -> None:
        await asyncio.gather(
            *(log.record(make_record(f"req_{i}", timestamp=NOW + timedelta(milliseconds=i))) for i in range(100))
        )
        await log.flush()

        rows = await log.query(limit=1000)

        assert len(rows) == 100
        assert rows[0].request_id == "req_99"
        assert rows[-1].request_id == "req_0"

    # -- cost, plan, search, summaries -------------------------------------------------------------------

    async def test_a_row_keeps_its_plan_and_exact_cost(self, log: UsageLog) -> None:
        record = attrs.evolve(make_record("req_1"), plan="gold", cost=Decimal("0.0000123457"))

        await log.record(record)

        assert await log.query() == [record]

    async def test_search_filters_by_every_field(self, log: UsageLog) -> None:
        rows = [
            row("a", key_id="key_1", plan="gold", requested_model="pro", routed_model="mini", upstream="openai/#0"),
            row("b", key_id="key_2", plan="gold", requested_model="pro", routed_model="big", upstream="anthropic/#1"),
            row(
                "c",
                key_id="key_1",
                plan="free",
                requested_model="fast",
                routed_model="mini",
                status="rejected",
                seconds=2,
            ),
            row("d", key_id="key_1", plan="gold", requested_model="pro", routed_model="mini", seconds=3600),
        ]
        for record in rows:
            await log.record(record)

        async def ids(**where: Any) -> list[str]:
            page = await log.search(UsageFilter(**where), limit=100)
            return [r.request_id for r in page.rows]

        assert await ids() == ["d", "c", "b", "a"]
        assert await ids(key_id="key_1") == ["d", "c", "a"]
        assert await ids(plan="gold") == ["d", "b", "a"]
        assert await ids(requested_model="fast") == ["c"]
        assert await ids(routed_model="big") == ["b"]
        assert await ids(provider="anthropic") == ["b"]
        assert await ids(provider="openai") == ["d", "c", "a"]
        assert await ids(provider="open") == []  # a provider's whole name, not a prefix
        assert await ids(status=UsageStatus.REJECTED) == ["c"]
        assert await ids(request_id="b") == ["b"]
        assert await ids(since=NOW + timedelta(seconds=2), until=NOW + timedelta(seconds=3600)) == ["c"]
        assert await ids(key_id="key_1", plan="gold", since=NOW) == ["d", "a"]

    async def test_search_pages_newest_first_through_equal_timestamps(self, log: UsageLog) -> None:
        for i in range(7):
            await log.record(row(f"r{i}", seconds=0 if i < 5 else 10))

        seen: list[str] = []
        after: UsageCursor | None = None
        pages = 0
        while True:
            page = await log.search(UsageFilter(), limit=3, after=after)
            assert len(page.row_ids) == len(page.rows)
            seen += [r.request_id for r in page.rows]
            pages += 1
            if page.next_cursor is None:
                break
            assert page.next_cursor.row_id == page.row_ids[-1]
            after = page.next_cursor

        assert pages == 3
        assert seen[:2] == ["r6", "r5"]  # newest first; equal times: the later row first
        assert seen[2:] == ["r4", "r3", "r2", "r1", "r0"]

    async def test_a_page_that_ends_the_rows_has_no_next_cursor(self, log: UsageLog) -> None:
        for i in range(3):
            await log.record(row(f"r{i}", seconds=i))

        page = await log.search(UsageFilter(), limit=3)

        assert [r.request_id for r in page.rows] == ["r2", "r1", "r0"]
        assert page.next_cursor is None

    async def test_summarize_adds_up_per_bucket_and_group(self, log: UsageLog) -> None:
        usage = Usage(input_tokens=100, output_tokens=50, cached_input_tokens=10, reasoning_tokens=5)
        for i, latency in enumerate((10.0, 20.0, 30.0, 40.0)):
            await log.record(row(f"g{i}", plan="gold", usage=usage, latency_ms=latency, cost=Decimal("0.001")))
        await log.record(row("f0", plan="free", status="upstream_error", latency_ms=7.0, cost=Decimal(0)))
        await log.record(row("f1", plan="free", status="cancelled", latency_ms=9.0, seconds=3600))

        summary = await log.summarize(UsageFilter(), group_by=UsageGroup.PLAN, bucket=UsageBucket.HOUR)

        hour = NOW.replace(minute=0)
        assert [(s.bucket_start, s.group) for s in summary] == [
            (hour, "free"),
            (hour, "gold"),
            (hour + timedelta(hours=1), "free"),
        ]
        free, gold, later = summary
        assert (gold.requests, gold.input_tokens, gold.output_tokens) == (4, 400, 200)
        assert (gold.cached_input_tokens, gold.reasoning_tokens, gold.cost, gold.errors) == (
            40,
            20,
            Decimal("0.004"),
            0,
        )
        assert gold.latency_p50_ms == pytest.approx(25.0)
        assert gold.latency_p95_ms == pytest.approx(38.5)  # percentile_cont: 30 + 0.85 x 10
        assert (free.requests, free.errors) == (1, 1)
        assert free.latency_p50_ms == pytest.approx(7.0)
        assert (later.requests, later.errors) == (1, 0)  # cancelled is not an error

    async def test_summarize_by_day_groups_by_provider_and_filters(self, log: UsageLog) -> None:
        await log.record(row("a", upstream="openai/#0", cost=Decimal("0.5")))
        await log.record(row("b", upstream="openai/#1", seconds=3600, cost=Decimal("0.25")))
        await log.record(row("c", upstream="anthropic/#0", key_id="key_2"))
        await log.record(row("d", upstream="openai/#0", seconds=86400))

        summary = await log.summarize(UsageFilter(key_id="key_1"), group_by=UsageGroup.PROVIDER, bucket=UsageBucket.DAY)

        day = NOW.replace(hour=0, minute=0)
        assert [(s.bucket_start, s.group, s.requests, s.cost) for s in summary] == [
            (day, "openai", 2, Decimal("0.75")),
            (day + timedelta(days=1), "openai", 1, Decimal("0.01")),
        ]

    async def test_summarize_groups_by_key_model_and_upstream_model(self, log: UsageLog) -> None:
        await log.record(row("a", key_id="key_1", requested_model="pro", routed_model="mini"))
        await log.record(row("b", key_id="key_2", requested_model="pro", routed_model="big"))

        async def groups(group_by: UsageGroup) -> list[str]:
            summary = await log.summarize(UsageFilter(), group_by=group_by, bucket=UsageBucket.DAY)
            return [s.group for s in summary]

        assert await groups(UsageGroup.KEY) == ["key_1", "key_2"]
        assert await groups(UsageGroup.MODEL) == ["pro"]
        assert await groups(UsageGroup.UPSTREAM_MODEL) == ["big", "mini"]

    async def test_an_empty_log_summarizes_to_nothing(self, log: UsageLog) -> None:
        assert await log.summarize(UsageFilter(), group_by=UsageGroup.KEY, bucket=UsageBucket.HOUR) == []

    async def test_backlog_is_empty_once_flushed(self, log: UsageLog) -> None:
        await log.record(row("a"))

        await log.flush()

        assert log.backlog() == 0


def row(
    request_id: str,
    *,
    seconds: int = 0,
    plan: str = "gold",
    cost: Decimal = Decimal("0.01"),
    **fields: Any,
) -> UsageRecord:
    """A usage row ``seconds`` after NOW."""
    return attrs.evolve(
        make_record(request_id, timestamp=NOW + timedelta(seconds=seconds), **fields), plan=plan, cost=cost
    )
