"""The garbage collector's settings for a serving process.

A request frees what it builds by reference counting alone (``tests/unit/entrypoints/test_request_lifetime_garbage.py``
keeps it so), so a young-generation collection under load finds nothing to free. It still runs whenever
allocations outnumber deallocations by the first threshold, and CPython's default, 700, sits below what the
requests in flight hold at 16 connections: about 550 collections a second, 3–6 % of the process's CPU, each
one moving live requests into older generations for the next collections to scan again. 30,000 sits above
what 64 connections hold, so collections come back only when garbage really gathers; one then scans at most
that many objects (about 3 ms here, against the 20 ms the performance target allows a pause)."""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 30_000


def settle() -> tuple[int, int, int]:
    """At the end of start-up: collect once, move everything built so far (lives as long as the process) out
    of the collector's generations so full collections stay short, and raise the young threshold. Returns the
    thresholds it replaced, for ``restore``."""
    gc.collect()
    gc.freeze()
    # An empty young collection (nothing is left to scan after the freeze): what tells a ``gc.callbacks``
    # observer, the benchmarks' GcWatch (cli/gc_watch.py), that start-up is over, even in a run that never
    # collects again.
    gc.collect(0)
    previous = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, previous[1], previous[2])
    return previous


def restore(previous: tuple[int, int, int]) -> None:
    """At shutdown, for a process that goes on after the app (a test run): the thresholds from before
    ``settle``, and what it froze back in the collector's care."""
    gc.set_threshold(*previous)
    gc.unfreeze()
