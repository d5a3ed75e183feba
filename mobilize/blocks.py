"""The solver's network, cut into pieces: per-community cost blocks, borrowing, independent components.

1. **Blocks.** Per community, the edge costs of its own people to its own slot groups as a numpy matrix.
2. **Borrowing (街道统筹).** A slot group of community B is *short* when B's eligible people who may fill
   it are fewer than the headcount of B's slot groups that only those people can fill (the groups whose
   qualified set is a subset of its own, itself included) — a Hall violation, so B cannot fill them
   alone. Only short groups get edges from eligible people of B's street's other communities, at
   the extra ``borrow`` cost. A community that is not short borrows nobody; with the policy's
   ``borrowing`` off, nobody borrows at all.
3. **Decomposition.** Communities joined by a borrow edge form a component (the connected
   components of the community graph, by union-find). Components share no person and no slot, so
   solving each optimally solves the whole problem optimally.
4. **Solve.** :func:`match` solves a component exactly with SciPy's ``min_weight_full_bipartite_matching``
   (LAPJVsp, C++) on slots: on these sparse assignment networks it is about five times faster than
   OR-tools' min-cost flow (:func:`match_mcf`, kept as an independent second method for benchmarks).
   A single slot (a backup search) needs no matrix: :func:`match_one_slot` takes LAPJVsp's answer directly.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import min_weight_full_bipartite_matching

from mobilize.costs import Arrays, travel_minutes

try:  # OR-tools' C++ min-cost flow: a second exact method, to cross-check (bench/bench_solver.py)
    from ortools.graph.python import min_cost_flow as _ortools
except ImportError:  # pragma: no cover
    _ortools = None

__all__ = ["Block", "build_blocks", "edge_costs", "short_groups", "components", "same_block", "match",
           "match_one_slot", "match_scipy", "slot_matrix", "match_mcf"]


@dataclass(slots=True)
class Block:
    """One community: its eligible people, slot groups, local edge costs (-1: no edge), borrow edges."""

    people: np.ndarray
    groups: np.ndarray
    local: np.ndarray
    short: np.ndarray
    b_group: np.ndarray  # index into ``groups``
    b_person: np.ndarray  # global person index
    b_cost: np.ndarray


def build_blocks(a: Arrays, anchors: np.ndarray, communities: Iterable[int],
                 local_kept: Collection[int] = (), old: Sequence[Block] = ()) -> list[Block]:
    """Return the blocks of ``communities``, reusing ``old``'s local matrices for ``local_kept``.

    >>> from mobilize.costs import CostPolicy, Person, Post
    >>> a = Arrays([Person(1, "A", "S", 30.0, 120.0), Person(2, "B", "S", 30.0, 120.0)],
    ...            [Post("gate", "A", "S", 30.0, 120.0, headcount=2)], CostPolicy())
    >>> b = build_blocks(a, a.squad_anchors(), range(2))
    >>> b[0].short.tolist(), b[0].b_person.tolist(), b[0].b_cost.tolist()  # A lacks one: borrows 2 from B
    ([True], [1], [45])
    """
    eligible = np.flatnonzero(a.p_eligible)
    street = a.comm_street_idx[a.p_comm[eligible]]
    order = eligible[np.lexsort((a.p_comm[eligible], street))]  # by street, then community
    ncomm = len(a.communities)
    p_start = _starts(a.p_comm[order], ncomm)
    s_order = a.comm_street_idx[a.p_comm[order]]
    g_order = np.argsort(a.g_comm, kind="stable")
    g_start = np.searchsorted(a.g_comm[g_order], np.arange(ncomm + 1))
    empty = np.zeros(0, dtype=np.int64)
    out = []
    for c in communities:
        people = order[p_start[c][0]:p_start[c][1]]
        groups = g_order[g_start[c]:g_start[c + 1]]
        if c in local_kept:
            local, short = old[c].local, old[c].short
        else:
            local = edge_costs(a, anchors, groups, people)
            short = short_groups(local >= 0, a.g_cap[groups])
        sg = np.flatnonzero(short) if a.policy.borrowing else empty
        if len(sg):
            s = a.comm_street_idx[c]
            lo, hi = np.searchsorted(s_order, [s, s + 1])
            others = order[lo:hi]
            others = np.sort(others[a.p_comm[others] != c])  # in the people's order, as given
            cost = edge_costs(a, anchors, groups[sg], others)
            gi, pj = np.nonzero(cost >= 0)
            out.append(Block(people, groups, local, short, sg[gi], others[pj], cost[gi, pj]))
        else:
            out.append(Block(people, groups, local, short, empty, empty, empty))
    return out


def _starts(p_comm_sorted: np.ndarray, ncomm: int) -> list[tuple[int, int]]:
    """Return each community's (start, end) in people sorted by street then community."""
    bounds = [(0, 0)] * ncomm
    if len(p_comm_sorted):
        cut = np.flatnonzero(np.diff(p_comm_sorted)) + 1
        starts = np.concatenate([[0], cut])
        ends = np.concatenate([cut, [len(p_comm_sorted)]])
        for c, lo, hi in zip(p_comm_sorted[starts].tolist(), starts.tolist(), ends.tolist()):
            bounds[c] = (lo, hi)
    return bounds


def edge_costs(a: Arrays, anchors: np.ndarray, groups: np.ndarray, people: np.ndarray) -> np.ndarray:
    """Return the (groups × people) edge costs without keep-in-place; -1 where no edge.

    The same sums as :meth:`Arrays.components` (which explains a chosen edge), built in place on
    one matrix: a component that is zero for the whole block is skipped.
    """
    pol = a.policy
    post = a.g_post[groups][:, None]
    row: dict[int, int] = {}  # travel once per site (a dict: np.unique costs more on a few dozen groups)
    site_row = [row.setdefault(x, len(row)) for x in a.q_site[post[:, 0]].tolist()]
    sites = np.array(list(row), dtype=np.int64)
    total = travel_minutes(a.p_lat[people][None, :], a.p_lon[people][None, :], a.site_lat[sites][:, None],
                           a.site_lon[sites][:, None], pol.minutes_per_km)
    if len(sites) < len(groups):
        total = total[site_row]
    ok = total <= pol.max_travel_minutes
    ok &= a.qualifies(groups, people)
    if pol.travel_per_minute != 1:
        total *= pol.travel_per_minute
    total += (a.p_duty[people] * pol.per_recent_duty)[None, :]
    pre = a.p_pre[people]
    if (pre >= 0).any():
        np.add(total, pol.leave_preassigned, out=total, where=(pre[None, :] >= 0) & (pre[None, :] != post))
    p_comm, g_comm = a.p_comm[people], a.g_comm[groups]
    if len(p_comm) and len(g_comm) and not (p_comm.min() == p_comm.max() == g_comm.min() == g_comm.max()):
        np.add(total, pol.borrow, out=total, where=p_comm[None, :] != g_comm[:, None])
    sq = a.p_squad[people]
    if (sq >= 0).any():
        anchor = anchors[sq]  # what no squad (-1) reads is masked out below
        np.add(total, pol.squad_split, out=total, where=(sq >= 0)[None, :] & (anchor[None, :] != post))
    total[~ok] = -1
    return total


def short_groups(ok: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """Return which slot groups are short by the Hall rule (see the module docstring).

    ``ok`` is the (groups × people) mask of who may fill what. Groups with the same qualified set
    are counted once, so the subset test runs on the few distinct sets, not on every group.

    >>> short_groups(np.array([[1, 1, 0], [1, 0, 0], [0, 0, 1]], bool), np.array([1, 2, 1])).tolist()
    [True, True, False]
    """
    if ok.size == 0:
        return cap > 0
    if len(ok) == 1:  # one slot group (a backup search): short when fewer qualify than it holds
        return np.array([ok.sum() < cap[0]])
    keys = list(map(bytes, np.packbits(ok, axis=1)))  # a dict finds the sets faster than np.unique(axis=0)
    first: dict[bytes, int] = {}
    for i, key in enumerate(keys):
        first.setdefault(key, i)
    number = {key: n for n, key in enumerate(first)}
    inverse = np.array([number[key] for key in keys], dtype=np.int64)
    q = ok[list(first.values())].astype(np.float32)
    outside = q @ (1.0 - q).T  # outside[x, y]: people who qualify for set x but not for set y
    cap_of_set = np.bincount(inverse, weights=cap, minlength=len(q))
    demand = (outside == 0).T.astype(np.float64) @ cap_of_set
    return (q.sum(axis=1) < demand)[inverse]


def components(a: Arrays, blocks: Sequence[Block], communities: Iterable[int]) -> list[tuple[int, ...]]:
    """Return the independent components among ``communities``: joined where one borrows from another."""
    parent = {c: c for c in communities}

    def root(c: int) -> int:
        while parent[c] != c:
            parent[c] = c = parent[parent[c]]
        return c

    n = len(a.communities)
    for c in list(parent):
        for lender in np.flatnonzero(np.bincount(a.p_comm[blocks[c].b_person], minlength=n)).tolist():
            parent.setdefault(lender, lender)
            parent[root(lender)] = root(c)
    members: dict[int, list[int]] = {}
    for c in parent:
        members.setdefault(root(c), []).append(c)
    return sorted(tuple(sorted(k)) for k in members.values())


def same_block(x: Block, y: Block) -> bool:
    """Return whether two blocks give the same edges (same people, groups, costs and borrow edges)."""
    return x is y or all(np.array_equal(getattr(x, k), getattr(y, k))
               for k in ("people", "groups", "local", "b_group", "b_person", "b_cost"))


def match(r, j, cost, cap, unfilled, n_people) -> np.ndarray:
    """Return the slot group row of each person column (-1: unassigned) of a min-cost assignment.

    Row ``r[k]`` (a slot group of capacity ``cap[r[k]]``, unfilled cost ``unfilled[r[k]]``) may take
    person column ``j[k]`` at ``cost[k]``. Solved by :func:`match_scipy`; a single slot (a backup
    search) by :func:`match_one_slot`, which gives the same answer without building a sparse matrix.
    """
    if len(cap) == 1 and cap[0] == 1:
        return match_one_slot(j, cost, int(unfilled[0]), n_people)
    return match_scipy(r, j, cost, cap, unfilled, n_people)


def match_one_slot(j, cost, unfilled: int, n_people: int) -> np.ndarray:
    """:func:`match` for one slot: the cheapest person, unless leaving the slot unfilled costs less.

    Of equally cheap people the first column, and a person before the unfilled arc at equal cost: the
    choice LAPJVsp makes for a single row (it takes the first free column of the row's cheapest ones,
    the unfilled column last), so both methods give the same assignment, not only the same cost.

    >>> match_one_slot(np.array([0, 3, 2]), np.array([7, 5, 5]), 60, 4).tolist()  # columns 2 and 3 tie: 2
    [-1, -1, 0, -1]
    """
    row_col = np.full(n_people, -1, dtype=np.int64)
    if len(j):
        best = cost.min()
        if best <= unfilled:
            row_col[j[cost == best].min()] = 0
    return row_col


def match_mcf(r, j, cost, cap, unfilled, n_people) -> np.ndarray:
    """:func:`match` by OR-tools' min-cost flow: source → person (1) → group (cap) → sink plus an
    unfilled arc source → group (cap, unfilled cost). Exact too, slower; for cross-checks."""
    if _ortools is None:  # pragma: no cover
        raise RuntimeError("OR-tools is not installed")
    n_groups = len(cap)
    total = int(cap.sum())
    flow = _ortools.SimpleMinCostFlow()
    sink = 1 + n_people + n_groups
    tails = np.concatenate([np.zeros(n_people, np.int64), 1 + j, np.zeros(n_groups, np.int64),
                            1 + n_people + np.arange(n_groups)])
    heads = np.concatenate([1 + np.arange(n_people), 1 + n_people + r, 1 + n_people + np.arange(n_groups),
                            np.full(n_groups, sink)])
    caps = np.concatenate([np.ones(n_people + len(r), np.int64), cap, cap])
    costs = np.concatenate([np.zeros(n_people, np.int64), cost, unfilled, np.zeros(n_groups, np.int64)])
    flow.add_arcs_with_capacity_and_unit_cost(tails, heads, caps, costs)
    flow.set_node_supply(0, total)
    flow.set_node_supply(sink, -total)
    status = flow.solve()
    if status != flow.OPTIMAL:  # pragma: no cover - the network is always feasible
        raise ArithmeticError(f"min-cost flow failed: {status}")
    used = flow.flows(np.arange(n_people, n_people + len(r))) > 0
    row_col = np.full(n_people, -1, dtype=np.int64)
    row_col[j[used]] = r[used]
    return row_col


def match_scipy(r, j, cost, cap, unfilled, n_people) -> np.ndarray:
    """Return the slot group row of each person column (-1: unassigned) of a min-cost assignment.

    Rows of the matrix are slots (a group of capacity ``h`` gives ``h`` rows), columns are people
    plus one private dummy column per slot carrying its unfilled cost; costs are offset by +1.
    """
    row_ind, col_ind = min_weight_full_bipartite_matching(slot_matrix(r, j, cost, cap, unfilled, n_people))
    real = col_ind < n_people
    row_col = np.full(n_people, -1, dtype=np.int64)
    row_col[col_ind[real]] = np.repeat(np.arange(len(cap)), cap)[row_ind[real]]
    return row_col


def slot_matrix(r, j, cost, cap, unfilled, n_people) -> sp.csr_matrix:
    """Return :func:`match_scipy`'s matrix, built directly in canonical CSR form.

    A slot's row holds its group's edges by column, then the slot's own unfilled column: the very
    arrays SciPy makes of the same entries given as coordinates (LAPJVsp breaks ties by them), at a
    third of the cost: edges are sorted once per group, not once per slot.
    """
    n_groups = len(cap)
    slot_group = np.repeat(np.arange(n_groups), cap)
    n_slots = len(slot_group)
    order = np.argsort(r * n_people + j, kind="stable")  # by group, then person: nearly sorted already
    deg = np.bincount(r, minlength=n_groups)
    length = deg[slot_group] + 1
    indptr = np.zeros(n_slots + 1, dtype=np.int64)
    np.cumsum(length, out=indptr[1:])
    nnz = int(indptr[-1])
    # entry k of slot s's row is sorted edge first[group] + k, its last one the unfilled column s
    first = np.cumsum(deg) - deg
    src = np.arange(nnz) + np.repeat(first[slot_group] - indptr[:-1], length)
    src[indptr[1:] - 1] = len(r) + np.arange(n_slots)
    index = np.int32 if max(nnz, n_people + n_slots) < np.iinfo(np.int32).max else np.int64
    cols = np.concatenate([j[order], n_people + np.arange(n_slots)]).astype(index)
    data = np.concatenate([cost[order], unfilled[slot_group]]).astype(np.float64) + 1
    return sp.csr_matrix((data[src], cols[src], indptr.astype(index)), shape=(n_slots, n_people + n_slots))

