"""Keep-alives during upstream silence and STREAM_FLUSH_INTERVAL_MS, through a real ``apipod serve``
process over sockets, against a fake upstream that stalls (short intervals via the settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.fakes.fake_openai import FakeOpenAI
from tests.fakes.scripted import Reply
from tests.fakes.server import serve
from tests.integration.harness import ApipodProcess
from tests.integration.http.shutdown_support import Reader, events_of, slow_frames, toml_for

ANTHROPIC_CHAT = {"model": "mini", "max_tokens": 100, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
PING = b'event: ping\ndata: {"type": "ping"}'
COMMENT = b": keep-alive"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Any:
    fake = FakeOpenAI()
    tmp = tmp_path_factory.mktemp("keepalive")
    with serve(fake) as upstream_url:
        env = {"SSE_KEEPALIVE_SECONDS": "0.2", "MAX_ATTEMPTS": "1"}
        with ApipodProcess(catalog=toml_for(upstream_url), tmp=tmp, env=env) as gateway:
            yield fake, gateway, gateway.create_key("pro")


def test_keepalives_before_the_first_event_commit_the_stream(stack: Any) -> None:
    fake, gateway, key = stack
    fake.hang(0.9, then=Reply(frames=slow_frames(3)))
    reader = Reader(gateway.url, key).start().join()
    assert reader.status == 200
    frames = list(events_of(reader.data))
    leading = [f for f in frames if f == COMMENT]
    assert len(leading) >= 3
    assert frames[: len(leading)] == leading  # the comments came first, during the silence
    assert frames[-1] == b"data: [DONE]"
    assert b"w2 " in reader.data


def test_anthropic_clients_get_ping_events_between_silent_events(stack: Any) -> None:
    fake, gateway, key = stack
    fake.reply_sse(slow_frames(2), delay=0.7)
    reader = Reader(gateway.url, key, path="/v1/messages", body=dict(ANTHROPIC_CHAT)).start().join()
    assert reader.status == 200
    frames = list(events_of(reader.data))
    [start] = [n for n, f in enumerate(frames) if f.startswith(b"event: message_start")]
    pings = [n for n, f in enumerate(frames) if f == PING]
    assert len([n for n in pings if n > start]) >= 2  # silences of 0.7 s after the first event, every 0.2 s
    assert COMMENT not in reader.data
    assert frames[-1].startswith(b"event: message_stop")


def test_a_quick_failure_keeps_its_http_status(stack: Any) -> None:
    fake, gateway, key = stack
    fake.reply_error(400, "no such parameter")  # a caller's fault: no cooldown for the next tests
    answer = httpx.post(gateway.url + "/v1/chat/completions", json=dict(CHAT_BODY), headers=_auth(key))
    assert answer.status_code == 400
    assert COMMENT.decode() not in answer.text


def test_a_failure_after_keepalives_is_an_error_event(stack: Any) -> None:
    fake, gateway, key = stack
    fake.hang(0.7, then=Reply(status=500, body={"error": {"message": "boom", "type": "server_error"}}))
    reader = Reader(gateway.url, key).start().join()
    assert reader.status == 200
    frames = list(events_of(reader.data))
    assert frames[0] == COMMENT
    error = orjson.loads(frames[-1].removeprefix(b"data: "))["error"]
    assert error["message"]


CHAT_BODY = {"model": "mini", "messages": [{"role": "user", "content": "hi"}], "stream": True}


def _auth(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def test_keepalives_off_sends_none(tmp_path: Path) -> None:
    fake = FakeOpenAI()
    with serve(fake) as upstream_url:
        env = {"SSE_KEEPALIVE_SECONDS": "0"}
        with ApipodProcess(catalog=toml_for(upstream_url), tmp=tmp_path, env=env) as gateway:
            key = gateway.create_key("pro")
            fake.hang(0.6, then=Reply(frames=slow_frames(2)))
            reader = Reader(gateway.url, key).start().join()
    assert reader.status == 200
    assert COMMENT not in reader.data
    assert next(events_of(reader.data)).startswith(b"data: ")


@pytest.mark.parametrize(("interval_ms", "most_reads"), [(0, None), (400, 6)])
def test_flush_interval_coalesces_events_into_fewer_writes(
    tmp_path: Path, interval_ms: int, most_reads: int | None
) -> None:
    fake = FakeOpenAI()
    with serve(fake) as upstream_url:
        env = {"SSE_KEEPALIVE_SECONDS": "0", "STREAM_FLUSH_INTERVAL_MS": str(interval_ms)}
        with ApipodProcess(catalog=toml_for(upstream_url), tmp=tmp_path, env=env) as gateway:
            key = gateway.create_key("pro")
            fake.reply_sse(slow_frames(12), delay=0.06)
            reads: list[bytes] = []
            with httpx.stream(
                "POST", gateway.url + "/v1/chat/completions", json=CHAT_BODY, headers=_auth(key), timeout=10
            ) as answer:
                reads.extend(answer.iter_raw())
    data = b"".join(reads)
    assert data.endswith(b"data: [DONE]\n\n") and b"w11 " in data
    if most_reads is None:
        assert len(reads) >= 10  # each event written as it arrived, 60 ms apart
    else:
        assert len(reads) <= most_reads  # per 400 ms window: its first event at once, the rest joined
