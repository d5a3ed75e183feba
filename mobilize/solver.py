"""Optimal assignment of people to posts for the one-key switch (一键启动), and its incremental re-solve.

The model is a flow network (networkx is its reference form, :func:`mobilize.reference.to_networkx`):
source → person (capacity 1) → slot group (capacity = headcount) → sink, an edge wherever a person may
serve (:mod:`mobilize.costs`), and an unfilled arc per slot group carrying its unfilled cost. The
solver finds a minimum-cost flow — an OPTIMAL assignment for the stated costs — fast:

1. **Blocks.** Per community, the edge costs of its own people to its own slot groups as a numpy matrix.
2. **Borrowing (街道统筹).** A slot group of community B is *short* when B's eligible people who may fill
   it are fewer than the headcount of B's slot groups that only those people can fill (the groups whose
   qualified set is a subset of its own, itself included) — a Hall violation, so B cannot fill them
   alone. Only short groups get edges from eligible people of B's street's other communities, at
   the extra ``borrow`` cost. A community that is not short borrows nobody.
3. **Decomposition.** Communities joined by a borrow edge form a component (networkx
   ``connected_components`` on the community graph). Components share no person and no slot, so
   solving each optimally solves the whole problem optimally — this is the only decomposition used.
4. **Solve.** Each component is a rectangular assignment: rows are slots, columns are people plus one
   private dummy column per slot carrying its unfilled cost (all costs offset by +1 so no entry is an
   explicit zero; each slot row is matched exactly once, so the offset does not move the optimum),
   solved by SciPy's ``min_weight_full_bipartite_matching`` (LAPJVsp, in C).

:func:`resolve` re-solves after a decline or a level raise: only the components that changed, with
``move_notified`` added to every edge that would move an already notified person to another post.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import networkx as nx
import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import min_weight_full_bipartite_matching

try:  # OR-tools' C++ min-cost flow is the fastest exact solver at hand; SciPy is the fallback
    from ortools.graph.python import min_cost_flow as _mcf

    _ortools = _mcf
except ImportError:  # pragma: no cover
    _ortools = None

from mobilize.costs import COMPONENTS, Arrays, CostPolicy, Person, Post

__all__ = [
    "Assignment",
    "Shortage",
    "Move",
    "Solution",
    "AssignmentProblem",
    "build_problem",
    "solve",
    "resolve",
]


@dataclass(frozen=True, slots=True)
class Assignment:
    """One person on one post, with the cost components that put them there.

    ``slot_group`` is ``"<post>"`` or ``"<post>.leader"`` (``leader_part`` true); ``borrowed`` is true
    when the post lies in another community of the person's street. ``cost`` is the sum of
    ``travel``, ``preassignment``, ``borrow``, ``squad_split``, ``fairness`` and ``keep_in_place``.
    """

    person: Hashable
    post: str
    slot_group: str
    leader_part: bool
    borrowed: bool
    travel_minutes: int
    cost: int
    travel: int
    preassignment: int
    borrow: int
    squad_split: int
    fairness: int
    keep_in_place: int

    def parts(self) -> dict[str, int]:
        """Return the non-zero cost components, e.g. ``{"travel": 7, "borrow": 45}``."""
        return {k: getattr(self, k) for k in COMPONENTS if getattr(self, k)}


@dataclass(frozen=True, slots=True)
class Shortage:
    """Slots of a post left unfilled: ``missing`` of them, needing ``skills`` (缺口)."""

    post: str
    slot_group: str
    community: str
    missing: int
    priority: int
    leader_part: bool
    skills: tuple[str, ...]

    def __str__(self) -> str:
        need = " + ".join(self.skills) if self.skills else "people"
        if self.leader_part:
            need = f"leader ({need})" if self.skills else "leader"
        return f"{self.post}: {need} ×{self.missing}"


@dataclass(frozen=True, slots=True)
class Move:
    """A person whose post changed between two solutions (``None``: not assigned)."""

    person: Hashable
    old_post: str | None
    new_post: str | None


@dataclass(slots=True)
class _Block:
    """One community: its eligible people, slot groups, local edge costs (-1: no edge), borrow edges."""

    people: np.ndarray
    groups: np.ndarray
    local: np.ndarray
    short: np.ndarray
    b_group: np.ndarray  # index into ``groups``
    b_person: np.ndarray  # global person index
    b_cost: np.ndarray


@dataclass
class AssignmentProblem:
    """A built problem: arrays, per-community blocks, components and the keep-in-place state.

    Built by :func:`build_problem`; pass it to :func:`solve` and :func:`mobilize.reference.export_problem`.
    ``current_post[i]`` is the post index person ``i`` currently holds (-1: none) and ``notified[i]``
    whether moving them costs ``move_notified``.
    """

    arrays: Arrays
    anchors: np.ndarray
    blocks: list[_Block]
    components: list[tuple[int, ...]]
    current_post: np.ndarray | None = None
    notified: np.ndarray | None = None

    @property
    def policy(self) -> CostPolicy:
        return self.arrays.policy

    def edges(self, component: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return the (slot group, person, cost) edges of a component, keep-in-place included."""
        gs, ps, cs = [], [], []
        for c in component:
            b = self.blocks[c]
            gi, pj = np.nonzero(b.local >= 0)
            gs += [b.groups[gi], b.groups[b.b_group]]
            ps += [b.people[pj], b.b_person]
            cs += [b.local[gi, pj], b.b_cost]
        g, p, cost = np.concatenate(gs), np.concatenate(ps), np.concatenate(cs)
        if self.current_post is not None:
            cp = self.current_post[p]
            moved = (cp >= 0) & (cp != self.arrays.g_post[g]) & self.notified[p]
            cost = cost + np.where(moved, self.policy.move_notified, 0)
        return g, p, cost


@dataclass(eq=False)
class Solution:
    """An optimal assignment: ``group_of[i]`` is person ``i``'s slot group index (-1: unassigned).

    ``objective`` is the total cost (chosen edges plus unfilled slots × their unfilled cost). Ask it
    for :attr:`assignments`, :attr:`shortages`, :attr:`split_squads`, :attr:`borrowed` and
    :meth:`post_of`; :meth:`moves_from` lists who changed post since an earlier solution.
    """

    problem: AssignmentProblem
    group_of: np.ndarray
    objective: int
    _parts: dict[str, np.ndarray] = field(repr=False)

    @cached_property
    def assignments(self) -> tuple[Assignment, ...]:
        """Every assignment, in the order of the people given."""
        a = self.problem.arrays
        idx = np.flatnonzero(self.group_of >= 0)
        g = self.group_of[idx]
        parts = {k: v[idx].tolist() for k, v in self._parts.items()}
        total = sum(self._parts[k][idx] for k in COMPONENTS).tolist()
        borrowed = (a.p_comm[idx] != a.g_comm[g]).tolist()
        return tuple(
            Assignment(a.people[i].id, a.posts[a.g_post[gg]].id, a.slot_group_id(gg), bool(a.g_leader[gg]),
                       borrowed[k], parts["minutes"][k], total[k], parts["travel"][k],
                       parts["preassignment"][k], parts["borrow"][k], parts["squad_split"][k],
                       parts["fairness"][k], parts["keep_in_place"][k])
            for k, (i, gg) in enumerate(zip(idx.tolist(), g.tolist())))

    @cached_property
    def filled(self) -> np.ndarray:
        """Filled slots per slot group."""
        g = self.group_of[self.group_of >= 0]
        return np.bincount(g, minlength=len(self.problem.arrays.g_cap))

    @cached_property
    def shortages(self) -> tuple[Shortage, ...]:
        """Every slot group with unfilled slots, most critical first (never dropped)."""
        a = self.problem.arrays
        missing = a.g_cap - self.filled
        out = []
        for g in np.flatnonzero(missing > 0).tolist():
            q = a.posts[a.g_post[g]]
            skills = tuple(sorted(q.skills_all))
            if q.skills_any:
                skills += ("|".join(sorted(q.skills_any)),)
            out.append(Shortage(q.id, a.slot_group_id(g), q.community, int(missing[g]), q.priority,
                                bool(a.g_leader[g]), skills))
        return tuple(sorted(out, key=lambda s: (s.priority, not s.leader_part, s.post)))

    @property
    def unfilled(self) -> int:
        """Total unfilled slots."""
        return int((self.problem.arrays.g_cap - self.filled).sum())

    @cached_property
    def split_squads(self) -> dict[str, tuple[str, ...]]:
        """Squads whose assigned members ended up on two or more posts: squad → its posts."""
        a = self.problem.arrays
        idx = np.flatnonzero((self.group_of >= 0) & (a.p_squad >= 0))
        posts: dict[int, set[int]] = {}
        for s, q in zip(a.p_squad[idx].tolist(), a.g_post[self.group_of[idx]].tolist()):
            posts.setdefault(s, set()).add(q)
        return {a.squads[s]: tuple(sorted(a.posts[q].id for q in qs)) for s, qs in sorted(posts.items())
                if len(qs) > 1}

    @cached_property
    def borrowed(self) -> tuple[Assignment, ...]:
        """The assignments that borrow a person from another community of the street."""
        return tuple(x for x in self.assignments if x.borrowed)

    def post_of(self, person: Hashable) -> str | None:
        """Return the post id a person is assigned to, or ``None``."""
        a = self.problem.arrays
        g = self.group_of[a.person_index[person]]
        return a.posts[a.g_post[g]].id if g >= 0 else None

    def moves_from(self, previous: Solution) -> list[Move]:
        """Return who changed post since ``previous`` (same people, in the same order)."""
        a, b = self.problem.arrays, previous.problem.arrays
        new = np.append(a.g_post, -1)[self.group_of]
        old = np.append(b.g_post, -1)[previous.group_of]
        out = []
        for i in np.flatnonzero(new != old).tolist():
            out.append(Move(a.people[i].id, b.posts[old[i]].id if old[i] >= 0 else None,
                            a.posts[new[i]].id if new[i] >= 0 else None))
        return out


def build_problem(people: Sequence[Person], posts: Sequence[Post], policy: CostPolicy | None = None, *,
                  current: Mapping[Hashable, str] | None = None,
                  notified: Collection[Hashable] | None = None) -> AssignmentProblem:
    """Return the built assignment problem: cost blocks, borrow edges and independent components.

    ``current`` maps person id → post id each person holds now (keep-in-place); ``notified`` names
    the people already told (default: everyone in ``current``). Raises
    :class:`~mobilize.errors.InvalidInput` naming each bad row.
    """
    a = Arrays(people, posts, policy or CostPolicy())
    cur = notif = None
    if current is not None:
        cur = np.full(len(a.people), -1, dtype=np.int64)
        for pid, qid in current.items():
            if pid in a.person_index and qid in a.post_index:
                cur[a.person_index[pid]] = a.post_index[qid]
        notif = np.zeros(len(a.people), dtype=bool)
        for pid in (current if notified is None else notified):
            if pid in a.person_index:
                notif[a.person_index[pid]] = True
    anchors = a.squad_anchors()
    blocks = _blocks(a, anchors, range(len(a.communities)), None)
    return AssignmentProblem(a, anchors, blocks, _components(a, blocks, range(len(a.communities))), cur, notif)


def solve(people: Sequence[Person] | AssignmentProblem, posts: Sequence[Post] = (),
          policy: CostPolicy | None = None, **kwargs) -> Solution:
    """Return an optimal assignment of ``people`` to ``posts`` for ``policy``'s costs.

    Takes either the people and posts (and :func:`build_problem`'s keywords) or a built problem.

    >>> from mobilize.costs import Person, Post
    >>> people = [Person(1, "C1", "S1", 30.0, 120.0, frozenset({"medical"})),
    ...           Person(2, "C1", "S1", 30.0, 120.001)]
    >>> posts = [Post("med", "C1", "S1", 30.0, 120.0, headcount=2, skills_all=frozenset({"medical"}),
    ...               priority=1)]
    >>> sol = solve(people, posts)
    >>> [(x.person, x.post) for x in sol.assignments], [str(s) for s in sol.shortages]
    ([(1, 'med')], ['med: medical ×1'])
    """
    problem = people if isinstance(people, AssignmentProblem) else build_problem(people, posts, policy, **kwargs)
    group_of = np.full(len(problem.arrays.people), -1, dtype=np.int64)
    for comp in problem.components:
        _solve_component(problem, comp, group_of)
    return _finish(problem, group_of)


def resolve(solution: Solution, *, removed_people: Iterable[Hashable] = (), added_posts: Sequence[Post] = (),
            notified: Collection[Hashable] | None = None) -> Solution:
    """Return the optimal assignment after changes, re-solving only the components they touch.

    ``removed_people`` (a decline, a fall ill) become ineligible; ``added_posts`` (a level raise)
    join the problem. Everyone ``solution`` assigns is kept in place at the cost of ``move_notified``
    per moved notified person (``notified``: default all of them). The result equals a full
    :func:`solve` of the changed problem with ``current`` = ``solution``'s assignment, provided
    ``solution`` is itself optimal (it came from :func:`solve` or :func:`resolve`).
    """
    old = solution.problem
    a = old.arrays.with_changes(removed_people, added_posts)
    n = len(a.people)
    group_of = solution.group_of.copy()  # added posts' groups come last: existing indices stay valid
    cur = np.append(a.g_post, -1)[group_of]  # -1 (unassigned) reads the appended -1
    if notified is None:
        notif = cur >= 0
    else:
        notif = np.zeros(n, dtype=bool)
        notif[[a.person_index[p] for p in notified if p in a.person_index]] = True
    changed = set(a.p_comm[[a.person_index[p] for p in removed_people if p in a.person_index]].tolist())
    changed |= {a.comm_index[q.community] for q in added_posts}
    changed |= set(a.p_comm[a.repointed].tolist())
    anchors = a.squad_anchors_for(old.anchors, changed)
    moved_anchor = np.flatnonzero(anchors != old.anchors) if len(anchors) else np.zeros(0, dtype=np.int64)
    changed |= set(a.p_comm[np.isin(a.p_squad, moved_anchor)].tolist())
    streets = {a.comm_street[c] for c in changed}
    touched = [c for c in range(len(a.communities)) if a.comm_street[c] in streets]
    blocks = list(old.blocks) + [None] * (len(a.communities) - len(old.blocks))
    fresh = _blocks(a, anchors, touched, {c for c in touched if c not in changed and c < len(old.blocks)},
                    old.blocks)
    for c, b in zip(touched, fresh):
        blocks[c] = b
    keep = [k for k in old.components if a.comm_street[k[0]] not in streets]
    comps = _components(a, blocks, touched)
    problem = AssignmentProblem(a, anchors, blocks, keep + comps, cur, notif)
    group_of[~a.p_eligible] = -1
    comp_of = np.full(len(a.communities), -1)
    for k, comp in enumerate(comps):
        comp_of[list(comp)] = k
    affected = {comp_of[c] for c in changed}
    idx = np.flatnonzero((group_of >= 0) & np.isin(a.p_comm, touched))
    crossing = comp_of[a.p_comm[idx]] != comp_of[a.g_comm[group_of[idx]]]
    affected |= set(comp_of[a.p_comm[idx[crossing]]].tolist()) | set(comp_of[a.g_comm[group_of[idx[crossing]]]].tolist())
    for k in sorted(affected):
        members = np.flatnonzero(np.isin(a.p_comm, comps[k]))
        group_of[members] = -1
        _solve_component(problem, comps[k], group_of)
    return _finish(problem, group_of)


def _blocks(a: Arrays, anchors: np.ndarray, communities: Iterable[int], local_kept,
            old: list[_Block] | None = None) -> list[_Block]:
    """Build the blocks of ``communities`` (reusing ``old`` local matrices where ``local_kept``)."""
    eligible_people = np.flatnonzero(a.p_eligible)
    order = eligible_people[np.argsort(a.p_comm[eligible_people], kind="stable")]
    ncomm = len(a.communities)
    p_start = np.searchsorted(a.p_comm[order], np.arange(ncomm + 1))
    g_order = np.argsort(a.g_comm, kind="stable")
    g_start = np.searchsorted(a.g_comm[g_order], np.arange(ncomm + 1))
    street_of = a.comm_street_idx
    out = []
    for c in communities:
        people = order[p_start[c]:p_start[c + 1]]
        groups = g_order[g_start[c]:g_start[c + 1]]
        if local_kept and c in local_kept:
            local, short = old[c].local, old[c].short
        else:
            local = _edge_costs(a, anchors, groups, people)
            short = _short_groups(local >= 0, a.g_cap[groups])
        sg = np.flatnonzero(short)
        if len(sg):
            others = eligible_people[(street_of[a.p_comm[eligible_people]] == street_of[c])
                                     & (a.p_comm[eligible_people] != c)]
            cost = _edge_costs(a, anchors, groups[sg], others)
            gi, pj = np.nonzero(cost >= 0)
            out.append(_Block(people, groups, local, short, sg[gi], others[pj], cost[gi, pj]))
        else:
            empty = np.zeros(0, dtype=np.int64)
            out.append(_Block(people, groups, local, short, empty, empty, empty))
    return out


def _edge_costs(a: Arrays, anchors: np.ndarray, groups: np.ndarray, people: np.ndarray) -> np.ndarray:
    """Return the (groups × people) edge costs without keep-in-place; -1 where no edge."""
    comp = a.components(groups[:, None], people[None, :], anchors, None, None)
    ok = a.qualifies(groups, people) & (comp["minutes"] <= a.policy.max_travel_minutes)
    total = comp["travel"] + comp["preassignment"] + comp["borrow"] + comp["squad_split"] + comp["fairness"]
    return np.where(ok, total, -1)


def _short_groups(ok: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """Return which slot groups are short by the Hall rule (see the module docstring)."""
    if ok.size == 0:
        return cap > 0
    q = ok.astype(np.float32)
    outside = q @ (1.0 - q).T  # outside[a, b]: people who qualify for a but not for b
    demand = (outside == 0).T.astype(np.float32) @ cap.astype(np.float32)
    return ok.sum(axis=1) < demand


def _components(a: Arrays, blocks: list[_Block], communities: Iterable[int]) -> list[tuple[int, ...]]:
    """Return the independent components among ``communities``: joined where one borrows from another."""
    graph = nx.Graph()
    graph.add_nodes_from(communities)
    for c in list(graph):
        lenders = np.unique(a.p_comm[blocks[c].b_person])
        graph.add_edges_from((c, int(x)) for x in lenders)
    return sorted(tuple(sorted(k)) for k in nx.connected_components(graph))


def _solve_component(problem: AssignmentProblem, comp: Sequence[int], group_of: np.ndarray) -> None:
    """Solve one component optimally, writing each assigned person's slot group into ``group_of``."""
    a = problem.arrays
    groups = np.concatenate([problem.blocks[c].groups for c in comp])
    people = np.concatenate([problem.blocks[c].people for c in comp])
    if not len(groups) or not a.g_cap[groups].sum():
        return
    g, p, cost = problem.edges(comp)
    row_of = np.full(len(a.g_cap), -1, dtype=np.int64)
    row_of[groups] = np.arange(len(groups))
    col_of = np.full(len(a.people), -1, dtype=np.int64)
    col_of[people] = np.arange(len(people))
    r, j = row_of[g], col_of[p]
    cap, unfilled = a.g_cap[groups], a.g_unfilled[groups]
    row_col = _match(r, j, cost, cap, unfilled, len(people))
    assigned = row_col >= 0
    group_of[people[assigned]] = groups[row_col[assigned]]


def _match(r, j, cost, cap, unfilled, n_people) -> np.ndarray:
    """Return the slot group row of each person column (-1: unassigned) of a min-cost assignment.

    OR-tools' min-cost flow on the network source → person (1) → group (cap) → sink plus an unfilled
    arc source → group (cap, unfilled cost); without OR-tools, SciPy's sparse matching on slots.
    """
    n_groups = len(cap)
    total = int(cap.sum())
    if _ortools is None:
        return _match_scipy(r, j, cost, cap, unfilled, n_people)
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


def _match_scipy(r, j, cost, cap, unfilled, n_people) -> np.ndarray:
    """Return the slot group row of each person column (-1: unassigned) of a min-cost assignment.

    Rows of the matrix are slots (a group of capacity ``h`` gives ``h`` rows), columns are people
    plus one private dummy column per slot carrying its unfilled cost; costs are offset by +1.
    """
    start = np.concatenate([[0], np.cumsum(cap)])
    n_slots = int(start[-1])
    reps = cap[r]
    slot = np.repeat(start[r], reps) + _ranges(reps)
    rows = np.concatenate([slot, np.arange(n_slots)])
    cols = np.concatenate([np.repeat(j, reps), n_people + np.arange(n_slots)])
    data = np.concatenate([np.repeat(cost, reps), np.repeat(unfilled, cap)]).astype(np.float64) + 1
    matrix = sp.csr_matrix((data, (rows, cols)), shape=(n_slots, n_people + n_slots))
    row_ind, col_ind = min_weight_full_bipartite_matching(matrix)
    real = col_ind < n_people
    row_col = np.full(n_people, -1, dtype=np.int64)
    row_col[col_ind[real]] = np.repeat(np.arange(len(cap)), cap)[row_ind[real]]
    return row_col


def _ranges(counts: np.ndarray) -> np.ndarray:
    """Return ``0..k-1`` for each ``k`` in ``counts``, concatenated."""
    ends = np.cumsum(counts)
    return np.arange(int(ends[-1]) if len(ends) else 0) - np.repeat(ends - counts, counts)


def _finish(problem: AssignmentProblem, group_of: np.ndarray) -> Solution:
    a = problem.arrays
    idx = np.flatnonzero(group_of >= 0)
    parts = a.components(group_of[idx], idx, problem.anchors, problem.current_post, problem.notified)
    full = {}
    for k, v in parts.items():
        arr = np.zeros(len(a.people), dtype=np.int64)
        arr[idx] = v
        full[k] = arr
    filled = np.bincount(group_of[idx], minlength=len(a.g_cap))
    objective = sum(int(full[k].sum()) for k in COMPONENTS) + int(((a.g_cap - filled) * a.g_unfilled).sum())
    return Solution(problem, group_of, objective, full)
