"""CatalogStore over the embedded SQLite database.

Upstreams, their accounts and models are rows; a plan's routes, aliases and budgets are JSON columns
(always read and written whole). ``snapshot()`` is served from an in-process copy that each write of this
store replaces, so the request path never touches the file; other processes sharing the file are noticed
through ``catalog_meta.version`` (bumped by every catalog write), read at most once per ``recheck`` seconds.
Account secrets live in their own column and never reach a log or an error message; with a SecretBox,
account secrets, header values and secret options are stored sealed (adapters/secret_box.py) and opened
on read.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import orjson

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
from apipod.adapters.sqlite.database import SqliteDatabase, immediate
from apipod.adapters.system import SystemClock
from apipod.application.ports import CatalogStore, Clock
from apipod.dialects.catalog_wire import converter, from_row
from apipod.domain.catalog import Account, Catalog, Plan, Upstream, UpstreamModel
from apipod.domain.errors import ConflictError, NotFoundError

_Loaded = tuple[Catalog, int]  # the catalog and the version it was read at


class SqliteCatalogStore(CatalogStore):
    def __init__(
        self, db: SqliteDatabase, box: SecretBox | None = None, *, recheck: float = 1.0, clock: Clock | None = None
    ) -> None:
        self._db = db
        self._box = box
        self._recheck = recheck
        self._clock = clock or SystemClock()  # times the version checks (the injected clock, as everywhere)
        self._catalog: Catalog | None = None
        self._version = -1
        self._checked_at = float("-inf")

    async def snapshot(self) -> Catalog:
        now = self._clock.monotonic()
        cached = self._catalog
        if cached is not None and now - self._checked_at < self._recheck:
            return cached
        self._checked_at = now  # one check per interval, however many requests arrive meanwhile
        if cached is None or await self._db.run(_version) != self._version:
            return await self.load()
        return cached

    async def load(self) -> Catalog:
        """Read the catalog from the database (at start-up, or to see another process's writes)."""
        return self._keep(await self._db.run(self._load))

    def _keep(self, loaded: _Loaded) -> Catalog:
        """Serve ``loaded`` until the next version check, an interval from now."""
        self._catalog, self._version = loaded
        self._checked_at = self._clock.monotonic()
        return loaded[0]

    async def reseal(self, target: SecretBox | None = None) -> int:
        """Re-encrypt every stored secret not yet sealed under ``target`` (default: this store's key), in one
        transaction; returns how many values were rewritten. At start-up this seals legacy plaintext; with
        a new key it is the rotation, after which this store must not be used (it holds the old key)."""
        box = target or self._box
        if box is None:
            return 0

        def write(conn: sqlite3.Connection) -> int:
            # secure_delete zeroes the freed old values, and the TRUNCATE checkpoint below empties the WAL
            # that still holds them: the replaced plaintext (or old-key ciphertext) does not linger.
            previous = conn.execute("PRAGMA secure_delete").fetchone()[0]
            conn.execute("PRAGMA secure_delete = ON")
            try:
                count = _reseal(conn, self._box, box)
            finally:
                conn.execute(f"PRAGMA secure_delete = {int(previous)}")
            if count:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            return count

        count = await self._db.run(write)
        self._catalog = None
        return count

    async def delete_upstream(self, name: str) -> None:
        def write(conn: sqlite3.Connection) -> _Loaded:
            with immediate(conn):
                if conn.execute("SELECT 1 FROM upstreams WHERE name = ?", (name,)).fetchone() is None:
                    raise NotFoundError(f"No upstream named '{name}'.")
                users = [
                    r[0]
                    for r in conn.execute("SELECT name FROM upstream_models WHERE upstream = ? ORDER BY name", (name,))
                ]
                if users:
                    raise ConflictError(f"Upstream '{name}' is still used by models: {', '.join(users)}.")
                conn.execute("DELETE FROM upstream_accounts WHERE upstream = ?", (name,))
                conn.execute("DELETE FROM upstreams WHERE name = ?", (name,))
                _bump(conn)
            return self._load(conn)

        self._keep(await self._db.run(write))

    async def delete_model(self, name: str) -> None:
        def write(conn: sqlite3.Connection) -> _Loaded:
            with immediate(conn):
                if conn.execute("SELECT 1 FROM upstream_models WHERE name = ?", (name,)).fetchone() is None:
                    raise NotFoundError(f"No model named '{name}'.")
                users = [
                    plan
                    for plan, routes, aliases in conn.execute("SELECT name, routes, aliases FROM plans ORDER BY name")
                    if name in _routed(orjson.loads(routes), orjson.loads(aliases))
                ]
                if users:
                    raise ConflictError(f"Model '{name}' is still routed to by plans: {', '.join(users)}.")
                conn.execute("DELETE FROM upstream_models WHERE name = ?", (name,))
                _bump(conn)
            return self._load(conn)

        self._keep(await self._db.run(write))

    async def delete_plan(self, name: str) -> None:
        def write(conn: sqlite3.Connection) -> _Loaded:
            with immediate(conn):
                if conn.execute("DELETE FROM plans WHERE name = ?", (name,)).rowcount == 0:
                    raise NotFoundError(f"No plan named '{name}'.")
                _bump(conn)
            return self._load(conn)

        self._keep(await self._db.run(write))

    async def set_currency(self, currency: str) -> None:
        def write(conn: sqlite3.Connection) -> _Loaded:
            with immediate(conn):
                conn.execute("UPDATE catalog_meta SET currency = ?", (currency,))
                _bump(conn)
            return self._load(conn)

        self._keep(await self._db.run(write))

    async def upsert_upstream(self, upstream: Upstream) -> None:
        def write(conn: sqlite3.Connection) -> _Loaded:
            with immediate(conn):
                timeouts = upstream.timeouts
                conn.execute(
                    "INSERT INTO upstreams (name, kind, base_url, headers, connect_timeout, read_timeout,"
                    " first_event_timeout, total_timeout, options, max_event_bytes, max_response_bytes)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET kind = excluded.kind,"
                    " base_url = excluded.base_url, headers = excluded.headers,"
                    " connect_timeout = excluded.connect_timeout, read_timeout = excluded.read_timeout,"
                    " first_event_timeout = excluded.first_event_timeout, total_timeout = excluded.total_timeout,"
                    " options = excluded.options, max_event_bytes = excluded.max_event_bytes,"
                    " max_response_bytes = excluded.max_response_bytes",
                    (
                        upstream.name,
                        upstream.kind.value,
                        upstream.base_url,
                        orjson.dumps(seal_headers(self._box, upstream.name, dict(upstream.headers))).decode(),
                        timeouts.connect,
                        timeouts.read,
                        timeouts.first_event,
                        timeouts.total,
                        orjson.dumps(seal_options(self._box, upstream.name, dict(upstream.options))).decode(),
                        upstream.max_event_bytes,
                        upstream.max_response_bytes,
                    ),
                )
                conn.execute("DELETE FROM upstream_accounts WHERE upstream = ?", (upstream.name,))
                conn.executemany(
                    "INSERT INTO upstream_accounts (upstream, idx, secret, project) VALUES (?, ?, ?, ?)",
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
                _bump(conn)
            return self._load(conn)

        self._keep(await self._db.run(write))

    async def upsert_model(self, model: UpstreamModel) -> None:
        def write(conn: sqlite3.Connection) -> _Loaded:
            with immediate(conn):
                if conn.execute("SELECT 1 FROM upstreams WHERE name = ?", (model.upstream,)).fetchone() is None:
                    raise NotFoundError(f"Model '{model.name}' names an unknown upstream '{model.upstream}'.")
                limits = model.limits
                prices = model.prices
                conn.execute(
                    "INSERT INTO upstream_models (name, upstream, upstream_model, rpm, tpm, rpd, max_concurrency,"
                    " input_price, output_price, cache_read_price, cache_write_price)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET"
                    " upstream = excluded.upstream, upstream_model = excluded.upstream_model, rpm = excluded.rpm,"
                    " tpm = excluded.tpm, rpd = excluded.rpd, max_concurrency = excluded.max_concurrency,"
                    " input_price = excluded.input_price, output_price = excluded.output_price,"
                    " cache_read_price = excluded.cache_read_price, cache_write_price = excluded.cache_write_price",
                    (
                        model.name,
                        model.upstream,
                        model.upstream_model,
                        limits.rpm,
                        limits.tpm,
                        limits.rpd,
                        limits.max_concurrency,
                        *(
                            None if p is None else str(p)
                            for p in (prices.input, prices.output, prices.cache_read, prices.cache_write)
                        ),
                    ),
                )
                _bump(conn)
            return self._load(conn)

        self._keep(await self._db.run(write))

    async def upsert_plan(self, plan: Plan) -> None:
        wanted = sorted({r.model for r in plan.routes} | {r.model for a in plan.aliases for r in a.routes})
        table = converter.unstructure(plan, Plan)  # the JSON columns hold the plan table's own lists

        def write(conn: sqlite3.Connection) -> _Loaded:
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
                        orjson.dumps(table["routes"]).decode(),
                        orjson.dumps(table["aliases"]).decode(),
                        orjson.dumps(table["budgets"]).decode(),
                        int(plan.strict_models),
                        plan.rpm,
                        plan.max_concurrency,
                    ),
                )
                _bump(conn)
            return self._load(conn)

        self._keep(await self._db.run(write))

    async def add_account(self, upstream: str, secret: str) -> Account:
        def write(conn: sqlite3.Connection) -> tuple[Account, _Loaded]:
            with immediate(conn):
                if conn.execute("SELECT 1 FROM upstreams WHERE name = ?", (upstream,)).fetchone() is None:
                    raise NotFoundError(f"No upstream named '{upstream}'.")
                row = conn.execute(
                    "SELECT COALESCE(MAX(idx) + 1, 0) FROM upstream_accounts WHERE upstream = ?", (upstream,)
                ).fetchone()
                account = Account(int(row[0]), secret)
                conn.execute(
                    "INSERT INTO upstream_accounts (upstream, idx, secret, project) VALUES (?, ?, ?, NULL)",
                    (upstream, account.index, seal_with(self._box, secret, account_place(upstream, account.index))),
                )
                _bump(conn)
            return account, self._load(conn)

        account, loaded = await self._db.run(write)
        self._keep(loaded)
        return account

    def _load(self, conn: sqlite3.Connection) -> _Loaded:
        return _load(conn, self._box), _version(conn)


def _version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT version FROM catalog_meta").fetchone()[0])


def _bump(conn: sqlite3.Connection) -> None:
    """Tell every process sharing the file that the catalog changed (inside the writing transaction)."""
    conn.execute("UPDATE catalog_meta SET version = version + 1")


def _model_table(row: dict[str, Any]) -> dict[str, Any]:
    """A models row in the model table's shape (``provider``, not ``upstream``)."""
    table = dict(row)
    table["provider"] = table.pop("upstream")
    return table


def _routed(routes: list[dict[str, Any]], aliases: list[dict[str, Any]]) -> set[str]:
    """The model names a plan's JSON routes and aliases name."""
    return {r["model"] for r in routes} | {r["model"] for a in aliases for r in a["routes"]}


def _reseal(conn: sqlite3.Connection, source: SecretBox | None, box: SecretBox) -> int:
    """Re-seal, in one write transaction, every stored secret not sealed under ``box``; returns the count."""
    count = 0
    with immediate(conn):
        rows = conn.execute("SELECT upstream, idx, secret FROM upstream_accounts").fetchall()
        for upstream, idx, secret in rows:
            new = reseal(source, box, secret, account_place(upstream, idx))
            if new is not None:
                conn.execute(
                    "UPDATE upstream_accounts SET secret = ? WHERE upstream = ? AND idx = ?",
                    (new, upstream, idx),
                )
                count += 1
        for name, headers, options in conn.execute("SELECT name, headers, options FROM upstreams").fetchall():
            new_headers = reseal_headers(source, box, name, orjson.loads(headers))
            new_options = reseal_options(source, box, name, orjson.loads(options))
            if new_headers is not None or new_options is not None:
                conn.execute(
                    "UPDATE upstreams SET headers = COALESCE(?, headers), options = COALESCE(?, options)"
                    " WHERE name = ?",
                    (_json_or_none(new_headers), _json_or_none(new_options), name),
                )
                count += 1
    return count


def _json_or_none(value: dict[str, object] | None) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _dicts(cursor: sqlite3.Cursor) -> Iterator[dict[str, Any]]:
    columns = [d[0] for d in cursor.description]
    for row in cursor:
        yield dict(zip(columns, row, strict=True))


def _load(conn: sqlite3.Connection, box: SecretBox | None) -> Catalog:
    """The whole catalog, in the order things were first created, its secrets opened."""
    accounts: dict[str, list[dict[str, Any]]] = {}
    for upstream, idx, secret, project in conn.execute(
        "SELECT upstream, idx, secret, project FROM upstream_accounts ORDER BY upstream, idx"
    ):
        secret = open_with(box, secret, account_place(upstream, idx))
        accounts.setdefault(upstream, []).append({"index": idx, "secret": secret, "project": project})
    upstreams = tuple(
        from_row(
            {
                "name": row["name"],
                "kind": row["kind"],
                "base_url": row["base_url"],
                "accounts": accounts.get(row["name"], []),
                "headers": open_headers(box, row["name"], orjson.loads(row["headers"])),
                "timeouts": {
                    "connect": row["connect_timeout"],
                    "read": row["read_timeout"],
                    "first_event": row["first_event_timeout"],
                    "total": row["total_timeout"],
                },
                "options": open_options(box, row["name"], orjson.loads(row["options"])),
                "max_event_bytes": row["max_event_bytes"],
                "max_response_bytes": row["max_response_bytes"],
            },
            Upstream,
            "upstreams",
        )
        for row in _dicts(conn.execute("SELECT * FROM upstreams ORDER BY rowid"))
    )
    models = tuple(
        from_row(_model_table(row), UpstreamModel, "upstream_models")
        for row in _dicts(
            conn.execute(
                "SELECT name, upstream, upstream_model, rpm, tpm, rpd, max_concurrency, input_price, output_price,"
                " cache_read_price, cache_write_price FROM upstream_models ORDER BY rowid"
            )
        )
    )
    plans = tuple(
        from_row(
            {
                "name": name,
                "routes": orjson.loads(routes),
                "aliases": orjson.loads(aliases),
                "budgets": orjson.loads(budgets),
                "strict_models": bool(strict_models),
                "rpm": rpm,
                "max_concurrency": max_concurrency,
            },
            Plan,
            "plans",
        )
        for name, routes, aliases, budgets, strict_models, rpm, max_concurrency in conn.execute(
            "SELECT name, routes, aliases, budgets, strict_models, rpm, max_concurrency FROM plans ORDER BY rowid"
        )
    )
    currency = conn.execute("SELECT currency FROM catalog_meta").fetchone()[0]
    return Catalog(upstreams=upstreams, models=models, plans=plans, currency=currency)
