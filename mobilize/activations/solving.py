"""How an activation or a level change runs its solve: off the event loop, timed by phase, without GC pauses."""

from __future__ import annotations

import asyncio
import gc
import time
from contextlib import contextmanager

from mobilize.activations import records
from mobilize.solver import Solution, solve

__all__ = ["Phases", "gc_paused", "solve_and_encode"]

_gc_pauses = 0
_gc_was_enabled = True


@contextmanager
def gc_paused():
    """Pause Python's cyclic garbage collector while an activation builds its rows.

    A city's activation makes hundreds of thousands of objects (candidates, rows, events), every one
    freed by reference counting, and each full collection they trigger walks every live object of the
    process: with the collector on, a fifth of the activation went to it. Pauses may nest and overlap
    (two requests on one event loop): the collector comes back when the last one ends, if it was on
    when the first began.
    """
    global _gc_pauses, _gc_was_enabled
    if _gc_pauses == 0:
        _gc_was_enabled = gc.isenabled()
        gc.disable()
    _gc_pauses += 1
    try:
        yield
    finally:
        _gc_pauses -= 1
        if _gc_pauses == 0 and _gc_was_enabled:
            gc.enable()


class Phases:
    """Wall milliseconds spent in each phase of a request, for its summary (``phases_ms``)."""

    def __init__(self, started: float):
        self.last = started
        self.ms: dict[str, float] = {}
        self.solver_ms = 0.0  # the solver's own time, within the "solve" phase

    def mark(self, name: str) -> None:
        """Charge the time since the previous mark to ``name``."""
        now = time.perf_counter()
        self.add(name, (now - self.last) * 1000)
        self.last = now

    def add(self, name: str, ms: float) -> None:
        self.ms[name] = round(self.ms.get(name, 0.0) + ms, 1)


async def solve_and_encode(phases: Phases, candidates, demands, policy) -> tuple[Solution, bytes]:
    """Return the solution and its record (gzip JSON), computed off the event loop.

    The record is encoded in the same thread right after the solve: beside the solve or the
    writes it would only contend for the GIL with them (Python threads, one core's worth).
    """
    def run() -> tuple[Solution, bytes]:
        t = time.perf_counter()
        solution = solve(candidates, demands, policy)
        solution.assignments  # noqa: B018 - built here, not on the event loop
        t1 = time.perf_counter()
        record = records.encode_solve(records.encode_inputs(candidates, demands, policy), solution)
        phases.solver_ms = (t1 - t) * 1000
        phases.add("record", (time.perf_counter() - t1) * 1000)
        return solution, record

    solution, record = await asyncio.to_thread(run)
    phases.mark("solve")
    phases.add("solve", -phases.ms["record"])
    return solution, record
