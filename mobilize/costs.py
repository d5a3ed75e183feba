"""What the assignment solver works on: people, posts, the cost policy, and the edge costs as arrays.

A person may serve a post (an *edge*) when they are eligible, hold the post's skills (all of
``skills_all`` and, if given, at least one of ``skills_any``), live within ``max_travel_minutes`` of
it, and — for the leader part of a post that needs a leader — are a designated leader. Every edge
has an integer cost, the sum of the components an assignment can explain itself with:

==================  ==========================================================================
``travel``          travel minutes from home to the post × ``travel_per_minute``
``preassignment``   ``leave_preassigned`` when the person is pre-assigned (平时编组) to another post
``borrow``          ``borrow`` when the post lies in another community of the street (街道统筹)
``squad_split``     ``squad_split`` when a commando squad member serves off the squad's anchor post
``fairness``        ``per_recent_duty`` × the person's recent duties
``keep_in_place``   ``move_notified`` when an already notified person moves to another post
==================  ==========================================================================

An unfilled slot costs ``unfilled_by_priority[priority - 1]`` (×3/2 for the leader part), far above
any edge, so critical posts (priority 1) fill first and a slot is left empty only when nobody may
fill it. Costs are computed with numpy over whole blocks of people and posts at once.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Hashable, Iterable, Sequence
from dataclasses import dataclass, fields
from numbers import Real
from itertools import repeat
from operator import attrgetter

import numpy as np

from mobilize.errors import InvalidInput, Problem
from mobilize.inputs_check import validate_inputs as _validate
from mobilize.squads import anchors_of

__all__ = [
    "Person",
    "Post",
    "CostPolicy",
    "COMPONENTS",
    "travel_minutes",
]

#: The names of an edge's cost components, in the order :class:`~mobilize.solver.Assignment` shows them.
COMPONENTS = ("travel", "preassignment", "borrow", "squad_split", "fairness", "keep_in_place")


# Not frozen, though never changed once built: a city builds tens of thousands of these per key press, and a
# frozen dataclass's __init__ (one object.__setattr__ per field) costs six times a plain one's. Treat as immutable.
@dataclass(slots=True, unsafe_hash=True)
class Person:
    """One person the solver may assign (人员), as plain data.

    ``id`` is the caller's key (a database id or a phone). ``community`` and ``street`` are org-unit
    keys; ``lat``/``lon`` is the home location. ``leader`` marks a designated group leader (may fill
    a post's leader part), ``squad`` the commando squad (突击队) the person belongs to,
    ``preassigned_post`` the post id of the peacetime pre-assignment (平时编组), ``recent_duty`` the
    number of recent duties (fairness). People with ``eligible=False`` (on leave, already deployed)
    get no edges; the caller may also just leave them out. ``party_member`` and ``group`` are not used
    by the solver; :mod:`mobilize.branches` reads them.
    """

    id: Hashable
    community: str
    street: str
    lat: float
    lon: float
    skills: frozenset[str] = frozenset()
    leader: bool = False
    party_member: bool = False
    squad: str | None = None
    preassigned_post: str | None = None
    recent_duty: int = 0
    eligible: bool = True
    group: str | None = None


# Not frozen, for the speed of building tens of thousands (see Person). Treat as immutable.
@dataclass(slots=True, unsafe_hash=True)
class Post:
    """One post of a plan (岗位) to staff in an activation, as plain data.

    ``headcount`` people are needed; each must hold every skill of ``skills_all`` and, when
    ``skills_any`` is not empty, at least one of it. With ``leader_required`` at least one holder must
    be a designated leader: the post is split into a 1-slot leader part (slot group
    ``"<id>.leader"``) only leaders may fill, and the rest (slot group ``"<id>"``). ``priority`` runs
    from 1 (critical) to 5 (low). ``group`` is the wartime work group (e.g. ``"medical"``).
    """

    id: str
    community: str
    street: str
    lat: float
    lon: float
    headcount: int
    skills_all: frozenset[str] = frozenset()
    skills_any: frozenset[str] = frozenset()
    leader_required: bool = False
    priority: int = 3
    group: str | None = None


@dataclass(frozen=True, slots=True)
class CostPolicy:
    """The integer cost weights (see the module docstring); the defaults suit a city on e-bikes.

    ``borrowing`` false turns street-level borrowing (街道统筹) off: short slot groups get no edges
    from other communities, each community staffs its posts from its own people only. Invalid
    values raise :class:`~mobilize.errors.InvalidInput` naming the field.
    """

    minutes_per_km: float = 4.0
    max_travel_minutes: int = 60
    travel_per_minute: int = 1
    leave_preassigned: int = 60
    borrow: int = 45
    squad_split: int = 30
    per_recent_duty: int = 5
    move_notified: int = 200
    unfilled_by_priority: tuple[int, ...] = (100_000, 30_000, 10_000, 3_000, 1_000)
    borrowing: bool = True

    def __post_init__(self) -> None:
        problems = []
        for name in ("max_travel_minutes", "travel_per_minute", "leave_preassigned", "borrow", "squad_split",
                     "per_recent_duty", "move_notified"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Real) or not value >= 0:
                problems.append(Problem("须为非负数", "must be a number ≥ 0", field=name, value=value))
        if isinstance(self.minutes_per_km, bool) or not isinstance(self.minutes_per_km, Real) \
                or not 0 < self.minutes_per_km < 1000:
            problems.append(Problem("须为大于0的数", "must be a positive number", field="minutes_per_km",
                                    value=self.minutes_per_km))
        u = self.unfilled_by_priority
        if not isinstance(u, tuple) or len(u) != 5 or any(isinstance(x, bool) or not isinstance(x, Real) or not x >= 0
                                                          for x in u):
            problems.append(Problem("须为5个非负数（优先级1至5）", "must be 5 numbers ≥ 0 (priorities 1-5)",
                                    field="unfilled_by_priority", value=list(u) if isinstance(u, tuple) else u))
        if not isinstance(self.borrowing, bool):
            problems.append(Problem("须为 true 或 false", "must be true or false", field="borrowing",
                                    value=self.borrowing))
        if problems:
            raise InvalidInput("成本策略有误", "Invalid cost policy", problems)

    def as_dict(self) -> dict:
        """Return the policy as JSON-able data (what an activation stores)."""
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict | None) -> CostPolicy:
        """Return the policy :meth:`as_dict` gave (missing keys take their defaults)."""
        data = dict(data or {})
        if isinstance(data.get("unfilled_by_priority"), list):
            data["unfilled_by_priority"] = tuple(data["unfilled_by_priority"])
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise InvalidInput("成本策略有误", "Invalid cost policy",
                               [Problem("未知字段", "unknown field", field=k) for k in unknown])
        return cls(**data)

    def unfilled(self, priority: int, leader_part: bool = False) -> int:
        """Return the cost of one unfilled slot of a post of ``priority``."""
        cost = self.unfilled_by_priority[priority - 1]
        return cost * 3 // 2 if leader_part else cost


def travel_minutes(lat1, lon1, lat2, lon2, minutes_per_km: float):
    """Return whole travel minutes between points (equirectangular km, rounded up); arrays broadcast.

    >>> int(travel_minutes(30.0, 120.0, 30.01, 120.0, 4.0))
    5
    """
    dy = (np.asarray(lat2, dtype=float) - lat1) * 110.574
    dx = (np.asarray(lon2, dtype=float) - lon1) * (111.320 * np.cos(np.radians(lat1)))
    km = np.sqrt(dx * dx + dy * dy)
    return np.ceil(km * minutes_per_km - 1e-9).astype(np.int64)


class Arrays:
    """People, posts and slot groups of a problem as numpy arrays (internal to the solver).

    Slot group ``g`` belongs to post ``g_post[g]``; a post needing a leader has its leader part
    (capacity 1) right before its rest. Squads get an anchor post (see :func:`squad_anchors`).
    """

    def __init__(self, people: Sequence[Person], posts: Sequence[Post], policy: CostPolicy):
        self.people = list(people)
        self.posts = list(posts)
        self.policy = policy
        _validate(self.people, self.posts)  # among others: each community lies in one street
        # Columns are read with attrgetter and sets of few distinct values built first: tens of thousands of
        # people share a few skill sets, a few hundred communities.
        skill_sets = set(map(attrgetter("skills"), self.people))
        skill_sets.update(map(attrgetter("skills_all"), self.posts), map(attrgetter("skills_any"), self.posts))
        skills = sorted({s for ss in skill_sets for s in ss})
        if len(skills) > 63:
            raise InvalidInput("技能种类超过63种", "More than 63 distinct skills in one problem")
        self.skill_bit = {s: 1 << i for i, s in enumerate(skills)}
        self.skill_names = skills
        street_of = dict(zip(map(attrgetter("community"), self.people), map(attrgetter("street"), self.people)))
        street_of.update(zip(map(attrgetter("community"), self.posts), map(attrgetter("street"), self.posts)))
        comms = sorted(street_of)
        self.comm_index = {c: i for i, c in enumerate(comms)}
        self.communities = comms
        self.comm_street = [street_of[c] for c in comms]
        street_ids = {s: i for i, s in enumerate(sorted(set(self.comm_street)))}
        self.comm_street_idx = np.array([street_ids[s] for s in self.comm_street], dtype=np.int64)
        self.person_index = dict(zip(map(attrgetter("id"), self.people), range(len(self.people))))
        self.post_index = dict(zip(map(attrgetter("id"), self.posts), range(len(self.posts))))
        self._masks: dict[frozenset, int] = {}
        self._people_arrays()
        self._post_arrays()

    def _mask(self, names) -> int:
        m = self._masks.get(names)
        if m is None:
            m = 0
            for s in names:
                m |= self.skill_bit[s]
            self._masks[names] = m
        return m

    def _people_arrays(self) -> None:
        ps = self.people
        comm, lat, lon, skills, leader, eligible, duty, pre, squad = (
            list(map(attrgetter(name), ps)) for name in ("community", "lat", "lon", "skills", "leader", "eligible",
                                                         "recent_duty", "preassigned_post", "squad"))
        self.p_comm = np.fromiter(map(self.comm_index.__getitem__, comm), dtype=np.int64, count=len(comm))
        self.p_lat = np.array(lat, dtype=float)
        self.p_lon = np.array(lon, dtype=float)
        sets = {s: i for i, s in enumerate(set(skills))}  # people share a few skill sets
        set_of = np.fromiter(map(sets.__getitem__, skills), dtype=np.int64, count=len(skills))
        masks = np.array([self._mask(s) for s in sets], dtype=np.uint64)
        self.p_skill = masks[set_of] if len(set_of) else np.zeros(0, dtype=np.uint64)
        self.p_leader = np.array(leader, dtype=bool)
        # a person's kind, 2 × skill set + leader: qualifies() works on these few
        self.p_kind = set_of * 2 + self.p_leader
        self.kind_skill, self.kind_leader = np.repeat(masks, 2), np.tile([False, True], len(masks))
        self.p_eligible = np.array(eligible, dtype=bool)
        self.p_duty = np.array(duty, dtype=np.int64)
        index = self.post_index
        self.p_pre = np.fromiter(map(index.get, pre, repeat(-1)), dtype=np.int64, count=len(pre))
        # pre-assignments to posts not (yet) in the problem, e.g. posts of a higher response level
        self.pending_pre: dict[str, list[int]] = {}
        for i in np.flatnonzero(self.p_pre < 0).tolist():
            q = pre[i]
            if q is not None:
                self.pending_pre.setdefault(q, []).append(i)
        self.repointed = np.zeros(0, dtype=np.int64)
        squads = sorted({x for x in squad if x is not None})
        self.squads = squads
        sq_index = {s: i for i, s in enumerate(squads)}
        self.p_squad = np.fromiter(map(sq_index.get, squad, repeat(-1)), dtype=np.int64, count=len(squad))

    def _post_arrays(self) -> None:
        qs = self.posts
        n = len(qs)
        comm, lat, lon, headcount, leader, priority, skills_all, skills_any = (
            list(map(attrgetter(name), qs)) for name in ("community", "lat", "lon", "headcount", "leader_required",
                                                         "priority", "skills_all", "skills_any"))
        self.q_comm = np.fromiter(map(self.comm_index.__getitem__, comm), dtype=np.int64, count=n)
        self.q_lat = np.array(lat, dtype=float)
        self.q_lon = np.array(lon, dtype=float)
        sites: dict[tuple[float, float], int] = {}  # posts share sites: travel is computed once per site
        self.q_site = np.array([sites.setdefault(x, len(sites)) for x in zip(lat, lon)], dtype=np.int64)
        self.site_lat = np.array([x for x, _ in sites], dtype=float)
        self.site_lon = np.array([y for _, y in sites], dtype=float)
        # Each post's slot groups: its leader part (1 slot) where it needs a leader, then the rest, if any.
        hc = np.array(headcount, dtype=np.int64).reshape(n)
        lead = np.array(leader, dtype=bool).reshape(n) & (hc > 0)
        rest = hc - lead
        parts = np.sort(np.concatenate([2 * np.flatnonzero(lead), 2 * np.flatnonzero(rest > 0) + 1]))
        self.g_post = parts // 2
        self.g_leader = parts % 2 == 0
        self.g_cap = np.where(self.g_leader, 1, rest[self.g_post])
        pol = self.policy
        table = np.array([[pol.unfilled(p, False), pol.unfilled(p, True)] for p in range(1, 6)], dtype=np.int64)
        self.g_unfilled = table[np.array(priority, dtype=np.int64).reshape(n)[self.g_post] - 1, self.g_leader.astype(int)]
        self.g_comm = self.q_comm[self.g_post]
        all_m = np.fromiter(map(self._mask, skills_all), dtype=np.uint64, count=n)
        any_m = np.fromiter(map(self._mask, skills_any), dtype=np.uint64, count=n)
        self.g_all = all_m[self.g_post]
        self.g_any = any_m[self.g_post]
        kinds: dict[tuple[int, int, bool], int] = {}  # (skills_all, skills_any, leader part): a few kinds
        self.g_kind = np.array([kinds.setdefault(k, len(kinds)) for k in zip(self.g_all.tolist(), self.g_any.tolist(),
                                                                             self.g_leader.tolist())], dtype=np.int64)
        need = np.array([k[0] for k in kinds], dtype=np.uint64)[:, None]
        anym = np.array([k[1] for k in kinds], dtype=np.uint64)[:, None]
        lead = np.array([k[2] for k in kinds], dtype=bool)[:, None]
        sk = self.kind_skill[None, :]
        self.kind_ok = ((sk & need) == need) & ((anym == 0) | ((sk & anym) != 0)) & (~lead | self.kind_leader[None, :])

    def with_changes(self, removed: Iterable[Hashable], added: Sequence[Post]) -> Arrays:
        """Return a copy with ``removed`` people made ineligible and ``added`` posts appended.

        Existing slot groups keep their indices (new posts' groups come after them); ``repointed``
        lists the people whose pre-assigned post is one of the added posts.
        """
        new = copy.copy(self)
        new._masks = {}  # a copy may number added skills its own way
        new.p_eligible = self.p_eligible.copy()
        new.p_eligible[[self.person_index[p] for p in removed if p in self.person_index]] = False
        new.repointed = np.zeros(0, dtype=np.int64)
        if not added:
            return new
        _validate([], added)
        dup = [Problem("岗位编号重复", "duplicate post id", row=i, field="id", value=q.id)
               for i, q in enumerate(added) if q.id in self.post_index]
        if dup:
            raise InvalidInput("新增岗位有误", "Invalid added posts", dup)
        new.posts = self.posts + list(added)
        new.skill_bit = dict(self.skill_bit)
        new.skill_names = list(self.skill_names)
        for q in added:
            for s in sorted(q.skills_all | q.skills_any):
                if s not in new.skill_bit:
                    if len(new.skill_bit) >= 63:
                        raise InvalidInput("技能种类超过63种", "More than 63 distinct skills in one problem")
                    new.skill_bit[s] = 1 << len(new.skill_bit)
                    new.skill_names.append(s)
        new.comm_index, new.communities = dict(self.comm_index), list(self.communities)
        new.comm_street, street_idx = list(self.comm_street), list(self.comm_street_idx)
        for q in added:
            if q.community not in new.comm_index:
                new.comm_index[q.community] = len(new.communities)
                new.communities.append(q.community)
                new.comm_street.append(q.street)
                known = [s for s, i in zip(self.comm_street, self.comm_street_idx)]
                street_idx.append(self.comm_street_idx[known.index(q.street)] if q.street in known
                                  else max(street_idx, default=-1) + 1)
            elif new.comm_street[new.comm_index[q.community]] != q.street:
                raise InvalidInput("同一社区属于两个街道", "community lies in two streets",
                                   [Problem("同一社区属于两个街道", "community lies in two streets",
                                            field="street", value=q.street)])
        new.comm_street_idx = np.array(street_idx, dtype=np.int64)
        new.post_index = {q.id: i for i, q in enumerate(new.posts)}
        new._post_arrays()
        new.p_pre = self.p_pre.copy()
        new.pending_pre = dict(self.pending_pre)
        repointed = []
        for q in added:
            for i in new.pending_pre.pop(q.id, ()):
                new.p_pre[i] = new.post_index[q.id]
                repointed.append(i)
        new.repointed = np.array(repointed, dtype=np.int64)
        return new

    def slot_group_id(self, g: int) -> str:
        """Return the audit id of slot group ``g``: ``"<post_id>"`` or ``"<post_id>.leader"``."""
        pid = self.posts[self.g_post[g]].id
        return f"{pid}.leader" if self.g_leader[g] else str(pid)

    def qualifies(self, groups: np.ndarray, people: np.ndarray) -> np.ndarray:
        """Return the (groups × people) mask of who may fill which slot group, travel aside.

        Looked up in ``kind_ok``: whether a (skills, leader) kind of person qualifies for a (skills
        needed, leader part) kind of slot group, worked out once per pair of kinds.
        """
        ok = self.kind_ok[self.g_kind[groups]][:, self.p_kind[people]]
        ok &= self.p_eligible[people][None, :]
        return ok

    def components(self, groups, people, anchors: np.ndarray, cur_post: np.ndarray | None,
                   notified: np.ndarray | None) -> dict[str, np.ndarray]:
        """Return each cost component for the pairs ``(groups, people)`` (arrays broadcast)."""
        pol = self.policy
        post = self.g_post[groups]
        minutes = travel_minutes(self.p_lat[people], self.p_lon[people],
                                 self.q_lat[post], self.q_lon[post], pol.minutes_per_km)
        pre = self.p_pre[people]
        out = {
            "minutes": minutes,
            "travel": minutes * pol.travel_per_minute,
            "preassignment": np.where((pre >= 0) & (pre != post), pol.leave_preassigned, 0),
            "borrow": np.where(self.p_comm[people] != self.g_comm[groups], pol.borrow, 0),
        }
        sq = self.p_squad[people]
        anchor = np.append(anchors, -1)[sq]  # no squad (-1) reads the appended -1
        out["squad_split"] = np.where((sq >= 0) & (anchor != post), pol.squad_split, 0)
        out["fairness"] = self.p_duty[people] * pol.per_recent_duty + 0 * post
        if cur_post is None:
            out["keep_in_place"] = np.zeros(np.broadcast(post, people).shape, dtype=np.int64)
        else:
            cp = cur_post[people]
            moved = (cp >= 0) & (cp != post) & notified[people]
            out["keep_in_place"] = np.where(moved, pol.move_notified, 0)
        return out

    def squad_anchors(self) -> np.ndarray:
        """Return the anchor post index of each squad (-1 when it has none): :mod:`mobilize.squads`."""
        return anchors_of(self, np.arange(len(self.squads)))

    def squad_anchors_for(self, anchors: np.ndarray, communities: Collection[int]) -> np.ndarray:
        """Return ``anchors`` with the squads that have members in ``communities`` recomputed."""
        out = anchors.copy()
        touched = np.isin(self.p_comm, list(communities)) & (self.p_squad >= 0)
        squads = np.unique(self.p_squad[touched])
        out[squads] = anchors_of(self, squads)
        return out
