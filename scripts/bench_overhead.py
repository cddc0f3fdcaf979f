"""The gateway's own CPU per request, in process: the ASGI app (Falcon, the request scope, authentication,
routing, admission, quota, usage rows, the codecs) driven directly, no sockets, over SQLite and the built-in
mock upstream. Less noisy than ``bench_gateway.py`` on a busy machine (no load generator or upstream
competing for the cores), so it is what to compare before and after a change on the request path.

Run: .venv/bin/python scripts/bench_overhead.py [--requests 3000] [--rounds 5]
It prints the best round's CPU microseconds per request for a non-streamed request and a streamed one.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from apipod.bootstrap.settings import load_settings
from apipod.entrypoints.http.asgi import app_for

SECRET = "bench-admin-secret-0123456789"
CATALOG = """
[[providers]]
name = "mock"
type = "mock"

[[models]]
name = "echo"
provider = "mock"
upstream_model = "mock-echo"

[[plans]]
name = "bench"
routes = [{ model = "echo", weight = 1 }]
budgets = [{ window = "day", tokens = 1000000000000 }, { window = "month", requests = 1000000000 }]
"""
CHAT = orjson.dumps({"model": "bench", "messages": [{"role": "user", "content": "hello there"}]})
STREAM = orjson.dumps({"model": "bench", "stream": True, "messages": [{"role": "user", "content": "hello there"}]})


async def call(app: Any, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes) -> tuple[int, bytes]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), *headers],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8081),
    }
    sent = False
    status = 0
    chunks: list[bytes] = []
    done = asyncio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                done.set()

    await app(scope, receive, send)
    return status, b"".join(chunks)


async def lifespan(app: Any, kind: str) -> None:
    messages = [{"type": f"lifespan.{kind}"}]
    answered = asyncio.Event()

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await asyncio.Event().wait()
        return {}

    async def send(message: dict[str, Any]) -> None:
        answered.set()

    task = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send))
    await answered.wait()
    task.cancel()


async def main(requests: int, rounds: int, only: str = "") -> None:
    with tempfile.TemporaryDirectory() as tmp:
        catalog = Path(tmp) / "catalog.toml"
        catalog.write_text(CATALOG)
        env = {"DATABASE_URL": f"sqlite:///{tmp}/bench.db", "APIPOD_CONFIG": str(catalog), "ADMIN_SECRET": SECRET}
        settings = load_settings(env)
        app = app_for(settings, env, SECRET)
        await lifespan(app, "startup")
        status, body = await call(
            app, "POST", "/admin/create-key", [(b"x-admin-secret", SECRET.encode())], b'{"name":"b","tier":"bench"}'
        )
        assert status == 201, body
        auth = [(b"authorization", b"Bearer " + orjson.loads(body)["api_key"].encode())]
        for label, payload in (("request", CHAT), ("stream", STREAM)):
            if only and label != only:
                continue
            best = float("inf")
            for _ in range(rounds):
                gc.collect()
                start = time.process_time()
                for _ in range(requests):
                    status, _ = await call(app, "POST", "/v1/chat/completions", auth, payload)
                    assert status == 200, status
                best = min(best, (time.process_time() - start) / requests)
            print(f"{label:8} CPU {best * 1e6:7.1f} us per request (best of {rounds} rounds of {requests})")
        await lifespan(app, "shutdown")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", choices=["request", "stream"], default="")
    args = parser.parse_args()
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    asyncio.run(main(args.requests, args.rounds, args.only))
