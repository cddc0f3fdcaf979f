"""PgQuotaLedger: exact per-key budgets in PostgreSQL, whatever the number of processes.

One counter row per (key, window, window start) holds spent plus held tokens and requests. Every change
is one statement that first locks the key's window rows in a fixed order (window name, start) with
``FOR UPDATE`` (so it reads their latest committed values and deadlocks are impossible), then decides and
writes. Under READ COMMITTED the later UPDATE of a locked row operates on that latest version, so no
concurrent reservation can slip between the check and the increment.

Reservation rows make settle/release/sweep idempotent: each moves the row from ``pending`` in the same
statement that gives the hold back, so only the first of them changes the counters.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from apipod.adapters.memory.quota import PRUNE_AFTER
from apipod.adapters.postgres.database import PgDatabase
from apipod.adapters.quota_windows import exceeded, merge_windows, uses_of
from apipod.adapters.system import RandomIdGenerator
from apipod.application.ports import IdGenerator, QuotaLedger
from apipod.domain.errors import StorageError
from apipod.domain.pricing import from_units, to_units
from apipod.domain.quota import Budget, Reservation, WindowUse, holds_for

# $1 key, $2..$8 and $14..$15 the wanted windows (merged by name and start), $9..$13 and $16 the
# reservation. Money is counted in integer units of domain.pricing.COST_QUANTUM.
_RESERVE = """
WITH want AS (
    SELECT * FROM unnest($2::text[], $3::timestamptz[], $4::timestamptz[], $5::bigint[], $6::bigint[],
                         $7::bigint[], $8::bigint[], $14::bigint[], $15::bigint[])
        AS t(window_name, window_start, window_end, hold_tokens, hold_requests, token_limit, request_limit,
             hold_cost, cost_limit)
),
locked AS (
    SELECT w.window_name, w.window_start, w.tokens, w.requests, w.cost
    FROM quota_windows w JOIN want USING (window_name, window_start)
    WHERE w.key_id = $1
    ORDER BY w.window_name, w.window_start
    FOR UPDATE OF w
),
verdict AS (
    SELECT count(*) = cardinality($2::text[]) AS complete,
           coalesce(bool_and(
               (want.token_limit IS NULL OR l.tokens + want.hold_tokens <= want.token_limit)
               AND (want.request_limit IS NULL OR l.requests + want.hold_requests <= want.request_limit)
               AND (want.cost_limit IS NULL OR l.cost + want.hold_cost <= want.cost_limit)
           ), true) AS fits
    FROM locked l JOIN want USING (window_name, window_start)
),
bumped AS (
    UPDATE quota_windows w
    SET tokens = w.tokens + want.hold_tokens, requests = w.requests + want.hold_requests,
        cost = w.cost + want.hold_cost
    FROM want, verdict
    WHERE verdict.complete AND verdict.fits
      AND w.key_id = $1 AND w.window_name = want.window_name AND w.window_start = want.window_start
    RETURNING 1
),
held AS (
    INSERT INTO quota_reservations (id, key_id, holds, tokens, cost, state, created_at, expires_at)
    SELECT $9::text, $1, $10::jsonb, $11::bigint, $16::bigint, 'pending', $12::timestamptz, $13::timestamptz
    FROM verdict WHERE verdict.complete AND verdict.fits
    RETURNING 1
),
seeded AS (
    INSERT INTO quota_windows (key_id, window_name, window_start, window_end)
    SELECT $1, want.window_name, want.window_start, want.window_end FROM want, verdict
    WHERE NOT verdict.complete
    ON CONFLICT DO NOTHING
    RETURNING 1
)
SELECT verdict.complete, verdict.fits,
       (SELECT count(*) FROM bumped) AS bumped, (SELECT count(*) FROM held) AS held,
       (SELECT count(*) FROM seeded) AS seeded,
       (SELECT coalesce(jsonb_agg(jsonb_build_array(window_name, tokens, requests, cost)), '[]'::jsonb)
        FROM locked) AS current
FROM verdict
"""

# Shared tail of settle, release and sweep. ``closed`` yields the reservations just closed as
# (key_id, holds, spent, spent_cost, spent_requests, held): ``spent`` is the real token count and
# ``spent_cost`` the real cost units (NULL when released), ``spent_requests`` how many of the held requests
# were used (NULL: all of them; a lease holds many), and ``held`` says the hold was still in the counters (it
# was pending, not already expired by the sweeper). Per window:
#   tokens   += spent (when the window counts tokens) - the held tokens (when still held)
#   cost     += spent_cost (when the window counts money) - the held cost (when still held)
#   requests += the request when settled               - the held request (when still held)
# so pending->settled keeps the request and swaps the estimate for the real tokens, pending->released
# gives everything back, and expired->settled (a request that outlived its hold) still counts its spend.
_GIVE_BACK = """h AS (
    SELECT closed.key_id, x.w AS window_name, x.s AS window_start,
           sum(CASE WHEN closed.held THEN -x.t ELSE 0 END
               + CASE WHEN x.ct AND closed.spent IS NOT NULL THEN closed.spent ELSE 0 END)::bigint AS d_tokens,
           sum(CASE WHEN closed.held THEN -x.r ELSE 0 END
               + CASE WHEN closed.spent IS NOT NULL THEN least(x.r, coalesce(closed.spent_requests, x.r)) ELSE 0 END
           )::bigint AS d_requests,
           sum(CASE WHEN closed.held THEN -coalesce(x.c, 0) ELSE 0 END
               + CASE WHEN x.cc AND closed.spent_cost IS NOT NULL THEN closed.spent_cost ELSE 0 END)::bigint
               AS d_cost
    FROM closed, jsonb_to_recordset(closed.holds)
        AS x(w text, s timestamptz, t bigint, r bigint, ct boolean, c bigint, cc boolean)
    GROUP BY 1, 2, 3
),
locked AS (
    SELECT 1 FROM quota_windows w JOIN h USING (key_id, window_name, window_start)
    WHERE h.d_tokens <> 0 OR h.d_requests <> 0 OR h.d_cost <> 0
    ORDER BY w.key_id, w.window_name, w.window_start
    FOR UPDATE OF w
),
applied AS (
    UPDATE quota_windows w
    SET tokens = w.tokens + h.d_tokens, requests = w.requests + h.d_requests, cost = w.cost + h.d_cost
    FROM h
    WHERE w.key_id = h.key_id AND w.window_name = h.window_name AND w.window_start = h.window_start
      AND (h.d_tokens <> 0 OR h.d_requests <> 0 OR h.d_cost <> 0)
      AND (SELECT count(*) FROM locked) >= 0
    RETURNING 1
)
SELECT (SELECT count(*) FROM closed) AS closed, (SELECT count(*) FROM applied) AS applied
"""

# $2: tokens spent (settle) or NULL (release); $4: cost units spent (settle) or NULL. An expired
# reservation can still be settled (its real spend counts) or released (a no-op); settled and released
# are final, so repeats change nothing.
_SETTLE_HEAD = """
WITH prior AS (
    SELECT id, state FROM quota_reservations
    WHERE id = $1 AND state IN ('pending', 'expired')
    FOR UPDATE
),
closed AS (
    UPDATE quota_reservations r
    SET state = CASE WHEN $2::bigint IS NULL THEN 'released' ELSE 'settled' END,
        settled_tokens = $2::bigint, settled_cost = $4::bigint, closed_at = $3
    FROM prior
    WHERE r.id = prior.id AND r.state = prior.state
    RETURNING r.key_id, r.holds, $2::bigint AS spent, $4::bigint AS spent_cost, $5::bigint AS spent_requests,
              prior.state = 'pending' AS held
),
"""
_SETTLE = _SETTLE_HEAD + _GIVE_BACK

# Reservations are claimed with SKIP LOCKED so sweepers in many processes never wait on each other
# (nor on a settle in flight, which is about to close that reservation anyway).
_SWEEP_HEAD = """
WITH picked AS (
    SELECT id FROM quota_reservations
    WHERE state = 'pending' AND expires_at < $1
    ORDER BY id
    LIMIT $2
    FOR UPDATE SKIP LOCKED
),
closed AS (
    UPDATE quota_reservations r SET state = 'expired', closed_at = $1
    FROM picked WHERE r.id = picked.id AND r.state = 'pending'
    RETURNING r.key_id, r.holds, NULL::bigint AS spent, NULL::bigint AS spent_cost, NULL::bigint AS spent_requests,
              true AS held
),
"""
_SWEEP = _SWEEP_HEAD + _GIVE_BACK

# A spend that arrives after its hold is gone (a lease's reservation that outlived its TTL): counted like
# an expired reservation settled late.
_CHARGE = (
    """
WITH closed AS (
    SELECT $1::text AS key_id, $2::jsonb AS holds, $3::bigint AS spent, $4::bigint AS spent_cost,
           NULL::bigint AS spent_requests, false AS held
),
"""
    + _GIVE_BACK
)

# Gives part of a pending lease back while it still has requests in flight: its holds and the window
# counters shrink by the same amounts ($2 tokens, $3 requests, $4 cost units, in every window counting each).
_TRIM = """
WITH prior AS (
    SELECT id, key_id, holds FROM quota_reservations WHERE id = $1 AND state = 'pending' FOR UPDATE
),
parts AS (
    SELECT prior.key_id, e.obj, x.w, x.s,
           CASE WHEN x.ct THEN $2::bigint ELSE 0 END AS dt,
           CASE WHEN x.r > 0 THEN least(x.r, $3::bigint) ELSE 0 END AS dr,
           CASE WHEN x.cc THEN $4::bigint ELSE 0 END AS dc
    FROM prior, jsonb_array_elements(prior.holds) AS e(obj),
         jsonb_to_record(e.obj) AS x(w text, s timestamptz, t bigint, r bigint, ct boolean, c bigint, cc boolean)
),
rewritten AS (
    UPDATE quota_reservations q
    SET holds = (SELECT jsonb_agg(p.obj || jsonb_build_object(
                     't', (p.obj->>'t')::bigint - p.dt, 'r', (p.obj->>'r')::bigint - p.dr,
                     'c', coalesce((p.obj->>'c')::bigint, 0) - p.dc)) FROM parts p),
        tokens = q.tokens - $2::bigint, cost = q.cost - $4::bigint
    FROM prior WHERE q.id = prior.id
    RETURNING 1
),
locked AS (
    SELECT 1 FROM quota_windows w JOIN parts p ON w.key_id = p.key_id AND w.window_name = p.w AND w.window_start = p.s
    ORDER BY w.window_name, w.window_start
    FOR UPDATE OF w
),
applied AS (
    UPDATE quota_windows w
    SET tokens = w.tokens - p.dt, requests = w.requests - p.dr, cost = w.cost - p.dc
    FROM parts p
    WHERE w.key_id = p.key_id AND w.window_name = p.w AND w.window_start = p.s
      AND (SELECT count(*) FROM locked) >= 0
    RETURNING 1
)
SELECT (SELECT count(*) FROM rewritten) AS trimmed
"""

# Housekeeping after a sweep: closed reservations older than ``keep_closed``, and counters of windows
# that ended more than PRUNE_AFTER ago (nothing reads them; the usage rows are the record).
_PURGE_RESERVATIONS = """
DELETE FROM quota_reservations WHERE id IN (
    SELECT id FROM quota_reservations WHERE state <> 'pending' AND closed_at < $1 LIMIT $2
)
"""
_PRUNE_WINDOWS = """
DELETE FROM quota_windows WHERE ctid = ANY(ARRAY(SELECT ctid FROM quota_windows WHERE window_end < $1 LIMIT $2))
"""

_USAGE = """
SELECT window_name, window_start, tokens, requests, cost FROM quota_windows
WHERE key_id = $1 AND (window_name, window_start) IN (SELECT * FROM unnest($2::text[], $3::timestamptz[]))
"""

_SEED_ATTEMPTS = 5
_NO_COST = Decimal(0)


class PgQuotaLedger(QuotaLedger):
    """Args:
    db: the shared database.
    ids: reservation ids (random by default).
    sweep_batch: expired reservations released per statement by ``sweep``.
    keep_closed: seconds settled/released/expired reservations are kept (for audit) before ``sweep``
        purges them; a settle after that is still a no-op.
    """

    def __init__(
        self,
        db: PgDatabase,
        *,
        ids: IdGenerator | None = None,
        sweep_batch: int = 1000,
        keep_closed: float = 86400.0,
    ) -> None:
        self._db = db
        self._ids = ids if ids is not None else RandomIdGenerator()
        self._sweep_batch = sweep_batch
        self._keep_closed = timedelta(seconds=keep_closed)

    async def reserve(
        self,
        *,
        key_id: str,
        budgets: tuple[Budget, ...],
        tokens: int,
        now: datetime,
        ttl: float,
        cost: Decimal = _NO_COST,
    ) -> Reservation:
        tokens = max(0, tokens)
        units = to_units(max(cost, _NO_COST))
        cost = from_units(units)
        holds = holds_for(budgets, now, tokens, cost)
        reservation = Reservation(
            id=self._ids.new_id("rsv_"),
            key_id=key_id,
            tokens=tokens,
            holds=holds,
            expires_at=now + timedelta(seconds=ttl),
            cost=cost,
        )
        if not budgets:
            return reservation  # nothing to hold; settle and release will find no row and do nothing
        fits, current = await self.hold(
            key_id=key_id,
            rows=merge_windows(budgets, now, tokens, units),
            hold_id=reservation.id,
            tokens=tokens,
            cost_units=units,
            now=now,
            expires_at=reservation.expires_at,
        )
        if fits:
            return reservation
        raise exceeded(budgets, uses_of(budgets, current), tokens, now, cost)

    async def hold(
        self,
        *,
        key_id: str,
        rows: list[dict[str, Any]],
        hold_id: str,
        tokens: int,
        cost_units: int,
        now: datetime,
        expires_at: datetime,
    ) -> tuple[bool, dict[str, tuple[int, int, int]]]:
        """Hold ``rows`` (from ``merge_windows``) as one reservation row ``hold_id``, or nothing. Returns
        whether it fitted and each window's counters (tokens, requests, cost units) as they were before."""
        args = (
            key_id,
            [r["w"] for r in rows],
            [r["s"] for r in rows],
            [r["e"] for r in rows],
            [r["t"] for r in rows],
            [r["r"] for r in rows],
            [r["tl"] for r in rows],
            [r["rl"] for r in rows],
            hold_id,
            holds_json(rows),
            tokens,
            now,
            expires_at,
            [r["c"] for r in rows],
            [r["cl"] for r in rows],
            cost_units,
        )
        for _ in range(_SEED_ATTEMPTS):
            async with self._db.connection("reserving quota") as conn:
                result = await conn.fetchrow(_RESERVE, *args)
            if not result["complete"]:
                continue  # some window row did not exist: it does now (this statement seeded it)
            return bool(result["fits"]), {w: (t, r, c) for w, t, r, c in result["current"]}
        raise StorageError("reserving quota: the window counters could not be created; try again")

    async def close_hold(self, hold_id: str, *, tokens: int, requests: int, cost_units: int, now: datetime) -> None:
        """Settle a hold of many requests (a lease): ``requests`` of them were used, for ``tokens`` and
        ``cost_units`` in all; the rest goes back. Idempotent like ``settle``."""
        async with self._db.connection("settling a quota lease") as conn:
            await conn.fetchrow(_SETTLE, hold_id, max(0, tokens), now, max(0, cost_units), max(0, requests))

    async def trim_hold(self, hold_id: str, *, tokens: int, requests: int, cost_units: int) -> bool:
        """Give part of a pending hold back; False when it is no longer pending."""
        async with self._db.connection("trimming a quota lease") as conn:
            row = await conn.fetchrow(_TRIM, hold_id, tokens, requests, cost_units)
        return bool(row["trimmed"])

    async def charge(self, key_id: str, rows: list[dict[str, Any]], *, tokens: int, cost_units: int) -> None:
        """Count a spend whose hold is already gone (its request and real tokens and cost)."""
        async with self._db.connection("settling quota") as conn:
            await conn.fetchrow(_CHARGE, key_id, holds_json(rows), max(0, tokens), max(0, cost_units))

    async def settle(self, reservation: Reservation, *, tokens: int, now: datetime, cost: Decimal = _NO_COST) -> None:
        units = to_units(max(cost, _NO_COST))
        async with self._db.connection("settling quota") as conn:
            await conn.fetchrow(_SETTLE, reservation.id, max(0, tokens), now, units, None)

    async def release(self, reservation: Reservation, *, now: datetime) -> None:
        async with self._db.connection("releasing quota") as conn:
            await conn.fetchrow(_SETTLE, reservation.id, None, now, None, None)

    async def sweep(self, now: datetime) -> int:
        total = 0
        while True:
            async with self._db.connection("sweeping expired reservations") as conn:
                swept = int((await conn.fetchrow(_SWEEP, now, self._sweep_batch))["closed"])
            total += swept
            if swept < self._sweep_batch:
                break
        async with self._db.connection("purging closed reservations") as conn:
            await conn.execute(_PURGE_RESERVATIONS, now - self._keep_closed, self._sweep_batch * 10)
            await conn.execute(_PRUNE_WINDOWS, now - PRUNE_AFTER, self._sweep_batch * 10)
        return total

    async def usage(self, *, key_id: str, budgets: tuple[Budget, ...], now: datetime) -> tuple[WindowUse, ...]:
        if not budgets:
            return ()
        bounds = [b.window.bounds(now)[0] for b in budgets]
        async with self._db.connection("reading quota usage") as conn:
            rows = await conn.fetch(_USAGE, key_id, [b.window.name for b in budgets], bounds)
        return uses_of(budgets, {r["window_name"]: (r["tokens"], r["requests"], r["cost"]) for r in rows})


def holds_json(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``holds`` column of a reservation row: what it holds in each window, and what each window counts."""
    return [
        {"w": r["w"], "s": r["s"].isoformat(), "t": r["t"], "r": r["r"], "ct": r["ct"], "c": r["c"], "cc": r["cc"]}
        for r in rows
    ]
