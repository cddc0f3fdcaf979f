"""Starting and stopping a gateway process: container, catalog, admin secret."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path

import attrs
from dishka import AsyncContainer

from apipod.application.gateway import Gateway
from apipod.application.ports import Clock, IdGenerator
from apipod.bootstrap.catalog_file import demo_catalog, load_catalog_file, shortcut_catalog
from apipod.bootstrap.container import build_container
from apipod.bootstrap.settings import Settings


@attrs.define
class Runtime:
    """A started gateway and what it was built from; ``close()`` flushes usage and closes every pool."""

    container: AsyncContainer
    gateway: Gateway
    clock: Clock
    ids: IdGenerator

    async def close(self) -> None:
        await self.gateway.usage_log.flush()
        await self.container.close()


async def start_runtime(settings: Settings, env: Mapping[str, str]) -> Runtime:
    container = build_container(settings)
    try:
        gateway = await container.get(Gateway)
        await apply_configured_catalog(gateway, settings, env)
        return Runtime(
            container=container, gateway=gateway, clock=await container.get(Clock), ids=await container.get(IdGenerator)
        )
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
