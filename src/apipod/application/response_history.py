"""ResponseHistory: the Responses API's stored responses (``store: true``), read back by
``GET /v1/responses/{id}`` and continued by ``previous_response_id``.

Each response belongs to the key that made it: to any other key it does not exist (404, never 403, so ids
cannot be probed). Responses expire ``ResponseRetention.ttl`` after they were made; expired rows are purged
lazily, at most once per ``PURGE_INTERVAL`` from ``save``, so no process needs a scheduler for them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import attrs

from apipod.application.ports import Clock, ResponseStore
from apipod.domain.errors import ApipodError, NotFoundError
from apipod.domain.stored_response import StoredResponse

log = logging.getLogger("apipod.responses")

PURGE_INTERVAL = 3600.0
"""Seconds between two purges of expired responses by one process."""


@attrs.frozen
class ResponseRetention:
    """How long a stored response is kept (``RESPONSES_TTL_DAYS``); zero keeps nothing."""

    ttl: timedelta = timedelta(days=30)

    @property
    def enabled(self) -> bool:
        return self.ttl > timedelta(0)


class ResponseHistory:
    def __init__(self, store: ResponseStore, clock: Clock, retention: ResponseRetention) -> None:
        self._store = store
        self._clock = clock
        self._ttl = retention.ttl
        self._enabled = retention.enabled
        self._next_purge: float | None = None

    @property
    def enabled(self) -> bool:
        """False when retention is zero: ``save`` keeps nothing and ``load`` finds nothing."""
        return self._enabled

    async def save(
        self, key_id: str, response_id: str, response: Mapping[str, Any], items: Sequence[Mapping[str, Any]]
    ) -> StoredResponse | None:
        """Keep a response for its key; returns what was stored (None when retention is zero).

        Raises:
            StorageError: the store failed (the response itself was already given to the client).
        """
        now = self._clock.now()
        stored = None
        if self._enabled:
            stored = StoredResponse(
                id=response_id,
                key_id=key_id,
                created_at=now,
                expires_at=now + self._ttl,
                response=response,
                items=tuple(items),
            )
            await self._store.put(stored)
        await self._purge_when_due(now)
        return stored

    async def load(self, key_id: str, response_id: str) -> StoredResponse:
        """The key's response ``response_id``.

        Raises:
            NotFoundError: absent, made by another key, expired, or retention is zero.
        """
        if self._enabled:
            stored = await self._store.get(response_id, key_id=key_id, now=self._clock.now())
            if stored is not None:
                return stored
        raise _not_found(response_id)

    async def delete(self, key_id: str, response_id: str) -> None:
        """Forget the key's response ``response_id`` (also when retention is zero: rows kept before go too).

        Raises:
            NotFoundError: nothing of this key's was there to delete.
        """
        if not await self._store.delete(response_id, key_id=key_id, now=self._clock.now()):
            raise _not_found(response_id)

    async def purge(self) -> int:
        """Remove every expired response now; returns how many went. For a sweeper or an operator."""
        return await self._store.purge_expired(self._clock.now())

    async def _purge_when_due(self, now: datetime) -> None:
        tick = self._clock.monotonic()
        if self._next_purge is not None and tick < self._next_purge:
            return
        # Set before awaiting: concurrent saves must not all purge at once.
        self._next_purge = tick + PURGE_INTERVAL
        try:
            purged = await self._store.purge_expired(now)
        except ApipodError as exc:
            log.warning("purging expired stored responses failed: %s", exc.message)
            return
        if purged:
            log.info("purged %d expired stored responses", purged)


def _not_found(response_id: str) -> NotFoundError:
    return NotFoundError(f"No response found with id '{response_id}'.")
