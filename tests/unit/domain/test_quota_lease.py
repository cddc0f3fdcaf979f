"""Lease arithmetic: how big a lease is, and what it has left as reservations come and go."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from apipod.domain.quota_lease import NOTHING, Amounts, Lease, lease_extra

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
NEED = Amounts(tokens=1000, requests=1, cost=50)


def lease(granted: Amounts) -> Lease:
    return Lease(
        id="lse_1",
        key_id="k",
        starts=(NOW,),
        granted=granted,
        closes_at=NOW + timedelta(seconds=1),
        expires_at=NOW + timedelta(seconds=61),
    )


def test_an_unknown_room_asks_for_the_multiple() -> None:
    assert lease_extra(NEED, None, multiple=64, share=0.5) == Amounts(63_000, 63, 3150)


def test_a_lease_takes_at_most_the_share_of_what_is_left_after_the_request() -> None:
    room = Amounts(tokens=21_000, requests=1_000_000, cost=10**9)

    assert lease_extra(NEED, room, multiple=64, share=0.5) == Amounts(10_000, 63, 3150)


def test_near_the_limit_a_lease_is_the_request_alone() -> None:
    assert lease_extra(NEED, Amounts(1000, 1, 50), multiple=64, share=0.5) == NOTHING
    assert lease_extra(NEED, Amounts(500, 1, 50), multiple=64, share=0.5) == Amounts(0, 0, 0)


def test_taking_settling_and_releasing_move_the_room() -> None:
    held = lease(Amounts(5000, 5, 250))
    held.take(NEED)
    held.take(NEED)
    assert (held.room, held.outstanding) == (Amounts(3000, 3, 150), 2)

    held.settle(NEED, Amounts(tokens=400, requests=0, cost=20))
    held.release(NEED)

    assert held.room == Amounts(4600, 4, 230)  # the settled request stays counted; its unspent tokens come back
    assert held.spent == Amounts(400, 1, 20)
    assert held.done()


def test_spend_beyond_the_hold_leaves_the_room_short_and_nothing_to_give_back() -> None:
    held = lease(Amounts(1000, 1, 50))
    held.take(NEED)
    held.settle(NEED, Amounts(tokens=1500, requests=0, cost=50))

    assert held.room.tokens == -500
    assert held.unused() == Amounts(0, 0, 0)
    assert not held.can_take(Amounts(1, 0, 0), (NOW,), NOW, NOW + timedelta(seconds=60))


def test_a_lease_serves_only_its_windows_its_time_and_its_hold() -> None:
    held = lease(Amounts(5000, 5, 250))
    until = NOW + timedelta(seconds=60)

    assert held.can_take(NEED, (NOW,), NOW, until)
    assert not held.can_take(NEED, (NOW + timedelta(days=1),), NOW, until)  # the window rolled over
    assert not held.can_take(NEED, (NOW,), NOW + timedelta(seconds=1), until)  # closed to new reservations
    assert not held.can_take(NEED, (NOW,), NOW, until + timedelta(seconds=2))  # would outlive the hold
    assert not held.can_take(Amounts(6000, 1, 0), (NOW,), NOW, until)


def test_trimming_gives_the_unused_room_back_and_ends_the_lease() -> None:
    held = lease(Amounts(5000, 5, 250))
    held.take(NEED)

    unused = held.unused()
    held.trimmed(unused)

    assert unused == Amounts(4000, 4, 200)
    assert (held.granted, held.room, held.draining) == (NEED, NOTHING, True)
    assert not held.can_take(Amounts(0, 0, 0), (NOW,), NOW, NOW)
