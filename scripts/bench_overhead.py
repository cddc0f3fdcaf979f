"""The gateway's own CPU per request, in process: the ASGI app (Falcon, the request scope, authentication,
routing, admission, quota, usage rows, the codecs) driven directly, no sockets, over SQLite and the built-in
mock upstream. Less noisy than ``bench_gateway.py`` on a busy machine (no load generator or upstream
competing for the cores), so it is what to compare before and after a change on the request path.

``--dialect`` picks the client dialect (``chat``: OpenAI chat completions, ``messages``: Anthropic,
``responses``: the OpenAI Responses API, ``gemini``: ``generateContent`` / ``streamGenerateContent?alt=sse``),
so the client codec and framework cost per dialect compare on equal terms: the mock upstream, the same
prompt, the same answer. The mock streams the answer word by word (``"Echo: hello there"``: 3 deltas; more
with ``--words``).

Run: .venv/bin/python scripts/bench_overhead.py [--requests 3000] [--rounds 5] [--dialect chat] [--words 2]
It prints the best round's CPU microseconds per request for a non-streamed request and a streamed one.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from apipod.bootstrap.settings import load_settings
from apipod.entrypoints.http.asgi import app_for

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the script directory is not a package

from bench_common import SECRET

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


@dataclass(frozen=True)
class Dialect:
    """How a client of one dialect calls: the path (and query) of each mode, its key header, its bodies."""

    request: tuple[str, bytes]
    stream: tuple[str, bytes]
    auth: bytes
    extra: tuple[tuple[bytes, bytes], ...] = ()

    def path(self, mode: str) -> tuple[str, bytes, bytes]:
        """The path, the query string and the body of ``mode`` (``request`` or ``stream``)."""
        target, body = self.request if mode == "request" else self.stream
        path, _, query = target.partition("?")
        return path, query.encode(), body

    def headers(self, key: str) -> list[tuple[bytes, bytes]]:
        value = b"Bearer " + key.encode() if self.auth == b"authorization" else key.encode()
        return [(self.auth, value), *self.extra]


def dialects(prompt: str) -> dict[str, Dialect]:
    openai = {"model": "bench", "messages": [{"role": "user", "content": prompt}]}
    anthropic = {"model": "bench", "max_tokens": 200, "messages": [{"role": "user", "content": prompt}]}
    item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": prompt}]}
    responses = {"model": "bench", "store": False, "input": [item]}  # store false: no database write, as Codex
    gemini = orjson.dumps({"contents": [{"role": "user", "parts": [{"text": prompt}]}]})
    return {
        "chat": Dialect(
            ("/v1/chat/completions", orjson.dumps(openai)),
            ("/v1/chat/completions", orjson.dumps({**openai, "stream": True})),
            b"authorization",
        ),
        "messages": Dialect(
            ("/v1/messages", orjson.dumps(anthropic)),
            ("/v1/messages", orjson.dumps({**anthropic, "stream": True})),
            b"x-api-key",
            ((b"anthropic-version", b"2023-06-01"),),
        ),
        "responses": Dialect(
            ("/v1/responses", orjson.dumps(responses)),
            ("/v1/responses", orjson.dumps({**responses, "stream": True})),
            b"authorization",
        ),
        "gemini": Dialect(
            ("/v1beta/models/bench:generateContent", gemini),
            ("/v1beta/models/bench:streamGenerateContent?alt=sse", gemini),
            b"x-goog-api-key",
        ),
    }


async def call(
    app: Any, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes, query: bytes = b""
) -> tuple[int, bytes]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
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


async def main(requests: int, rounds: int, only: str = "", dialect: str = "chat", words: int = 2) -> None:
    client = dialects("hello " * (words - 1) + "there")[dialect]
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
        headers = client.headers(orjson.loads(body)["api_key"])
        for label in ("request", "stream"):
            if only and label != only:
                continue
            path, query, payload = client.path(label)
            status, answer = await call(app, "POST", path, headers, payload, query)
            if status != 200 or b"there" not in answer:
                raise SystemExit(f"{dialect} {label}: POST {path} {payload.decode()}\n  -> {status} {answer.decode()}")
            best = float("inf")
            for _ in range(rounds):
                gc.collect()
                start = time.process_time()
                for _ in range(requests):
                    status, _ = await call(app, "POST", path, headers, payload, query)
                    assert status == 200, status
                best = min(best, (time.process_time() - start) / requests)
            print(
                f"{dialect:9} {label:8} CPU {best * 1e6:7.1f} us per request (best of {rounds} rounds of {requests})",
                flush=True,
            )
        await lifespan(app, "shutdown")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", choices=["request", "stream"], default="")
    parser.add_argument("--dialect", default="chat", help="chat, messages, responses, gemini, or a comma list")
    parser.add_argument("--words", type=int, default=2, help="prompt words; the mock streams one delta per word + 1")
    args = parser.parse_args()
    chosen = [d.strip() for d in args.dialect.split(",") if d.strip()]
    if unknown := [d for d in chosen if d not in dialects("")]:
        parser.error(f"unknown dialect(s) {unknown}: choose chat, messages, responses, gemini")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    for name in chosen:
        asyncio.run(main(args.requests, args.rounds, args.only, name, max(2, args.words)))
