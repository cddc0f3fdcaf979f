"""``apipod import-original --from DSN``: bring a database of the original Go project into apipod.

Mapping (the original's schema is in docs/behaviour.md §8.1):
- ``providers`` -> upstreams named ``<provider_type>-<id>``; the original's type aliases map to apipod kinds
  and ``base_url`` gets the path the original appended (openai ``/v1``, groq ``/openai/v1``), since apipod's
  base URLs include the version path. The account pool is ``provider_accounts`` (in id order), or the
  provider's own ``api_key`` when it has none; cliproxy always used its provider key.
- ``llm_models`` -> upstream models with rpm/tpm/rpd, named by ``model_name`` (``<model_name>@<upstream>``
  when one name exists on several providers).
- ``subscriptions`` + ``quota_items`` -> plans whose default mix has the ``percentage_weight`` weights.
- ``users`` -> keys ``key_orig_<id>``: the plaintext ``apitoken`` is stored only as its digest, so the
  holders' existing tokens keep working. Naive timestamps are read as UTC.

Writes go through the store ports (upserts by name), so it works for any target store and can be run
again: keys already imported are left alone.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any

import asyncpg
import attrs

from apipod.adapters.postgres.database import normalize_dsn, storage_errors
from apipod.adapters.system import SystemClock
from apipod.application.ports import CatalogStore, Clock, KeyRepository
from apipod.domain.catalog import Account, ModelLimits, Plan, Route, Upstream, UpstreamModel, parse_kind
from apipod.domain.errors import ConflictError
from apipod.domain.keys import ApiKey, digest_of, display_prefix

# Path the original appended after ``base_url`` that apipod expects inside it.
_BASE_SUFFIX = {"openai": "/v1", "groq": "/openai/v1"}
_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@attrs.define
class ImportReport:
    upstreams: int = 0
    models: int = 0
    plans: int = 0
    keys: int = 0
    keys_already_present: int = 0
    notes: list[str] = attrs.field(factory=list)


async def import_original(
    source_dsn: str, *, catalog: CatalogStore, keys: KeyRepository, clock: Clock = SystemClock()
) -> ImportReport:
    """Read the original's tables from ``source_dsn`` (read-only) and upsert them into the stores.

    Raises:
        StorageError: the source cannot be read (unreachable, or not the original's schema).
    """
    with storage_errors("reading the original database"):
        conn = await asyncpg.connect(normalize_dsn(source_dsn))
        try:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                source = await _read(conn)
        finally:
            await conn.close()
    report = ImportReport()
    upstream_names = await _import_upstreams(source, catalog, report)
    model_names = await _import_models(source, catalog, upstream_names, report)
    await _import_plans(source, catalog, model_names, report)
    await _import_keys(source, keys, report, now=clock.now())
    return report


async def _read(conn: asyncpg.Connection) -> dict[str, list[Any]]:
    async def columns(table: str) -> set[str]:
        rows = await conn.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = $1",
            table,
        )
        return {r["column_name"] for r in rows}

    def pick(have: set[str], wanted: list[str]) -> str:
        # Column names come from this fixed list, never from the source: absent ones read as NULL.
        return ", ".join(c if c in have else f"NULL AS {c}" for c in wanted)

    user_cols, model_cols = await columns("users"), await columns("llm_models")
    has_accounts = bool(await columns("provider_accounts"))
    users_sql = "SELECT id::text AS id, " + pick(
        user_cols, ["name", "apitoken", "sub_id", "active", "created_at", "expires_at"]
    )
    models_sql = "SELECT llm_model_id, model_name, provider_id, " + pick(model_cols, ["rpm", "tpm", "rpd"])
    return {
        "providers": await conn.fetch(
            "SELECT id, base_url, COALESCE(api_key, '') AS api_key, provider_type FROM providers ORDER BY id"
        ),
        "accounts": await conn.fetch(
            "SELECT provider_id, api_key FROM provider_accounts WHERE api_key IS NOT NULL AND api_key <> '' "
            "ORDER BY provider_id, id"
        )
        if has_accounts
        else [],
        "models": await conn.fetch(models_sql + " FROM llm_models ORDER BY llm_model_id"),
        "plans": await conn.fetch("SELECT sub_id, sub_name FROM subscriptions ORDER BY sub_id"),
        "routes": await conn.fetch(
            "SELECT sub_id, llm_model_id, percentage_weight FROM quota_items ORDER BY sub_id, quota_id"
        ),
        "users": await conn.fetch(users_sql + " FROM users ORDER BY created_at NULLS FIRST, id"),
    }


async def _import_upstreams(
    source: dict[str, list[Any]], catalog: CatalogStore, report: ImportReport
) -> dict[int, str]:
    pools: dict[int, list[str]] = {}
    for row in source["accounts"]:
        pools.setdefault(row["provider_id"], []).append(row["api_key"])
    names: dict[int, str] = {}
    for row in source["providers"]:
        original_type = str(row["provider_type"])
        try:
            kind = parse_kind(original_type)
        except ValueError:
            report.notes.append(f"provider {row['id']}: type '{original_type}' is not supported; skipped")
            continue
        secrets = pools.get(row["id"], []) if original_type != "cliproxy" else []
        if not secrets and row["api_key"]:
            secrets = [row["api_key"]]
        name = f"{original_type}-{row['id']}"
        base_url = str(row["base_url"] or "").rstrip("/")
        if base_url and original_type in _BASE_SUFFIX:
            base_url += _BASE_SUFFIX[original_type]
        await catalog.upsert_upstream(
            Upstream(
                name=name,
                kind=kind,
                base_url=base_url,
                accounts=tuple(Account(i, s) for i, s in enumerate(secrets)),
            )
        )
        names[row["id"]] = name
        report.upstreams += 1
    return names


async def _import_models(
    source: dict[str, list[Any]], catalog: CatalogStore, upstreams: dict[int, str], report: ImportReport
) -> dict[int, str]:
    usable = [row for row in source["models"] if row["provider_id"] in upstreams]
    for row in source["models"]:
        if row["provider_id"] not in upstreams:
            report.notes.append(f"model {row['llm_model_id']} ({row['model_name']}): its provider was not imported")
    counts: dict[str, int] = {}
    for row in usable:
        counts[row["model_name"]] = counts.get(row["model_name"], 0) + 1
    names: dict[int, str] = {}
    for row in usable:
        upstream = upstreams[row["provider_id"]]
        name = row["model_name"] if counts[row["model_name"]] == 1 else f"{row['model_name']}@{upstream}"
        await catalog.upsert_model(
            UpstreamModel(
                name=name,
                upstream=upstream,
                upstream_model=row["model_name"],
                limits=ModelLimits(rpm=row["rpm"], tpm=row["tpm"], rpd=row["rpd"]),
            )
        )
        names[row["llm_model_id"]] = name
        report.models += 1
    return names


async def _import_plans(
    source: dict[str, list[Any]], catalog: CatalogStore, models: dict[int, str], report: ImportReport
) -> None:
    routes: dict[int, list[Route]] = {}
    for row in source["routes"]:
        if row["llm_model_id"] not in models:
            report.notes.append(f"plan route to model {row['llm_model_id']}: model not imported; dropped")
        elif row["percentage_weight"] is None or row["percentage_weight"] <= 0:
            report.notes.append(
                f"plan route to model {row['llm_model_id']}: weight {row['percentage_weight']} never routes; dropped"
            )
        else:
            routes.setdefault(row["sub_id"], []).append(
                Route(models[row["llm_model_id"]], float(row["percentage_weight"]))
            )
    for row in source["plans"]:
        mix = routes.get(row["sub_id"], [])
        if not mix:
            report.notes.append(f"plan '{row['sub_name']}' has no usable routes: its keys will get no answer")
        await catalog.upsert_plan(Plan(name=row["sub_name"], routes=tuple(mix)))
        report.plans += 1


async def _import_keys(
    source: dict[str, list[Any]], keys: KeyRepository, report: ImportReport, *, now: datetime
) -> None:
    """``now`` stands in for a missing ``created_at`` (the injected clock's, never the host's directly)."""
    plans = {row["sub_id"]: row["sub_name"] for row in source["plans"]}
    for row in source["users"]:
        token, plan = row["apitoken"], plans.get(row["sub_id"])
        if not token or plan is None:
            report.notes.append(f"user {row['id']}: no token or no known subscription; skipped")
            continue
        key = ApiKey(
            id=_key_id(str(row["id"])),
            digest=digest_of(token),
            prefix=display_prefix(token),
            name=row["name"] or f"user {row['id']}",
            plan=plan,
            active=row["active"] is not False,
            created_at=_utc(row["created_at"]) or now,
            expires_at=_utc(row["expires_at"]),
        )
        try:
            await keys.add(key)
        except ConflictError:
            report.keys_already_present += 1
            continue
        report.keys += 1


def _key_id(original_id: str) -> str:
    if _SAFE_ID.match(original_id):
        return f"key_orig_{original_id}"
    return "key_orig_" + hashlib.sha256(original_id.encode()).hexdigest()[:24]


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
