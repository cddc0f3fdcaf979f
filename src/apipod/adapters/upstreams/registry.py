"""The upstream clients by kind: the one place the dispatcher finds out who talks to an upstream."""

from __future__ import annotations

from collections.abc import Mapping

from apipod.application.ports import UpstreamClient, UpstreamRegistry
from apipod.domain.catalog import Upstream, UpstreamKind
from apipod.domain.errors import NotFoundError


class UpstreamClientRegistry(UpstreamRegistry):
    """Built from a mapping kind -> client; an upstream of a kind without a client is a NotFoundError."""

    __slots__ = ("_clients",)

    def __init__(self, clients: Mapping[UpstreamKind, UpstreamClient]) -> None:
        self._clients = dict(clients)

    def client_for(self, upstream: Upstream) -> UpstreamClient:
        client = self._clients.get(upstream.kind)
        if client is None:
            raise NotFoundError(f"No client for upstream kind {str(upstream.kind)!r} (upstream {upstream.name!r}).")
        return client

    @property
    def kinds(self) -> frozenset[UpstreamKind]:
        return frozenset(self._clients)
