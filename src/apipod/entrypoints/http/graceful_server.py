"""uvicorn's server with apipod's shutdown: drain, grace, then streams ended with an error event.

uvicorn alone stops listening at the first SIGTERM, cancels whatever still runs after its graceful timeout
(a stream is cut without a word), skips the application's shutdown on a second signal (usage not flushed),
and re-raises the signal when done (the exit status is not 0). Here instead:

1. SIGTERM or SIGINT: ``/health/ready`` answers 503 "draining" at once; connections are still accepted
   for ``drain`` seconds, so load balancers notice before anything is refused;
2. the listening sockets close; idle connections are closed, requests and streams in flight run to their
   end for up to ``grace`` seconds;
3. the streams still running are ended with the shutdown error event in their dialect (their usage is
   settled as for any ended stream), and what remains after a few more seconds is cancelled;
4. the application's shutdown runs (usage flushed, pools closed) and the process exits 0.

A second signal skips what is left of 1 and 2 and ends the streams at once; step 4 still runs.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from types import FrameType

import uvicorn

from apipod.entrypoints.http.burst_accept import BurstAcceptServer
from apipod.entrypoints.http.serving import Serving

log = logging.getLogger("apipod")

LAST_WORDS = 5.0
"""Seconds for the streams told to end (step 3) to write their error event and settle."""
FORCED_LAST_WORDS = 0.5


class GracefulServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, serving: Serving, *, drain: float, grace: float) -> None:
        super().__init__(config)
        self.serving = serving
        self.drain = drain
        self.grace = grace
        self._signalled = False
        self._drain_until: float | None = None
        self._listeners: list[BurstAcceptServer] = []

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's start-up (the lifespan), with the sockets served by ``BurstAcceptServer`` instead of the
        loop's own listener, which takes one connection per turn of the loop (burst_accept.py)."""
        if sockets is None:
            sockets = [self.config.bind_socket()]  # as uvicorn binds host and port, and logs where
        await super().startup(sockets=[])  # the lifespan; no listener of uvicorn's
        if self.should_exit:  # the lifespan's start-up failed
            return
        loop = asyncio.get_running_loop()
        config, state, app_state = self.config, self.server_state, self.lifespan.state

        def protocol() -> asyncio.Protocol:
            made: asyncio.Protocol = config.http_protocol_class(  # type: ignore[call-arg]
                config=config, server_state=state, app_state=app_state, _loop=loop
            )
            return made

        for sock in sockets:
            listener = BurstAcceptServer(sock, protocol, backlog=config.backlog)
            listener.start(loop)
            self._listeners.append(listener)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """A signal handler (so it only sets flags). uvicorn's own is not called: it would re-raise the
        signal after the shutdown, and the process would not exit 0."""
        if self._signalled:
            self.force_exit = True
            self.should_exit = True
            return
        self._signalled = True
        self.serving.begin_draining()
        if self.drain <= 0:
            self.should_exit = True

    async def on_tick(self, counter: int) -> bool:
        if self._signalled and not self.should_exit:
            now = asyncio.get_running_loop().time()
            if self._drain_until is None:
                log.warning("shutting down: draining for %g s before closing the listener", self.drain)
                self._drain_until = now + self.drain
            elif now >= self._drain_until:
                self.should_exit = True
        return await super().on_tick(counter)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.serving.begin_draining()
        for server in self.servers:
            server.close()
        for listener in self._listeners:
            listener.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()  # idle keep-alive connections close now, busy ones after their response
        loop = asyncio.get_running_loop()
        if await self._wait_idle(loop.time() + self.grace, stop_on_force=True):
            stopped = self.serving.stop_streams()
            if stopped:
                log.warning("shutting down: ending %d stream(s) still running", stopped)
            last_words = FORCED_LAST_WORDS if self.force_exit else LAST_WORDS
            if await self._wait_idle(loop.time() + last_words, stop_on_force=False):
                log.warning("shutting down: cancelling %d request(s) still running", len(self.server_state.tasks))
                for task in list(self.server_state.tasks):
                    task.cancel()
                await self._wait_idle(loop.time() + 1.0, stop_on_force=False)
        await self.lifespan.shutdown()  # also after a second signal: usage is flushed

    async def _wait_idle(self, deadline: float, *, stop_on_force: bool) -> bool:
        """Wait until no request is running; True when some still are at ``deadline`` (or on a forced
        exit, with ``stop_on_force``)."""
        loop = asyncio.get_running_loop()
        state = self.server_state
        while state.tasks or state.connections:
            if loop.time() >= deadline or (stop_on_force and self.force_exit):
                return bool(state.tasks)
            await asyncio.sleep(0.05)
        return False
