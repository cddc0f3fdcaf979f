"""The asyncpg pool every PostgreSQL adapter shares, and the one place driver errors become domain errors.

Adapters borrow a connection for one short transaction (``async with db.connection() as conn``) and give it
back before anything else is awaited: no connection is ever held across an upstream call or a stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import asyncpg
import orjson

from apipod.domain.errors import ConflictError, StorageError

DRIVER_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    OSError,  # includes ConnectionError and TimeoutError
    ConnectionError,
    asyncio.TimeoutError,
)
"""What a database call may raise besides our own errors: all of it becomes ``StorageError``."""

SCHEMES = ("postgresql://", "postgres://")


def normalize_dsn(dsn: str) -> str:
    """Accept ``postgresql://``, ``postgres://`` and the SQLAlchemy-style ``postgresql+asyncpg://``."""
    if dsn.startswith("postgresql+asyncpg://"):
        dsn = "postgresql://" + dsn.removeprefix("postgresql+asyncpg://")
    if not dsn.startswith(SCHEMES):
        raise StorageError("A PostgreSQL DATABASE_URL starts with postgresql:// or postgres://.")
    return dsn


@contextmanager
def storage_errors(action: str) -> Iterator[None]:
    """Translate driver errors raised inside the block: unique violations to ConflictError, the rest
    to StorageError, each raised from the original so the cause stays in the traceback."""
    try:
        yield
    except asyncpg.UniqueViolationError as exc:
        raise ConflictError(f"{action}: a record with the same {_unique_what(exc)} exists already") from exc
    except DRIVER_ERRORS as exc:
        raise StorageError(f"{action}: database error ({type(exc).__name__}: {exc})") from exc


def _unique_what(exc: asyncpg.UniqueViolationError) -> str:
    """The clashing column(s) from the constraint name (``keys_digest_key`` -> "digest"), never the value."""
    name = str(getattr(exc, "constraint_name", "") or "")
    table = str(getattr(exc, "table_name", "") or "")
    if name.endswith("_pkey"):
        return "id"
    if table and name.startswith(table + "_") and name.endswith("_key"):
        return name[len(table) + 1 : -4].replace("_", " ")
    return name or "identity"


_JSONB_VERSION = b"\x01"  # jsonb's binary form: a version byte, then the JSON text


def _encode_jsonb(value: Any) -> bytes:
    return _JSONB_VERSION + orjson.dumps(value)


def _decode_jsonb(data: bytes) -> Any:
    return orjson.loads(memoryview(data)[1:])


async def _init_connection(conn: asyncpg.Connection) -> None:
    # json and jsonb in and out as Python values, through orjson, in the binary format: the usage writer's
    # binary COPY needs a binary encoder for every column, and bytes skip a decode to str on each value.
    catalog = "pg_catalog"
    await conn.set_type_codec("jsonb", encoder=_encode_jsonb, decoder=_decode_jsonb, schema=catalog, format="binary")
    await conn.set_type_codec("json", encoder=orjson.dumps, decoder=orjson.loads, schema=catalog, format="binary")


class _Connection(asyncpg.Connection):  # type: ignore[misc]
    """Pool connections go back without ``RESET ALL``/``UNLISTEN *``/...: that is one round trip saved on
    every operation. asyncpg still rolls back an open transaction on release.

    NOTE: so nothing may leave session state on a pool connection (SET, LISTEN, session advisory locks);
    the key listener has a connection of its own for that reason.
    """

    def get_reset_query(self) -> str:
        return ""


class PgDatabase:
    """One asyncpg pool, created at start-up and closed at shutdown.

    Attributes:
        pool: the asyncpg pool (for migrations and tests; adapters use ``connection()``).
    """

    def __init__(self, pool: asyncpg.Pool, *, dsn: str, acquire_timeout: float = 10.0) -> None:
        self.pool = pool
        self.dsn = dsn
        self._acquire_timeout = acquire_timeout

    @classmethod
    async def connect(
        cls,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        acquire_timeout: float = 10.0,
        command_timeout: float | None = 30.0,
        statement_cache_size: int = 100,
    ) -> PgDatabase:
        """Open the pool. ``statement_cache_size=0`` is needed behind a transaction-mode pgbouncer.

        Raises:
            StorageError: the server is unreachable or refuses the credentials.
        """
        dsn = normalize_dsn(dsn)
        with storage_errors("connecting to PostgreSQL"):
            pool = await asyncpg.create_pool(
                dsn,
                min_size=min_size,
                max_size=max_size,
                command_timeout=command_timeout,
                statement_cache_size=statement_cache_size,
                init=_init_connection,
                connection_class=_Connection,
            )
        return cls(pool, dsn=dsn, acquire_timeout=acquire_timeout)

    @asynccontextmanager
    async def connection(self, action: str = "database call") -> AsyncIterator[asyncpg.Connection]:
        """Borrow a connection for one short unit of work; driver errors inside become domain errors."""
        with storage_errors(action):
            async with self.pool.acquire(timeout=self._acquire_timeout) as conn:
                yield conn

    async def close(self, grace: float = 10.0) -> None:
        """Close the pool, waiting up to ``grace`` seconds for borrowed connections to come back."""
        try:
            await asyncio.wait_for(self.pool.close(), grace)
        except DRIVER_ERRORS:
            self.pool.terminate()
