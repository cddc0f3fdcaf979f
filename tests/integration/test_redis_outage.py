"""Redis going away under two ``apipod serve`` processes that share limits through it (reliability issue 9).

A private ``redis-server`` on a free port (no persistence), so the machine's shared Redis is untouched. The
model allows ``RPM`` requests a minute; each process has its own SQLite database and key, only Redis is shared.

- Redis up: the two processes serve ``RPM`` together.
- Redis stopped: requests are still served, limits now per process (each serves ``RPM`` of its own), and each
  process logs one warning saying so.
- Redis back (restarted empty): after the probe interval the limit is shared again (``RPM`` together), and
  each process logs that it is back.
A plan allowing one request at a time serves sequential requests at once throughout: no slot is leaked
across the switches.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.fake_openai import FakeOpenAI
from tests.fakes.server import serve
from tests.integration.harness import ApipodProcess, catalog, free_port, model, plan, provider

pytestmark = pytest.mark.redis

RPM = 6
PROBE_INTERVAL = 5.0  # apipod.adapters.redis.fallback.DEFAULT_PROBE_INTERVAL
CLIENT_TIMEOUT = 10.0


class RedisServer:
    def __init__(self, tmp: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed")
        self.binary = binary
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.tmp = tmp
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(args, cwd=self.tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def gateway(tmp: Path, name: str, toml: str, redis_url: str) -> ApipodProcess:
    home = tmp / name
    home.mkdir()
    env = {"REDIS_URL": redis_url, "QUEUE_WAIT_SECONDS": "1"}
    return ApipodProcess(catalog=toml, tmp=home, env=env, name=name)


def ask(process: ApipodProcess, key: str) -> int:
    answer = httpx.post(
        f"{process.url}/v1/chat/completions",
        headers={"authorization": f"Bearer {key}"},
        json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
        timeout=CLIENT_TIMEOUT,
    )
    assert answer.status_code in {200, 429}, (answer.status_code, answer.text)
    return answer.status_code


def served(pairs: list[tuple[ApipodProcess, str]], rounds: int) -> dict[int, int]:
    """Requests alternating over ``pairs`` for ``rounds`` rounds: how many each process served."""
    counts = {process.port: 0 for process, _ in pairs}
    for _ in range(rounds):
        for process, key in pairs:
            counts[process.port] += ask(process, key) == 200
    return counts


def one_at_a_time_is_free(pairs: list[tuple[ApipodProcess, str]]) -> None:
    for process, key in pairs:
        for _ in range(2):
            started = time.monotonic()
            assert ask(process, key) == 200
            assert time.monotonic() - started < 0.9, "a slot of the one-at-a-time plan was held"


def test_limits_fall_back_to_each_process_and_are_shared_again(tmp_path: Path, redis_server: RedisServer) -> None:
    fake = FakeOpenAI()
    with serve(fake) as url:
        toml = catalog(
            provider("up", "openai", url + "/v1"),
            models=[model("mini", "up", "gpt-4o-mini", rpm=RPM), model("free", "up", "gpt-4o")],
            plans=[plan("limited", {"mini": 1}), plan("single", {"free": 1}, extra="max_concurrency = 1\n")],
        )
        a, b = gateway(tmp_path, "a", toml, redis_server.url), gateway(tmp_path, "b", toml, redis_server.url)
        with a, b:
            limited = [(a, a.create_key("limited")), (b, b.create_key("limited"))]
            single = [(a, a.create_key("single")), (b, b.create_key("single"))]

            # Shared: RPM together.
            assert sum(served(limited, RPM).values()) == RPM
            one_at_a_time_is_free(single)

            # Redis gone: still served, each process enforcing the limit on its own.
            redis_server.stop()
            outage = served(limited, RPM + 2)
            assert outage == {a.port: RPM, b.port: RPM}, outage
            one_at_a_time_is_free(single)
            for process in (a, b):
                warnings = [line for line in process.log().splitlines() if "shared limits unavailable" in line]
                assert len(warnings) == 1, process.log()

            # Redis back (empty): after the probe interval, RPM together again.
            redis_server.start()
            time.sleep(PROBE_INTERVAL + 0.5)
            back = served(limited, RPM)
            assert sum(back.values()) == RPM, back
            one_at_a_time_is_free(single)
            for process in (a, b):
                assert "shared limits are back" in process.log(), process.log()
