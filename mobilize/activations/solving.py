"""How an activation or a level change runs its solve: off the event loop, timed by phase, without GC pauses,
and its other CPU work beside the writes."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from mobilize.activations import records, writes
from mobilize.branches import BranchPlan, Member, form_branches
from mobilize.solver import Solution, solve

__all__ = ["Phases", "gc_paused", "BackgroundWork", "solve_in_background", "solve_and_place_posts",
           "record_and_branches"]

T = TypeVar("T")
log = logging.getLogger(__name__)

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


def _seen(future: asyncio.Future) -> None:
    # read the error, so asyncio never reports it as "never retrieved"; the request that awaits it raises it
    if not future.cancelled() and future.exception() is not None:
        log.debug("background work failed", exc_info=future.exception())


class BackgroundWork:
    """CPU work a request runs in worker threads beside its transaction (:meth:`start`).

    For work that can run while the transaction writes: the driver's thread steps SQLite without the
    GIL, so Python work in another thread overlaps one long statement (the orders' ``INSERT …
    SELECT``, the posts beside the solver). Start it just before such a statement, not before short
    ones or an executemany: each round trip, and an executemany's every row, takes the GIL back and
    waits on the worker to let go of it (up to the 5 ms switch interval each time). When the request
    fails, :meth:`settle` waits for what is still running before the error goes on: no orphan keeps
    the CPU from a retry, and the paused collector (:func:`gc_paused`) comes back after it.
    """

    def __init__(self) -> None:
        self.futures: list[asyncio.Future] = []

    def start(self, work: Callable[[], T]) -> asyncio.Future[T]:
        """Start ``work()`` in a worker thread and return its future, to await where its result is needed."""
        future = asyncio.ensure_future(asyncio.to_thread(work))
        future.add_done_callback(_seen)
        self.futures.append(future)
        return future

    async def settle(self) -> None:
        """Wait until every started piece of work has ended (its result or error left unread)."""
        pending = [f for f in self.futures if not f.done()]
        if pending:
            await asyncio.wait(pending)


def solve_in_background(work: BackgroundWork, phases: Phases, candidates, demands,
                        policy) -> asyncio.Future[Solution]:
    """Start the solve (its assignments built too) in a worker thread; return its future.

    The caller writes meanwhile what needs no solution (the posts), in single statements only (see
    :class:`BackgroundWork`), and marks the ``solve`` phase when it has the solution.
    """
    def run() -> Solution:
        t = time.perf_counter()
        solution = solve(candidates, demands, policy)
        solution.assignments  # noqa: B018 - built here, not on the event loop
        phases.solver_ms = (time.perf_counter() - t) * 1000
        return solution

    return work.start(run)


async def solve_and_place_posts(session: AsyncSession, work: BackgroundWork, phases: Phases, candidates, demands,
                                policy, *, write_posts: Callable[[dict[str, int] | None], Awaitable[dict[str, int]]],
                                holders: Callable[[Solution], dict[str, int]]) -> tuple[Solution, dict[str, int]]:
    """Return the solution and the posts' ids by key, the posts written by ``write_posts`` beside the solve.

    On SQLite (:func:`~mobilize.activations.writes.posts_beside_solver`) ``write_posts(None)`` runs while the
    solver does, and the holder counts ``holders(solution)`` (post key -> count) are set once it is done;
    elsewhere ``write_posts(counts)`` runs after the solve. Marks the ``posts`` and ``solve`` phases.
    """
    beside = await writes.posts_beside_solver(session)
    solving = solve_in_background(work, phases, candidates, demands, policy)
    if beside:
        post_ids = await write_posts(None)
        phases.mark("posts")
    solution = await solving
    phases.mark("solve")
    counts = holders(solution)
    if beside:
        await writes.set_filled(session, {post_ids[key]: n for key, n in counts.items()})
    else:
        post_ids = await write_posts(counts)
        phases.mark("posts")
    return solution, post_ids


def record_and_branches(work: BackgroundWork, candidates, demands, policy, solution: Solution,
                        members: Callable[[], list[Member]]) -> tuple[asyncio.Future[bytes], asyncio.Future[BranchPlan]]:
    """Start encoding the solve's record (gzip JSON, :mod:`~mobilize.activations.records`) and forming the branches
    of ``members()`` in worker threads; await each where it is saved. Start them just before the orders' insert."""
    return (work.start(lambda: records.encode_solve(records.encode_inputs(candidates, demands, policy), solution)),
            work.start(lambda: form_branches(members())))
