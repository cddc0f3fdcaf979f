"""Database maintenance commands: migrations and the import from the original Go project."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from apipod.bootstrap.settings import ConfigError, Settings
from apipod.bootstrap.stores import open_stores
from apipod.domain.catalog import UpstreamKind, find_upstream


async def migrate_database(database_url: str) -> list[int]:
    """Apply pending migrations; returns the versions applied now."""
    if database_url.startswith("sqlite:"):
        from apipod.adapters.sqlite import SqliteDatabase

        db = SqliteDatabase.from_url(database_url)
        await db.open()
        try:
            return await db.migrate()
        finally:
            await db.close()
    if database_url.startswith(("postgres://", "postgresql://")):
        from apipod.adapters.postgres import PgDatabase, run_migrations

        pg = await PgDatabase.connect(database_url)
        try:
            return await run_migrations(pg.pool)
        finally:
            await pg.close()
    if database_url.startswith("memory:"):
        return []
    raise ConfigError(f"cannot migrate {database_url!r}: not a SQLite or PostgreSQL URL")


async def import_original_database(settings: Settings, source_dsn: str) -> dict[str, Any]:
    """Import plans, providers, accounts, models, routes and users of the Go original into apipod's stores."""
    from apipod.adapters.postgres.import_original import import_original

    stores = await open_stores(settings.database_url, secret_key=settings.secret_key)
    try:
        report = await import_original(source_dsn, catalog=stores.catalog, keys=stores.keys)
    finally:
        await stores.close()
    return attrs.asdict(report)


async def login_copilot(settings: Settings, upstream_name: str, show: Callable[[str], None]) -> None:
    """GitHub's device flow for a ``copilot`` upstream; the GitHub token becomes one more account of it."""
    from apipod.adapters.upstreams._http import make_http_client
    from apipod.adapters.upstreams.copilot_login import (
        DEFAULT_CLIENT_ID,
        DEFAULT_GITHUB_BASE_URL,
    )
    from apipod.adapters.upstreams.copilot_login import login_copilot as device_flow

    stores = await open_stores(settings.database_url, secret_key=settings.secret_key)
    try:
        upstream = find_upstream(await stores.catalog.snapshot(), upstream_name)
        if upstream is None or upstream.kind is not UpstreamKind.COPILOT:
            raise ConfigError(f"there is no copilot provider named {upstream_name!r} in the catalog")
        client = make_http_client(transport="httpx", max_connections=4)
        try:
            token = await device_flow(
                client,
                github_base_url=str(upstream.options.get("github_base_url") or DEFAULT_GITHUB_BASE_URL),
                client_id=str(upstream.options.get("client_id") or DEFAULT_CLIENT_ID),
                show=show,
            )
        finally:
            await client.aclose()
        account = await stores.catalog.add_account(upstream_name, token)
        show(f"Stored the GitHub token as account {account.label} of provider {upstream_name!r}.")
    finally:
        await stores.close()
