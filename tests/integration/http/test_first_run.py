"""``apipod serve`` with nothing configured, and the other CLI commands, as an operator runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.integration.harness import free_port


def _env(tmp: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"ADMIN_SECRET", "APIPOD_CONFIG", "DATABASE_URL"}}
    env.update({"PORT": str(port), "HOST": "127.0.0.1", "LOG_LEVEL": "WARNING"})
    return env


def _serve(tmp: Path) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "apipod", "serve"],
        cwd=tmp,
        env=_env(tmp, port),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if httpx.get(f"{url}/health", timeout=0.5).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(process.communicate()[0])


def _stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=15)
    return output


def test_first_run_serves_the_demo_plan_with_a_generated_secret_printed_once(tmp_path: Path) -> None:
    process, url = _serve(tmp_path)
    try:
        secret = (tmp_path / "apipod.db.admin-secret").read_text().strip()
        created = httpx.post(
            f"{url}/admin/create-key", headers={"x-admin-secret": secret}, json={"name": "me", "tier": "demo"}
        )
        assert created.status_code == 201
        key = created.json()["api_key"]
        answer = httpx.post(
            f"{url}/v1/chat/completions",
            headers={"authorization": f"Bearer {key}"},
            json={"model": "demo", "messages": [{"role": "user", "content": "hi there"}]},
        )
        assert answer.json()["choices"][0]["message"]["content"] == "Echo: hi there"
    finally:
        first_output = _stop(process)
    assert secret in first_output
    assert "curl -s -X POST" in first_output
    assert (tmp_path / "apipod.db").exists()
    process, _ = _serve(tmp_path)
    second_output = _stop(process)
    assert secret not in second_output
    assert key not in first_output + second_output  # API keys are never logged


def test_cli_version_migrate_and_create_key(tmp_path: Path) -> None:
    env = _env(tmp_path, free_port())
    run = lambda *args: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "apipod", *args], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )
    version = run("version")
    assert version.returncode == 0
    assert version.stdout.startswith("apipod ")
    migrated = run("migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert "applied migrations" in migrated.stdout
    assert "up to date" in run("migrate").stdout
    created = run("create-key", "--name", "ops", "--tier", "demo", "--expires-in", "0.5")
    assert created.returncode == 0, created.stderr
    issued = json.loads(created.stdout)
    assert issued["api_key"].startswith("apk_")
    assert issued["tier"] == "demo"
    refused = run("create-key", "--name", "ops", "--tier", "gold")
    assert refused.returncode == 1
    assert "Unknown plan 'gold'" in refused.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "apipod", "migrate"],
        cwd=tmp_path,
        env={**env, "ADMIN_SECRET": "short"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    assert "16 characters" in bad.stderr
