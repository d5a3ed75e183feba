"""Big inserts of an activation go by COPY on PostgreSQL, and by one INSERT … SELECT over JSON on SQLite where
the rows share values: the rows are exactly those executemany writes."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from mobilize.activations import rows as bulk, writes
from mobilize.activations.models import OPEN_ORDER_STATES, Branch, BranchMember, Order, PhoneLinkRow, Post
from mobilize.activations.levels import change_level
from mobilize.activations.service import ActivateRequest, activate, end
from mobilize.db import session_scope
from mobilize.notify.models import OutboxMessage
from mobilize.plans import load_plans
from realtime.models import event_log
from rosters.models import OrgUnit
from rosters.vocabulary import load_skills, load_workgroups

AT = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
pytestmark = pytest.mark.usefixtures("demo")


async def _activation_rows(sessionmaker, scope: str, plans, copy_from: int, monkeypatch, raised: bool = False) -> dict:
    """Return what a drill over ``scope`` wrote (ids and times as offsets), inserting by COPY on PostgreSQL, and
    rows with shared values by one INSERT … SELECT over JSON on SQLite, from ``copy_from`` rows."""
    monkeypatch.setattr(bulk, "_COPY_FROM", copy_from)
    monkeypatch.setattr(bulk, "_JSON_FROM", copy_from)
    if copy_from > 1:  # and the posts after the solve, with their counts, by executemany (SQLite: beside it, by JSON)
        async def never(session):
            return False
        monkeypatch.setattr(writes, "posts_beside_solver", never)
    async with session_scope(sessionmaker) as s:
        activation, _ = await activate(s, ActivateRequest(scope, "flood", "III" if raised else "I", drill=True),
                                       plans=plans, at=AT)
    aid = activation.id
    if raised:  # posts resized and added, holders kept, the rest solved
        async with session_scope(sessionmaker) as s:
            await change_level(s, aid, "I", plans=plans, at=AT)
    async with session_scope(sessionmaker) as s:
        key_of = dict((await s.execute(select(Post.id, Post.key).where(Post.activation_id == aid))).all())
        posts = sorted(tuple(p) for p in (await s.execute(select(
            Post.key, OrgUnit.code, Post.code, Post.group, Post.name_zh, Post.name_en, Post.site_code, Post.site_name,
            Post.lat, Post.lon, Post.headcount, Post.filled, Post.skills_all, Post.skills_any, Post.leader_required,
            Post.priority, Post.shift_hours, Post.active).join(OrgUnit, OrgUnit.id == Post.community_id)
            .where(Post.activation_id == aid))).all())
        orders = sorted((o.person_id, key_of[o.post_id], o.status, o.leader_part, o.borrowed, o.travel_minutes, o.cost,
                         o.explanation, o.ack_deadline_at - o.created_at, o.arrive_deadline_at - o.created_at,
                         o.arrive_minutes, o.escalation_step, o.next_check_at - o.created_at)
                        for o in (await s.execute(select(Order).where(Order.activation_id == aid))).scalars())
        links = sorted((link.person_id, len(link.token_hash), link.expires_at - link.created_at) for link in
                       (await s.execute(select(PhoneLinkRow).where(PhoneLinkRow.activation_id == aid))).scalars())
        branches = sorted((b.key, b.groups, b.joint, b.secretary_id, b.status) for b in (await s.execute(
            select(Branch).where(Branch.activation_id == aid))).scalars())
        members = sorted(tuple(m) for m in (await s.execute(
            select(Branch.key, BranchMember.person_id, BranchMember.party_group, BranchMember.group_head)
            .join(Branch, Branch.id == BranchMember.branch_id).where(Branch.activation_id == aid))).all())
        # the ids each way returned are the rows': each post's count is its open orders, each dispatched order
        # in the events is that order on that post
        open_orders = (await s.execute(select(Order.id, Order.person_id, Order.post_id).where(
            Order.activation_id == aid, Order.status.in_(OPEN_ORDER_STATES)))).all()
        per_post = Counter(post for _id, _person, post in open_orders)
        counted = dict((await s.execute(select(Post.id, Post.filled).where(Post.activation_id == aid))).all())
        assert counted == {pid: per_post.get(pid, 0) for pid in counted} and sum(counted.values()) == len(open_orders)
        post_of = {oid: post for oid, _person, post in open_orders}
        told = [pair for body in (await s.execute(select(event_log.c.body).where(
            event_log.c.stream == f"activation:{aid}", event_log.c.type == "orders.notified"))).scalars()
            for pair in body["orders"]]
        assert told and all(post_of[order] == post for order, post in told)
        notices = (await s.execute(select(OutboxMessage).where(OutboxMessage.activation_id == aid))).scalars().all()
        events = (await s.execute(select(event_log.c.type).where(event_log.c.stream == f"activation:{aid}"))).scalars()
        rows = {"posts": posts, "orders": orders, "links": links, "branches": branches, "members": members,
                "notices": len(notices), "events": sorted(events)}
        await end(s, aid)
    return rows


async def test_rows_inserted_by_copy_are_those_executemany_inserts(sessionmaker, demo, monkeypatch):
    skills, workgroups = load_skills(), load_workgroups()
    plans = load_plans(skills=skills, workgroups=workgroups)
    # Level I over the street, every insert by COPY or JSON (from 1 row) and then none.
    by_copy = await _activation_rows(sessionmaker, demo["street"], plans, 1, monkeypatch)
    by_executemany = await _activation_rows(sessionmaker, demo["street"], plans, 10**9, monkeypatch)
    assert len(by_copy["orders"]) > 100 and by_copy["members"]
    assert by_copy == by_executemany


async def test_a_raise_writes_the_same_rows_either_way(sessionmaker, demo, monkeypatch):
    plans = load_plans(skills=load_skills(), workgroups=load_workgroups())
    by_copy = await _activation_rows(sessionmaker, demo["street"], plans, 1, monkeypatch, raised=True)
    by_executemany = await _activation_rows(sessionmaker, demo["street"], plans, 10**9, monkeypatch, raised=True)
    assert len(by_copy["orders"]) > 100 and any(p[11] for p in by_copy["posts"])  # posts with holders counted
    assert by_copy == by_executemany
