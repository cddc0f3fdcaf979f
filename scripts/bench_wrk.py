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
dialect), ``chat-translated`` (OpenAI chat client, the same Anthropic stream upstream; apipod only).

Run: .venv/bin/python scripts/bench_wrk.py [--connections 1,16,64] [--seconds 15] [--workers 1]
       [--scenario request,stream,stream-translated,messages-stream,chat-translated] [--target apipod,forwarder,direct]
       [--database-url postgresql://postgres@127.0.0.1:5432/apipod_bench]
docs/benchmarks.md has the figures and what each change bought.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

# the script directory is not a package
from bench_common import apipod, cpu_seconds, create_key, free_port, rss_mb, running, wait_ready  # noqa: E402
from bench_upstream import ANTHROPIC_STREAM, COMPLETION, STREAM  # noqa: E402

SCENARIOS = ("request", "stream", "stream-translated", "messages-stream", "chat-translated")
TRANSLATED = {"stream-translated": "stream", "chat-translated": "messages-stream"}
"""The scenarios the forwarder cannot run (it does not translate), and the one of the same upstream answer."""
TARGETS = ("apipod", "forwarder", "direct")
"""``direct``: wrk straight at nginx with the forwarder's call, the baseline that "added" latency is measured from."""
FORWARDER = ROOT / "scripts" / "bench_forwarder.py"

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
        "chat-translated": Call("/v1/chat/completions", f'{{"model":"bench-claude","stream":true,{question}}}', bearer),
    }


def forwarded(scenario: str) -> Call:
    """The forwarder passes the path through: it calls nginx's plain or streamed answer directly."""
    if scenario == "messages-stream":
        return Call("/claude/v1/messages", '{"model":"bench-claude"}', {"content-type": "application/json"})
    prefix = "/stream" if scenario.startswith("stream") else "/plain"
    return Call(prefix + "/v1/chat/completions", '{"model":"bench-model"}', {"content-type": "application/json"})


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


@dataclass(frozen=True)
class Row:
    """A printed row, kept so that a caller (bench_gateway.py's ratio table) can set the targets side by side."""

    target: str
    scenario: str
    connections: int
    run: Run
    cpu_ms: float


def measure(target: str, scenario: str, pid: int, url: str, script: Path, connections: int, seconds: int) -> Row:
    wrk(url, script, connections, max(2, seconds // 5))  # warm-up: pools, caches, the JIT-less interpreter's dicts
    before = cpu_seconds(pid)
    run = wrk(url, script, connections, seconds)
    cpu_ms = (cpu_seconds(pid) - before) * 1000 / max(run.requests, 1)
    name = f"{target} {scenario}"
    print(
        f"{name:<34} c={connections:<3} {run.rate:8.0f} req/s  p50 {run.p50:7.2f} ms  p99 {run.p99:7.2f} ms"
        f"  max {run.worst:7.2f} ms  CPU {cpu_ms:6.3f} ms/request  RSS {rss_mb(pid):5.1f} MB"
        + (f"  {run.errors} errors" if run.errors else ""),
        flush=True,
    )
    return Row(target, scenario, connections, run, cpu_ms)


def added_table(rows: Sequence[Row]) -> list[str]:
    """Added latency, as the issue's targets count it: a target's p50 less the ``direct`` row's p50 at the same
    connection count (for a translated scenario: the direct call of the answer it translates). Each row is
    its own wrk run, so the difference carries both runs' noise; at 1 connection both are steady."""
    direct = {(r.scenario, r.connections): r for r in rows if r.target == "direct"}
    lines = []
    for row in rows:
        base = direct.get((TRANSLATED.get(row.scenario, row.scenario), row.connections))
        if row.target == "direct" or base is None:
            continue
        if not lines:
            lines.append(f"{'added latency (less direct)':<34} {'c':<5} {'p50':>8}  {'p99':>8}  p99 / p50")
        name = f"{row.target} {row.scenario}"
        p50, p99 = row.run.p50 - base.run.p50, row.run.p99 - base.run.p99
        lines.append(
            f"{name:<34} c={row.connections:<3} {p50:5.2f} ms  {p99:5.2f} ms  {row.run.p99 / row.run.p50:5.1f}x"
        )
    return lines


def nginx_path() -> str | None:
    """Debian puts nginx in /usr/sbin, which a user's PATH may not hold."""
    return shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def available() -> bool:
    """Both nginx and wrk are installed (bench_gateway.py's ``--load auto`` asks before it picks this stack)."""
    return nginx_path() is not None and shutil.which("wrk") is not None


def names(value: str, known: Sequence[str]) -> list[str]:
    """A comma list checked against ``known``, so that a typo fails at start rather than after the first rows."""
    chosen = list(dict.fromkeys(name.strip() for name in value.split(",") if name.strip()))
    unknown = [name for name in chosen if name not in known]
    if unknown:
        raise SystemExit(f"unknown name(s) {unknown}; choose from {', '.join(known)}")
    return chosen


def write_answers(tmp: Path, port: int) -> None:
    """nginx's static answers (the bytes bench_upstream.py sends) and its configuration, in ``tmp``."""
    tmp.chmod(0o755)  # nginx's workers (not root) read the answers from here
    (tmp / "completion.json").write_bytes(COMPLETION)
    (tmp / "stream.txt").write_bytes(b"".join(STREAM))
    (tmp / "claude.txt").write_bytes(b"".join(ANTHROPIC_STREAM))
    (tmp / "nginx.conf").write_text(NGINX.format(tmp=tmp, port=port))


def _rows(
    key: str,
    targets: dict[str, tuple[int, str]],
    tmp: Path,
    connections: Sequence[int],
    seconds: int,
    scenarios: Sequence[str],
) -> list[Row]:
    """A row per connection count, scenario and target; ``targets`` maps a target to its pid and base URL."""
    rows: list[Row] = []
    for count in connections:
        for scenario in scenarios:
            for target, (pid, base) in targets.items():
                if target != "apipod" and scenario in TRANSLATED:
                    continue  # the forwarder does not translate; their direct call is their baseline's
                call = calls(key)[scenario] if target == "apipod" else forwarded(scenario)
                script = lua(call, tmp, f"{target}-{scenario}")
                rows.append(measure(target, scenario, pid, base + call.path, script, count, seconds))
    return rows


def run(
    connections: Sequence[int],
    seconds: int,
    workers: str,
    scenarios: Sequence[str],
    targets: Sequence[str],
    database_url: str | None = None,
) -> list[Row]:
    """Starts nginx, apipod and the forwarder, prints the rows and then apipod's garbage-collector report (every
    collection of the whole run, warm-ups included), and returns the rows. ``database_url``: apipod's database
    (migrated at start) instead of a fresh SQLite file."""
    nginx = nginx_path()
    if nginx is None or shutil.which("wrk") is None:
        raise SystemExit(
            "needs nginx and wrk (apt-get install nginx-light wrk); bench_gateway.py --load builtin does not"
        )
    up, gw, fw = free_port(), free_port(), free_port()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        write_answers(tmp, up)
        with contextlib.ExitStack() as stack:
            server = stack.enter_context(running([nginx, "-c", str(tmp / "nginx.conf")]))
            gc_report = str(tmp / "gc-{pid}.json")  # entrypoints/cli/gc_watch.py
            gateway = apipod(
                stack, tmp, CATALOG.format(port=up), gw, workers, database_url=database_url, APIPOD_GC_REPORT=gc_report
            )
            forwarder = stack.enter_context(
                running([sys.executable, str(FORWARDER), str(fw), f"http://127.0.0.1:{up}"])
            )
            processes = [server, gateway, forwarder]
            wait_ready(f"http://127.0.0.1:{up}/plain/", processes)
            wait_ready(f"http://127.0.0.1:{gw}/health", processes)
            wait_ready(f"http://127.0.0.1:{fw}/plain/v1/chat/completions", processes)
            key = create_key(f"http://127.0.0.1:{gw}")
            store = "SQLite" if database_url is None else "PostgreSQL"
            print(f"apipod workers={workers}, {store}; upstream nginx; client wrk -t1; {seconds} s per row", flush=True)
            bases = {
                "apipod": (gateway.pid, f"http://127.0.0.1:{gw}"),
                "forwarder": (forwarder.pid, f"http://127.0.0.1:{fw}"),
                "direct": (server.pid, f"http://127.0.0.1:{up}"),
            }
            rows = _rows(key, {t: bases[t] for t in targets}, tmp, connections, seconds, scenarios)
            for line in added_table(rows):
                print(line, flush=True)
        for report in sorted(tmp.glob("gc-*.json")):
            print(f"apipod garbage collector: {report.read_text().strip()}", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", default="1,16,64")
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--workers", default="1", help="apipod serve --workers")
    parser.add_argument("--scenario", default=",".join(SCENARIOS))
    parser.add_argument("--target", default=",".join(TARGETS))
    parser.add_argument("--database-url", help="apipod's database (e.g. an empty PostgreSQL database); default SQLite")
    args = parser.parse_args()
    connections = [int(c) for c in args.connections.split(",")]
    run(
        connections,
        args.seconds,
        args.workers,
        names(args.scenario, SCENARIOS),
        names(args.target, TARGETS),
        args.database_url,
    )


if __name__ == "__main__":
    main()
