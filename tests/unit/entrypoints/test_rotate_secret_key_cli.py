"""``apipod rotate-secret-key`` end to end on a SQLite file, in process (the command runs its own event
loop, so these tests are synchronous): the secrets move to the new key, the operator is told the new key
id (the key itself only when it was generated and kept nowhere else), and a wrong current key fails naming
APIPOD_SECRET_KEY without touching anything."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from apipod.adapters.secret_box import SecretBox, SecretKeyError, generate_key
from apipod.bootstrap.stores import open_stores
from apipod.domain.catalog import Account, Upstream, UpstreamKind
from apipod.entrypoints.cli import main as cli
from tests.contracts.catalog import upstream_named

SECRET = "sk-planted-rotation-secret-4d2a"
HEADER = "planted-rotation-header-8e1b"


def upstream() -> Upstream:
    return Upstream(
        name="up",
        kind=UpstreamKind.OPENAI,
        base_url="https://upstream.example/v1",
        accounts=(Account(0, SECRET),),
        headers={"x-auth": HEADER},
    )


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    for name in ("APIPOD_SECRET_KEY", "APIPOD_NEW_SECRET_KEY", "APIPOD_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    database_url = f"sqlite:///{tmp_path}/apipod.db"
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setattr(cli, "configure_logging", lambda *args: None)
    return database_url


def store_secrets(url: str, key: str | None) -> None:
    asyncio.run(_store_secrets(url, key))


def stored_upstream(url: str, key: str | None) -> Upstream:
    return asyncio.run(_stored_upstream(url, key))


async def _store_secrets(url: str, key: str | None) -> None:
    stores = await open_stores(url, secret_key=key)
    try:
        await stores.catalog.upsert_upstream(upstream())
    finally:
        await stores.close()


async def _stored_upstream(url: str, key: str | None) -> Upstream:
    stores = await open_stores(url, secret_key=key)
    try:
        return upstream_named(await stores.catalog.snapshot(), "up")
    finally:
        await stores.close()


def key_id(key: str) -> str:
    return SecretBox.from_text(key).key_id


def test_rotation_with_the_key_file_replaces_the_file_and_prints_no_key(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store_secrets(url, None)
    key_file = tmp_path / "apipod.db.secret-key"
    old_key = key_file.read_text().strip()

    assert cli.main(["rotate-secret-key"]) == 0

    out = capsys.readouterr().out
    new_key = key_file.read_text().strip()
    assert new_key != old_key
    assert not (tmp_path / "apipod.db.secret-key.new").exists()
    assert f"from key id {key_id(old_key)} to key id {key_id(new_key)}" in out
    assert new_key not in out and old_key not in out and SECRET not in out
    assert stored_upstream(url, None) == upstream()
    with pytest.raises(SecretKeyError, match=key_id(new_key)):
        stored_upstream(url, old_key)
    raw = (tmp_path / "apipod.db").read_bytes()
    assert SECRET.encode() not in raw and HEADER.encode() not in raw


def test_rotation_to_a_given_key_tells_to_update_the_variable(
    url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    old_key, new_key = generate_key(), generate_key()
    store_secrets(url, old_key)
    monkeypatch.setenv("APIPOD_SECRET_KEY", old_key)

    assert cli.main(["rotate-secret-key", f"--new-key={new_key}"]) == 0

    out = capsys.readouterr().out
    assert f"set APIPOD_SECRET_KEY to the new key (key id {key_id(new_key)})" in out
    assert new_key not in out and old_key not in out
    assert stored_upstream(url, new_key) == upstream()
    with pytest.raises(SecretKeyError):
        stored_upstream(url, old_key)


def test_a_generated_key_is_printed_once_when_the_variable_holds_the_key(
    url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    old_key = generate_key()
    store_secrets(url, old_key)
    monkeypatch.setenv("APIPOD_SECRET_KEY", old_key)

    assert cli.main(["rotate-secret-key"]) == 0

    out = capsys.readouterr().out
    printed = re.findall(r"^  (\S{43}=)$", out, flags=re.MULTILINE)
    assert len(printed) == 1
    assert stored_upstream(url, printed[0]) == upstream()


def test_the_new_key_can_come_from_the_environment(
    url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    old_key, new_key = generate_key(), generate_key()
    store_secrets(url, old_key)
    monkeypatch.setenv("APIPOD_SECRET_KEY", old_key)
    monkeypatch.setenv("APIPOD_NEW_SECRET_KEY", new_key)

    assert cli.main(["rotate-secret-key"]) == 0

    assert new_key not in capsys.readouterr().out
    assert stored_upstream(url, new_key) == upstream()


def test_a_wrong_current_key_fails_naming_the_variable_and_changes_nothing(
    url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    right, wrong = generate_key(), generate_key()
    store_secrets(url, right)
    monkeypatch.setenv("APIPOD_SECRET_KEY", wrong)

    assert cli.main(["rotate-secret-key", f"--new-key={generate_key()}"]) == 1

    err = capsys.readouterr().err
    assert f"encrypted with key id {key_id(right)}; APIPOD_SECRET_KEY has key id {key_id(wrong)}" in err
    assert wrong not in err and SECRET not in err
    assert stored_upstream(url, right) == upstream()


@pytest.mark.parametrize("new_key", ["short", "same"])
def test_an_unusable_new_key_is_a_configuration_error(
    url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], new_key: str
) -> None:
    old_key = generate_key()
    store_secrets(url, old_key)
    monkeypatch.setenv("APIPOD_SECRET_KEY", old_key)

    assert cli.main(["rotate-secret-key", f"--new-key={old_key if new_key == 'same' else new_key}"]) == 2

    assert "configuration error: the new key" in capsys.readouterr().err
    assert stored_upstream(url, old_key) == upstream()


def test_an_in_memory_database_has_nothing_to_rotate(
    url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", "memory://")
    assert cli.main(["rotate-secret-key"]) == 2
    assert "nothing at rest" in capsys.readouterr().err


def test_a_failed_rotation_leaves_the_key_file_alone(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store_secrets(url, generate_key())
    key_file = tmp_path / "apipod.db.secret-key"
    key_file.write_text(generate_key() + "\n")  # not the key the secrets were sealed with
    before = key_file.read_text()

    assert cli.main(["rotate-secret-key"]) == 1

    assert "APIPOD_SECRET_KEY (unset; read from" in capsys.readouterr().err
    assert key_file.read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir() if "secret-key" in p.name) == ["apipod.db.secret-key"]
