"""Starting and stopping a gateway process: container, catalog, admin secret."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

import attrs
from dishka import AsyncContainer, Provider

from apipod.application.gateway import Gateway
from apipod.application.ports import Clock, IdGenerator
from apipod.bootstrap.catalog_file import demo_catalog, load_catalog_file, shortcut_catalog
from apipod.bootstrap.container import build_container
from apipod.bootstrap.settings import Settings
from apipod.domain.errors import ApipodError

log = logging.getLogger("apipod")


@attrs.define
class Runtime:
    """A started gateway and what it was built from; ``close()`` flushes usage and closes every pool."""

    container: AsyncContainer
    gateway: Gateway
    clock: Clock
    ids: IdGenerator
    sweeper: asyncio.Task[None] | None = None
    closers: list[Callable[[], Awaitable[None]]] = attrs.field(factory=list)

    async def close(self) -> None:
        for close in self.closers:
            await close()
        if self.sweeper is not None:
            self.sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.sweeper
        await self.gateway.usage_log.flush()
        await self.container.close()


SWEEP_INTERVAL = 15.0


async def sweep_forever(gateway: Gateway, clock: Clock, interval: float = SWEEP_INTERVAL) -> None:
    """Release quota holds whose process died before settling them. Safe to run in every process."""
    while True:
        await asyncio.sleep(interval)
        try:
            released = await gateway.ledger.sweep(clock.now())
        except ApipodError as exc:
            log.warning("reservation sweep failed: %s", exc.message)
            continue
        if released:
            log.info("released %d expired quota reservations", released)


async def start_runtime(settings: Settings, env: Mapping[str, str], *providers: Provider) -> Runtime:
    """The container (with the entrypoint's ``providers``, e.g. its request scope), the configured catalog
    applied, the sweeper started."""
    container = build_container(settings, *providers)
    try:
        gateway = await container.get(Gateway)
        await apply_configured_catalog(gateway, settings, env)
        clock = await container.get(Clock)
        runtime = Runtime(container=container, gateway=gateway, clock=clock, ids=await container.get(IdGenerator))
        runtime.sweeper = asyncio.create_task(
            sweep_forever(gateway, clock, settings.sweep_interval), name="apipod-sweeper"
        )
        if settings.is_postgres:
            from apipod.adapters.postgres import KeyChangeListener

            # Revocations reach this process's key cache at once, not only after the cache's TTL.
            listener = KeyChangeListener(settings.database_url, gateway.authenticator.forget)
            await listener.start()
            runtime.closers.append(listener.close)
        return runtime
    except BaseException:
        await container.close()
        raise


async def apply_configured_catalog(gateway: Gateway, settings: Settings, env: Mapping[str, str]) -> None:
    """The TOML file (upserts by name), then the environment shortcuts; with no file, the demo plan."""
    if settings.config_path:
        await gateway.apply_catalog(load_catalog_file(settings.config_path, env))
    else:
        await gateway.apply_catalog(demo_catalog())
    if settings.shortcuts:
        await gateway.apply_catalog(shortcut_catalog(settings.shortcuts))


def admin_secret_path(settings: Settings) -> Path:
    """Beside the SQLite file; in the working directory for other databases."""
    url = settings.database_url
    if url.startswith("sqlite:///") and ":memory:" not in url:
        return Path(url.removeprefix("sqlite:///") + ".admin-secret")
    return Path(".apipod-admin-secret")


def resolve_admin_secret(settings: Settings) -> tuple[str, bool]:
    """ADMIN_SECRET, or the generated one kept beside the database. Returns (secret, generated now)."""
    if settings.admin_secret:
        return settings.admin_secret, False
    path = admin_secret_path(settings)
    if path.is_file():
        secret = path.read_text().strip()
        if len(secret) >= 16:
            return secret, False
    secret = secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    return secret, True
