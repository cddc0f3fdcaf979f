"""Provider secrets in the SQLite file are sealed (none readable in the raw file), legacy plaintext is
sealed when the stores open, a wrong key fails with a message naming APIPOD_SECRET_KEY, and the database
files are created private (0600)."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from apipod.adapters.secret_box import SecretBox, SecretKeyError, generate_key
from apipod.adapters.sqlite import SqliteCatalogStore, SqliteDatabase
from apipod.application.ports import CatalogStore
from apipod.bootstrap.stores import open_stores
from apipod.domain.catalog import Account, Upstream, UpstreamKind
from tests.contracts.catalog import CatalogStoreContract, upstream_named

ACCOUNT_SECRET = "sk-planted-account-7c1e"
HEADER_SECRET = "planted-header-value-91aa"
OPTION_SECRET = "planted-client-secret-5b2d"
ADDED_SECRET = "ghu_planted-added-token-3f0c"
PLANTED = (ACCOUNT_SECRET, HEADER_SECRET, OPTION_SECRET, ADDED_SECRET)


def secret_upstream(name: str = "up") -> Upstream:
    return Upstream(
        name=name,
        kind=UpstreamKind.ANTIGRAVITY,
        base_url="https://upstream.example/v1",
        accounts=(Account(0, ACCOUNT_SECRET, project="proj-1"),),
        headers={"x-custom-auth": HEADER_SECRET},
        options={"oauth_client_secret": OPTION_SECRET, "oauth_client_id": "public-client-id"},
    )


def raw_bytes(path: Path) -> bytes:
    """Every byte SQLite wrote: the file and its write-ahead log."""
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())


def mode(path: Path | str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


class TestSqliteCatalogStoreWithASecretBox(CatalogStoreContract):
    @pytest.fixture
    async def store(self, db: SqliteDatabase) -> CatalogStore:
        return SqliteCatalogStore(db, SecretBox.from_text(generate_key()))


async def test_no_planted_secret_is_readable_in_the_database_file(tmp_path: Path) -> None:
    """The regression test of the issue: through the stores as the service opens them."""
    path = tmp_path / "apipod.db"
    stores = await open_stores(f"sqlite:///{path}")
    try:
        await stores.catalog.upsert_upstream(secret_upstream())
        await stores.catalog.add_account("up", ADDED_SECRET)
        upstream = upstream_named(await stores.catalog.snapshot(), "up")
    finally:
        await stores.close()
    assert [a.secret for a in upstream.accounts] == [ACCOUNT_SECRET, ADDED_SECRET]
    assert upstream.headers == {"x-custom-auth": HEADER_SECRET}
    assert upstream.options["oauth_client_secret"] == OPTION_SECRET
    raw = raw_bytes(path)
    assert b"public-client-id" in raw  # the check can see plaintext when there is some
    for secret in PLANTED:
        assert secret.encode() not in raw, secret


async def test_the_database_files_and_the_key_file_are_private(tmp_path: Path) -> None:
    path = tmp_path / "data" / "apipod.db"
    old = os.umask(0o022)  # a usual umask, which would leave SQLite's own files 0644
    try:
        stores = await open_stores(f"sqlite:///{path}")
        try:
            await stores.catalog.upsert_upstream(secret_upstream())
            files = [path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}.secret-key")]
            assert [mode(f) for f in files] == [0o600] * 4
        finally:
            await stores.close()
    finally:
        os.umask(old)


async def test_an_existing_database_file_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "apipod.db"
    sqlite3.connect(path).close()
    path.chmod(0o640)
    db = SqliteDatabase(path)
    await db.migrate()
    await db.close()
    assert mode(path) == 0o640


async def test_legacy_plaintext_is_sealed_when_the_stores_open(tmp_path: Path) -> None:
    path = tmp_path / "apipod.db"
    db = SqliteDatabase(path)
    await db.migrate()
    await SqliteCatalogStore(db).upsert_upstream(secret_upstream())  # as a release without encryption did
    await db.close()
    assert ACCOUNT_SECRET.encode() in raw_bytes(path)

    stores = await open_stores(f"sqlite:///{path}")
    try:
        upstream = upstream_named(await stores.catalog.snapshot(), "up")
    finally:
        await stores.close()
    assert upstream == secret_upstream()
    raw = raw_bytes(path)  # the replaced plaintext is zeroed, not left in free space or the WAL
    for secret in (ACCOUNT_SECRET, HEADER_SECRET, OPTION_SECRET):
        assert secret.encode() not in raw, secret


async def test_the_wrong_key_fails_at_open_naming_the_variable(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/apipod.db"
    right, wrong = generate_key(), generate_key()
    stores = await open_stores(url, secret_key=right)
    await stores.catalog.upsert_upstream(secret_upstream())
    await stores.close()

    with pytest.raises(SecretKeyError) as caught:
        await open_stores(url, secret_key=wrong)
    message = caught.value.message
    assert "APIPOD_SECRET_KEY" in message
    assert SecretBox.from_text(right).key_id in message and SecretBox.from_text(wrong).key_id in message
    assert right not in message and ACCOUNT_SECRET not in message

    reopened = await open_stores(url, secret_key=right)
    try:
        assert upstream_named(await reopened.catalog.snapshot(), "up") == secret_upstream()
    finally:
        await reopened.close()


async def test_a_secret_copied_to_another_row_does_not_open(db: SqliteDatabase) -> None:
    box = SecretBox.from_text(generate_key())
    store = SqliteCatalogStore(db, box)
    await store.upsert_upstream(secret_upstream("a"))
    await store.upsert_upstream(Upstream(name="b", kind=UpstreamKind.OPENAI, base_url="https://b.example/v1"))
    await db.run(
        lambda conn: conn.execute(
            "INSERT INTO upstream_accounts (upstream, idx, secret) "
            "SELECT 'b', 0, secret FROM upstream_accounts WHERE upstream = 'a'"
        )
    )
    with pytest.raises(SecretKeyError, match="upstream_accounts/b/0"):
        await SqliteCatalogStore(db, box).load()


async def test_reseal_moves_every_secret_to_the_new_key(db: SqliteDatabase) -> None:
    old, new = SecretBox.from_text(generate_key()), SecretBox.from_text(generate_key())
    store = SqliteCatalogStore(db, old)
    await store.upsert_upstream(secret_upstream())
    await store.add_account("up", ADDED_SECRET)
    assert await store.reseal(new) == 3  # two accounts, one upstream row (its header and option)
    assert await SqliteCatalogStore(db, new).reseal() == 0
    catalog = await SqliteCatalogStore(db, new).load()
    assert [a.secret for a in upstream_named(catalog, "up").accounts] == [ACCOUNT_SECRET, ADDED_SECRET]
    with pytest.raises(SecretKeyError, match=old.key_id):
        await SqliteCatalogStore(db, old).load()
