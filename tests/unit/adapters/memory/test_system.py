"""The system adapters and their deterministic doubles."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from apipod.adapters.memory.system import FixedClock, SeededRandomness, SequentialIdGenerator
from apipod.adapters.system import RandomIdGenerator, SystemClock, SystemRandomness

START = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def test_fixed_clock_moves_only_when_told() -> None:
    clock = FixedClock(START, monotonic=100.0)

    assert (clock.now(), clock.monotonic()) == (START, 100.0)
    clock.advance(90.5)
    assert (clock.now(), clock.monotonic()) == (START + timedelta(seconds=90.5), 190.5)


def test_fixed_clock_set_jumps_and_keeps_monotonic_time_monotonic() -> None:
    clock = FixedClock(START)

    clock.set(START + timedelta(hours=1))
    assert clock.monotonic() == 3600.0
    clock.set(START)
    assert clock.now() == START
    assert clock.monotonic() == 3600.0


def test_fixed_clock_refuses_naive_times_and_going_back() -> None:
    with pytest.raises(ValueError, match="timezone"):
        FixedClock(datetime(2026, 1, 1))  # noqa: DTZ001
    with pytest.raises(ValueError, match="back"):
        FixedClock(START).advance(-1)


def test_seeded_randomness_repeats_itself() -> None:
    a, b = SeededRandomness(7), SeededRandomness(7)

    assert [a.random() for _ in range(3)] == [b.random() for _ in range(3)]
    assert a.token_bytes(32) == b.token_bytes(32)
    assert len(SeededRandomness(1).token_bytes(32)) == 32
    assert SeededRandomness(1).random() != SeededRandomness(2).random()


def test_sequential_ids_count_up() -> None:
    ids = SequentialIdGenerator()

    assert [ids.new_id("req_"), ids.new_id("rsv_"), ids.new_id()] == ["req_1", "rsv_2", "3"]


def test_system_clock_is_utc_and_monotonic() -> None:
    clock = SystemClock()

    now = clock.now()
    assert now.utcoffset() == timedelta(0)
    assert abs(now - datetime.now(UTC)) < timedelta(seconds=5)
    first = clock.monotonic()
    assert clock.monotonic() >= first


def test_system_randomness_draws_in_range_and_makes_fresh_bytes() -> None:
    randomness = SystemRandomness()

    assert all(0.0 <= randomness.random() < 1.0 for _ in range(100))
    assert len(randomness.token_bytes(32)) == 32
    assert randomness.token_bytes(32) != randomness.token_bytes(32)


def test_random_ids_are_a_prefix_and_24_url_safe_characters() -> None:
    ids = RandomIdGenerator()

    made = {ids.new_id("key_") for _ in range(1000)}

    assert len(made) == 1000
    assert all(re.fullmatch(r"key_[A-Za-z0-9_-]{24}", i) for i in made)


def test_ids_with_a_clock_sort_as_their_times_do_and_stay_unique_within_a_millisecond() -> None:
    clock = FixedClock(START)
    ids = RandomIdGenerator(clock)

    made = []
    for step in (0.0, 0.0005, 0.001, 0.25, 1.0, 86_400.0, 3 * 365 * 86_400.0):
        clock.advance(step)
        made += [ids.new_id("req_"), ids.new_id("req_")]

    assert all(re.fullmatch(r"req_[A-Za-z0-9_-]{24}", i) for i in made)
    assert len(set(made)) == len(made)
    times = [i[4:12] for i in made]  # the first 8 characters: the millisecond
    assert times == sorted(times)
    assert times[0] == times[1] == times[2] == times[3]  # 0.5 ms apart: the same millisecond
    assert len(set(times)) == 6
    assert sorted(made[2::2]) == made[2::2]  # whole ids of different milliseconds too


def test_the_time_in_an_id_is_the_clocks_millisecond() -> None:
    stamp = RandomIdGenerator(FixedClock(START)).new_id()[:8]
    before = RandomIdGenerator(FixedClock(START - timedelta(milliseconds=1))).new_id()[:8]

    assert before < stamp
    assert RandomIdGenerator(FixedClock(START)).new_id()[:8] == stamp
