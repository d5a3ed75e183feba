"""One-key activation (一键启动), level changes and switch-back (战转平), each one transaction.

Services load, call the pure core (plans, solver, branches), save, append events and audit rows;
they never commit (the caller's transaction does, or rolls everything back).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mobilize import audit
from mobilize.access import Principal, Role
from mobilize.activations import dispatch, records, writes
from mobilize.activations.fanout import dispatch_orders
from mobilize.activations.notices import Notices
from mobilize.activations.inputs import load_candidates, load_scope
from mobilize.activations.models import OPEN_ORDER_STATES, Activation, ActivationLock, Branch, Order
from mobilize.activations.solving import (
    BackgroundWork, Phases, gc_paused, record_and_branches, solve_and_place_posts,
)
from mobilize.costs import CostPolicy
from mobilize.db import bulk_cache, utcnow
from mobilize.errors import Conflict, Forbidden, InvalidInput, NotFound, Problem
from mobilize.plans import LEVEL_ZH, Plan, parse_level, plan_posts
from realtime.log import append_many
from realtime.models import NewEvent
from rosters.models import OrgUnit
from rosters.vocabulary import UnitLevel

__all__ = ["ActivateRequest", "activate", "end", "get_activation", "check_plan_request", "may_activate",
           "Phases", "gc_paused", "cancel_drill_orders", "summary_of", "policy_of"]


@dataclass(frozen=True)
class ActivateRequest:
    scope: str
    hazard: str
    level: str
    drill: bool = False
    idempotency_key: str | None = None
    borrowing: bool = True  # street-level borrowing (街道统筹); off: each community staffs its own posts

    def digest(self) -> str:
        # borrowing appears only when off: digests of requests from before it existed stay valid
        text = json.dumps([self.scope, self.hazard, self.level, self.drill] + ([] if self.borrowing else [False]))
        return hashlib.sha256(text.encode()).hexdigest()


def check_plan_request(plans: dict[str, Plan], hazard: str, level: str) -> tuple[Plan, str]:
    """Return the plan and level code a request names; 422 naming the field otherwise."""
    problems = []
    plan = plans.get(hazard)
    if plan is None:
        known = "、".join(f"{p.hazard}（{p.zh}）" for p in plans.values())
        problems.append(Problem(f"未知灾种「{hazard}」，可选：{known}", f"unknown hazard '{hazard}'; known: "
                                + ", ".join(plans), field="hazard", value=hazard))
    code = parse_level(level)
    if code is None:
        problems.append(Problem("响应级别须为 I、II、III 或 IV（Ⅰ级最高）", "level must be I, II, III or IV (I is the most "
                                "severe)", field="level", value=level))
    if problems:
        raise InvalidInput("启动参数有误", "The activation request is invalid", problems)
    return plan, code


def policy_of(activation: Activation) -> CostPolicy:
    """Return the cost policy ``activation`` was solved with (the defaults for rows from before it was kept)."""
    return CostPolicy.from_dict(activation.policy)


def may_activate(principal: Principal | None, drill: bool) -> None:
    if principal is None or principal.is_admin:
        return
    if principal.role is Role.DRILL_PLANNER and drill:
        return
    if principal.role is Role.DRILL_PLANNER:
        raise Forbidden("演练策划只能启动演练", "A drill planner may start drills only")
    if not principal.can_write_rosters:
        raise Forbidden("当前角色不能启动", "Your role may not activate")


async def get_activation(session: AsyncSession, activation_id: int, principal: Principal | None) -> Activation:
    """Return the activation if the operator's subtree covers its scope; 404 otherwise."""
    row = (await session.execute(select(Activation, OrgUnit.path).join(OrgUnit, OrgUnit.id == Activation.scope_unit_id)
                                 .where(Activation.id == activation_id))).first()
    if row is None or (principal is not None and not principal.covers(row[1])):
        raise NotFound("未找到该启动记录", f"No activation {activation_id}")
    return row[0]


async def _holder_of_lock(session: AsyncSession, community_ids: list[int], mode: str) -> int | None:
    for i in range(0, len(community_ids), 900):
        found = (await session.execute(select(ActivationLock.activation_id).where(
            ActivationLock.community_id.in_(community_ids[i:i + 900]), ActivationLock.mode == mode).limit(1))).scalar()
        if found is not None:
            return found
    return None


async def activate(session: AsyncSession, request: ActivateRequest, *, plans: dict[str, Plan], at: datetime,
                   principal: Principal | None = None, actor: str = "cli",
                   policy: CostPolicy | None = None, notices: Notices | None = None) -> tuple[Activation, bool]:
    """Return the activation (and whether it is new) after switching the scope to wartime in one step.

    A request repeated with the same idempotency key returns the first activation unchanged; a
    scope overlapping a running activation of the same kind (real or drill) is refused with 409
    naming it.
    """
    async with bulk_cache(session):
        with gc_paused():
            work = BackgroundWork()
            try:
                return await _activate(session, request, plans=plans, at=at, principal=principal, actor=actor,
                                       policy=policy, notices=notices, work=work)
            except BaseException:
                await work.settle()
                raise


async def _activate(session: AsyncSession, request: ActivateRequest, *, plans: dict[str, Plan], at: datetime,
                    principal: Principal | None, actor: str, policy: CostPolicy | None,
                    notices: Notices | None, work: BackgroundWork) -> tuple[Activation, bool]:
    started = time.perf_counter()
    phases = Phases(started)
    may_activate(principal, request.drill)
    plan, level = check_plan_request(plans, request.hazard, request.level)
    if request.idempotency_key:
        previous = (await session.execute(select(Activation).where(
            Activation.idempotency_key == request.idempotency_key))).scalar_one_or_none()
        if previous is not None:
            if previous.request_hash != request.digest():
                raise Conflict("幂等键已用于另一个启动请求", "This idempotency key was used for a different request",
                               [Problem("请换一个幂等键", "use a new key", field="idempotency_key")])
            return previous, False
    scope = (await session.execute(select(OrgUnit).where(OrgUnit.code == request.scope))).scalar_one_or_none()
    if scope is None or (principal is not None and not principal.covers(scope.path)):
        raise InvalidInput("启动范围不存在", "Unknown scope", [
            Problem(f"单位编码 {request.scope} 不存在", f"no unit with code {request.scope}", field="scope",
                    value=request.scope)])
    if scope.level in (UnitLevel.GRID.value, UnitLevel.BUILDING.value):
        raise InvalidInput("启动范围须为社区或以上", "The scope must be a community or above",
                           [Problem("网格、楼栋不能单独启动", "a grid or building cannot be activated on its own",
                                    field="scope", value=request.scope)])
    units = await load_scope(session, scope)
    if not units.sites:
        raise InvalidInput("启动范围内没有社区", "The scope holds no community",
                           [Problem("该单位下没有社区", "no community under this unit", field="scope", value=request.scope)])
    mode = "drill" if request.drill else "real"
    community_ids = list(units.community_ids.values())
    holder = await _holder_of_lock(session, community_ids, mode)
    if holder is not None:
        raise Conflict("启动范围与正在进行的启动重叠", "The scope overlaps a running activation",
                       activation_id=holder)
    policy = policy or CostPolicy()
    if not request.borrowing:
        policy = replace(policy, borrowing=False)
    activation = Activation(scope_unit_id=scope.id, hazard=plan.hazard, level=level, is_drill=request.drill,
                            status="active", idempotency_key=request.idempotency_key, request_hash=request.digest(),
                            started_by=principal.actor if principal else actor, summary={},
                            policy=policy.as_dict())
    session.add(activation)
    await session.flush()
    try:
        async with session.begin_nested():
            await session.execute(ActivationLock.__table__.insert(), [
                {"community_id": cid, "mode": mode, "activation_id": activation.id} for cid in community_ids])
    except IntegrityError:
        holder = await _holder_of_lock(session, community_ids, mode)
        raise Conflict("启动范围与正在进行的启动重叠", "The scope overlaps a running activation",
                       activation_id=holder) from None

    specs = plan_posts(plan, level, units.sites)
    phases.mark("scope")
    candidates, _facts = await load_candidates(session, units, hazard=plan.hazard, is_drill=request.drill, at=at)
    demands = writes.demands_of(specs)
    phases.mark("load")
    # On SQLite the posts are written while the solver runs, their holder counts once it is done.
    solution, post_ids = await solve_and_place_posts(
        session, work, phases, candidates, demands, policy, holders=lambda sol: writes.filled_of(sol.assignments),
        write_posts=lambda filled: writes.insert_posts(session, activation.id, specs, units.community_ids, filled,
                                                       beside_solver=filled is None))
    assignments = solution.assignments
    assigned = [a.person for a in assignments]
    if not request.drill:
        # A real emergency takes people off drills (before their new orders: one open order per person).
        await cancel_drill_orders(session, assigned)
        await writes.set_people_status(session, assigned, "deployed")
    phases.mark("status")
    # The record and the branches (CPU work on the solution) are made while the orders are inserted.
    spec_by_key = {s.key: s for s in specs}
    by_id = {c.id: c for c in candidates}
    record, branches = record_and_branches(work, candidates, demands, policy, solution,
                                           lambda: writes.branch_members(solution, by_id, spec_by_key))
    orders = await dispatch_orders(session, notices or Notices(), activation, assignments, post_ids,
                                   spec_by_key, ack_minutes=plan.acknowledge_minutes[level],
                                   arrive_minutes=plan.arrive_minutes[level])
    if not request.drill:
        for i in range(0, len(community_ids), 900):
            await session.execute(update(OrgUnit).where(OrgUnit.id.in_(community_ids[i:i + 900])).values(phase="wartime"))
    phases.mark("orders")
    branch_plan = await branches
    await writes.save_branches(session, activation.id, branch_plan, units.community_ids)
    phases.mark("branches")
    await records.save_solve(session, activation.id, await record)
    phases.mark("record")

    summary = summary_of(scope, plan, level, request.drill, units, specs, solution, branch_plan, phases.solver_ms)
    summary["borrowing"] = policy.borrowing
    await _append_activation_events(session, activation, summary, solution, post_ids, orders, units)
    await audit.record(session, actor=activation.started_by, action="activation.start",
                       target=f"activation:{activation.id}",
                       detail={"scope": scope.code, "hazard": plan.hazard, "level": level, "drill": request.drill,
                               "orders": len(assigned), "borrowing": policy.borrowing})
    phases.mark("events")
    summary["phases_ms"] = phases.ms
    summary["total_ms"] = round((time.perf_counter() - started) * 1000, 1)
    activation.summary = summary
    await session.flush()
    return activation, True


async def cancel_drill_orders(session: AsyncSession, person_ids: list[int]) -> None:
    # Open drill orders are few (often none): find them once, then cancel those of ``person_ids``.
    # By drill activation on the (activation, status) index: a join from the orders would walk every open
    # order of the running real activations (a city's raise: 15,000 of them) to find none.
    ot = Order.__table__
    open_drill = (await session.execute(select(ot.c.id, ot.c.person_id).where(
        ot.c.activation_id.in_(select(Activation.id).where(Activation.is_drill.is_(True))),
        ot.c.status.in_(OPEN_ORDER_STATES)))).all()
    if not open_drill:
        return
    people = set(person_ids)
    ids = [oid for oid, pid in open_drill if pid in people]
    for i in range(0, len(ids), 900):
        await session.execute(update(ot).where(ot.c.id.in_(ids[i:i + 900])).values(
            status="cancelled", closed_reason="real_activation", updated_at=utcnow()))


def summary_of(scope: OrgUnit, plan: Plan, level: str, drill: bool, units, specs, solution, branch_plan,
             solve_ms: float, *, residual=None, kept: int = 0) -> dict:
    """Return the activation summary; after a level change, ``residual`` are the posts solved for and
    ``kept`` the holders who stayed."""
    slots = sum(s.headcount for s in specs)
    assigned = len(solution.assignments) + kept
    by_skill: Counter[str] = Counter()
    shortages = []
    names = {s.key: s for s in (residual if residual is not None else specs)}
    for short in solution.shortages:
        spec = names[short.post]
        needed = sorted(spec.skills_all) or sorted(spec.skills_any) or []
        for skill in needed:
            by_skill[skill] += short.missing
        if short.leader_part:
            by_skill["leader"] += short.missing
        shortages.append({"post": short.post, "name_zh": spec.zh, "name_en": spec.en, "community": spec.community,
                          "group": spec.group, "missing": int(short.missing), "priority": int(short.priority),
                          "leader": bool(short.leader_part), "skills": list(needed), "text": str(short)})
    return {
        "scope": {"code": scope.code, "name": scope.name, "level": scope.level},
        "hazard": plan.hazard, "hazard_zh": plan.zh, "level": level, "level_zh": LEVEL_ZH[level], "drill": drill,
        "communities": len(units.sites), "posts": len(specs), "slots": slots, "filled": assigned,
        "unfilled": slots - assigned, "fill_rate": round(assigned / slots, 4) if slots else 1.0,
        "shortages": shortages, "shortages_by_skill": dict(by_skill.most_common()),
        "borrowed": len(solution.borrowed),
        "split_squads": sorted(str(s) for s in solution.split_squads),
        "branches": len(branch_plan.branches),
        "joint_branches": sum(1 for b in branch_plan.branches if b.joint),
        "no_branch": [{"community": n.community, "party_members": n.party_members, "reason_zh": n.reason_zh,
                       "reason_en": n.reason_en} for n in branch_plan.no_branch],
        "objective": int(solution.objective), "solve_ms": round(solve_ms, 1),
    }


async def _append_activation_events(session, activation, summary, solution, post_ids, orders, units) -> None:
    stream = f"activation:{activation.id}"
    events = [NewEvent(stream, "activation.started", {
        "activation": activation.id, "scope": summary["scope"]["code"], "hazard": summary["hazard"],
        "level": summary["level"], "drill": summary["drill"], "slots": summary["slots"], "filled": summary["filled"]})]
    if not summary["drill"]:
        events += [NewEvent(f"unit:{code}", "community.switched", {"activation": activation.id, "phase": "wartime"})
                   for code in units.community_ids]
    events += writes.notified_events(stream, solution.assignments, orders, post_ids)
    events += [NewEvent(stream, "shortage.opened", {"post": post_ids[s["post"]], "missing": s["missing"],
                                                    "skills": s["skills"], "community": s["community"]})
               for s in summary["shortages"]]
    events.append(NewEvent(stream, "branches.formed", {"branches": summary["branches"]}))
    await append_many(session, events)


async def end(session: AsyncSession, activation_id: int, *, principal: Principal | None = None,
              actor: str = "cli", notices: Notices | None = None) -> Activation:
    """Return the activation after switching back (战转平): everyone released, branches closed, communities
    back to peacetime. Ending an ended activation changes nothing."""
    async with bulk_cache(session):
        with gc_paused():  # a city's tens of thousands of holders and notices, as an activation's rows
            return await _end(session, activation_id, principal=principal, actor=actor, notices=notices)


async def _end(session: AsyncSession, activation_id: int, *, principal: Principal | None, actor: str,
               notices: Notices | None) -> Activation:
    activation = await get_activation(session, activation_id, principal)
    may_activate(principal, activation.is_drill)
    if activation.status == "ended":
        return activation
    now = utcnow()
    ot = Order.__table__  # a Core read on the connection: a city's tens of thousands of holders
    held = list((await (await session.connection()).execute(select(ot.c.person_id).where(
        ot.c.activation_id == activation.id, ot.c.status.in_(OPEN_ORDER_STATES)))).scalars().all())
    await session.execute(update(Order).where(Order.activation_id == activation.id,
                                              Order.status.in_(OPEN_ORDER_STATES))
                          .values(status="released", closed_reason="activation_ended", updated_at=now))
    await session.execute(update(Order).where(Order.activation_id == activation.id, Order.status == "declined")
                          .values(closed_reason="activation_ended"))
    if not activation.is_drill:
        await writes.set_people_status(session, held, "available")
    communities = list((await session.execute(select(ActivationLock.community_id).where(
        ActivationLock.activation_id == activation.id))).scalars())
    await session.execute(delete(ActivationLock).where(ActivationLock.activation_id == activation.id))
    if not activation.is_drill:
        codes = list((await session.execute(select(OrgUnit.code).where(OrgUnit.id.in_(communities)))).scalars()) \
            if communities else []
        for i in range(0, len(communities), 900):
            await session.execute(update(OrgUnit).where(OrgUnit.id.in_(communities[i:i + 900])).values(phase="peacetime"))
    else:
        codes = []
    await session.execute(update(Branch).where(Branch.activation_id == activation.id, Branch.status == "active")
                          .values(status="closed", closed_at=now))
    await dispatch.expire_links(session, activation.id, now=now)
    await (notices or Notices()).ended(session, activation, held)
    activation.status, activation.ended_at = "ended", now
    activation.ended_by = principal.actor if principal else actor
    stream = f"activation:{activation.id}"
    events = [NewEvent(stream, "activation.ended", {"activation": activation.id, "released": len(held)})]
    events += [NewEvent(f"unit:{code}", "community.switched", {"activation": activation.id, "phase": "peacetime"})
               for code in codes]
    await append_many(session, events)
    await audit.record(session, actor=activation.ended_by, action="activation.end", target=f"activation:{activation.id}",
                       detail={"released": len(held)})
    await session.flush()
    return activation

