"""CatalogStore over the embedded SQLite database.

Upstreams, their accounts and models are rows; a plan's routes, aliases and budgets are JSON columns
(always read and written whole). ``snapshot()`` is served from an in-process copy that each write of this
store replaces, so the request path never touches the file. Account secrets live in their own column and
never reach a log or an error message.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import orjson

from apipod.adapters.sqlite.database import SqliteDatabase, immediate
from apipod.application.ports import CatalogStore
from apipod.domain.catalog import (
    Account,
    Alias,
    Catalog,
    ModelLimits,
    Plan,
    Route,
    Timeouts,
    Upstream,
    UpstreamKind,
    UpstreamModel,
)
from apipod.domain.errors import NotFoundError
from apipod.domain.quota import Budget, parse_window


class SqliteCatalogStore(CatalogStore):
    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db
        self._catalog: Catalog | None = None

    async def snapshot(self) -> Catalog:
        if self._catalog is None:
            self._catalog = await self._db.run(_load)
        return self._catalog

    async def load(self) -> Catalog:
        """Read the catalog from the database (at start-up, or to see another process's writes)."""
        self._catalog = await self._db.run(_load)
        return self._catalog

    async def upsert_upstream(self, upstream: Upstream) -> None:
        def write(conn: sqlite3.Connection) -> Catalog:
            with immediate(conn):
                conn.execute(
                    "INSERT INTO upstreams (name, kind, base_url, headers, connect_timeout, read_timeout, options)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET kind = excluded.kind,"
                    " base_url = excluded.base_url, headers = excluded.headers,"
                    " connect_timeout = excluded.connect_timeout, read_timeout = excluded.read_timeout,"
                    " options = excluded.options",
                    (
                        upstream.name,
                        upstream.kind.value,
                        upstream.base_url,
                        orjson.dumps(dict(upstream.headers)).decode(),
                        upstream.timeouts.connect,
                        upstream.timeouts.read,
                        orjson.dumps(dict(upstream.options)).decode(),
                    ),
                )
                conn.execute("DELETE FROM upstream_accounts WHERE upstream = ?", (upstream.name,))
                conn.executemany(
                    "INSERT INTO upstream_accounts (upstream, idx, secret, project) VALUES (?, ?, ?, ?)",
                    [(upstream.name, a.index, a.secret, a.project) for a in upstream.accounts],
                )
            return _load(conn)

        self._catalog = await self._db.run(write)

    async def upsert_model(self, model: UpstreamModel) -> None:
        def write(conn: sqlite3.Connection) -> Catalog:
            with immediate(conn):
                if conn.execute("SELECT 1 FROM upstreams WHERE name = ?", (model.upstream,)).fetchone() is None:
                    raise NotFoundError(f"Model '{model.name}' names an unknown upstream '{model.upstream}'.")
                limits = model.limits
                conn.execute(
                    "INSERT INTO upstream_models (name, upstream, upstream_model, rpm, tpm, rpd, max_concurrency)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET upstream = excluded.upstream,"
                    " upstream_model = excluded.upstream_model, rpm = excluded.rpm, tpm = excluded.tpm,"
                    " rpd = excluded.rpd, max_concurrency = excluded.max_concurrency",
                    (
                        model.name,
                        model.upstream,
                        model.upstream_model,
                        limits.rpm,
                        limits.tpm,
                        limits.rpd,
                        limits.max_concurrency,
                    ),
                )
            return _load(conn)

        self._catalog = await self._db.run(write)

    async def upsert_plan(self, plan: Plan) -> None:
        wanted = sorted({r.model for r in plan.routes} | {r.model for a in plan.aliases for r in a.routes})

        def write(conn: sqlite3.Connection) -> Catalog:
            with immediate(conn):
                known = {row[0] for row in conn.execute("SELECT name FROM upstream_models")}
                missing = [name for name in wanted if name not in known]
                if missing:
                    raise NotFoundError(f"Plan '{plan.name}' routes to unknown models: {', '.join(missing)}.")
                conn.execute(
                    "INSERT INTO plans (name, routes, aliases, budgets, strict_models, rpm, max_concurrency)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET routes = excluded.routes,"
                    " aliases = excluded.aliases, budgets = excluded.budgets,"
                    " strict_models = excluded.strict_models, rpm = excluded.rpm,"
                    " max_concurrency = excluded.max_concurrency",
                    (
                        plan.name,
                        orjson.dumps(_routes_json(plan.routes)).decode(),
                        orjson.dumps(
                            [{"name": a.name, "routes": _routes_json(a.routes)} for a in plan.aliases]
                        ).decode(),
                        orjson.dumps([_budget_json(b) for b in plan.budgets]).decode(),
                        int(plan.strict_models),
                        plan.rpm,
                        plan.max_concurrency,
                    ),
                )
            return _load(conn)

        self._catalog = await self._db.run(write)

    async def add_account(self, upstream: str, secret: str) -> Account:
        def write(conn: sqlite3.Connection) -> tuple[Account, Catalog]:
            with immediate(conn):
                if conn.execute("SELECT 1 FROM upstreams WHERE name = ?", (upstream,)).fetchone() is None:
                    raise NotFoundError(f"No upstream named '{upstream}'.")
                row = conn.execute(
                    "SELECT COALESCE(MAX(idx) + 1, 0) FROM upstream_accounts WHERE upstream = ?", (upstream,)
                ).fetchone()
                account = Account(int(row[0]), secret)
                conn.execute(
                    "INSERT INTO upstream_accounts (upstream, idx, secret, project) VALUES (?, ?, ?, NULL)",
                    (upstream, account.index, secret),
                )
            return account, _load(conn)

        account, self._catalog = await self._db.run(write)
        return account


def _routes_json(routes: tuple[Route, ...]) -> list[dict[str, Any]]:
    return [{"model": r.model, "weight": r.weight} for r in routes]


def _routes(data: list[dict[str, Any]]) -> tuple[Route, ...]:
    return tuple(Route(r["model"], float(r["weight"])) for r in data)


def _budget_json(budget: Budget) -> dict[str, Any]:
    return {"window": budget.window.name, "tokens": budget.tokens, "requests": budget.requests}


def _budget(data: dict[str, Any]) -> Budget:
    return Budget(window=parse_window(data["window"]), tokens=data["tokens"], requests=data["requests"])


def _load(conn: sqlite3.Connection) -> Catalog:
    """The whole catalog, in the order things were first created."""
    accounts: dict[str, list[Account]] = {}
    for upstream, idx, secret, project in conn.execute(
        "SELECT upstream, idx, secret, project FROM upstream_accounts ORDER BY upstream, idx"
    ):
        accounts.setdefault(upstream, []).append(Account(idx, secret, project))
    upstreams = tuple(
        Upstream(
            name=name,
            kind=UpstreamKind(kind),
            base_url=base_url,
            accounts=tuple(accounts.get(name, ())),
            headers=orjson.loads(headers),
            timeouts=Timeouts(connect=connect, read=read),
            options=orjson.loads(options),
        )
        for name, kind, base_url, headers, connect, read, options in conn.execute(
            "SELECT name, kind, base_url, headers, connect_timeout, read_timeout, options FROM upstreams ORDER BY rowid"
        )
    )
    models = tuple(
        UpstreamModel(
            name=name,
            upstream=upstream,
            upstream_model=upstream_model,
            limits=ModelLimits(rpm=rpm, tpm=tpm, rpd=rpd, max_concurrency=max_concurrency),
        )
        for name, upstream, upstream_model, rpm, tpm, rpd, max_concurrency in conn.execute(
            "SELECT name, upstream, upstream_model, rpm, tpm, rpd, max_concurrency FROM upstream_models ORDER BY rowid"
        )
    )
    plans = tuple(
        Plan(
            name=name,
            routes=_routes(orjson.loads(routes)),
            aliases=tuple(Alias(a["name"], _routes(a["routes"])) for a in orjson.loads(aliases)),
            budgets=tuple(_budget(b) for b in orjson.loads(budgets)),
            strict_models=bool(strict_models),
            rpm=rpm,
            max_concurrency=max_concurrency,
        )
        for name, routes, aliases, budgets, strict_models, rpm, max_concurrency in conn.execute(
            "SELECT name, routes, aliases, budgets, strict_models, rpm, max_concurrency FROM plans ORDER BY rowid"
        )
    )
    return Catalog(upstreams=upstreams, models=models, plans=plans)
