"""CLI commands that need more than the core: the import from the Go original and Copilot's device login."""

from __future__ import annotations

import sys
from collections.abc import Mapping

import orjson

from apipod.bootstrap.maintenance import import_original_database, login_copilot
from apipod.bootstrap.settings import Settings


async def import_original(settings: Settings, env: Mapping[str, str], source: str) -> int:
    summary = await import_original_database(settings, source)
    sys.stdout.write(orjson.dumps(summary).decode() + "\n")
    return 0


async def copilot_login(settings: Settings, env: Mapping[str, str], provider: str) -> int:
    def show(message: str) -> None:
        sys.stdout.write(message + "\n")
        sys.stdout.flush()

    await login_copilot(settings, provider, show)
    return 0
