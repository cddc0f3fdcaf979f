"""What the HTTP app shares with the server process that runs it: whether it is draining, the streams in
flight (so a shutdown can end them), and the stream settings."""

from __future__ import annotations

import falcon.asgi
from dishka import Provider, Scope, provide
from dishka.exceptions import NoFactoryError

from apipod.entrypoints.http.request_scope import ROOT, container_of
from apipod.entrypoints.http.streaming import StreamControl


class Serving:
    """One per process. ``draining`` turns readiness to 503; ``stop_streams`` ends the streams still
    running with the shutdown error event."""

    def __init__(self, *, keepalive_seconds: float = 15.0, flush_interval_ms: int = 0) -> None:
        self.keepalive_seconds = keepalive_seconds
        self.flush_delay = flush_interval_ms / 1000
        self.draining = False
        self.streams: set[StreamControl] = set()

    def begin_draining(self) -> None:
        self.draining = True

    def stop_streams(self) -> int:
        """End every stream in flight; returns how many there were."""
        streams = list(self.streams)
        for stream in streams:
            stream.stop()
        return len(streams)


class ServingProvider(Provider):
    """Puts the process's ``Serving`` in the container, for the resources that read it."""

    def __init__(self, serving: Serving) -> None:
        super().__init__(scope=Scope.APP)
        self._serving = serving

    @provide
    def serving(self) -> Serving:
        return self._serving


class ServingOf:
    """The process's ``Serving`` for a resource, resolved once per container. A container built without
    ``ServingProvider`` (an embedder's, a unit test's) gets one without keep-alives, never draining."""

    __slots__ = ("_root", "_serving")

    def __init__(self) -> None:
        self._root: object = None
        self._serving: Serving | None = None

    async def __call__(self, req: falcon.asgi.Request) -> Serving:
        root = req.scope.get(ROOT)
        if self._serving is None or root is not self._root:
            try:
                self._serving = await container_of(req).get(Serving)
            except NoFactoryError:
                self._serving = Serving(keepalive_seconds=0)
            self._root = root
        return self._serving
