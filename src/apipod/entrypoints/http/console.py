"""The web dashboard at ``/admin/``: its page, its static assets and the sign-in session.

Every asset ships inside the package (``console_assets/``) and is read once, into a fixed table: a request
can only name a file of that table, so no path leads outside it. The page talks to the admin API with the
session cookie that ``POST /admin/session`` sets (admin_session.py) and the CSRF token it answers.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any
from urllib.parse import parse_qs

import attrs
import falcon
import falcon.asgi
import orjson

from apipod.application.ports import Clock
from apipod.domain.errors import InvalidRequestError, PermissionDeniedError, RateLimitedError
from apipod.entrypoints.http.admin_guard import AdminGuard
from apipod.entrypoints.http.admin_session import COOKIE, AdminSessions
from apipod.entrypoints.http.errors import ADMIN
from apipod.entrypoints.http.request_scope import container_of

ASSETS_PACKAGE = "apipod.entrypoints.http"
ASSETS_DIR = "console_assets"
_MAX_SIGN_IN_BYTES = 4096
_EPOCH = datetime.fromtimestamp(0, UTC)  # an expiry in the past deletes a cookie

_CONTENT_TYPES: Mapping[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".woff2": "font/woff2",
}

# The page loads nothing from elsewhere and runs no inline script; a page that frames it is refused.
_PAGE_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


@attrs.frozen
class Asset:
    body: bytes
    content_type: str
    etag: str


def _walk(folder: Traversable, prefix: str) -> dict[str, Asset]:
    found: dict[str, Asset] = {}
    for entry in folder.iterdir():
        name = f"{prefix}{entry.name}"
        if entry.is_dir():
            found.update(_walk(entry, f"{name}/"))
            continue
        suffix = entry.name[entry.name.rfind(".") :] if "." in entry.name else ""
        content_type = _CONTENT_TYPES.get(suffix)
        if content_type is None:
            continue  # only the kinds of file a page needs are served
        body = entry.read_bytes()
        found[name] = Asset(body, content_type, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')
    return found


@cache
def assets() -> Mapping[str, Asset]:
    """Every servable file of ``console_assets/``, by its path relative to it (``js/app.js``)."""
    return _walk(resources.files(ASSETS_PACKAGE).joinpath(ASSETS_DIR), "")


def _send(req: falcon.asgi.Request, resp: falcon.asgi.Response, asset: Asset, cache_control: str) -> None:
    resp.content_type = asset.content_type
    resp.set_header("Cache-Control", cache_control)
    resp.set_header("ETag", asset.etag)
    resp.set_header("X-Content-Type-Options", "nosniff")
    if asset.etag in (req.get_header("If-None-Match") or ""):
        resp.status = falcon.HTTP_304
        return
    resp.data = asset.body


def _is_https(req: falcon.asgi.Request) -> bool:
    forwarded = (req.get_header("x-forwarded-proto") or "").split(",")[0].strip().lower()
    return req.scheme == "https" or forwarded == "https"


def _json(resp: falcon.asgi.Response, body: object, status: int = 200) -> None:
    resp.status = status
    resp.content_type = falcon.MEDIA_JSON
    resp.set_header("Cache-Control", "no-store")
    resp.data = orjson.dumps(body)


def _iso(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).isoformat().replace("+00:00", "Z")


class ConsolePage:
    """``GET /admin/`` answers the page; ``GET /admin`` (no slash) redirects there, so the page's relative
    asset addresses resolve under ``/admin/``. Both reach this one route (trailing slashes are stripped)."""

    dialect = ADMIN

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        raw = req.scope.get("raw_path") or req.scope["path"].encode()
        if not bytes(raw).endswith(b"/"):
            raise falcon.HTTPPermanentRedirect("/admin/")
        for name, value in _PAGE_HEADERS.items():
            resp.set_header(name, value)
        _send(req, resp, assets()["index.html"], "no-cache")


class ConsoleAsset:
    """``GET /admin/assets/{path}``: a file of the table, revalidated by ETag (names carry no version)."""

    dialect = ADMIN

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, path: str) -> None:
        asset = assets().get(path)
        if asset is None:
            raise falcon.HTTPNotFound()
        _send(req, resp, asset, "public, max-age=0, must-revalidate")


class ConsoleSession:
    """Sign in (POST the admin secret), ask whether signed in (GET), sign out (DELETE)."""

    dialect = ADMIN

    def __init__(self, *, admin_secret: str, ttl_seconds: float = 12 * 3600) -> None:
        self._admin_secret = admin_secret
        self._sessions = AdminSessions(admin_secret, ttl_seconds=ttl_seconds)

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Always 200, so the page's first question is not a console error: ``signed_in`` tells."""
        clock = await container_of(req).get(Clock)
        cookie = req.cookies.get(COOKIE)
        if cookie is None or not self._sessions.check(cookie, None, method="GET", now=clock.now().timestamp()):
            _json(resp, {"signed_in": False})
            return
        expires = self._sessions.expires_at(cookie)
        assert expires is not None
        _json(
            resp,
            {"signed_in": True, "csrf_token": self._sessions.csrf_of(cookie), "expires_at": _iso(expires)},
        )

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """The secret as JSON ``{"secret"}`` or a form field ``secret``; wrong ones count in the throttle."""
        container = container_of(req)
        guard, clock, address = await container.get(AdminGuard), await container.get(Clock), req.remote_addr
        wait = guard.refused_for(address, clock.monotonic())
        if wait is not None:
            raise RateLimitedError("Too many failed admin authentications; try again later.", retry_after=wait)
        given = await _secret_of(req)
        if not hmac.compare_digest(given.encode(), self._admin_secret.encode()):
            guard.failed(address, clock.monotonic(), path=req.path)
            raise PermissionDeniedError("Invalid admin secret.")
        guard.succeeded(address)
        now = clock.now().timestamp()
        cookie, csrf = self._sessions.issue(now)
        expires = self._sessions.expires_at(cookie)
        assert expires is not None
        resp.set_cookie(
            COOKIE,
            cookie,
            max_age=int(self._sessions.ttl_seconds),
            path="/admin",
            secure=_is_https(req),
            http_only=True,
            same_site="Strict",
        )
        _json(resp, {"signed_in": True, "csrf_token": csrf, "expires_at": _iso(expires)})

    async def on_delete(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Clearing the cookie is always safe, so it needs no CSRF token."""
        resp.set_cookie(
            COOKIE, "", expires=_EPOCH, path="/admin", secure=_is_https(req), http_only=True, same_site="Strict"
        )
        resp.status = falcon.HTTP_204


async def _secret_of(req: falcon.asgi.Request) -> str:
    data = await req.stream.read(_MAX_SIGN_IN_BYTES + 1)
    if len(data) > _MAX_SIGN_IN_BYTES:
        raise InvalidRequestError("The sign-in body is too large.", param="secret")
    secret: object = None
    if (req.content_type or "").startswith("application/x-www-form-urlencoded"):
        values = parse_qs(data.decode("utf-8", "replace")).get("secret", [])
        secret = values[0] if values else None
    else:
        try:
            body = orjson.loads(data) if data else None
        except orjson.JSONDecodeError:
            raise InvalidRequestError("The sign-in body is not valid JSON.") from None
        if isinstance(body, dict):
            secret = body.get("secret")
    if not isinstance(secret, str) or not secret:
        raise InvalidRequestError("secret: give the admin secret", param="secret")
    return secret


def add_routes(app: falcon.asgi.App[Any, Any], *, admin_secret: str) -> None:
    """The dashboard's routes, for ``create_app``."""
    app.add_route("/admin", ConsolePage())
    app.add_route("/admin/assets/{path:path}", ConsoleAsset())
    app.add_route("/admin/session", ConsoleSession(admin_secret=admin_secret))
