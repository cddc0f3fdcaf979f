from __future__ import annotations

from pathlib import Path

import pytest

from apipod.bootstrap.runtime import admin_secret_path, resolve_admin_secret
from apipod.bootstrap.settings import ConfigError, Settings, environment, load_settings


def test_defaults() -> None:
    settings = load_settings({})
    assert (settings.port, settings.database_url, settings.admin_secret) == (8081, "sqlite:///./apipod.db", None)
    assert settings.governance.queue_wait_seconds == 10.0
    assert settings.governance.max_concurrent_requests is None


def test_budget_leases_last_a_second_unless_set_and_zero_turns_them_off() -> None:
    assert load_settings({}).quota_lease_seconds == 1.0
    assert load_settings({"QUOTA_LEASE_SECONDS": "0"}).quota_lease_seconds == 0.0
    assert load_settings({"QUOTA_LEASE_SECONDS": "2.5"}).quota_lease_seconds == 2.5


def test_the_originals_postgres_variables_build_a_url() -> None:
    settings = load_settings(
        {"POSTGRES_HOST": "db", "POSTGRES_USER": "u", "POSTGRES_PASSWORD": "p@ss", "POSTGRES_DB": "x"}
    )
    assert settings.database_url == "postgresql://u:p%40ss@db:5432/x"
    assert settings.is_postgres


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"ADMIN_SECRET": "short"}, "16 characters"),
        ({"PORT": "eighty"}, "PORT"),
        ({"MAX_CONCURRENT_REQUESTS": "-3"}, "negative"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({"HTTP_TRANSPORT": "curl"}, "HTTP_TRANSPORT"),
        ({"QUOTA_LEASE_SECONDS": "-1"}, "QUOTA_LEASE_SECONDS"),
    ],
)
def test_bad_settings_are_named(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        load_settings(env)


def test_dotenv_is_read_and_real_variables_win(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("# comment\nexport PORT=9000\nADMIN_SECRET='from-dotenv-0123456789'\n")
    env = environment({"PORT": "9100"}, dotenv)
    assert env["PORT"] == "9100"
    assert env["ADMIN_SECRET"] == "from-dotenv-0123456789"


def test_a_generated_admin_secret_is_kept_beside_the_database_and_reused(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path}/apipod.db")
    secret, generated = resolve_admin_secret(settings)
    assert generated
    assert len(secret) >= 16
    path = admin_secret_path(settings)
    assert path == tmp_path / "apipod.db.admin-secret"
    assert path.stat().st_mode & 0o777 == 0o600
    assert resolve_admin_secret(settings) == (secret, False)
    assert resolve_admin_secret(Settings(admin_secret="x" * 20)) == ("x" * 20, False)
