"""Reads of an activation: posts with holders, orders with their explanation, branches, the audit problem."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from mobilize.access import Principal, mask_name, mask_phone
from mobilize.activations.writes import explanation_of
from mobilize.activations.models import Branch, BranchMember, Order, Post, SolveRecord
from mobilize.activations.records import load_solve
from mobilize.errors import NotFound
from mobilize.reference import export_problem, objective_of
from mobilize.solver import build_problem, solve
from rosters.models import OrgUnit, Person

__all__ = ["list_posts", "list_orders", "get_order", "list_branches", "problem_export"]


def _scope_filter(principal: Principal | None, path_col):
    if principal is None or principal.scope_path is None:
        return path_col.is_not(None)
    return path_col.startswith(principal.scope_path)


def _person_view(principal: Principal | None, name: str, phone: str) -> dict[str, str]:
    if principal is None:
        return {"name": name, "phone": phone}
    return {"name": name if principal.sees_names else mask_name(name),
            "phone": phone if principal.sees_full_phone_in_lists else mask_phone(phone)}


async def list_posts(session: AsyncSession, activation_id: int, principal: Principal | None, *,
                     community: str | None = None, short_only: bool = False, page: int = 1,
                     page_size: int = 200) -> dict[str, Any]:
    """Return a page of the activation's active posts in the operator's subtree."""
    c = aliased(OrgUnit)
    stmt = (select(Post, c.code).join(c, c.id == Post.community_id)
            .where(Post.activation_id == activation_id, Post.active.is_(True), _scope_filter(principal, c.path)))
    if community:
        stmt = stmt.where(c.code == community)
    if short_only:
        stmt = stmt.where(Post.filled < Post.headcount)
    total = (await session.execute(select(func.count()).select_from(stmt.subquery()))).scalar_one()
    rows = await session.execute(stmt.order_by(Post.priority, Post.key).limit(page_size).offset((page - 1) * page_size))
    items = [{"id": p.id, "key": p.key, "community": cc, "group": p.group, "name_zh": p.name_zh, "name_en": p.name_en,
              "site": p.site_name, "site_code": p.site_code, "lat": p.lat, "lon": p.lon, "headcount": p.headcount,
              "filled": p.filled, "skills_all": p.skills_all, "skills_any": p.skills_any,
              "leader_required": p.leader_required, "priority": p.priority, "shift_hours": p.shift_hours}
             for p, cc in rows]
    return {"items": items, "total": total, "page": page, "page_size": page_size}


def _order_dict(o: Order, person: Person, post: Post, principal: Principal | None) -> dict[str, Any]:
    return {"id": o.id, "status": o.status, "person_id": o.person_id, **_person_view(principal, person.name, person.phone),
            "post_id": o.post_id, "post": post.name_zh, "post_en": post.name_en, "post_key": post.key,
            "group": post.group, "leader_part": o.leader_part, "borrowed": o.borrowed,
            "travel_minutes": o.travel_minutes, "cost": o.cost, "closed_reason": o.closed_reason,
            "created_at": o.created_at.isoformat(), "updated_at": o.updated_at.isoformat()}


async def list_orders(session: AsyncSession, activation_id: int, principal: Principal | None, *,
                      status: str | None = None, post_id: int | None = None, community: str | None = None,
                      page: int = 1, page_size: int = 200) -> dict[str, Any]:
    """Return a page of the activation's orders in the operator's subtree (names/phones masked per role)."""
    c = aliased(OrgUnit)
    stmt = (select(Order, Person, Post).join(Person, Person.id == Order.person_id)
            .join(Post, Post.id == Order.post_id).join(c, c.id == Post.community_id)
            .where(Order.activation_id == activation_id, _scope_filter(principal, c.path)))
    if status:
        stmt = stmt.where(Order.status == status)
    if post_id:
        stmt = stmt.where(Order.post_id == post_id)
    if community:
        stmt = stmt.where(c.code == community)
    total = (await session.execute(select(func.count()).select_from(stmt.subquery()))).scalar_one()
    rows = await session.execute(stmt.order_by(Order.id).limit(page_size).offset((page - 1) * page_size))
    return {"items": [_order_dict(o, p, q, principal) for o, p, q in rows], "total": total, "page": page,
            "page_size": page_size}


async def get_order(session: AsyncSession, activation_id: int, order_id: int, principal: Principal | None) -> dict:
    """Return one order with the explanation of why this person landed on this post."""
    c = aliased(OrgUnit)
    row = (await session.execute(
        select(Order, Person, Post, c.path).join(Person, Person.id == Order.person_id)
        .join(Post, Post.id == Order.post_id).join(c, c.id == Post.community_id)
        .where(Order.id == order_id, Order.activation_id == activation_id)
        .execution_options(populate_existing=True))).first()
    if row is None or (principal is not None and not principal.covers(row[3])):
        raise NotFound("未找到该派单", f"No order {order_id}")
    order, person, post, _ = row
    data = _order_dict(order, person, post, principal)
    data["explanation"] = explanation_of(order)
    return data


async def list_branches(session: AsyncSession, activation_id: int, principal: Principal | None) -> list[dict]:
    """Return the activation's temporary branches (临时党支部) with secretary and members."""
    c = aliased(OrgUnit)
    branches = (await session.execute(
        select(Branch, c.code).join(c, c.id == Branch.community_id)
        .where(Branch.activation_id == activation_id, _scope_filter(principal, c.path))
        .order_by(Branch.key))).all()
    ids = [b.id for b, _ in branches]
    members: dict[int, list] = {i: [] for i in ids}
    for i in range(0, len(ids), 900):
        rows = await session.execute(select(BranchMember, Person.name, Person.phone)
                                     .join(Person, Person.id == BranchMember.person_id)
                                     .where(BranchMember.branch_id.in_(ids[i:i + 900])).order_by(BranchMember.person_id))
        for m, name, phone in rows:
            members[m.branch_id].append({"person_id": m.person_id, **_person_view(principal, name, phone),
                                         "party_group": m.party_group, "group_head": m.group_head})
    return [{"id": b.id, "key": b.key, "community": cc, "groups": b.groups, "joint": b.joint,
             "secretary_id": b.secretary_id, "status": b.status, "formed_at": b.formed_at.isoformat(),
             "members": members[b.id]} for b, cc in branches]


async def problem_export(session: AsyncSession, activation_id: int) -> dict[str, Any]:
    """Return the audit file of the activation's latest solve: problem, applied assignment, objective."""
    blob = (await session.execute(select(SolveRecord.inputs).where(SolveRecord.activation_id == activation_id))).scalar()
    if blob is None:
        raise NotFound("该启动没有求解记录", f"Activation {activation_id} has no solve on record")

    def build() -> dict[str, Any]:
        candidates, demands, policy, current, assignment, _objective = load_solve(blob)
        problem = build_problem(candidates, demands, policy, current=current or None)
        data = export_problem(solve(problem))
        data["assignment"] = assignment
        data["objective"] = objective_of(data)
        return data

    return await asyncio.to_thread(build)
