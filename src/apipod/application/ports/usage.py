from __future__ import annotations

from datetime import datetime
from typing import Protocol

from apipod.domain.usage import (
    UsageBucket,
    UsageCursor,
    UsageFilter,
    UsageGroup,
    UsagePage,
    UsageRecord,
    UsageSummaryRow,
)


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

    async def search(self, where: UsageFilter, *, limit: int, after: UsageCursor | None = None) -> UsagePage:
        """Rows matching ``where``, newest first (timestamp, then row id), at most ``limit``, starting after
        ``after`` (the previous page's ``next_cursor``); pending rows are flushed first."""
        ...

    async def summarize(
        self, where: UsageFilter, *, group_by: UsageGroup, bucket: UsageBucket
    ) -> list[UsageSummaryRow]:
        """Per bucket (UTC hour or day) and group: counts, tokens by kind, cost, errors, latency p50/p95;
        ordered by bucket, then group."""
        ...

    def backlog(self) -> int:
        """Rows accepted and not yet written (0 for stores that write at once)."""
        ...
