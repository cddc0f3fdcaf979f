"""apipod against the bare forwarder, on a near-zero-cost stack: nginx as the upstream, wrk as the client.

Python load generators and upstreams take as much CPU as the gateway they measure; nginx (static answers
from ``return``) and wrk (C, one thread) take a few percent, so what is left is apipod's own cost and the
throughput one machine gets from it. Both need to be installed (Debian: ``nginx-light``, ``wrk``).

It starts nginx with a pre-encoded OpenAI chat completion and a pre-encoded 100-chunk stream (the answers of
``bench_upstream.py``), ``apipod serve --workers W`` (SQLite, a plan with token and request budgets: key
auth, routing, quota reservation and settlement and a usage row on every request) and
``bench_forwarder.py``, then drives each with wrk and reads the CPU time of its processes from /proc.

Scenarios: ``request`` (OpenAI chat, non-streamed), ``stream`` (OpenAI chat, 100 chunks, same dialect),
``stream-translated`` (Anthropic Messages client, the same OpenAI stream upstream; apipod only: the forwarder
does not translate), ``messages-stream`` (Anthropic Messages client and upstream, 100 text deltas, same
dialect).

Run: .venv/bin/python scripts/bench_wrk.py [--connections 1,16,64] [--seconds 15] [--workers 1]
       [--scenario request,stream,stream-translated,messages-stream] [--target apipod,forwarder]
docs/benchmarks.md has the figures and what each change bought.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from bench_upstream import ANTHROPIC_STREAM, COMPLETION, STREAM  # noqa: E402 - the script directory is not a package

CLK_TCK = os.sysconf("SC_CLK_TCK")
SECRET = "bench-admin-secret-0123456789"

CATALOG = """
[[providers]]
name = "plain"
type = "openai"
base_url = "http://127.0.0.1:{port}/plain/v1"
api_keys = ["sk-bench"]

[[providers]]
name = "streamed"
type = "openai"
base_url = "http://127.0.0.1:{port}/stream/v1"
api_keys = ["sk-bench"]

[[providers]]
name = "claude"
type = "anthropic"
base_url = "http://127.0.0.1:{port}/claude"
api_keys = ["sk-bench"]

[[models]]
name = "claude-model"
provider = "claude"
upstream_model = "bench-claude"

[[models]]
name = "plain-model"
provider = "plain"
upstream_model = "bench-model"

[[models]]
name = "stream-model"
provider = "streamed"
upstream_model = "bench-model"

[[plans]]
name = "bench"
routes = [{{ model = "plain-model", weight = 1 }}]
aliases = [
    {{ name = "bench-stream", routes = [{{ model = "stream-model", weight = 1 }}] }},
    {{ name = "bench-claude", routes = [{{ model = "claude-model", weight = 1 }}] }},
]
budgets = [{{ window = "day", tokens = 1000000000000, requests = 1000000000 }}]
"""

NGINX = """
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port};
        # Static files answer POST through the 405 -> GET redirect (``return`` cannot hold a 17 KB stream).
        location /plain/ {{ rewrite ^ /completion.json last; }}
        location /stream/ {{ rewrite ^ /stream.txt last; }}
        location /claude/ {{ rewrite ^ /claude.txt last; }}
        location = /claude.txt {{ root {tmp}; default_type text/event-stream; error_page 405 =200 $uri; }}
        location = /completion.json {{ root {tmp}; default_type application/json; error_page 405 =200 $uri; }}
        location = /stream.txt {{ root {tmp}; default_type text/event-stream; error_page 405 =200 $uri; }}
    }}
}}
"""


@dataclass(frozen=True)
class Call:
    path: str
    body: str
    headers: dict[str, str]


def calls(key: str) -> dict[str, Call]:
    bearer = {"content-type": "application/json", "authorization": f"Bearer {key}"}
    anthropic = {"content-type": "application/json", "x-api-key": key, "anthropic-version": "2023-06-01"}
    question = '"messages":[{"role":"user","content":"Say hello"}]'
    return {
        "request": Call("/v1/chat/completions", f'{{"model":"bench",{question}}}', bearer),
        "stream": Call("/v1/chat/completions", f'{{"model":"bench-stream","stream":true,{question}}}', bearer),
        "stream-translated": Call(
            "/v1/messages", f'{{"model":"bench-stream","stream":true,"max_tokens":256,{question}}}', anthropic
        ),
        "messages-stream": Call(
            "/v1/messages", f'{{"model":"bench-claude","stream":true,"max_tokens":256,{question}}}', anthropic
        ),
    }


def forwarded(scenario: str) -> Call:
    """The forwarder passes the path through: it calls nginx's plain or streamed answer directly."""
    if scenario == "messages-stream":
        return Call("/claude/v1/messages", '{"model":"bench-claude"}', {"content-type": "application/json"})
    prefix = "/stream" if scenario.startswith("stream") else "/plain"
    return Call(prefix + "/v1/chat/completions", '{"model":"bench-model"}', {"content-type": "application/json"})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """``pid`` and its live descendants (the workers of ``--workers N``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    total = (int(fields[11]) + int(fields[12])) / CLK_TCK
    children = Path(f"/proc/{pid}/task/{pid}/children")
    for child in children.read_text().split() if children.exists() else ():
        try:
            total += cpu_seconds(int(child))
        except FileNotFoundError:
            continue
    return total


def rss_mb(pid: int) -> float:
    """The largest resident set among ``pid`` and its live descendants (per process: the target is per process)."""
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    largest = int(found.group(1)) / 1024 if found else 0.0
    children = Path(f"/proc/{pid}/task/{pid}/children")
    for child in children.read_text().split() if children.exists() else ():
        try:
            largest = max(largest, rss_mb(int(child)))
        except FileNotFoundError:
            continue
    return largest


def wait_ready(url: str, processes: list[subprocess.Popen[bytes]]) -> None:
    for _ in range(300):
        if any(p.poll() is not None for p in processes):
            raise SystemExit("a process of the benchmark exited at start (its output is above)")
        try:
            if httpx.get(url, timeout=0.5).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"{url} did not come up")


def lua(call: Call, tmp: Path, name: str) -> Path:
    lines = ['wrk.method = "POST"', f"wrk.body = '{call.body}'"]
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in call.headers.items()]
    path = tmp / f"{name}.lua"
    path.write_text("\n".join(lines) + "\n")
    return path


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def _ms(text: str) -> float:
    """wrk's durations: ``812.00us``, ``1.25ms``, ``2.01s``, ``1.00m``."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if match is None:
        raise SystemExit(f"unreadable duration from wrk: {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


@dataclass(frozen=True)
class Run:
    rate: float
    p50: float
    p99: float
    worst: float
    requests: int
    errors: int


def wrk(url: str, script: Path, connections: int, seconds: int) -> Run:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    latency = re.search(r"^[ \t]*Latency[ \t]+\S+[ \t]+\S+[ \t]+(\S+)", out, re.MULTILINE)
    p50 = re.search(r"^[ \t]*50%[ \t]+(\S+)", out, re.MULTILINE)
    p99 = re.search(r"^[ \t]*99%[ \t]+(\S+)", out, re.MULTILINE)
    total = re.search(r"(\d+) requests in", out)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if os.environ.get("BENCH_WRK_RAW"):
        print(out, flush=True)
    if not (latency and p50 and p99 and total and rate):
        raise SystemExit(f"could not read wrk's output:\n{out}")
    return Run(
        rate=float(rate.group(1)),
        p50=_ms(p50.group(1)),
        p99=_ms(p99.group(1)),
        worst=_ms(latency.group(1)),
        requests=int(total.group(1)),
        errors=int(errors.group(1)) if errors else 0,
    )


def measure(name: str, pid: int, url: str, script: Path, connections: int, seconds: int) -> Run:
    wrk(url, script, connections, max(2, seconds // 5))  # warm-up: pools, caches, the JIT-less interpreter's dicts
    before = cpu_seconds(pid)
    run = wrk(url, script, connections, seconds)
    cpu_ms = (cpu_seconds(pid) - before) * 1000 / max(run.requests, 1)
    print(
        f"{name:<34} c={connections:<3} {run.rate:8.0f} req/s  p50 {run.p50:7.2f} ms  p99 {run.p99:7.2f} ms"
        f"  max {run.worst:7.2f} ms  CPU {cpu_ms:6.3f} ms/request  RSS {rss_mb(pid):5.1f} MB"
        + (f"  {run.errors} errors" if run.errors else ""),
        flush=True,
    )
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", default="1,16,64")
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--workers", default="1", help="apipod serve --workers")
    parser.add_argument("--scenario", default="request,stream,stream-translated,messages-stream")
    parser.add_argument("--target", default="apipod,forwarder")
    args = parser.parse_args()
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx is None or shutil.which("wrk") is None:
        raise SystemExit("needs nginx and wrk (apt-get install nginx-light wrk); bench_gateway.py needs neither")
    scenarios = [s for s in args.scenario.split(",") if s]
    targets = [t for t in args.target.split(",") if t]
    python = sys.executable
    up, gw, fw = free_port(), free_port(), free_port()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        tmp.chmod(0o755)  # nginx's workers (not root) read the answers from here
        (tmp / "completion.json").write_bytes(COMPLETION)
        (tmp / "stream.txt").write_bytes(b"".join(STREAM))
        (tmp / "claude.txt").write_bytes(b"".join(ANTHROPIC_STREAM))
        (tmp / "nginx.conf").write_text(NGINX.format(tmp=tmp, port=up))
        (tmp / "catalog.toml").write_text(CATALOG.format(port=up))
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{tmp}/bench.db",
            "ADMIN_SECRET": SECRET,
            "APIPOD_CONFIG": str(tmp / "catalog.toml"),
            "PORT": str(gw),
            "HOST": "127.0.0.1",
            "LOG_LEVEL": "WARNING",
            "APIPOD_GC_REPORT": str(tmp / "gc-{pid}.json"),  # entrypoints/cli/gc_watch.py
        }
        processes = [subprocess.Popen([nginx, "-c", str(tmp / "nginx.conf")])]
        processes.append(
            subprocess.Popen([python, "-m", "apipod", "serve", "--workers", args.workers], env=env, cwd=tmp)
        )
        forwarder_script = ROOT / "scripts" / "bench_forwarder.py"
        processes.append(subprocess.Popen([python, str(forwarder_script), str(fw), f"http://127.0.0.1:{up}"]))
        try:
            wait_ready(f"http://127.0.0.1:{up}/plain/", processes)
            wait_ready(f"http://127.0.0.1:{gw}/health", processes)
            wait_ready(f"http://127.0.0.1:{fw}/plain/v1/chat/completions", processes)
            answer = httpx.post(
                f"http://127.0.0.1:{gw}/admin/create-key",
                headers={"x-admin-secret": SECRET},
                json={"name": "bench", "tier": "bench"},
            )
            key = answer.json()["api_key"]
            print(
                f"apipod workers={args.workers}; upstream nginx; client wrk -t1; {args.seconds} s per row", flush=True
            )
            for connections in (int(c) for c in args.connections.split(",")):
                for scenario in scenarios:
                    for target in targets:
                        if target == "forwarder" and scenario == "stream-translated":
                            continue
                        if target == "apipod":
                            call, pid, base = calls(key)[scenario], processes[1].pid, f"http://127.0.0.1:{gw}"
                        else:
                            call, pid, base = forwarded(scenario), processes[2].pid, f"http://127.0.0.1:{fw}"
                        script = lua(call, tmp, f"{target}-{scenario}")
                        measure(f"{target} {scenario}", pid, base + call.path, script, connections, args.seconds)
        finally:
            for process in reversed(processes):
                process.terminate()
                process.wait(15)
        for report in sorted(tmp.glob("gc-*.json")):
            # every collection of the apipod process over the whole run (warm-ups included)
            print(f"apipod garbage collector: {report.read_text().strip()}", flush=True)


if __name__ == "__main__":
    main()
