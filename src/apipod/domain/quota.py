"""Budgets and their windows, reservations, and the estimate a reservation holds."""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import attrs

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class WindowUnit(enum.StrEnum):
    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    HOURS = "hours"  # fixed-length windows of ``hours`` hours aligned to the Unix epoch


MAX_WINDOW_HOURS = 24 * 366  # a fixed window longer than a year is a typo; "month" and "week" exist


def _window_length(window: Window, _: attrs.Attribute[int], hours: int) -> None:
    """A fixed window of zero or negative length would divide by zero at every request of its plan."""
    if window.unit is WindowUnit.HOURS and not 0 < hours <= MAX_WINDOW_HOURS:
        raise ValueError(f"a fixed window is 1 to {MAX_WINDOW_HOURS} hours long, not {hours}")


@attrs.frozen(cache_hash=True)
class Window:
    unit: WindowUnit
    hours: int = attrs.field(default=0, validator=_window_length)

    @property
    def name(self) -> str:
        return f"{self.hours}h" if self.unit is WindowUnit.HOURS else self.unit.value

    def bounds(self, now: datetime) -> tuple[datetime, datetime]:
        """The [start, end) of the window holding ``now``, aligned to UTC."""
        last = _LAST_BOUNDS.get(self)
        # PERF: every reservation asks this several times for the same window; calendar arithmetic is ~3 us
        if last is not None and now.tzinfo is not None and last[0] <= now < last[1]:
            return last
        bounds = self._bounds(now.astimezone(UTC))
        _LAST_BOUNDS[self] = bounds
        return bounds

    def _bounds(self, now: datetime) -> tuple[datetime, datetime]:
        if self.unit is WindowUnit.MINUTE:
            start = now.replace(second=0, microsecond=0)
            return start, start + timedelta(minutes=1)
        if self.unit is WindowUnit.HOUR:
            start = now.replace(minute=0, second=0, microsecond=0)
            return start, start + timedelta(hours=1)
        day = now.replace(hour=0, minute=0, second=0, microsecond=0)
        if self.unit is WindowUnit.DAY:
            return day, day + timedelta(days=1)
        if self.unit is WindowUnit.WEEK:
            start = day - timedelta(days=day.weekday())
            return start, start + timedelta(days=7)
        if self.unit is WindowUnit.MONTH:
            start = day.replace(day=1)
            end = (
                start.replace(year=start.year + 1, month=1)
                if start.month == 12
                else start.replace(month=start.month + 1)
            )
            return start, end
        length = timedelta(hours=self.hours)
        periods = (now - EPOCH) // length
        start = EPOCH + periods * length
        return start, start + length


# Per window, the bounds last computed (windows are few: one per budget shape in the catalog).
_LAST_BOUNDS: dict[Window, tuple[datetime, datetime]] = {}


def parse_window(value: str | int | dict[str, int]) -> Window:
    """``"day"``, ``"month"``..., or ``{hours = 5}``. Raises ValueError for anything else."""
    if isinstance(value, dict):
        hours = value.get("hours")
        if set(value) != {"hours"} or not isinstance(hours, int) or isinstance(hours, bool) or hours <= 0:
            raise ValueError(f"a fixed window is {{ hours = N }} with N > 0, not {value!r}")
        return Window(WindowUnit.HOURS, hours)
    if isinstance(value, str):
        if value.endswith("h") and value[:-1].isdigit():
            return Window(WindowUnit.HOURS, int(value[:-1]))
        unit = WindowUnit(value)
        if unit is WindowUnit.HOURS:
            raise ValueError("say { hours = N } for a fixed-length window")
        return Window(unit)
    raise ValueError(f"not a window: {value!r}")


@attrs.frozen(kw_only=True)
class Budget:
    """A per-key allowance in one window: ``tokens`` (input plus output), ``requests``, ``cost`` (money, in the
    catalog's currency, exact), or any of them."""

    window: Window
    tokens: int | None = None
    requests: int | None = None
    cost: Decimal | None = None


_NO_COST = Decimal(0)


@attrs.frozen(kw_only=True)
class WindowHold:
    """What one reservation holds in one window of one budget (``cost`` in the catalog's currency)."""

    window: str
    start: datetime
    end: datetime
    tokens: int
    requests: int
    cost: Decimal = _NO_COST


@attrs.frozen(kw_only=True)
class Reservation:
    """A hold against every budget window of a key, until ``expires_at``."""

    id: str
    key_id: str
    tokens: int
    holds: tuple[WindowHold, ...]
    expires_at: datetime
    cost: Decimal = _NO_COST


def holds_for(
    budgets: tuple[Budget, ...], now: datetime, tokens: int, cost: Decimal = _NO_COST
) -> tuple[WindowHold, ...]:
    holds = []
    for budget in budgets:
        start, end = budget.window.bounds(now)
        holds.append(
            WindowHold(
                window=budget.window.name,
                start=start,
                end=end,
                tokens=tokens if budget.tokens is not None else 0,
                requests=1 if budget.requests is not None else 0,
                cost=cost if budget.cost is not None else _NO_COST,
            )
        )
    return tuple(holds)


@attrs.frozen(kw_only=True)
class WindowUse:
    """What is spent and held in one window, as the ledger sees it."""

    tokens: int = 0
    requests: int = 0
    cost: Decimal = _NO_COST


def exhausted_unit(budget: Budget, use: WindowUse, tokens: int, cost: Decimal = _NO_COST) -> str | None:
    """Which limit of ``budget`` ("tokens", "requests", "cost") cannot take one more request of ``tokens``
    and ``cost``, or None when it can."""
    if budget.tokens is not None and use.tokens + tokens > budget.tokens:
        return "tokens"
    if budget.requests is not None and use.requests + 1 > budget.requests:
        return "requests"
    if budget.cost is not None and use.cost + cost > budget.cost:
        return "cost"
    return None


def first_exhausted(
    budgets: tuple[Budget, ...], uses: tuple[WindowUse, ...], tokens: int, cost: Decimal = _NO_COST
) -> Budget | None:
    """The first budget that cannot take one more request of ``tokens`` and ``cost``, or None when all can."""
    for budget, use in zip(budgets, uses, strict=True):
        if exhausted_unit(budget, use, tokens, cost) is not None:
            return budget
    return None


ESTIMATE_OUTPUT_CAP = 4096
CHARS_PER_TOKEN = 4


def estimate_tokens(prompt_chars: int, max_output_tokens: int | None, *, output_cap: int = ESTIMATE_OUTPUT_CAP) -> int:
    """The hold a request takes: its input estimate plus its max output, capped.

    The cap keeps a request that asks for 64k output tokens from being refused under a small budget;
    settlement applies the real usage afterwards, so the estimate only bounds concurrency overshoot.
    """
    return sum(estimate_parts(prompt_chars, max_output_tokens, output_cap=output_cap))


def estimate_parts(
    prompt_chars: int, max_output_tokens: int | None, *, output_cap: int = ESTIMATE_OUTPUT_CAP
) -> tuple[int, int]:
    """``estimate_tokens`` as (input, output), for pricing each at its own rate."""
    return max(1, prompt_chars // CHARS_PER_TOKEN), min(max_output_tokens or output_cap, output_cap)
