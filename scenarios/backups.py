"""Fewer people in a backup search, with the solver's own answer: dominated candidates left out.

A backup search (``dispatch.find_backup``) solves one slot. A person's edge cost to that one slot
(travel, leaving a pre-assignment, borrowing, fairness) depends only on the person and the slot,
except for a squad member, who pays ``squad_split`` more when the squad's anchor is not this post
(the anchor depends on which of the squad's members are in the problem). So with ``best`` the
cheapest edge of a candidate in no squad, no one costing more than ``best`` can win, and:

* of the people in no squad, only those costing exactly ``best`` stay (all of them, when tied);
* a squad stays whole (so its anchor is unchanged) when one of its members could cost ``best`` or less
  (its cost without the split); a squad that cannot is left out whole.

:func:`mobilize.solver.solve` still decides on what is left, and its optimum costs the same as on the
full list. When no squad is left, :func:`solve_slot` hands the solver only the first of the equally
cheap candidates in the solver's own column order (:func:`first_of_equals`): one slot is one row of
the solver's matching, and LAPJVsp (``scipy.sparse.csgraph.min_weight_full_bipartite_matching``) gives a
single row the first of its cheapest columns, so that one person gets exactly the answer the whole
tied set would get — and the same one-person question comes back often, so it is solved once per
process. ``tests/scenarios/test_backups.py`` holds both against the solver on every candidate.

The costs come from the solver's own :func:`mobilize.blocks.edge_costs`, computed once per slot and
process for the whole street (a cost row per slot, read by position in the street).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from mobilize.blocks import edge_costs
from mobilize.costs import Arrays, CostPolicy, Person, Post
from mobilize.plans import PostSpec
from mobilize.solver import Assignment, solve

if TYPE_CHECKING:
    from scenarios.activation import OrderRec
    from scenarios.world import World

__all__ = ["BackupSearch", "Street", "cheapest", "first_of_equals", "slot_number", "solve_slot", "street_of"]


class Street:
    """One street's people as arrays, for backup searches (positions ``0..n-1`` in ``members``' order).

    ``idx[k]`` is the index into ``people`` of the street's ``k``-th person; ``comm[k]`` their
    community (numbered in code order, as the solver orders communities) and ``squad[k]`` their
    squad (-1: none).
    """

    def __init__(self, people: Sequence[Person], members: Sequence[int]):
        self.idx = np.asarray(members, dtype=np.int64)
        comms = [people[i].community for i in members]
        self.comm_codes = sorted(set(comms))
        self.comm_of = {c: k for k, c in enumerate(self.comm_codes)}
        self.comm = np.array([self.comm_of[c] for c in comms], dtype=np.int64)
        squads = sorted({people[i].squad for i in members if people[i].squad is not None})
        sq = {s: k for k, s in enumerate(squads)}
        self.squad = np.array([sq.get(people[i].squad, -1) for i in members], dtype=np.int64)
        self.people = [people[i] for i in members]
        self._arrays: dict[CostPolicy, Arrays] = {}

    def arrays(self, policy: CostPolicy) -> Arrays:
        """Return the solver's arrays of the street's people and no post yet (a post is added per slot)."""
        got = self._arrays.get(policy)
        if got is None:
            got = self._arrays[policy] = Arrays(self.people, [], policy)
        return got

    def __len__(self) -> int:
        return len(self.idx)


_COSTS: dict[int, np.ndarray] = {}
_NUMBERS = itertools.count()


def slot_number(numbers: dict[tuple, int], slot: tuple) -> int:
    """Return the number of a slot (policy and one-slot demand) of the world whose ``numbers`` these are.

    A cheap key for the caches below, unique in the process (each world keeps its own ``numbers``).
    """
    number = numbers.get(slot)
    if number is None:
        number = numbers[slot] = next(_NUMBERS)
    return number


def _costs(key: int, people: Sequence[Person], street: Street, demand: Post, policy: CostPolicy) -> np.ndarray:
    """Return each street position's edge cost to ``demand`` without any squad split (-1: no edge)."""
    costs = _COSTS.get(key)
    if costs is None:
        costs = np.zeros(0, dtype=np.int64)
        if len(street):
            a = street.arrays(policy).with_changes((), [demand])  # as Arrays(street's people, [demand], policy)
            anchored_here = np.zeros(len(a.squads), dtype=np.int64)  # every squad anchored at the one post
            costs = edge_costs(a, anchored_here, np.arange(len(a.g_post)), np.arange(len(street)))[0]
        if len(_COSTS) > 20_000:
            _COSTS.clear()
        _COSTS[key] = costs
    return costs


def cheapest(key: int, people: Sequence[Person], street: Street, candidates: np.ndarray, demand: Post,
             policy: CostPolicy) -> np.ndarray:
    """Return ``candidates`` (positions in ``street``, ascending) without the dominated ones.

    ``key`` is the slot's :func:`slot_number` (a cache key); ``demand`` has headcount 1.
    """
    costs = _costs(key, people, street, demand, policy)[candidates]
    squad = street.squad[candidates]
    free = (squad < 0) & (costs >= 0)
    if not free.any():
        return candidates[squad >= 0]
    best = costs[free].min()
    near = squad[(squad >= 0) & (costs >= 0) & (costs <= best)]
    keep = free & (costs == best)
    if len(near):
        keep |= np.isin(squad, near)
    return candidates[keep]


def first_of_equals(street: Street, who: np.ndarray, demand: Post) -> int:
    """Return which of the equally cheap ``who`` (no squad among them) the solver's one-row matching takes.

    The solver's columns run community by community in code order, each community's people in the
    order given. The slot's own community, when it has one of them, is not short (街道统筹): only its
    people get edges, so its first one; otherwise the first in community order, then street order.
    """
    comm = street.comm[who]
    own = street.comm_of.get(demand.community, -1)
    mine = who[comm == own]
    return int(mine[0]) if len(mine) else int(who[np.argmin(comm)])


_SOLVED: dict[tuple[int, tuple[int, ...]], tuple[Assignment, ...]] = {}


def solve_slot(slot: int, people: Sequence[Person], street: Street, candidates: np.ndarray, demand: Post,
               policy: CostPolicy) -> tuple[Assignment, ...]:
    """Return :func:`mobilize.solver.solve`'s assignments of ``candidates`` to the one-slot ``demand``.

    ``candidates`` are positions in ``street``, ascending. They are first cut down by :func:`cheapest`
    (and, with no squad left, to :func:`first_of_equals`); the same slot and the same remaining
    candidates give the same answer, so it is solved once per process (later runs meet it again).
    """
    who = cheapest(slot, people, street, candidates, demand, policy)
    if len(who) > 1 and not (street.squad[who] >= 0).any():
        who = np.array([first_of_equals(street, who, demand)])
    who = tuple(street.idx[who].tolist())
    key = (slot, who)
    out = _SOLVED.get(key)
    if out is None:
        out = solve([people[i] for i in who], [demand], policy).assignments if who else ()
        if len(_SOLVED) > 50_000:
            _SOLVED.clear()
        _SOLVED[key] = out
    return out


def street_of(world: World, borrowing: bool, key: str, people: list[Person],
               by_street: dict[str, list[int]]) -> Street:
    """Return a street's people as :class:`scenarios.backups.Street` arrays (kept with the world)."""
    streets = world.memo.setdefault(("streets", borrowing), {})
    got = streets.get(key)
    if got is None:
        got = streets[key] = Street(people, by_street.get(key, ()))
    return got


class BackupSearch:
    """The drill activation's backup search (``dispatch.find_backup`` on the world's arrays).

    Mixed into :class:`scenarios.activation.MemoryActivation`, whose state it reads: ``world``, ``people``,
    ``by_street``, ``policy``, ``cost_policy``, ``specs``, ``blocked``, ``cut``, ``cut_number``,
    ``confined_at``, ``ended``, ``trace``, ``_slots`` and its ``_street``, ``_demand`` and ``_dispatch``.
    """

    def _pool(self, street: Street, key: str, need: frozenset, any_of: frozenset,
              leader_part: bool) -> tuple[np.ndarray, np.ndarray]:
        """Return who of ``street`` may take part in a backup search for such a slot, and who fits it.

        Both as street positions: the pool (ascending), and a mask over the street of who fits. Someone
        who cannot fit (lacks the skills, or is no designated leader for the leader part) gets no edge;
        left out, they change nothing — except a squad member, who still counts towards the squad's
        anchor post, so squad members always stay in. Fixed per world: kept with it.
        """
        pools = self.world.memo.setdefault(("pools", self.policy.borrowing), {})
        got = pools.get((key, need, any_of, leader_part))
        if got is None:
            ps = self.people
            fit = np.array([need <= ps[i].skills and (not any_of or bool(any_of & ps[i].skills))
                            and (ps[i].leader or not leader_part) for i in street.idx.tolist()], dtype=bool)
            got = pools[(key, need, any_of, leader_part)] = (np.flatnonzero(fit | (street.squad >= 0)), fit)
        return got

    def _inside(self, spec: PostSpec) -> int:
        """Return the number of the cut grid ``spec`` stands in (-1: outside every cut grid)."""
        grid = self.world.grid_of_post(spec.site_code)
        return self.cut_number.get(grid, -1) if grid is not None else -1

    def find_backup(self, rec: OrderRec, t: float) -> OrderRec | None:
        """Give a freed slot to the best available backup (``dispatch.find_backup``), or report it short."""
        spec = self.specs.get(rec.post)
        if spec is None or self.ended:
            return None
        street_key = self._street(spec)
        street = street_of(self.world, self.policy.borrowing, street_key, self.people, self.by_street)
        pool, fit = self._pool(street, street_key, spec.skills_all, spec.skills_any, rec.leader_part)
        people = pool[~self.blocked[street.idx[pool]]]  # street positions, ascending
        if self.cut:
            people = people[self.confined_at[street.idx[people]] == self._inside(spec)]
        if not fit[people].any():
            solution = None  # no edge at all: the solve would find nobody
        else:
            got = self._slots.get((id(spec), rec.leader_part))
            if got is None or got[0] is not spec:  # the one-slot demand, and its number for the caches
                demand = replace(self._demand(spec), headcount=1, leader_required=rec.leader_part)
                numbers = self.world.memo.setdefault("slots", {})
                got = self._slots[(id(spec), rec.leader_part)] = (
                    spec, demand, slot_number(numbers, (self.policy.borrowing, self.cost_policy, demand)))
            _, demand, slot = got
            # The post's own community first: a one-slot group is short (街道统筹) exactly when its community
            # has nobody for it, and then, only then, the street's other people get edges. Squads never span
            # communities, so this first solve is the full solve whenever it finds someone. Each solve gets
            # its candidates without the dominated ones (scenarios.backups).
            own = people[street.comm[people] == street.comm_of.get(spec.community, -1)]
            solution = solve_slot(slot, self.people, street, own, demand, self.cost_policy)
            if not solution and len(own) < len(people):
                self.trace.count("backup_street_solves")
                solution = solve_slot(slot, self.people, street, people, demand, self.cost_policy)
        if not solution:
            self.trace.count("backup_none")
            return None
        self.trace.count("backup_found")
        return self._dispatch(solution, t)[0]
