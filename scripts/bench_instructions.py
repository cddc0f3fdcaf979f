"""apipod's cost per request in CPU instructions, beside the bare forwarder's: a figure the machine's mood
cannot move.

``bench_wrk.py`` measures CPU time, which moves by ±20 % from run to run on a shared machine and by 2-3x
between its fast and slow days; a change worth 3 % cannot be seen there. Here both servers run under
valgrind's callgrind, which counts the instructions each executes (user space; the kernel's share of a
request, its system calls, is not counted). The same stack as ``bench_wrk.py``: nginx serves the
upstream's answers, ``apipod serve`` runs on SQLite with the benchmark plan (key auth, routing, quota,
usage rows), ``bench_forwarder.py`` beside it. The client (outside valgrind) sends requests one after the
other on one keep-alive connection. Counting is switched on (``callgrind_control``) for a run of ``small``
requests and again for ``small + requests``; the difference, divided by ``requests``, leaves out start-up,
the warm-up and whatever a run costs once.

Instructions are not time: a cache miss costs the same count as a hit, and apipod touches more memory per
request than the forwarder, so its CPU-time ratio runs higher than its instruction ratio. And under valgrind
a request takes ~50 times as long, so what runs on a clock rather than per request (the usage rows gathered
for 50 ms, the WAL checkpoint every 0.1 s) would run as if the load were ~50 requests a second: fewer rows per
transaction than at full speed, and a different number of them from run to run. ``--dilate`` (default 50)
stretches those intervals by as much. Compare builds with this, not with other gateways.

Needs valgrind (``callgrind_control`` comes with it), nginx and wrk's scenarios from ``bench_wrk.py``.
Run: .venv/bin/python scripts/bench_instructions.py [--scenario request,stream] [--target apipod,forwarder]
       [--requests 200] [--dilate 50] [--keep DIR]
``--keep DIR`` leaves each run's callgrind file in ``DIR`` (``callgrind_annotate DIR/apipod-request.callgrind``
shows which C functions the instructions went to: the interpreter's loop, allocation, SQLite, httptools).
Takes about half a minute per scenario and target.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

# the script directory is not a package
from bench_common import DATABASE_HELP, apipod, create_key, free_port, running, wait_ready  # noqa: E402
from bench_wrk import (  # noqa: E402
    CATALOG,
    FORWARDER,
    SCENARIOS,
    TRANSLATED,
    Call,
    calls,
    forwarded,
    names,
    nginx_path,
    write_answers,
)

TARGETS = ("apipod", "forwarder")  # the servers counted under valgrind (nginx is not)

WARM_UP = 30

# Runs in ``apipod serve`` before it starts: what runs on a clock runs ``factor`` times less often, as much less
# as valgrind slows each request down. Usage rows then go in batches of the size they have at full speed, and a
# run counts a few large batches rather than a varying number of small ones. A name that no longer exists
# stops the run here rather than measure something else.
DILATE = """
from apipod.adapters.sqlite.checkpointer import WalCheckpointer
from apipod.adapters.sqlite.usage import SqliteUsageLog

for _init, _name in ((SqliteUsageLog.__init__, "gather_seconds"), (WalCheckpointer.__init__, "interval")):
    _init.__kwdefaults__[_name] *= {factor}
"""
_TOTALS = re.compile(rb"^totals:\s+(\d+)", re.MULTILINE)


class Counted:
    """One server under callgrind: counting on and off around a run of requests, and the count read back.

    valgrind names the pipe ``callgrind_control`` talks through after the ``HOST`` variable of the process
    (``apipod serve`` is given one), so ``callgrind_control`` runs with the same ``HOST``."""

    def __init__(self, pid: int, out: Path, host: str | None) -> None:
        self.pid = pid
        self._out = out
        self._env = {k: v for k, v in os.environ.items() if k != "HOST"} | ({"HOST": host} if host else {})
        self.last_dump: Path | None = None

    def _control(self, *args: str) -> None:
        subprocess.run(["callgrind_control", *args, str(self.pid)], env=self._env, check=True, capture_output=True)

    def count(self, port: int, call: Call, requests: int) -> int:
        """The instructions ``requests`` requests took, counted from zero."""
        send(port, call, WARM_UP)
        self._control("--zero")
        self._control("--instr=on")
        send(port, call, requests)
        self._control("--instr=off")
        dumps = set(self._out.parent.glob(f"{self._out.name}*"))
        self._control("--dump")
        for _ in range(200):  # the dump is written by the process itself, a moment later
            new = set(self._out.parent.glob(f"{self._out.name}*")) - dumps
            found = [(_TOTALS.search(path.read_bytes()), path) for path in new if path.stat().st_size]
            if found and found[0][0] is not None:
                self.last_dump = found[0][1]
                return int(found[0][0].group(1))
            time.sleep(0.1)
        raise SystemExit(f"callgrind wrote no dump for pid {self.pid}")


def send(port: int, call: Call, requests: int) -> None:
    """``requests`` calls one after the other on one keep-alive connection; any answer but 200 stops the run."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    body = call.body.encode()
    try:
        for _ in range(requests):
            connection.request("POST", call.path, body=body, headers=call.headers)
            answer = connection.getresponse()
            data = answer.read()
            if answer.status != 200:
                raise SystemExit(f"{call.path} answered {answer.status}: {data[:300]!r}")
    finally:
        connection.close()


def per_request(server: Counted, port: int, call: Call, requests: int, small: int) -> float:
    shorter = server.count(port, call, small)
    return (server.count(port, call, small + requests) - shorter) / requests  # the longer run's file is kept


def grind(tmp: Path, name: str) -> list[str]:
    return ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={tmp / name}"]


def run(
    scenarios: Sequence[str],
    targets: Sequence[str],
    requests: int,
    small: int,
    keep: Path | None,
    dilate: float,
    database_url: str | None = None,
) -> None:
    nginx = nginx_path()
    if nginx is None or shutil.which("callgrind_control") is None:
        raise SystemExit("needs nginx and valgrind (apt-get install nginx-light valgrind)")
    up, gw, fw = free_port(), free_port(), free_port()
    with tempfile.TemporaryDirectory() as name, contextlib.ExitStack() as stack:
        tmp = Path(name)
        write_answers(tmp, up)
        upstream = stack.enter_context(running([nginx, "-c", str(tmp / "nginx.conf")]))
        dilated = tmp / "dilated"
        dilated.mkdir()
        (dilated / "sitecustomize.py").write_text(DILATE.format(factor=dilate))
        path = os.pathsep.join([str(dilated), *filter(None, [os.environ.get("PYTHONPATH")])])
        gateway = apipod(
            stack,
            tmp,
            CATALOG.format(port=up),
            gw,
            "1",
            prefix=grind(tmp, "apipod.out"),
            database_url=database_url,
            PYTHONPATH=path,
        )
        forwarder_command = [*grind(tmp, "forwarder.out"), sys.executable, str(FORWARDER), str(fw)]
        forwarder = stack.enter_context(running([*forwarder_command, f"http://127.0.0.1:{up}"]))
        processes = [upstream, gateway, forwarder]
        wait_ready(f"http://127.0.0.1:{up}/plain/", processes)
        for url in (f"http://127.0.0.1:{gw}/health", f"http://127.0.0.1:{fw}/plain/v1/chat/completions"):
            wait_ready(url, processes, attempts=3000)  # start-up under valgrind takes a minute or so
        key = create_key(f"http://127.0.0.1:{gw}")
        servers = {
            "apipod": (Counted(gateway.pid, tmp / "apipod.out", "127.0.0.1"), gw),
            "forwarder": (Counted(forwarder.pid, tmp / "forwarder.out", None), fw),
        }
        print(f"instructions per request (callgrind), {requests} requests after {small}, one connection", flush=True)
        for scenario in scenarios:
            counts: dict[str, float] = {}
            for target in targets:
                if target == "forwarder" and scenario in TRANSLATED:
                    continue  # the forwarder does not translate
                server, port = servers[target]
                call = calls(key)[scenario] if target == "apipod" else forwarded(scenario)
                counts[target] = per_request(server, port, call, requests, small)
                print(f"{target + ' ' + scenario:<34} {counts[target]:>12,.0f}", flush=True)
                if keep is not None and server.last_dump is not None:
                    keep.mkdir(parents=True, exist_ok=True)
                    shutil.copy(server.last_dump, keep / f"{target}-{scenario}.callgrind")
            if len(counts) == 2:
                print(f"{'ratio ' + scenario:<34} {counts['apipod'] / counts['forwarder']:>12.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default="request,stream")
    parser.add_argument("--target", default=",".join(TARGETS))
    parser.add_argument("--requests", type=int, default=200, help="requests counted (the difference of two runs)")
    parser.add_argument("--small", type=int, default=50, help="the shorter run's requests")
    parser.add_argument(
        "--keep", type=Path, help="copy each longer run's callgrind file here, for callgrind_annotate (where in C)"
    )
    parser.add_argument(
        "--dilate",
        type=float,
        default=50.0,
        help="stretch apipod's clock-driven work (usage batches, WAL checkpoints) by this factor: valgrind's slowdown",
    )
    parser.add_argument("--database-url", help=DATABASE_HELP)
    args = parser.parse_args()
    scenarios, targets = names(args.scenario, SCENARIOS), names(args.target, TARGETS)
    run(scenarios, targets, args.requests, args.small, args.keep, args.dilate, args.database_url)


if __name__ == "__main__":
    main()
