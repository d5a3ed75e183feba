"""The phone side of dispatch: what a person's link shows, and what its buttons do.

A GET only shows; a POST acts, with an idempotency key, so link scanners and a shaky network's
retries never acknowledge twice. A team leader's link also shows the team and acts for it.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mobilize import audit, idempotency
from mobilize.activations.dispatch import (
    FillPlan, find_backup, open_link, order_state, plan_backup, release_person, write_transition,
)
from mobilize.activations.models import Activation, Branch, BranchMember, Order, Post
from mobilize.activations.notices import Notices
from mobilize.db import aware, begin_write
from mobilize.errors import Conflict, InvalidInput, MobilizeError, Problem
from mobilize.orders import DECLINE_REASONS, OrderState, Transition, apply
from mobilize.plans import LEVEL_ZH, Plan
from realtime.log import append_many
from realtime.models import NewEvent
from rosters.models import OrgUnit, Person, Team

__all__ = ["view", "act", "answer", "check_action", "team_act", "PERSON_ACTIONS", "GROUPED_ACTIONS", "STATUS_ZH"]

PERSON_ACTIONS = ("acknowledge", "decline", "en_route", "arrive")
#: Answers that only move the order along (no backup search): written by the group-commit writer.
GROUPED_ACTIONS = ("acknowledge", "en_route", "arrive")
STATUS_ZH = {"notified": "待确认", "acknowledged": "已确认", "en_route": "在途", "arrived": "已到岗",
             "escalated": "超时未确认", "released": "已解除", "declined": "已拒绝", "reassigned": "已改派",
             "cancelled": "已取消"}


async def _current_order(session: AsyncSession, person_id: int, activation_id: int) -> Order | None:
    # populate_existing: changes are written compare-and-set with Core, so the identity map may be stale.
    return (await session.execute(select(Order).where(Order.person_id == person_id,
                                                      Order.activation_id == activation_id)
                                  .order_by(Order.id.desc()).limit(1)
                                  .execution_options(populate_existing=True))).scalar_one_or_none()


def _allowed(state: OrderState, now: datetime, actor: str = "person") -> list[str]:
    # What is allowed depends only on the status and how far the answers got: judged once for each.
    known = _ALLOWED.get((state.status, state.progress, actor))
    if known is not None:
        return list(known)
    out = []
    for action in PERSON_ACTIONS:
        try:
            tr = apply(state, action, actor=actor, at=now, reason="other" if action == "decline" else None,
                       note="-" if action == "decline" else None)
        except MobilizeError:
            continue
        if not tr.noop:
            out.append(action)
    _ALLOWED[(state.status, state.progress, actor)] = tuple(out)
    return out


_ALLOWED: dict[tuple[str, int, str], tuple[str, ...]] = {}


async def view(session: AsyncSession, token: str, *, now: datetime) -> dict[str, Any]:
    """Return what the phone page shows for this link (the person's own order, branch, team)."""
    link = await open_link(session, token, now=now)
    person = await session.get(Person, link.person_id)
    activation = await session.get(Activation, link.activation_id)
    order = await _current_order(session, person.id, activation.id)
    data: dict[str, Any] = {
        "person": {"id": person.id, "name": person.name},
        "activation": {"id": activation.id, "hazard": activation.hazard,
                       "hazard_zh": (activation.summary or {}).get("hazard_zh"), "level": activation.level,
                       "level_zh": LEVEL_ZH.get(activation.level), "drill": activation.is_drill,
                       "status": activation.status},
        "order": None, "branch": None, "team": None, "team_members": [],
    }
    if order is not None:
        post = await session.get(Post, order.post_id)
        community = await session.get(OrgUnit, post.community_id)
        data["order"] = {
            "id": order.id, "status": order.status, "status_zh": STATUS_ZH.get(order.status, order.status),
            "post": {"name_zh": post.name_zh, "name_en": post.name_en, "group": post.group, "site": post.site_name,
                     "community": community.name, "lat": post.lat, "lon": post.lon, "shift_hours": post.shift_hours},
            "ack_deadline_at": _iso(order.ack_deadline_at), "arrive_deadline_at": _iso(order.arrive_deadline_at),
            "closed_reason": order.closed_reason, "actions": _allowed(order_state(order), now),
            "decline_reasons": list(DECLINE_REASONS),
        }
        branch = (await session.execute(select(Branch).join(BranchMember, BranchMember.branch_id == Branch.id)
                                        .where(Branch.activation_id == activation.id, Branch.status == "active",
                                               BranchMember.person_id == person.id))).scalar_one_or_none()
        if branch is None:  # not a party member: the branch of the post's group
            branch = (await session.execute(select(Branch).where(
                Branch.activation_id == activation.id, Branch.status == "active",
                Branch.community_id == post.community_id))).scalars().first()
        if branch is not None:
            secretary = await session.get(Person, branch.secretary_id) if branch.secretary_id else None
            data["branch"] = {"groups": branch.groups, "joint": branch.joint,
                              "secretary": secretary.name if secretary else None}
    if person.team_id is not None:
        team = await session.get(Team, person.team_id)
        leader = await session.get(Person, team.leader_id) if team.leader_id else None
        is_leader = leader is not None and leader.id == person.id
        data["team"] = {"code": team.code, "name": team.name, "kind": team.kind, "is_leader": is_leader,
                        "leader": leader.name if leader else None,
                        "leader_phone": leader.phone if leader and not is_leader else None}
        if is_leader:
            data["team_members"] = await _team_orders(session, team.id, activation.id)
    return data


async def _team_orders(session: AsyncSession, team_id: int, activation_id: int) -> list[dict]:
    members = (await session.execute(select(Person.id, Person.name).where(Person.team_id == team_id)
                                     .order_by(Person.id))).all()
    out = []
    for pid, name in members:
        order = await _current_order(session, pid, activation_id)
        out.append({"person_id": pid, "name": name, "order": order.id if order else None,
                    "status": order.status if order else None,
                    "status_zh": STATUS_ZH.get(order.status, "未派单") if order else "未派单"})
    return out


def _iso(value: datetime | None) -> str | None:
    return aware(value).isoformat() if value is not None else None


def answer(order_id: int, state: OrderState, now: datetime) -> dict[str, Any]:
    """Return the small answer to a button press: the order's state and what the person may do next.

    The page merges it into what it shows (post, branch, team do not change with a press).
    """
    return {"order": {"id": order_id, "status": state.status, "status_zh": STATUS_ZH.get(state.status, state.status),
                      "ack_deadline_at": _iso(state.ack_deadline_at), "arrive_deadline_at": _iso(state.arrive_deadline_at),
                      "closed_reason": state.closed_reason, "actions": _allowed(state, now)}}


async def act(session: AsyncSession, token: str, action: str, *, key: str | None, reason: str | None,
              note: str | None, now: datetime, local_now: datetime, plans: dict[str, Plan],
              notices: Notices | None = None, gate: asyncio.Lock | None = None) -> tuple[int, dict]:
    """Return (HTTP status, :func:`answer`) after the person's button ``action``; a repeated key replays.

    Everything that only reads runs before the write lock: the link, a replay, the state machine's
    verdict (a 409 or 422 never waits for the lock) and, for a decline, the search for a backup. Under
    the lock (:func:`~mobilize.db.begin_write`) it is all checked again and applied compare-and-set;
    the precomputed backup is used only if still free. The acks of many phones go through
    :class:`mobilize.activations.answers.AnswerWriter` instead (group commit); ``gate`` is its lock, held
    from the write lock to the commit so the two kinds of writes queue in order.
    """
    key = idempotency.require_key(key)
    check_action(action)
    link = await open_link(session, token, now=now)
    scope, digest = f"link:{link.id}", idempotency.request_hash(action, reason, note)
    stored = await idempotency.replay(session, scope, key, digest)
    if stored is not None:
        return stored
    order = await _current_order(session, link.person_id, link.activation_id)
    if order is None:
        raise Conflict("您在本次启动中没有派单", "You have no order in this activation")
    tr = apply(order_state(order), action, actor="person", at=now, reason=reason, note=note)
    planned = None
    if not tr.noop and tr.order.status == "declined":
        planned = await plan_backup(session, order, local_now=local_now)
    async with gate or contextlib.nullcontext():
        await begin_write(session)  # SQLite: the reading transaction ends here and the write lock is taken
        link = await open_link(session, token, now=now)  # revoked or ended meanwhile?
        stored = await idempotency.replay(session, scope, key, digest)
        if stored is not None:
            return stored
        order = await _current_order(session, link.person_id, link.activation_id)
        tr = await _apply_and_follow(session, order, action, actor="person", actor_id=f"person:{link.person_id}",
                                     reason=reason, note=note, now=now, local_now=local_now, plans=plans,
                                     notices=notices, planned=planned)
        data = answer(order.id, tr.order, now)
        await idempotency.remember(session, scope, key, digest, 200, data)
        await session.commit()
    return 200, data


def check_action(action: str) -> None:
    """Refuse (422) an action that is not one of the person's buttons."""
    if action not in PERSON_ACTIONS:
        raise InvalidInput("未知操作", "Unknown action", [Problem(f"可选：{'、'.join(PERSON_ACTIONS)}",
                                                                   "one of " + ", ".join(PERSON_ACTIONS),
                                                                   field="action", value=action)])


async def _apply_and_follow(session: AsyncSession, order: Order, action: str, *, actor: str, actor_id: str,
                            reason: str | None, note: str | None, now: datetime, local_now: datetime,
                            plans: dict[str, Plan], notices: Notices | None = None,
                            planned: FillPlan | None = None) -> Transition:
    """Apply an action compare-and-set (once more after losing a race), then its consequences."""
    for _attempt in range(2):
        tr = apply(order_state(order), action, actor=actor, at=now, reason=reason, note=note)
        if await write_transition(session, order, tr, actor=actor_id):
            break
        await session.refresh(order)
    else:  # pragma: no cover - two lost races in a row
        raise Conflict("派单状态刚刚发生变化，请刷新", "The order just changed; reload and try again")
    if tr.noop or tr.order.status != "declined":
        return tr
    activation = await session.get(Activation, order.activation_id)
    await release_person(session, activation, order.person_id)
    plan = plans[activation.hazard]
    await find_backup(session, order, local_now=local_now, now=now, ack_minutes=plan.acknowledge_minutes[activation.level],
                      arrive_minutes=plan.arrive_minutes[activation.level], notices=notices, planned=planned)
    return tr


async def team_act(session: AsyncSession, token: str, action: str, *, key: str | None, count: int | None,
                   note: str | None, now: datetime, local_now: datetime, plans: dict[str, Plan],
                   notices: Notices | None = None) -> tuple[int, dict]:
    """Return (status, page data) after a team leader's action: acknowledge for the team, report arrivals or a
    shortage."""
    key = idempotency.require_key(key)
    link = await open_link(session, token, now=now)
    person = await session.get(Person, link.person_id)
    team = await session.get(Team, person.team_id) if person.team_id else None
    if team is None or team.leader_id != person.id:
        raise Conflict("只有队长可以代表队伍操作", "Only the team leader acts for the team")
    if action not in ("acknowledge_all", "arrival_headcount", "shortage"):
        raise InvalidInput("未知操作", "Unknown action", [Problem("可选：acknowledge_all、arrival_headcount、shortage",
                                                                   "one of acknowledge_all, arrival_headcount, shortage",
                                                                   field="action", value=action)])
    if action == "arrival_headcount" and (count is None or count < 0):
        raise InvalidInput("请填写到岗人数", "Give the number of people who arrived",
                           [Problem("须为不小于 0 的整数", "must be an integer ≥ 0", field="count", value=count)])
    if action == "shortage" and not (note and note.strip()):
        raise InvalidInput("请说明缺什么", "Say what is short", [Problem("请填写缺口说明", "describe the shortage",
                                                                        field="note")])
    scope, digest = f"link:{link.id}", idempotency.request_hash("team", action, count, note)
    stored = await idempotency.replay(session, scope, key, digest)
    if stored is not None:
        return stored
    stream = f"activation:{link.activation_id}"
    if action == "acknowledge_all":
        for member in await _team_orders(session, team.id, link.activation_id):
            if member["status"] in ("notified", "escalated"):
                order = await session.get(Order, member["order"], populate_existing=True)
                await _apply_and_follow(session, order, "acknowledge", actor="team_leader",
                                        actor_id=f"team_leader:{person.id}", reason=None, note=None, now=now,
                                        local_now=local_now, plans=plans, notices=notices)
    else:
        event = "team.arrival_reported" if action == "arrival_headcount" else "team.shortage_reported"
        body = {"team": team.code, "count": count} if action == "arrival_headcount" else {"team": team.code,
                                                                                          "note": note.strip()[:200]}
        await append_many(session, [NewEvent(stream, event, body)])
        await audit.record(session, actor=f"team_leader:{person.id}", action=event, target=f"team:{team.code}",
                           detail=body)
    data = await view(session, token, now=now)
    await idempotency.remember(session, scope, key, digest, 200, data)
    return 200, data
