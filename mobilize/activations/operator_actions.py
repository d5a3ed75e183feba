"""What an operator may do to an order from the command center: act for a person without a phone,
release or cancel, or hand a post to the next best person. Scoped to the operator's subtree and
idempotent like the phone's buttons."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mobilize import audit, idempotency
from mobilize.access import Principal
from mobilize.activations.dispatch import (
    fill_post, find_backup, order_state, release_person, repair_branches_of, transition_values, write_transition,
)
from mobilize.activations.models import Activation, Order, Post
from mobilize.activations.notices import Notices
from mobilize.activations.queries import get_order
from mobilize.errors import Conflict, Forbidden, InvalidInput, NotFound, Problem
from mobilize.orders import OPEN_STATES, apply, new_order
from realtime.log import append_many
from realtime.models import NewEvent
from rosters.models import Person
from mobilize.plans import Plan
from rosters.models import OrgUnit

__all__ = ["OPERATOR_ACTIONS", "act_on_order", "fill_shortage", "move_person"]

OPERATOR_ACTIONS = ("acknowledge", "decline", "arrive", "release", "cancel", "reassign")


async def act_on_order(session: AsyncSession, principal: Principal, activation_id: int, order_id: int, action: str,
                       *, key: str | None, reason: str | None, note: str | None, now: datetime, local_now: datetime,
                       plans: dict[str, Plan], notices: Notices | None = None) -> dict:
    """Return the order after an operator's ``action`` (``reassign`` also sends the next best person)."""
    key = idempotency.require_key(key)
    if not principal.can_write_rosters:
        raise Forbidden("当前角色不能操作派单", "Your role may not act on orders")
    if action not in OPERATOR_ACTIONS:
        raise InvalidInput("未知操作", "Unknown action", [Problem("可选：" + "、".join(OPERATOR_ACTIONS),
                                                                   "one of " + ", ".join(OPERATOR_ACTIONS),
                                                                   field="action", value=action)])
    order = await _covered_order(session, principal, activation_id, order_id)
    scope, digest = principal.actor, idempotency.request_hash(order_id, action, reason, note)
    stored = await idempotency.replay(session, scope, key, digest)
    if stored is not None:
        return stored[1]
    activation = await session.get(Activation, activation_id)
    if activation.status != "active":
        raise Conflict("该启动已结束", "This activation has ended", activation_id=activation_id)
    code = {"cancel": reason or "operator", "release": reason or "operator", "reassign": reason or "operator"}
    tr = apply(order_state(order), action, actor="operator", at=now, reason=code.get(action, reason), note=note)
    if not await write_transition(session, order, tr, actor=principal.actor):
        raise Conflict("派单状态刚刚发生变化，请刷新", "The order just changed; reload and try again")
    if not tr.noop and tr.order.status in ("declined", "reassigned", "cancelled", "released"):
        await release_person(session, activation, order.person_id)
    if not tr.noop and tr.order.status in ("cancelled", "released"):  # nobody follows: the branches close ranks
        community_id = (await session.execute(select(Post.community_id).where(Post.id == order.post_id))).scalar()
        await repair_branches_of(session, activation.id, community_id)
    if not tr.noop and tr.order.status in ("declined", "reassigned"):  # the backup search repairs the branches
        plan = plans[activation.hazard]
        await find_backup(session, order, local_now=local_now, now=now,
                          ack_minutes=plan.acknowledge_minutes[activation.level],
                          arrive_minutes=plan.arrive_minutes[activation.level], notices=notices)
    data = await get_order(session, activation_id, order_id, principal)
    await idempotency.remember(session, scope, key, digest, 200, data)
    return data


async def fill_shortage(session: AsyncSession, principal: Principal, activation_id: int, post_id: int, *,
                        now: datetime, local_now: datetime, plans: dict[str, Plan],
                        notices: Notices | None = None) -> dict:
    """Return the post's fill after sending the best available people of its street to its open places."""
    if not principal.can_write_rosters:
        raise Forbidden("当前角色不能调配人员", "Your role may not send people")
    row = (await session.execute(select(Post, OrgUnit.path).join(OrgUnit, OrgUnit.id == Post.community_id)
                                 .where(Post.id == post_id, Post.activation_id == activation_id))).first()
    if row is None or not principal.covers(row[1]):
        raise NotFound("未找到该岗位", f"No post {post_id}")
    post = row[0]
    activation = await session.get(Activation, activation_id)
    if activation.status != "active" or not post.active:
        raise Conflict("该岗位已不在岗", "This post is no longer staffed", activation_id=activation_id)
    holders = (await session.execute(select(Order.leader_part).where(
        Order.post_id == post.id, Order.status.in_(OPEN_STATES))
    )).scalars().all()
    missing = post.headcount - len(holders)
    if missing <= 0:
        raise Conflict("该岗位已满员", "This post is already full", post=post.id)
    plan = plans[activation.hazard]
    sent = await fill_post(session, activation, post, missing, leader=post.leader_required and not any(holders),
                           local_now=local_now, now=now, ack_minutes=plan.acknowledge_minutes[activation.level],
                           arrive_minutes=plan.arrive_minutes[activation.level], notices=notices)
    await audit.record(session, actor=principal.actor, action="post.fill", target=f"post:{post.id}",
                       detail={"missing": missing, "sent": len(sent)})
    return {"post": post.id, "missing": missing, "sent": len(sent), "orders": sent, "still_short": missing - len(sent)}


async def move_person(session: AsyncSession, principal: Principal, activation_id: int, order_id: int, to_post: int, *,
                      key: str | None, now: datetime, plans: dict[str, Plan], notices: Notices | None = None) -> dict:
    """Return the new order after moving its person from their post to ``to_post`` of the same activation (调岗).

    The old order ends ``reassigned`` (reason ``moved``) compare-and-set, so a move racing the person's
    own answer or the sweeper lands once or is a 409; a new notified order at the new post follows in
    the same transaction (the person confirms it with the link they already have), both posts' fill
    and both communities' temporary branches are updated. The old post is left one short: filling it
    is a separate decision (``POST /activations/{id}/posts/{post_id}/fill``).
    """
    key = idempotency.require_key(key)
    if not principal.can_write_rosters:
        raise Forbidden("当前角色不能调配人员", "Your role may not move people")
    scope, digest = principal.actor, idempotency.request_hash("move", order_id, to_post)
    stored = await idempotency.replay(session, scope, key, digest)
    if stored is not None:
        return stored[1]
    order = await _covered_order(session, principal, activation_id, order_id)
    target = (await session.execute(select(Post, OrgUnit.path).join(OrgUnit, OrgUnit.id == Post.community_id)
                                    .where(Post.id == to_post, Post.activation_id == activation_id))).first()
    if target is None or not principal.covers(target[1]):
        raise InvalidInput("目标岗位不存在", "No such post in this activation",
                           [Problem("须为本次启动中您管辖范围内的岗位", "a post of this activation in your scope",
                                    field="post_id", value=to_post)])
    post = target[0]
    activation = await session.get(Activation, activation_id)
    if activation.status != "active" or not post.active:
        raise Conflict("该岗位已不在岗", "This post is no longer staffed", post=post.id)
    if post.id == order.post_id:
        raise InvalidInput("人员已在该岗位", "The person already holds this post",
                           [Problem("请选择另一个岗位", "choose another post", field="post_id", value=to_post)])
    holders = (await session.execute(select(Order.leader_part).where(
        Order.post_id == post.id, Order.status.in_(OPEN_STATES)))).scalars().all()
    if len(holders) >= post.headcount:
        raise Conflict("目标岗位已满员", "The post is already full", post=post.id)
    tr = apply(order_state(order), "reassign", actor="operator", at=now, reason="moved")
    if tr.noop or not await write_transition(session, order, tr, actor=principal.actor, extra={"moved_to": post.id}):
        raise Conflict("派单状态刚刚发生变化，请刷新", "The order just changed; reload and try again")
    plan = plans[activation.hazard]
    state = new_order(now, plan.acknowledge_minutes[activation.level], plan.arrive_minutes[activation.level])
    person = await session.get(Person, order.person_id)
    moved = Order(activation_id=activation_id, person_id=order.person_id, post_id=post.id, created_at=now,
                  leader_part=bool(post.leader_required and person.group_leader and not any(holders)),
                  borrowed=person.community_id != post.community_id,
                  explanation={"moved_from": order.post_id, "replaces": order.id, "by": principal.actor},
                  **transition_values(state))
    session.add(moved)
    await session.flush()
    await session.execute(update(Post).where(Post.id == post.id).values(filled=Post.filled + 1))
    community = (await session.execute(select(OrgUnit.code).where(OrgUnit.id == post.community_id))).scalar()
    body = {"order": moved.id, "post": post.id, "community": community, "moved_from": order.post_id,
            "replaces": order.id}
    await append_many(session, [NewEvent(f"activation:{activation_id}", "order.notified", body),
                                NewEvent(f"person:{order.person_id}", "order.notified", body)])
    await audit.record(session, actor=principal.actor, action="order.move", target=f"order:{moved.id}",
                       detail={"from_post": order.post_id, "to_post": post.id, "replaces": order.id})
    # Their link stays theirs; moved before a large dispatch's fan-out told them, the message brings one.
    await (notices or Notices()).tell(session, activation, [order.person_id], now=now)
    old_community = (await session.execute(select(Post.community_id).where(Post.id == order.post_id))).scalar()
    for community_id in sorted({old_community, post.community_id}):
        await repair_branches_of(session, activation_id, community_id)
    data = await get_order(session, activation_id, moved.id, principal)
    await idempotency.remember(session, scope, key, digest, 200, data)
    return data


async def _covered_order(session: AsyncSession, principal: Principal, activation_id: int, order_id: int) -> Order:
    """Return the order, read fresh; one outside ``principal``'s scope does not exist for them (404)."""
    row = (await session.execute(
        select(Order, OrgUnit.path).join(Post, Post.id == Order.post_id).join(OrgUnit, OrgUnit.id == Post.community_id)
        .where(Order.id == order_id, Order.activation_id == activation_id)
        .execution_options(populate_existing=True))).first()
    if row is None or not principal.covers(row[1]):
        raise NotFound("未找到该派单", f"No order {order_id}")
    return row[0]
