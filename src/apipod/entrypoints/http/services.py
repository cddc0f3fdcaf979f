"""What the resources need, filled in at start-up (the container's objects are created asynchronously)."""

from __future__ import annotations

import attrs

from apipod.application.gateway import Gateway
from apipod.application.ports import Clock, IdGenerator
from apipod.entrypoints.http.admin_guard import AdminGuard


@attrs.define
class Services:
    admin_secret: str = attrs.field(repr=False)
    max_body_bytes: int
    gateway: Gateway | None = None
    clock: Clock | None = None
    ids: IdGenerator | None = None
    admin_guard: AdminGuard = attrs.field(factory=AdminGuard)

    def ready(self) -> tuple[Gateway, Clock, IdGenerator]:
        if self.gateway is None or self.clock is None or self.ids is None:
            raise RuntimeError("the gateway is not started")
        return self.gateway, self.clock, self.ids
