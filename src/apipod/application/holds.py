"""Giving back what a request holds: every hold on its own, so one failing release never skips another.

A release that fails is logged and left to its expiry (leases and reservations all expire); a cancellation
that arrives while releasing is held back until every release has run, then raised.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

import attrs

from apipod.application.ports import LimitStore
from apipod.domain.limits import LimitKey

log = logging.getLogger("apipod.holds")


@attrs.frozen
class Lease:
    key: LimitKey
    id: str


async def run_each(steps: Iterable[tuple[str, Callable[[], Awaitable[None]]]]) -> None:
    """Await every ``(what, step)`` in order, whatever the others do."""
    cancelled: asyncio.CancelledError | None = None
    for what, step in steps:
        try:
            await step()
        except asyncio.CancelledError as exc:
            cancelled = exc
        except Exception as exc:  # noqa: BLE001 - the next hold must still be released
            log.error("%s failed (%s: %s); it is left to expire", what, type(exc).__name__, exc)
    if cancelled is not None:
        try:
            raise cancelled
        finally:
            del cancelled  # the traceback holds this frame: no cycle back (docs/benchmarks.md, tenth pass)


async def release_all(limits: LimitStore, leases: Iterable[Lease]) -> None:
    """``run_each`` for leases, without building a step per lease on the hot path."""
    cancelled: asyncio.CancelledError | None = None
    for lease in leases:
        try:
            await limits.release(lease.key, lease.id)
        except asyncio.CancelledError as exc:
            cancelled = exc
        except Exception as exc:  # noqa: BLE001 - the next lease must still be released
            log.error(
                "releasing a %s lease failed (%s: %s); it is left to expire",
                lease.key.kind.value,
                type(exc).__name__,
                exc,
            )
    if cancelled is not None:
        try:
            raise cancelled
        finally:
            del cancelled  # the traceback holds this frame: no cycle back (docs/benchmarks.md, tenth pass)
