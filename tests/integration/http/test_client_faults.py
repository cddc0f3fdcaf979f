"""Clients that misbehave, over real sockets, against a real ``apipod serve`` process (reliability issue 9).

A client goes away at every phase of a request: while still sending its body; after the body, before any
answer (non-streamed, and streamed while the upstream has not sent its first event); right after the first
SSE frame; mid-stream; just before the end. After each: one usage row, ``cancelled`` (none when the request
never arrived whole), the upstream call cancelled, and nothing held: the key's plan allows one request at a
time (``max_concurrency = 1``), its model too, and its token budget fits one reservation but not two, so a
leaked slot, lease or hold would refuse the follow-up request, which must be served at once.

A client that reads a long stream very slowly (a 4 kB receive buffer, 64 bytes per 100 ms) while the upstream
offers 200 MB as fast as it can: the gateway must pass the client's backpressure back to the upstream rather
than buffer. Bound: the gateway's RSS grows less than 50 MB over its baseline, and less than 40 MB of the
200 MB ever leave the upstream (kernel socket buffers on three sockets account for a few MB).

Clients are raw sockets, so each one leaves at exactly the byte it means to; every socket has a timeout.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import httpx
import orjson
import pytest

from tests.fakes.fake_openai import FakeOpenAI, openai_frames
from tests.fakes.hostile import Flood, HostileOpenAI
from tests.fakes.server import serve
from tests.integration.harness import ApipodProcess, catalog, model, plan, provider

SOCKET_TIMEOUT = 10.0
MAX_TOKENS = 60  # the reservation is about 62 tokens: the budget (100) fits one, never two
TIGHT = 'max_concurrency = 1\nbudgets = [{ window = "day", tokens = 100 }]\n'
FLOOD = 200 * 1024 * 1024
RSS_BOUND_KB = 50 * 1024
UPSTREAM_BOUND = 40 * 1024 * 1024
LONG = 30.0  # an upstream pause no scenario waits out

OPENAI, ANTHROPIC = "openai", "anthropic"
SCENARIOS = [
    "body",
    *(f"before-{d}-{m}" for d in (OPENAI, ANTHROPIC) for m in ("plain", "streamed")),
    *(f"first-{d}" for d in (OPENAI, ANTHROPIC)),
    *(f"mid-{d}" for d in (OPENAI, ANTHROPIC)),
    "end",
]


@attrs.define
class Setup:
    gateway: ApipodProcess
    fake: FakeOpenAI
    flood: HostileOpenAI


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    fake, flood = FakeOpenAI(), HostileOpenAI()
    with serve(fake) as url, serve(flood) as flood_url:
        # One provider, model and plan per scenario: a slot leaked or an account resting after one
        # scenario must not fail the next.
        toml = catalog(
            *(provider(f"up-{s}", "openai", url + "/v1") for s in SCENARIOS),
            provider("flood", "openai", flood_url + "/v1"),
            models=[
                *(model(f"mini-{s}", f"up-{s}", "gpt-4o-mini", max_concurrency=1) for s in SCENARIOS),
                model("firehose", "flood", "gpt-4o-mini", max_concurrency=1),
            ],
            plans=[
                *(plan(s, {f"mini-{s}": 1}, extra=TIGHT) for s in SCENARIOS),
                plan("slow", {"firehose": 1}, extra="max_concurrency = 1\n"),
            ],
        )
        env = {"QUEUE_WAIT_SECONDS": "1", "SSE_KEEPALIVE_SECONDS": "0"}
        with ApipodProcess(catalog=toml, tmp=tmp_path_factory.mktemp("client-faults"), env=env) as gateway:
            yield Setup(gateway, fake, flood)


@pytest.fixture(autouse=True)
def _fresh(setup: Setup) -> None:
    for fake in (setup.fake, setup.flood):
        fake.replies.clear()
        fake.requests.clear()
        fake.outcomes.clear()


# -- helpers -------------------------------------------------------------------------------------------------


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def new_key(gateway: ApipodProcess, tier: str) -> tuple[str, str]:
    answer = httpx.post(
        f"{gateway.url}/admin/create-key", headers=gateway.admin, json={"name": "faults", "tier": tier}, timeout=5
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["api_key"]), str(answer.json()["id"])


def request_bytes(dialect: str, key: str, *, stream: bool, port: int) -> tuple[bytes, bytes]:
    """(head, body) of one chat request in ``dialect``."""
    messages = [{"role": "user", "content": "hello there"}]
    if dialect == OPENAI:
        path, auth = "/v1/chat/completions", f"authorization: Bearer {key}\r\n"
        body: dict[str, Any] = {"model": "m", "messages": messages, "max_tokens": MAX_TOKENS}
    else:
        path, auth = "/v1/messages", f"x-api-key: {key}\r\nanthropic-version: 2023-06-01\r\n"
        body = {"model": "m", "messages": messages, "max_tokens": MAX_TOKENS}
    if stream:
        body["stream"] = True
    raw = orjson.dumps(body)
    head = (
        f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-type: application/json\r\n"
        f"{auth}content-length: {len(raw)}\r\n\r\n"
    )
    return head.encode(), raw


@contextlib.contextmanager
def client_socket(port: int, *, rcvbuf: int | None = None) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connect: sets the TCP window
        sock.settimeout(SOCKET_TIMEOUT)
        sock.connect(("127.0.0.1", port))
        yield sock
    finally:
        sock.close()


def read_until(sock: socket.socket, marker: bytes, *, count: int = 1) -> bytes:
    """Reads until ``marker`` was seen ``count`` times (or raises on timeout / end of answer)."""
    seen = b""
    while seen.count(marker) < count:
        data = sock.recv(65536)
        if not data:
            raise AssertionError(f"the answer ended before {marker!r} x{count}: {seen[-2000:]!r}")
        seen += data
    return seen


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    head = {"id": "chatcmpl-f", "object": "chat.completion.chunk", "created": 1727346142, "model": "gpt-4o-mini"}
    return {**head, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}


def usage_chunk() -> dict[str, Any]:
    head = {"id": "chatcmpl-f", "object": "chat.completion.chunk", "created": 1727346142, "model": "gpt-4o-mini"}
    return {**head, "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14}}


def word_frames(n: int) -> list[bytes]:
    """Role chunk with the first word, ``n - 1`` more words, finish, usage, ``[DONE]``: one frame each."""
    chunks = [chunk({"role": "assistant", "content": "word0 "})]
    chunks += [chunk({"content": f"word{i} "}) for i in range(1, n)]
    chunks += [chunk({}, "stop"), usage_chunk()]
    return openai_frames(chunks)


def rows_settled(gateway: ApipodProcess, key_id: str, count: int) -> list[dict[str, Any]]:
    rows = gateway.wait_usage(count, key_id=key_id)
    time.sleep(0.2)  # a surplus row would show up now
    rows = gateway.usage(key_id=key_id)
    assert len(rows) == count, rows
    return rows


def nothing_held(gateway: ApipodProcess, key: str, key_id: str, rows_before: int) -> None:
    """A follow-up on the same key, plan and model is served at once: no slot, lease or hold leaked."""
    started = time.monotonic()
    answer = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        headers={"authorization": f"Bearer {key}"},
        json={"model": "m", "messages": [{"role": "user", "content": "again"}], "max_tokens": MAX_TOKENS},
        timeout=SOCKET_TIMEOUT,
    )
    elapsed = time.monotonic() - started
    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"][0]["message"]["content"] == "Echo: again"
    assert elapsed < 0.9, f"the follow-up waited {elapsed:.2f}s for a slot: one was held"
    rows = rows_settled(gateway, key_id, rows_before + 1)
    assert rows[0]["status"] == "success"


def assert_cancelled_once(setup: Setup, key_id: str, scenario: str) -> dict[str, Any]:
    """The upstream saw the gateway leave, and the request has exactly one row, ``cancelled``."""
    assert wait_until(lambda: any(o.disconnected for o in setup.fake.outcomes), 3.0), "upstream call not cancelled"
    [row] = rows_settled(setup.gateway, key_id, 1)
    assert row["status"] == "cancelled", row
    assert row["routed_model"] == f"mini-{scenario}"
    return row


# -- a client leaving at every phase ------------------------------------------------------------------------


def test_leaving_while_sending_the_body(setup: Setup) -> None:
    gateway = setup.gateway
    key, key_id = new_key(gateway, "body")
    head, body = request_bytes(OPENAI, key, stream=False, port=gateway.port)
    with client_socket(gateway.port) as sock:
        sock.sendall(head + body[: len(body) // 2])
        time.sleep(0.3)  # the gateway is now waiting for the rest of the body

    nothing_held(gateway, key, key_id, rows_before=0)  # the half request left no row: only the follow-up's
    assert len(setup.fake.requests) == 1  # the follow-up; the half request never reached the upstream


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
@pytest.mark.parametrize("dialect", [OPENAI, ANTHROPIC])
def test_leaving_after_the_body_before_any_answer(setup: Setup, dialect: str, stream: bool) -> None:
    gateway = setup.gateway
    scenario = f"before-{dialect}-{'streamed' if stream else 'plain'}"
    key, key_id = new_key(gateway, scenario)
    setup.fake.hang()  # until the gateway leaves
    head, body = request_bytes(dialect, key, stream=stream, port=gateway.port)
    with client_socket(gateway.port) as sock:
        sock.sendall(head + body)
        assert wait_until(lambda: len(setup.fake.requests) == 1), "the request never reached the upstream"

    row = assert_cancelled_once(setup, key_id, scenario)
    assert row["output_tokens"] == 0
    nothing_held(gateway, key, key_id, rows_before=1)


@pytest.mark.parametrize("dialect", [OPENAI, ANTHROPIC])
def test_leaving_right_after_the_first_frame(setup: Setup, dialect: str) -> None:
    gateway = setup.gateway
    scenario = f"first-{dialect}"
    key, key_id = new_key(gateway, scenario)
    setup.fake.reply_sse(word_frames(3), delay=LONG)  # the role chunk, then a long silence
    head, body = request_bytes(dialect, key, stream=True, port=gateway.port)
    with client_socket(gateway.port) as sock:
        sock.sendall(head + body)
        seen = read_until(sock, b"data:")
        assert b" 200 " in seen.split(b"\r\n", 1)[0], seen[:200]

    assert_cancelled_once(setup, key_id, scenario)
    assert setup.fake.outcomes[0].frames_sent == 1
    nothing_held(gateway, key, key_id, rows_before=1)


@pytest.mark.parametrize("dialect", [OPENAI, ANTHROPIC])
def test_leaving_mid_stream(setup: Setup, dialect: str) -> None:
    gateway = setup.gateway
    scenario = f"mid-{dialect}"
    key, key_id = new_key(gateway, scenario)
    setup.fake.reply_sse(word_frames(20), delay=0.2)
    marker = b'"content":"word' if dialect == OPENAI else b'"text_delta"'
    head, body = request_bytes(dialect, key, stream=True, port=gateway.port)
    with client_socket(gateway.port) as sock:
        sock.sendall(head + body)
        read_until(sock, marker, count=3)

    row = assert_cancelled_once(setup, key_id, scenario)
    assert row["output_tokens"] > 0  # the words delivered are billed
    assert 3 <= setup.fake.outcomes[0].frames_sent < 20
    nothing_held(gateway, key, key_id, rows_before=1)


def test_leaving_just_before_the_end(setup: Setup) -> None:
    """The client has the whole text and leaves while the upstream's last chunks (the finish reason and usage)
    have not come yet."""
    gateway = setup.gateway
    scenario = "end"
    key, key_id = new_key(gateway, scenario)
    frames = word_frames(3)
    *text, finish, usage, done = frames
    setup.fake.reply_sse([b"".join(text), finish + usage + done], delay=LONG)
    head, body = request_bytes(OPENAI, key, stream=True, port=gateway.port)
    with client_socket(gateway.port) as sock:
        sock.sendall(head + body)
        seen = read_until(sock, b"word2")
        assert b"[DONE]" not in seen

    row = assert_cancelled_once(setup, key_id, scenario)
    assert row["output_tokens"] > 0
    nothing_held(gateway, key, key_id, rows_before=1)


# -- a client reading very slowly ---------------------------------------------------------------------------


def memory_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_slow_reader_gets_backpressure_not_buffering(setup: Setup) -> None:
    gateway = setup.gateway
    assert gateway.process is not None
    key, key_id = new_key(gateway, "slow")
    piece = openai_frames([chunk({"content": "x" * 4000})], done=False)[0]
    setup.flood.push(
        Flood(frames=openai_frames([chunk({"role": "assistant", "content": ""})], done=False), piece=piece, size=FLOOD)
    )
    baseline = memory_kb(gateway.process.pid)
    peak = baseline
    received = 0
    head, body = request_bytes(OPENAI, key, stream=True, port=gateway.port)
    with client_socket(gateway.port, rcvbuf=4096) as sock:
        sock.sendall(head + body)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        read_until(sock, b"data:")
        deadline = time.monotonic() + 4.0
        while time.monotonic() < deadline:
            received += len(sock.recv(64))
            peak = max(peak, memory_kb(gateway.process.pid))
            time.sleep(0.1)
        sent_upstream = setup.flood.flood_bytes

    print(f"slow reader: read {received} B; upstream sent {sent_upstream} B; RSS {baseline} -> peak {peak} kB")
    assert sent_upstream < UPSTREAM_BOUND, f"{sent_upstream} bytes left the upstream for a client that read {received}"
    assert peak - baseline < RSS_BOUND_KB, f"RSS grew {(peak - baseline) // 1024} MB over {baseline // 1024} MB"
    assert wait_until(lambda: any(o.disconnected for o in setup.flood.outcomes), 3.0), "upstream call not cancelled"
    [row] = rows_settled(gateway, key_id, 1)
    assert row["status"] == "cancelled", row
    # The same plan and model (one at a time each) serve the next request at once.
    setup.flood.push(
        Flood(frames=openai_frames([chunk({"role": "assistant", "content": "ok"}), chunk({}, "stop")]), size=0)
    )
    started = time.monotonic()
    with httpx.stream(
        "POST",
        f"{gateway.url}/v1/chat/completions",
        headers={"authorization": f"Bearer {key}"},
        json={"model": "m", "messages": [{"role": "user", "content": "again"}], "stream": True},
        timeout=SOCKET_TIMEOUT,
    ) as answer:
        assert answer.status_code == 200
        text = answer.read()
    assert b"[DONE]" in text and time.monotonic() - started < 0.9
