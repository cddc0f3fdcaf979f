"""The served app raises the collector's young threshold at start-up and gives the old one back at shutdown."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from apipod.bootstrap.settings import load_settings
from apipod.entrypoints.http import collector
from apipod.entrypoints.http.asgi import app_for


async def lifespan(app: Any, steps: tuple[str, ...], after: Callable[[str], object]) -> list[str]:
    """Sends ``lifespan.<step>`` for each step, calling ``after(step)`` once the app has answered it; returns
    the message types the app sent."""
    inbox: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    sent: list[str] = []
    answered = asyncio.Event()

    async def send(message: dict[str, str]) -> None:
        sent.append(message["type"])
        answered.set()

    task = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}}, inbox.get, send))
    for step in steps:
        answered.clear()
        await inbox.put({"type": f"lifespan.{step}"})
        await asyncio.wait_for(answered.wait(), 10)
        after(step)
    await asyncio.wait_for(task, 10)
    return sent


async def test_start_up_raises_the_young_threshold_and_shutdown_restores_it(tmp_path: Path) -> None:
    before = gc.get_threshold()
    app = app_for(load_settings({"DATABASE_URL": f"sqlite:///{tmp_path}/apipod.db"}), {}, admin_secret="s" * 32)
    seen: dict[str, tuple[int, int, int]] = {}

    sent = await lifespan(app, ("startup", "shutdown"), lambda step: seen.setdefault(step, gc.get_threshold()))

    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert seen["startup"] == (collector.YOUNG_THRESHOLD, before[1], before[2])
    assert seen["shutdown"] == before == gc.get_threshold()
    assert gc.get_freeze_count() == 0


def test_settle_freezes_what_start_up_built_and_restore_gives_it_back() -> None:
    before = gc.get_threshold()
    built = {"at": ["start-up"]}
    previous = collector.settle()
    try:
        assert previous == before
        assert gc.get_threshold()[0] == collector.YOUNG_THRESHOLD > before[0]
        assert not any(tracked is built for tracked in gc.get_objects())  # frozen: no generation holds it
    finally:
        collector.restore(previous)
    assert gc.get_threshold() == before
    assert any(tracked is built for tracked in gc.get_objects())
