"""What the garbage collector cost a serving process, for the benchmarks: ``APIPOD_GC_REPORT=/path/gc-{pid}.json``
makes ``apipod serve`` (each worker) time every collection through ``gc.callbacks`` and write, at exit, the
collections per generation, the longest and the total pause, the pauses over 20 ms, and the peak RSS. Only
collections after start-up count (after ``entrypoints/http/collector.settle()``, which ends it).

It also times the event loop itself (``LoopStalls``): how late a 10 ms timer fires is how long the loop was
busy with other work in one go. A long request tail with short stalls is requests waiting their turn in a
busy loop (queueing); long stalls are one piece of work holding everything up (a pause, a blocking call).

Off unless asked: a callback on every collection is cheap but not free, and the figures are for a bench run."""

from __future__ import annotations

import asyncio
import atexit
import gc
import json
import os
import resource
import time
from pathlib import Path
from typing import Any

LONG_PAUSE_MS = 20.0  # the performance target's limit on one pause
STALL_TICK = 0.01  # the loop probe's period (seconds)


class LoopStalls:
    """How late a periodic timer fires on the event loop: the loop's longest stretches of work."""

    __slots__ = ("_due", "longest_ms", "loop", "over_20ms", "over_100ms", "ticks")

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self._due = 0.0
        self.ticks = 0
        self.longest_ms = 0.0
        self.over_20ms = 0
        self.over_100ms = 0

    def start_here(self) -> None:
        """Start timing the loop this thread runs; nothing when it runs none (an executor's thread)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self.loop = loop
        self._due = loop.time() + STALL_TICK
        loop.call_at(self._due, self._tick)

    def _tick(self) -> None:
        assert self.loop is not None
        now = self.loop.time()
        late = (now - self._due) * 1000
        self.ticks += 1
        self.longest_ms = max(self.longest_ms, late)
        self.over_20ms += late > LONG_PAUSE_MS
        self.over_100ms += late > 100
        self._due = now + STALL_TICK
        self.loop.call_at(self._due, self._tick)


class GcWatch:
    __slots__ = (
        "_serving",
        "_skip",
        "_started",
        "collected",
        "collections",
        "long_pauses",
        "longest_ms",
        "stalls",
        "total_ms",
    )

    def __init__(self) -> None:
        self._started = 0.0
        self._serving = False
        self._skip = False
        self.stalls = LoopStalls()
        self.collections = [0, 0, 0]
        self.longest_ms = [0.0, 0.0, 0.0]
        self.total_ms = 0.0
        self.long_pauses = 0
        self.collected = 0  # unreachable objects freed: what reference cycles left behind

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if not self._serving:
            # Start-up: its one full collection precedes the freeze (http/collector.py) and is not load. Asked only
            # until the freeze: gc.get_freeze_count() walks the whole frozen generation. The first collection after
            # the freeze is settle()'s empty one, which marks the end of start-up: the loop is timed from here on,
            # and that collection is not counted.
            if phase != "start" or gc.get_freeze_count() == 0:
                return
            self._serving = True
            self._skip = True
            self.stalls.start_here()
            return
        if self._skip:
            self._skip = phase != "stop"
            return
        if self.stalls.loop is None:
            self.stalls.start_here()
        if phase == "start":
            self._started = time.perf_counter()
            return
        pause = (time.perf_counter() - self._started) * 1000
        generation = min(int(info.get("generation", 0)), 2)
        self.collections[generation] += 1
        self.longest_ms[generation] = max(self.longest_ms[generation], pause)
        self.total_ms += pause
        self.collected += int(info.get("collected", 0))
        if pause > LONG_PAUSE_MS:
            self.long_pauses += 1

    def report(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "collections": self.collections,
            "longest_pause_ms": [round(ms, 3) for ms in self.longest_ms],
            "total_pause_ms": round(self.total_ms, 1),
            "pauses_over_20ms": self.long_pauses,
            "objects_collected": self.collected,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),  # KiB on Linux
            "loop_stall_longest_ms": round(self.stalls.longest_ms, 1),
            "loop_stalls_over_20ms": self.stalls.over_20ms,
            "loop_stalls_over_100ms": self.stalls.over_100ms,
        }


def watch_gc(template: str) -> GcWatch:
    """Start timing collections; the report goes to ``template`` (``{pid}`` replaced) when the process exits."""
    watch = GcWatch()
    gc.callbacks.append(watch)
    path = Path(template.replace("{pid}", str(os.getpid())))
    atexit.register(lambda: path.write_text(json.dumps(watch.report()) + "\n"))
    return watch
