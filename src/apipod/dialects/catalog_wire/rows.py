"""Database rows back into domain objects, through the same converter as the catalog file.

A row that does not read is a damaged database, not a bad request: it becomes a StorageError naming the
table and field (never the value, which may be a secret)."""

from __future__ import annotations

from typing import Any, TypeVar

from apipod.dialects.catalog_wire.converter import read
from apipod.dialects.catalog_wire.errors import WireError
from apipod.domain.errors import StorageError

T = TypeVar("T")


def from_row(data: Any, type_: type[T], table: str) -> T:
    try:
        return read(data, type_, stored=True)
    except WireError as exc:
        raise StorageError(f"A row of '{table}' cannot be read: {exc.field or 'the row'} {exc.reason}.") from None
