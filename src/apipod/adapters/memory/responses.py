"""ResponseStore in a dict: for embedding, demos (``DATABASE_URL=memory://``) and use-case tests."""

from __future__ import annotations

from datetime import datetime

from apipod.application.ports import ResponseStore
from apipod.domain.stored_response import StoredResponse


class InMemoryResponseStore(ResponseStore):
    """Responses by id. Nothing awaits, so every method is atomic on the event loop; expired responses stay
    until ``purge_expired``."""

    def __init__(self) -> None:
        self._by_id: dict[str, StoredResponse] = {}

    async def put(self, stored: StoredResponse) -> None:
        self._by_id[stored.id] = stored

    async def get(self, response_id: str, *, key_id: str, now: datetime) -> StoredResponse | None:
        stored = self._by_id.get(response_id)
        if stored is None or stored.key_id != key_id or stored.is_expired(now):
            return None
        return stored

    async def delete(self, response_id: str, *, key_id: str, now: datetime) -> bool:
        if await self.get(response_id, key_id=key_id, now=now) is None:
            return False
        del self._by_id[response_id]
        return True

    async def purge_expired(self, now: datetime) -> int:
        expired = [stored.id for stored in self._by_id.values() if stored.is_expired(now)]
        for response_id in expired:
            del self._by_id[response_id]
        return len(expired)

    @property
    def size(self) -> int:
        """How many responses are kept, expired ones included (for tests)."""
        return len(self._by_id)
