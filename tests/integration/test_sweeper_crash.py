"""Dispatch on phones: the escalation sweeper survives ``kill -9`` in the middle of a big catch-up.

A real ``mobilize serve`` runs the sweeper (APScheduler, a fast interval) over an activation whose
thousands of deadlines were all moved into the past; it is killed with SIGKILL once some, not all, of
the overdue steps have fired, and a second server is started on the same database. When nothing is
due any more, every overdue step must have fired exactly once — counted in the audit log, the event
log and the outbox — on SQLite and PostgreSQL.

The roster is two streets of the demo city (about 2,800 people): a district-wide flood activation at
level I gives about 1,900 orders. Most orders are made 6 minutes overdue (timeout, remind the person,
tell the team leader: the reassignment is 4 minutes away), every 30th 20 minutes overdue (also
reassign the post: one backup search each, the expensive step).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import date, timedelta

import httpx
from sqlalchemy import func, select, update

from mobilize.activations.models import OPEN_ORDER_STATES, Order
from mobilize.activations.sweeper import DUE_STATES
from mobilize.db import begin_write, create_engine, create_sessionmaker, session_scope, utcnow
from mobilize.models import AuditEntry
from mobilize.notify.models import OutboxMessage
from realtime.models import event_log
from rosters.models import Person, Team
from tests.support import DEMO_PASSWORD, LiveServer

STREETS = 2
DEEP_EVERY = 30  # every 30th order is overdue far enough to be reassigned
SHALLOW_MINUTES = 6  # level I: ack 10 min, ladder (0, 5, 10, 15): steps 1-2 due, reassignment at +10
DEEP_MINUTES = 20
LADDER = ("remind_person", "tell_team_leader", "reassign_post", "tell_secretary_and_command")


async def seed_partial_city(url: str, streets: int = STREETS) -> str:
    """Load the first ``streets`` streets of the demo city's first district and an admin; return the district."""
    from mobilize.operators import OperatorCreate, create_operator
    from rosters.demo import generate_city
    from rosters.loader import load_roster
    from rosters.records import Roster
    from rosters.vocabulary import load_workgroups

    full = generate_city("city", 1, today=date(2026, 11, 21))
    parent = {u.code: u.parent_code for u in full.units}
    district = next(u.code for u in full.units if u.level == "district")
    chosen = {u.code for u in full.units if u.level == "street" and u.parent_code == district}
    chosen = set(sorted(chosen)[:streets])

    def inside(code: str | None) -> bool:
        while code is not None:
            if code in chosen:
                return True
            code = parent[code]
        return False

    units = [u for u in full.units if u.level == "city" or u.code == district or inside(u.code)]
    communities = {u.code for u in units if u.level == "community"}
    roster = Roster(units=units, people=[p for p in full.people if p.community_code in communities],
                    teams=[t for t in full.teams if t.community_code in communities])
    engine = create_engine(url)
    try:
        async with session_scope(create_sessionmaker(engine)) as session:
            await load_roster(session, roster, workgroups=load_workgroups())
            await create_operator(session, OperatorCreate(username="admin", password=DEMO_PASSWORD, role="admin",
                                                          scope_code=None), actor="test")
    finally:
        await engine.dispose()
    return district


def activate(server: LiveServer, scope: str) -> dict:
    with httpx.Client(base_url=server.base, timeout=120) as client:
        r = client.post("/api/v1/auth/token", data={"username": "admin", "password": DEMO_PASSWORD})
        assert r.status_code == 200, r.text
        r = client.post("/api/v1/activations", json={"scope": scope, "hazard": "flood", "level": "I"},
                        headers={"Authorization": f"Bearer {r.json()['access_token']}"})
        assert r.status_code == 201, r.text
        return r.json()


async def escalation_rows(maker) -> int:
    async with session_scope(maker) as s:
        return (await s.execute(select(func.count()).select_from(AuditEntry)
                                .where(AuditEntry.action.like("escalation.%")))).scalar_one()


async def due_orders(maker) -> int:
    async with session_scope(maker) as s:
        return (await s.execute(select(func.count()).select_from(Order).where(
            Order.next_check_at <= utcnow(), Order.status.in_(DUE_STATES)))).scalar_one()


def stop(server: LiveServer | None) -> None:
    if server is not None and server.proc.poll() is None:
        server.proc.kill()
        server.proc.wait(timeout=10)


async def test_kill_9_mid_catch_up_then_restart_fires_every_step_once(db_url, tmp_path):
    started = time.monotonic()
    district = await seed_partial_city(db_url)
    engine = create_engine(db_url)
    maker = create_sessionmaker(engine)
    first = second = None
    try:
        first = await asyncio.to_thread(LiveServer, db_url, tmp_path, MOBILIZE_SWEEP_SECONDS="0.2")
        act = await asyncio.to_thread(activate, first, district)

        # The server was "down" across the deadlines: move every order's deadlines into the past.
        now = utcnow()
        async with session_scope(maker) as s:
            # a writer from the start: the running server's sweeper commits between our read and our writes
            # (SQLite refuses to upgrade a reader whose snapshot went stale: "database is locked")
            await begin_write(s)
            ids = list((await s.execute(select(Order.id).where(Order.activation_id == act["id"])
                                        .order_by(Order.id))).scalars())
            deep = set(ids[::DEEP_EVERY])
            for group, minutes in ((deep, DEEP_MINUTES), (set(ids) - deep, SHALLOW_MINUTES)):
                deadline = now - timedelta(minutes=minutes)
                group = sorted(group)
                for i in range(0, len(group), 900):
                    await s.execute(update(Order).where(Order.id.in_(group[i:i + 900])).values(
                        created_at=deadline - timedelta(minutes=10), ack_deadline_at=deadline,
                        arrive_deadline_at=deadline + timedelta(minutes=30), next_check_at=deadline))
        shallow = set(ids) - deep
        assert len(ids) >= 1500, f"thousands of pending deadlines expected, got {len(ids)} orders"
        minimum = 2 * len(shallow) + 3 * len(deep)  # escalation rows once everything has fired

        # Kill -9 once some but not all of the overdue steps have fired (committed).
        deadline = time.monotonic() + 90
        while (fired := await escalation_rows(maker)) < minimum // 3:
            assert first.proc.poll() is None, first.proc.stderr.read().decode(errors="replace")[-2000:]
            assert time.monotonic() < deadline, f"the sweeper fired only {fired} steps in 90 s"
            await asyncio.sleep(0.05)
        first.proc.kill()
        first.proc.wait(timeout=10)
        at_kill = await escalation_rows(maker)
        assert 0 < at_kill < minimum, f"killed too late: {at_kill} of {minimum} steps had fired"

        # Start again: the new server catches up on everything still due.
        second = await asyncio.to_thread(LiveServer, db_url, tmp_path, MOBILIZE_SWEEP_SECONDS="0.2")
        deadline = time.monotonic() + 150
        while await due_orders(maker):
            assert second.proc.poll() is None, second.proc.stderr.read().decode(errors="replace")[-2000:]
            assert time.monotonic() < deadline, "the restarted server did not catch up in 150 s"
            await asyncio.sleep(0.2)
        await asyncio.to_thread(second.stop)
        second = None
        # The shallow orders' reassignment comes due 4 minutes after setup: everything above ran before.
        assert utcnow() < now + timedelta(minutes=SHALLOW_MINUTES - 2), "too slow to tell which steps were due"

        async with session_scope(maker) as s:
            audit = (await s.execute(select(AuditEntry.action, AuditEntry.target).where(
                AuditEntry.action.like("escalation.%") | (AuditEntry.action == "order.timeout_ack")))).all()
            orders = {o.id: o for o in (await s.execute(select(Order).where(
                Order.activation_id == act["id"]))).scalars()}
            events = (await s.execute(select(event_log.c.type, event_log.c.body).where(
                event_log.c.stream == f"activation:{act['id']}"))).all()
            outbox = (await s.execute(select(OutboxMessage.kind, OutboxMessage.order_id, OutboxMessage.dedupe_key)
                                      .where(OutboxMessage.activation_id == act["id"]))).all()
            double_held = (await s.execute(select(Order.person_id).where(Order.status.in_(OPEN_ORDER_STATES))
                                           .group_by(Order.person_id).having(func.count() > 1))).scalars().all()
            # whose team leader (someone else) is told at step 2
            led = set((await s.execute(select(Order.id).join(Person, Person.id == Order.person_id)
                                       .join(Team, Team.id == Person.team_id)
                                       .where(Order.id.in_(ids), Team.leader_id.is_not(None),
                                              Team.leader_id != Person.id))).scalars())
            backup_rows = (await s.execute(select(func.count()).select_from(AuditEntry)
                                           .where(AuditEntry.action == "order.backup"))).scalar_one()
    finally:
        stop(first)
        stop(second)
        await engine.dispose()

    per = Counter((action, int(target.split(":")[1])) for action, target in audit)
    twice = {k: n for k, n in per.items() if n > 1}
    assert not twice, f"steps fired more than once after kill -9 and restart: {sorted(twice)[:10]}"

    def fired(action: str) -> set[int]:
        return {oid for (a, oid), _n in per.items() if a == action}

    # Every overdue order timed out exactly once and is escalated from its own deadline.
    assert fired("order.timeout_ack") == set(ids)
    assert all(orders[i].escalated_at is not None and orders[i].escalation == "ack" for i in ids)
    # Each ladder step fired once where due, never where not yet due.
    assert fired("escalation.remind_person") == set(ids)
    assert fired("escalation.tell_team_leader") == set(ids)
    assert fired("escalation.reassign_post") == deep
    assert all(orders[i].status == "escalated" and orders[i].escalation_step == 2 for i in shallow)
    reassigned = {i for i in ids if orders[i].status == "reassigned"}
    assert reassigned == deep, "every reassignment step took the post from its person, once"
    # A reassignment either found one backup or reported the post short: never both, never twice.
    backups = {body["order"]: body["replaces"] for kind, body in events
               if kind == "order.notified" and body.get("replaces")}
    replaced = Counter(backups.values())
    assert max(replaced.values(), default=0) == 1
    assert backup_rows == len(backups)
    assert set(replaced) | fired("escalation.tell_secretary_and_command") == deep
    assert not set(replaced) & fired("escalation.tell_secretary_and_command")
    new_orders = set(backups)
    assert all(orders[o].status == "notified" and orders[o].escalation_step == 0 for o in new_orders)
    assert set(orders) == set(ids) | new_orders
    assert not double_held, f"people holding two open orders: {double_held[:10]}"

    # The event log says the same, once per order and step.
    kinds = Counter((kind, body["order"]) for kind, body in events if kind in (
        "order.escalated", "order.reminded", "order.team_leader_told", "order.reassign_tried", "order.reassigned"))
    assert max(kinds.values()) == 1
    assert {o for k, o in kinds if k == "order.escalated"} == set(ids)
    assert {o for k, o in kinds if k == "order.reminded"} == set(ids)
    assert {o for k, o in kinds if k == "order.reassigned"} == deep

    # And the outbox: one reminder per remind step, one leader alert per led person, no duplicates.
    assert len({key for _k, _o, key in outbox}) == len(outbox)
    by_kind = Counter(kind for kind, _o, _k in outbox)
    assert by_kind["reminder"] == len(fired("escalation.remind_person")) == len(ids)
    assert {o for k, o, _ in outbox if k == "team_leader_alert"} == led
    assert {o for k, o, _ in outbox if k == "reassigned"} == deep
    assert {o for k, o, _ in outbox if k == "order_notified"} == set(orders)
    assert time.monotonic() - started < 240
