"""The OpenAPI 3.1 document of the admin API: it validates, it lists every admin route the app serves, and
real answers of every documented operation match the schemas it declares for them."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jsonschema
import pytest
from falcon.routing import CompiledRouter
from openapi_spec_validator import validate
from referencing import Registry, Resource

from apipod.domain.catalog import Account, Catalog, Plan, Route, Upstream, UpstreamKind, UpstreamModel
from apipod.domain.quota import Budget, Window, WindowUnit
from apipod.entrypoints.http.admin_routes import DOCUMENT, OPERATIONS
from apipod.entrypoints.http.app import create_app
from apipod.entrypoints.http.request_scope import HttpRequestProvider
from tests.contracts.builders import make_record
from tests.unit.application.fakes import World, make_world
from tests.unit.entrypoints.admin_v1_support import ADMIN, SECRET, admin_app, admin_client

CATALOG = Catalog(
    upstreams=(Upstream(name="u", kind=UpstreamKind.OPENAI, accounts=(Account(0, "sk-abcdefghijkl9f2c"),)),),
    models=(UpstreamModel(name="m", upstream="u", upstream_model="gpt-x"),),
    plans=(Plan(name="basic", routes=(Route("m"),), budgets=(Budget(window=Window(WindowUnit.DAY), requests=5),)),),
)
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def falcon_routes(asgi_app: Any) -> set[tuple[str, str]]:
    """(method, path template) of every responder the app's router holds."""
    app = asgi_app.app._app  # HeaderLimits(RequestScope(falcon app))
    router: CompiledRouter = app._router
    found: set[tuple[str, str]] = set()

    def walk(nodes: list[Any]) -> None:
        for node in nodes:
            if node.resource is not None:
                for method in HTTP_METHODS:
                    if hasattr(node.resource, f"on_{method.lower()}"):
                        found.add((method, node.uri_template))
                for suffix_method in dir(node.resource):
                    match = re.fullmatch(r"on_([a-z]+)_item", suffix_method)
                    if match and "{" in node.uri_template:
                        found.add((match.group(1).upper(), node.uri_template))
            walk(node.children)

    walk(router._roots)
    return found


def documented() -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in DOCUMENT["paths"].items() for method in item}


def test_the_document_is_valid_openapi_3_1() -> None:
    validate(DOCUMENT)
    assert DOCUMENT["openapi"] == "3.1.0"


async def test_every_admin_route_of_the_app_is_documented() -> None:
    world = await make_world(CATALOG, HttpRequestProvider())
    for app in (admin_app(world), create_app(lambda: world.container, admin_secret=SECRET, max_body_bytes=1000)):
        served = {
            (m, p)
            for m, p in falcon_routes(app)
            if p.startswith("/admin") and not p.startswith("/admin/assets") and p not in ("/admin", "/admin/")
        }
        session_routes = {(m, p) for m, p in served if p.startswith("/admin/session")}
        assert served - session_routes <= documented(), sorted(served - session_routes - documented())
    assert {(o.method, o.path) for o in OPERATIONS} == documented()


def _registry() -> Registry[Any]:
    return Registry().with_resource(
        "urn:apipod-admin",
        Resource.from_contents(DOCUMENT | {"$schema": "https://json-schema.org/draft/2020-12/schema"}),
    )


def _schema_for(method: str, template: str, status: int) -> dict[str, Any] | None:
    response = DOCUMENT["paths"][template][method.lower()]["responses"][str(status)]
    content = response.get("content", {}).get("application/json")
    return None if content is None else content["schema"]


def check_answer(method: str, template: str, answer: httpx.Response) -> None:
    responses = DOCUMENT["paths"][template][method.lower()]["responses"]
    assert str(answer.status_code) in responses, (method, template, answer.status_code, answer.text)
    schema = _schema_for(method, template, answer.status_code)
    if schema is None:
        return
    ref = schema["$ref"].replace("#/", "urn:apipod-admin#/")
    validator = jsonschema.Draft202012Validator(
        {"$ref": ref}, registry=_registry(), format_checker=jsonschema.FormatChecker()
    )
    validator.validate(answer.json())


@pytest.fixture
async def world() -> World:
    return await make_world(CATALOG, HttpRequestProvider())


@pytest.fixture
async def client(world: World) -> AsyncIterator[httpx.AsyncClient]:
    async with admin_client(world) as http:
        yield http


async def test_real_answers_match_their_documented_schemas(client: httpx.AsyncClient, world: World) -> None:
    covered: set[tuple[str, str]] = set()

    async def call(method: str, template: str, path: str | None = None, **kw: Any) -> httpx.Response:
        answer = await client.request(method, path or template, headers=ADMIN, **kw)
        check_answer(method, template, answer)
        covered.add((method, template))
        return answer

    issued = (await call("POST", "/admin/create-key", json={"name": "alice", "tier": "basic"})).json()
    key = issued["id"]
    await world.usage.record(make_record("req_1", key_id=key, timestamp=world.clock.now()))
    await call("GET", "/admin/openapi.json")
    await call("GET", "/admin/keys")
    await call("GET", "/admin/keys", "/admin/keys?limit=1&status=active")
    await call("GET", "/admin/keys/{key_id}", f"/admin/keys/{key}")
    await call("GET", "/admin/keys/{key_id}", "/admin/keys/nope")
    await call("PATCH", "/admin/keys/{key_id}", f"/admin/keys/{key}", json={"name": "Al"})
    await call("PATCH", "/admin/keys/{key_id}", f"/admin/keys/{key}", json={"tier": 5})
    await call("POST", "/admin/keys/{key_id}/revoke", f"/admin/keys/{key}/revoke")
    await call("POST", "/admin/keys/{key_id}/reactivate", f"/admin/keys/{key}/reactivate")
    await call("POST", "/admin/keys/{key_id}/rotate", f"/admin/keys/{key}/rotate", json={"grace_seconds": 5})
    await call("GET", "/admin/keys/{key_id}/usage", f"/admin/keys/{key}/usage")
    await call("GET", "/admin/keys/{key_id}/budgets", f"/admin/keys/{key}/budgets")
    await call("GET", "/admin/catalog")
    for kind, name in (("providers", "u"), ("models", "m"), ("plans", "basic")):
        await call("GET", f"/admin/{kind}")
        await call("GET", f"/admin/{kind}/{{name}}", f"/admin/{kind}/{name}")
    await call("PUT", "/admin/providers/{name}", "/admin/providers/v", json={"type": "openai", "api_keys": ["sk-1"]})
    await call("PUT", "/admin/models/{name}", "/admin/models/n", json={"provider": "v", "input_price": "0.5"})
    await call("PUT", "/admin/plans/{name}", "/admin/plans/p", json={"routes": [{"model": "n"}]})
    await call("PUT", "/admin/plans/{name}", "/admin/plans/p", json={"routes": [{"model": "ghost"}]})
    await call("DELETE", "/admin/providers/{name}", "/admin/providers/v")  # 409: model n uses it
    await call("DELETE", "/admin/plans/{name}", "/admin/plans/p")
    await call("DELETE", "/admin/models/{name}", "/admin/models/n")
    await call("DELETE", "/admin/providers/{name}", "/admin/providers/v")
    await call("GET", "/admin/usage")
    await call("GET", "/admin/usage", "/admin/usage?limit=0")
    await call("GET", "/admin/usage/summary", "/admin/usage/summary?group_by=provider&bucket=hour")
    await call("GET", "/admin/usage.csv")
    await call("GET", "/admin/usage/summary.csv")
    await call("GET", "/admin/state")
    forbidden = await client.get("/admin/keys")
    check_answer("GET", "/admin/keys", forbidden)

    untested = documented() - covered - {("GET", "/admin/providers/{name}/models")}
    assert not untested, sorted(untested)
