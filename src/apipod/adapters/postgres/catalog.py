"""PgCatalogStore: upstreams, models and plans in PostgreSQL, served from an in-process copy.

Every request needs the catalog, so ``snapshot()`` serves a copy at most ``ttl`` seconds old (one reload
at a time, however many requests ask); this process's own writes refresh it at once, other processes'
writes are seen within ``ttl``. With a SecretBox, account secrets, header values and secret options are
stored sealed (adapters/secret_box.py) and opened on read.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from typing import Any

from apipod.adapters.postgres.database import PgDatabase
from apipod.adapters.secret_box import (
    SecretBox,
    account_place,
    open_headers,
    open_options,
    open_with,
    reseal,
    reseal_headers,
    reseal_options,
    seal_headers,
    seal_options,
    seal_with,
)
from apipod.application.ports import CatalogStore
from apipod.dialects.catalog_wire import from_row
from apipod.domain.catalog import Account, Catalog, Plan, Upstream, UpstreamModel
from apipod.domain.errors import NotFoundError


class PgCatalogStore(CatalogStore):
    def __init__(self, db: PgDatabase, *, ttl: float = 2.0, box: SecretBox | None = None) -> None:
        self._db = db
        self._box = box
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

    async def reseal(self, target: SecretBox | None = None) -> int:
        """Re-encrypt every stored secret not yet sealed under ``target`` (default: this store's key), in one
        transaction; returns how many rows were rewritten. At start-up this seals legacy plaintext; with a
        new key it is the rotation, after which this store must not be used (it holds the old key)."""
        box = target or self._box
        if box is None:
            return 0
        count = 0
        async with self._db.connection("re-encrypting provider secrets") as conn, conn.transaction():
            # Locking the upstreams first keeps concurrent writers (and another process's re-seal) out.
            upstreams = await conn.fetch("SELECT name, headers, options FROM upstreams ORDER BY name FOR UPDATE")
            accounts = await conn.fetch("SELECT upstream, idx, secret FROM upstream_accounts FOR UPDATE")
            for row in accounts:
                new = reseal(self._box, box, row["secret"], account_place(row["upstream"], row["idx"]))
                if new is not None:
                    await conn.execute(
                        "UPDATE upstream_accounts SET secret = $1 WHERE upstream = $2 AND idx = $3",
                        new,
                        row["upstream"],
                        row["idx"],
                    )
                    count += 1
            for row in upstreams:
                headers = reseal_headers(self._box, box, row["name"], row["headers"])
                options = reseal_options(self._box, box, row["name"], row["options"])
                if headers is not None or options is not None:
                    await conn.execute(
                        "UPDATE upstreams SET headers = COALESCE($1, headers), options = COALESCE($2, options)"
                        " WHERE name = $3",
                        headers,
                        options,
                        row["name"],
                    )
                    count += 1
        self.invalidate()
        return count

    async def upsert_upstream(self, upstream: Upstream) -> None:
        async with self._db.connection("saving an upstream") as conn, conn.transaction():
            timeouts = upstream.timeouts
            await conn.execute(
                """
                INSERT INTO upstreams (name, kind, base_url, headers, connect_timeout, read_timeout,
                    first_event_timeout, total_timeout, options, max_event_bytes, max_response_bytes)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                ON CONFLICT (name) DO UPDATE SET kind = EXCLUDED.kind, base_url = EXCLUDED.base_url,
                    headers = EXCLUDED.headers, connect_timeout = EXCLUDED.connect_timeout,
                    read_timeout = EXCLUDED.read_timeout, first_event_timeout = EXCLUDED.first_event_timeout,
                    total_timeout = EXCLUDED.total_timeout, options = EXCLUDED.options,
                    max_event_bytes = EXCLUDED.max_event_bytes, max_response_bytes = EXCLUDED.max_response_bytes
                """,
                upstream.name,
                upstream.kind.value,
                upstream.base_url,
                seal_headers(self._box, upstream.name, dict(upstream.headers)),
                timeouts.connect,
                timeouts.read,
                timeouts.first_event,
                timeouts.total,
                seal_options(self._box, upstream.name, dict(upstream.options)),
                upstream.max_event_bytes,
                upstream.max_response_bytes,
            )
            await conn.execute("DELETE FROM upstream_accounts WHERE upstream = $1", upstream.name)
            await conn.executemany(
                "INSERT INTO upstream_accounts (upstream, idx, secret, project) VALUES ($1, $2, $3, $4)",
                [
                    (
                        upstream.name,
                        a.index,
                        seal_with(self._box, a.secret, account_place(upstream.name, a.index)),
                        a.project,
                    )
                    for a in upstream.accounts
                ],
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
            # The index is chosen first: the sealed secret is bound to it.
            index = await conn.fetchval(
                "SELECT COALESCE(max(idx) + 1, 0) FROM upstream_accounts WHERE upstream = $1", upstream
            )
            await conn.execute(
                "INSERT INTO upstream_accounts (upstream, idx, secret) VALUES ($1, $2, $3)",
                upstream,
                index,
                seal_with(self._box, secret, account_place(upstream, index)),
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
            upstreams=_upstreams(upstream_rows, account_rows, self._box),
            models=tuple(_model(row) for row in model_rows),
            plans=_plans(plan_rows, alias_rows, route_rows, budget_rows),
        )


def _upstreams(rows: list[Any], account_rows: list[Any], box: SecretBox | None) -> tuple[Upstream, ...]:
    accounts: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in account_rows:
        secret = open_with(box, row["secret"], account_place(row["upstream"], row["idx"]))
        accounts[row["upstream"]].append({"index": row["idx"], "secret": secret, "project": row["project"]})
    return tuple(
        from_row(
            {
                "name": row["name"],
                "kind": row["kind"],
                "base_url": row["base_url"],
                "accounts": accounts[row["name"]],
                "headers": open_headers(box, row["name"], row["headers"]),
                "timeouts": {
                    "connect": row["connect_timeout"],
                    "read": row["read_timeout"],
                    "first_event": row["first_event_timeout"],
                    "total": row["total_timeout"],
                },
                "options": open_options(box, row["name"], row["options"]),
                "max_event_bytes": row["max_event_bytes"],
                "max_response_bytes": row["max_response_bytes"],
            },
            Upstream,
            "upstreams",
        )
        for row in rows
    )


def _model(row: Any) -> UpstreamModel:
    data = {name: row[name] for name in ("name", "upstream_model", "rpm", "tpm", "rpd", "max_concurrency")}
    return from_row({**data, "provider": row["upstream"]}, UpstreamModel, "upstream_models")


def _plans(rows: list[Any], alias_rows: list[Any], route_rows: list[Any], budget_rows: list[Any]) -> tuple[Plan, ...]:
    """The plan tables joined back into the plan table's shape (routes, aliases, budgets as lists)."""
    routes: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in route_rows:
        routes[row["plan"], row["alias"]].append({"model": row["model"], "weight": row["weight"]})
    aliases: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in alias_rows:
        aliases[row["plan"]].append({"name": row["name"], "routes": routes[row["plan"], row["name"]]})
    budgets: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in budget_rows:
        budgets[row["plan"]].append(
            {"window": row["window_name"], "tokens": row["tokens"], "requests": row["requests"]}
        )
    return tuple(
        from_row(
            {
                "name": row["name"],
                "routes": routes[row["name"], ""],
                "aliases": aliases[row["name"]],
                "budgets": budgets[row["name"]],
                "strict_models": row["strict_models"],
                "rpm": row["rpm"],
                "max_concurrency": row["max_concurrency"],
            },
            Plan,
            "plans",
        )
        for row in rows
    )
