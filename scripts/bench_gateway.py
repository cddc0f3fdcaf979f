"""Measures apipod's own overhead: added latency and CPU per request, against a direct call to the upstream.

It starts a minimal OpenAI-compatible upstream (scripts/bench_upstream.py) and `apipod serve` (SQLite, a plan with
token and request budgets, so auth, routing, quota and usage are all on) as separate processes, drives them with
aiohttp, and reads the apipod process's CPU time from /proc.

Run: .venv/bin/python scripts/bench_gateway.py [--requests 2000] [--concurrency 1,16]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-admin-secret-0123456789"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


async def wait_ready(url: str) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            try:
                async with http.get(url) as answer:
                    if answer.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


CATALOG = """
[[providers]]
name = "bench"
type = "openai"
base_url = "http://127.0.0.1:{port}/v1"
api_keys = ["sk-bench"]

[[models]]
name = "bench-model"
provider = "bench"
upstream_model = "bench-model"

[[plans]]
name = "bench"
routes = [{{ model = "bench-model", weight = 1 }}]
budgets = [{{ window = "day", tokens = 1000000000000 }}, {{ window = "month", requests = 1000000000 }}]
"""

OPENAI_BODY = orjson.dumps({"model": "bench", "messages": [{"role": "user", "content": "hello there"}]})
OPENAI_STREAM = orjson.dumps(
    {"model": "bench", "stream": True, "messages": [{"role": "user", "content": "hello there"}]}
)
ANTHROPIC_STREAM = orjson.dumps(
    {"model": "bench", "max_tokens": 200, "stream": True, "messages": [{"role": "user", "content": "hello there"}]}
)


async def drive(url: str, body: bytes, headers: dict[str, str], n: int, concurrency: int) -> list[float]:
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        remaining = n

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                async with http.post(url, data=body, headers=headers) as answer:
                    await answer.read()
                    if answer.status != 200:
                        raise RuntimeError(f"{url}: {answer.status} {await answer.text()}")
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


async def measure(
    name: str, pid: int, direct: tuple[str, bytes], via: tuple[str, bytes, dict[str, str]], n: int, concurrency: int
) -> None:
    json_headers = {"content-type": "application/json", "authorization": "Bearer sk-bench"}
    await drive(direct[0], direct[1], json_headers, min(200, n), concurrency)
    await drive(via[0], via[1], via[2], min(200, n), concurrency)
    direct_lat = await drive(direct[0], direct[1], json_headers, n, concurrency)
    before = cpu_seconds(pid)
    via_lat = await drive(via[0], via[1], via[2], n, concurrency)
    cpu_ms = (cpu_seconds(pid) - before) * 1000 / n
    added = (statistics.median(via_lat) - statistics.median(direct_lat)) * 1000
    print(
        f"{name:<22} c={concurrency:<3} n={n:<5} p50 direct {statistics.median(direct_lat) * 1000:7.2f} ms"
        f"  via apipod {statistics.median(via_lat) * 1000:7.2f} ms  added {added:6.2f} ms"
        f"  apipod CPU {cpu_ms:6.3f} ms/request"
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", default="1,16")
    parser.add_argument("--transport", default="aiohttp", choices=["aiohttp", "httpx"])
    args = parser.parse_args()
    up_port, gw_port = free_port(), free_port()
    python = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        catalog = Path(tmp) / "catalog.toml"
        catalog.write_text(CATALOG.format(port=up_port))
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{tmp}/bench.db",
            "ADMIN_SECRET": SECRET,
            "APIPOD_CONFIG": str(catalog),
            "PORT": str(gw_port),
            "HOST": "127.0.0.1",
            "LOG_LEVEL": "WARNING",
            "HTTP_TRANSPORT": args.transport,
        }
        upstream = subprocess.Popen([python, str(ROOT / "scripts" / "bench_upstream.py"), str(up_port)])
        gateway = subprocess.Popen([python, "-m", "apipod", "serve"], env=env, cwd=tmp)
        try:
            await wait_ready(f"http://127.0.0.1:{up_port}/")
            await wait_ready(f"http://127.0.0.1:{gw_port}/health")
            async with (
                aiohttp.ClientSession() as http,
                http.post(
                    f"http://127.0.0.1:{gw_port}/admin/create-key",
                    headers={"x-admin-secret": SECRET},
                    json={"name": "bench", "tier": "bench"},
                ) as answer,
            ):
                key = (await answer.json())["api_key"]
            up = f"http://127.0.0.1:{up_port}/v1/chat/completions"
            gw = f"http://127.0.0.1:{gw_port}"
            oa_headers = {"content-type": "application/json", "authorization": f"Bearer {key}"}
            an_headers = {"content-type": "application/json", "x-api-key": key, "anthropic-version": "2023-06-01"}
            print(f"transport={args.transport}")
            for concurrency in (int(c) for c in args.concurrency.split(",")):
                await measure(
                    "request",
                    gateway.pid,
                    (up, OPENAI_BODY),
                    (f"{gw}/v1/chat/completions", OPENAI_BODY, oa_headers),
                    args.requests,
                    concurrency,
                )
                await measure(
                    "stream passthrough",
                    gateway.pid,
                    (up, OPENAI_STREAM),
                    (f"{gw}/v1/chat/completions", OPENAI_STREAM, oa_headers),
                    args.requests // 4,
                    concurrency,
                )
                await measure(
                    "stream translated",
                    gateway.pid,
                    (up, OPENAI_STREAM),
                    (f"{gw}/v1/messages", ANTHROPIC_STREAM, an_headers),
                    args.requests // 4,
                    concurrency,
                )
        finally:
            for process in (gateway, upstream):
                process.terminate()
                process.wait(10)


if __name__ == "__main__":
    asyncio.run(main())
