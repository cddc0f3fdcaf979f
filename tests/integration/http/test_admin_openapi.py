"""The admin API v1 against real ``apipod serve`` processes: a property-based run (schemathesis) driven by the
OpenAPI document the process serves itself, where no generated request may end in a 5xx (kept under a minute),
and a key rotation seen by a second process on the same PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.harness import ApipodProcess, PostgresDatabase, catalog, model, plan, provider

MAX_EXAMPLES = "30"


def test_schemathesis_finds_no_server_error(tmp_path: Path) -> None:
    toml = catalog(
        provider("up", "openai", "http://127.0.0.1:9/v1", accounts=["sk-test-abcdefghijklmnop"]),
        models=[model("m", "up", "mock-model")],
        plans=[plan("basic", {"m": 1.0}), plan("spare", {"m": 1.0})],
    )
    with ApipodProcess(catalog=toml, tmp=tmp_path) as gateway:
        gateway.create_key("basic", name="seed")
        document = httpx.get(f"{gateway.url}/admin/openapi.json", timeout=5)
        assert document.status_code == 200, document.text
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "schemathesis.cli",
                "run",
                f"{gateway.url}/admin/openapi.json",
                "--url",
                gateway.url,
                "-H",
                f"x-admin-secret: {gateway.admin['x-admin-secret']}",
                "--checks",
                "not_a_server_error",
                "--max-examples",
                MAX_EXAMPLES,
                "--seed",
                "1",
                "--request-timeout",
                "10",
                "--exclude-path",
                "/admin/providers/{name}/models",  # asks the upstream itself; nothing listens there
                "--generation-database",
                "none",
                "--no-color",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert run.returncode == 0, (
            f"{run.stdout[-6000:]}\n{run.stderr[-3000:]}\n--- apipod log ---\n{gateway.log()[-4000:]}"
        )
        assert " 500 " not in gateway.log()


@pytest.fixture
def db() -> Iterator[PostgresDatabase]:
    with PostgresDatabase() as database:
        yield database


def _models(gateway: ApipodProcess, secret: str) -> int:
    return httpx.get(f"{gateway.url}/v1/models", headers={"authorization": f"Bearer {secret}"}, timeout=5).status_code


def test_a_rotation_reaches_the_other_process_and_the_grace_ends_there_too(
    db: PostgresDatabase, tmp_path: Path
) -> None:
    toml = catalog(
        provider("up", "openai", "http://127.0.0.1:9/v1"),
        models=[model("m", "up", "gpt-x")],
        plans=[plan("basic", {"m": 1.0})],
    )
    with (
        ApipodProcess(catalog=toml, tmp=tmp_path, database_url=db.dsn, name="a") as a,
        ApipodProcess(catalog=toml, tmp=tmp_path, database_url=db.dsn, name="b") as b,
    ):
        created = httpx.post(f"{a.url}/admin/create-key", headers=a.admin, json={"name": "h", "tier": "basic"}).json()
        old = created["api_key"]
        assert _models(b, old) == 200  # b has the key cached now

        graced = httpx.post(
            f"{a.url}/admin/keys/{created['id']}/rotate", headers=a.admin, json={"grace_seconds": 2}
        ).json()
        assert graced["id"] == created["id"]
        assert _models(b, graced["api_key"]) == 200
        assert _models(b, old) == 200  # within the grace period
        time.sleep(2.2)
        assert (_models(a, old), _models(b, old)) == (401, 401)

        _ = httpx.post(f"{a.url}/admin/keys/{created['id']}/rotate", headers=a.admin).json()
        start = time.monotonic()
        while _models(b, graced["api_key"]) == 200:
            assert time.monotonic() - start < 1.0, "b still accepts the rotated-out secret after a second"
            time.sleep(0.01)
