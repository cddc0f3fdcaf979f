"""The dashboard's routes: the page, its assets, and sign-in / sign-out (console.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import falcon.asgi
import httpx
import pytest

from apipod.domain.errors import ApipodError
from apipod.entrypoints.http import console
from apipod.entrypoints.http.admin_session import COOKIE, AdminSessions
from apipod.entrypoints.http.app import create_app
from apipod.entrypoints.http.errors import handle_apipod_error, handle_unexpected, serialize_http_error
from apipod.entrypoints.http.request_scope import HttpRequestProvider, RequestScope
from tests.unit.application.fakes import World, make_world
from tests.unit.entrypoints.test_http_app import CATALOG, SECRET


def console_app(world: World) -> object:
    """The console's routes in an app configured like ``create_app``'s (same slash rule, same errors)."""
    app = falcon.asgi.App(cors_enable=False)
    app.req_options.strip_url_path_trailing_slash = True
    console.add_routes(app, admin_secret=SECRET)
    app.add_error_handler(Exception, handle_unexpected)
    app.add_error_handler(ApipodError, handle_apipod_error)
    app.set_error_serializer(serialize_http_error)
    return RequestScope(app, lambda: world.container)  # type: ignore[arg-type]


@pytest.fixture
async def world() -> World:
    return await make_world(CATALOG, HttpRequestProvider())


def _client(app: object, base_url: str = "http://apipod") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url=base_url)


@pytest.fixture
async def client(world: World) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(console_app(world)) as http:
        yield http


async def test_admin_redirects_to_the_page_which_loads_only_its_own_assets(client: httpx.AsyncClient) -> None:
    moved = await client.get("/admin")
    assert moved.status_code == 308
    assert moved.headers["location"] == "/admin/"
    page = await client.get("/admin/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["cache-control"] == "no-cache"
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["x-frame-options"] == "DENY"
    assert 'src="assets/js/app.js"' in page.text and "http" not in page.text.replace("http-equiv", "")


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("app.css", "text/css; charset=utf-8"),
        ("js/app.js", "text/javascript; charset=utf-8"),
        ("js/pages/keys.js", "text/javascript; charset=utf-8"),
        ("favicon.svg", "image/svg+xml"),
    ],
)
async def test_assets_have_their_type_and_revalidate_by_etag(
    client: httpx.AsyncClient, path: str, content_type: str
) -> None:
    answer = await client.get(f"/admin/assets/{path}")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == content_type
    assert answer.headers["cache-control"] == "public, max-age=0, must-revalidate"
    assert answer.headers["x-content-type-options"] == "nosniff"
    again = await client.get(f"/admin/assets/{path}", headers={"if-none-match": answer.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""


def test_every_module_the_page_imports_is_an_asset() -> None:
    import re

    table = console.assets()
    for name, asset in table.items():
        if not name.endswith(".js"):
            continue
        folder = name.rsplit("/", 1)[0]
        for target in re.findall(rb'from "(\.[^"]+)"', asset.body):
            parts = [*folder.split("/"), *target.decode().split("/")]
            resolved: list[str] = []
            for part in parts:
                if part == "..":
                    resolved.pop()
                elif part != ".":
                    resolved.append(part)
            assert "/".join(resolved) in table, (name, target)


@pytest.mark.parametrize(
    "path",
    [
        "/admin/assets/../console.py",
        "/admin/assets/%2e%2e/console.py",
        "/admin/assets/..%2fconsole.py",
        "/admin/assets/js/../../console.py",
        "/admin/assets//etc/passwd",
        "/admin/assets/missing.js",
        "/admin/assets/js",
    ],
)
async def test_nothing_outside_the_asset_table_is_served(client: httpx.AsyncClient, path: str) -> None:
    answer = await client.get(path)
    assert answer.status_code == 404
    assert b"import" not in answer.content


async def test_sign_in_sets_a_strict_httponly_cookie_and_answers_the_csrf_token(
    client: httpx.AsyncClient, world: World
) -> None:
    assert (await client.get("/admin/session")).json() == {"signed_in": False}
    answer = await client.post("/admin/session", json={"secret": SECRET})
    assert answer.status_code == 200
    body = answer.json()
    cookie_header = answer.headers["set-cookie"]
    assert cookie_header.startswith(f"{COOKIE}=")
    for part in ("HttpOnly", "SameSite=Strict", "Path=/admin", "Max-Age=43200"):
        assert part in cookie_header
    assert "Secure" not in cookie_header  # plain http: a Secure cookie would never come back
    cookie = answer.cookies[COOKIE]
    sessions = AdminSessions(SECRET)
    now = world.clock.now().timestamp()
    assert sessions.check(cookie, body["csrf_token"], method="POST", now=now)
    assert body["signed_in"] is True
    assert body["expires_at"] == (world.clock.now() + timedelta(hours=12)).isoformat().replace("+00:00", "Z")
    client.cookies.clear()
    client.cookies.set(COOKIE, cookie)
    again = await client.get("/admin/session")
    assert again.json() == body  # a reload gets the same token back
    assert again.headers["cache-control"] == "no-store"


async def test_a_form_post_signs_in_too(client: httpx.AsyncClient) -> None:
    answer = await client.post("/admin/session", data={"secret": SECRET})
    assert answer.status_code == 200
    assert answer.json()["signed_in"] is True


async def test_over_https_behind_a_proxy_the_cookie_is_secure(client: httpx.AsyncClient) -> None:
    answer = await client.post("/admin/session", json={"secret": SECRET}, headers={"x-forwarded-proto": "https"})
    assert "Secure" in answer.headers["set-cookie"]


async def test_an_expired_or_foreign_cookie_is_not_signed_in(client: httpx.AsyncClient, world: World) -> None:
    cookie = (await client.post("/admin/session", json={"secret": SECRET})).cookies[COOKIE]
    client.cookies.clear()
    world.clock.advance(12 * 3600 + 1)
    client.cookies.set(COOKIE, cookie)
    assert (await client.get("/admin/session")).json() == {"signed_in": False}
    foreign, _ = AdminSessions("t" * 24).issue(world.clock.now().timestamp())
    client.cookies.set(COOKIE, foreign)
    assert (await client.get("/admin/session")).json() == {"signed_in": False}


async def test_sign_out_clears_the_cookie(client: httpx.AsyncClient) -> None:
    await client.post("/admin/session", json={"secret": SECRET})
    answer = await client.delete("/admin/session")
    assert answer.status_code == 204
    cleared = answer.headers["set-cookie"]
    assert cleared.startswith(f"{COOKIE}=")
    assert "Path=/admin" in cleared and "expires=Thu, 01 Jan 1970 00:00:00 GMT" in cleared
    assert (await client.get("/admin/session")).json() == {"signed_in": False}


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"json": {}}, "secret"),
        ({"json": {"secret": 5}}, "secret"),
        ({"content": b"{nope"}, None),
        ({"content": b"x" * 5000}, "secret"),
    ],
)
async def test_a_malformed_sign_in_is_a_400(
    client: httpx.AsyncClient, kwargs: dict[str, object], field: str | None
) -> None:
    answer = await client.post("/admin/session", **kwargs)  # type: ignore[arg-type]
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["type"] == "invalid_request"
    assert error.get("field") == field


async def test_wrong_secrets_go_through_the_admin_throttle(client: httpx.AsyncClient) -> None:
    statuses = [(await client.post("/admin/session", json={"secret": "w" * 24})).status_code for _ in range(7)]
    assert statuses == [403] * 6 + [429]
    refused = await client.post("/admin/session", json={"secret": SECRET})
    assert refused.status_code == 429  # refused before the secret is looked at
    assert "set-cookie" not in refused.headers


async def test_create_app_serves_the_console(world: World) -> None:
    """The wiring in app.py (``console.add_routes``)."""
    app = create_app(lambda: world.container, admin_secret=SECRET, max_body_bytes=10_000)
    async with _client(app) as http:
        assert (await http.get("/admin/")).status_code == 200
        assert (await http.get("/admin/assets/js/app.js")).status_code == 200
        assert (await http.post("/admin/session", json={"secret": SECRET})).status_code == 200
