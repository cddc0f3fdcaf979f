"""import-original: the Go original's tables (as its queries use them) become apipod's catalog and keys, and
the holders' plaintext tokens keep working through their digests."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest

from apipod.adapters.postgres import PgCatalogStore, PgDatabase, PgKeyRepository
from apipod.adapters.postgres.import_original import import_original
from apipod.domain.catalog import Account, ModelLimits, Route, UpstreamKind, UpstreamModel
from apipod.domain.errors import StorageError
from apipod.domain.keys import digest_of
from tests.contracts.catalog import model_named, plan_named, upstream_named

# The original's effective schema (docs/behaviour.md §8.1), as the dashboard creates it.
ORIGINAL_SCHEMA = """
CREATE TABLE subscriptions (sub_id serial PRIMARY KEY, sub_name varchar(100) UNIQUE NOT NULL, price text);
CREATE TABLE users (
    id varchar(26) PRIMARY KEY, name text, apitoken varchar(200) UNIQUE NOT NULL,
    sub_id integer REFERENCES subscriptions (sub_id), active boolean DEFAULT TRUE,
    created_at timestamp DEFAULT NOW(), expires_at timestamp, email text
);
CREATE TABLE providers (id bigserial PRIMARY KEY, base_url text NOT NULL, api_key text, provider_type text NOT NULL);
CREATE TABLE llm_models (
    llm_model_id serial PRIMARY KEY, model_name varchar(200) NOT NULL, provider_id bigint REFERENCES providers (id),
    upstream varchar(50) NOT NULL, rpm integer, tpm integer, rpd integer, UNIQUE (model_name, upstream)
);
CREATE TABLE quota_items (
    quota_id serial PRIMARY KEY, sub_id integer NOT NULL REFERENCES subscriptions (sub_id),
    llm_model_id integer NOT NULL REFERENCES llm_models (llm_model_id), percentage_weight integer NOT NULL,
    UNIQUE (sub_id, llm_model_id)
);
CREATE TABLE provider_accounts (
    id serial PRIMARY KEY, provider_id bigint REFERENCES providers (id), email text, api_key text
);
CREATE TABLE usage_logs (usage_id serial PRIMARY KEY, quota_item_id integer NOT NULL, user_id text,
    requested_model text, routed_model text, upstream_provider text, status integer,
    token_count integer DEFAULT 0, input_tokens integer DEFAULT 0, output_tokens integer DEFAULT 0,
    "timestamp" timestamp DEFAULT NOW());

INSERT INTO subscriptions (sub_id, sub_name, price) VALUES
    (1, 'cursor-pro-auto', '50K/month'), (2, 'cursor-pro-sonnet', NULL), (3, 'empty-plan', NULL);
INSERT INTO providers (id, base_url, api_key, provider_type) VALUES
    (1, 'http://antigravity.local:8045/', 'ag-provider-key', 'antigravity_proxy'),
    (2, 'https://api.openai.com', 'sk-provider', 'openai'),
    (3, 'https://api.groq.com', '', 'groq'),
    (4, 'http://cliproxy.local:8317', 'cli-key', 'cliproxy'),
    (5, 'https://nim.example', 'nim-key', 'nvidia_nim');
INSERT INTO provider_accounts (provider_id, email, api_key) VALUES
    (1, 'a@example.com', 'ag-account-1'), (1, 'b@example.com', 'ag-account-2'),
    (3, 'g@example.com', 'gsk-account'), (4, 'c@example.com', 'cli-account-ignored');
INSERT INTO llm_models (llm_model_id, model_name, provider_id, upstream, rpm, tpm, rpd) VALUES
    (1, 'gemini-3-flash', 1, 'antigravity', 60, 100000, NULL),
    (2, 'gpt-5-mini', 2, 'ghcp', NULL, NULL, 1000),
    (3, 'claude-sonnet-4.5', 4, 'ghcp', 10, NULL, NULL),
    (4, 'claude-sonnet-4.5', 1, 'antigravity', NULL, NULL, NULL),
    (5, 'llama-3.3-70b', 3, 'groq', NULL, NULL, NULL),
    (6, 'nim-model', 5, 'nim', NULL, NULL, NULL);
INSERT INTO quota_items (sub_id, llm_model_id, percentage_weight) VALUES
    (1, 1, 50), (1, 2, 50),
    (2, 4, 20), (2, 3, 10), (2, 1, 40), (2, 2, 30), (2, 6, 5), (2, 5, 0);
INSERT INTO users (id, name, apitoken, sub_id, active, created_at, expires_at) VALUES
    ('01HZZZALICE000000000000000', 'alice', 'sk-alice-plaintext-token', 2, true, '2026-01-02 03:04:05', NULL),
    ('01HZZZBOB00000000000000000', 'bob', 'apk_bobbobbobbobbobbobbobbobbobbobbobbobbobbob', 1, false,
        '2026-02-01 00:00:00', '2026-12-31 00:00:00'),
    ('01HZZZNOPLAN00000000000000', 'carol', 'sk-carol', NULL, true, '2026-03-01 00:00:00', NULL),
    ('odd id/7', NULL, 'sk-dave', 1, NULL, '2026-04-01 00:00:00', NULL);
"""


@pytest.fixture
async def source(scratch_dsn: str) -> str:
    conn = await asyncpg.connect(scratch_dsn)
    try:
        await conn.execute(ORIGINAL_SCHEMA)
    finally:
        await conn.close()
    return scratch_dsn


async def test_the_original_catalog_and_users_are_imported(pg: PgDatabase, source: str) -> None:
    catalog, keys = PgCatalogStore(pg), PgKeyRepository(pg)

    report = await import_original(source, catalog=catalog, keys=keys)

    assert (report.upstreams, report.models, report.plans, report.keys) == (4, 5, 3, 3)
    snapshot = await catalog.snapshot()
    antigravity = upstream_named(snapshot, "antigravity_proxy-1")
    assert antigravity.kind is UpstreamKind.ANTHROPIC
    assert antigravity.base_url == "http://antigravity.local:8045"
    assert antigravity.accounts == (Account(0, "ag-account-1"), Account(1, "ag-account-2"))
    openai = upstream_named(snapshot, "openai-2")
    assert (openai.kind, openai.base_url, openai.accounts) == (
        UpstreamKind.OPENAI,
        "https://api.openai.com/v1",
        (Account(0, "sk-provider"),),
    )
    assert upstream_named(snapshot, "groq-3").base_url == "https://api.groq.com/openai/v1"
    assert upstream_named(snapshot, "groq-3").accounts == (Account(0, "gsk-account"),)
    assert upstream_named(snapshot, "cliproxy-4").accounts == (Account(0, "cli-key"),)  # never the pool
    assert model_named(snapshot, "gemini-3-flash") == UpstreamModel(
        name="gemini-3-flash",
        upstream="antigravity_proxy-1",
        upstream_model="gemini-3-flash",
        limits=ModelLimits(rpm=60, tpm=100000),
    )
    assert model_named(snapshot, "claude-sonnet-4.5@cliproxy-4").limits == ModelLimits(rpm=10)
    assert model_named(snapshot, "claude-sonnet-4.5@antigravity_proxy-1").upstream_model == "claude-sonnet-4.5"
    assert plan_named(snapshot, "cursor-pro-auto").routes == (Route("gemini-3-flash", 50), Route("gpt-5-mini", 50))
    assert plan_named(snapshot, "cursor-pro-sonnet").routes == (
        Route("claude-sonnet-4.5@antigravity_proxy-1", 20),
        Route("claude-sonnet-4.5@cliproxy-4", 10),
        Route("gemini-3-flash", 40),
        Route("gpt-5-mini", 30),
    )
    assert plan_named(snapshot, "empty-plan").routes == ()
    assert any("nvidia_nim" in note for note in report.notes)
    assert any("carol" in note or "01HZZZNOPLAN" in note for note in report.notes)


async def test_imported_plaintext_tokens_keep_working_through_their_digest(pg: PgDatabase, source: str) -> None:
    keys = PgKeyRepository(pg)
    await import_original(source, catalog=PgCatalogStore(pg), keys=keys)

    alice = await keys.by_digest(digest_of("sk-alice-plaintext-token"))
    bob = await keys.by_digest(digest_of("apk_bobbobbobbobbobbobbobbobbobbobbobbobbobbob"))

    assert alice is not None
    assert (alice.id, alice.name, alice.plan, alice.active) == (
        "key_orig_01HZZZALICE000000000000000",
        "alice",
        "cursor-pro-sonnet",
        True,
    )
    assert alice.prefix == "sk-alice-pla"
    assert alice.created_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert bob is not None
    assert (bob.plan, bob.active, bob.expires_at) == ("cursor-pro-auto", False, datetime(2026, 12, 31, tzinfo=UTC))
    dave = await keys.by_digest(digest_of("sk-dave"))
    assert dave is not None
    assert (dave.name, dave.active) == ("user odd id/7", True)
    assert dave.id.startswith("key_orig_")
    assert "/" not in dave.id
    assert " " not in dave.id
    stored = await pg.pool.fetchval("SELECT count(*) FROM api_keys WHERE digest LIKE 'sk-%' OR prefix = digest")
    assert stored == 0  # no plaintext anywhere


async def test_importing_twice_changes_nothing(pg: PgDatabase, source: str) -> None:
    catalog, keys = PgCatalogStore(pg), PgKeyRepository(pg)
    await import_original(source, catalog=catalog, keys=keys)
    before = await catalog.snapshot()

    again = await import_original(source, catalog=catalog, keys=keys)

    assert (again.keys, again.keys_already_present) == (0, 3)
    catalog.invalidate()
    assert await catalog.snapshot() == before
    assert len(await keys.list()) == 3


async def test_a_database_that_is_not_the_original_is_a_storage_error(pg: PgDatabase, scratch_dsn: str) -> None:
    with pytest.raises(StorageError):
        await import_original(scratch_dsn, catalog=PgCatalogStore(pg), keys=PgKeyRepository(pg))
