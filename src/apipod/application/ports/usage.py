from __future__ import annotations

from datetime import datetime
from typing import Protocol

from apipod.domain.usage import UsageRecord


class UsageLog(Protocol):
    """Where per-request usage rows go. Writes may be buffered, but never dropped silently."""

    async def record(self, record: UsageRecord) -> None:
        """Accept one row. Must not block the request path on a slow store."""
        ...

    async def flush(self) -> None:
        """Write every accepted row before returning (shutdown, tests)."""
        ...

    async def query(
        self, *, key_id: str | None = None, since: datetime | None = None, limit: int = 1000
    ) -> list[UsageRecord]:
        """Written rows, newest first, after flushing what is pending."""
        ...
