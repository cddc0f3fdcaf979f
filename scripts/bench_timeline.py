"""Where one request's time goes at one connection: the server's stages in order, with the median time of
each, and which of them wait rather than work.

At one connection latency is the time of one request's path through the process, so the question "which part
of the 0.6 ms" is answered by a timeline, not by a profile of the whole run. ``bench_opcodes.py`` counts the
Python work per function; this times the stages of a request as it passes through them. The server runs on
``bench_wrk.py``'s stack (nginx as the upstream, SQLite, the benchmark plan) with a ``sitecustomize`` of this
script's making: a dozen functions on the request's path (uvicorn's protocol, Falcon, the pipeline's steps,
aiohttp's request) are wrapped so that each notes a monotonic time as a request passes between
the first ``SIGUSR1`` and the second, which writes the marks out. (The wrappers are put in place at start-up,
before any connection exists: uvloop keeps each connection's bound ``data_received``.) Requests go one after
the other on one keep-alive connection, after a warm-up.

Two gaps are waits, not work: the upstream's (from the request written to nginx until its answer's first bytes
arrive) and the client's (from the last answer until the next request's bytes arrive). The client is Python's
``http.client``, or wrk at one connection with ``--client wrk`` (as ``bench_wrk.py`` measures latency): wrk turns
round faster, so its gap shows how much of the work after an answer is written the next request waits for.
The rest is the event loop's thread at work, the kernel's part (socket writes) included. Each mark costs about a
microsecond, so the stages read a little long.

Needs nginx (and wrk for ``--client wrk``). Run: .venv/bin/python scripts/bench_timeline.py [--requests 2000]
       [--client python|wrk]
docs/benchmarks.md (thirteenth pass) has a reading of it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

# the script directory is not a package
from bench_common import DATABASE_HELP  # noqa: E402
from bench_instructions import send  # noqa: E402
from bench_opcodes import hooked_run  # noqa: E402
from bench_wrk import Call, lua, wrk  # noqa: E402

# (module, class, method, mark on entry, mark on exit); None where the stage has no mark on that side.
# The order of the marks within one request is the order in which a request passes them.
STAGES = (
    ("apipod.entrypoints.http.bounded_protocol", "BoundedHttpToolsProtocol", "data_received", "request bytes", None),
    ("apipod.entrypoints.http.request_scope", "RequestScope", "__call__", "app", "done"),
    ("falcon.asgi", "App", "__call__", "falcon", None),
    ("apipod.application.authenticate_key", "AuthenticateKey", "execute", None, "authenticated"),
    ("apipod.entrypoints.http.client_dialects", "OpenAIClients", "decode", None, "decoded"),
    ("apipod.application.reserve_quota", "ReserveQuota", "execute", "routed, admitted", "reserved"),
    (
        "apipod.adapters.upstreams._aiohttp_transport",
        "LeanAiohttpTransport",
        "handle_async_request",
        "upstream call",
        "answer's head",
    ),
    ("aiohttp.client_reqrep", "ClientRequest", "write_bytes", None, "request written"),
    ("aiohttp.client_proto", "ResponseHandler", "data_received", "answer bytes", None),
    ("apipod.application.chat_pipeline", "ChatPipeline", "finish", "books", "books closed"),
    ("apipod.entrypoints.http.streaming", "CoalescingSend", "__call__", "answer", "answer written"),
)
WAITS = {("request written", "answer bytes"): "the upstream's", ("done", "request bytes"): "the client's"}

# Runs inside the server. It stays out of the way until the first SIGUSR1.
HOOK = """
import importlib, inspect, json, os, signal, time

_marks = []
_on = False
_now = time.perf_counter_ns


def _wrap(module, owner, name, before, after):
    cls = getattr(importlib.import_module(module), owner)
    inner = getattr(cls, name)
    note = _marks.append
    if inspect.iscoroutinefunction(inner):
        async def wrapper(*args, **kwargs):
            if before and _on:
                note((_now(), before))
            try:
                return await inner(*args, **kwargs)
            finally:
                if after and _on:
                    note((_now(), after))
    else:
        def wrapper(*args, **kwargs):
            if before and _on:
                note((_now(), before))
            try:
                return inner(*args, **kwargs)
            finally:
                if after and _on:
                    note((_now(), after))
    setattr(cls, name, wrapper)


def _toggle(signum, frame):
    global _on
    if not _on:
        _marks.clear()
        _on = True
        return
    _on = False
    path = os.environ["APIPOD_TIMELINE_OUT"]
    with open(path + ".part", "w") as out:
        json.dump(_marks, out)
    os.replace(path + ".part", path)


if os.environ.get("APIPOD_TIMELINE_OUT"):
    # wrapped now, before any connection exists: uvloop keeps a protocol's bound ``data_received`` per connection
    for stage in json.loads(os.environ["APIPOD_TIMELINE_STAGES"]):
        _wrap(*stage)
    signal.signal(signal.SIGUSR1, _toggle)
"""


def record(requests: int, client: str, database_url: str | None) -> list[tuple[int, str]]:
    def drive(port: int, call: Call, tmp: Path) -> None:
        if client == "wrk":
            # about as many requests as asked for, at wrk's rate (at one connection)
            wrk(f"http://127.0.0.1:{port}{call.path}", lua(call, tmp, "timeline"), 1, max(1, requests // 1000))
        else:
            send(port, call, requests)

    watched = json.dumps(STAGES)
    text = hooked_run(HOOK, "APIPOD_TIMELINE_OUT", "request", drive, database_url, APIPOD_TIMELINE_STAGES=watched)
    return [(t, label) for t, label in json.loads(text)]


def stages(marks: list[tuple[int, str]]) -> dict[tuple[str, str], list[float]]:
    """Microseconds between each mark and the next, by the pair of marks. The answer's two messages (head, then
    body) make one stage, and only the first answer bytes after the request is written count (nginx's head and
    body may come in two reads)."""
    kept: list[tuple[int, str]] = []
    for t, label in marks:
        if label == "answer" and kept and kept[-1][1] == "answer written":
            kept.pop()  # the head was held back and goes out with the body: from the head's send to the body's end
            continue
        if label == "answer bytes" and kept and kept[-1][1] != "request written":
            continue
        kept.append((t, label))
    spans: dict[tuple[str, str], list[float]] = {}
    previous: tuple[int, str] | None = None
    for t, label in kept:
        if previous is not None:
            spans.setdefault((previous[1], label), []).append((t - previous[0]) / 1000)
        previous = (t, label)
    return spans


def report(spans: dict[tuple[str, str], list[float]]) -> None:
    requests = max(len(times) for times in spans.values())
    common = [(pair, times) for pair, times in spans.items() if len(times) >= requests * 0.9]
    order = {label: i for i, label in enumerate(_ORDER)}
    common.sort(key=lambda item: (order.get(item[0][0], 99), order.get(item[0][1], 99)))
    work = wait = 0.0
    print(f"{'stage':<48} {'median µs':>10} {'mean µs':>9}")
    for (start, end), times in common:
        median = statistics.median(times)
        kind = WAITS.get((start, end))
        label = f"{start} -> {end}" + (f"  (waiting: {kind})" if kind else "")
        print(f"{label:<48} {median:>10.1f} {statistics.fmean(times):>9.1f}")
        if kind:
            wait += median
        else:
            work += median
    print(f"{'the process at work (sum of medians)':<48} {work:>10.1f}")
    print(f"{'waiting (sum of medians)':<48} {wait:>10.1f}")


_ORDER = (
    "request bytes",
    "app",
    "falcon",
    "authenticated",
    "decoded",
    "routed, admitted",
    "reserved",
    "upstream call",
    "request written",
    "answer bytes",
    "answer's head",
    "books",
    "books closed",
    "answer",
    "answer written",
    "done",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="requests timed, after a warm-up")
    parser.add_argument("--client", default="python", choices=("python", "wrk"))
    parser.add_argument("--database-url", help=DATABASE_HELP)
    args = parser.parse_args()
    spans = stages(record(args.requests, args.client, args.database_url))
    print(f"requests timed: {max(len(times) for times in spans.values())}")
    report(spans)


if __name__ == "__main__":
    main()
