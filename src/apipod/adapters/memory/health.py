"""The in-memory store is always reachable."""

from __future__ import annotations


class InMemoryStoreProbe:
    async def ping(self) -> None:
        return None
