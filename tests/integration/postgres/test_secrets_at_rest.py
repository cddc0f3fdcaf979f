"""PostgreSQL: provider secrets are sealed in the tables (none readable by a plain SELECT), the store
contract holds with a key, legacy plaintext is sealed when the stores open, a wrong key fails naming
APIPOD_SECRET_KEY, and rotate-secret-key re-seals everything (the import from the original included)."""

from __future__ import annotations

import asyncpg
import pytest

from apipod.adapters.postgres import PgCatalogStore, PgDatabase, PgKeyRepository
from apipod.adapters.postgres.import_original import import_original
from apipod.adapters.secret_box import SecretBox, SecretKeyError, generate_key
from apipod.application.ports import CatalogStore
from apipod.bootstrap.rotate_key import rotate_secret_key
from apipod.bootstrap.settings import Settings
from apipod.bootstrap.stores import open_stores
from apipod.domain.catalog import Account, Upstream, UpstreamKind
from tests.contracts.catalog import CatalogStoreContract, upstream_named
from tests.integration.postgres.test_import_original import ORIGINAL_SCHEMA

ACCOUNT_SECRET = "sk-planted-pg-account-6a9f"
HEADER_SECRET = "planted-pg-header-2c7e"
OPTION_SECRET = "planted-pg-client-secret-0d4b"
ADDED_SECRET = "ghu_planted-pg-added-5e8c"


def secret_upstream() -> Upstream:
    return Upstream(
        name="up",
        kind=UpstreamKind.ANTIGRAVITY,
        base_url="https://upstream.example/v1",
        accounts=(Account(0, ACCOUNT_SECRET, project="p"),),
        headers={"x-custom-auth": HEADER_SECRET},
        options={"oauth_client_secret": OPTION_SECRET, "oauth_client_id": "public-client-id"},
    )


async def table_text(pg: PgDatabase) -> str:
    """The catalog's secret-bearing columns as any reader of the tables sees them."""
    rows = await pg.pool.fetch(
        "SELECT secret AS value FROM upstream_accounts UNION ALL SELECT headers::text FROM upstreams "
        "UNION ALL SELECT options::text FROM upstreams"
    )
    return "\n".join(str(row["value"]) for row in rows)


class TestPgCatalogStoreWithASecretBox(CatalogStoreContract):
    @pytest.fixture
    async def store(self, pg: PgDatabase) -> CatalogStore:
        return PgCatalogStore(pg, box=SecretBox.from_text(generate_key()))


async def test_no_planted_secret_is_readable_in_the_tables(pg: PgDatabase, pg_dsn: str) -> None:
    """The regression test of the issue: through the stores as the service opens them."""
    stores = await open_stores(pg_dsn, secret_key=generate_key())
    try:
        await stores.catalog.upsert_upstream(secret_upstream())
        await stores.catalog.add_account("up", ADDED_SECRET)
        upstream = upstream_named(await stores.catalog.snapshot(), "up")
    finally:
        await stores.close()
    assert [a.secret for a in upstream.accounts] == [ACCOUNT_SECRET, ADDED_SECRET]
    assert (upstream.headers, upstream.options["oauth_client_secret"]) == (
        {"x-custom-auth": HEADER_SECRET},
        OPTION_SECRET,
    )
    text = await table_text(pg)
    assert "public-client-id" in text
    for secret in (ACCOUNT_SECRET, HEADER_SECRET, OPTION_SECRET, ADDED_SECRET):
        assert secret not in text, secret


async def test_legacy_plaintext_is_sealed_when_the_stores_open(pg: PgDatabase, pg_dsn: str) -> None:
    await PgCatalogStore(pg).upsert_upstream(secret_upstream())  # as a release without encryption did
    assert ACCOUNT_SECRET in await table_text(pg)
    key = generate_key()
    stores = await open_stores(pg_dsn, secret_key=key)
    try:
        assert upstream_named(await stores.catalog.snapshot(), "up") == secret_upstream()
    finally:
        await stores.close()
    text = await table_text(pg)
    assert all(secret not in text for secret in (ACCOUNT_SECRET, HEADER_SECRET, OPTION_SECRET))
    assert upstream_named(await PgCatalogStore(pg, box=SecretBox.from_text(key)).snapshot(), "up") == secret_upstream()


async def test_the_wrong_key_fails_at_open_naming_the_variable(pg: PgDatabase, pg_dsn: str) -> None:
    right, wrong = generate_key(), generate_key()
    await PgCatalogStore(pg, box=SecretBox.from_text(right)).upsert_upstream(secret_upstream())
    with pytest.raises(SecretKeyError) as caught:
        await open_stores(pg_dsn, secret_key=wrong)
    message = caught.value.message
    assert f"encrypted with key id {SecretBox.from_text(right).key_id}; APIPOD_SECRET_KEY" in message
    assert wrong not in message and ACCOUNT_SECRET not in message


async def test_a_secret_copied_to_another_row_does_not_open(pg: PgDatabase) -> None:
    box = SecretBox.from_text(generate_key())
    store = PgCatalogStore(pg, box=box)
    await store.upsert_upstream(secret_upstream())
    await store.upsert_upstream(Upstream(name="b", kind=UpstreamKind.OPENAI, base_url="https://b.example/v1"))
    await pg.pool.execute(
        "INSERT INTO upstream_accounts (upstream, idx, secret) SELECT 'b', 0, secret FROM upstream_accounts"
    )
    with pytest.raises(SecretKeyError, match="upstream_accounts/b/0"):
        await PgCatalogStore(pg, box=box).snapshot()


async def test_rotate_secret_key_reseals_everything(pg: PgDatabase, pg_dsn: str) -> None:
    old, new = generate_key(), generate_key()
    store = PgCatalogStore(pg, box=SecretBox.from_text(old))
    await store.upsert_upstream(secret_upstream())
    await store.add_account("up", ADDED_SECRET)
    before = await table_text(pg)

    rotation = await rotate_secret_key(Settings(database_url=pg_dsn, secret_key=old), new)

    assert (rotation.old_key_id, rotation.new_key_id) == (
        SecretBox.from_text(old).key_id,
        SecretBox.from_text(new).key_id,
    )
    assert rotation.rewritten == 3 and rotation.key_file is None and rotation.generated_key is None
    after = await table_text(pg)
    assert f"enc:v1:{rotation.old_key_id}:" in before and f"enc:v1:{rotation.old_key_id}:" not in after
    catalog = await PgCatalogStore(pg, box=SecretBox.from_text(new)).snapshot()
    assert [a.secret for a in upstream_named(catalog, "up").accounts] == [ACCOUNT_SECRET, ADDED_SECRET]
    with pytest.raises(SecretKeyError):
        await PgCatalogStore(pg, box=SecretBox.from_text(old)).snapshot()


async def test_secrets_imported_from_the_original_are_sealed(pg: PgDatabase, scratch_dsn: str) -> None:
    conn = await asyncpg.connect(scratch_dsn)
    try:
        await conn.execute(ORIGINAL_SCHEMA)
    finally:
        await conn.close()
    box = SecretBox.from_text(generate_key())
    catalog = PgCatalogStore(pg, box=box)

    await import_original(scratch_dsn, catalog=catalog, keys=PgKeyRepository(pg))

    text = await table_text(pg)
    for secret in ("ag-account-1", "ag-account-2", "sk-provider", "gsk-account", "cli-key", "nim-key"):
        assert secret not in text, secret
    stored = await pg.pool.fetchval("SELECT secret FROM upstream_accounts WHERE upstream = 'openai-2' AND idx = 0")
    assert box.open(stored, "upstream_accounts/openai-2/0") == "sk-provider"
