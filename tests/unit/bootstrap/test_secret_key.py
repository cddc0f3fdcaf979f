"""Where the provider-secret key comes from: APIPOD_SECRET_KEY, else a 0600 key file beside the database,
generated on first run (with a warning for PostgreSQL, whose processes must share it)."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from apipod.adapters.secret_box import SecretBox, generate_key
from apipod.bootstrap.secret_key import resolve_secret_box, secret_key_path
from apipod.bootstrap.settings import ConfigError, Settings, load_settings


def test_the_variable_is_read_and_validated_by_the_settings() -> None:
    key = generate_key()
    settings = load_settings({"APIPOD_SECRET_KEY": key})
    assert settings.secret_key == key
    assert key not in repr(settings)
    with pytest.raises(ConfigError, match="APIPOD_SECRET_KEY must be 32 random bytes"):
        load_settings({"APIPOD_SECRET_KEY": "not-a-key"})
    assert load_settings({}).secret_key is None


def test_the_key_file_sits_beside_the_database(tmp_path: Path) -> None:
    assert secret_key_path(f"sqlite:///{tmp_path}/a.db") == tmp_path / "a.db.secret-key"
    assert secret_key_path("sqlite:///./apipod.db") == Path("./apipod.db.secret-key")
    assert secret_key_path("postgresql://db/apipod") == Path(".apipod-secret-key")
    assert secret_key_path("memory://") is None
    assert secret_key_path("sqlite:///:memory:") is None


def test_the_variable_wins_over_the_key_file(tmp_path: Path) -> None:
    key = generate_key()
    box = resolve_secret_box(f"sqlite:///{tmp_path}/a.db", key)
    assert box is not None and box.key_id == SecretBox.from_text(key).key_id
    assert not (tmp_path / "a.db.secret-key").exists()


def test_a_key_file_is_generated_private_once_and_then_reused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/a.db"
    old = os.umask(0o022)
    try:
        first = resolve_secret_box(url, None)
    finally:
        os.umask(old)
    path = tmp_path / "a.db.secret-key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = resolve_secret_box(url, None)
    assert first is not None and second is not None and first.key_id == second.key_id


def test_a_damaged_key_file_names_the_variable_and_the_file(tmp_path: Path) -> None:
    (tmp_path / "a.db.secret-key").write_text("garbage\n")
    with pytest.raises(ConfigError, match=r"APIPOD_SECRET_KEY must be .*read from .*a\.db\.secret-key"):
        resolve_secret_box(f"sqlite:///{tmp_path}/a.db", None)


def test_in_memory_databases_need_no_key() -> None:
    assert resolve_secret_box("memory://", None) is None
    assert resolve_secret_box("sqlite:///:memory:", None) is None


def test_postgres_without_the_variable_generates_a_key_and_warns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.WARNING, logger="apipod"):
        box = resolve_secret_box("postgresql://db/apipod", None)
    assert box is not None
    key = (tmp_path / ".apipod-secret-key").read_text().strip()
    assert SecretBox.from_text(key).key_id == box.key_id
    assert "set APIPOD_SECRET_KEY" in caplog.text
    assert key not in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="apipod"):
        resolve_secret_box("postgresql://db/apipod", None)
    assert caplog.text == ""  # the second run reads the file


def test_settings_repr_hides_the_key() -> None:
    key = generate_key()
    assert key not in repr(Settings(secret_key=key))
