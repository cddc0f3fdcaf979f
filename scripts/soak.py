"""Soak: mixed traffic through one `apipod serve` process for a while, watching its memory.

It starts two fake OpenAI-compatible upstreams on 127.0.0.1 (in this process, on uvicorn threads): "steady",
and "flaky", which answers 429 or 500 to a share of its calls so the gateway fails over to "steady". apipod
runs as a separate process on its embedded SQLite default, with a plan routing to both. Then `--concurrency`
clients send, for `--duration` seconds, a mix of non-streamed and streamed OpenAI requests, streamed Anthropic
requests, and streams their client drops after a few chunks. apipod's RSS is sampled every 5 s.

At the end (after a graceful stop, so every usage row is flushed) it prints the RSS after warm-up, the
highest and the final RSS and whether they stayed within 10 % of the warm-up figure; requests/s by kind;
answers by status; and whether the SQLite file holds one usage row per request sent.

Run: .venv/bin/python scripts/soak.py [--duration 600] [--warmup 60] [--concurrency 8]
Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import orjson
import uvicorn

ROOT = Path(__file__).resolve().parents[1]
SECRET = "soak-admin-secret-0123456789"
SAMPLE_EVERY = 5.0
WORDS = 24
WORD_DELAY = 0.01

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


# -- the fake upstreams ------------------------------------------------------------------------------------


class Upstream:
    """A minimal OpenAI-compatible chat endpoint. ``failure_rate`` of the calls answer 429 (most) or 500."""

    def __init__(self, failure_rate: float, seed: int) -> None:
        self.failure_rate = failure_rate
        self.rng = random.Random(seed)
        self.calls = Counter[str]()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        body = orjson.loads(raw) if raw else {}
        if self.rng.random() < self.failure_rate:
            status = 429 if self.rng.random() < 0.7 else 500
            self.calls[str(status)] += 1
            error = {"error": {"message": "busy", "type": "rate_limit_error" if status == 429 else "server_error"}}
            headers = [(b"content-type", b"application/json")]
            if status == 429:
                headers.append((b"retry-after", b"1"))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": orjson.dumps(error)})
            return
        model = str(body.get("model", "m"))
        usage = {"prompt_tokens": 12, "completion_tokens": WORDS, "total_tokens": 12 + WORDS}
        head = {"id": "chatcmpl-soak", "created": 1727346142, "model": model}
        if not body.get("stream"):
            self.calls["plain"] += 1
            text = " ".join(f"w{i}" for i in range(WORDS))
            choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            answer = {**head, "object": "chat.completion", "choices": [choice], "usage": usage}
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
            )
            await send({"type": "http.response.body", "body": orjson.dumps(answer)})
            return
        self.calls["stream"] += 1
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})

        def frame(delta: dict[str, Any], finish: str | None = None) -> bytes:
            chunk = {
                **head,
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return b"data: " + orjson.dumps(chunk) + b"\n\n"

        try:
            await send(
                {
                    "type": "http.response.body",
                    "body": frame({"role": "assistant", "content": "w0 "}),
                    "more_body": True,
                }
            )
            for i in range(1, WORDS):
                await asyncio.sleep(WORD_DELAY)
                await send({"type": "http.response.body", "body": frame({"content": f"w{i} "}), "more_body": True})
            tail = frame({}, "stop")
            tail += b"data: " + orjson.dumps({**head, "object": "chat.completion.chunk", "choices": [], "usage": usage})
            tail += b"\n\ndata: [DONE]\n\n"
            await send({"type": "http.response.body", "body": tail})
        except OSError:
            pass  # the gateway went away (its client disconnected)


class Background:
    """uvicorn on a daemon thread, serving ``app`` on a free port of 127.0.0.1."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="critical", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> str:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(5)


CATALOG = """
[[providers]]
name = "steady"
type = "openai"
base_url = "{steady}/v1"
api_keys = ["sk-steady"]

[[providers]]
name = "flaky"
type = "openai"
base_url = "{flaky}/v1"
api_keys = ["sk-flaky"]

[[models]]
name = "steady-mini"
provider = "steady"
upstream_model = "gpt-4o-mini"

[[models]]
name = "flaky-mini"
provider = "flaky"
upstream_model = "gpt-4o-mini"

[[plans]]
name = "soak"
routes = [{{ model = "flaky-mini", weight = 1 }}, {{ model = "steady-mini", weight = 1 }}]
"""


# -- traffic -------------------------------------------------------------------------------------------------

KINDS = ("plain", "stream", "anthropic-stream", "disconnect")


async def one(client: httpx.AsyncClient, url: str, key: str, kind: str, n: int) -> str:
    """One request of ``kind``; returns its outcome (a status, or "disconnected" / a transport error)."""
    text = [{"role": "user", "content": f"soak request {n}"}]
    if kind == "anthropic-stream":
        path = "/v1/messages"
        headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
        body: dict[str, Any] = {"model": "m", "max_tokens": 256, "messages": text, "stream": True}
    else:
        path = "/v1/chat/completions"
        headers = {"authorization": f"Bearer {key}"}
        body = {"model": "m", "messages": text, "stream": kind != "plain"}
    try:
        if kind == "plain":
            answer = await client.post(url + path, json=body, headers=headers)
            return str(answer.status_code)
        async with client.stream("POST", url + path, json=body, headers=headers) as answer:
            if answer.status_code != 200:
                await answer.aread()
                return str(answer.status_code)
            chunks = 0
            async for _ in answer.aiter_raw():
                chunks += 1
                if kind == "disconnect" and chunks >= 3:
                    return "disconnected"  # leaving the block closes the connection mid-stream
            return "200"
    except httpx.HTTPError as exc:
        return type(exc).__name__


async def drive(
    url: str, key: str, duration: float, concurrency: int, seed: int
) -> tuple[Counter[str], Counter[tuple[str, str]]]:
    rng = random.Random(seed)
    sent: Counter[str] = Counter()
    outcomes: Counter[tuple[str, str]] = Counter()
    deadline = time.monotonic() + duration
    counter = iter(range(10**12))
    limits = httpx.Limits(max_connections=concurrency * 2, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(timeout=30, limits=limits) as client:

        async def worker() -> None:
            while time.monotonic() < deadline:
                kind = rng.choice(KINDS)
                sent[kind] += 1
                outcomes[(kind, await one(client, url, key, kind, next(counter)))] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return sent, outcomes


async def sample(pid: int, samples: list[tuple[float, int]], start: float, stop: asyncio.Event) -> None:
    while not stop.is_set():
        samples.append((time.monotonic() - start, rss_kb(pid)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), SAMPLE_EVERY)
    samples.append((time.monotonic() - start, rss_kb(pid)))


# -- main ------------------------------------------------------------------------------------------------------


def start_apipod(home: Path, catalog: str, port: int) -> subprocess.Popen[bytes]:
    (home / "catalog.toml").write_text(catalog)
    env = {
        **os.environ,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "ADMIN_SECRET": SECRET,
        "APIPOD_CONFIG": str(home / "catalog.toml"),
        "DATABASE_URL": f"sqlite:///{home}/apipod.db",
        "LOG_LEVEL": "ERROR",
    }
    log = (home / "apipod.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "apipod", "serve"], env=env, cwd=home, stdout=log, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError((home / "apipod.log").read_text())
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("apipod did not start")


def stop_apipod(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def report(
    args: argparse.Namespace,
    samples: list[tuple[float, int]],
    sent: Counter[str],
    outcomes: Counter[tuple[str, str]],
    rows: int,
    elapsed: float,
    upstream_calls: dict[str, Counter[str]],
) -> bool:
    after = [(t, kb) for t, kb in samples if t >= args.warmup]
    warm = after[0][1] if after else samples[-1][1]
    peak = max(kb for _, kb in after) if after else warm
    final = samples[-1][1]
    within = peak <= warm * 1.10 and final <= warm * 1.10
    total = sum(sent.values())
    print(f"duration {elapsed:.0f}s, concurrency {args.concurrency}, {total} requests ({total / elapsed:.1f}/s)")
    print(
        f"RSS: start {samples[0][1] / 1024:.1f} MB, after warm-up ({args.warmup:.0f}s) {warm / 1024:.1f} MB, "
        f"max {peak / 1024:.1f} MB, final {final / 1024:.1f} MB -> "
        f"{'within' if within else 'NOT within'} 10 % ({(peak / warm - 1) * 100:+.1f} % at most)"
    )
    print("RSS samples (s: MB): " + ", ".join(f"{t:.0f}: {kb / 1024:.1f}" for t, kb in samples))
    print("requests/s by kind: " + ", ".join(f"{k} {sent[k] / elapsed:.1f}" for k in KINDS))
    statuses = Counter[str]()
    for (_, outcome), count in outcomes.items():
        statuses[outcome] += count
    print("outcomes: " + ", ".join(f"{o}: {c}" for o, c in sorted(statuses.items())))
    errors = {o: c for o, c in statuses.items() if o not in {"200", "disconnected"}}
    print(f"errors by status: {errors or 'none'}")
    for name, calls in upstream_calls.items():
        print(f"upstream {name}: " + ", ".join(f"{k} {v}" for k, v in sorted(calls.items())))
    rows_ok = rows == total
    print(f"usage rows {rows} for {total} requests: {'equal' if rows_ok else 'NOT equal'}")
    return within and rows_ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of traffic (default 600)")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds before the RSS reference (default 60)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--failure-rate", type=float, default=0.1, help="share of the flaky upstream's calls that fail")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    steady, flaky = Upstream(0.0, args.seed), Upstream(args.failure_rate, args.seed + 1)
    servers = [Background(steady), Background(flaky)]
    steady_url, flaky_url = (server.start() for server in servers)
    with tempfile.TemporaryDirectory(prefix="apipod-soak-") as tmp:
        home = Path(tmp)
        port = free_port()
        process = start_apipod(home, CATALOG.format(steady=steady_url, flaky=flaky_url), port)
        url = f"http://127.0.0.1:{port}"
        try:
            created = httpx.post(
                url + "/admin/create-key", headers={"x-admin-secret": SECRET}, json={"name": "soak", "tier": "soak"}
            )
            created.raise_for_status()
            key = created.json()["api_key"]

            async def run() -> tuple[list[tuple[float, int]], Counter[str], Counter[tuple[str, str]], float]:
                samples: list[tuple[float, int]] = []
                stop = asyncio.Event()
                start = time.monotonic()
                sampler = asyncio.create_task(sample(process.pid, samples, start, stop))
                sent, outcomes = await drive(url, key, args.duration, args.concurrency, args.seed)
                elapsed = time.monotonic() - start
                stop.set()
                await sampler
                return samples, sent, outcomes, elapsed

            samples, sent, outcomes, elapsed = asyncio.run(run())
        finally:
            stop_apipod(process)
            for server in servers:
                server.stop()
        with sqlite3.connect(home / "apipod.db") as db:
            rows = int(db.execute("SELECT count(*) FROM usage_records").fetchone()[0])
        ok = report(args, samples, sent, outcomes, rows, elapsed, {"steady": steady.calls, "flaky": flaky.calls})
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
