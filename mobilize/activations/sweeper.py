"""The escalation sweeper (超时升级): deadlines live on order rows; a periodic job claims what is due.

Each sweep claims due orders (``next_check_at <= now``) — ``FOR UPDATE SKIP LOCKED`` on PostgreSQL,
so several app instances share the work without doubling it; a ``BEGIN IMMEDIATE`` writer on SQLite —
applies the missed deadline's timeout and fires every ladder step that has come due, recording each
step compare-and-set on the row in the same transaction as its effects. A step therefore fires exactly
once: a crash rolls the whole sweep back and the next one (after a restart too) catches up.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mobilize import audit
from mobilize.activations.dispatch import find_backup, order_state, release_person, write_transition
from mobilize.activations.models import Activation, Order
from mobilize.activations.notices import Notices
from mobilize.db import begin_write, session_scope, utcnow
from mobilize.escalation import STEP_TEXT, Ladder, default_ladder, due_steps, mark_fired, next_check_at, overdue
from mobilize.orders import apply
from mobilize.plans import Plan
from realtime.log import append_many
from realtime.models import NewEvent

__all__ = ["sweep", "DUE_STATES"]

logger = logging.getLogger("mobilize.sweeper")
DUE_STATES = ("notified", "acknowledged", "en_route", "escalated")
_STEP_EVENTS = {"remind_person": "order.reminded", "tell_team_leader": "order.team_leader_told",
                "reassign_post": "order.reassign_tried", "tell_secretary_and_command": "order.escalation_reported"}


async def sweep(sessionmaker: async_sessionmaker[AsyncSession], *, plans: dict[str, Plan], now: datetime | None = None,
                local_now: datetime | None = None, batch: int = 200, notices: Notices | None = None) -> dict[str, int]:
    """Return counts of what one sweep did (timeouts, steps fired, reassignments) up to ``now``."""
    now = now or utcnow()
    notices = notices or Notices()
    local_now = local_now or now.replace(tzinfo=None)
    done = {"orders": 0, "timeouts": 0, "steps": 0, "reassigned": 0}
    async with session_scope(sessionmaker) as session:
        await begin_write(session)
        query = (select(Order).where(Order.next_check_at <= now, Order.status.in_(DUE_STATES))
                 .order_by(Order.next_check_at, Order.id).limit(batch))
        if session.bind.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        orders = list((await session.execute(query)).scalars())
        activations: dict[int, Activation] = {}
        for order in orders:
            activation = activations.get(order.activation_id) or await session.get(Activation, order.activation_id)
            activations[activation.id] = activation
            if activation.status != "active":
                continue
            plan = plans[activation.hazard]
            ladder = default_ladder(plan.acknowledge_minutes[activation.level])
            await _one(session, order, activation, plan, ladder, now=now, local_now=local_now, done=done,
                       notices=notices)
            done["orders"] += 1
    return done


async def _one(session: AsyncSession, order: Order, activation: Activation, plan: Plan, ladder: Ladder, *,
               now: datetime, local_now: datetime, done: dict[str, int], notices: Notices) -> None:
    state = order_state(order)
    missed = overdue(state, now)
    if missed:
        tr = apply(state, missed, actor="system", at=now)
        if not await write_transition(session, order, tr, actor="system:sweeper"):
            return  # the person answered a moment ago: their answer won
        state = tr.order
        done["timeouts"] += not tr.stale
    for step in due_steps(state, ladder, now):
        fired = mark_fired(state, step)
        claimed = await session.execute(
            update(Order).where(Order.id == order.id, Order.status == "escalated",
                                Order.escalation_step == state.escalation_step)
            .values(escalation_step=fired.escalation_step, next_check_at=next_check_at(fired, ladder), updated_at=now)
            .execution_options(synchronize_session=False))
        if claimed.rowcount != 1:
            return  # another sweeper fired it
        state = fired
        done["steps"] += 1
        body = {"order": order.id, "post": order.post_id, "step": step.name, "due_at": step.due_at.isoformat()}
        await append_many(session, [NewEvent(f"activation:{activation.id}", _STEP_EVENTS[step.name], body),
                                    NewEvent(f"person:{order.person_id}", _STEP_EVENTS[step.name], body)])
        if step.name != "reassign_post":
            await notices.step(session, activation, order, step.name)
        await audit.record(session, actor="system:sweeper", action=f"escalation.{step.name}",
                           target=f"order:{order.id}", detail={"step": step.number, "kind": step.kind,
                                                               "text": STEP_TEXT[step.name][1]})
        if step.name == "reassign_post":
            # The person's hold ends first (compare-and-set): an answer arriving this instant wins instead.
            tr = apply(state, "reassign", actor="system", at=now, reason="no_answer")
            if not await write_transition(session, order, tr, actor="system:sweeper"):
                return
            await release_person(session, activation, order.person_id)
            await notices.step(session, activation, order, "reassigned")
            backup = await find_backup(session, order, local_now=local_now, now=now,
                                       ack_minutes=plan.acknowledge_minutes[activation.level],
                                       arrive_minutes=plan.arrive_minutes[activation.level], notices=notices)
            done["reassigned"] += 1
            if backup is None:  # nobody to send: the secretary and the command center hear now
                body = {**body, "step": "tell_secretary_and_command", "short": True}
                await append_many(session, [NewEvent(f"activation:{activation.id}", "order.escalation_reported",
                                                     body)])
                await notices.step(session, activation, order, "tell_secretary_and_command")
                await audit.record(session, actor="system:sweeper", action="escalation.tell_secretary_and_command",
                                   target=f"order:{order.id}", detail={"short": True})
            return  # the ladder ends: the post is in other hands or reported short


