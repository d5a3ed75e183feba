"""Temporary party branches (临时党支部) at the front line, formed from who was assigned, and repaired.

Rules (pure and deterministic; only assigned party members count):

* **Own branch.** A wartime group of a community with 3 or more assigned party members forms a
  branch, id ``"<community>:<group>"``.
* **Joint branch (联合临时党支部).** A group with fewer than 3 joins the largest branch of its
  community (ties: the smaller id), which becomes a joint branch. If no group of the community has 3
  but together they have 3 or more, they form one joint branch, id ``"<community>:joint"``.
* **No branch possible.** A community with fewer than 3 assigned party members gets no branch; it is
  reported with the reason — members are never invented.
* **Secretary (书记).** The best-placed member: a pre-designated group leader first, then someone on
  the group's command post, then the one nearest the centre of the members' posts, ties by id.
* **Party groups (党小组).** A branch of more than ``max_size`` members splits into
  ``ceil(n / party_group_size)`` party groups as even as possible (members ordered by group, post and
  id), each headed by its best-placed member, id ``"<branch>/<k>"``.

:func:`repair_branches` re-forms after membership changes and keeps branch ids, secretaries and party
groups where they are still valid, reporting every change.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

__all__ = ["Member", "PartyGroup", "Branch", "NoBranch", "BranchChange", "BranchPlan",
           "form_branches", "repair_branches"]


# Not frozen, for the speed of building tens of thousands (see costs.Person). Treat as immutable.
@dataclass(slots=True, unsafe_hash=True)
class Member:
    """One assigned person as branch formation sees them.

    ``group`` is the wartime group (e.g. ``"medical"``) of the post they were assigned to; ``leader``
    marks a pre-designated group leader; ``command_post`` that they hold the group's command post;
    ``lat``/``lon`` locate their post.
    """

    person: Hashable
    community: str
    group: str
    party_member: bool = True
    leader: bool = False
    command_post: bool = False
    post: str | None = None
    lat: float = 0.0
    lon: float = 0.0


@dataclass(frozen=True, slots=True)
class PartyGroup:
    """A party group (党小组) of a large branch, with its head (组长)."""

    id: str
    head: Hashable
    members: tuple[Hashable, ...]


@dataclass(frozen=True, slots=True)
class Branch:
    """A temporary party branch: its wartime groups, secretary, members and party groups."""

    id: str
    community: str
    groups: tuple[str, ...]
    secretary: Hashable
    members: tuple[Hashable, ...]
    party_groups: tuple[PartyGroup, ...] = ()

    @property
    def joint(self) -> bool:
        """True for a joint branch (联合临时党支部) of two or more groups."""
        return len(self.groups) > 1


@dataclass(frozen=True, slots=True)
class NoBranch:
    """A community where no branch is possible, and why."""

    community: str
    party_members: int
    reason_zh: str
    reason_en: str


@dataclass(frozen=True, slots=True)
class BranchChange:
    """One change made by :func:`repair_branches` (``kind``: formed, dissolved, secretary, members, party_groups)."""

    branch: str
    kind: str
    detail: str


@dataclass(frozen=True, slots=True)
class BranchPlan:
    """The branches of an activation, the communities without one, and what changed (on repair)."""

    branches: tuple[Branch, ...]
    no_branch: tuple[NoBranch, ...]
    changes: tuple[BranchChange, ...] = ()

    def branch_of(self, person: Hashable) -> Branch | None:
        """Return the branch a person belongs to, or ``None``."""
        return next((b for b in self.branches if person in b.members), None)


def _rank(members: Sequence[Member]) -> list[Member]:
    """Order members best-placed first: leader, command post, nearest the posts' centre, id."""
    if not members:
        return []
    lat = sum(m.lat for m in members) / len(members)
    lon = sum(m.lon for m in members) / len(members)
    return sorted(members, key=lambda m: (not m.leader, not m.command_post,
                                          (m.lat - lat) ** 2 + (m.lon - lon) ** 2, str(m.person)))


def _structure(members: Iterable[Member]) -> tuple[dict[str, tuple[str, list[Member]]], list[NoBranch]]:
    """Return branch id → (community, members) and the communities without a branch."""
    by_comm: dict[str, dict[str, list[Member]]] = {}
    for m in members:
        if m.party_member:
            by_comm.setdefault(m.community, {}).setdefault(m.group, []).append(m)
    out: dict[str, tuple[str, list[Member]]] = {}
    none: list[NoBranch] = []
    for comm in sorted(by_comm):
        groups = by_comm[comm]
        total = sum(len(v) for v in groups.values())
        if total < 3:
            none.append(NoBranch(comm, total, f"仅有{total}名在岗党员,不足3人,无法组建临时党支部",
                                 f"only {total} assigned party member(s), 3 are needed for a branch"))
            continue
        big = sorted(g for g, v in groups.items() if len(v) >= 3)
        if not big:
            out[f"{comm}:joint"] = (comm, [m for g in sorted(groups) for m in groups[g]])
            continue
        for g in big:
            out[f"{comm}:{g}"] = (comm, list(groups[g]))
        host = min(big, key=lambda g: (-len(groups[g]), g))
        for g in sorted(set(groups) - set(big)):
            out[f"{comm}:{host}"][1].extend(groups[g])
    return out, none


def _party_groups(branch_id: str, members: list[Member], size: int) -> tuple[PartyGroup, ...]:
    ordered = sorted(members, key=lambda m: (m.group, str(m.post), str(m.person)))
    k = math.ceil(len(ordered) / size)
    chunks = [ordered[i * len(ordered) // k:(i + 1) * len(ordered) // k] for i in range(k)]
    return tuple(PartyGroup(f"{branch_id}/{i + 1}", _rank(c)[0].person, tuple(sorted((m.person for m in c), key=str)))
                 for i, c in enumerate(chunks))


def form_branches(members: Iterable[Member], *, max_size: int = 15, party_group_size: int = 7) -> BranchPlan:
    """Return the temporary party branches formed by the assigned ``members`` (rules: module docstring).

    >>> ms = [Member(i, "C1", "medical", leader=(i == 2)) for i in range(3)] + [Member(9, "C1", "patrol")]
    >>> plan = form_branches(ms)
    >>> [(b.id, b.secretary, b.members, b.joint) for b in plan.branches]
    [('C1:medical', 2, (0, 1, 2, 9), True)]
    """
    structure, none = _structure(members)
    branches = []
    for bid, (comm, ms) in structure.items():
        split = _party_groups(bid, ms, party_group_size) if len(ms) > max_size else ()
        branches.append(Branch(bid, comm, tuple(sorted({m.group for m in ms})), _rank(ms)[0].person,
                               tuple(sorted((m.person for m in ms), key=str)), split))
    return BranchPlan(tuple(branches), tuple(none))


def repair_branches(previous: BranchPlan, members: Iterable[Member], *, max_size: int = 15,
                    party_group_size: int = 7) -> BranchPlan:
    """Return the branches re-formed after membership changes, keeping what is still valid.

    A branch keeps its id and secretary while the secretary is still a member (else the best-placed
    member replaces them); party groups keep their members and heads, newcomers join the smallest
    group with room, and groups re-split only when one would exceed ``party_group_size``.

    >>> ms = [Member(i, "C1", "medical", leader=(i == 0)) for i in range(4)]
    >>> plan = form_branches(ms)
    >>> fixed = repair_branches(plan, ms[1:])
    >>> fixed.branches[0].secretary, [c.kind for c in fixed.changes]
    (1, ['secretary', 'members'])
    """
    members = list(members)
    structure, none = _structure(members)
    old = {b.id: b for b in previous.branches}
    branches, changes = [], []
    for bid, (comm, ms) in structure.items():
        ids = {m.person for m in ms}
        was = old.get(bid)
        if was is None:
            changes.append(BranchChange(bid, "formed", f"{len(ms)} members"))
            secretary = _rank(ms)[0].person
        elif was.secretary in ids:
            secretary = was.secretary
        else:
            secretary = _rank(ms)[0].person
            changes.append(BranchChange(bid, "secretary", f"{was.secretary} → {secretary}"))
        if was is not None and set(was.members) != ids:
            joined, left = ids - set(was.members), set(was.members) - ids
            changes.append(BranchChange(bid, "members", f"+{sorted(joined, key=str)} -{sorted(left, key=str)}"))
        split: tuple[PartyGroup, ...] = ()
        if len(ms) > max_size:
            split = _repair_groups(bid, ms, was.party_groups if was else (), party_group_size)
            if was is None or split != was.party_groups:
                changes.append(BranchChange(bid, "party_groups", f"{len(split)} party groups"))
        elif was is not None and was.party_groups:
            changes.append(BranchChange(bid, "party_groups", "dissolved: branch no longer needs party groups"))
        branches.append(Branch(bid, comm, tuple(sorted({m.group for m in ms})), secretary,
                               tuple(sorted(ids, key=str)), split))
    for bid in sorted(set(old) - set(structure)):
        changes.append(BranchChange(bid, "dissolved", "members joined another branch or fell below 3"))
    return BranchPlan(tuple(branches), tuple(none), tuple(changes))


def _repair_groups(bid: str, ms: list[Member], previous: Sequence[PartyGroup], size: int) -> tuple[PartyGroup, ...]:
    by_id = {m.person: m for m in ms}
    kept = [[p for p in g.members if p in by_id] for g in previous]
    placed = {p for g in kept for p in g}
    newcomers = sorted((m for m in ms if m.person not in placed), key=lambda m: (m.group, str(m.post), str(m.person)))
    need = math.ceil(len(ms) / size)
    groups = [(pg.id, pg.head, g) for pg, g in zip(previous, kept) if g]
    if not groups or len(groups) > need + 1:
        return _party_groups(bid, ms, size)
    for m in newcomers:
        room = [i for i, (_, _, g) in enumerate(groups) if len(g) < size]
        if not room:
            return _party_groups(bid, ms, size)
        i = min(room, key=lambda i: (len(groups[i][2]), i))
        groups[i][2].append(m.person)
    out = []
    for gid, head, g in groups:
        if head not in g:
            head = _rank([by_id[p] for p in g])[0].person
        out.append(PartyGroup(gid, head, tuple(sorted(g, key=str))))
    return tuple(out)
