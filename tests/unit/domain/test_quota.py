"""Window bounds: aligned to UTC, and the same whatever order the instants come in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from apipod.domain.quota import Window, WindowUnit


def test_bounds_answer_the_same_across_window_edges_in_any_order() -> None:
    """Bounds are remembered per window: a later, earlier or other-zone ``now`` must still get its own."""
    month = Window(WindowUnit.MONTH)
    times = [
        datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
        datetime(2026, 12, 15, tzinfo=UTC),
        datetime(2027, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))),  # 2026-12-31 23:30 UTC
    ]
    expected = [
        (datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
        (datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 2, 1, tzinfo=UTC)),
        (datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
        (datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
    ]
    assert [month.bounds(t) for t in times] == expected
    assert [month.bounds(t) for t in reversed(times)] == list(reversed(expected))
