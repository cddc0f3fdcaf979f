"""The admin API's own inputs besides catalog tables: the create-key body and the usage query."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import attrs
from cattrs.gen import override

from apipod.dialects.catalog_wire import values
from apipod.dialects.catalog_wire.converter import converter, read, table_hook
from apipod.dialects.catalog_wire.errors import WireError
from apipod.dialects.catalog_wire.schema import SCHEMA

MAX_EXPIRES_IN_DAYS = 100 * 366
MAX_USAGE_LIMIT = 10_000
# What ``values.name`` accepts: not blank, at most NAME_MAX characters, no control characters.
NAME_SCHEMA = {
    "type": "string",
    "maxLength": values.NAME_MAX,
    "pattern": "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$",
}


@attrs.frozen(kw_only=True)
class CreateKeyBody:
    """``tier`` names the plan; ``sub_name`` and ``plan`` are the original project's spellings of it."""

    name: str = attrs.field(metadata={SCHEMA: NAME_SCHEMA})
    tier: str | None = attrs.field(default=None, metadata={SCHEMA: {"description": "The plan's name."}})
    sub_name: str | None = None
    plan: str | None = None
    expires_in: float | None = attrs.field(
        default=None,
        metadata={SCHEMA: {"exclusiveMinimum": 0, "maximum": MAX_EXPIRES_IN_DAYS, "description": "Days from now."}},
    )
    expires_at: datetime | None = None

    def plan_name(self) -> str:
        chosen = self.tier or self.sub_name or self.plan
        if chosen is None:
            raise WireError("tier", "is required (the plan's name)")
        return chosen

    def expiry(self, now: datetime) -> datetime | None:
        if self.expires_in is not None:
            return now + timedelta(days=self.expires_in)
        return self.expires_at


def _days(value: Any, _: Any) -> float | None:
    if value is None:
        return None
    days = values.number(value)
    if not 0 < days <= MAX_EXPIRES_IN_DAYS:
        raise ValueError(f"must be a positive number of days, at most {MAX_EXPIRES_IN_DAYS}")
    return days


def _optional_name(value: Any, _: Any) -> str | None:
    return None if value is None or value == "" else values.name(value)


@attrs.frozen(kw_only=True)
class UsageQuery:
    key_id: str | None = None
    since: datetime | None = None
    limit: int = 100


def page_limit(value: Any, _: Any) -> int:
    """At least 1; more than the most one answer carries reads as that most (as it always has)."""
    text = values.string(value).strip()
    if not text.isascii() or not text.isdigit() or int(text[:9]) == 0:
        raise ValueError("must be a whole number of rows, 1 or more")
    return MAX_USAGE_LIMIT if len(text) > 9 else min(int(text), MAX_USAGE_LIMIT)


name = override(struct_hook=_optional_name)
converter.register_structure_hook(
    CreateKeyBody,
    table_hook(
        converter,
        CreateKeyBody,
        _cattrs_forbid_extra_keys=False,  # the original's clients send fields of their own; they are ignored
        name=override(struct_hook=values.name),
        tier=name,
        sub_name=name,
        plan=name,
        expires_in=override(struct_hook=_days),
        expires_at=override(struct_hook=values.optional_timestamp),
    ),
)
converter.register_structure_hook(
    UsageQuery,
    table_hook(
        converter,
        UsageQuery,
        _cattrs_forbid_extra_keys=False,
        key_id=override(struct_hook=lambda v, _: None if v is None else values.string(v)),
        since=override(struct_hook=values.optional_timestamp),
        limit=override(struct_hook=page_limit),
    ),
)


def create_key_body(body: Any) -> CreateKeyBody:
    return read(body, CreateKeyBody)


def usage_query(params: dict[str, str]) -> UsageQuery:
    """Query parameters are strings; only the ones given are read."""
    return read({k: v for k, v in params.items() if k in ("key_id", "since", "limit")}, UsageQuery)


__all__ = ["CreateKeyBody", "UsageQuery", "create_key_body", "usage_query"]
