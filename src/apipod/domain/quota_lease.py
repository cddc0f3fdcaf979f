"""Budget leases: a process debits a block of a key's budget in one database write and serves reservations
from it in memory, so a hot key costs one write per lease instead of one per request.

The ledger stays exact because the block is debited before any of it is spent: a lease can only hand out
what the database already counts as held. What a lease did not hand out goes back when the lease closes
(or earlier, when a refusal would otherwise be caused by this process's own unused room).
"""

from __future__ import annotations

from datetime import datetime

import attrs


@attrs.frozen
class Amounts:
    """Tokens, requests and money (integer units of ``domain.pricing.COST_QUANTUM``) of one hold."""

    tokens: int = 0
    requests: int = 0
    cost: int = 0

    def fits_in(self, room: Amounts) -> bool:
        return self.tokens <= room.tokens and self.requests <= room.requests and self.cost <= room.cost

    def __add__(self, other: Amounts) -> Amounts:
        return Amounts(self.tokens + other.tokens, self.requests + other.requests, self.cost + other.cost)

    def __sub__(self, other: Amounts) -> Amounts:
        return Amounts(self.tokens - other.tokens, self.requests - other.requests, self.cost - other.cost)


NOTHING = Amounts()
UNLIMITED = 2**62  # "no limit" on a dimension no budget counts; far above any real hold, well inside bigint


def lease_extra(need: Amounts, available: Amounts | None, *, multiple: int, share: float) -> Amounts:
    """What a lease takes beyond the request that opens it.

    ``multiple`` requests' worth of ``need``, but never more than ``share`` of what would be left after
    ``need`` (``available``: the room in the database, None when not known yet). Near the limit a lease
    shrinks to the request itself, so leases hoard little exactly when room is scarce.
    """
    want = Amounts(need.tokens * (multiple - 1), need.requests * (multiple - 1), need.cost * (multiple - 1))
    if available is None:
        return want
    return Amounts(
        _capped(want.tokens, available.tokens - need.tokens, share),
        _capped(want.requests, available.requests - need.requests, share),
        _capped(want.cost, available.cost - need.cost, share),
    )


def _capped(want: int, left: int, share: float) -> int:
    return max(0, min(want, int(left * share)))


@attrs.define(eq=False)
class Lease:
    """One block of a key's budget held in the database, and what this process did with it.

    ``granted`` is what the database holds; ``room`` what is not handed out (negative when settled spend
    went beyond the holds); ``spent`` the real spend of the settled reservations, written when it closes.
    """

    id: str
    key_id: str
    starts: tuple[datetime, ...]  # the window starts it was taken in
    granted: Amounts
    closes_at: datetime  # no new reservations after this
    expires_at: datetime  # the database's hold lapses here
    room: Amounts = attrs.field(init=False)
    spent: Amounts = NOTHING
    outstanding: int = 0
    draining: bool = False  # takes no new reservations (exhausted, trimmed, or its windows ended)

    def __attrs_post_init__(self) -> None:
        self.room = self.granted

    def can_take(self, need: Amounts, starts: tuple[datetime, ...], now: datetime, until: datetime) -> bool:
        """Room for ``need`` in the same windows, open at ``now``, held by the database ``until``."""
        return (
            not self.draining
            and now < self.closes_at
            and until <= self.expires_at
            and starts == self.starts
            and need.fits_in(self.room)
        )

    def take(self, need: Amounts) -> None:
        self.room = self.room - need
        self.outstanding += 1

    def settle(self, held: Amounts, spent: Amounts) -> None:
        """The real spend replaces the hold; the request itself stays counted."""
        room, total = self.room, self.spent  # two objects made, not four (PERF: once per request)
        self.room = Amounts(room.tokens + held.tokens - spent.tokens, room.requests, room.cost + held.cost - spent.cost)
        self.spent = Amounts(
            total.tokens + spent.tokens, total.requests + (1 if held.requests else 0), total.cost + spent.cost
        )
        self.outstanding -= 1

    def release(self, held: Amounts) -> None:
        self.room = self.room + held
        self.outstanding -= 1

    def unused(self) -> Amounts:
        """What can go back to the database now (nothing of a dimension already overspent)."""
        return Amounts(max(0, self.room.tokens), max(0, self.room.requests), max(0, self.room.cost))

    def trimmed(self, unused: Amounts) -> None:
        """``unused`` went back to the database; the lease serves nothing more."""
        self.granted = self.granted - unused
        self.room = self.room - unused
        self.draining = True

    def done(self) -> bool:
        """Nothing in flight: time to write its spend and give the rest back. A lease is not kept idle, so
        unused room is held only while this process has requests in flight on the key."""
        return self.outstanding == 0
