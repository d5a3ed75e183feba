"""Dispatch on phones: several sweepers over one database, and an ack racing its deadline.

Two "instances" are two engines and sessionmakers on one database (PostgreSQL: ``FOR UPDATE SKIP
LOCKED`` lets them claim different rows at once; SQLite: one file, ``BEGIN IMMEDIATE`` serializes
them). They sweep the same overdue orders concurrently, round after round: no step may fire twice,
and together they must do exactly what one instance would have done.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import timedelta
from urllib.parse import urlparse

import pytest
from sqlalchemy import func, select, update

from mobilize.activations.models import OPEN_ORDER_STATES, Order
from mobilize.activations.sweeper import sweep
from mobilize.db import aware, begin_write, create_engine, create_sessionmaker, session_scope
from mobilize.models import AuditEntry
from mobilize.notify.models import OutboxMessage
from mobilize.plans import load_plans
from mobilize.settings import Settings
from rosters.vocabulary import load_skills, load_workgroups
from tests.support import login

pytestmark = pytest.mark.usefixtures("demo")

DEEP_EVERY = 25  # these orders are overdue by 10 more minutes: their post is reassigned (a backup search)
SKEW = timedelta(seconds=20)  # instance B's clock runs a little ahead


@pytest.fixture
def settings(db_url) -> Settings:
    # The app's own sweeper must not join in: its first run is an hour away.
    return Settings(database_url=db_url, secret_key="test-secret-key-0123456789abcdef0123456789",
                    sweep_seconds=3600)


@pytest.fixture
async def instances(settings):
    engines = [create_engine(settings.database_url) for _ in range(2)]
    yield [create_sessionmaker(e) for e in engines]
    for e in engines:
        await e.dispose()


@pytest.fixture(scope="module")
def plans():
    return load_plans(None, skills=load_skills(None), workgroups=load_workgroups(None))


async def start(client, demo, scope_key: str, level: str = "I") -> dict:
    admin = await login(client, "admin")
    r = await client.post("/api/v1/activations", headers=admin,
                          json={"scope": demo[scope_key], "hazard": "flood", "level": level})
    assert r.status_code == 201, r.text
    return r.json()


async def audit_of(maker, ids) -> Counter:
    """Return (action, order id) -> number of audit rows, for the orders ``ids``."""
    targets = [f"order:{i}" for i in ids]
    async with session_scope(maker) as s:
        rows = []
        for i in range(0, len(targets), 900):
            rows += (await s.execute(select(AuditEntry.action, AuditEntry.target)
                                     .where(AuditEntry.target.in_(targets[i:i + 900])))).all()
    return Counter((action, int(target.split(":")[1])) for action, target in rows)


async def test_two_instances_sweeping_the_same_orders_fire_each_step_once(client, demo, instances, plans):
    act = await start(client, demo, "street")
    a, b = instances
    async with session_scope(a) as s:
        await begin_write(s)  # read then write: a writer from the start, or a sweep in between makes SQLite refuse
        orders = list((await s.execute(select(Order).where(Order.activation_id == act["id"])
                                       .order_by(Order.id))).scalars())
        ids = [o.id for o in orders]
        deep = set(ids[::DEEP_EVERY])
        early = timedelta(minutes=10)
        for o in orders:
            if o.id in deep:
                await s.execute(update(Order).where(Order.id == o.id).values(
                    created_at=aware(o.created_at) - early, ack_deadline_at=aware(o.ack_deadline_at) - early,
                    arrive_deadline_at=aware(o.arrive_deadline_at) - early,
                    next_check_at=aware(o.next_check_at) - early))
    shallow = set(ids) - deep
    deadline = max(aware(o.ack_deadline_at) for o in orders)
    assert len(ids) > 500

    # Level I: ack 10 min, ladder (0, 5, 10, 15) from the missed deadline. Both instances, each round at once.
    totals: Counter = Counter()
    by_instance = [Counter(), Counter()]
    for minutes in (1, 1, 3, 6, 6):
        now = deadline + timedelta(minutes=minutes)
        while True:
            done = await asyncio.gather(sweep(a, plans=plans, now=now, batch=100),
                                        sweep(b, plans=plans, now=now + SKEW, batch=100))
            for mine, d in zip(by_instance, done):
                totals.update(d)
                mine.update(d)
            if not any(d["orders"] for d in done):
                break

    # What one instance would have done, in total, between them.
    assert totals["timeouts"] == len(ids)
    assert totals["steps"] == 2 * len(shallow) + 3 * len(deep)  # remind + leader; deep also reassign
    assert totals["reassigned"] == len(deep)
    assert all(mine["steps"] for mine in by_instance), f"both instances took a share: {by_instance}"

    per = await audit_of(a, ids)
    assert max(per.values()) == 1, [k for k, n in per.items() if n > 1][:10]
    fired = {action: {oid for (act_, oid) in per if act_ == action} for action, _ in per}
    assert fired["order.timeout_ack"] == set(ids)
    assert fired["escalation.remind_person"] == set(ids)
    assert fired["escalation.tell_team_leader"] == set(ids)
    assert fired["escalation.reassign_post"] == deep
    assert fired.get("order.reassign", set()) == deep

    async with session_scope(b) as s:
        states = dict((await s.execute(select(Order.id, Order.status).where(Order.id.in_(ids)))).all())
        steps = dict((await s.execute(select(Order.id, Order.escalation_step).where(Order.id.in_(ids)))).all())
        double_held = (await s.execute(select(Order.person_id).where(Order.status.in_(OPEN_ORDER_STATES))
                                       .group_by(Order.person_id).having(func.count() > 1))).scalars().all()
        reminders = (await s.execute(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.kind == "reminder", OutboxMessage.activation_id == act["id"]))).scalar_one()
    assert {states[i] for i in shallow} == {"escalated"} and {steps[i] for i in shallow} == {2}
    assert {states[i] for i in deep} == {"reassigned"}
    assert not double_held
    assert reminders == len(ids)


async def test_an_ack_racing_its_deadline_is_on_time_or_late_never_both(client, demo, instances, plans, settings):
    act = await start(client, demo, "community_a")
    sweeper_maker = instances[1]  # the sweeper is another instance; the acks go through the app

    async with session_scope(sweeper_maker) as s:
        rows = (await s.execute(select(OutboxMessage.order_id, OutboxMessage.payload).where(
            OutboxMessage.activation_id == act["id"], OutboxMessage.kind == "order_notified"))).all()
        deadline = max((await s.execute(select(Order.ack_deadline_at).where(
            Order.activation_id == act["id"]))).scalars())
    tokens = {oid: urlparse(payload["link"]).path.rsplit("/", 1)[-1] for oid, payload in rows}
    deadline = aware(deadline)
    assert len(tokens) >= 60
    order_ids = list(tokens)
    random.Random(7).shuffle(order_ids)

    acks_done = asyncio.Event()
    swept: Counter = Counter()

    async def ack(i: int, oid: int) -> int:
        await asyncio.sleep(0.002 * i)  # spread the taps across the sweeper's batches
        r = await client.post(f"/api/v1/m/{tokens[oid]}/actions", json={"action": "acknowledge"},
                              headers={"Idempotency-Key": f"race-{oid:06}"})
        return r.status_code

    async def sweeper() -> None:
        # The server's clock has passed the deadline: every unanswered order is due.
        now = deadline + timedelta(minutes=1)
        while True:
            done = await sweep(sweeper_maker, plans=plans, now=now, batch=3)
            swept.update(done)
            if acks_done.is_set() and not done["orders"]:
                return
            await asyncio.sleep(0)

    async def all_acks() -> list[int]:
        try:
            return await asyncio.gather(*(ack(i, oid) for i, oid in enumerate(order_ids)))
        finally:
            acks_done.set()

    codes, _ = await asyncio.gather(all_acks(), sweeper())
    assert set(codes) == {200}, Counter(codes)

    per = await audit_of(sweeper_maker, order_ids)
    async with session_scope(sweeper_maker) as s:
        acks = (await s.execute(select(AuditEntry.target, AuditEntry.detail).where(
            AuditEntry.action == "order.acknowledge", AuditEntry.target.in_([f"order:{o}" for o in order_ids])))).all()
        orders = {o.id: o for o in (await s.execute(select(Order).where(Order.id.in_(order_ids)))).scalars()}
    ack_detail = {int(t.split(":")[1]): d for t, d in acks}
    assert len(acks) == len(order_ids) == len(ack_detail), "one acknowledgement per order"

    on_time, late = set(), set()
    for oid in order_ids:
        o, d = orders[oid], ack_detail[oid]
        assert o.status == "acknowledged"
        timed_out = per[("order.timeout_ack", oid)]
        assert timed_out <= 1
        if timed_out:  # the deadline won: escalated once, then a late ack stopped the ladder
            assert d == {"from": "escalated", "to": "acknowledged", "late": True}, (oid, d)
            assert o.escalated_at is not None and o.escalation == "ack"
            assert per[("escalation.remind_person", oid)] == 1
            late.add(oid)
        else:  # the ack won: never escalated, nothing fired
            assert d == {"from": "notified", "to": "acknowledged", "late": False}, (oid, d)
            assert o.escalated_at is None and o.escalation is None and o.escalation_step == 0
            assert not any(per[(f"escalation.{s}", oid)] for s in ("remind_person", "tell_team_leader",
                                                                     "reassign_post"))
            on_time.add(oid)
        assert o.next_check_at is not None and o.next_check_at > o.acknowledged_at - timedelta(seconds=1)
    assert on_time | late == set(order_ids) and not on_time & late
    assert swept["timeouts"] == len(late)
    print(f"\nack race: {len(on_time)} acknowledged on time, {len(late)} escalated then acknowledged late")
