"""deploy/nginx/apipod.conf with a real nginx in front of a real ``apipod serve``: streams pass event by event, the
request id passes both ways, large bodies reach apipod. Only the listen address and the upstream port are rewritten.
Without an nginx binary the tests are skipped outside CI (``scripts/dev test`` installs it as root)."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest

from tests.fakes.fake_openai import FakeOpenAI
from tests.fakes.scripted import Receive, Scope, Send
from tests.fakes.server import serve
from tests.integration.harness import ApipodProcess, catalog, free_port, model, plan, provider, unreachable

NGINX_CONF = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "apipod.conf"
LISTEN_LINE = re.compile(r"^(\s*)listen 80;", re.MULTILINE)
UPSTREAM_LINE = re.compile(r"^(\s*)server 127\.0\.0\.1:8081;", re.MULTILINE)
NGINX_REQUEST_ID = re.compile(r"[0-9a-f]{32}")


def nginx_binary() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        unreachable("nginx", "no nginx binary (apt-get install nginx-light)")
        raise AssertionError("unreachable")
    return found


def render(listen_port: int, upstream_port: int) -> str:
    """The shipped file with its two marked lines pointed at this test's ports (each must occur exactly once)."""
    text, listens = LISTEN_LINE.subn(rf"\1listen 127.0.0.1:{listen_port};", NGINX_CONF.read_text())
    text, servers = UPSTREAM_LINE.subn(rf"\1server 127.0.0.1:{upstream_port};", text)
    assert (listens, servers) == (1, 1), "deploy/nginx/apipod.conf lost its listen or upstream line"
    return text


@attrs.define
class Nginx:
    """nginx in the foreground with its files under ``tmp``; the access log records the request id it forwards."""

    tmp: Path
    upstream_port: int
    port: int = attrs.field(factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def access_log(self) -> Path:
        return self.tmp / "access.log"

    def main_config(self) -> Path:
        site = self.tmp / "apipod.conf"
        site.write_text(render(self.port, self.upstream_port))
        temp = "\n".join(
            f"    {kind}_temp_path {self.tmp / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        user = "user root;\n" if os.geteuid() == 0 else ""
        config = self.tmp / "nginx.conf"
        config.write_text(
            f"{user}daemon off;\nworker_processes 1;\npid {self.tmp / 'nginx.pid'};\n"
            f"error_log {self.tmp / 'error.log'} warn;\n"
            "events { worker_connections 64; }\n"
            "http {\n"
            f"{temp}\n"
            "    log_format ids '$apipod_request_id $status';\n"
            f"    access_log {self.access_log} ids;\n"
            f"    include {site};\n"
            "}\n"
        )
        return config

    def args(self) -> list[str]:
        config = self.main_config()
        return [nginx_binary(), "-p", str(self.tmp), "-c", str(config), "-e", str(self.tmp / "error.log")]

    def check(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.args(), "-t"], capture_output=True, text=True, timeout=30, check=False)

    def __enter__(self) -> Nginx:
        self.process = subprocess.Popen(self.args(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited:\n{self.error_log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"nginx did not listen:\n{self.error_log()}") from None
                time.sleep(0.02)

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def error_log(self) -> str:
        path = self.tmp / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def logged_ids(self) -> list[str]:
        """The request ids nginx forwarded, one per finished request (written when the request ends)."""
        return (
            [line.split()[0] for line in self.access_log.read_text().splitlines()] if self.access_log.exists() else []
        )


class GatedUpstream:
    """A fake OpenAI upstream that, in a streamed answer, holds every frame after the first ``open_frames`` until the
    test opens the gate: whatever reaches the client before that went through every hop unbuffered."""

    def __init__(self, open_frames: int) -> None:
        self.fake = FakeOpenAI()
        self.open_frames = open_frames
        self.gate = threading.Event()
        self.frames_sent = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def gated(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.body" and message.get("more_body"):
                if self.frames_sent >= self.open_frames:
                    await asyncio.to_thread(self.gate.wait, 30)
                self.frames_sent += 1
            await send(message)

        await self.fake(scope, receive, gated)


@attrs.frozen
class Stack:
    upstream: GatedUpstream
    gateway: ApipodProcess
    nginx: Nginx
    key: str


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    nginx_binary()
    upstream = GatedUpstream(open_frames=2)  # the role chunk and "Echo: "
    with serve(upstream) as upstream_url:
        served = catalog(
            provider("up", "openai", upstream_url + "/v1"),
            models=[model("m", "up", "gpt-4o-mini")],
            plans=[plan("pro", {"m": 1})],
        )
        with ApipodProcess(catalog=served, tmp=tmp_path, env={"SHUTDOWN_DRAIN_SECONDS": "0"}) as gateway:
            nginx_dir = tmp_path / "nginx"
            nginx_dir.mkdir()
            with Nginx(nginx_dir, gateway.port) as nginx:
                try:
                    yield Stack(upstream, gateway, nginx, gateway.create_key("pro"))
                finally:
                    upstream.gate.set()


def test_the_shipped_config_passes_nginx_t(tmp_path: Path) -> None:
    result = Nginx(tmp_path, upstream_port=free_port()).check()
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_a_stream_arrives_through_nginx_event_by_event(stack: Stack) -> None:
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "one two three"}]}
    headers = {"authorization": f"Bearer {stack.key}", "x-request-id": "trace-nginx.42"}
    seen: list[str] = []
    with (
        httpx.Client(base_url=stack.nginx.url, timeout=httpx.Timeout(10.0)) as client,
        client.stream("POST", "/v1/chat/completions", json=body, headers=headers) as response,
    ):
        assert response.status_code == 200
        assert response.headers["x-request-id"] == "trace-nginx.42"
        lines = response.iter_lines()
        for line in lines:  # a buffering proxy would hold this until the upstream's end: a read timeout here
            seen.append(line)
            if "Echo" in line:
                break
        assert stack.upstream.frames_sent == 2, "the first text frame came before the upstream sent the rest"
        assert not any("one" in line for line in seen)
        stack.upstream.gate.set()
        seen += list(lines)
    data = [line for line in seen if line.startswith("data: ")]
    assert data[-1] == "data: [DONE]"
    assert all(word in "".join(data) for word in ("one", "two", "three"))


def test_nginx_makes_the_request_id_when_the_client_sent_none(stack: Stack) -> None:
    answer = httpx.post(
        f"{stack.nginx.url}/v1/chat/completions",
        headers={"authorization": f"Bearer {stack.key}"},
        json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert answer.status_code == 200, answer.text
    request_id = answer.headers["x-request-id"]
    assert NGINX_REQUEST_ID.fullmatch(request_id), request_id
    deadline = time.monotonic() + 5
    while not stack.nginx.logged_ids() and time.monotonic() < deadline:
        time.sleep(0.01)  # nginx logs a request once it has sent the answer's last byte
    assert stack.nginx.logged_ids() == [request_id], "apipod answered with the id nginx logged"
    rows = stack.gateway.wait_usage(1)
    assert [row["request_id"] for row in rows] == [request_id]


def test_a_two_mebibyte_body_reaches_apipod(stack: Stack) -> None:
    """nginx's own default (1 MiB) would answer 413 itself; apipod's MAX_BODY_BYTES is the limit that counts."""
    text = "x" * (2 * 1024 * 1024)
    answer = httpx.post(
        f"{stack.nginx.url}/v1/chat/completions",
        headers={"authorization": f"Bearer {stack.key}"},
        json={"model": "m", "messages": [{"role": "user", "content": text}]},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text[:300]
    assert stack.upstream.fake.last.body["messages"][0]["content"] == text
