"""The benchmark's garbage-collector report (APIPOD_GC_REPORT)."""

from __future__ import annotations

import asyncio
import gc
import json
import subprocess
import sys
import time
from pathlib import Path

from apipod.entrypoints.cli.gc_watch import GcWatch, LoopStalls
from apipod.entrypoints.http.collector import restore, settle


def test_every_collection_after_start_up_is_counted_by_generation_with_its_pause() -> None:
    watch = GcWatch()
    gc.callbacks.append(watch)
    try:
        gc.collect(2)  # start-up (nothing frozen yet): not counted
        assert watch.collections == [0, 0, 0]
        gc.freeze()
        gc.collect(0)  # settle()'s empty collection, which ends start-up: not counted either
        assert watch.collections == [0, 0, 0]
        gc.collect(0)
        cycle: list[object] = []
        cycle.append(cycle)
        del cycle
        gc.collect(2)
    finally:
        gc.callbacks.remove(watch)
        gc.unfreeze()

    report = watch.report()
    assert report["collections"][0] >= 1 and report["collections"][2] >= 1
    assert report["longest_pause_ms"][2] > 0
    assert report["total_pause_ms"] >= report["longest_pause_ms"][2] - 0.1
    assert report["peak_rss_mb"] > 10
    assert report["objects_collected"] >= 1  # the cycle


def test_the_report_is_written_when_the_process_exits(tmp_path: Path) -> None:
    template = str(tmp_path / "gc-{pid}.json")
    code = (
        "import gc; from apipod.entrypoints.cli.gc_watch import watch_gc; "
        f"watch_gc({template!r}); gc.freeze(); gc.collect(0); gc.collect()"
    )

    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)

    (written,) = tmp_path.glob("gc-*.json")
    report = json.loads(written.read_text())
    assert report["collections"][2] >= 1
    assert written.name == f"gc-{report['pid']}.json"


async def test_the_loop_is_timed_from_the_end_of_start_up_even_if_nothing_is_collected_after() -> None:
    """A run whose requests leave no garbage never collects: the loop's stalls must be timed all the same."""
    watch = GcWatch()
    gc.callbacks.append(watch)
    try:
        previous = settle()
        try:
            time.sleep(0.06)  # the loop held
            await asyncio.sleep(0.02)
        finally:
            restore(previous)
    finally:
        gc.callbacks.remove(watch)
    assert watch.collections == [0, 0, 0]
    assert watch.stalls.longest_ms >= 20
    assert watch.stalls.over_20ms >= 1


async def test_the_loop_probe_reports_how_long_the_loop_was_held() -> None:
    stalls = LoopStalls()
    stalls.start_here()
    await asyncio.sleep(0.03)
    assert stalls.ticks >= 1
    time.sleep(0.12)  # one piece of work holding the loop
    await asyncio.sleep(0.02)
    assert stalls.longest_ms >= 100
    assert stalls.over_20ms >= 1
    assert stalls.over_100ms >= 1


def test_the_loop_probe_does_not_start_off_a_loop() -> None:
    stalls = LoopStalls()
    stalls.start_here()
    assert stalls.loop is None
