"""``apipod serve`` over a real socket refuses oversized request heads with 431, without buffering them
(issue 9, finding 10): a 1 MB header line is refused long before it has all arrived, and 5,000 headers
are refused too; the process's memory does not grow with what the clients tried to send."""

from __future__ import annotations

import contextlib
import socket
import time
from pathlib import Path

import httpx
import orjson

from tests.integration.harness import ApipodProcess, catalog, model, plan

CATALOG = catalog(
    'name = "mock"\ntype = "mock"\n',
    models=[model("m", "mock", "mock-model")],
    plans=[plan("pro", {"m": 1})],
)
CHUNK = 16 * 1024


def rss_kib(gateway: ApipodProcess) -> int:
    assert gateway.process is not None
    for line in Path(f"/proc/{gateway.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def send_head(port: int, head: bytes) -> bytes:
    """Send ``head`` and read the answer; the server may close before it has taken everything."""
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(head)
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                answer += chunk
    return answer


def split(answer: bytes) -> tuple[bytes, dict[str, object]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return head.split(b"\r\n", 1)[0], orjson.loads(body)


def test_oversized_heads_are_431_and_not_buffered(tmp_path: Path) -> None:
    with ApipodProcess(catalog=CATALOG, tmp=tmp_path) as gateway:
        assert httpx.get(f"{gateway.url}/health").status_code == 200
        before = rss_kib(gateway)

        # Unfinished 1 MB header lines on open connections: a server that buffers them holds them all.
        unfinished = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 1_000_000
        with contextlib.ExitStack() as stack:
            socks = [stack.enter_context(socket.create_connection(("127.0.0.1", gateway.port))) for _ in range(40)]
            for sock in socks:
                sock.settimeout(10)
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    sock.sendall(unfinished)
            time.sleep(0.5)  # let the server read what it will
            during = rss_kib(gateway)
            assert during - before < 16 * 1024, f"RSS grew from {before} to {during} KiB"
            for sock in socks:
                with contextlib.suppress(ConnectionResetError):
                    status, body = split(sock.recv(65536))
                    assert status == b"HTTP/1.1 431 Request Header Fields Too Large"
                    assert body["error"]["code"] == "request_header_fields_too_large"  # type: ignore[index]

        answer = send_head(gateway.port, unfinished + b"\r\n\r\n")
        assert split(answer)[0] == b"HTTP/1.1 431 Request Header Fields Too Large"

        many = b"".join(b"X-H%d: v\r\n" % i for i in range(5_000))
        answer = send_head(gateway.port, b"POST /v1/messages HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
        status, body = split(answer)
        assert status == b"HTTP/1.1 431 Request Header Fields Too Large"
        assert body == {
            "type": "error",
            "error": {
                "type": "request_too_large",
                "message": "Request header fields too large: more than 100 request headers.",
            },
        }

        # A complete head within the head's bound, one line of it too long.
        line = b"X-Long: " + b"b" * 20_000 + b"\r\n"
        answer = send_head(gateway.port, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n" + line + b"\r\n")
        status, body = split(answer)
        assert status == b"HTTP/1.1 431 Request Header Fields Too Large"
        assert "a request header of 20006 bytes" in body["error"]["message"]  # type: ignore[index]

        # The server still serves ordinary requests, and says nothing about the refused values.
        assert httpx.get(f"{gateway.url}/health").status_code == 200
        assert "aaaa" not in gateway.log()
