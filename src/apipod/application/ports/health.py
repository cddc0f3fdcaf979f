"""The readiness probe of the store: a cheap round trip that says the store answers right now."""

from __future__ import annotations

from typing import Protocol


class StoreProbe(Protocol):
    async def ping(self) -> None:
        """Return when the store answered one trivial query.

        Raises:
            StorageError: the store is unreachable or failed.
        """
        ...
