"""Behaviour every QuotaLedger must show. Subclass and provide an (async) ``ledger`` fixture that yields an
empty ledger. Every test passes explicit ``now`` values: the ledger must not read a clock of its own."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from apipod.application.ports import QuotaLedger
from apipod.domain.errors import QuotaExceededError
from apipod.domain.quota import Budget, Reservation, holds_for
from tests.contracts.builders import DAY, FIVE_HOURS, HOUR, MONTH, NOW

TTL = 600.0


class QuotaLedgerContract:
    @pytest.fixture
    def ledger(self) -> QuotaLedger:
        raise NotImplementedError("subclasses provide an empty QuotaLedger")

    # -- reserve -------------------------------------------------------------------------------------

    async def test_reserve_within_budget_holds_tokens_and_a_request(self, ledger: QuotaLedger) -> None:
        budgets = (Budget(window=DAY, tokens=1000), Budget(window=MONTH, requests=10))

        reservation = await ledger.reserve(key_id="key_1", budgets=budgets, tokens=300, now=NOW, ttl=TTL)

        assert reservation.key_id == "key_1"
        assert reservation.tokens == 300
        assert reservation.holds == holds_for(budgets, NOW, 300)
        assert reservation.expires_at == NOW + timedelta(seconds=TTL)
        day, month = await ledger.usage(key_id="key_1", budgets=budgets, now=NOW)
        assert day.tokens == 300
        assert month.requests == 1

    async def test_reservations_get_distinct_ids(self, ledger: QuotaLedger) -> None:
        budgets = (Budget(window=DAY, tokens=1000),)

        first = await ledger.reserve(key_id="key_1", budgets=budgets, tokens=1, now=NOW, ttl=TTL)
        second = await ledger.reserve(key_id="key_1", budgets=budgets, tokens=1, now=NOW, ttl=TTL)

        assert first.id != second.id

    async def test_a_reservation_may_fill_the_budget_exactly(self, ledger: QuotaLedger) -> None:
        budgets = (Budget(window=DAY, tokens=1000, requests=2),)

        await ledger.reserve(key_id="key_1", budgets=budgets, tokens=400, now=NOW, ttl=TTL)
        await ledger.reserve(key_id="key_1", budgets=budgets, tokens=600, now=NOW, ttl=TTL)

        (use,) = await ledger.usage(key_id="key_1", budgets=budgets, now=NOW)
        assert (use.tokens, use.requests) == (1000, 2)

    async def test_reserve_past_the_token_budget_names_the_window_and_its_reset(self, ledger: QuotaLedger) -> None:
        budgets = (Budget(window=DAY, tokens=1000),)
        await ledger.reserve(key_id="key_1", budgets=budgets, tokens=800, now=NOW, ttl=TTL)

        with pytest.raises(QuotaExceededError) as caught:
            await ledger.reserve(key_id="key_1", budgets=budgets, tokens=300, now=NOW, ttl=TTL)

        assert caught.value.window == "day"
        assert caught.value.retry_after == pytest.approx(8.5 * 3600)
        assert "'day'" in caught.value.message
        assert "2026-11-29T00:00:00Z" in caught.value.message
        (use,) = await ledger.usage(key_id="key_1", budgets=budgets, now=NOW)
        assert use.tokens == 800

    async def test_reserve_past_the_request_budget_raises(self, ledger: QuotaLedger) -> None:
        budgets = (Budget(window=MONTH, requests=2),)
        for _ in range(2):
            await ledger.reserve(key_id="key_1", budgets=budgets, tokens=10, now=NOW, ttl=TTL)

        with pytest.raises(QuotaExceededError) as caught:
            await ledger.reserve(key_id="key_1", budgets=budgets, tokens=10, now=NOW, ttl=TTL)

        assert caught.value.window == "month"
        month_end = datetime(2026, 12, 1, tzinfo=UTC)
        assert caught.value.retry_after == pytest.approx((month_end - NOW).total_seconds())
        assert caught.value.retry_after > 0
        assert "2026-12-01T00:00:00Z" in caught.value.message
        (use,) = await ledger.usage(key_id="key_1", budgets=budgets, now=NOW)
        assert use.requests == 2

    async def test_one_request_larger_than_the_budget_is_refused(self, ledger: QuotaLedger) -> None:
        budgets = (Budget(window=DAY, tokens=1000),)

        with pytest.raises(QuotaExceededError):
            await ledger.reserve(key_id="key_1", budgets=budgets, tokens=1001, now=NOW, ttl=TTL)

        (use,) = await ledger.usage(key_id="key_1", budgets=budgets, now=NOW)
        assert use.tokens == 0

    async def test_reserve_is_all_or_nothing_across_windows(self, ledger: QuotaLedger) -> None:
        budgets = (Budget(window=DAY, tokens=1000, requests=5), Budget(window=HOUR, tokens=100))

        with pytest.raises(QuotaExceededError) as caught:
            await ledger.reserve(key_id="key_1", budgets=budgets, tokens=150, now=NOW, ttl=TTL)

        assert caught.value.window == "hour"
        assert caught.value.retry_after == pytest.approx(30 * 60)
        day, hour = await ledger.usage(key_id="key_1", budgets=budgets, now=NOW)
        assert (day.tokens, day.requests, hour.tokens) == (0, 0, 0)

    async def test_a_full_later_window_leaves_earlier_windows_untouched(self, ledger: QuotaLedger) -> None:
        budgets = (Budget(window=DAY, requests=5), Budget(window=MONTH, requests=1))
        await ledger.reserve(key_id="key_1", budgets=budgets, tokens=10, now=NOW, ttl=TTL)

        with pytest.raises(QuotaExceededError) as caught:
            await ledger.reserve(key_id="key_1", budgets=budgets, tokens=10, now=NOW, ttl=TTL)

        assert caught.value.window == "month"
        day, month = await ledger.usage(key_id="key_1", budgets=budgets, now=NOW)
        assert (day.requests, month.requests) == (1, 1)

    async def test_keys_have_budgets_of_their_own(self, ledger: QuotaLedger) -> None:
        budgets = (Budget(window=DAY, requests=1),)
        await ledger.reserve(key_id="key_1", budgets=budgets, tokens=10, now=NOW, ttl=TTL)

        await ledger.reserve(key_id="key_2", budgets=budgets, tokens=10, now=NOW, ttl=TTL)

        (use,) = await ledger.usage(key_id="key_2", budgets=budgets, now=NOW)
        assert use.requests == 1

    async def test_reserve_without_budgets_holds_nothing(self, ledger: QuotaLedger) -> None:
        reservation = await ledger.reserve(key_id="key_1", budgets=(), tokens=50, now=NOW, ttl=TTL)

        assert reservation.holds == ()
        await ledger.settle(reservation, tokens=40, now=NOW)
        await ledger.release(reservation, now=NOW)

    async def test_usage_of_an_unused_key_is_zero(self, ledger: QuotaLedger) -> None:
        budgets = (Budget(window=DAY, tokens=10), Budget(window=MONTH, requests=10))

        uses = await ledger.usage(key_id="nobody", budgets=budgets, now=NOW)

        assert [(u.tokens, u.requests) for u in uses] == [(0, 0), (0, 0)]

    # -- settle and release ---------------------------------------------------------------------------

    async def test_settle_replaces_the_hold_with_the_real_tokens(self, ledger: QuotaLedger) -> None:
        budgets = (Budget(window=DAY, tokens=1000), Budget(window=MONTH, requests=10))
        reservation = await ledger.reserve(key_id="key_1", budgets=budgets, tokens=500, now=NOW, ttl=TTL)

        await ledger.settle(reservation, tokens=120, now=NOW)

        day, month = await ledger.usage(key_id="key_1", budgets=budgets, now=NOW)
        assert (day.tokens, month.requests) == (120, 1)
        await ledger.reserve(key_id="key_1", budgets=budgets, tokens=880, now=NOW, ttl=TTL)

    async def test_settle_counts_real_usage_beyond_the_hold(self, ledger: QuotaLedger) -> None:
        budgets = (Budget(window=DAY, tokens=1000),)
        reservation = await ledger.reserve(key_id="key_1", budgets=budgets, tokens=100, now=NOW, ttl=TTL)

        await ledger.settle(reservation, tokens=400, now=NOW)

        (day,) = await ledger.usage(key_id="key_1", budgets=budgets, now=NOW)
        assert day.tokens == 400

    async def test_settle_is_idempotent(self, ledger: QuotaLedger) -> None:
        budgets = (Budget(window=DAY, tokens=1000, requests=10),)
        reservation = await ledger.reserve(key_id="key_1", budgets=budgets, tokens=500, now=NOW, ttl=TTL)

        await ledger.settle(reservation, tokens=120, now=NOW)
        await ledger.settle(reservation, tokens=999, now=NOW)
        await ledger.release(reservation, now=NOW)

        (day,) = await ledger.usage(key_id="key_1", budgets=budgets, now=NOW)
        assert (day.tokens, day.requests) == (120, 1)

    async def test_release_returns_the_whole_hold(self, ledger: QuotaLedger) -> None:
        budgets = (Budget(window=DAY, tokens=1000), Budget(window=MONTH, requests=1))
        reservation = await ledger.reserve(key_id="key_1", budgets=budgets, tokens=500, now=NOW, ttl=TTL)

        await ledger.release(reservation, now=NOW)

        day, month = await ledger.usage(key_id="key_1", budgets=budgets, now=NOW)
        assert (day.tokens, month.requests) == (0, 0)
        await ledger.reserve(key_id="key_1", budgets=budgets, tokens=1000, now=NOW, ttl=TTL)

    async def test_release_is_idempotent(self, ledger: QuotaLedger) -> None:
        budgets = (Budget(window=DAY, tokens=1000, requests=10),)
        kept = await ledger.reserve(key_id="key_1", budgets=budgets, tokens=200, now=NOW, ttl=TTL)
        released = await ledger.reserve(key_id="key_1", budgets=budgets, tokens=300, now=NOW, ttl=TTL)

        await ledger.release(released, now=NOW)
        await ledger.release(released, now=NOW)
        await ledger.settle(released, tokens=50, now=NOW)

        (day,) = await ledger.usage(key_id="key_1", budgets=budgets, now=NOW)
        assert (day.tokens, day.requests) == (kept.tokens, 1)

    # -- sweep ----------------------------------------------------------------------------------------

    async def test_sweep_releases_expired_pending_holds_only(self, ledger: QuotaLedger) -> None:
        budgets = (Budget(window=DAY, tokens=10_000, requests=100),)
        await ledger.reserve(key_id="key_1", budgets=budgets, tokens=1000, now=NOW, ttl=60)
        await ledger.reserve(key_id="key_1", budgets=budgets, tokens=200, now=NOW, ttl=3600)
        settled = await ledger.reserve(key_id="key_1", budgets=budgets, tokens=300, now=NOW, ttl=60)
        await ledger.settle(settled, tokens=30, now=NOW)

        released = await ledger.sweep(NOW + timedelta(seconds=120))

        assert released == 1
        (day,) = await ledger.usage(key_id="key_1", budgets=budgets, now=NOW)
        assert (day.tokens, day.requests) == (200 + 30, 2)
        assert await ledger.sweep(NOW + timedelta(seconds=120)) == 0

    async def test_sweep_before_expiry_releases_nothing(self, ledger: QuotaLedger) -> None:
        budgets = (Budget(window=DAY, tokens=10_000),)
        await ledger.reserve(key_id="key_1", budgets=budgets, tokens=1000, now=NOW, ttl=60)

        assert await ledger.sweep(NOW + timedelta(seconds=30)) == 0

        (day,) = await ledger.usage(key_id="key_1", budgets=budgets, now=NOW)
        assert day.tokens == 1000

    async def test_a_swept_reservation_is_not_released_twice(self, ledger: QuotaLedger) -> None:
        budgets = (Budget(window=DAY, tokens=10_000),)
        other = await ledger.reserve(key_id="key_1", budgets=budgets, tokens=700, now=NOW, ttl=3600)
        expired = await ledger.reserve(key_id="key_1", budgets=budgets, tokens=1000, now=NOW, ttl=60)
        await ledger.sweep(NOW + timedelta(seconds=61))

        await ledger.release(expired, now=NOW)

        (day,) = await ledger.usage(key_id="key_1", budgets=budgets, now=NOW)
        assert day.tokens == other.tokens

    # -- windows --------------------------------------------------------------------------------------

    async def test_windows_reset_at_their_boundary(self, ledger: QuotaLedger) -> None:
        budgets = (Budget(window=DAY, tokens=100),)
        late = datetime(2026, 11, 28, 23, 59, 59, tzinfo=UTC)
        midnight = datetime(2026, 11, 29, tzinfo=UTC)
        await ledger.reserve(key_id="key_1", budgets=budgets, tokens=100, now=late, ttl=TTL)

        with pytest.raises(QuotaExceededError) as caught:
            await ledger.reserve(
                key_id="key_1", budgets=budgets, tokens=1, now=late + timedelta(milliseconds=500), ttl=TTL
            )
        assert caught.value.retry_after == pytest.approx(0.5)

        fresh = await ledger.reserve(key_id="key_1", budgets=budgets, tokens=100, now=midnight, ttl=TTL)

        assert fresh.holds[0].start == midnight
        (today,) = await ledger.usage(key_id="key_1", budgets=budgets, now=midnight)
        (yesterday,) = await ledger.usage(key_id="key_1", budgets=budgets, now=late)
        assert (yesterday.tokens, today.tokens) == (100, 100)

    async def test_settling_after_the_boundary_charges_the_reserved_window(self, ledger: QuotaLedger) -> None:
        budgets = (Budget(window=DAY, tokens=1000),)
        late = datetime(2026, 11, 28, 23, 59, 59, tzinfo=UTC)
        reservation = await ledger.reserve(key_id="key_1", budgets=budgets, tokens=500, now=late, ttl=TTL)

        await ledger.settle(reservation, tokens=70, now=NOW)

        (yesterday,) = await ledger.usage(key_id="key_1", budgets=budgets, now=late)
        (today,) = await ledger.usage(key_id="key_1", budgets=budgets, now=datetime(2026, 11, 29, 0, 1, tzinfo=UTC))
        assert (yesterday.tokens, today.tokens) == (70, 0)

    async def test_fixed_length_windows_align_to_the_epoch(self, ledger: QuotaLedger) -> None:
        budgets = (Budget(window=FIVE_HOURS, requests=1),)
        start, end = FIVE_HOURS.bounds(NOW)
        first = await ledger.reserve(key_id="key_1", budgets=budgets, tokens=1, now=NOW, ttl=TTL)
        assert (first.holds[0].start, first.holds[0].end) == (start, end)

        with pytest.raises(QuotaExceededError) as caught:
            await ledger.reserve(key_id="key_1", budgets=budgets, tokens=1, now=NOW, ttl=TTL)

        assert caught.value.window == "5h"
        assert caught.value.retry_after == pytest.approx((end - NOW).total_seconds())
        later = await ledger.reserve(key_id="key_1", budgets=budgets, tokens=1, now=end, ttl=TTL)
        assert later.holds[0].start == end

    # -- concurrency ----------------------------------------------------------------------------------

    async def test_concurrent_reservations_never_pass_a_request_budget(self, ledger: QuotaLedger) -> None:
        budgets = (Budget(window=DAY, requests=10),)

        async def attempt() -> Reservation | None:
            try:
                return await ledger.reserve(key_id="key_1", budgets=budgets, tokens=5, now=NOW, ttl=TTL)
            except QuotaExceededError:
                return None

        outcomes = await asyncio.gather(*(attempt() for _ in range(50)))

        admitted = [r for r in outcomes if r is not None]
        assert len(admitted) == 10
        assert len({r.id for r in admitted}) == 10
        (day,) = await ledger.usage(key_id="key_1", budgets=budgets, now=NOW)
        assert day.requests == 10

    async def test_concurrent_reservations_never_pass_a_token_budget(self, ledger: QuotaLedger) -> None:
        budgets = (Budget(window=DAY, tokens=1000), Budget(window=MONTH, requests=1000))

        async def attempt() -> bool:
            try:
                await ledger.reserve(key_id="key_1", budgets=budgets, tokens=100, now=NOW, ttl=TTL)
            except QuotaExceededError:
                return False
            return True

        outcomes = await asyncio.gather(*(attempt() for _ in range(50)))

        assert outcomes.count(True) == 10
        day, month = await ledger.usage(key_id="key_1", budgets=budgets, now=NOW)
        assert (day.tokens, month.requests) == (1000, 10)

    # -- money ---------------------------------------------------------------------------------------

    async def test_a_money_budget_holds_the_cost_exactly(self, ledger: QuotaLedger) -> None:
        budgets = (Budget(window=DAY, cost=Decimal("25")), Budget(window=MONTH, requests=10))

        reservation = await ledger.reserve(
            key_id="key_1", budgets=budgets, tokens=300, now=NOW, ttl=TTL, cost=Decimal("0.0000001234")
        )

        assert reservation.cost == Decimal("0.0000001234")
        day, month = await ledger.usage(key_id="key_1", budgets=budgets, now=NOW)
        assert day.cost == Decimal("0.0000001234")
        assert month.cost == 0  # a window without a money limit does not count money

    async def test_a_money_budget_may_be_filled_exactly_and_then_refuses_naming_the_window(
        self, ledger: QuotaLedger
    ) -> None:
        budgets = (Budget(window=DAY, cost=Decimal("1.00")),)
        for _ in range(10):
            await ledger.reserve(key_id="key_1", budgets=budgets, tokens=1, now=NOW, ttl=TTL, cost=Decimal("0.1"))

        with pytest.raises(QuotaExceededError) as caught:
            await ledger.reserve(
                key_id="key_1", budgets=budgets, tokens=1, now=NOW, ttl=TTL, cost=Decimal("0.0000000001")
            )

        assert caught.value.window == "day"
        assert "Cost budget" in caught.value.message
        (use,) = await ledger.usage(key_id="key_1", budgets=budgets, now=NOW)
        assert use.cost == Decimal("1.00")

    async def test_settle_replaces_the_held_cost_with_the_real_one(self, ledger: QuotaLedger) -> None:
        budgets = (Budget(window=DAY, cost=Decimal("5"), tokens=10_000),)
        reservation = await ledger.reserve(
            key_id="key_1", budgets=budgets, tokens=500, now=NOW, ttl=TTL, cost=Decimal("0.75")
        )

        await ledger.settle(reservation, tokens=120, now=NOW, cost=Decimal("0.0123456789"))
        await ledger.settle(reservation, tokens=999, now=NOW, cost=Decimal("3"))  # idempotent

        (use,) = await ledger.usage(key_id="key_1", budgets=budgets, now=NOW)
        assert (use.tokens, use.requests, use.cost) == (120, 0, Decimal("0.0123456789"))

    async def test_release_gives_the_held_cost_back(self, ledger: QuotaLedger) -> None:
        budgets = (Budget(window=DAY, cost=Decimal("5")),)
        reservation = await ledger.reserve(
            key_id="key_1", budgets=budgets, tokens=500, now=NOW, ttl=TTL, cost=Decimal("0.75")
        )

        await ledger.release(reservation, now=NOW)

        (use,) = await ledger.usage(key_id="key_1", budgets=budgets, now=NOW)
        assert use.cost == 0

    async def test_an_expired_money_hold_is_swept_back(self, ledger: QuotaLedger) -> None:
        budgets = (Budget(window=DAY, cost=Decimal("5")),)
        await ledger.reserve(key_id="key_1", budgets=budgets, tokens=5, now=NOW, ttl=1.0, cost=Decimal("2"))

        assert await ledger.sweep(NOW + timedelta(seconds=2)) == 1

        (use,) = await ledger.usage(key_id="key_1", budgets=budgets, now=NOW)
        assert use.cost == 0

    async def test_concurrent_money_reservations_never_pass_the_limit(self, ledger: QuotaLedger) -> None:
        budgets = (Budget(window=DAY, cost=Decimal("0.5")),)

        async def one() -> bool:
            try:
                await ledger.reserve(key_id="key_1", budgets=budgets, tokens=1, now=NOW, ttl=TTL, cost=Decimal("0.03"))
            except QuotaExceededError:
                return False
            return True

        admitted = sum(await asyncio.gather(*(one() for _ in range(40))))

        assert admitted == 16  # 16 x 0.03 = 0.48; a 17th would be 0.51
        (use,) = await ledger.usage(key_id="key_1", budgets=budgets, now=NOW)
        assert use.cost == Decimal("0.48")
