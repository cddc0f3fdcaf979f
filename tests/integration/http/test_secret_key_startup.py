"""A real ``apipod serve`` keeps the catalog's provider secrets sealed in its SQLite file, and refuses to
start, naming APIPOD_SECRET_KEY, when the key it is given is not the one they were sealed with."""

from __future__ import annotations

from pathlib import Path

import pytest

from apipod.adapters.secret_box import SecretBox, generate_key
from tests.integration.harness import ApipodProcess, catalog, model, plan, provider

ACCOUNT_SECRET = "sk-planted-serve-account-1f3a"
HEADER_SECRET = "planted-serve-header-7b0d"


def toml() -> str:
    return catalog(
        provider(
            "up",
            "openai",
            "http://127.0.0.1:9/v1",
            accounts=[ACCOUNT_SECRET],
            extra=f'headers = {{ x-extra-auth = "{HEADER_SECRET}" }}\n',
        ),
        models=[model("m", "up", "gpt-test")],
        plans=[plan("pro", {"m": 1})],
    )


def raw_database(tmp: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (tmp / "apipod.db", tmp / "apipod.db-wal") if p.exists())


def test_serve_seals_the_catalog_secrets_and_refuses_a_wrong_key_file(tmp_path: Path) -> None:
    env = {"APIPOD_SECRET_KEY": ""}
    with ApipodProcess(catalog=toml(), tmp=tmp_path, env=env) as gateway:
        assert gateway.create_key("pro")
    raw = raw_database(tmp_path)
    assert b"gpt-test" in raw
    assert ACCOUNT_SECRET.encode() not in raw and HEADER_SECRET.encode() not in raw
    key_file = tmp_path / "apipod.db.secret-key"
    right = SecretBox.from_text(key_file.read_text()).key_id
    wrong = generate_key()
    key_file.write_text(wrong + "\n")

    with pytest.raises(RuntimeError, match="exited at start") as caught:
        ApipodProcess(catalog=toml(), tmp=tmp_path, env=env).start()

    log = str(caught.value)
    assert f"encrypted with key id {right}; APIPOD_SECRET_KEY (unset; read from" in log
    assert SecretBox.from_text(wrong).key_id in log
    assert wrong not in log and ACCOUNT_SECRET not in log


def test_serve_refuses_a_wrong_apipod_secret_key(tmp_path: Path) -> None:
    right, wrong = generate_key(), generate_key()
    with ApipodProcess(catalog=toml(), tmp=tmp_path, env={"APIPOD_SECRET_KEY": right}) as gateway:
        assert gateway.create_key("pro")
    assert not (tmp_path / "apipod.db.secret-key").exists()

    with pytest.raises(RuntimeError, match="exited at start") as caught:
        ApipodProcess(catalog=toml(), tmp=tmp_path, env={"APIPOD_SECRET_KEY": wrong}).start()

    log = str(caught.value)
    right_id, wrong_id = SecretBox.from_text(right).key_id, SecretBox.from_text(wrong).key_id
    assert f"encrypted with key id {right_id}; APIPOD_SECRET_KEY has key id {wrong_id}" in log
    assert wrong not in log and right not in log
