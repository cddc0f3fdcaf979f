"""A request's disconnect watcher leaves no reference cycle behind: what a finished request held is freed by
reference counting, not left for the garbage collector's full collections (their pauses grew with every
request: 17-21 ms under load before, 2 ms after; docs/benchmarks.md)."""

from __future__ import annotations

import asyncio
import gc
import weakref
from typing import Any

from apipod.entrypoints.http.request_scope import RequestLifetime


class Server:
    """The server's ``receive``: nothing more ever arrives. Weakly referenced, it tells when the lifetime that
    holds it is gone."""

    async def __call__(self) -> dict[str, Any]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_a_closed_lifetime_is_freed_without_the_collector() -> None:
    gc.collect()
    gc.disable()
    try:

        async def request() -> weakref.ref[Server]:
            server = Server()
            lifetime = RequestLifetime(server)
            lifetime.watch()
            await asyncio.sleep(0)  # the watcher is waiting for the server's next message
            await lifetime.close()
            return weakref.ref(server)

        gone = await asyncio.get_running_loop().create_task(request())
        for _ in range(3):
            await asyncio.sleep(0)  # the cancelled watcher finishes

        assert gone() is None
    finally:
        gc.enable()
