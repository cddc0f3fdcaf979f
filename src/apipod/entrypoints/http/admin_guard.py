"""Throttling of failed admin authentication, per client address (issue 9, finding 7).

Without it the admin secret could be guessed at full speed. The first ``free_failures`` wrong secrets from
an address cost nothing (typos); each further one doubles a pause (``base_delay``, 2x, 4x, ... up to
``max_delay``) during which that address is refused at once, without the secret being compared. A right
secret clears the address. Time is the caller's monotonic clock (``now``), so tests move it instead of
sleeping. Memory is bounded: at most ``max_entries`` addresses are remembered, the least recently failing
go first, and an address quiet for ``forget_after`` seconds starts afresh.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

import attrs

log = logging.getLogger("apipod.admin")


@attrs.define
class _Failures:
    count: int = 0
    blocked_until: float = float("-inf")
    last_failure: float = float("-inf")


@attrs.define
class AdminGuard:
    """One per app: the failure table of every address that sent a wrong admin secret."""

    free_failures: int = 5
    base_delay: float = 1.0
    max_delay: float = 30.0
    max_entries: int = 10_000
    forget_after: float = 900.0
    _table: OrderedDict[str, _Failures] = attrs.field(factory=OrderedDict, init=False, repr=False)

    def refused_for(self, address: str, now: float) -> float | None:
        """Seconds ``address`` must still wait before its secret is looked at, or None if it may try."""
        entry = self._table.get(address)
        if entry is None or now >= entry.blocked_until:
            return None
        return entry.blocked_until - now

    def failed(self, address: str, now: float, *, path: str) -> None:
        """Count a wrong secret from ``address`` (logged; the value tried never is)."""
        self._forget_old(now)
        entry = self._table.get(address)
        if entry is None or now - entry.last_failure > self.forget_after:
            entry = _Failures()
        entry.count += 1
        entry.last_failure = now
        over = entry.count - self.free_failures - 1
        delay = 0.0
        if over >= 0:
            delay = self.max_delay if over > 60 else min(self.max_delay, self.base_delay * 2.0**over)
            entry.blocked_until = now + delay
        self._table[address] = entry
        self._table.move_to_end(address)
        while len(self._table) > self.max_entries:
            self._table.popitem(last=False)
        log.warning(
            "admin authentication failed from %s on %s (failure %d%s)",
            address,
            path,
            entry.count,
            f"; refusing this address for {delay:g}s" if delay else "",
        )

    def succeeded(self, address: str) -> None:
        self._table.pop(address, None)

    def __len__(self) -> int:
        return len(self._table)

    def _forget_old(self, now: float) -> None:
        # The table is ordered by last failure, oldest first: stop at the first entry still remembered.
        while self._table:
            address, entry = next(iter(self._table.items()))
            if now - entry.last_failure <= self.forget_after or now < entry.blocked_until:
                return
            del self._table[address]
