"""Fewer people in a backup search, with an optimum of the same cost: dominated candidates left out.

A backup search (``dispatch.find_backup``) solves one slot. A person's edge cost to that one slot
(travel, leaving a pre-assignment, borrowing, fairness) depends only on the person and the slot,
except for a squad member, who pays ``squad_split`` more when the squad's anchor is not this post
(the anchor depends on which of the squad's members are in the problem). So with ``best`` the
cheapest edge of a candidate in no squad, no one costing more than ``best`` can win, and:

* of the people in no squad, only those costing exactly ``best`` stay (all of them, when tied);
* a squad stays whole (so its anchor is unchanged) when one of its members could cost ``best`` or less
  (its cost without the split); a squad that cannot is left out whole.

:func:`mobilize.solver.solve` still decides on what is left, and its optimum costs the same as on the
full list; among equally cheap candidates it may pick another one than on the full list. The costs
come from the solver's own :func:`mobilize.blocks.edge_costs`, computed once per slot and process
for the whole street.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mobilize.blocks import edge_costs
from mobilize.costs import Arrays, CostPolicy, Person, Post
from mobilize.solver import Assignment, solve

__all__ = ["cheapest", "solve_slot"]

_COSTS: dict[tuple, dict[int, int]] = {}


def _costs(key: tuple, people: Sequence[Person], street: Sequence[int], demand: Post,
           policy: CostPolicy) -> dict[int, int]:
    """Return person index → edge cost to ``demand`` without any squad split (-1: no edge)."""
    costs = _COSTS.get(key)
    if costs is None:
        costs = {}
        if street:
            a = Arrays([people[i] for i in street], [demand], policy)
            anchored_here = np.zeros(len(a.squads), dtype=np.int64)  # every squad anchored at the one post
            row = edge_costs(a, anchored_here, np.arange(len(a.g_post)), np.arange(len(street)))
            costs = dict(zip(street, row[0].tolist()))  # headcount 1: a single slot group
        if len(_COSTS) > 20_000:
            _COSTS.clear()
        _COSTS[key] = costs
    return costs


def cheapest(key: tuple, people: Sequence[Person], street: Sequence[int], candidates: list[int], demand: Post,
             policy: CostPolicy) -> list[int]:
    """Return ``candidates`` (indices into ``people``, all of ``street``) without the dominated ones.

    ``key`` names the world, policy and slot (a cache key); ``demand`` has headcount 1.
    """
    costs = _costs(key, people, street, demand, policy)
    best = min((c for i in candidates if people[i].squad is None and (c := costs[i]) >= 0), default=None)
    if best is None:
        return [i for i in candidates if people[i].squad is not None]
    squads = {people[i].squad for i in candidates if people[i].squad is not None and 0 <= costs[i] <= best}
    return [i for i in candidates if (people[i].squad is None and costs[i] == best) or people[i].squad in squads]


_SOLVED: dict[tuple, tuple[Assignment, ...]] = {}


def solve_slot(slot: tuple, people: Sequence[Person], street: Sequence[int], candidates: list[int], demand: Post,
               policy: CostPolicy) -> tuple[Assignment, ...]:
    """Return :func:`mobilize.solver.solve`'s assignments of ``candidates`` to the one-slot ``demand``.

    The candidates are first cut down by :func:`cheapest`; the same slot and the same remaining
    candidates give the same answer, so it is solved once per process (later runs meet it again).
    """
    who = tuple(cheapest(slot, people, street, candidates, demand, policy))
    key = (slot, who)
    out = _SOLVED.get(key)
    if out is None:
        out = solve([people[i] for i in who], [demand], policy).assignments if who else ()
        if len(_SOLVED) > 50_000:
            _SOLVED.clear()
        _SOLVED[key] = out
    return out
