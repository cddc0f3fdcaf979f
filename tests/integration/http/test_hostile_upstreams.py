"""Hostile upstreams over real sockets (reliability issue, items 3 and 4): a real ``apipod serve`` process in
front of fake upstreams that refuse, reset, stall, send garbage, lie about their content type, send huge
bodies and single lines of many megabytes, or keep a stream alive with comments and never answer.

Every scenario must end in a clean error in the caller's dialect (every client call has a timeout, so a hang
fails the test) or in a failover to a healthy provider, and leave nothing held: one usage row per request,
and a following normal request on the same key still succeeds, although its plan allows one request at a
time (``max_concurrency = 1``) and a token budget that fits one reservation but not two (a leaked slot or
hold would refuse it). The follow-up asks for the plan's alias ``ok``, which routes to the healthy provider
only: the hostile provider's account rests a few seconds after its failure, which is not a leak.

One gateway serves the module; each scenario has its own provider, models, plan and key, so cooldowns and
limits of one scenario never touch another. Bounds are short: first_event 1 s, read 1 s, total 3 s.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import attrs
import httpx
import openai
import pytest

from tests.fakes.fake_anthropic import FakeAnthropic, anthropic_frames
from tests.fakes.fake_openai import FakeOpenAI, openai_frames
from tests.fakes.hostile import Flood, HostileAnthropic, HostileOpenAI
from tests.fakes.scripted import Reply
from tests.fakes.server import refused_url, serve
from tests.integration.harness import ApipodProcess, catalog, model, plan, provider

FIRST_EVENT, READ, TOTAL = 1.0, 1.0, 3.0
MAX_EVENT = 256 * 1024
MAX_RESPONSE = 1024 * 1024
HUGE = 96 * 1024 * 1024  # what a hostile upstream offers; the gateway must stop long before
BALLOON = 40 * 1024  # kB: how much the gateway's peak memory may grow over a huge answer (it held 4x HUGE before)
BOUNDS = (
    f"timeout = {{ connect = 2, read = {READ}, first_event = {FIRST_EVENT}, total = {TOTAL} }}\n"
    f"max_event_bytes = {MAX_EVENT}\nmax_response_bytes = {MAX_RESPONSE}\n"
)
CLIENT_TIMEOUT = 15.0
MAX_TOKENS = 60  # the reservation is about 62 tokens; the budget (100) fits one, never two
USER: Any = [{"role": "user", "content": "hello there"}]

# scenario -> (dialect of its hostile provider, whether its plan has a healthy spare route to fail over to)
SCENARIOS: dict[str, tuple[str, bool]] = {
    "refused": ("openai", False),
    "reset": ("anthropic", False),
    "stall-first": ("openai", True),
    "stall-first-alone": ("anthropic", False),
    "stall-between": ("openai", False),
    "garbage-sse": ("openai", True),
    "invalid-json": ("openai", False),
    "html": ("openai", True),
    "html-stream": ("anthropic", False),
    "huge-json": ("openai", True),
    "huge-json-alone": ("anthropic", False),
    "huge-line": ("anthropic", False),
    "huge-line-late": ("openai", False),
    "comments": ("anthropic", True),
    "total": ("openai", False),
}


@attrs.define
class Fakes:
    openai: HostileOpenAI = attrs.field(factory=HostileOpenAI)
    anthropic: HostileAnthropic = attrs.field(factory=HostileAnthropic)
    spare_openai: FakeOpenAI = attrs.field(factory=FakeOpenAI)
    spare_anthropic: FakeAnthropic = attrs.field(factory=FakeAnthropic)


@attrs.define
class Setup:
    gateway: ApipodProcess
    fakes: Fakes


def gateway_catalog(urls: dict[str, str]) -> str:
    def base(kind: str, url: str) -> str:
        return url + "/v1" if kind == "openai" else url

    providers = [
        provider("spare-openai", "openai", base("openai", urls["spare_openai"])),
        provider("spare-anthropic", "anthropic", base("anthropic", urls["spare_anthropic"])),
    ]
    models = []
    plans = []
    for name, (kind, failover) in SCENARIOS.items():
        url = refused_url() if name == "refused" else urls[kind]
        providers.append(provider(name, kind, base(kind, url), extra=BOUNDS))
        upstream_model = "gpt-4o-mini" if kind == "openai" else "claude-sonnet-4-5"
        models.append(model(f"{name}-main", name, upstream_model))
        models.append(model(f"{name}-spare", f"spare-{kind}", upstream_model))
        routes = {f"{name}-main": 1.0, f"{name}-spare": 0.0} if failover else {f"{name}-main": 1.0}
        extra = (
            "max_concurrency = 1\n"
            'budgets = [{ window = "day", tokens = 100 }]\n'
            f'aliases = [{{ name = "ok", routes = [{{ model = "{name}-spare", weight = 1 }}] }}]\n'
        )
        plans.append(plan(name, routes, extra=extra))
    return catalog(*providers, models=models, plans=plans)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    fakes = Fakes()
    with contextlib.ExitStack() as stack:
        urls = {field.name: stack.enter_context(serve(getattr(fakes, field.name))) for field in attrs.fields(Fakes)}
        gateway = ApipodProcess(
            catalog=gateway_catalog(urls),
            tmp=tmp_path_factory.mktemp("hostile"),
            env={"QUEUE_WAIT_SECONDS": "1", "MAX_ATTEMPTS": "3"},
        )
        with gateway:
            yield Setup(gateway, fakes)


@pytest.fixture(autouse=True)
def _fresh_scripts(setup: Setup) -> None:
    """A scenario that failed must not leave its scripted replies to the next one."""
    for fake in attrs.astuple(setup.fakes, recurse=False):
        fake.replies.clear()


# -- helpers -----------------------------------------------------------------------------------------------


@attrs.define
class Key:
    """A fresh key on a scenario's plan, with the checks every scenario ends with."""

    gateway: ApipodProcess
    scenario: str
    secret: str
    id: str

    @classmethod
    def on(cls, setup: Setup, scenario: str) -> Key:
        answer = httpx.post(
            f"{setup.gateway.url}/admin/create-key",
            headers=setup.gateway.admin,
            json={"name": f"hostile-{scenario}", "tier": scenario},
        )
        assert answer.status_code == 201, answer.text
        return cls(setup.gateway, scenario, str(answer.json()["api_key"]), str(answer.json()["id"]))

    def openai(self) -> openai.OpenAI:
        return openai.OpenAI(
            base_url=self.gateway.url + "/v1", api_key=self.secret, max_retries=0, timeout=CLIENT_TIMEOUT
        )

    def anthropic(self) -> anthropic.Anthropic:
        return anthropic.Anthropic(
            base_url=self.gateway.url, api_key=self.secret, max_retries=0, timeout=CLIENT_TIMEOUT
        )

    def row(self) -> dict[str, Any]:
        """The usage row of the scenario's one request."""
        rows = self.gateway.wait_usage(1, key_id=self.id)
        assert len(rows) == 1, rows
        return rows[0]

    def nothing_held(self) -> None:
        """A normal request on the same key succeeds at once: no leaked slot, lease or budget hold."""
        started = time.monotonic()
        answer = self.openai().chat.completions.create(
            model="ok",
            messages=USER,
            max_tokens=MAX_TOKENS,
        )
        assert answer.choices[0].message.content == "Echo: hello there"
        assert time.monotonic() - started < 1.0  # no wait in the queue for a slot a leak would hold
        rows = self.gateway.wait_usage(2, key_id=self.id)
        assert len(rows) == 2, rows
        assert rows[0]["status"] == "success"


def failed_attempts(row: dict[str, Any]) -> list[str]:
    return [a["outcome"] for a in row["attempts"] if a["outcome"].startswith("failed")]


def openai_stream_text(client: openai.OpenAI, texts: list[str] | None = None) -> list[str]:
    """The text pieces of a streamed chat completion, collected into ``texts`` as they arrive (so they are
    there when an error frame raises ``openai.APIError``)."""
    texts = [] if texts is None else texts
    started = time.monotonic()
    stream = client.chat.completions.create(model="m", messages=USER, max_tokens=MAX_TOKENS, stream=True)
    for chunk in stream:
        hang_guard(started)
        if chunk.choices and chunk.choices[0].delta.content:
            texts.append(chunk.choices[0].delta.content)
    return texts


def anthropic_stream_text(client: anthropic.Anthropic) -> list[str]:
    started = time.monotonic()
    texts: list[str] = []
    with client.messages.stream(model="m", max_tokens=MAX_TOKENS, messages=USER) as stream:
        for text in stream.text_stream:
            hang_guard(started)
            texts.append(text)
    return texts


def hang_guard(started: float) -> None:
    """The clients' timeouts bound each read; a stream that keeps trickling needs a bound of its own."""
    assert time.monotonic() - started < CLIENT_TIMEOUT, "the gateway kept the stream open past every bound"


def openai_chunk(content: str | None = None, *, role: bool = False) -> dict[str, Any]:
    delta: dict[str, Any] = {"role": "assistant", "content": ""} if role else {"content": content}
    return {
        "id": "chatcmpl-hostile",
        "object": "chat.completion.chunk",
        "created": 1727346142,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
    }


def anthropic_start_frames(text: str) -> list[bytes]:
    """message_start, a text block and one delta: a stream that has started."""
    message: dict[str, Any] = {
        "id": "msg_hostile",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 5, "output_tokens": 1},
    }
    return anthropic_frames(
        [
            {"type": "message_start", "message": message},
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}},
        ]
    )


def memory_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process, in kB: its resident memory now, and at its peak so far."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


@contextlib.contextmanager
def no_balloon(gateway: ApipodProcess) -> Iterator[None]:
    """The gateway's peak and current memory grow by less than ``BALLOON`` over the block."""
    assert gateway.process is not None
    rss_before, peak_before = memory_kb(gateway.process.pid)
    yield
    rss_after, peak_after = memory_kb(gateway.process.pid)
    assert peak_after - peak_before < BALLOON, (peak_before, peak_after)
    assert rss_after - rss_before < BALLOON, (rss_before, rss_after)


# -- refused, reset, garbage, wrong types --------------------------------------------------------------------


def test_refused_connection_is_a_503_in_the_openai_dialect(setup: Setup) -> None:
    key = Key.on(setup, "refused")
    with pytest.raises(openai.InternalServerError) as caught:
        key.openai().chat.completions.create(model="m", messages=USER, max_tokens=MAX_TOKENS)
    assert caught.value.status_code == 503
    row = key.row()
    assert row["status"] == "upstream_unavailable"
    assert failed_attempts(row) == ["failed: UpstreamUnavailableError"]
    key.nothing_held()


def test_reset_mid_stream_ends_the_anthropic_stream_with_an_error_event(setup: Setup) -> None:
    key = Key.on(setup, "reset")
    frames = anthropic_start_frames("Partial")
    setup.fakes.anthropic.reply_sse([*frames, b"event: ping\ndata: {}\n\n"], cut_after=len(frames))
    texts: list[str] = []
    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        key.anthropic().messages.stream(model="m", max_tokens=MAX_TOKENS, messages=USER) as stream,
    ):
        texts.extend(stream.text_stream)  # the error event arrives inside the stream
    assert texts == ["Partial"]
    assert isinstance(caught.value.body, dict) and caught.value.body["type"] == "error"
    assert key.row()["status"] == "upstream_error"
    key.nothing_held()


def test_garbage_sse_fails_over_before_the_first_byte(setup: Setup) -> None:
    key = Key.on(setup, "garbage-sse")
    setup.fakes.openai.reply_sse([b"data: {this is not json\n\n", b"data: [DONE]\n\n"])
    assert "".join(openai_stream_text(key.openai())) == "Echo: hello there"
    row = key.row()
    assert row["status"] == "success"
    assert failed_attempts(row) == ["failed: UpstreamUnavailableError"]
    key.nothing_held()


def test_invalid_json_body_is_a_503(setup: Setup) -> None:
    key = Key.on(setup, "invalid-json")
    setup.fakes.openai.push(
        Reply(body=b'{"id": "chatcmpl-1", "choices": [', headers={"content-type": "application/json"})
    )
    with pytest.raises(openai.InternalServerError) as caught:
        key.openai().chat.completions.create(model="m", messages=USER, max_tokens=MAX_TOKENS)
    assert caught.value.status_code == 503
    assert key.row()["status"] == "upstream_unavailable"
    key.nothing_held()


def test_html_with_200_fails_over(setup: Setup) -> None:
    key = Key.on(setup, "html")
    setup.fakes.openai.push(Reply(body=b"<html><body>Welcome!</body></html>", headers={"content-type": "text/html"}))
    answer = key.openai().chat.completions.create(model="m", messages=USER, max_tokens=MAX_TOKENS)
    assert answer.choices[0].message.content == "Echo: hello there"
    assert failed_attempts(key.row()) == ["failed: UpstreamUnavailableError"]
    key.nothing_held()


def test_html_instead_of_a_stream_is_a_503_in_the_anthropic_dialect(setup: Setup) -> None:
    key = Key.on(setup, "html-stream")
    setup.fakes.anthropic.push(
        Flood(frames=[b"<html>\n<body>Welcome!</body>\n</html>\n"], size=0, content_type="text/html")
    )
    with pytest.raises(anthropic.APIStatusError) as caught:
        anthropic_stream_text(key.anthropic())
    assert caught.value.status_code == 503
    assert key.row()["status"] == "upstream_unavailable"
    key.nothing_held()


# -- time bounds ---------------------------------------------------------------------------------------------


def test_stall_before_the_first_event_fails_over_at_first_event(setup: Setup) -> None:
    key = Key.on(setup, "stall-first")
    setup.fakes.openai.push(Flood(size=0, stall=True))  # headers, then silence
    started = time.monotonic()
    assert "".join(openai_stream_text(key.openai())) == "Echo: hello there"
    assert FIRST_EVENT * 0.8 < time.monotonic() - started < FIRST_EVENT + 3
    assert failed_attempts(key.row()) in (["failed: UpstreamTimeoutError"], ["failed: UpstreamUnavailableError"])
    key.nothing_held()


def test_stall_before_the_first_event_without_a_spare_is_a_503(setup: Setup) -> None:
    key = Key.on(setup, "stall-first-alone")
    setup.fakes.anthropic.push(Flood(frames=[b": hello\n\n"], size=0, stall=True))
    with pytest.raises(anthropic.APIStatusError) as caught:
        anthropic_stream_text(key.anthropic())
    assert caught.value.status_code == 503
    assert key.row()["status"] == "upstream_unavailable"
    assert setup.fakes.anthropic.outcomes[-1].disconnected  # the upstream call was cancelled
    key.nothing_held()


def test_an_endless_comment_stream_fails_over_at_first_event(setup: Setup) -> None:
    """Comments every 0.2 s keep the read timeout happy forever; only first_event ends it."""
    key = Key.on(setup, "comments")
    piece = b": still thinking\n\n"
    setup.fakes.anthropic.push(Flood(piece=piece, every=0.2, size=len(piece) * 5 * CLIENT_TIMEOUT))
    started = time.monotonic()
    assert "".join(anthropic_stream_text(key.anthropic())) == "Echo: hello there"
    assert FIRST_EVENT * 0.8 < time.monotonic() - started < FIRST_EVENT + 3
    assert failed_attempts(key.row()) == ["failed: UpstreamTimeoutError"]
    assert setup.fakes.anthropic.outcomes[-1].disconnected
    key.nothing_held()


def test_stall_between_events_ends_the_openai_stream_with_an_error(setup: Setup) -> None:
    key = Key.on(setup, "stall-between")
    frames = openai_frames([openai_chunk(role=True), openai_chunk("Hello")], done=False)
    setup.fakes.openai.push(Flood(frames=frames, size=0, stall=True))
    texts: list[str] = []
    with pytest.raises(openai.APIError) as caught:
        openai_stream_text(key.openai(), texts)
    assert texts == ["Hello"]
    assert f"{READ:g} seconds" in caught.value.message
    assert key.row()["status"] == "upstream_error"
    assert setup.fakes.openai.outcomes[-1].disconnected
    key.nothing_held()


def test_total_ends_a_stream_that_never_stops(setup: Setup) -> None:
    key = Key.on(setup, "total")
    piece = openai_frames([openai_chunk(" more")], done=False)[0]
    role = openai_frames([openai_chunk(role=True)], done=False)
    setup.fakes.openai.push(Flood(frames=role, piece=piece, every=0.2, size=len(piece) * 5 * CLIENT_TIMEOUT))
    texts: list[str] = []
    started = time.monotonic()
    with pytest.raises(openai.APIError) as caught:
        openai_stream_text(key.openai(), texts)
    elapsed = time.monotonic() - started
    assert TOTAL * 0.8 < elapsed < TOTAL + 3
    assert len(texts) >= 5  # it was streaming all along; only the total bound stopped it
    assert f"{TOTAL:g} seconds" in str(caught.value.message)
    row = key.row()
    assert row["status"] == "upstream_error"
    assert setup.fakes.openai.outcomes[-1].disconnected
    key.nothing_held()


# -- size caps -----------------------------------------------------------------------------------------------


def test_a_huge_json_answer_fails_over_and_memory_stays_flat(setup: Setup) -> None:
    key = Key.on(setup, "huge-json")
    fake = setup.fakes.openai
    fake.flood_bytes = 0
    fake.push(
        Flood(
            frames=[b'{"id": "chatcmpl-huge", "padding": "'],
            piece=b"x" * 65536,
            size=HUGE,
            tail=b'"}',
            content_type="application/json",
        )
    )
    with no_balloon(key.gateway):
        answer = key.openai().chat.completions.create(model="m", messages=USER, max_tokens=MAX_TOKENS)
    assert answer.choices[0].message.content == "Echo: hello there"
    assert failed_attempts(key.row()) == ["failed: UpstreamResponseTooLargeError"]
    assert fake.flood_bytes < HUGE // 4  # the gateway hung up long before the end
    key.nothing_held()


def test_a_huge_json_answer_without_a_spare_is_a_503(setup: Setup) -> None:
    key = Key.on(setup, "huge-json-alone")
    setup.fakes.anthropic.push(
        Flood(frames=[b'{"padding": "'], piece=b"y" * 65536, size=HUGE, tail=b'"}', content_type="application/json")
    )
    with no_balloon(key.gateway), pytest.raises(anthropic.APIStatusError) as caught:
        key.anthropic().messages.create(model="m", max_tokens=MAX_TOKENS, messages=USER)
    assert caught.value.status_code == 503
    assert key.row()["status"] == "upstream_unavailable"
    key.nothing_held()


def test_a_huge_sse_line_before_the_first_event_is_a_503(setup: Setup) -> None:
    key = Key.on(setup, "huge-line")
    fake = setup.fakes.anthropic
    fake.flood_bytes = 0
    fake.push(Flood(frames=[b"event: message_start\ndata: "], piece=b"z" * 65536, size=HUGE, tail=b"\n\n"))
    with no_balloon(key.gateway), pytest.raises(anthropic.APIStatusError) as caught:
        anthropic_stream_text(key.anthropic())
    assert caught.value.status_code == 503
    assert key.row()["status"] == "upstream_unavailable"
    assert fake.flood_bytes < HUGE // 4
    key.nothing_held()


def test_a_huge_sse_line_after_the_first_event_ends_the_stream_with_an_error(setup: Setup) -> None:
    key = Key.on(setup, "huge-line-late")
    frames = openai_frames([openai_chunk(role=True), openai_chunk("Hello")], done=False)
    head = b'data: {"choices": [{"index": 0, "delta": {"content": "'
    setup.fakes.openai.push(Flood(frames=[*frames, head], piece=b"w" * 65536, size=HUGE, tail=b'"}}]}\n\n'))
    texts: list[str] = []
    with no_balloon(key.gateway), pytest.raises(openai.APIError) as caught:
        openai_stream_text(key.openai(), texts)
    assert texts == ["Hello"]
    assert f"longer than {MAX_EVENT} bytes" in str(caught.value.message)
    assert key.row()["status"] == "upstream_error"
    key.nothing_held()
