"""Many seeded runs (Monte Carlo), in parallel processes, and the statistics across them.

Run ``k`` of a drill seeded ``S`` uses seed ``S + k`` whatever the number of processes, so the same
seed gives the same numbers on any machine; each variant of a comparison runs on the same seeds (and,
through per-person random streams, meets the same people behaving the same way).

Where the time goes: a process builds the roster's world and solves the key press once (the same
inputs give the same optimum, so later runs reuse it); each run then replays the answers, escalations
and backup searches. On Linux the world is built in the parent before forking, so workers share it.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from rosters.vocabulary import load_skills, load_workgroups
from scenarios.metrics import aggregate, stats
from scenarios.model import Scenario, Variant, default_plans
from scenarios.simulator import Drill, prepare

__all__ = ["compare_runs", "run_many"]

_SCENARIO: Scenario | None = None  # the scenario a forked worker inherits


def _one(task: tuple[int, int]) -> tuple[int, int, dict[str, Any]]:
    v, seed = task
    scenario = _SCENARIO
    variants = (scenario.baseline, *scenario.variants)
    return v, seed, Drill(scenario, seed, variants[v]).run()


def _init(scenario: Scenario) -> None:
    global _SCENARIO
    _SCENARIO = scenario


def run_many(scenario: Scenario, runs: int, seed: int = 1, *, processes: int | None = None,
             progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Return every run's metrics and the statistics across runs, per variant (the baseline first).

    ``progress(done, total)`` is called after each run. ``processes`` defaults to the CPU count;
    1 runs everything in this process.
    """
    global _SCENARIO
    started = time.perf_counter()
    variants: tuple[Variant, ...] = (scenario.baseline, *scenario.variants)
    for v in variants:
        prepare(scenario, v)
    _SCENARIO = scenario
    tasks = [(v, seed + k) for v in range(len(variants)) for k in range(runs)]
    processes = max(1, min(processes or os.cpu_count() or 1, len(tasks)))
    # Warm each variant's key-press solve here, so forked workers inherit it instead of each solving it.
    if processes > 1:
        for v in range(len(variants)):
            Drill(scenario, seed, variants[v]).start()
    prepared = time.perf_counter()
    results: dict[tuple[int, int], dict[str, Any]] = {}
    done = 0
    if processes == 1:
        for task in tasks:
            v, s, summary = _one(task)
            results[(v, s)] = summary
            done += 1
            if progress:
                progress(done, len(tasks))
    else:
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        context = multiprocessing.get_context(method)
        with ProcessPoolExecutor(processes, mp_context=context, initializer=_init, initargs=(scenario,)) as pool:
            # Small chunks: a run takes a fraction of a second, so a large last chunk would leave a CPU idle
            # at the end while the other finishes it.
            for v, s, summary in pool.map(_one, tasks, chunksize=max(1, len(tasks) // (processes * 32))):
                results[(v, s)] = summary
                done += 1
                if progress:
                    progress(done, len(tasks))
    finished = time.perf_counter()
    out_variants = []
    for v, variant in enumerate(variants):
        per_run = [results[(v, seed + k)] for k in range(runs)]
        out_variants.append({"name": variant.name, "roster": variant.roster.label(),
                             "borrowing": variant.policy.borrowing,
                             "deadlines": {"acknowledge": dict(variant.policy.acknowledge),
                                           "arrive": dict(variant.policy.arrive)},
                             "runs": per_run, "aggregate": aggregate(per_run)})
    return {"scenario": _describe(scenario), "names": _names(scenario), "seed": seed, "runs": runs, "processes": processes,
            "variants": out_variants, "comparisons": compare_runs(out_variants),
            "timing": {"prepare_s": round(prepared - started, 3), "runs_s": round(finished - prepared, 3),
                       "total_s": round(finished - started, 3)}}


def _names(s: Scenario) -> dict[str, Any]:
    """Return the Chinese names the report shows: scope, hazard, communities, skills, wartime groups."""
    world = prepare(s)
    plan = default_plans()[s.hazard]
    return {"scope": world.units[s.scope][2], "hazard": f"{plan.zh} {plan.en}",
            "communities": {c: world.units[c][2] for c in world.communities_under(s.scope)},
            "skills": {k.code: k.zh for k in load_skills().skills},
            "groups": {g.code: f"{g.zh} {g.en}" for g in load_workgroups().wartime}}


def _describe(s: Scenario) -> dict[str, Any]:
    return {"name": s.name, "description": s.description, "file": s.file, "scope": s.scope, "hazard": s.hazard,
            "level": s.level, "start": s.start.isoformat(" ", "minutes"), "end": s.end,
            "injects": [{"at": i.at, "type": type(i).__name__, **{k: getattr(i, k) for k in i.__slots__
                                                                 if k not in ("at", "line")}} for i in s.injects]}


_PAIRED = (("到岗90%用时 minutes to 90% arrived", lambda r: r["time_to"]["arrived"]["90"]),
           ("最终到岗 arrived at the end", lambda r: r["arrived"]),
           ("最终派单 slots held at the end", lambda r: r["assigned"]),
           ("跨社区借调 people borrowed", lambda r: r["counts"].get("borrowed", 0)),
           ("超时升级 escalations", lambda r: r["counts"].get("escalated_ack", 0) + r["counts"].get("escalated_arrive", 0)),
           ("改派 reassignments", lambda r: r["counts"].get("reassigned", 0)))


def compare_runs(variants: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return, per variant after the baseline, the paired difference (variant − baseline) on each seed."""
    if len(variants) < 2:
        return []
    base = variants[0]["runs"]
    out = []
    for other in variants[1:]:
        rows = {}
        for label, get in _PAIRED:
            diffs = []
            for a, b in zip(base, other["runs"]):
                x, y = get(a), get(b)
                diffs.append(None if x is None or y is None else y - x)
            rows[label] = {"baseline": stats([get(a) for a in base]), "variant": stats([get(b) for b in other["runs"]]),
                           "difference": stats(diffs)}
        out.append({"name": other["name"], "metrics": rows})
    return out
