"""Benchmark of the drill simulator: 200 runs of the street-level flood, 20 of the city-level typhoon.

Run as ``.venv/bin/python bench/bench_drill.py [--flood-runs N] [--typhoon-runs N] [--processes P]``.
Prints the wall time of each Monte Carlo (on all CPUs) with the CPU time all its processes used (on a
shared machine the wall time grows with other work, the CPU time much less: CPU ÷ processes is the wall
time the same processes would take with a CPU each), and where one process's time goes: building the
world and solving the key press once, then per run the backup searches (each a one-slot solve on the
candidates left after :mod:`scenarios.backups` drops the dominated ones, identical ones solved once per
process), the order state machine, branch repair and the rest of the event loop (measured on a few
runs in this process).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scenarios import (
    activation,
    backups,
    metrics,
    world,
)
from scenarios.model import load_scenario, shipped
from scenarios.montecarlo import run_many
from scenarios.simulator import Drill, prepare


def _timed(owner, name: str, acc: dict[str, float], label: str):
    fn = getattr(owner, name)

    def wrapper(*args, **kwargs):
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            acc[label] = acc.get(label, 0.0) + time.perf_counter() - t

    setattr(owner, name, wrapper)
    return fn


def _cpu() -> float:
    """Return the CPU seconds of this process and of its finished child processes (the pool's workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def breakdown(scenario, runs: int) -> dict[str, float]:
    """Return seconds per run spent in each part, measured on ``runs`` runs in this process."""
    acc: dict[str, float] = {}
    originals = [(activation, "solve", _timed(activation, "solve", acc, "solver (level changes, road cuts)")),
                 (activation, "solve_slot", _timed(activation, "solve_slot", acc, "backup searches (cut-down solves)")),
                 (activation, "apply", _timed(activation, "apply", acc, "order state machine")),
                 (activation.MemoryActivation, "settle",
                  _timed(activation.MemoryActivation, "settle", acc, "branch repair and formation")),
                 (metrics.Trace, "order", _timed(metrics.Trace, "order", acc, "metrics trace"))]
    Drill(scenario, 10_000).run()  # warm: the key-press solve is cached per process
    acc.clear()
    t = time.perf_counter()
    for k in range(runs):
        Drill(scenario, 10_000 + k).run()
    total = time.perf_counter() - t
    for owner, name, fn in originals:
        setattr(owner, name, fn)
    out = {k: v / runs for k, v in acc.items()}
    out["event loop, behaviour, bookkeeping"] = total / runs - sum(out.values())
    out["total per run"] = total / runs
    return out


def bench(name: str, runs: int, processes: int | None, sample: int) -> None:
    scenario = replace(load_scenario(shipped()[name]), variants=())
    t = time.perf_counter()
    world._CACHE.clear()  # the world keeps what runs derive from it (pools, streets)
    backups._COSTS.clear()
    backups._SOLVED.clear()
    w = prepare(scenario)
    built = time.perf_counter() - t
    t = time.perf_counter()
    Drill(scenario, 0).start()
    key_press = time.perf_counter() - t
    t, cpu = time.perf_counter(), _cpu()
    result = run_many(scenario, runs, 1, processes=processes)
    wall, cpu = time.perf_counter() - t, _cpu() - cpu
    a = result["variants"][0]["aggregate"]
    print(f"== {scenario.name}: {len(w.people):,} people, {a['slots']['mean']:,.0f} slots, "
          f"{result['runs']} runs on {result['processes']} processes")
    print(f"   wall {wall:.1f} s  ({wall / runs * 1000:.0f} ms per run; prepare {result['timing']['prepare_s']:.1f} s, "
          f"runs {result['timing']['runs_s']:.1f} s)")
    print(f"   CPU {cpu:.1f} s in all processes: {cpu / result['processes']:.1f} s per process, the wall time "
          f"of {result['processes']} processes with a CPU each (ratio wall/that {wall / (cpu / result['processes']):.2f})")
    print(f"   once per process: build the world {built:.2f} s, solve the key press {key_press:.2f} s")
    print(f"   held at the end {a['fill_rate']['mean'] * 100:.1f}%, arrived {a['arrive_rate']['mean'] * 100:.1f}%, "
          f"90% arrived (median) T+{a['time_to']['arrived']['90']['p50']}, "
          f"backup solves per run {a['counts'].get('backup_found', {}).get('mean', 0) + a['counts'].get('backup_none', {}).get('mean', 0):.0f}")
    print(f"   one process, per run (mean of {sample}):")
    for label, seconds in breakdown(scenario, sample).items():
        print(f"     {label:<38} {seconds * 1000:8.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flood-runs", type=int, default=200)
    parser.add_argument("--typhoon-runs", type=int, default=20)
    parser.add_argument("--processes", type=int, default=None)
    args = parser.parse_args()
    print(f"CPUs: {os.cpu_count()}, load average {os.getloadavg()[0]:.2f} (other work on the machine slows every figure)")
    bench("street_flood", args.flood_runs, args.processes, sample=10)
    if args.typhoon_runs:
        bench("city_typhoon", args.typhoon_runs, args.processes, sample=1)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
