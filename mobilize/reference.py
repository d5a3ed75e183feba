"""The assignment problem as an audit file anyone can check, and networkx's answer to it.

:func:`export_problem` writes a solved problem as plain JSON-able data::

    {"people": [person_id, ...],
     "slots": [{"post": slot_group_id, "capacity": n, "unfilled_cost": c}, ...],
     "edges": [[person_id, slot_group_id, cost], ...],
     "assignment": [[person_id, slot_group_id], ...],
     "objective": total}

Slot group ids are strings: ``"<post_id>"`` and ``"<post_id>.leader"`` for a leader part. The
objective is the sum of the chosen edges' costs plus, for each slot group, its unfilled slots × its
unfilled cost (:func:`objective_of`). :func:`to_networkx` turns the file into the flow network of
DESIGN.md and :func:`verify` checks the assignment is feasible and optimal with networkx's own
``network_simplex`` — for tests and small cases; it is pure Python and slow on a city.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import networkx as nx
import numpy as np

from mobilize.errors import MobilizeError, Problem
from mobilize.solver import Solution

__all__ = ["AuditError", "export_problem", "objective_of", "to_networkx", "verify"]


class AuditError(MobilizeError):
    """An audit file's assignment is infeasible, or its objective is wrong or not optimal (409)."""

    def __init__(self, message_zh: str, message_en: str, problems: list[Problem] | None = None, **extra: Any):
        super().__init__(message_zh, message_en, list(problems or []), extra, 409, "audit_failed")


def _plain(x):
    return x.item() if isinstance(x, np.generic) else x


def export_problem(solution: Solution) -> dict[str, Any]:
    """Return the solved problem as the audit dict (see the module docstring).

    >>> from mobilize.costs import Person, Post
    >>> from mobilize.solver import solve
    >>> sol = solve([Person(1, "C1", "S1", 30.0, 120.0)], [Post("gate", "C1", "S1", 30.0, 120.0, 2)])
    >>> d = export_problem(sol)
    >>> d["slots"], d["assignment"], d["objective"] == objective_of(d)
    ([{'post': 'gate', 'capacity': 2, 'unfilled_cost': 10000}], [[1, 'gate']], True)
    """
    problem = solution.problem
    a = problem.arrays
    ids = [_plain(p.id) for p in a.people]
    sg = [a.slot_group_id(g) for g in range(len(a.g_cap))]
    edges = []
    for comp in problem.components:
        g, p, cost = problem.edges(comp)
        edges += [[ids[pp], sg[gg], int(cc)] for gg, pp, cc in zip(g.tolist(), p.tolist(), cost.tolist())]
    held = np.flatnonzero(solution.group_of >= 0)
    return {
        "people": [ids[i] for i in np.flatnonzero(a.p_eligible).tolist()],
        "slots": [{"post": sg[g], "capacity": int(a.g_cap[g]), "unfilled_cost": int(a.g_unfilled[g])}
                  for g in range(len(a.g_cap))],
        "edges": edges,
        "assignment": [[ids[i], sg[solution.group_of[i]]] for i in held.tolist()],
        "objective": int(solution.objective),
    }


def objective_of(problem: dict[str, Any]) -> int:
    """Return the objective of an audit dict's assignment: chosen edges plus unfilled slots × cost."""
    cost = {(_key(p), s): c for p, s, c in problem["edges"]}
    filled = Counter(s for _, s in problem["assignment"])
    total = sum(cost[(_key(p), s)] for p, s in problem["assignment"])
    return total + sum((x["capacity"] - filled[x["post"]]) * x["unfilled_cost"] for x in problem["slots"])


def _key(person):
    return tuple(person) if isinstance(person, list) else person


def to_networkx(problem: dict[str, Any]) -> nx.DiGraph:
    """Return the flow network of an audit dict (nodes ``"source"``, ``"sink"``, ``("person", id)``, ``("slot", id)``).

    source → person (capacity 1) → slot group (capacity 1, edge cost) → sink (capacity), and an
    unfilled arc source → slot group (capacity, unfilled cost); the source supplies every slot.
    """
    graph = nx.DiGraph()
    total = sum(x["capacity"] for x in problem["slots"])
    graph.add_node("source", demand=-total)
    graph.add_node("sink", demand=total)
    for p in problem["people"]:
        graph.add_edge("source", ("person", _key(p)), capacity=1, weight=0)
    for x in problem["slots"]:
        s = ("slot", x["post"])
        graph.add_edge(s, "sink", capacity=x["capacity"], weight=0)
        graph.add_edge("source", s, capacity=x["capacity"], weight=x["unfilled_cost"])
    for p, s, c in problem["edges"]:
        graph.add_edge(("person", _key(p)), ("slot", s), capacity=1, weight=c)
    return graph


def verify(problem: dict[str, Any]) -> int:
    """Return the optimum of an audit dict after checking its assignment is feasible and optimal.

    Raises :class:`AuditError` naming what is wrong: a person on two posts, an assignment that is
    not an edge, a slot group over capacity, a wrong objective, or an objective above the optimum.
    """
    problems = []
    edges = {(_key(p), s) for p, s, _ in problem["edges"]}
    capacity = {x["post"]: x["capacity"] for x in problem["slots"]}
    seen: Counter = Counter(_key(p) for p, _ in problem["assignment"])
    problems += [Problem("一人多岗", "person on two posts", field="assignment", value=p)
                 for p, n in seen.items() if n > 1]
    problems += [Problem("分派不在可选边内", "assignment is not an edge", field="assignment", value=[p, s])
                 for p, s in problem["assignment"] if (_key(p), s) not in edges]
    filled = Counter(s for _, s in problem["assignment"])
    problems += [Problem("岗位超员", "slot group over capacity", field="assignment", value=s)
                 for s, n in filled.items() if n > capacity.get(s, 0)]
    if problems:
        raise AuditError("分派不可行", "Assignment is infeasible", problems)
    actual = objective_of(problem)
    if actual != problem["objective"]:
        raise AuditError("目标值不符", "Objective does not match the assignment",
                         claimed=problem["objective"], actual=actual)
    optimum = nx.network_simplex(to_networkx(problem))[0]
    if actual != optimum:
        raise AuditError("分派非最优", "Assignment is not optimal", objective=actual, optimum=optimum)
    return optimum
