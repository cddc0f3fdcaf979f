"""The server's word that a request's client went away, offered in the ASGI scope (PERF, issue 10).

ASGI tells an app that its client left only through ``receive()``: an app that wants to know while it waits
for something else (the upstream's first event) must keep a task waiting on ``receive()``, and cancel it when
the request ends. That task, its event and its cancellation cost about 1.5 % of a request's instructions.
``apipod serve``'s protocol (``bounded_protocol``) offers the same news as a callback instead, under
``scope["extensions"]["apipod.client_gone"]``; ``RequestLifetime`` uses it when it is there and keeps the
task for any other server (and the in-process test transports).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

__all__ = ["CLIENT_GONE", "ClientGone", "client_gone_of"]

CLIENT_GONE = "apipod.client_gone"


class ClientGone(Protocol):
    """One request's connection, watched for the client leaving before the response is complete."""

    def watch(self, callback: Callable[[], None]) -> None:
        """``callback`` is called once if the connection is lost before the response completes (at once if it
        already was); never after the response completed."""

    def unwatch(self) -> None:
        """The request is over: forget the callback."""


def client_gone_of(scope: Mapping[str, Any]) -> ClientGone | None:
    """The server's ``ClientGone`` for this request, if the server offers one."""
    extensions = scope.get("extensions")
    return extensions.get(CLIENT_GONE) if extensions else None
