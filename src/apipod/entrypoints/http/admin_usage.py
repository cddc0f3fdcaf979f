"""Admin usage reports: rows with filters and pages, aggregates per hour or day and group, both as CSV too.
CSV is streamed page by page, so an export of any size holds one page in memory."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from typing import Any

from apipod.application.gateway import Gateway
from apipod.dialects.catalog_wire import WireError, converter, usage_view
from apipod.dialects.catalog_wire.admin_queries import (
    UsageFilterQuery,
    UsageRowsQuery,
    UsageSummaryQuery,
    decode_cursor,
    encode_cursor,
)
from apipod.dialects.catalog_wire.views import summary_view
from apipod.domain.usage import UsageCursor, UsageFilter
from apipod.entrypoints.http.admin import invalid
from apipod.entrypoints.http.admin_api import AdminCall, Answer

CSV = "text/csv; charset=utf-8"
EXPORT_PAGE = 1000
MAX_EXPORT_ROWS = 1_000_000


def usage_filter(query: UsageFilterQuery) -> UsageFilter:
    return UsageFilter(
        key_id=query.key_id,
        plan=query.plan,
        requested_model=query.model,
        routed_model=query.upstream_model,
        provider=query.provider,
        status=query.status,
        request_id=query.request_id,
        since=query.since,
        until=query.until,
    )


def _cursor(text: str | None) -> UsageCursor | None:
    if text is None:
        return None
    data = decode_cursor(text)
    try:
        timestamp = datetime.fromisoformat(str(data["t"]))
        row_id = data["i"]
        if not isinstance(row_id, int) or timestamp.tzinfo is None:
            raise ValueError
    except (KeyError, ValueError):
        raise invalid(WireError("cursor", "is not a cursor this API gave out")) from None
    return UsageCursor(timestamp=timestamp, row_id=row_id)


def _encode(cursor: UsageCursor | None) -> str | None:
    return None if cursor is None else encode_cursor({"t": cursor.timestamp.isoformat(), "i": cursor.row_id})


async def usage_page(gateway: Gateway, where: UsageFilter, *, limit: int, cursor: str | None) -> dict[str, Any]:
    page = await gateway.usage_log.search(where, limit=limit, after=_cursor(cursor))
    return {"data": [usage_view(r) for r in page.rows], "next_cursor": _encode(page.next_cursor)}


async def list_usage(call: AdminCall) -> Answer:
    query: UsageRowsQuery = call.query
    return Answer(await usage_page(call.gateway, usage_filter(query), limit=query.limit, cursor=query.cursor))


async def summarize_usage(call: AdminCall) -> Answer:
    query: UsageSummaryQuery = call.query
    rows = await call.gateway.usage_log.summarize(usage_filter(query), group_by=query.group_by, bucket=query.bucket)
    catalog = await call.gateway.catalog.snapshot()
    return Answer(
        {
            "group_by": query.group_by.value,
            "bucket": query.bucket.value,
            "currency": catalog.currency,
            "data": [summary_view(r) for r in rows],
        }
    )


ROW_COLUMNS = (
    "timestamp",
    "request_id",
    "key_id",
    "plan",
    "user",
    "requested_model",
    "routed_model",
    "upstream_provider",
    "status",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cache_creation_input_tokens",
    "reasoning_tokens",
    "token_count",
    "cost",
    "latency_ms",
    "ttft_ms",
    "error",
)
SUMMARY_COLUMNS = (
    "bucket_start",
    "group",
    "requests",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cache_creation_input_tokens",
    "reasoning_tokens",
    "cost",
    "errors",
    "latency_p50_ms",
    "latency_p95_ms",
)


def _csv_lines(columns: tuple[str, ...], rows: Iterable[dict[str, Any]], *, header: bool) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    if header:
        writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row[c] is None else _cell(row[c]) for c in columns])
    return out.getvalue().encode()


def _cell(value: Any) -> str:
    """A text cell a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``) is quoted with ``'``."""
    text = str(converter.unstructure(value)) if not isinstance(value, str) else value
    if isinstance(value, str) and text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


async def _row_stream(gateway: Gateway, where: UsageFilter) -> AsyncIterator[bytes]:
    yield _csv_lines(ROW_COLUMNS, (), header=True)
    after: UsageCursor | None = None
    sent = 0
    while sent < MAX_EXPORT_ROWS:
        page = await gateway.usage_log.search(where, limit=EXPORT_PAGE, after=after)
        yield _csv_lines(ROW_COLUMNS, (usage_view(r) for r in page.rows), header=False)
        sent += len(page.rows)
        if page.next_cursor is None or not page.rows:
            return
        after = page.next_cursor


async def usage_csv(call: AdminCall) -> Answer:
    query: UsageFilterQuery = call.query
    return Answer(stream=_row_stream(call.gateway, usage_filter(query)), content_type=CSV, filename="usage.csv")


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def summary_csv(call: AdminCall) -> Answer:
    query: UsageSummaryQuery = call.query
    rows = await call.gateway.usage_log.summarize(usage_filter(query), group_by=query.group_by, bucket=query.bucket)
    data = _csv_lines(SUMMARY_COLUMNS, (summary_view(r) for r in rows), header=True)
    return Answer(stream=_once(data), content_type=CSV, filename="usage-summary.csv")
