"""A hold's shape per window, shared by the SQL ledgers and the leased ledger over them.

``merge_windows`` turns a key's budgets into one row per distinct window (what the hold takes there and the
tightest limits); the keys are short because PostgreSQL stores them in each reservation's JSON:
``w`` window name, ``s``/``e`` its bounds, ``t``/``r``/``c`` the tokens, requests and cost units held,
``ct``/``cc`` whether the window counts tokens/cost, ``tl``/``rl``/``cl`` the limits (None: unlimited).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from apipod.adapters.memory.quota import quota_exceeded_error
from apipod.domain.pricing import from_units, to_units
from apipod.domain.quota import Budget, WindowUse, first_exhausted


def merge_windows(
    budgets: tuple[Budget, ...], now: datetime, tokens: int, cost_units: int, requests: int = 1
) -> list[dict[str, Any]]:
    """One row per distinct window: budgets on the same window share its counter and the tightest
    limits apply. ``requests``: how many requests the hold is for (one, or a lease's many)."""
    rows: dict[str, dict[str, Any]] = {}
    for budget in budgets:
        start, end = budget.window.bounds(now)
        row = rows.setdefault(
            budget.window.name,
            {
                "w": budget.window.name,
                "s": start,
                "e": end,
                "t": 0,
                "r": 0,
                "c": 0,
                "ct": False,
                "cc": False,
                "tl": None,
                "rl": None,
                "cl": None,
            },
        )
        if budget.tokens is not None:
            row["ct"], row["t"] = True, tokens
            row["tl"] = budget.tokens if row["tl"] is None else min(row["tl"], budget.tokens)
        if budget.requests is not None:
            row["r"] = requests
            row["rl"] = budget.requests if row["rl"] is None else min(row["rl"], budget.requests)
        if budget.cost is not None:
            limit = to_units(budget.cost)
            row["cc"], row["c"] = True, cost_units
            row["cl"] = limit if row["cl"] is None else min(row["cl"], limit)
    return sorted(rows.values(), key=lambda r: r["w"])


def uses_of(budgets: tuple[Budget, ...], current: dict[str, tuple[int, int, int]]) -> tuple[WindowUse, ...]:
    """Per budget, in order, what its window's counter shows (0 when the row does not exist yet)."""
    uses = []
    for budget in budgets:
        tokens, requests, cost = current.get(budget.window.name, (0, 0, 0))
        uses.append(WindowUse(tokens=tokens, requests=requests, cost=from_units(cost)))
    return tuple(uses)


def exceeded(
    budgets: tuple[Budget, ...], uses: tuple[WindowUse, ...], tokens: int, now: datetime, cost: Decimal
) -> Exception:
    budget = first_exhausted(budgets, uses, tokens, cost) or budgets[0]
    return quota_exceeded_error(budget, uses[budgets.index(budget)], tokens, now, cost)
