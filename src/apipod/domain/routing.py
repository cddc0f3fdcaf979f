"""Weighted choice among routing candidates; pure, with the random draw passed in."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def weighted_pick(weighted: Sequence[tuple[T, float]], draw: float) -> T:
    """Pick one item by weight with ``draw`` uniform in [0, 1). Items of weight 0 are never picked
    unless every weight is 0, in which case the first item is."""
    total = sum(max(w, 0.0) for _, w in weighted)
    if not weighted:
        raise ValueError("nothing to pick from")
    if total <= 0:
        return weighted[0][0]
    point = draw * total
    for item, weight in weighted:
        if weight <= 0:
            continue
        point -= weight
        if point < 0:
            return item
    return next(item for item, w in reversed(weighted) if w > 0)
