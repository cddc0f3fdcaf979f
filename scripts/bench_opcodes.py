"""Where a request's Python work is: the bytecode instructions (opcodes) ``apipod serve`` runs per request,
by package and by function, and who calls the functions you name.

``bench_instructions.py`` says how much a request costs; this says where to look. The server runs on
``bench_wrk.py``'s stack (nginx as the upstream, SQLite, the benchmark plan) with a ``sitecustomize`` of this
script's making on its path: ``SIGUSR1`` turns a ``sys.settrace`` hook with ``f_trace_opcodes`` on, for the
event loop's thread and any thread started after, and the second ``SIGUSR1`` turns it off and writes the
counts. Requests go one after the other on one keep-alive connection, after a warm-up.

An opcode is not a cost: one may be a dictionary lookup, another a call into C that scans 17 KB. Work done in
C (orjson, SQLite, byte searches, allocation) is not counted at all, so a change that moves work from Python
into C can cut opcodes and no instructions. Choose what to change here; keep a change only if
``bench_instructions.py`` agrees.

Needs nginx. Run: .venv/bin/python scripts/bench_opcodes.py [--scenario request] [--requests 500] [--top 40]
       [--callers httpx/_models.py:encoding,_weakrefset.py:add]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

# the script directory is not a package
from bench_common import DATABASE_HELP, apipod, create_key, free_port, running, wait_ready  # noqa: E402
from bench_instructions import send  # noqa: E402
from bench_wrk import CATALOG, SCENARIOS, Call, calls, nginx_path, write_answers  # noqa: E402

WARM_UP = 300

# Runs inside the server. It stays out of the way until the first SIGUSR1.
HOOK = """
import collections, json, os, signal, sys, threading

_counts = collections.Counter()
_callers = collections.Counter()
_watched = {}
for item in os.environ.get("APIPOD_OPCODES_CALLERS", "").split(","):
    if ":" in item:
        where, name = item.rsplit(":", 1)
        _watched.setdefault(name, []).append(where)
_on = False


def _local(frame, event, arg):
    if event == "opcode":
        _counts[frame.f_code] += 1
    return _local


def _global(frame, event, arg):
    frame.f_trace_opcodes = True
    code = frame.f_code
    if code.co_name in _watched and any(w in code.co_filename for w in _watched[code.co_name]):
        chain, back = [], frame.f_back
        while back is not None and len(chain) < 3:
            chain.append(f"{back.f_code.co_filename.rsplit('/', 1)[-1]}:{back.f_code.co_name}")
            back = back.f_back
        _callers[f"{code.co_filename.rsplit('/', 1)[-1]}:{code.co_name} <- {' < '.join(chain)}"] += 1
    return _local


def _toggle(signum, frame):
    global _on
    if not _on:
        _counts.clear()
        _callers.clear()
        _on = True
        sys.settrace(_global)
        threading.settrace(_global)
        return
    sys.settrace(None)
    threading.settrace(None)
    _on = False
    functions = collections.Counter()
    for code, count in _counts.items():
        functions[f"{code.co_filename}:{code.co_firstlineno}:{code.co_qualname}"] += count
    path = os.environ["APIPOD_OPCODES_OUT"]
    with open(path + ".part", "w") as out:
        json.dump({"functions": functions, "callers": _callers}, out)
    os.replace(path + ".part", path)


if os.environ.get("APIPOD_OPCODES_OUT"):
    signal.signal(signal.SIGUSR1, _toggle)
"""


def hooked_run(
    hook: str,
    out_var: str,
    scenario: str,
    drive: Callable[[int, Call, Path], None],
    database_url: str | None = None,
    **env: str,
) -> str:
    """``apipod serve`` on ``bench_wrk.py``'s stack with ``hook`` as its ``sitecustomize`` (``env`` beside it):
    a warm-up, a ``SIGUSR1``, ``drive(port, call, tmp)``, a second ``SIGUSR1``; returns what the hook wrote to
    the file named by the ``out_var`` setting. Shared with ``bench_timeline.py``."""
    nginx = nginx_path()
    if nginx is None:
        raise SystemExit("needs nginx (apt-get install nginx-light)")
    up, gw = free_port(), free_port()
    with tempfile.TemporaryDirectory() as name, contextlib.ExitStack() as stack:
        tmp = Path(name)
        (tmp / "hook").mkdir()
        (tmp / "hook" / "sitecustomize.py").write_text(hook)
        out = tmp / "hook-output.json"
        write_answers(tmp, up)
        upstream = stack.enter_context(running([nginx, "-c", str(tmp / "nginx.conf")]))
        path = os.pathsep.join(filter(None, [str(tmp / "hook"), os.environ.get("PYTHONPATH")]))
        settings = {"PYTHONPATH": path, out_var: str(out), **env}
        gateway = apipod(stack, tmp, CATALOG.format(port=up), gw, "1", database_url=database_url, **settings)
        wait_ready(f"http://127.0.0.1:{up}/plain/", [upstream, gateway])
        wait_ready(f"http://127.0.0.1:{gw}/health", [upstream, gateway])
        call = calls(create_key(f"http://127.0.0.1:{gw}"))[scenario]
        send(gw, call, WARM_UP)
        os.kill(gateway.pid, signal.SIGUSR1)
        time.sleep(0.2)
        drive(gw, call, tmp)
        os.kill(gateway.pid, signal.SIGUSR1)
        for _ in range(300):
            if out.exists():
                return out.read_text()
            time.sleep(0.1)
        raise SystemExit("the server wrote nothing")


def count(scenario: str, requests: int, callers: str, database_url: str | None) -> dict[str, dict[str, int]]:
    text = hooked_run(
        HOOK,
        "APIPOD_OPCODES_OUT",
        scenario,
        lambda port, call, _: send(port, call, requests),
        database_url,
        APIPOD_OPCODES_CALLERS=callers,
    )
    result: dict[str, dict[str, int]] = json.loads(text)
    return result


def package(where: str) -> str:
    """A function's place, cut to what a reader groups by: a library's name, apipod's module, the stdlib's."""
    if "site-packages/" in where:
        return where.split("site-packages/", 1)[1].split("/", 1)[0]
    if "/src/apipod/" in where:
        return "apipod/" + where.split("/src/apipod/", 1)[1]
    return "/".join(where.rsplit("/", 2)[-2:]) if "/" in where else where


def short(where: str) -> str:
    """A function's file, from its package down."""
    for marker in ("site-packages/", "/src/"):
        if marker in where:
            return where.split(marker, 1)[1]
    return "/".join(where.rsplit("/", 2)[-2:]) if "/" in where else where


def report(counts: dict[str, dict[str, int]], requests: int, top: int) -> None:
    functions = counts["functions"]
    print(f"opcodes per request: {sum(functions.values()) / requests:,.0f}")
    by_package: collections.Counter[str] = collections.Counter()
    for key, n in functions.items():
        by_package[package(key.split(":", 1)[0])] += n
    print("\nby package or module")
    for name, n in by_package.most_common(top):
        print(f"{n / requests:>9,.0f}  {name}")
    print("\nby function")
    for key, n in collections.Counter(functions).most_common(top):
        where, line, qualname = key.rsplit(":", 2)
        print(f"{n / requests:>9,.0f}  {short(where)}:{line} {qualname}")
    if counts["callers"]:
        print("\ncalls per request, by caller")
        for chain, n in collections.Counter(counts["callers"]).most_common(top):
            print(f"{n / requests:>9,.2f}  {chain}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default="request", choices=SCENARIOS)
    parser.add_argument("--requests", type=int, default=500, help="requests counted, after a warm-up")
    parser.add_argument("--top", type=int, default=40, help="rows per table")
    parser.add_argument("--callers", default="", help="file:function,... whose callers to list (parts of names)")
    parser.add_argument("--database-url", help=DATABASE_HELP)
    args = parser.parse_args()
    report(count(args.scenario, args.requests, args.callers, args.database_url), args.requests, args.top)


if __name__ == "__main__":
    main()
