"""PgCatalogStore: upstreams, models and plans in PostgreSQL, served from an in-process copy.

Every request needs the catalog, so ``snapshot()`` serves a copy at most ``ttl`` seconds old (one reload
at a time, however many requests ask); this process's own writes refresh it at once, other processes'
writes are seen within ``ttl``.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from typing import Any

from apipod.adapters.postgres.database import PgDatabase
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


class PgCatalogStore(CatalogStore):
    def __init__(self, db: PgDatabase, *, ttl: float = 2.0) -> None:
        self._db = db
        self._ttl = ttl
        self._cached: Catalog | None = None
        self._loaded_at = 0.0
        self._generation = 0  # bumped by our own writes, so a reload racing a write is not trusted
        self._lock = asyncio.Lock()

    async def snapshot(self) -> Catalog:
        cached = self._cached
        if cached is not None and time.monotonic() - self._loaded_at < self._ttl:
            return cached
        async with self._lock:
            if self._cached is not None and time.monotonic() - self._loaded_at < self._ttl:
                return self._cached
            generation = self._generation
            catalog = await self._load()
            if generation == self._generation:
                self._cached, self._loaded_at = catalog, time.monotonic()
            return catalog

    def invalidate(self) -> None:
        """Forget the copy: the next snapshot reads the database."""
        self._generation += 1
        self._cached = None

    async def upsert_upstream(self, upstream: Upstream) -> None:
        async with self._db.connection("saving an upstream") as conn, conn.transaction():
            await conn.execute(
                """
                INSERT INTO upstreams (name, kind, base_url, headers, connect_timeout, read_timeout, options)
                VALUES ($1, $2, $3, $4, $5, $6, $7)
                ON CONFLICT (name) DO UPDATE SET kind = EXCLUDED.kind, base_url = EXCLUDED.base_url,
                    headers = EXCLUDED.headers, connect_timeout = EXCLUDED.connect_timeout,
                    read_timeout = EXCLUDED.read_timeout, options = EXCLUDED.options
                """,
                upstream.name,
                upstream.kind.value,
                upstream.base_url,
                dict(upstream.headers),
                upstream.timeouts.connect,
                upstream.timeouts.read,
                dict(upstream.options),
            )
            await conn.execute("DELETE FROM upstream_accounts WHERE upstream = $1", upstream.name)
            await conn.executemany(
                "INSERT INTO upstream_accounts (upstream, idx, secret, project) VALUES ($1, $2, $3, $4)",
                [(upstream.name, a.index, a.secret, a.project) for a in upstream.accounts],
            )
        self.invalidate()

    async def upsert_model(self, model: UpstreamModel) -> None:
        limits = model.limits
        async with self._db.connection("saving a model") as conn:
            saved = await conn.fetchval(
                """
                INSERT INTO upstream_models (name, upstream, upstream_model, rpm, tpm, rpd, max_concurrency)
                SELECT $1, name, $3, $4, $5, $6, $7 FROM upstreams WHERE name = $2
                ON CONFLICT (name) DO UPDATE SET upstream = EXCLUDED.upstream,
                    upstream_model = EXCLUDED.upstream_model, rpm = EXCLUDED.rpm, tpm = EXCLUDED.tpm,
                    rpd = EXCLUDED.rpd, max_concurrency = EXCLUDED.max_concurrency
                RETURNING name
                """,
                model.name,
                model.upstream,
                model.upstream_model,
                limits.rpm,
                limits.tpm,
                limits.rpd,
                limits.max_concurrency,
            )
        if saved is None:
            raise NotFoundError(f"Model '{model.name}' names upstream '{model.upstream}', which does not exist.")
        self.invalidate()

    async def upsert_plan(self, plan: Plan) -> None:
        named = list(dict.fromkeys([r.model for r in plan.routes] + [r.model for a in plan.aliases for r in a.routes]))
        routes = [("", i, r.model, r.weight) for i, r in enumerate(plan.routes)]
        routes += [(a.name, i, r.model, r.weight) for a in plan.aliases for i, r in enumerate(a.routes)]
        async with self._db.connection("saving a plan") as conn, conn.transaction():
            # KEY SHARE locks keep the named models from vanishing before we commit.
            known = await conn.fetch(
                "SELECT name FROM upstream_models WHERE name = ANY($1::text[]) FOR KEY SHARE", named
            )
            missing = sorted(set(named) - {row["name"] for row in known})
            if missing:
                raise NotFoundError(f"Plan '{plan.name}' routes to unknown model(s): {', '.join(missing)}.")
            await conn.execute(
                """
                INSERT INTO plans (name, strict_models, rpm, max_concurrency) VALUES ($1, $2, $3, $4)
                ON CONFLICT (name) DO UPDATE SET strict_models = EXCLUDED.strict_models, rpm = EXCLUDED.rpm,
                    max_concurrency = EXCLUDED.max_concurrency
                """,
                plan.name,
                plan.strict_models,
                plan.rpm,
                plan.max_concurrency,
            )
            for table in ("plan_routes", "plan_aliases", "plan_budgets"):
                await conn.execute(f"DELETE FROM {table} WHERE plan = $1", plan.name)  # noqa: S608
            await conn.executemany(
                "INSERT INTO plan_aliases (plan, name, position) VALUES ($1, $2, $3)",
                [(plan.name, a.name, i) for i, a in enumerate(plan.aliases)],
            )
            await conn.executemany(
                "INSERT INTO plan_routes (plan, alias, position, model, weight) VALUES ($1, $2, $3, $4, $5)",
                [(plan.name, *route) for route in routes],
            )
            await conn.executemany(
                "INSERT INTO plan_budgets (plan, position, window_name, tokens, requests) VALUES ($1, $2, $3, $4, $5)",
                [(plan.name, i, b.window.name, b.tokens, b.requests) for i, b in enumerate(plan.budgets)],
            )
        self.invalidate()

    async def add_account(self, upstream: str, secret: str) -> Account:
        async with self._db.connection("adding an account") as conn, conn.transaction():
            # The row lock serialises concurrent additions to one pool, so indexes never clash.
            exists = await conn.fetchval("SELECT 1 FROM upstreams WHERE name = $1 FOR UPDATE", upstream)
            if exists is None:
                raise NotFoundError(f"No upstream named '{upstream}'.")
            index = await conn.fetchval(
                """
                INSERT INTO upstream_accounts (upstream, idx, secret)
                SELECT $1, COALESCE(max(idx) + 1, 0), $2 FROM upstream_accounts WHERE upstream = $1
                RETURNING idx
                """,
                upstream,
                secret,
            )
        self.invalidate()
        return Account(index, secret)

    async def _load(self) -> Catalog:
        async with (
            self._db.connection("reading the catalog") as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            upstream_rows = await conn.fetch("SELECT * FROM upstreams ORDER BY seq")
            account_rows = await conn.fetch("SELECT * FROM upstream_accounts ORDER BY upstream, idx")
            model_rows = await conn.fetch("SELECT * FROM upstream_models ORDER BY seq")
            plan_rows = await conn.fetch("SELECT * FROM plans ORDER BY seq")
            alias_rows = await conn.fetch("SELECT * FROM plan_aliases ORDER BY plan, position")
            route_rows = await conn.fetch("SELECT * FROM plan_routes ORDER BY plan, alias, position")
            budget_rows = await conn.fetch("SELECT * FROM plan_budgets ORDER BY plan, position")
        return Catalog(
            upstreams=_upstreams(upstream_rows, account_rows),
            models=tuple(_model(row) for row in model_rows),
            plans=_plans(plan_rows, alias_rows, route_rows, budget_rows),
        )


def _upstreams(rows: list[Any], account_rows: list[Any]) -> tuple[Upstream, ...]:
    accounts: dict[str, list[Account]] = defaultdict(list)
    for row in account_rows:
        accounts[row["upstream"]].append(Account(row["idx"], row["secret"], row["project"]))
    return tuple(
        Upstream(
            name=row["name"],
            kind=UpstreamKind(row["kind"]),
            base_url=row["base_url"],
            accounts=tuple(accounts[row["name"]]),
            headers=row["headers"],
            timeouts=Timeouts(connect=row["connect_timeout"], read=row["read_timeout"]),
            options=row["options"],
        )
        for row in rows
    )


def _model(row: Any) -> UpstreamModel:
    return UpstreamModel(
        name=row["name"],
        upstream=row["upstream"],
        upstream_model=row["upstream_model"],
        limits=ModelLimits(rpm=row["rpm"], tpm=row["tpm"], rpd=row["rpd"], max_concurrency=row["max_concurrency"]),
    )


def _plans(rows: list[Any], alias_rows: list[Any], route_rows: list[Any], budget_rows: list[Any]) -> tuple[Plan, ...]:
    routes: dict[tuple[str, str], list[Route]] = defaultdict(list)
    for row in route_rows:
        routes[row["plan"], row["alias"]].append(Route(row["model"], row["weight"]))
    aliases: dict[str, list[Alias]] = defaultdict(list)
    for row in alias_rows:
        aliases[row["plan"]].append(Alias(row["name"], tuple(routes[row["plan"], row["name"]])))
    budgets: dict[str, list[Budget]] = defaultdict(list)
    for row in budget_rows:
        budgets[row["plan"]].append(
            Budget(window=parse_window(row["window_name"]), tokens=row["tokens"], requests=row["requests"])
        )
    return tuple(
        Plan(
            name=row["name"],
            routes=tuple(routes[row["name"], ""]),
            aliases=tuple(aliases[row["name"]]),
            budgets=tuple(budgets[row["name"]]),
            strict_models=row["strict_models"],
            rpm=row["rpm"],
            max_concurrency=row["max_concurrency"],
        )
        for row in rows
    )
