"""Check an activation's audit file with a solver of its own: feasible, objective right, nothing cheaper.

Run: ``python bench/check_audit.py problem.json`` (from ``mobilize activate ... --export-problem`` or
``GET /api/v1/activations/{id}/problem``), or ``python bench/check_audit.py --city`` to build the demo city,
activate it city-wide and check that. Reads nothing of mobilize's solver: the flow network is built
here from the JSON alone (source → person → slot → sink, plus an "unfilled" arc per slot) and solved
with OR-tools' min-cost flow.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path


def check(problem: dict) -> tuple[int, int]:
    """Return (claimed objective, optimum); raise AssertionError when the assignment is infeasible or wrong."""
    from ortools.graph.python import min_cost_flow

    people = {str(p): i for i, p in enumerate(problem["people"])}
    slots = {s["post"]: j for j, s in enumerate(problem["slots"])}
    cost = {(str(p), s): c for p, s, c in problem["edges"]}
    # feasibility of the claimed assignment
    seen = Counter(str(p) for p, _ in problem["assignment"])
    assert all(n == 1 for n in seen.values()), "a person holds two slots"
    filled = Counter(s for _, s in problem["assignment"])
    for s in problem["slots"]:
        assert filled[s["post"]] <= s["capacity"], f"slot {s['post']} over capacity"
    for p, s in problem["assignment"]:
        assert (str(p), s) in cost, f"{p} → {s} is not an edge"
    claimed = sum(cost[(str(p), s)] for p, s in problem["assignment"]) + sum(
        (s["capacity"] - filled[s["post"]]) * s["unfilled_cost"] for s in problem["slots"])
    assert claimed == problem["objective"], f"objective {problem['objective']} but the assignment costs {claimed}"

    # independent optimum: every slot unit flows to the sink either through a person or through "unfilled"
    n_people, n_slots = len(people), len(slots)
    source, unfilled, sink = n_people + n_slots, n_people + n_slots + 1, n_people + n_slots + 2
    flow = min_cost_flow.SimpleMinCostFlow()
    total = sum(s["capacity"] for s in problem["slots"])
    for i in range(n_people):
        flow.add_arc_with_capacity_and_unit_cost(source, i, 1, 0)
    flow.add_arc_with_capacity_and_unit_cost(source, unfilled, total, 0)
    for (p, s), c in cost.items():
        if p in people:
            flow.add_arc_with_capacity_and_unit_cost(people[p], n_people + slots[s], 1, c)
    for s in problem["slots"]:
        j = n_people + slots[s["post"]]
        flow.add_arc_with_capacity_and_unit_cost(unfilled, j, s["capacity"], s["unfilled_cost"])
        flow.add_arc_with_capacity_and_unit_cost(j, sink, s["capacity"], 0)
    flow.set_node_supply(source, total)
    flow.set_node_supply(sink, -total)
    status = flow.solve()
    assert status == flow.OPTIMAL, f"OR-tools status {status}"
    return claimed, flow.optimal_cost()


def _city_problem() -> dict:
    import asyncio
    import tempfile
    from datetime import date, datetime

    from mobilize.activations.queries import problem_export
    from mobilize.activations.service import ActivateRequest, activate
    from mobilize.db import begin_write, create_engine, create_sessionmaker, session_scope
    from mobilize.migrate import upgrade
    from mobilize.plans import load_plans
    from rosters.demo import generate_city
    from rosters.loader import load_roster
    from rosters.vocabulary import load_skills, load_workgroups

    async def main() -> dict:
        tmp = tempfile.mkdtemp()
        engine = create_engine(f"sqlite+aiosqlite:///{tmp}/city.db")
        await upgrade(engine)
        maker = create_sessionmaker(engine)
        roster = generate_city("city", 1, today=date(2026, 11, 21))
        async with session_scope(maker) as s:
            await load_roster(s, roster, workgroups=load_workgroups())
        plans = load_plans(skills=load_skills(), workgroups=load_workgroups())
        async with session_scope(maker) as s:
            await begin_write(s)
            act, _ = await activate(s, ActivateRequest(roster.units[0].code, "flood", "I"), plans=plans,
                                    at=datetime(2026, 11, 23, 10, 0))
        async with session_scope(maker) as s:
            problem = await problem_export(s, act.id)
        await engine.dispose()
        return problem

    return asyncio.run(main())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("file", nargs="?", type=Path)
    parser.add_argument("--city", action="store_true", help="activate the demo city (44,000 people) and check it")
    args = parser.parse_args()
    if not args.file and not args.city:
        parser.error("give a problem file or --city")
    started = time.perf_counter()
    problem = _city_problem() if args.city else json.loads(args.file.read_text(encoding="utf-8"))
    print(f"problem: {len(problem['people'])} people, {len(problem['slots'])} slot groups, "
          f"{sum(s['capacity'] for s in problem['slots'])} slots, {len(problem['edges'])} edges, "
          f"{len(problem['assignment'])} assigned ({time.perf_counter() - started:.1f} s to get it)")
    started = time.perf_counter()
    claimed, optimum = check(problem)
    print(f"claimed objective {claimed:,}; independent optimum {optimum:,} ({time.perf_counter() - started:.1f} s)")
    if optimum < claimed:
        print("NOT OPTIMAL: the independent solver found a cheaper assignment")
        return 1
    print("optimal: no cheaper assignment exists")
    return 0


if __name__ == "__main__":
    sys.exit(main())
