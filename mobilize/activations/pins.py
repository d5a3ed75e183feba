"""Peacetime pre-assignment (平时编组, "全部明确到具体岗位"): pin people to posts of a plan, and see how much
of each plan's demand the pins cover with people available now."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from mobilize import audit
from mobilize.access import Principal
from mobilize.activations.inputs import load_candidates, load_scope
from mobilize.activations.models import Pin
from mobilize.activations.writes import demands_of
from mobilize.errors import Forbidden, InvalidInput, NotFound, Problem
from mobilize.plans import Plan, plan_posts
from mobilize.solver import solve
from rosters.availability import is_available
from rosters.models import OrgUnit, Person, Place
from rosters.service import unit_by_code

__all__ = ["PinCreate", "create_pin", "delete_pin", "list_pins", "suggest_pins", "coverage"]


class PinCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    person_id: int
    hazard: str = Field(description="灾种 hazard")
    post_code: str = Field(description="预案中的岗位编码 the plan's post code")
    site_code: str | None = Field(default=None, description="网格或地点编码（按网格/地点设岗时）grid or place code")


def _writer(principal: Principal) -> None:
    if not principal.can_write_rosters:
        raise Forbidden("当前角色不能修改编组", "Your role may not change pre-assignments")


async def create_pin(session: AsyncSession, principal: Principal, data: PinCreate, plans: dict[str, Plan]) -> dict:
    """Return the pin after pinning a person to a post of a plan in their own community (replacing an older one)."""
    _writer(principal)
    community = aliased(OrgUnit)
    row = (await session.execute(select(Person, community).join(community, community.id == Person.community_id)
                                 .where(Person.id == data.person_id))).first()
    if row is None or not principal.covers(row[1].path):
        raise NotFound("未找到此人", f"No person with id {data.person_id}")
    person, comm = row
    plan = plans.get(data.hazard)
    if plan is None:
        raise InvalidInput("未知灾种", "Unknown hazard", [Problem(f"未知灾种「{data.hazard}」", f"unknown hazard "
                                                                  f"'{data.hazard}'", field="hazard", value=data.hazard)])
    post = next((p for p in plan.posts if p.code == data.post_code), None)
    if post is None:
        raise InvalidInput("预案中没有该岗位", "The plan has no such post",
                           [Problem(f"{plan.zh}预案没有岗位 {data.post_code}", f"the {plan.hazard} plan has no post "
                                    f"{data.post_code}", field="post_code", value=data.post_code)])
    site = data.site_code
    if post.per == "grid":
        grid_code = None
        if person.grid_id is not None:
            grid_code = (await session.execute(select(OrgUnit.code).where(OrgUnit.id == person.grid_id))).scalar()
        site = site or grid_code
        ok = site is not None and (await session.execute(select(OrgUnit.id).where(
            OrgUnit.code == site, OrgUnit.parent_id == comm.id))).first() is not None
        if not ok:
            raise InvalidInput("网格不属于此人所在社区", "The grid is not in the person's community",
                               [Problem("请填写本社区的网格编码", "give a grid of the person's community",
                                        field="site_code", value=site)])
    elif post.per == "place":
        ok = site is not None and (await session.execute(select(Place.id).where(
            Place.community_id == comm.id, Place.code == site, Place.kind == post.location))).first() is not None
        if not ok:
            raise InvalidInput("地点不属于此人所在社区", "No such place in the person's community",
                               [Problem(f"请填写本社区类型为 {post.location} 的地点编码", f"give a place of kind "
                                        f"{post.location} of the person's community", field="site_code", value=site)])
    else:
        site = None
    await session.execute(delete(Pin).where(Pin.person_id == person.id, Pin.hazard == plan.hazard))
    pin = Pin(person_id=person.id, hazard=plan.hazard, post_code=post.code, site_code=site)
    session.add(pin)
    await session.flush()
    return {"id": pin.id, "person_id": person.id, "hazard": plan.hazard, "post_code": post.code, "site_code": site,
            "post": post.zh, "community": comm.code}


async def delete_pin(session: AsyncSession, principal: Principal, pin_id: int) -> None:
    """Remove a pin of the operator's subtree."""
    _writer(principal)
    community = aliased(OrgUnit)
    row = (await session.execute(select(Pin, community.path).join(Person, Person.id == Pin.person_id)
                                 .join(community, community.id == Person.community_id).where(Pin.id == pin_id))).first()
    if row is None or not principal.covers(row[1]):
        raise NotFound("未找到该编组", f"No pin {pin_id}")
    await session.delete(row[0])


async def list_pins(session: AsyncSession, principal: Principal, unit_code: str, hazard: str | None) -> list[dict]:
    """Return the pins of a subtree."""
    unit = await unit_by_code(session, principal, unit_code)
    community = aliased(OrgUnit)
    stmt = (select(Pin, community.code).join(Person, Person.id == Pin.person_id)
            .join(community, community.id == Person.community_id).where(community.path.startswith(unit.path)))
    if hazard:
        stmt = stmt.where(Pin.hazard == hazard)
    return [{"id": p.id, "person_id": p.person_id, "hazard": p.hazard, "post_code": p.post_code,
             "site_code": p.site_code, "community": cc} for p, cc in await session.execute(stmt.order_by(Pin.id))]


async def suggest_pins(session: AsyncSession, principal: Principal | None, unit_code: str, plan: Plan, level: str, *,
                       at: datetime) -> dict:
    """Return counts after pinning the subtree's people to the plan's posts as an optimal solve would place them.

    Each community keeps to its own people (a pin is a peacetime commitment inside one's community);
    earlier pins of this hazard in the subtree are replaced.
    """
    if principal is not None:
        _writer(principal)
        unit = await unit_by_code(session, principal, unit_code)
    else:
        unit = (await session.execute(select(OrgUnit).where(OrgUnit.code == unit_code))).scalar_one()
    units = await load_scope(session, unit)
    specs = plan_posts(plan, level, units.sites)
    # Suggest from everyone on the roster, not only who is free today: pins outlast a day's leave.
    candidates, _ = await load_candidates(session, units, hazard="", is_drill=True, at=at)
    in_scope = set(units.community_ids)
    # A street of its own per community: no borrowing across communities for a peacetime pin.
    people = [replace(c, eligible=True, street=f"{c.street}/{c.community}") for c in candidates
              if c.community in in_scope]
    demands = [replace(d, street=f"{d.street}/{d.community}") for d in demands_of(specs)]
    solution = await asyncio.to_thread(solve, people, demands)
    spec_by_key = {s.key: s for s in specs}
    rows = [{"person_id": a.person, "hazard": plan.hazard, "post_code": spec_by_key[a.post].code,
             "site_code": spec_by_key[a.post].site_code if "@" in a.post else None, "created_at": at}
            for a in solution.assignments]
    scope_people = [c.id for c in people]
    for i in range(0, len(scope_people), 900):
        await session.execute(delete(Pin).where(Pin.hazard == plan.hazard, Pin.person_id.in_(scope_people[i:i + 900])))
    for i in range(0, len(rows), 5000):
        await session.execute(insert(Pin.__table__), rows[i:i + 5000])
    await audit.record(session, actor=principal.actor if principal else "cli", action="pins.suggest",
                       target=unit.code, detail={"hazard": plan.hazard, "level": level, "pins": len(rows)})
    return {"unit": unit.code, "hazard": plan.hazard, "level": level, "pins": len(rows),
            "slots": sum(s.headcount for s in specs)}


async def coverage(session: AsyncSession, principal: Principal, unit_code: str, plan: Plan, level: str, *,
                   at: datetime) -> dict:
    """Return how much of the plan's demand at ``level`` pins cover with people available at ``at``."""
    unit = await unit_by_code(session, principal, unit_code)
    units = await load_scope(session, unit)
    specs = plan_posts(plan, level, units.sites)
    community = aliased(OrgUnit)
    rows = await session.execute(
        select(Pin.post_code, Pin.site_code, community.code, Person.status, Person.leave_until, Person.availability)
        .join(Person, Person.id == Pin.person_id).join(community, community.id == Person.community_id)
        .where(Pin.hazard == plan.hazard, community.path.startswith(unit.path)))
    pinned: Counter[str] = Counter()
    pinned_available: Counter[str] = Counter()
    for post_code, site_code, cc, status, leave_until, availability in rows:
        key = f"{cc}/{post_code}" + (f"@{site_code}" if site_code else "")
        pinned[key] += 1
        if is_available("available" if status == "deployed" else status, leave_until, availability, at):
            pinned_available[key] += 1
    by_group: dict[str, dict[str, int]] = defaultdict(lambda: {"slots": 0, "covered": 0, "pinned": 0})
    slots = covered = 0
    for s in specs:
        cov = min(s.headcount, pinned_available[s.key])
        slots += s.headcount
        covered += cov
        g = by_group[s.group]
        g["slots"] += s.headcount
        g["covered"] += cov
        g["pinned"] += min(s.headcount, pinned[s.key])
    return {"unit": unit.code, "hazard": plan.hazard, "level": level, "slots": slots,
            "pinned": sum(min(s.headcount, pinned[s.key]) for s in specs), "covered": covered,
            "coverage": round(covered / slots, 4) if slots else 1.0, "by_group": dict(by_group),
            "as_of": at.isoformat(timespec="seconds")}
