"""Changing a running activation's response level: holders whose post survives stay, only the rest is solved."""

from __future__ import annotations

import time
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mobilize import audit
from mobilize.access import Principal
from mobilize.activations import records, writes
from mobilize.activations.fanout import dispatch_orders
from mobilize.activations.notices import Notices
from mobilize.activations.inputs import load_candidates, load_scope
from mobilize.activations.models import OPEN_ORDER_STATES, Activation, Order, Post
from mobilize.activations.service import (
    cancel_drill_orders, check_plan_request, get_activation, may_activate, policy_of, summary_of,
)
from mobilize.activations.solving import (
    BackgroundWork, Phases, gc_paused, record_and_branches, solve_and_place_posts,
)
from mobilize.costs import CostPolicy
from mobilize.db import bulk_cache, utcnow
from mobilize.errors import Conflict
from mobilize.plans import Plan, keep_on_level_change, plan_posts
from realtime.log import append_many
from realtime.models import NewEvent
from rosters.models import OrgUnit
from rosters.models import Person as PersonRow

__all__ = ["change_level"]


async def change_level(session: AsyncSession, activation_id: int, level: str, *, plans: dict[str, Plan],
                       at: datetime, principal: Principal | None = None, actor: str = "cli",
                       policy: CostPolicy | None = None, notices: Notices | None = None) -> Activation:
    """Return the activation after raising (or lowering) its level: posts added or shrunk, a re-solve that
    keeps everyone in place who need not move."""
    async with bulk_cache(session):
        with gc_paused():
            work = BackgroundWork()
            try:
                return await _change_level(session, activation_id, level, plans=plans, at=at, principal=principal,
                                           actor=actor, policy=policy, notices=notices, work=work)
            except BaseException:
                await work.settle()
                raise


async def _change_level(session: AsyncSession, activation_id: int, level: str, *, plans: dict[str, Plan],
                        at: datetime, principal: Principal | None, actor: str, policy: CostPolicy | None,
                        notices: Notices | None, work: BackgroundWork) -> Activation:
    started = time.perf_counter()
    phases = Phases(started)
    activation = await get_activation(session, activation_id, principal)
    may_activate(principal, activation.is_drill)
    if activation.status != "active":
        raise Conflict("该启动已结束", "This activation has ended", activation_id=activation.id)
    plan, code = check_plan_request(plans, activation.hazard, level)
    if code == activation.level:
        return activation
    scope = await session.get(OrgUnit, activation.scope_unit_id)
    units = await load_scope(session, scope)
    specs = plan_posts(plan, code, units.sites)
    spec_keys = {s.key for s in specs}
    pt, ot = Post.__table__, Order.__table__
    conn = await session.connection()  # Core reads: thousands of posts, tens of thousands of orders
    existing = dict((await conn.execute(select(pt.c.key, pt.c.id).where(pt.c.activation_id == activation.id))).all())
    key_of = {v: k for k, v in existing.items()}
    # with what branch formation needs of a holder (holders who stay are not read as candidates)
    open_orders = (await conn.execute(select(ot.c.id, ot.c.person_id, ot.c.post_id, ot.c.cost, ot.c.leader_part,
                                             PersonRow.party_member, PersonRow.group_leader.label("leader"))
                                      .join(PersonRow, PersonRow.id == ot.c.person_id)
                                      .where(ot.c.activation_id == activation.id,
                                             ot.c.status.in_(OPEN_ORDER_STATES)))).all()
    # Holders whose post survives keep it: nobody moves who need not. Where a post shrinks, the
    # cheapest holders stay (its leader first) and the rest are released.
    holders: dict[str, list] = {}
    for o in open_orders:
        holders.setdefault(key_of[o.post_id], []).append(o)
    kept_at, dropped, residual = keep_on_level_change(holders, specs)
    kept = [o for here in kept_at.values() for o in here]
    phases.mark("orders_read")
    # Holders who stay are not candidates for the residual posts: they are not read.
    candidates, _facts = await load_candidates(session, units, hazard=plan.hazard, is_drill=activation.is_drill, at=at,
                                               exclude_activation=activation.id, held={o.person_id for o in kept})
    phases.mark("candidates")
    policy = policy or policy_of(activation)  # a level change keeps the activation's policy (borrowing too)
    demands = writes.demands_of(residual)
    phases.mark("load")
    # Posts: existing ones resized, vanished ones deactivated, new ones inserted; on SQLite while the solver
    # runs, their holder counts once it is done.
    sizes = {existing[s.key]: s.headcount for s in specs if s.key in existing}
    gone = [pid for key, pid in existing.items() if key not in spec_keys]
    added = [s for s in specs if s.key not in existing]

    def holders(solution) -> dict[str, int]:  # each post's holders counted once: those who stayed and the new ones
        filled = writes.filled_of(solution.assignments, spec_keys)
        for key, here in kept_at.items():
            filled[key] += len(here)
        return filled

    async def write_posts(filled: dict[str, int] | None) -> dict[str, int]:
        await writes.resize_posts(session, sizes, gone, None if filled is None else
                                  {existing[key]: n for key, n in filled.items() if key in existing})
        return existing | await writes.insert_posts(session, activation.id, added, units.community_ids, filled,
                                                    beside_solver=filled is None)

    solution, post_ids = await solve_and_place_posts(session, work, phases, candidates, demands, policy,
                                                     write_posts=write_posts, holders=holders)
    new_assignments = solution.assignments

    now = utcnow()
    stream = f"activation:{activation.id}"
    events: list[NewEvent] = [NewEvent(stream, "order.cancelled", {
        "order": o.id, "post": o.post_id, "reason": "level_changed", "community": key_of[o.post_id].split("/", 1)[0]})
        for o in dropped]
    await writes.cancel_orders(session, [o.id for o in dropped], "level_changed", now)
    retaken = {a.person for a in new_assignments}
    released = [o.person_id for o in dropped if o.person_id not in retaken]
    if not activation.is_drill:
        await cancel_drill_orders(session, [a.person for a in new_assignments])
        await writes.set_people_status(session, [a.person for a in new_assignments], "deployed")
        await writes.set_people_status(session, released, "available")
    phases.mark("status")
    # The record and the branches, re-formed from the new membership (CPU work on the solution), are made
    # while the orders are inserted.
    spec_by_key = {s.key: s for s in specs}
    by_id = {c.id: c for c in candidates} | {o.person_id: o for o in kept}
    holding = [(o.person_id, key_of[o.post_id]) for o in kept] + [(a.person, a.post) for a in new_assignments]
    record, branches = record_and_branches(work, candidates, demands, policy, solution,
                                           lambda: writes.members_of(holding, by_id, spec_by_key))
    orders = await dispatch_orders(session, notices or Notices(), activation, new_assignments, post_ids,
                                   spec_by_key, ack_minutes=plan.acknowledge_minutes[code],
                                   arrive_minutes=plan.arrive_minutes[code])
    phases.mark("orders")
    events += writes.notified_events(stream, new_assignments, orders, post_ids)
    # Stored branches keep their ids by key (community:group).
    branch_plan = await branches
    await writes.save_branches(session, activation.id, branch_plan, units.community_ids)
    phases.mark("branches")
    await records.save_solve(session, activation.id, await record)
    phases.mark("record")
    old_level = activation.level
    summary = summary_of(scope, plan, code, activation.is_drill, units, specs, solution, branch_plan, phases.solver_ms,
                       residual=residual, kept=len(kept))
    summary["kept"] = len(kept)
    summary["borrowing"] = policy.borrowing
    summary["new_orders"] = len(new_assignments)
    summary["released"] = len(released)
    events.insert(0, NewEvent(stream, "activation.level_changed", {"activation": activation.id, "from": old_level,
                                                                   "to": code, "slots": summary["slots"],
                                                                   "filled": summary["filled"]}))
    await append_many(session, events)
    await audit.record(session, actor=principal.actor if principal else actor, action="activation.level",
                       target=f"activation:{activation.id}", detail={"from": old_level, "to": code,
                                                                     "new_orders": len(new_assignments),
                                                                     "released": len(released)})
    phases.mark("events")
    summary["phases_ms"] = phases.ms
    summary["total_ms"] = round((time.perf_counter() - started) * 1000, 1)
    activation.level = code
    activation.summary = summary
    await session.flush()
    return activation
