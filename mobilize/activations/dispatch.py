"""Dispatch after the key press: answers from phones, backups for declined posts, personal links.

Every change goes through :func:`mobilize.orders.apply` (the table decides) and is written back
compare-and-set (``WHERE status = <the status it was computed from>``), so of two racing changes —
an ack and the sweeper's timeout, two taps of one button — exactly one lands. Every change appends an
event and an audit row in the same transaction.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mobilize import audit
from mobilize.activations import writes
from mobilize.activations.inputs import load_candidates, load_scope
from mobilize.activations.models import Activation, Branch, BranchMember, Order, PhoneLinkRow, Post
from mobilize.activations.notices import Notices
from mobilize.costs import CostPolicy
from mobilize.costs import Post as Demand
from mobilize.branches import Branch as BranchDef
from mobilize.branches import BranchPlan, Member, PartyGroup, repair_branches
from mobilize.db import aware, utcnow
from mobilize.orders import OPEN_STATES, OrderState, Transition
from mobilize.phonelinks import PhoneLink, check, hash_token
from mobilize.solver import Solution, solve
from realtime.log import append_many
from realtime.models import NewEvent
from rosters.availability import is_available
from rosters.models import OrgUnit, Person

__all__ = ["order_state", "expire_links", "open_link", "write_transition",
           "find_backup", "plan_backup", "plan_fill", "FillPlan", "fill_post", "transition_values", "transition_records", "release_person", "repair_branches_of"]

_STATE_FIELDS = ("status", "ack_deadline_at", "arrive_deadline_at", "arrive_minutes", "acknowledged_at", "en_route_at",
                 "arrived_at", "escalated_at", "closed_at", "escalation", "escalation_step", "closed_reason", "note")


def order_state(order: Order) -> OrderState:
    """Return the state machine's view of an order row."""
    return OrderState(
        status=order.status, created_at=aware(order.created_at), ack_deadline_at=aware(order.ack_deadline_at),
        arrive_deadline_at=aware(order.arrive_deadline_at), arrive_minutes=order.arrive_minutes,
        acknowledged_at=aware(order.acknowledged_at), en_route_at=aware(order.en_route_at),
        arrived_at=aware(order.arrived_at), escalated_at=aware(order.escalated_at), closed_at=aware(order.closed_at),
        escalation=order.escalation, escalation_step=order.escalation_step, closed_reason=order.closed_reason,
        note=order.note)


async def expire_links(session: AsyncSession, activation_id: int, *, now: datetime) -> None:
    """End every link of an activation (战转平): they answer "expired" from now on."""
    await session.execute(update(PhoneLinkRow).where(PhoneLinkRow.activation_id == activation_id,
                                                     PhoneLinkRow.expires_at > now).values(expires_at=now))


async def open_link(session: AsyncSession, token: str, *, now: datetime) -> PhoneLinkRow:
    """Return the stored link a token opens; :class:`~mobilize.phonelinks.LinkRefused` otherwise."""
    row = None
    if isinstance(token, str) and 16 <= len(token) <= 128:
        row = (await session.execute(select(PhoneLinkRow).where(
            PhoneLinkRow.token_hash == hash_token(token)))).scalar_one_or_none()
    link = None if row is None else PhoneLink(row.person_id, row.activation_id, row.token_hash, aware(row.expires_at),
                                              aware(row.revoked_at))
    check(link, token, now)
    return row


async def write_transition(session: AsyncSession, order: Order, tr: Transition, *, actor: str,
                           extra: dict[str, Any] | None = None) -> bool:
    """Write ``tr`` back compare-and-set and record it; return False when another change got there first."""
    if tr.noop:
        return True
    values = transition_values(tr.order)
    result = await session.execute(update(Order).where(Order.id == order.id, Order.status == tr.from_status)
                                   .values(**values).execution_options(synchronize_session=False))
    if result.rowcount != 1:
        return False
    left = tr.from_status in OPEN_STATES and tr.order.status not in OPEN_STATES
    if left:  # the post has one place free again
        await session.execute(update(Post).where(Post.id == order.post_id, Post.filled > 0)
                              .values(filled=Post.filled - 1))
    community = (await session.execute(select(OrgUnit.code).join(Post, Post.community_id == OrgUnit.id)
                                       .where(Post.id == order.post_id))).scalar()
    events, audit_row = transition_records(order, tr, community, actor=actor, extra=extra)
    await append_many(session, events)
    if audit_row:
        await audit.record(session, **audit_row)
    return True


def transition_records(order, tr: Transition, community: str | None, *, actor: str,
                       extra: dict[str, Any] | None = None) -> tuple[list[NewEvent], dict[str, Any] | None]:
    """Return the events and the audit row (keyword arguments of :func:`mobilize.audit.record`) that record
    ``tr`` of ``order`` (anything with ``id``, ``post_id``, ``person_id`` and ``activation_id``)."""
    body = {"order": order.id, "post": order.post_id, "community": community, "status": tr.order.status,
            **({"reason": tr.order.closed_reason} if tr.action == "decline" else {}), **(extra or {})}
    events = []
    if tr.event and not tr.stale:
        events = [NewEvent(f"activation:{order.activation_id}", tr.event, body),
                  NewEvent(f"person:{order.person_id}", tr.event, body)]
    audit_row = None
    if tr.audit:
        audit_row = {"actor": actor, "action": tr.audit, "target": f"order:{order.id}",
                     "detail": {"from": tr.from_status, "to": tr.order.status, "late": tr.late}}
    return events, audit_row


def transition_values(state: OrderState) -> dict[str, Any]:
    """Return the order row's columns after a transition to ``state`` (state, deadlines, next check)."""
    values = {f: getattr(state, f) for f in _STATE_FIELDS}
    values["updated_at"] = utcnow()
    values["next_check_at"] = _next_check(state)
    return values


def _next_check(state: OrderState) -> datetime | None:
    """Return when the sweeper must look at this order next (a deadline or the next ladder step)."""
    if state.status not in OPEN_STATES:
        return None
    if state.status == "escalated":
        return state.escalated_at  # the sweeper computes the ladder's next step from here
    if state.status == "notified":
        return state.ack_deadline_at
    if state.status in ("acknowledged", "en_route"):
        return state.arrive_deadline_at
    return None


@dataclass(frozen=True)
class FillPlan:
    """Who would fill ``slots`` places of a post, computed before taking the write lock (see :func:`fill_post`)."""

    post_id: int
    slots: int
    solution: Solution


async def find_backup(session: AsyncSession, order: Order, *, local_now: datetime, now: datetime,
                      ack_minutes: int, arrive_minutes: int, notices: Notices | None = None,
                      planned: FillPlan | None = None) -> int | None:
    """Return the new order id after giving a freed slot to the best available backup (None: nobody).

    The same costs as the full solve, over the post's street (borrowing included), for exactly the
    one slot the person left; people who already declined or were replaced in this activation are
    not asked again. ``planned`` is :func:`plan_backup`'s answer computed outside the write lock.
    """
    activation = await session.get(Activation, order.activation_id)
    post = await session.get(Post, order.post_id)
    sent = await fill_post(session, activation, post, 1, leader=bool(order.leader_part), local_now=local_now, now=now,
                           ack_minutes=ack_minutes, arrive_minutes=arrive_minutes, notices=notices,
                           replaces=order.id, planned=planned)
    return sent[0] if sent else None


async def plan_backup(session: AsyncSession, order: Order, *, local_now: datetime) -> FillPlan:
    """Return who :func:`find_backup` would send for ``order``'s slot, read without the write lock.

    The person still holding ``order`` is busy, so never their own backup.
    """
    activation = await session.get(Activation, order.activation_id)
    post = await session.get(Post, order.post_id)
    return await plan_fill(session, activation, post, 1, leader=bool(order.leader_part), local_now=local_now)


async def plan_fill(session: AsyncSession, activation: Activation, post: Post, slots: int, *, leader: bool,
                    local_now: datetime) -> FillPlan:
    """Return the best available people of the post's street for ``slots`` open places of ``post``.

    Costed with the policy the activation was solved with: without borrowing, only the post's community.
    """
    community = await session.get(OrgUnit, post.community_id)
    units = await load_scope(session, community)
    candidates, _ = await load_candidates(session, units, hazard=activation.hazard, is_drill=activation.is_drill,
                                          at=local_now)
    said_no = set((await session.execute(select(Order.person_id).where(
        Order.activation_id == activation.id, Order.status.in_(("declined", "reassigned"))))).scalars())
    candidates = [replace(c, eligible=False) if c.id in said_no else c for c in candidates]
    street = units.sites[0].street
    demand = Demand(post.key, community.code, street, post.lat, post.lon, slots, frozenset(post.skills_all),
                    frozenset(post.skills_any), leader, post.priority, post.group)
    policy = CostPolicy.from_dict(activation.policy)
    return FillPlan(post.id, slots, await asyncio.to_thread(solve, candidates, [demand], policy))


async def _still_free(session: AsyncSession, activation: Activation, planned: FillPlan, local_now: datetime) -> bool:
    """Whether everyone ``planned`` sends is still free to go (checked under the write lock).

    A plan is the best choice in the snapshot it was read from; what is checked is that it can still
    be carried out (nobody in it was taken, declined or fell ill since), not that nobody better
    became free in the meantime.
    """
    people = [a.person for a in planned.solution.assignments]
    if not people:
        return True  # nobody was free in the snapshot: as current as any plan from it (a shortage is reported)
    taken = (select(Order.person_id).join(Activation, Activation.id == Order.activation_id)
             .where(Order.person_id.in_(people), (Order.status.in_(OPEN_STATES))
                    | ((Order.activation_id == activation.id) & Order.status.in_(("declined", "reassigned")))))
    if not activation.is_drill:  # drills give way to the real thing: only a real order holds someone
        taken = taken.where((Activation.is_drill.is_(False)) | (Order.activation_id == activation.id))
    if (await session.execute(taken.limit(1))).first() is not None:
        return False
    rows = (await session.execute(select(Person.status, Person.leave_until, Person.availability)
                                  .where(Person.id.in_(people)))).all()
    return len(rows) == len(people) and all(
        is_available("available" if st == "deployed" else st, leave, pattern, local_now) for st, leave, pattern in rows)


async def fill_post(session: AsyncSession, activation: Activation, post: Post, slots: int, *, leader: bool,
                    local_now: datetime, now: datetime, ack_minutes: int, arrive_minutes: int,
                    notices: Notices | None = None, replaces: int | None = None,
                    planned: FillPlan | None = None) -> list[int]:
    """Return the new order ids after sending the best available people of the post's street to ``slots``
    open places of ``post`` (a shortage filled by borrowing within the street, 街道统筹).

    ``planned`` (from :func:`plan_fill`, computed before the write lock) is used if everyone in it is
    still free; otherwise the search runs again here.
    """
    community = await session.get(OrgUnit, post.community_id)
    if (planned is None or (planned.post_id, planned.slots) != (post.id, slots)
            or not await _still_free(session, activation, planned, local_now)):
        planned = await plan_fill(session, activation, post, slots, leader=leader, local_now=local_now)
    solution = planned.solution
    missing = slots - len(solution.assignments)
    if missing:
        await append_many(session, [NewEvent(f"activation:{activation.id}", "shortage.opened", {
            "post": post.id, "missing": missing, "skills": sorted(post.skills_all) or sorted(post.skills_any),
            "community": community.code})])
    if not solution.assignments:
        await repair_branches_of(session, activation.id, post.community_id)  # the one who left is gone
        return []
    people = [a.person for a in solution.assignments]
    if not activation.is_drill:
        await writes.set_people_status(session, people, "deployed")
    _arrive_by, ids = await writes.insert_orders(session, activation.id, list(solution.assignments),
                                                 {post.key: post.id}, ack_minutes=ack_minutes,
                                                 arrive_minutes=arrive_minutes, at=now)
    await session.execute(update(Post).where(Post.id == post.id).values(filled=Post.filled + len(people)))
    await (notices or Notices()).tell(session, activation, people, now=now)
    events = []
    for a in solution.assignments:
        body = {"order": ids[a.person], "post": post.id, "community": community.code, "borrowed": a.borrowed,
                **({"replaces": replaces} if replaces else {})}
        events += [NewEvent(f"activation:{activation.id}", "order.notified", body),
                   NewEvent(f"person:{a.person}", "order.notified", body)]
        await audit.record(session, actor="system:dispatch", action="order.backup" if replaces else "order.fill",
                           target=f"order:{ids[a.person]}", detail={"post": post.id, "cost": int(a.cost)})
    await append_many(session, events)
    await repair_branches_of(session, activation.id, post.community_id)
    return [ids[p] for p in people]


async def repair_branches_of(session: AsyncSession, activation_id: int, community_id: int) -> None:
    """Re-form a community's temporary branches after its holders changed (临时党支部随人员变动调整).

    Ids, secretaries and party groups are kept where still valid (:func:`mobilize.branches.repair_branches`).
    """
    community = await session.get(OrgUnit, community_id)
    holders = (await session.execute(
        select(Order.person_id, Post.key, Post.group, Post.lat, Post.lon, Person.group_leader)
        .join(Post, Post.id == Order.post_id).join(Person, Person.id == Order.person_id)
        # The community's posts lead (their orders by post): by activation, SQLite walked all its orders.
        .where(Post.activation_id == activation_id, Post.community_id == community_id,
               Order.status.in_(OPEN_STATES), Person.party_member.is_(True)))).all()
    members = [Member(pid, community.code, group, True, leader, group == "command", key, lat, lon)
               for pid, key, group, lat, lon, leader in holders]
    stored = (await session.execute(select(Branch).where(
        Branch.activation_id == activation_id, Branch.community_id == community_id, Branch.status == "active"))).scalars().all()
    rows = (await session.execute(select(BranchMember).where(
        BranchMember.branch_id.in_([b.id for b in stored])))).scalars().all() if stored else []
    previous = BranchPlan(tuple(_stored_branch(b, community.code, [m for m in rows if m.branch_id == b.id])
                                for b in stored), ())
    plan = repair_branches(previous, members)
    await writes.save_branches(session, activation_id, plan, {community.code: community_id}, community_id=community_id)
    if plan.changes:
        await append_many(session, [NewEvent(f"activation:{activation_id}", "branches.changed", {
            "community": community.code, "branches": len(plan.branches),
            "changes": [{"branch": c.branch, "kind": c.kind} for c in plan.changes][:50]})])


def _stored_branch(branch: Branch, community: str, members) -> BranchDef:
    groups: dict[str, list] = {}
    heads: dict[str, int] = {}
    for m in members:
        if m.party_group:
            groups.setdefault(m.party_group, []).append(m.person_id)
            if m.group_head:
                heads[m.party_group] = m.person_id
    party_groups = tuple(PartyGroup(gid, heads.get(gid, ids[0]), tuple(ids)) for gid, ids in sorted(groups.items()))
    return BranchDef(branch.key, community, tuple(branch.groups), branch.secretary_id,
                     tuple(m.person_id for m in members), party_groups)


async def release_person(session: AsyncSession, activation: Activation, person_id: int) -> None:
    """Give a person who left their post (declined, replaced) their standing status back."""
    if not activation.is_drill:
        await session.execute(update(Person).where(Person.id == person_id, Person.status == "deployed")
                              .values(status="available"))
