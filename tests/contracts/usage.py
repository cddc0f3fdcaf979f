"""Behaviour every UsageLog must show. Subclass and provide an (async) ``log`` fixture that yields an empty
log."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from apipod.application.ports import UsageLog
from apipod.domain.chat import Usage
from apipod.domain.usage import Attempt
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
