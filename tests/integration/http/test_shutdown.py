"""Graceful shutdown of a real ``apipod serve`` process: readiness turns 503 at the first SIGTERM while
liveness stays 200, streams in flight finish within the grace and their usage is written, streams longer
than the grace end with an error event in their dialect, a second signal ends at once; the exit code is 0."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import orjson

from tests.fakes.fake_openai import FakeOpenAI
from tests.fakes.server import serve
from tests.integration.harness import ApipodProcess
from tests.integration.http.shutdown_support import Reader, events_of, slow_frames, toml_for, usage_rows


def _gateway(tmp_path: Path, upstream_url: str, **env: str) -> ApipodProcess:
    return ApipodProcess(
        catalog=toml_for(upstream_url), tmp=tmp_path, env={"SSE_KEEPALIVE_SECONDS": "0", **env}
    ).start()


def _wait_exit(gateway: ApipodProcess, timeout: float) -> int:
    assert gateway.process is not None
    return gateway.process.wait(timeout)


def _signal(gateway: ApipodProcess, sig: int = signal.SIGTERM) -> None:
    assert gateway.process is not None
    gateway.process.send_signal(sig)


def test_a_stream_started_before_sigterm_completes_and_its_usage_is_written(tmp_path: Path) -> None:
    fake = FakeOpenAI()
    with serve(fake) as upstream_url:
        gateway = _gateway(tmp_path, upstream_url, SHUTDOWN_DRAIN_SECONDS="1", SHUTDOWN_GRACE_SECONDS="20")
        try:
            key = gateway.create_key("pro")
            fake.reply_sse(slow_frames(10), delay=0.5)  # about 5 seconds
            reader = Reader(gateway.url, key).start()
            assert reader.first_bytes.wait(10)
            assert httpx.get(gateway.url + "/health/ready").json() == {"status": "ready"}
            sent_at = time.monotonic()
            _signal(gateway)
            time.sleep(0.3)
            ready = httpx.get(gateway.url + "/health/ready")
            assert ready.status_code == 503
            assert ready.json() == {"status": "draining", "reason": "The gateway is shutting down."}
            assert httpx.get(gateway.url + "/health").status_code == 200  # liveness is not readiness
            reader.join()
            assert _wait_exit(gateway, 20) == 0
            assert time.monotonic() - sent_at >= 1.0  # the drain was kept
        finally:
            gateway.kill()
    assert reader.error is None and reader.status == 200
    assert reader.data.endswith(b"data: [DONE]\n\n")
    assert b"w9 " in reader.data
    [row] = usage_rows(tmp_path / "apipod.db")
    assert row["status"] == "success"
    assert row["output_tokens"] == 10


def test_new_connections_are_refused_after_the_drain(tmp_path: Path) -> None:
    fake = FakeOpenAI()
    with serve(fake) as upstream_url:
        gateway = _gateway(tmp_path, upstream_url, SHUTDOWN_DRAIN_SECONDS="0.5", SHUTDOWN_GRACE_SECONDS="20")
        try:
            key = gateway.create_key("pro")
            fake.reply_sse(slow_frames(6), delay=0.5)
            reader = Reader(gateway.url, key).start()
            assert reader.first_bytes.wait(10)
            _signal(gateway)
            time.sleep(0.1)
            assert httpx.get(gateway.url + "/health").status_code == 200  # still accepting while draining
            time.sleep(1.0)
            try:
                httpx.get(gateway.url + "/health", timeout=1)
                refused = False
            except httpx.TransportError:
                refused = True
            assert refused
            reader.join()
            assert _wait_exit(gateway, 20) == 0
        finally:
            gateway.kill()
    assert reader.data.endswith(b"data: [DONE]\n\n")


def test_streams_longer_than_the_grace_end_with_an_error_event_in_their_dialect(tmp_path: Path) -> None:
    fake = FakeOpenAI()
    with serve(fake) as upstream_url:
        gateway = _gateway(tmp_path, upstream_url, SHUTDOWN_DRAIN_SECONDS="0", SHUTDOWN_GRACE_SECONDS="1")
        try:
            key = gateway.create_key("pro")
            fake.reply_sse(slow_frames(60), delay=0.5)
            fake.reply_sse(slow_frames(60), delay=0.5)
            openai_reader = Reader(gateway.url, key).start()
            anthropic_reader = Reader(
                gateway.url,
                key,
                path="/v1/messages",
                body={
                    "model": "mini",
                    "max_tokens": 100,
                    "stream": True,
                    "messages": [{"role": "user", "content": "hi"}],
                },
            ).start()
            assert openai_reader.first_bytes.wait(10) and anthropic_reader.first_bytes.wait(10)
            sent_at = time.monotonic()
            _signal(gateway)
            openai_reader.join()
            anthropic_reader.join()
            assert _wait_exit(gateway, 20) == 0
            assert time.monotonic() - sent_at < 8
        finally:
            gateway.kill()
    *_, last_openai = events_of(openai_reader.data)
    error = orjson.loads(last_openai.removeprefix(b"data: "))["error"]
    assert error["message"] == "The gateway is shutting down."
    *_, last_anthropic = events_of(anthropic_reader.data)
    assert last_anthropic.startswith(b"event: error\n")
    assert b"The gateway is shutting down." in last_anthropic
    rows = usage_rows(tmp_path / "apipod.db")
    assert len(rows) == 2
    assert all(row["output_tokens"] > 0 for row in rows)  # settled from what was relayed


def test_a_second_signal_ends_at_once_and_still_flushes_usage(tmp_path: Path) -> None:
    fake = FakeOpenAI()
    with serve(fake) as upstream_url:
        gateway = _gateway(tmp_path, upstream_url, SHUTDOWN_DRAIN_SECONDS="30", SHUTDOWN_GRACE_SECONDS="30")
        try:
            key = gateway.create_key("pro")
            fake.reply_sse(slow_frames(60), delay=0.5)
            reader = Reader(gateway.url, key).start()
            assert reader.first_bytes.wait(10)
            _signal(gateway)
            time.sleep(0.3)
            assert httpx.get(gateway.url + "/health/ready").status_code == 503
            sent_at = time.monotonic()
            _signal(gateway, signal.SIGINT)
            assert _wait_exit(gateway, 10) == 0
            assert time.monotonic() - sent_at < 3
            reader.join()
        finally:
            gateway.kill()
    assert b"The gateway is shutting down." in reader.data
    [row] = usage_rows(tmp_path / "apipod.db")
    assert row["output_tokens"] > 0
