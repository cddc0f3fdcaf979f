from __future__ import annotations

from datetime import datetime
from typing import Protocol

from apipod.domain.stored_response import StoredResponse


class ResponseStore(Protocol):
    """Stored Responses API responses, by id and scoped to a key. Time always comes from the caller."""

    async def put(self, stored: StoredResponse) -> None:
        """Keep ``stored``, replacing a response with the same id."""
        ...

    async def get(self, response_id: str, *, key_id: str, now: datetime) -> StoredResponse | None:
        """The response; None when absent, made by another key, or expired at ``now``."""
        ...

    async def delete(self, response_id: str, *, key_id: str, now: datetime) -> bool:
        """Remove the response; False (nothing removed) when ``get`` would have returned None."""
        ...

    async def purge_expired(self, now: datetime) -> int:
        """Remove every response expired at ``now``; returns how many went."""
        ...
