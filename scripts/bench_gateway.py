"""Measures apipod's own overhead: added latency and CPU per request, against a direct call to the upstream.

It starts a minimal upstream (scripts/bench_upstream.py: OpenAI chat completions, the Responses API and Gemini)
and `apipod serve` (SQLite, a plan with token and request budgets, so auth, routing, quota and usage are all on)
as separate processes, drives them with aiohttp, and reads the apipod process's CPU time from /proc.

Each scenario is a client dialect in front of an upstream dialect, non-streamed ("request") and streamed (100
chunks from the upstream, "stream"); the direct baseline is the call apipod itself makes to the upstream:

- chat: OpenAI chat completions client, OpenAI chat upstream (same dialect; the default)
- responses: Responses API client, Responses upstream (an openai provider with responses_api = true)
- responses-translated: Responses API client, OpenAI chat upstream
- gemini: Gemini client (generateContent / streamGenerateContent?alt=sse), google_ai_studio upstream
- gemini-translated: Gemini client, OpenAI chat upstream
- messages-translated: Anthropic Messages client, OpenAI chat upstream

Run: .venv/bin/python scripts/bench_gateway.py [--requests 2000] [--concurrency 1,16] [--scenario chat,responses]
docs/benchmarks.md has the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
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
    """The CPU time of ``pid`` and of its live children (the workers of ``apipod serve --workers N``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    total = (int(fields[11]) + int(fields[12])) / CLK_TCK
    children = Path(f"/proc/{pid}/task/{pid}/children")
    for child in children.read_text().split() if children.exists() else ():
        with contextlib.suppress(FileNotFoundError):  # gone meanwhile
            total += cpu_seconds(int(child))
    return total


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

[[providers]]
name = "bench-responses"
type = "openai"
base_url = "http://127.0.0.1:{port}/v1"
api_keys = ["sk-bench"]
responses_api = true

[[providers]]
name = "bench-gemini"
type = "google_ai_studio"
base_url = "http://127.0.0.1:{port}"
api_keys = ["sk-bench"]

[[models]]
name = "bench-model"
provider = "bench"
upstream_model = "bench-model"

[[models]]
name = "bench-responses-model"
provider = "bench-responses"
upstream_model = "bench-model"

[[models]]
name = "bench-gemini-model"
provider = "bench-gemini"
upstream_model = "bench-model"

[[plans]]
name = "bench"
routes = [{{ model = "bench-model", weight = 1 }}]
aliases = [
  {{ name = "responses", routes = [{{ model = "bench-responses-model", weight = 1 }}] }},
  {{ name = "gemini", routes = [{{ model = "bench-gemini-model", weight = 1 }}] }},
]
budgets = [{{ window = "day", tokens = 1000000000000 }}, {{ window = "month", requests = 1000000000 }}]
"""

HELLO = "hello there"
# Codex-style input (a message item) and store false, as the Codex CLI sends it: `store: true` would add a
# write of the response to the database, which is not the codec and framework cost measured here.
RESPONSES_INPUT = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": HELLO}]}]
GEMINI_BODY = orjson.dumps({"contents": [{"role": "user", "parts": [{"text": HELLO}]}]})


def _openai(model: str, stream: bool) -> bytes:
    return orjson.dumps({"model": model, "stream": stream, "messages": [{"role": "user", "content": HELLO}]})


def _responses(model: str, stream: bool) -> bytes:
    return orjson.dumps({"model": model, "stream": stream, "store": False, "input": RESPONSES_INPUT})


def _anthropic(stream: bool) -> bytes:
    body = {"model": "bench", "max_tokens": 200, "stream": stream, "messages": [{"role": "user", "content": HELLO}]}
    return orjson.dumps(body)


@dataclass(frozen=True)
class Leg:
    """One call: the path (with query), the body, the header style (``openai``, ``anthropic``, ``gemini``)
    and a piece the answer must hold (checked on the warm-up calls: the answer was relayed in full)."""

    path: str
    body: bytes
    style: str
    expect: tuple[bytes, ...]


@dataclass(frozen=True)
class Scenario:
    """A client dialect in front of an upstream dialect: each mode (``request``, ``stream``) pairs the call a
    client makes to apipod with the call apipod makes to the upstream, which is also the direct baseline."""

    client: dict[str, Leg]
    upstream: dict[str, Leg]


_UP_CHAT = {
    "request": Leg("/v1/chat/completions", _openai("bench-model", False), "openai", (b"hello",)),
    "stream": Leg("/v1/chat/completions", _openai("bench-model", True), "openai", (b"[DONE]",)),
}
_UP_GEMINI = "/v1beta/models/bench-model"
_GEMINI_CLIENT = {
    "request": Leg("/v1beta/models/{model}:generateContent", GEMINI_BODY, "gemini", (b'"STOP"',)),
    "stream": Leg(
        "/v1beta/models/{model}:streamGenerateContent?alt=sse", GEMINI_BODY, "gemini", (b"tok99 ", b'"STOP"')
    ),
}


def _gemini_client(model: str) -> dict[str, Leg]:
    return {mode: replace(leg, path=leg.path.format(model=model)) for mode, leg in _GEMINI_CLIENT.items()}


SCENARIOS: dict[str, Scenario] = {
    "chat": Scenario(
        client={
            "request": Leg("/v1/chat/completions", _openai("bench", False), "openai", (b"hello",)),
            "stream": Leg("/v1/chat/completions", _openai("bench", True), "openai", (b"tok99 ", b"[DONE]")),
        },
        upstream=_UP_CHAT,
    ),
    "responses": Scenario(
        client={
            "request": Leg("/v1/responses", _responses("responses", False), "openai", (b"hello",)),
            "stream": Leg("/v1/responses", _responses("responses", True), "openai", (b"tok99 ", b"response.completed")),
        },
        upstream={
            "request": Leg("/v1/responses", _responses("bench-model", False), "openai", (b"hello",)),
            "stream": Leg("/v1/responses", _responses("bench-model", True), "openai", (b"response.completed",)),
        },
    ),
    "responses-translated": Scenario(
        client={
            "request": Leg("/v1/responses", _responses("bench", False), "openai", (b"hello",)),
            "stream": Leg("/v1/responses", _responses("bench", True), "openai", (b"tok99 ", b"response.completed")),
        },
        upstream=_UP_CHAT,
    ),
    "gemini": Scenario(
        client=_gemini_client("gemini"),
        upstream={
            "request": Leg(f"{_UP_GEMINI}:generateContent", GEMINI_BODY, "gemini", (b'"STOP"',)),
            "stream": Leg(f"{_UP_GEMINI}:streamGenerateContent?alt=sse", GEMINI_BODY, "gemini", (b'"STOP"',)),
        },
    ),
    "gemini-translated": Scenario(client=_gemini_client("bench"), upstream=_UP_CHAT),
    # Not in the default run; today's former "stream translated" row (Anthropic client, OpenAI chat upstream).
    "messages-translated": Scenario(
        client={
            "request": Leg("/v1/messages", _anthropic(False), "anthropic", (b"hello",)),
            "stream": Leg("/v1/messages", _anthropic(True), "anthropic", (b"tok99 ", b"message_stop")),
        },
        upstream=_UP_CHAT,
    ),
}


def headers_for(style: str, key: str) -> dict[str, str]:
    if style == "anthropic":
        return {"content-type": "application/json", "x-api-key": key, "anthropic-version": "2023-06-01"}
    if style == "gemini":
        return {"content-type": "application/json", "x-goog-api-key": key}
    return {"content-type": "application/json", "authorization": f"Bearer {key}"}


class CallFailedError(RuntimeError):
    pass


async def drive(url: str, leg: Leg, headers: dict[str, str], n: int, concurrency: int) -> list[float]:
    """``n`` calls, ``concurrency`` at a time; the latency of each. ``leg.expect`` is checked on the first
    answer only, so the timed loop is the same for every scenario."""
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        remaining = n
        checked = False

        async def worker() -> None:
            nonlocal remaining, checked
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                async with http.post(url, data=leg.body, headers=headers) as answer:
                    body = await answer.read()
                    if answer.status != 200:
                        raise CallFailedError(f"POST {url} {leg.body.decode()}\n  -> {answer.status} {body.decode()}")
                latencies.append(time.perf_counter() - started)
                if not checked:
                    checked = True
                    missing = [e for e in leg.expect if e not in body]
                    if missing:
                        raise CallFailedError(
                            f"POST {url} {leg.body.decode()}\n  -> 200 without {missing}: {body[-600:].decode()}"
                        )

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


async def measure(
    name: str, pid: int, direct: tuple[str, Leg], via: tuple[str, Leg], key: str, n: int, concurrency: int
) -> None:
    direct_headers = headers_for(direct[1].style, "sk-bench")
    via_headers = headers_for(via[1].style, key)
    await drive(*direct, direct_headers, min(200, n), concurrency)
    await drive(*via, via_headers, min(200, n), concurrency)
    direct_lat = await drive(*direct, direct_headers, n, concurrency)
    before, started = cpu_seconds(pid), time.perf_counter()
    via_lat = await drive(*via, via_headers, n, concurrency)
    rate = n / (time.perf_counter() - started)
    cpu_ms = (cpu_seconds(pid) - before) * 1000 / n
    added = (statistics.median(via_lat) - statistics.median(direct_lat)) * 1000
    print(
        f"{name:<30} c={concurrency:<3} n={n:<5} p50 direct {statistics.median(direct_lat) * 1000:7.2f} ms"
        f"  via apipod {statistics.median(via_lat) * 1000:7.2f} ms  added {added:6.2f} ms"
        f"  apipod CPU {cpu_ms:6.3f} ms/request  {rate:7.0f} req/s",
        flush=True,
    )


def scenario_names(values: list[str]) -> list[str]:
    names = [name.strip() for value in values for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown:
        raise SystemExit(f"unknown scenario(s) {unknown}; choose from {', '.join(SCENARIOS)}")
    return list(dict.fromkeys(names)) or ["chat"]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="non-streamed calls per row; streams get 1/4")
    parser.add_argument("--concurrency", default="1,16")
    parser.add_argument("--transport", default="aiohttp", choices=["aiohttp", "httpx"])
    parser.add_argument(
        "--scenario",
        action="append",
        default=[],
        help=f"repeatable or comma list, default chat: {', '.join(SCENARIOS)}",
    )
    parser.add_argument("--mode", default="request,stream", help="request, stream or both (default)")
    parser.add_argument(
        "--gemini-usage-last",
        action="store_true",
        help="the Gemini upstream sends usageMetadata on its last chunk only (Gemini sends it on every chunk)",
    )
    parser.add_argument("--workers", default="1", help="apipod serve --workers (CPU is summed over the workers)")
    args = parser.parse_args()
    scenarios = scenario_names(args.scenario)
    modes = [m for m in ("request", "stream") if m in args.mode.split(",")]
    up_port, gw_port = free_port(), free_port()
    python = sys.executable
    failures: list[str] = []
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
        variant = ["--gemini-usage-last"] if args.gemini_usage_last else []
        upstream = subprocess.Popen([python, str(ROOT / "scripts" / "bench_upstream.py"), str(up_port), *variant])
        serve = [python, "-m", "apipod", "serve", "--workers", args.workers]
        gateway = subprocess.Popen(serve, env=env, cwd=tmp)
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
            up = f"http://127.0.0.1:{up_port}"
            gw = f"http://127.0.0.1:{gw_port}"
            print(
                f"transport={args.transport} workers={args.workers}" + (" gemini-usage-last" if variant else ""),
                flush=True,
            )
            for concurrency in (int(c) for c in args.concurrency.split(",")):
                for name in scenarios:
                    scenario = SCENARIOS[name]
                    for mode in modes:
                        direct, via = scenario.upstream[mode], scenario.client[mode]
                        n = args.requests if mode == "request" else args.requests // 4
                        try:
                            await measure(
                                f"{name} {mode}",
                                gateway.pid,
                                (up + direct.path, direct),
                                (gw + via.path, via),
                                key,
                                n,
                                concurrency,
                            )
                        except CallFailedError as exc:
                            failures.append(f"{name} {mode}: {exc}")
                            print(f"{name} {mode}: FAILED {exc}", flush=True)
        finally:
            for process in (gateway, upstream):
                process.terminate()
                process.wait(10)
    if failures:
        raise SystemExit(1)


if __name__ == "__main__":
    asyncio.run(main())
