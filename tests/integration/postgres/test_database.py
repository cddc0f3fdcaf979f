"""PgDatabase: URL forms, and driver errors turned into domain errors at the border."""

from __future__ import annotations

import asyncpg
import pytest

from apipod.adapters.postgres import PgDatabase, PgKeyRepository
from apipod.adapters.postgres.database import normalize_dsn, storage_errors
from apipod.domain.errors import ConflictError, StorageError
from tests.contracts.builders import make_key


def test_urls_in_the_usual_spellings_are_accepted() -> None:
    assert normalize_dsn("postgres://u@h/db") == "postgres://u@h/db"
    assert normalize_dsn("postgresql+asyncpg://u@h/db") == "postgresql://u@h/db"
    with pytest.raises(StorageError, match="postgresql://"):
        normalize_dsn("mysql://u@h/db")


async def test_an_unreachable_server_is_a_storage_error_from_the_driver_error() -> None:
    with pytest.raises(StorageError) as caught:
        await PgDatabase.connect("postgresql://postgres@127.0.0.1:1/nowhere", min_size=1)

    assert isinstance(caught.value.__cause__, OSError)
    assert "connecting to PostgreSQL" in caught.value.message


async def test_a_failing_statement_is_a_storage_error(pg: PgDatabase) -> None:
    with pytest.raises(StorageError) as caught:
        async with pg.connection("doing nonsense") as conn:
            await conn.execute("SELECT * FROM no_such_table")

    assert isinstance(caught.value.__cause__, asyncpg.UndefinedTableError)
    assert caught.value.message.startswith("doing nonsense: ")


async def test_a_unique_violation_is_a_conflict_naming_the_column_not_the_value(pg: PgDatabase) -> None:
    repo = PgKeyRepository(pg)
    await repo.add(make_key("key_1", plaintext="apk_same"))

    with pytest.raises(ConflictError) as caught:
        await repo.add(make_key("key_2", plaintext="apk_same"))

    assert "digest" in caught.value.message
    assert make_key("key_2", plaintext="apk_same").digest not in caught.value.message


def test_errors_of_our_own_pass_through_untouched() -> None:
    with pytest.raises(KeyError), storage_errors("anything"):
        raise KeyError("not a driver error")
