"""Shared by the shutdown and keep-alive tests: one fake OpenAI upstream behind one apipod process, slow
streams in both client dialects, and the usage rows read from the SQLite file after the process ended."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import httpx

from tests.fakes.fake_openai import openai_frames
from tests.integration.harness import catalog, model, plan, provider

CHAT = {"model": "mini", "messages": [{"role": "user", "content": "hi"}], "stream": True}


def toml_for(upstream_url: str) -> str:
    return catalog(
        provider("up", "openai", upstream_url + "/v1"),
        models=[model("mini", "up", "gpt-4o-mini")],
        plans=[plan("pro", {"mini": 1})],
    )


def slow_frames(words: int) -> list[bytes]:
    """An OpenAI stream: the role chunk, ``words`` words, the finish and the usage chunk."""
    head = {"id": "chatcmpl-slow", "object": "chat.completion.chunk", "created": 1727346142, "model": "gpt-4o-mini"}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**head, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}

    chunks: list[Any] = [chunk({"role": "assistant", "content": ""})]
    chunks += [chunk({"content": f"w{i} "}) for i in range(words)]
    chunks.append(chunk({}, "stop"))
    chunks.append({**head, "choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": words}})
    return openai_frames(chunks)


@attrs.define
class Reader:
    """A streamed request read on a thread, byte for byte, with when the first bytes arrived."""

    url: str
    key: str
    path: str = "/v1/chat/completions"
    body: dict[str, Any] = attrs.field(factory=lambda: dict(CHAT))
    status: int | None = None
    data: bytes = b""
    error: BaseException | None = None
    started: threading.Event = attrs.field(factory=threading.Event)
    first_bytes: threading.Event = attrs.field(factory=threading.Event)
    thread: threading.Thread | None = None

    def start(self) -> Reader:
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self) -> None:
        headers = {"authorization": f"Bearer {self.key}", "anthropic-version": "2023-06-01"}
        try:
            with httpx.stream("POST", self.url + self.path, json=self.body, headers=headers, timeout=30) as answer:
                self.status = answer.status_code
                self.started.set()
                for piece in answer.iter_raw():
                    self.data += piece
                    self.first_bytes.set()
        except BaseException as exc:  # the test asserts on it
            self.error = exc
        finally:
            self.started.set()

    def join(self, timeout: float = 30.0) -> Reader:
        assert self.thread is not None
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the stream did not end"
        return self


def usage_rows(db: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in conn.execute("SELECT * FROM usage_records ORDER BY id")]
    finally:
        conn.close()


def events_of(data: bytes) -> Iterator[bytes]:
    for frame in data.split(b"\n\n"):
        if frame.strip():
            yield frame
