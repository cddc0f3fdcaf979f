"""PgCatalogStore: upstreams, models and plans in PostgreSQL, served from an in-process copy.

Every request needs the catalog, so ``snapshot()`` serves an in-process copy; once the copy is half ``ttl``
old it reads ``catalog_meta.version`` in the background (one check at a time, however many requests ask),
which every catalog write bumps in its transaction, and reloads only when that changed; a request waits for
the check only when the copy is older than ``ttl``. This process's own writes
refresh it at once, other processes' writes are seen within ``ttl`` (1 s by default). With a SecretBox,
account secrets, header values and secret options are stored sealed (adapters/secret_box.py) and opened
on read.
"""

from __future__ import annotations

import asyncio
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
from apipod.adapters.system import SystemClock
from apipod.application.ports import CatalogStore, Clock
from apipod.dialects.catalog_wire import from_row
from apipod.domain.catalog import Account, Catalog, Plan, Upstream, UpstreamModel
from apipod.domain.errors import ConflictError, NotFoundError

_BUMP = "UPDATE catalog_meta SET version = version + 1"  # in every catalog write's transaction


class PgCatalogStore(CatalogStore):
    def __init__(
        self, db: PgDatabase, *, ttl: float = 1.0, box: SecretBox | None = None, clock: Clock | None = None
    ) -> None:
        self._db = db
        self._box = box
        self._ttl = ttl
        self._clock = clock or SystemClock()  # times the copy's age (the injected clock, as everywhere)
        self._fresh = ttl / 2  # a copy checked less than this ago is served without a check
        self._ahead: asyncio.Task[Catalog] | None = None  # the background check, while one runs
        self._cached: Catalog | None = None
        self._checked_at = 0.0
        self._version = -1  # of the cached copy
        self._loaded_version = -1  # set by each _load
        self._generation = 0  # bumped by our own writes, so a reload racing a write is not trusted
        self._lock = asyncio.Lock()

    async def snapshot(self) -> Catalog:
        cached = self._cached
        if cached is not None:
            age = self._clock.monotonic() - self._checked_at
            if age < self._fresh:
                return cached
            if age < self._ttl:
                # Still trusted: checked in the background, so that under steady use no request waits for the
                # database. Waiting at expiry held every request in flight for one round trip, several turns
                # of a busy loop (a max of 130 ms once a second at 64 connections; docs/benchmarks.md).
                if self._ahead is None:
                    self._ahead = asyncio.ensure_future(self._check())
                    self._ahead.add_done_callback(self._checked)
                return cached
        return await self._check()

    def _checked(self, check: asyncio.Task[Catalog]) -> None:
        self._ahead = None
        if not check.cancelled():
            check.exception()  # a failed check is retried by the next request; not an unretrieved error

    async def _check(self) -> Catalog:
        async with self._lock:
            cached = self._cached
            if cached is not None and self._clock.monotonic() - self._checked_at < self._fresh:
                return cached
            generation = self._generation
            if cached is not None:
                async with self._db.connection("checking the catalog version") as conn:
                    version = await conn.fetchval("SELECT version FROM catalog_meta")
                if version == self._version and generation == self._generation:
                    self._checked_at = self._clock.monotonic()
                    return cached
            catalog = await self._load()
            if generation == self._generation:
                self._cached, self._version = catalog, self._loaded_version
                self._checked_at = self._clock.monotonic()
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
            await conn.execute(_BUMP)
        self.invalidate()

    async def upsert_model(self, model: UpstreamModel) -> None:
        limits = model.limits
        prices = model.prices
        async with self._db.connection("saving a model") as conn, conn.transaction():
            saved = await conn.fetchval(
                """
                INSERT INTO upstream_models (name, upstream, upstream_model, rpm, tpm, rpd, max_concurrency,
                    input_price, output_price, cache_read_price, cache_write_price)
                SELECT $1, name, $3, $4, $5, $6, $7, $8, $9, $10, $11 FROM upstreams WHERE name = $2
                ON CONFLICT (name) DO UPDATE SET upstream = EXCLUDED.upstream,
                    upstream_model = EXCLUDED.upstream_model, rpm = EXCLUDED.rpm, tpm = EXCLUDED.tpm,
                    rpd = EXCLUDED.rpd, max_concurrency = EXCLUDED.max_concurrency,
                    input_price = EXCLUDED.input_price, output_price = EXCLUDED.output_price,
                    cache_read_price = EXCLUDED.cache_read_price, cache_write_price = EXCLUDED.cache_write_price
                RETURNING name
                """,
                model.name,
                model.upstream,
                model.upstream_model,
                limits.rpm,
                limits.tpm,
                limits.rpd,
                limits.max_concurrency,
                prices.input,
                prices.output,
                prices.cache_read,
                prices.cache_write,
            )
            if saved is not None:
                await conn.execute(_BUMP)
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
                "INSERT INTO plan_budgets (plan, position, window_name, tokens, requests, cost)"
                " VALUES ($1, $2, $3, $4, $5, $6)",
                [(plan.name, i, b.window.name, b.tokens, b.requests, b.cost) for i, b in enumerate(plan.budgets)],
            )
            await conn.execute(_BUMP)
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
            await conn.execute(_BUMP)
        self.invalidate()
        return Account(index, secret)

    async def delete_upstream(self, name: str) -> None:
        async with self._db.connection("deleting an upstream") as conn, conn.transaction():
            if await conn.fetchval("SELECT 1 FROM upstreams WHERE name = $1 FOR UPDATE", name) is None:
                raise NotFoundError(f"No upstream named '{name}'.")
            users = await conn.fetch("SELECT name FROM upstream_models WHERE upstream = $1 ORDER BY name", name)
            if users:
                names = ", ".join(r["name"] for r in users)
                raise ConflictError(f"Upstream '{name}' is still used by models: {names}.")
            await conn.execute("DELETE FROM upstreams WHERE name = $1", name)  # accounts cascade
            await conn.execute(_BUMP)
        self.invalidate()

    async def delete_model(self, name: str) -> None:
        async with self._db.connection("deleting a model") as conn, conn.transaction():
            if await conn.fetchval("SELECT 1 FROM upstream_models WHERE name = $1 FOR UPDATE", name) is None:
                raise NotFoundError(f"No model named '{name}'.")
            users = await conn.fetch("SELECT DISTINCT plan FROM plan_routes WHERE model = $1 ORDER BY plan", name)
            if users:
                names = ", ".join(r["plan"] for r in users)
                raise ConflictError(f"Model '{name}' is still routed to by plans: {names}.")
            await conn.execute("DELETE FROM upstream_models WHERE name = $1", name)
            await conn.execute(_BUMP)
        self.invalidate()

    async def delete_plan(self, name: str) -> None:
        async with self._db.connection("deleting a plan") as conn, conn.transaction():
            deleted = await conn.fetchval("DELETE FROM plans WHERE name = $1 RETURNING name", name)
            if deleted is None:
                raise NotFoundError(f"No plan named '{name}'.")
            await conn.execute(_BUMP)
        self.invalidate()

    async def set_currency(self, currency: str) -> None:
        async with self._db.connection("setting the currency") as conn, conn.transaction():
            await conn.execute("UPDATE catalog_meta SET currency = $1, version = version + 1", currency)
        self.invalidate()

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
            meta = await conn.fetchrow("SELECT currency, version FROM catalog_meta")
        self._loaded_version = meta["version"]
        return Catalog(
            upstreams=_upstreams(upstream_rows, account_rows, self._box),
            models=tuple(_model(row) for row in model_rows),
            plans=_plans(plan_rows, alias_rows, route_rows, budget_rows),
            currency=meta["currency"],
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
    names = ("name", "upstream_model", "rpm", "tpm", "rpd", "max_concurrency")
    prices = ("input_price", "output_price", "cache_read_price", "cache_write_price")
    data = {name: row[name] for name in names + prices}
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
            {"window": row["window_name"], "tokens": row["tokens"], "requests": row["requests"], "cost": row["cost"]}
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
