"""Process settings from the environment (and a ``.env`` file). The only module that reads them."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote

import attrs

from apipod.application.settings import GovernanceSettings


class ConfigError(ValueError):
    """A setting or the catalog file is wrong; the message says which and why."""


@attrs.frozen(kw_only=True)
class Settings:
    host: str = "0.0.0.0"  # noqa: S104 - a gateway serves its network by default, as the original did
    port: int = 8081
    database_url: str = "sqlite:///./apipod.db"
    admin_secret: str | None = attrs.field(default=None, repr=False)
    secret_key: str | None = attrs.field(default=None, repr=False)  # APIPOD_SECRET_KEY: seals provider secrets
    config_path: str | None = None
    redis_url: str | None = None
    log_level: str = "INFO"
    log_format: str = "console"
    http_transport: str = "aiohttp"
    max_body_bytes: int = 32 * 1024 * 1024
    http_max_connections: int = 1000
    migrate_on_start: bool = False
    sweep_interval: float = 15.0  # seconds between sweeps of expired quota reservations
    # PostgreSQL: a process takes blocks of a hot key's budget for up to this long (docs/behaviour.md §2);
    # 0 = one database write per reservation.
    quota_lease_seconds: float = 1.0
    responses_ttl_days: int = 30  # stored Responses API responses (`store: true`) live this long; 0 = none
    sse_keepalive_seconds: float = 15.0  # upstream silence before a keep-alive frame; 0 = none
    stream_flush_interval_ms: int = 0  # 0 = each event written as it arrives; N = events coalesced for N ms
    shutdown_drain_seconds: float = 5.0  # SIGTERM: readiness 503 while still accepting, for load balancers
    shutdown_grace_seconds: float = 30.0  # then in-flight requests and streams may run this long
    metrics_token: str | None = attrs.field(default=None, repr=False)  # GET /metrics needs it as a bearer
    prometheus_multiproc_dir: str | None = None  # several workers: metrics summed from files there
    governance: GovernanceSettings = GovernanceSettings()
    shortcuts: Mapping[str, str] = attrs.field(factory=dict, repr=False)

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith(("postgres://", "postgresql://"))


SHORTCUT_VARIABLES = ("OPENAI_API_KEY", "GOOGLE_AI_STUDIO_KEY", "ANTIGRAVITY_URL", "ANTIGRAVITY_KEY")


def read_dotenv(path: Path) -> dict[str, str]:
    """``KEY=value`` lines; ``#`` comments, ``export`` prefixes and surrounding quotes allowed."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[name.strip()] = value
    return values


def environment(environ: Mapping[str, str] | None = None, dotenv: Path | None = Path(".env")) -> dict[str, str]:
    """The process environment over the ``.env`` file (real variables win)."""
    merged = read_dotenv(dotenv) if dotenv is not None else {}
    merged.update(os.environ if environ is None else environ)
    return merged


def _int(env: Mapping[str, str], name: str, default: int | None) -> int | None:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
    if value < 0:
        raise ConfigError(f"{name} must not be negative")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {raw!r}") from None


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    value = _float(env, name, default)
    if value <= 0:
        raise ConfigError(f"{name} must be a positive number of seconds")
    return value


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    value = _float(env, name, default)
    if value < 0:
        raise ConfigError(f"{name} must not be negative")
    return value


MAX_RESPONSES_TTL_DAYS = 3650


def _responses_ttl_days(env: Mapping[str, str]) -> int:
    days = _int(env, "RESPONSES_TTL_DAYS", 30)
    if days is None or days > MAX_RESPONSES_TTL_DAYS:
        raise ConfigError(f"RESPONSES_TTL_DAYS must be at most {MAX_RESPONSES_TTL_DAYS}")
    return days


def _database_url(env: Mapping[str, str]) -> str:
    if env.get("DATABASE_URL"):
        return env["DATABASE_URL"]
    if env.get("POSTGRES_HOST"):
        user = quote(env.get("POSTGRES_USER", "postgres"))
        password = env.get("POSTGRES_PASSWORD", "")
        auth = f"{user}:{quote(password)}" if password else user
        port = env.get("POSTGRES_PORT", "5432")
        db = env.get("POSTGRES_DB", "apipod")
        ssl = f"?sslmode={env['POSTGRES_SSLMODE']}" if env.get("POSTGRES_SSLMODE") else ""
        return f"postgresql://{auth}@{env['POSTGRES_HOST']}:{port}/{db}{ssl}"
    return "sqlite:///./apipod.db"


def load_settings(environ: Mapping[str, str]) -> Settings:
    env = environ
    secret = env.get("ADMIN_SECRET") or None
    if secret is not None and len(secret) < 16:
        raise ConfigError("ADMIN_SECRET must be at least 16 characters long")
    secret_key = env.get("APIPOD_SECRET_KEY", "").strip() or None
    if secret_key is not None:
        from apipod.adapters.secret_box import SecretKeyError, parse_key

        try:
            parse_key(secret_key)
        except SecretKeyError as exc:
            raise ConfigError(exc.message) from None
    transport = env.get("HTTP_TRANSPORT", "aiohttp").strip() or "aiohttp"
    if transport not in {"aiohttp", "httpx"}:
        raise ConfigError("HTTP_TRANSPORT must be 'aiohttp' or 'httpx'")
    log_format = env.get("LOG_FORMAT", "console").strip().lower() or "console"
    if log_format not in {"json", "console"}:
        raise ConfigError("LOG_FORMAT must be 'json' or 'console'")
    model_limit = _int(env, "MODEL_CONCURRENCY_LIMIT", None)
    governance = GovernanceSettings(
        max_concurrent_requests=_int(env, "MAX_CONCURRENT_REQUESTS", None) or None,
        model_concurrency_limit=model_limit or None,
        queue_wait_seconds=_float(env, "QUEUE_WAIT_SECONDS", 10.0),
        reservation_ttl=_float(env, "RESERVATION_TTL_SECONDS", 600.0),
        max_attempts=_int(env, "MAX_ATTEMPTS", 3) or 1,
    )
    return Settings(
        host=env.get("HOST", "0.0.0.0") or "0.0.0.0",  # noqa: S104 - see Settings.host
        port=_int(env, "PORT", 8081) or 8081,
        database_url=_database_url(env),
        admin_secret=secret,
        secret_key=secret_key,
        config_path=env.get("APIPOD_CONFIG") or None,
        redis_url=env.get("REDIS_URL") or None,
        log_level=(env.get("LOG_LEVEL") or "INFO").upper(),
        log_format=log_format,
        http_transport=transport,
        max_body_bytes=_int(env, "MAX_BODY_BYTES", 32 * 1024 * 1024) or 32 * 1024 * 1024,
        sweep_interval=_positive(env, "SWEEP_INTERVAL_SECONDS", 15.0),
        quota_lease_seconds=_seconds(env, "QUOTA_LEASE_SECONDS", 1.0),
        responses_ttl_days=_responses_ttl_days(env),
        sse_keepalive_seconds=_seconds(env, "SSE_KEEPALIVE_SECONDS", 15.0),
        stream_flush_interval_ms=_int(env, "STREAM_FLUSH_INTERVAL_MS", 0) or 0,
        shutdown_drain_seconds=_seconds(env, "SHUTDOWN_DRAIN_SECONDS", 5.0),
        shutdown_grace_seconds=_seconds(env, "SHUTDOWN_GRACE_SECONDS", 30.0),
        metrics_token=env.get("METRICS_TOKEN") or None,
        prometheus_multiproc_dir=env.get("PROMETHEUS_MULTIPROC_DIR") or None,
        governance=governance,
        shortcuts={name: env[name] for name in SHORTCUT_VARIABLES if env.get(name)},
    )
