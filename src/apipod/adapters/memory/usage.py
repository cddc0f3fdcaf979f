"""UsageLog in a list, with ``records()`` for tests to inspect what was written."""

from __future__ import annotations

from collections import deque
from datetime import datetime

from apipod.application.ports import UsageLog
from apipod.domain.usage import (
    UsageBucket,
    UsageCursor,
    UsageFilter,
    UsageGroup,
    UsagePage,
    UsageRecord,
    UsageSummary,
    UsageSummaryRow,
    matches,
)


class InMemoryUsageLog(UsageLog):
    """Rows are kept in arrival order, each with a row id (1, 2, ...). ``max_records`` bounds memory for
    long-running demos: beyond it the oldest rows go (say so when you set it; the default keeps everything)."""

    def __init__(self, *, max_records: int | None = None) -> None:
        self._rows: deque[tuple[int, UsageRecord]] = deque(maxlen=max_records)
        self._next_id = 1

    async def record(self, record: UsageRecord) -> None:
        self._rows.append((self._next_id, record))
        self._next_id += 1

    async def flush(self) -> None:
        return None

    def backlog(self) -> int:
        return 0

    async def query(
        self, *, key_id: str | None = None, since: datetime | None = None, limit: int = 1000
    ) -> list[UsageRecord]:
        page = await self.search(UsageFilter(key_id=key_id, since=since), limit=limit)
        return list(page.rows)

    async def search(self, where: UsageFilter, *, limit: int, after: UsageCursor | None = None) -> UsagePage:
        found = [
            (row_id, r)
            for row_id, r in self._rows
            if matches(r, where) and (after is None or (r.timestamp, row_id) < (after.timestamp, after.row_id))
        ]
        found.sort(key=lambda item: (item[1].timestamp, item[0]), reverse=True)
        page = found[: max(limit, 0)]
        more = len(found) > len(page) and page
        return UsagePage(
            rows=tuple(r for _, r in page),
            row_ids=tuple(row_id for row_id, _ in page),
            next_cursor=UsageCursor(timestamp=page[-1][1].timestamp, row_id=page[-1][0]) if more else None,
        )

    async def summarize(
        self, where: UsageFilter, *, group_by: UsageGroup, bucket: UsageBucket
    ) -> list[UsageSummaryRow]:
        summary = UsageSummary(group_by, bucket)
        for _, record in self._rows:
            if matches(record, where):
                summary.add(record)
        return summary.rows()

    def records(self) -> list[UsageRecord]:
        """Every row kept, in the order recorded."""
        return [r for _, r in self._rows]
