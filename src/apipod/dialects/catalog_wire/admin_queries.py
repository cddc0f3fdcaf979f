"""Admin API v1 inputs: key changes, rotation, and the query strings of lists and usage reports. Each is an
attrs class the converter structures into (every failure a WireError naming the field) and the OpenAPI
document is generated from (``schema.py``); bounds are declared once, in ``metadata``, and checked by the hooks.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

import attrs
import orjson
from cattrs.gen import override

from apipod.dialects.catalog_wire import values
from apipod.dialects.catalog_wire.admin_input import MAX_USAGE_LIMIT, NAME_SCHEMA, page_limit
from apipod.dialects.catalog_wire.converter import converter, read, table_hook
from apipod.dialects.catalog_wire.errors import WireError
from apipod.dialects.catalog_wire.schema import SCHEMA
from apipod.domain.keys import MAX_ROTATION_GRACE_SECONDS, KeyStatus
from apipod.domain.usage import UsageBucket, UsageGroup, UsageStatus

DEFAULT_PAGE = 100


def _text(value: Any, _: Any) -> str | None:
    return None if value is None else values.string(value)


def _limit_field(default: int | None = DEFAULT_PAGE) -> Any:
    return attrs.field(
        default=default,
        metadata={SCHEMA: {"minimum": 1, "description": f"Rows per page; more than {MAX_USAGE_LIMIT} reads as that."}},
    )


_CURSOR_DOC = {"description": "Opaque: the `next_cursor` of the previous page."}


@attrs.frozen(kw_only=True)
class KeyListQuery:
    """Filters of `GET /admin/keys`; without `limit` or `cursor` every matching key is answered at once."""

    plan: str | None = None
    status: KeyStatus | None = None
    q: str | None = attrs.field(default=None, metadata={SCHEMA: {"description": "The name contains this."}})
    limit: int | None = _limit_field(None)
    cursor: str | None = attrs.field(default=None, metadata={SCHEMA: _CURSOR_DOC})


@attrs.frozen(kw_only=True)
class UsageFilterQuery:
    """Every parameter given narrows the rows; `since` inclusive, `until` exclusive (RFC 3339 with an offset)."""

    key_id: str | None = None
    plan: str | None = None
    model: str | None = attrs.field(default=None, metadata={SCHEMA: {"description": "The model asked for."}})
    upstream_model: str | None = None
    provider: str | None = None
    status: UsageStatus | None = None
    request_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@attrs.frozen(kw_only=True)
class UsageRowsQuery(UsageFilterQuery):
    limit: int = _limit_field()
    cursor: str | None = attrs.field(default=None, metadata={SCHEMA: _CURSOR_DOC})


@attrs.frozen(kw_only=True)
class UsageSummaryQuery(UsageFilterQuery):
    group_by: UsageGroup = UsageGroup.MODEL
    bucket: UsageBucket = UsageBucket.DAY


@attrs.frozen(kw_only=True)
class PageQuery:
    """Only the page of a key's usage: its rows, newest first."""

    limit: int = _limit_field()
    cursor: str | None = attrs.field(default=None, metadata={SCHEMA: _CURSOR_DOC})


@attrs.frozen(kw_only=True)
class PatchKeyBody:
    """Any of the fields; the others stay. `expires_at: null` means the key never expires."""

    name: str | None = attrs.field(default=None, metadata={SCHEMA: NAME_SCHEMA})
    tier: str | None = attrs.field(default=None, metadata={SCHEMA: NAME_SCHEMA | {"description": "The plan's name."}})
    expires_at: datetime | None = None
    active: bool | None = attrs.field(default=None, metadata={SCHEMA: {"type": "boolean"}})


@attrs.frozen(kw_only=True)
class RotateKeyBody:
    """`grace_seconds`: how long the old secret keeps working (0, the default: it stops at once)."""

    grace_seconds: float = attrs.field(
        default=0.0, metadata={SCHEMA: {"minimum": 0, "maximum": MAX_ROTATION_GRACE_SECONDS}}
    )


def _grace(value: Any, _: Any) -> float:
    seconds = values.number(value)
    if not 0 <= seconds <= MAX_ROTATION_GRACE_SECONDS:
        raise ValueError(f"must be between 0 and {MAX_ROTATION_GRACE_SECONDS} seconds")
    return seconds


def _optional_name(value: Any, _: Any) -> str | None:
    return None if value is None else values.name(value)


def _enum_of(cls: Any) -> Any:
    def structure(value: Any, _: Any) -> Any:
        if value is None:
            return None
        text = values.string(value)
        try:
            return cls(text)
        except ValueError:
            raise ValueError(f"must be one of {', '.join(m.value for m in cls)}") from None

    return structure


_FILTERS: dict[str, Any] = {
    name: override(struct_hook=_text)
    for name in ("key_id", "plan", "model", "upstream_model", "provider", "request_id")
} | {
    "status": override(struct_hook=_enum_of(UsageStatus)),
    "since": override(struct_hook=values.optional_timestamp),
    "until": override(struct_hook=values.optional_timestamp),
}
_PAGE: dict[str, Any] = {"limit": override(struct_hook=page_limit), "cursor": override(struct_hook=_text)}

_KEY_FILTERS = {"plan": _FILTERS["plan"], "q": _FILTERS["plan"], "status": override(struct_hook=_enum_of(KeyStatus))}
_GROUPING = {
    "group_by": override(struct_hook=_enum_of(UsageGroup)),
    "bucket": override(struct_hook=_enum_of(UsageBucket)),
}
for _cls, _fields in (
    (KeyListQuery, _KEY_FILTERS | _PAGE),
    (UsageFilterQuery, _FILTERS),
    (UsageRowsQuery, _FILTERS | _PAGE),
    (UsageSummaryQuery, _FILTERS | _GROUPING),
    (PageQuery, _PAGE),
    (RotateKeyBody, {"grace_seconds": override(struct_hook=_grace)}),
):
    converter.register_structure_hook(_cls, table_hook(converter, _cls, **_fields))

converter.register_structure_hook(
    PatchKeyBody,
    table_hook(
        converter,
        PatchKeyBody,
        name=override(struct_hook=_optional_name),
        tier=override(struct_hook=_optional_name),
        expires_at=override(struct_hook=values.optional_timestamp),
        active=override(struct_hook=lambda v, _: None if v is None else values.boolean(v)),
    ),
)


def query_of(params: dict[str, str], cls: type[Any]) -> Any:
    """A query string, read as ``cls``: only its fields are looked at (others are ignored, as HTTP does)."""
    names = {a.name for a in attrs.fields(cls)}
    return read({k: v for k, v in params.items() if k in names}, cls)


def encode_cursor(data: dict[str, Any]) -> str:
    """Opaque to clients; URL-safe."""
    return base64.urlsafe_b64encode(orjson.dumps(data)).decode().rstrip("=")


def decode_cursor(text: str) -> dict[str, Any]:
    try:
        data = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError):
        raise WireError("cursor", "is not a cursor this API gave out") from None
    if not isinstance(data, dict):
        raise WireError("cursor", "is not a cursor this API gave out")
    return data
