"""Who may call the admin API: the ``x-admin-secret`` header, or the dashboard's signed session cookie
(``admin_session.AdminSessions``, with a CSRF header on state-changing calls). Failed attempts are
throttled per address (``admin_guard.py``)."""

from __future__ import annotations

import hmac
from typing import Protocol

import falcon.asgi
from dishka import AsyncContainer

from apipod.application.ports import Clock
from apipod.domain.errors import PermissionDeniedError, RateLimitedError
from apipod.entrypoints.http.admin_guard import AdminGuard

# The dashboard's names (admin_session.py defines them; repeated here so the API does not import the dashboard).
SESSION_COOKIE = "apipod_admin"
CSRF_HEADER = "x-csrf-token"


class SessionCheck(Protocol):
    """``AdminSessions.check``: a valid unexpired signed cookie, and for a state-changing ``method`` a CSRF
    header matching it. ``now`` is wall-clock seconds since the epoch."""

    def check(self, cookie: str | None, csrf: str | None, *, method: str, now: float) -> bool: ...


async def check_admin(
    req: falcon.asgi.Request, container: AsyncContainer, secret: str, sessions: SessionCheck | None
) -> None:
    """Raises RateLimitedError (a throttled address, before anything is compared) or PermissionDeniedError.
    The secret header decides when it is present; otherwise the session cookie does."""
    guard, address = await container.get(AdminGuard), req.remote_addr
    clock = await container.get(Clock)
    now = clock.monotonic()
    wait = guard.refused_for(address, now)
    if wait is not None:
        raise RateLimitedError("Too many failed admin authentications; try again later.", retry_after=wait)
    given = req.get_header("x-admin-secret")
    cookie = req.cookies.get(SESSION_COOKIE) if given is None and sessions is not None else None
    if cookie is not None and sessions is not None:
        # A stale or forged session guesses no secret (the cookie is signed): refused, not counted, so a
        # dashboard left open after its session ended does not get its address throttled.
        csrf = req.get_header(CSRF_HEADER)
        if not sessions.check(cookie, csrf, method=req.method, now=clock.now().timestamp()):
            raise PermissionDeniedError("The admin session is missing, expired or lacks its CSRF token.")
        return
    if not hmac.compare_digest((given or "").encode(), secret.encode()):
        guard.failed(address, now, path=req.path)
        raise PermissionDeniedError("Invalid admin secret.")
    guard.succeeded(address)
