"""UsageLog in a list, with ``records()`` for tests to inspect what was written."""

from __future__ import annotations

from collections import deque
from datetime import datetime

from apipod.application.ports import UsageLog
from apipod.domain.usage import UsageRecord


class InMemoryUsageLog(UsageLog):
    """Rows are kept in arrival order. ``max_records`` bounds memory for long-running demos: beyond it the
    oldest rows go (say so when you set it; the default keeps everything)."""

    def __init__(self, *, max_records: int | None = None) -> None:
        self._rows: deque[UsageRecord] = deque(maxlen=max_records)

    async def record(self, record: UsageRecord) -> None:
        self._rows.append(record)

    async def flush(self) -> None:
        return None

    async def query(
        self, *, key_id: str | None = None, since: datetime | None = None, limit: int = 1000
    ) -> list[UsageRecord]:
        rows = [
            r
            for r in reversed(self._rows)
            if (key_id is None or r.key_id == key_id) and (since is None or r.timestamp >= since)
        ]
        # Stable sort over the reversed rows: equal timestamps stay latest-recorded first.
        rows.sort(key=lambda r: r.timestamp, reverse=True)
        return rows[: max(limit, 0)]

    def records(self) -> list[UsageRecord]:
        """Every row kept, in the order recorded."""
        return list(self._rows)
