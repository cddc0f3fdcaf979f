"""Running apipod for integration tests: real ``apipod serve`` processes on free ports, fed a TOML catalog
that points at fake upstream servers (tests/fakes), with SQLite, PostgreSQL or Redis behind them.

    with serve(FakeOpenAI()) as upstream_url:
        with ApipodProcess(catalog=openai_catalog(upstream_url), tmp=tmp_path) as gw:
            key = gw.create_key("pro")
            client = openai.OpenAI(base_url=gw.url + "/v1", api_key=key)
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Generic, TypeVar

import attrs
import httpx
import pytest

ADMIN_SECRET = "integration-admin-secret-0123456789"
SECRET_KEY = "aW50ZWdyYXRpb24tc2VjcmV0LWtleS0wMTIzNDU2Nzg"
"""APIPOD_SECRET_KEY for PostgreSQL-backed processes: every process on one database needs the same key (32 bytes,
URL-safe base64). SQLite-backed ones use the key file beside their database, as a first run does."""
POSTGRES_ADMIN_DSN = os.environ.get("APIPOD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("APIPOD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unreachable(service: str, reason: str) -> None:
    """Skip outside CI; under CI=true a missing service fails the run."""
    message = f"{service} is unreachable ({reason})"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; CI=true requires it")
    pytest.skip(message)


class ApipodProcess:
    """One ``python -m apipod serve`` process. Use as a context manager; ``kill()`` simulates a crash."""

    def __init__(
        self,
        *,
        catalog: str,
        tmp: Path,
        database_url: str | None = None,
        env: dict[str, str] | None = None,
        name: str = "apipod",
        args: tuple[str, ...] = (),
    ) -> None:
        self.tmp = tmp
        self.args = args
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        catalog_path = tmp / f"{name}-{uuid.uuid4().hex[:6]}.toml"
        catalog_path.write_text(catalog)
        self.env = {
            **os.environ,
            "PORT": str(self.port),
            "HOST": "127.0.0.1",
            "ADMIN_SECRET": ADMIN_SECRET,
            "APIPOD_CONFIG": str(catalog_path),
            "DATABASE_URL": database_url or f"sqlite:///{tmp}/apipod.db",
            "LOG_LEVEL": "WARNING",
            "QUEUE_WAIT_SECONDS": "2",
            **(env or {}),
        }
        if self.env["DATABASE_URL"].startswith("postgres"):
            self.env.setdefault("APIPOD_SECRET_KEY", SECRET_KEY)
        self.log_path = tmp / f"{name}-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> ApipodProcess:
        args = [sys.executable, "-m", "apipod", "serve", *self.args]
        if self.env["DATABASE_URL"].startswith("postgres"):
            args.append("--migrate")
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(args, env=self.env, cwd=self.tmp, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"apipod exited at start:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=0.5).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"apipod did not start:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        """Graceful: SIGTERM, so usage is flushed and pools closed."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def kill(self) -> None:
        """A crash: SIGKILL, nothing flushed or released."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def __enter__(self) -> ApipodProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- admin helpers -------------------------------------------------------------------------------

    @property
    def admin(self) -> dict[str, str]:
        return {"x-admin-secret": ADMIN_SECRET}

    def create_key(self, tier: str, *, name: str = "tester", **extra: Any) -> str:
        answer = httpx.post(
            f"{self.url}/admin/create-key", headers=self.admin, json={"name": name, "tier": tier, **extra}
        )
        assert answer.status_code == 201, answer.text
        return str(answer.json()["api_key"])

    def keys(self) -> list[dict[str, Any]]:
        return list(httpx.get(f"{self.url}/admin/keys", headers=self.admin).json()["data"])

    def usage(self, **params: str) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.url}/admin/usage", headers=self.admin, params=params)
        assert answer.status_code == 200, answer.text
        return list(answer.json()["data"])

    def wait_usage(self, count: int, timeout: float = 10.0, **params: str) -> list[dict[str, Any]]:
        """Usage rows are written off the request path: wait until ``count`` are visible."""
        deadline = time.monotonic() + timeout
        rows = self.usage(**params)
        while len(rows) < count and time.monotonic() < deadline:
            time.sleep(0.05)
            rows = self.usage(**params)
        return rows


class PostgresDatabase:
    """A fresh, empty PostgreSQL database for one test (or module), dropped afterwards."""

    def __init__(self, prefix: str = "apipod_it") -> None:
        self.name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        base, _, _ = POSTGRES_ADMIN_DSN.rpartition("/")
        self.dsn = f"{base}/{self.name}"

    async def _admin(self, statement: str) -> None:
        import asyncpg

        try:
            conn = await asyncpg.connect(POSTGRES_ADMIN_DSN, timeout=3.0)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            unreachable("PostgreSQL", f"{POSTGRES_ADMIN_DSN}: {type(exc).__name__}: {exc}")
            raise
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    def __enter__(self) -> PostgresDatabase:
        asyncio.run(self._admin(f'CREATE DATABASE "{self.name}"'))
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run(self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))


def redis_url_or_skip() -> str:
    import redis

    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        client.ping()
        client.close()
    except (redis.RedisError, OSError) as exc:
        unreachable("Redis", f"{REDIS_URL}: {exc}")
    return REDIS_URL


def catalog(
    *providers: str,
    models: list[str],
    plans: list[str],
) -> str:
    """A TOML catalog from pre-rendered table bodies, e.g. ``provider("up", "openai", url)``."""
    parts = [f"[[providers]]\n{p}" for p in providers]
    parts += [f"[[models]]\n{m}" for m in models]
    parts += [f"[[plans]]\n{p}" for p in plans]
    return "\n\n".join(parts) + "\n"


def provider(name: str, kind: str, base_url: str, *, accounts: list[str] | None = None, extra: str = "") -> str:
    field = {"copilot": "github_tokens", "antigravity": "refresh_tokens"}.get(kind, "api_keys")
    keys = ", ".join(f'"{a}"' for a in (accounts or ["sk-test-0"]))
    return f'name = "{name}"\ntype = "{kind}"\nbase_url = "{base_url}"\n{field} = [{keys}]\n{extra}'


def model(name: str, upstream: str, upstream_model: str, **limits: int) -> str:
    extra = "".join(f"{k} = {v}\n" for k, v in limits.items())
    return f'name = "{name}"\nprovider = "{upstream}"\nupstream_model = "{upstream_model}"\n{extra}'


def plan(name: str, routes: dict[str, float], *, extra: str = "") -> str:
    rendered = ", ".join(f'{{ model = "{m}", weight = {w} }}' for m, w in routes.items())
    return f'name = "{name}"\nroutes = [{rendered}]\n{extra}'


# -- the official SDKs as clients (full-stack upstream tests) ---------------------------------------------------
# Thin wrappers typed ``Any``: the SDKs' overloads and TypedDicts add nothing to a test that asserts the values.


def create_key_with_id(gateway: ApipodProcess, tier: str, *, name: str = "tester") -> tuple[str, str]:
    """``(api_key, key id)``: the id filters ``gateway.usage(key_id=...)`` to one test's requests."""
    answer = httpx.post(f"{gateway.url}/admin/create-key", headers=gateway.admin, json={"name": name, "tier": tier})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["api_key"]), str(answer.json()["id"])


def openai_client(gateway: ApipodProcess, key: str) -> Any:
    import openai

    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0)


def anthropic_client(gateway: ApipodProcess, key: str) -> Any:
    import anthropic

    return anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0)


def chat(client: Any, **params: Any) -> Any:
    """One non-streamed ``chat.completions.create``."""
    return client.chat.completions.create(**params)


def chat_stream(client: Any, **params: Any) -> list[Any]:
    """Every chunk of a streamed ``chat.completions.create`` (usage chunk included)."""
    return list(client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **params))


def stream_text(chunks: list[Any], field: str = "content") -> str:
    """The joined ``delta.<field>`` (``content`` or ``reasoning_content``) of streamed chunks."""
    return "".join(getattr(c.choices[0].delta, field, None) or "" for c in chunks if c.choices)


def finish_reasons(chunks: list[Any]) -> list[str]:
    return [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]


def stream_tool_calls(chunks: list[Any]) -> dict[int, dict[str, Any]]:
    """Streamed tool calls assembled by index: ``{"id", "name", "arguments", "extra_content"}``."""
    calls: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        if not chunk.choices:
            continue
        for delta in chunk.choices[0].delta.tool_calls or ():
            call = calls.setdefault(delta.index, {"id": None, "name": None, "arguments": "", "extra_content": None})
            if delta.id:
                call["id"] = delta.id
            if delta.function and delta.function.name:
                call["name"] = delta.function.name
            if delta.function and delta.function.arguments:
                call["arguments"] += delta.function.arguments
            extra = (delta.model_extra or {}).get("extra_content")
            if extra:
                call["extra_content"] = extra
    return calls


def message(client: Any, **params: Any) -> Any:
    """One non-streamed Anthropic ``messages.create``."""
    return client.messages.create(**params)


def message_stream(client: Any, **params: Any) -> tuple[list[str], Any]:
    """A streamed Anthropic ``messages.stream``: the SDK's event types in order, and the final message."""
    with client.messages.stream(**params) as stream:
        events = [event.type for event in stream]
        return events, stream.get_final_message()


def blocks(answer: Any) -> list[dict[str, Any]]:
    """An Anthropic message's content blocks as the dicts a client sends back in its next turn."""
    return [block.model_dump(exclude_none=True) for block in answer.content]


FakeT = TypeVar("FakeT")


@attrs.define
class ProviderStack(Generic[FakeT]):
    """One fake provider behind one apipod process, with the plan ``pro``: keys, SDK clients, usage rows."""

    fake: FakeT
    gateway: ApipodProcess

    def key(self, name: str) -> tuple[str, str]:
        return create_key_with_id(self.gateway, "pro", name=name)

    def openai(self, key: str) -> Any:
        return openai_client(self.gateway, key)

    def anthropic(self, key: str) -> Any:
        return anthropic_client(self.gateway, key)

    def rows(self, key_id: str, count: int = 1) -> list[dict[str, Any]]:
        """This key's usage rows, newest first; exactly ``count`` of them."""
        rows = self.gateway.wait_usage(count, key_id=key_id)
        assert len(rows) == count, rows
        return rows
