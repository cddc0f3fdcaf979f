"""The benchmark entry point: apipod's own cost per request (CPU, latency, throughput) against a baseline that
does the same HTTP work without apipod, on the same machine in the same run.

``--load`` picks the stack (default ``auto``: ``wrk`` when both wrk and nginx are installed, else ``builtin``;
options or scenario names that only one stack has pick that one):

- ``wrk``: bench_wrk.py's stack. nginx serves pre-encoded answers (near-zero cost), wrk drives apipod and the
  bare forwarder (scripts/bench_forwarder.py) in turn; scenarios ``request``, ``stream`` (same dialect),
  ``stream-translated``, ``messages-stream`` and ``chat-translated`` at 1, 16 and 64 connections. After
  bench_wrk's rows it prints a ratio table: apipod's CPU ms/request and req/s over the forwarder's, per scenario
  and connection count.
- ``builtin``: needs neither. A minimal Python upstream (scripts/bench_upstream.py: OpenAI chat completions, the
  Responses API and Gemini) and `apipod serve` (SQLite, a plan with token and request budgets, so auth, routing,
  quota and usage are all on) as separate processes, driven with aiohttp; the baseline is a direct call to the
  upstream, and apipod's CPU time is read from /proc.

Each builtin scenario is a client dialect in front of an upstream dialect, non-streamed ("request") and streamed
(100 chunks from the upstream, "stream"); the direct baseline is the call apipod itself makes to the upstream:

- chat: OpenAI chat completions client, OpenAI chat upstream (same dialect; the default)
- responses: Responses API client, Responses upstream (an openai provider with responses_api = true)
- responses-translated: Responses API client, OpenAI chat upstream
- gemini: Gemini client (generateContent / streamGenerateContent?alt=sse), google_ai_studio upstream
- gemini-translated: Gemini client, OpenAI chat upstream
- messages-translated: Anthropic Messages client, OpenAI chat upstream

Run: .venv/bin/python scripts/bench_gateway.py [--load auto|wrk|builtin] [--workers 1]
  wrk:     [--connections 1,16,64] [--seconds 15]
           [--scenario request,stream,stream-translated,messages-stream,chat-translated] [--target apipod,forwarder]
  builtin: [--requests 2000] [--concurrency 1,16] [--scenario chat,responses] [--mode request,stream]
           [--transport aiohttp|httpx] [--gemini-usage-last]
(--connections and --concurrency are one option.) docs/benchmarks.md has the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import aiohttp
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

# the script directory is not a package
import bench_wrk  # noqa: E402
from bench_common import apipod, cpu_seconds, create_key, free_port, running, wait_ready  # noqa: E402

UPSTREAM = ROOT / "scripts" / "bench_upstream.py"

CATALOG = """
[[providers]]
name = "bench"
type = "openai"
base_url = "http://127.0.0.1:{port}/v1"
api_keys = ["sk-bench"]

[[providers]]
name = "bench-responses"
type = "openai"
base_url = "http://127.0.0.1:{port}/v1"
api_keys = ["sk-bench"]
responses_api = true

[[providers]]
name = "bench-gemini"
type = "google_ai_studio"
base_url = "http://127.0.0.1:{port}"
api_keys = ["sk-bench"]

[[models]]
name = "bench-model"
provider = "bench"
upstream_model = "bench-model"

[[models]]
name = "bench-responses-model"
provider = "bench-responses"
upstream_model = "bench-model"

[[models]]
name = "bench-gemini-model"
provider = "bench-gemini"
upstream_model = "bench-model"

[[plans]]
name = "bench"
routes = [{{ model = "bench-model", weight = 1 }}]
aliases = [
  {{ name = "responses", routes = [{{ model = "bench-responses-model", weight = 1 }}] }},
  {{ name = "gemini", routes = [{{ model = "bench-gemini-model", weight = 1 }}] }},
]
budgets = [{{ window = "day", tokens = 1000000000000 }}, {{ window = "month", requests = 1000000000 }}]
"""

HELLO = "hello there"
# Codex-style input (a message item) and store false, as the Codex CLI sends it: `store: true` would add a
# write of the response to the database, which is not the codec and framework cost measured here.
RESPONSES_INPUT = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": HELLO}]}]
GEMINI_BODY = orjson.dumps({"contents": [{"role": "user", "parts": [{"text": HELLO}]}]})


def _openai(model: str, stream: bool) -> bytes:
    return orjson.dumps({"model": model, "stream": stream, "messages": [{"role": "user", "content": HELLO}]})


def _responses(model: str, stream: bool) -> bytes:
    return orjson.dumps({"model": model, "stream": stream, "store": False, "input": RESPONSES_INPUT})


def _anthropic(stream: bool) -> bytes:
    body = {"model": "bench", "max_tokens": 200, "stream": stream, "messages": [{"role": "user", "content": HELLO}]}
    return orjson.dumps(body)


@dataclass(frozen=True)
class Leg:
    """One call: the path (with query), the body, the header style (``openai``, ``anthropic``, ``gemini``)
    and a piece the answer must hold (checked on the warm-up calls: the answer was relayed in full)."""

    path: str
    body: bytes
    style: str
    expect: tuple[bytes, ...]


@dataclass(frozen=True)
class Scenario:
    """A client dialect in front of an upstream dialect: each mode (``request``, ``stream``) pairs the call a
    client makes to apipod with the call apipod makes to the upstream, which is also the direct baseline."""

    client: dict[str, Leg]
    upstream: dict[str, Leg]


_UP_CHAT = {
    "request": Leg("/v1/chat/completions", _openai("bench-model", False), "openai", (b"hello",)),
    "stream": Leg("/v1/chat/completions", _openai("bench-model", True), "openai", (b"[DONE]",)),
}
_UP_GEMINI = "/v1beta/models/bench-model"
_GEMINI_CLIENT = {
    "request": Leg("/v1beta/models/{model}:generateContent", GEMINI_BODY, "gemini", (b'"STOP"',)),
    "stream": Leg(
        "/v1beta/models/{model}:streamGenerateContent?alt=sse", GEMINI_BODY, "gemini", (b"tok99 ", b'"STOP"')
    ),
}


def _gemini_client(model: str) -> dict[str, Leg]:
    return {mode: replace(leg, path=leg.path.format(model=model)) for mode, leg in _GEMINI_CLIENT.items()}


SCENARIOS: dict[str, Scenario] = {
    "chat": Scenario(
        client={
            "request": Leg("/v1/chat/completions", _openai("bench", False), "openai", (b"hello",)),
            "stream": Leg("/v1/chat/completions", _openai("bench", True), "openai", (b"tok99 ", b"[DONE]")),
        },
        upstream=_UP_CHAT,
    ),
    "responses": Scenario(
        client={
            "request": Leg("/v1/responses", _responses("responses", False), "openai", (b"hello",)),
            "stream": Leg("/v1/responses", _responses("responses", True), "openai", (b"tok99 ", b"response.completed")),
        },
        upstream={
            "request": Leg("/v1/responses", _responses("bench-model", False), "openai", (b"hello",)),
            "stream": Leg("/v1/responses", _responses("bench-model", True), "openai", (b"response.completed",)),
        },
    ),
    "responses-translated": Scenario(
        client={
            "request": Leg("/v1/responses", _responses("bench", False), "openai", (b"hello",)),
            "stream": Leg("/v1/responses", _responses("bench", True), "openai", (b"tok99 ", b"response.completed")),
        },
        upstream=_UP_CHAT,
    ),
    "gemini": Scenario(
        client=_gemini_client("gemini"),
        upstream={
            "request": Leg(f"{_UP_GEMINI}:generateContent", GEMINI_BODY, "gemini", (b'"STOP"',)),
            "stream": Leg(f"{_UP_GEMINI}:streamGenerateContent?alt=sse", GEMINI_BODY, "gemini", (b'"STOP"',)),
        },
    ),
    "gemini-translated": Scenario(client=_gemini_client("bench"), upstream=_UP_CHAT),
    # Not in the default run; today's former "stream translated" row (Anthropic client, OpenAI chat upstream).
    "messages-translated": Scenario(
        client={
            "request": Leg("/v1/messages", _anthropic(False), "anthropic", (b"hello",)),
            "stream": Leg("/v1/messages", _anthropic(True), "anthropic", (b"tok99 ", b"message_stop")),
        },
        upstream=_UP_CHAT,
    ),
}


def headers_for(style: str, key: str) -> dict[str, str]:
    if style == "anthropic":
        return {"content-type": "application/json", "x-api-key": key, "anthropic-version": "2023-06-01"}
    if style == "gemini":
        return {"content-type": "application/json", "x-goog-api-key": key}
    return {"content-type": "application/json", "authorization": f"Bearer {key}"}


class CallFailedError(RuntimeError):
    pass


async def drive(url: str, leg: Leg, headers: dict[str, str], n: int, concurrency: int) -> list[float]:
    """``n`` calls, ``concurrency`` at a time; the latency of each. ``leg.expect`` is checked on the first
    answer only, so the timed loop is the same for every scenario."""
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        remaining = n
        checked = False

        async def worker() -> None:
            nonlocal remaining, checked
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                async with http.post(url, data=leg.body, headers=headers) as answer:
                    body = await answer.read()
                    if answer.status != 200:
                        raise CallFailedError(f"POST {url} {leg.body.decode()}\n  -> {answer.status} {body.decode()}")
                latencies.append(time.perf_counter() - started)
                if not checked:
                    checked = True
                    missing = [e for e in leg.expect if e not in body]
                    if missing:
                        raise CallFailedError(
                            f"POST {url} {leg.body.decode()}\n  -> 200 without {missing}: {body[-600:].decode()}"
                        )

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


async def measure(
    name: str, pid: int, direct: tuple[str, Leg], via: tuple[str, Leg], key: str, n: int, concurrency: int
) -> None:
    direct_headers = headers_for(direct[1].style, "sk-bench")
    via_headers = headers_for(via[1].style, key)
    await drive(*direct, direct_headers, min(200, n), concurrency)
    await drive(*via, via_headers, min(200, n), concurrency)
    direct_lat = await drive(*direct, direct_headers, n, concurrency)
    before, started = cpu_seconds(pid), time.perf_counter()
    via_lat = await drive(*via, via_headers, n, concurrency)
    rate = n / (time.perf_counter() - started)
    cpu_ms = (cpu_seconds(pid) - before) * 1000 / n
    added = (statistics.median(via_lat) - statistics.median(direct_lat)) * 1000
    print(
        f"{name:<30} c={concurrency:<3} n={n:<5} p50 direct {statistics.median(direct_lat) * 1000:7.2f} ms"
        f"  via apipod {statistics.median(via_lat) * 1000:7.2f} ms  added {added:6.2f} ms"
        f"  apipod CPU {cpu_ms:6.3f} ms/request  {rate:7.0f} req/s",
        flush=True,
    )


def scenario_names(values: list[str]) -> list[str]:
    names = [name.strip() for value in values for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown:
        raise SystemExit(f"unknown scenario(s) {unknown}; choose from {', '.join(SCENARIOS)}")
    return list(dict.fromkeys(names)) or ["chat"]


async def rows(
    pid: int, up: str, gw: str, key: str, scenarios: Sequence[str], modes: Sequence[str], levels: Sequence[int], n: int
) -> list[str]:
    """A row per concurrency level, scenario and mode; the failures (a row that failed prints why and the run
    goes on, so one broken translation does not hide the others' figures)."""
    failures: list[str] = []
    for concurrency in levels:
        for name in scenarios:
            scenario = SCENARIOS[name]
            for mode in modes:
                direct, via = scenario.upstream[mode], scenario.client[mode]
                calls = n if mode == "request" else n // 4
                try:
                    await measure(
                        f"{name} {mode}", pid, (up + direct.path, direct), (gw + via.path, via), key, calls, concurrency
                    )
                except CallFailedError as exc:
                    failures.append(f"{name} {mode}: {exc}")
                    print(f"{name} {mode}: FAILED {exc}", flush=True)
    return failures


def run_builtin(args: argparse.Namespace) -> None:
    """The Python upstream and apipod, driven by aiohttp; exits 1 when a row failed."""
    scenarios = scenario_names(args.scenario)
    modes = [m for m in ("request", "stream") if m in (args.mode or "request,stream").split(",")]
    levels = [int(c) for c in (args.concurrency or "1,16").split(",")]
    transport = args.transport or "aiohttp"
    variant = ["--gemini-usage-last"] if args.gemini_usage_last else []
    up_port, gw_port = free_port(), free_port()
    up, gw = f"http://127.0.0.1:{up_port}", f"http://127.0.0.1:{gw_port}"
    with tempfile.TemporaryDirectory() as name, contextlib.ExitStack() as stack:
        upstream = stack.enter_context(running([sys.executable, str(UPSTREAM), str(up_port), *variant]))
        catalog = CATALOG.format(port=up_port)
        gateway = apipod(stack, Path(name), catalog, gw_port, args.workers, HTTP_TRANSPORT=transport)
        wait_ready(f"{up}/", [upstream, gateway])
        wait_ready(f"{gw}/health", [upstream, gateway])
        key = create_key(gw)
        print(f"transport={transport} workers={args.workers}" + (" gemini-usage-last" if variant else ""), flush=True)
        failures = asyncio.run(rows(gateway.pid, up, gw, key, scenarios, modes, levels, args.requests or 2000))
    if failures:
        raise SystemExit(1)


# The forwarder does not translate: a translated scenario is compared with the same upstream answer passed through.
BASELINE = bench_wrk.TRANSLATED


def _ratio(value: float, base: float) -> str:
    return f"{value / base:6.2f}x" if base > 0 else "    n/a"


def ratio_table(results: Sequence[bench_wrk.Row]) -> list[str]:
    """apipod over the forwarder per scenario and connection count: CPU ms/request (what apipod costs per
    request on top of bare forwarding) and req/s (the throughput one machine keeps)."""
    forwarder = {(r.scenario, r.connections): r for r in results if r.target == "forwarder"}
    if not forwarder:
        return []
    lines = [f"{'apipod / forwarder':<34} {'c':<5} {'CPU ms/request':>14}  {'req/s':>7}"]
    ours = sorted(
        (r for r in results if r.target == "apipod"),
        key=lambda r: (bench_wrk.SCENARIOS.index(r.scenario), r.connections),
    )
    for row in ours:
        base_scenario = BASELINE.get(row.scenario, row.scenario)
        base = forwarder.get((base_scenario, row.connections))
        label = row.scenario if base_scenario == row.scenario else f"{row.scenario} (vs {base_scenario})"
        cpu = _ratio(row.cpu_ms, base.cpu_ms) if base else "    n/a"
        rate = _ratio(row.run.rate, base.run.rate) if base else "    n/a"
        lines.append(f"{label:<34} c={row.connections:<3} {cpu:>14}  {rate:>7}")
    return lines


def run_wrk(args: argparse.Namespace) -> None:
    """bench_wrk.py's rows for apipod and the forwarder, then the ratio table."""
    connections = [int(c) for c in (args.concurrency or "1,16,64").split(",")]
    scenarios = bench_wrk.names(",".join(args.scenario) or ",".join(bench_wrk.SCENARIOS), bench_wrk.SCENARIOS)
    targets = bench_wrk.names(args.target or ",".join(bench_wrk.TARGETS), bench_wrk.TARGETS)
    results = bench_wrk.run(connections, args.seconds or 15, args.workers, scenarios, targets)
    for line in ratio_table(results):
        print(line, flush=True)


# Options only one stack has (None: not given); given ones pick that stack under --load auto.
_BUILTIN_ONLY = {"requests": "--requests", "transport": "--transport", "mode": "--mode"}
_WRK_ONLY = {"seconds": "--seconds", "target": "--target"}


def _asked(args: argparse.Namespace, options: dict[str, str], scenarios: Sequence[str]) -> list[str]:
    given = [flag for dest, flag in options.items() if getattr(args, dest) is not None]
    return given + [name.strip() for value in args.scenario for name in value.split(",") if name.strip() in scenarios]


def pick_load(args: argparse.Namespace) -> str:
    """``wrk`` or ``builtin``: what ``--load`` says, or under ``auto`` what the other options and the scenario
    names point at, else wrk when wrk and nginx are installed."""
    builtin = _asked(args, _BUILTIN_ONLY, list(SCENARIOS)) + (["--gemini-usage-last"] if args.gemini_usage_last else [])
    wrk = _asked(args, _WRK_ONLY, bench_wrk.SCENARIOS)
    if args.load == "wrk" and builtin:
        raise SystemExit(f"{', '.join(builtin)}: only with --load builtin")
    if args.load == "builtin" and wrk:
        raise SystemExit(f"{', '.join(wrk)}: only with --load wrk")
    if args.load != "auto":
        return str(args.load)
    if builtin and wrk:
        raise SystemExit(f"{', '.join(builtin)} (builtin) and {', '.join(wrk)} (wrk) do not mix: pick one --load")
    if builtin or wrk:
        return "builtin" if builtin else "wrk"
    if bench_wrk.available():
        return "wrk"
    print("--load auto: wrk or nginx is not installed; the built-in load generator and upstream", file=sys.stderr)
    return "builtin"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--load",
        default="auto",
        choices=["auto", "wrk", "builtin"],
        help="wrk: nginx upstream, wrk client, the forwarder beside apipod; builtin: Python upstream and aiohttp "
        "client; auto (default): wrk when wrk and nginx are installed",
    )
    parser.add_argument("--workers", default="1", help="apipod serve --workers (CPU is summed over the workers)")
    parser.add_argument(
        "--scenario",
        action="append",
        default=[],
        help=f"repeatable or comma list; builtin (default chat): {', '.join(SCENARIOS)}; "
        f"wrk (default all): {', '.join(bench_wrk.SCENARIOS)}",
    )
    parser.add_argument(
        "--concurrency", "--connections", dest="concurrency", help="comma list; default 1,16 builtin, 1,16,64 wrk"
    )
    parser.add_argument("--requests", type=int, help="builtin: non-streamed calls per row (default 2000); streams 1/4")
    parser.add_argument("--transport", choices=["aiohttp", "httpx"], help="builtin: apipod's HTTP_TRANSPORT")
    parser.add_argument("--mode", help="builtin: request, stream or both (default)")
    parser.add_argument(
        "--gemini-usage-last",
        action="store_true",
        help="builtin: the Gemini upstream sends usageMetadata on its last chunk only (Gemini sends it on every chunk)",
    )
    parser.add_argument("--seconds", type=int, help="wrk: seconds per row (default 15)")
    parser.add_argument("--target", help="wrk: apipod, forwarder or both (default)")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    if pick_load(args) == "wrk":
        run_wrk(args)
    else:
        run_builtin(args)


if __name__ == "__main__":
    main()
