"""Optimal assignment of people to posts for the one-key switch (一键启动), and its incremental re-solve.

The model is a flow network (networkx is its reference form, :func:`mobilize.reference.to_networkx`):
source → person (capacity 1) → slot group (capacity = headcount) → sink, an edge wherever a person may
serve (:mod:`mobilize.costs`), and an unfilled arc per slot group carrying its unfilled cost. The
solver finds a minimum-cost flow — an OPTIMAL assignment for the stated costs — fast.

:mod:`mobilize.blocks` cuts the network into per-community cost blocks, borrow edges for short slot
groups (街道统筹; none when the policy's ``borrowing`` is off) and independent components; each component
is solved exactly by SciPy's ``min_weight_full_bipartite_matching`` (LAPJVsp, C++) on slots.

:func:`resolve` re-solves after a decline or a level raise: only the components that changed, with
``move_notified`` added to every edge that would move an already notified person to another post.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from mobilize.blocks import Block, build_blocks, components, match, same_block
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


# Not frozen, for the speed of building tens of thousands (see costs.Person). Treat as immutable.
@dataclass(slots=True, unsafe_hash=True)
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


@dataclass
class AssignmentProblem:
    """A built problem: arrays, per-community blocks, components and the keep-in-place state.

    Built by :func:`build_problem`; pass it to :func:`solve` and :func:`mobilize.reference.export_problem`.
    ``current_post[i]`` is the post index person ``i`` currently holds (-1: none) and ``notified[i]``
    whether moving them costs ``move_notified``.
    """

    arrays: Arrays
    anchors: np.ndarray
    blocks: list[Block]
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
    #: component → how far its assignment is optimal, for :func:`resolve` (see :func:`_stability`)
    _stable: dict[tuple[int, ...], int] = field(default_factory=dict, repr=False)

    @cached_property
    def assignments(self) -> tuple[Assignment, ...]:
        """Every assignment, in the order of the people given."""
        a = self.problem.arrays
        idx = np.flatnonzero(self.group_of >= 0)
        g = self.group_of[idx]
        parts = {k: v[idx].tolist() for k, v in self._parts.items()}
        total = sum(self._parts[k][idx] for k in COMPONENTS).tolist()
        borrowed = (a.p_comm[idx] != a.g_comm[g]).tolist()
        used = np.unique(g).tolist()  # each slot group's post, id and leader part, once
        post = dict(zip(used, (a.posts[q].id for q in a.g_post[used].tolist())))
        slot = {x: a.slot_group_id(x) for x in used}
        leader = dict(zip(used, a.g_leader[used].tolist()))
        people, gs = a.people, g.tolist()
        return tuple(map(Assignment, [people[i].id for i in idx.tolist()], [post[x] for x in gs],
                         [slot[x] for x in gs], [leader[x] for x in gs], borrowed, parts["minutes"], total,
                         *(parts[k] for k in COMPONENTS)))

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
    blocks = build_blocks(a, anchors, range(len(a.communities)))
    return AssignmentProblem(a, anchors, blocks, components(a, blocks, range(len(a.communities))), cur, notif)


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
    stable = {}
    for comp in problem.components:
        _solve_component(problem, comp, group_of)
        stable[comp] = _stability(problem, comp, group_of)
    return _finish(problem, group_of, stable)


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
    fresh = build_blocks(a, anchors, touched, {c for c in touched if c not in changed and c < len(old.blocks)},
                         old.blocks)
    for c, b in zip(touched, fresh):
        blocks[c] = b
    keep = [k for k in old.components if a.comm_street[k[0]] not in streets]
    comps = components(a, blocks, touched)
    problem = AssignmentProblem(a, anchors, blocks, keep + comps, cur, notif)
    group_of[~a.p_eligible] = -1
    # A component keeps its assignment only when its blocks (people, slot groups, local costs,
    # borrow edges) are all unchanged and that assignment is still optimal once keep-in-place charges
    # leaving it (see _stability). Anything else — a community that changed, a borrow edge gained or
    # lost because a lender or a short community changed, components that split or merged — is
    # re-solved whole.
    stable = {}
    for comp in keep + comps:
        level = solution._stable.get(comp, _MOVED)
        if (level == _PLAIN or level == _KEPT and _all_notified(problem, comp)) \
                and all(same_block(old.blocks[c], blocks[c]) for c in comp):
            stable[comp] = level
            continue
        group_of[np.isin(a.p_comm, comp)] = -1
        _solve_component(problem, comp, group_of)
        stable[comp] = _stability(problem, comp, group_of)
    return _finish(problem, group_of, stable)


#: how far a component's assignment is optimal: for the plain costs; for the costs plus keep-in-place
#: of itself (everyone it assigns notified); or only for an earlier keep-in-place it has moved away from
_PLAIN, _KEPT, _MOVED = 2, 1, 0


def _stability(problem: AssignmentProblem, comp: Sequence[int], group_of: np.ndarray) -> int:
    """Return how far the just-solved assignment of ``comp`` stays optimal (``_PLAIN``, ``_KEPT``, ``_MOVED``).

    Solved without keep-in-place it is optimal for the plain costs. Solved with keep-in-place it is
    optimal for the costs plus keep-in-place of *its own* assignment only when it moved nobody from
    the current one and everyone held was notified; otherwise a later full solve may undo a move it
    paid for (standing a notified person down is free), so :func:`resolve` must solve it again.
    """
    if problem.current_post is None:
        return _PLAIN
    a = problem.arrays
    people = np.concatenate([problem.blocks[c].people for c in comp])  # the eligible people of comp
    post = np.append(a.g_post, -1)[group_of[people]]
    cur = problem.current_post[people]
    return _KEPT if np.array_equal(post, cur) and _all_notified(problem, comp) else _MOVED


def _all_notified(problem: AssignmentProblem, comp: Sequence[int]) -> bool:
    """Return whether everyone ``comp``'s current assignment holds is notified."""
    people = np.concatenate([problem.blocks[c].people for c in comp])
    held = people[problem.current_post[people] >= 0]
    return bool(problem.notified[held].all())


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
    row_col = match(r, j, cost, cap, unfilled, len(people))
    assigned = row_col >= 0
    group_of[people[assigned]] = groups[row_col[assigned]]


def _finish(problem: AssignmentProblem, group_of: np.ndarray, stable: dict) -> Solution:
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
    return Solution(problem, group_of, objective, full, stable)
