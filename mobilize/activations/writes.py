"""Bulk writes of a solve: posts, orders, people's status, branches — Core statements, a city in well under a second."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Sequence
from dataclasses import fields

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mobilize.activations.models import Branch, BranchMember, Order, Post, SolveRecord
from mobilize.branches import BranchPlan, Member
from mobilize.costs import CostPolicy
from mobilize.costs import Person as Candidate
from mobilize.costs import Post as Demand
from mobilize.db import utcnow
from mobilize.plans import PostSpec
from mobilize.solver import Solution
from rosters.models import Person

__all__ = ["insert_posts", "insert_orders", "set_people_status", "save_branches", "save_solve", "branch_members",
           "demands_of", "load_solve", "update_filled", "set_filled", "members_of"]

_CHUNK = 5000


def _chunks(items: list, size: int = _CHUNK):
    for i in range(0, len(items), size):
        yield items[i: i + size]


def demands_of(specs: Iterable[PostSpec]) -> list[Demand]:
    """Return the solver's view of the posts (id = the post key)."""
    return [Demand(s.key, s.community, s.street, s.lat, s.lon, s.headcount, s.skills_all, s.skills_any,
                   s.leader_required, s.priority, s.group) for s in specs]


async def insert_posts(session: AsyncSession, activation_id: int, specs: Sequence[PostSpec],
                       community_ids: dict[str, int]) -> dict[str, int]:
    """Insert the posts and return their ids by key."""
    rows = [{"activation_id": activation_id, "key": s.key, "community_id": community_ids[s.community], "code": s.code,
             "group": s.group, "name_zh": s.zh, "name_en": s.en, "site_code": s.site_code, "site_name": s.site_name,
             "lat": s.lat, "lon": s.lon, "headcount": s.headcount, "filled": 0, "skills_all": sorted(s.skills_all),
             "skills_any": sorted(s.skills_any), "leader_required": s.leader_required, "priority": s.priority,
             "shift_hours": s.shift_hours, "active": True} for s in specs]
    for chunk in _chunks(rows):
        await session.execute(insert(Post.__table__), chunk)
    return dict((await session.execute(select(Post.key, Post.id).where(Post.activation_id == activation_id))).all())


def _explain(a) -> dict:
    parts = {k: int(getattr(a, k)) for k in ("travel", "preassignment", "borrow", "squad_split", "fairness",
                                              "keep_in_place")}
    return {"travel_minutes": int(a.travel_minutes), "cost": int(a.cost), "parts": parts, "borrowed": a.borrowed,
            "leader_part": a.leader_part}


async def insert_orders(session: AsyncSession, activation_id: int, assignments, post_ids: dict[str, int]) -> int:
    """Insert one notified order per assignment; return how many."""
    now = utcnow()
    rows = [{"activation_id": activation_id, "person_id": a.person, "post_id": post_ids[a.post], "status": "notified",
             "leader_part": a.leader_part, "borrowed": a.borrowed, "travel_minutes": int(a.travel_minutes),
             "cost": int(a.cost), "explanation": _explain(a), "created_at": now, "updated_at": now}
            for a in assignments]
    for chunk in _chunks(rows):
        await session.execute(insert(Order.__table__), chunk)
    return len(rows)


async def set_people_status(session: AsyncSession, person_ids: Sequence[int], status: str) -> None:
    """Set the standing status of many people at once."""
    for chunk in _chunks(list(person_ids), 900):
        await session.execute(update(Person).where(Person.id.in_(chunk)).values(status=status))


async def update_filled(session: AsyncSession, post_ids: dict[str, int], solution: Solution) -> None:
    """Store each post's filled count after a full solve."""
    filled: dict[int, int] = {pid: 0 for pid in post_ids.values()}
    for a in solution.assignments:
        filled[post_ids[a.post]] += 1
    await set_filled(session, filled)


def members_of(holding: Iterable[tuple[int, str]], candidates: dict, specs: dict[str, PostSpec]) -> list[Member]:
    """Return the party members among (person, post key) holders as branch-formation input."""
    out = []
    for person, key in holding:
        c = candidates[person]
        if not c.party_member:
            continue
        spec = specs[key]
        out.append(Member(person, spec.community, spec.group, True, c.leader, spec.group == "command", key,
                          spec.lat, spec.lon))
    return out


def branch_members(solution: Solution, candidates: dict, specs: dict[str, PostSpec]) -> list[Member]:
    """Return the assigned party members of ``solution`` as branch-formation input."""
    return members_of(((a.person, a.post) for a in solution.assignments), candidates, specs)


async def set_filled(session: AsyncSession, filled: dict[int, int]) -> None:
    """Store each post's filled count (post id -> holders)."""
    t = Post.__table__
    params = [{"b_id": pid, "v_filled": n} for pid, n in filled.items()]
    for chunk in _chunks(params):
        await session.execute(update(t).where(t.c.id == bindparam("b_id")).values(filled=bindparam("v_filled")), chunk)


async def save_branches(session: AsyncSession, activation_id: int, plan: BranchPlan,
                        community_ids: dict[str, int]) -> None:
    """Replace the activation's active branches by ``plan`` (ids kept by key, members rewritten)."""
    existing = dict((await session.execute(select(Branch.key, Branch.id).where(
        Branch.activation_id == activation_id, Branch.status == "active"))).all())
    keep = {b.id for b in plan.branches}
    gone = [bid for key, bid in existing.items() if key not in keep]
    now = utcnow()
    if gone:
        await session.execute(update(Branch).where(Branch.id.in_(gone)).values(status="dissolved", closed_at=now))
    new_rows = [{"activation_id": activation_id, "key": b.id, "community_id": community_ids[b.community],
                 "groups": list(b.groups), "joint": b.joint, "secretary_id": b.secretary, "status": "active",
                 "formed_at": now} for b in plan.branches if b.id not in existing]
    if new_rows:
        await session.execute(insert(Branch.__table__), new_rows)
    for b in plan.branches:
        if b.id in existing:
            await session.execute(update(Branch).where(Branch.id == existing[b.id]).values(
                groups=list(b.groups), joint=b.joint, secretary_id=b.secretary))
    ids = dict((await session.execute(select(Branch.key, Branch.id).where(
        Branch.activation_id == activation_id, Branch.status == "active"))).all())
    await session.execute(delete(BranchMember).where(BranchMember.branch_id.in_(list(ids.values()))))
    rows = []
    for b in plan.branches:
        in_group = {}
        for g in b.party_groups:
            for m in g.members:
                in_group[m] = (g.id, m == g.head)
        for m in b.members:
            group_id, head = in_group.get(m, (None, False))
            rows.append({"branch_id": ids[b.id], "person_id": m, "party_group": group_id, "group_head": head})
    for chunk in _chunks(rows):
        await session.execute(insert(BranchMember.__table__), chunk)


def _columns(items: Sequence, cls) -> dict[str, list]:
    """Return ``items`` (dataclasses) as columns: far smaller and faster than a dict per item."""
    out = {}
    for f in fields(cls):
        values = [getattr(item, f.name) for item in items]
        if values and isinstance(values[0], frozenset):
            values = [sorted(v) for v in values]
        out[f.name] = values
    return out


async def save_solve(session: AsyncSession, activation_id: int, *, candidates: Sequence[Candidate],
                     demands: Sequence[Demand], policy: CostPolicy, current: dict | None, solution: Solution) -> None:
    """Keep the solve's inputs and chosen slot groups so ``/problem`` can export exactly this problem."""
    data = {
        "people": _columns(candidates, Candidate),
        "posts": _columns(demands, Demand),
        "policy": {f.name: getattr(policy, f.name) for f in fields(CostPolicy)},
        "current": [[p, q] for p, q in (current or {}).items()],
        "assignment": [[a.person, a.slot_group] for a in solution.assignments],
        "objective": int(solution.objective),
    }
    blob = gzip.compress(json.dumps(data, separators=(",", ":")).encode(), compresslevel=1)
    await session.execute(delete(SolveRecord).where(SolveRecord.activation_id == activation_id))
    await session.execute(insert(SolveRecord.__table__).values(activation_id=activation_id, inputs=blob,
                                                               solved_at=utcnow()))


def load_solve(blob: bytes) -> tuple[list[Candidate], list[Demand], CostPolicy, dict, list, int]:
    """Return what :func:`save_solve` kept: candidates, demands, policy, current, assignment, objective."""
    data = json.loads(gzip.decompress(blob))

    def rows(columns: dict[str, list], cls):
        names = [f.name for f in fields(cls)]
        sets = {f.name for f in fields(cls) if "frozenset" in str(f.type)}
        count = len(columns[names[0]]) if names else 0
        return [cls(**{n: frozenset(columns[n][i]) if n in sets else columns[n][i] for n in names})
                for i in range(count)]

    policy_data = {k: tuple(v) if isinstance(v, list) else v for k, v in data["policy"].items()}
    return (rows(data["people"], Candidate), rows(data["posts"], Demand), CostPolicy(**policy_data),
            {p: q for p, q in data["current"]}, data["assignment"], data["objective"])
