"""Dispatch on phones: personal links, idempotent answers, backups after a decline, and escalation."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlparse

import pytest
from sqlalchemy import func, select, update

from mobilize.activations.models import Order, PhoneLinkRow, Post
from mobilize.activations.sweeper import sweep
from mobilize.db import aware, create_engine, create_sessionmaker, session_scope, utcnow
from mobilize.models import AuditEntry
from mobilize.notify.models import OutboxMessage
from mobilize.phonelinks import hash_token
from rosters.models import Person, Team
from tests.support import login

pytestmark = pytest.mark.usefixtures("demo")


@pytest.fixture
def settings(settings):
    """Messages wait in the outbox (the SMS "gateway" is a closed port), so tests read links as a gateway would.

    With the default log channel the worker delivers at once and drops the link from the stored payload,
    which made reading links a race against the worker.
    """
    return settings.model_copy(update={"notify_channel": "sms", "sms_url": "http://127.0.0.1:9/"})


async def start(client, demo, scope_key="community_a", level="III"):
    admin = await login(client, "admin")
    r = await client.post("/api/v1/activations", headers=admin,
                          json={"scope": demo[scope_key], "hazard": "flood", "level": level})
    assert r.status_code == 201, r.text
    return admin, r.json()


async def db(settings, fn):
    engine = create_engine(settings.database_url)
    try:
        async with session_scope(create_sessionmaker(engine)) as s:
            return await fn(s)
    finally:
        await engine.dispose()


async def links(settings, activation_id) -> dict[int, str]:
    """Return person id -> token, read from the notifications as the SMS gateway would see them."""
    async def q(s):
        rows = await s.execute(select(OutboxMessage.person_id, OutboxMessage.payload).where(
            OutboxMessage.activation_id == activation_id, OutboxMessage.kind == "order_notified"))
        # a person moved to another post is told without a link: they keep the one they have
        return {pid: urlparse(payload["link"]).path.rsplit("/", 1)[-1] for pid, payload in rows if "link" in payload}
    return await db(settings, q)


async def audit_count(settings, action) -> int:
    async def q(s):
        return (await s.execute(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == action))).scalar_one()
    return await db(settings, q)


async def test_every_dispatched_person_gets_a_link_and_get_only_shows(client, demo, settings):
    _admin, act = await start(client, demo)
    tokens = await links(settings, act["id"])
    assert len(tokens) == act["summary"]["filled"]
    assert all(len(t) >= 32 for t in tokens.values())  # ≥ 128 bits
    person, token = next(iter(tokens.items()))
    for _ in range(3):  # a link scanner fetching the page acknowledges nothing
        r = await client.get(f"/api/v1/m/{token}")
        assert r.status_code == 200 and r.headers["referrer-policy"] == "no-referrer"
    page = r.json()
    assert page["person"]["id"] == person and page["order"]["status"] == "notified"
    assert set(page["order"]["actions"]) == {"acknowledge", "decline", "en_route", "arrive"}
    assert (await client.get(f"/m/{token}")).status_code == 200  # the phone page itself


async def notices_disagreeing_with_their_orders(settings, activation_id) -> tuple[int, list]:
    """Return how many dispatch notices the activation has, and those whose payload is not their own order's
    post, place, report-by time and personal link."""
    async def q(s):
        rows = (await s.execute(
            select(OutboxMessage.person_id, OutboxMessage.order_id, OutboxMessage.payload, Order.person_id,
                   Order.arrive_deadline_at, Post.name_zh, Post.name_en, Post.site_name, PhoneLinkRow.token_hash)
            .join(Order, Order.id == OutboxMessage.order_id).join(Post, Post.id == Order.post_id)
            .join(PhoneLinkRow, (PhoneLinkRow.person_id == Order.person_id)
                  & (PhoneLinkRow.activation_id == Order.activation_id))
            .where(OutboxMessage.activation_id == activation_id, OutboxMessage.kind == "order_notified"))).all()
        wrong = []
        for pid, oid, payload, holder, arrive_by, zh, en, site, token_hash in rows:
            token = urlparse(payload["link"]).path.rsplit("/", 1)[-1]
            expected = {"post": zh, "post_en": en, "place": site, "report_by": aware(arrive_by).isoformat(),
                        "drill": False}
            if pid != holder or hash_token(token) != token_hash or {k: payload.get(k) for k in expected} != expected:
                wrong.append((oid, payload))
        return len(rows), wrong
    return await db(settings, q)


async def test_each_notice_names_its_own_post_time_and_link_also_after_a_raise(client, demo, settings):
    admin, act = await start(client, demo, scope_key="street")
    count, wrong = await notices_disagreeing_with_their_orders(settings, act["id"])
    assert count == act["summary"]["filled"] > 0 and wrong == []
    r = await client.post(f"/api/v1/activations/{act['id']}/level", headers=admin, json={"level": "I"})
    assert r.status_code == 200, r.text
    new_orders = r.json()["summary"]["new_orders"]
    count_after, wrong = await notices_disagreeing_with_their_orders(settings, act["id"])
    assert new_orders > 0 and count_after == count + new_orders and wrong == []


async def test_the_same_ack_ten_times_changes_once(client, demo, settings):
    _admin, act = await start(client, demo)
    token = next(iter((await links(settings, act["id"])).values()))
    before = await audit_count(settings, "order.acknowledge")
    answers = [await client.post(f"/api/v1/m/{token}/actions", json={"action": "acknowledge"},
                                 headers={"Idempotency-Key": "tap-0001-ack"}) for _ in range(10)]
    assert {r.status_code for r in answers} == {200}
    assert all(r.json() == answers[0].json() for r in answers)
    assert answers[0].json()["order"]["status"] == "acknowledged"
    assert await audit_count(settings, "order.acknowledge") == before + 1
    r = await client.post(f"/api/v1/m/{token}/actions", json={"action": "arrive"},
                          headers={"Idempotency-Key": "tap-0001-ack"})
    assert r.status_code == 409 and r.json()["error"]["problems"][0]["field"] == "Idempotency-Key"
    r = await client.post(f"/api/v1/m/{token}/actions", json={"action": "arrive"})
    assert r.status_code == 422 and r.json()["error"]["problems"][0]["field"] == "Idempotency-Key"
    r = await client.post(f"/api/v1/m/{token}/actions", json={"action": "arrive"}, headers={"Idempotency-Key": "tap-0002-arr"})
    assert r.json()["order"]["status"] == "arrived" and r.json()["order"]["actions"] == []


async def test_decline_brings_the_best_backup(client, demo, settings):
    admin, act = await start(client, demo)
    tokens = await links(settings, act["id"])
    person, token = next(iter(tokens.items()))
    r = await client.post(f"/api/v1/m/{token}/actions", json={"action": "decline", "reason": "other"},
                          headers={"Idempotency-Key": "decline-0001"})
    assert r.status_code == 422  # "other" needs a note
    r = await client.post(f"/api/v1/m/{token}/actions", json={"action": "decline", "reason": "ill"},
                          headers={"Idempotency-Key": "decline-0002"})
    assert r.status_code == 200 and r.json()["order"]["status"] == "declined"
    declined = r.json()["order"]
    orders = (await client.get(f"/api/v1/activations/{act['id']}/orders", headers=admin,
                               params={"page_size": 1000})).json()["items"]
    backups = [o for o in orders if o["post_key"] == next(o2["post_key"] for o2 in orders if o2["id"] == declined["id"])
               and o["status"] == "notified" and o["person_id"] not in tokens]
    assert len(backups) == 1, "the freed slot went to exactly one new person"
    assert backups[0]["person_id"] in await links(settings, act["id"])  # and they got a link
    status = await db(settings, lambda s: s.scalar(select(Person.status).where(Person.id == person)))
    assert status == "available"


async def test_links_refuse_clearly_after_the_end_and_when_forged(client, demo, settings):
    admin, act = await start(client, demo)
    token = next(iter((await links(settings, act["id"])).values()))
    r = await client.get("/api/v1/m/not-a-real-token-0000000000000000")
    assert r.status_code == 404 and r.json()["error"]["message_en"]
    await client.post(f"/api/v1/activations/{act['id']}/end", headers=admin)
    r = await client.get(f"/api/v1/m/{token}")
    assert r.status_code == 410 and "过期" in r.json()["error"]["message"]
    r = await client.post(f"/api/v1/m/{token}/actions", json={"action": "acknowledge"},
                          headers={"Idempotency-Key": "after-end-01"})
    assert r.status_code == 410


async def test_team_leader_acknowledges_for_the_team(client, demo, settings):
    _admin, act = await start(client, demo, level="I")
    tokens = await links(settings, act["id"])

    async def leader_with_team(s):
        for team in (await s.execute(select(Team))).scalars():
            members = set((await s.execute(select(Person.id).where(Person.team_id == team.id))).scalars())
            if team.leader_id in tokens and len(members & set(tokens)) >= 3:
                return team.leader_id, members & set(tokens)
        return None
    found = await db(settings, leader_with_team)
    assert found, "the demo has a leader with dispatched members"
    leader, members = found
    r = await client.post(f"/api/v1/m/{tokens[leader]}/team", json={"action": "acknowledge_all"},
                          headers={"Idempotency-Key": "team-ack-0001"})
    assert r.status_code == 200, r.text
    statuses = {m["person_id"]: m["status"] for m in r.json()["team_members"]}
    assert all(statuses[m] == "acknowledged" for m in members)
    member = next(m for m in members if m != leader)
    r = await client.post(f"/api/v1/m/{tokens[member]}/team", json={"action": "acknowledge_all"},
                          headers={"Idempotency-Key": "team-ack-0002"})
    assert r.status_code == 409  # only the leader acts for the team
    r = await client.post(f"/api/v1/m/{tokens[leader]}/team", json={"action": "arrival_headcount"},
                          headers={"Idempotency-Key": "team-cnt-0001"})
    assert r.status_code == 422 and r.json()["error"]["problems"][0]["field"] == "count"


async def test_escalation_fires_each_step_once_and_catches_up(client, demo, settings, app):
    admin, act = await start(client, demo)
    tokens = await links(settings, act["id"])
    answered = list(tokens.items())[:2]
    for i, (_pid, token) in enumerate(answered):
        await client.post(f"/api/v1/m/{token}/actions", json={"action": "acknowledge"},
                          headers={"Idempotency-Key": f"ack-before-{i:04}"})
    maker = app.state.sessionmaker
    plans = app.state.plans
    t0 = utcnow()
    quiet = await sweep(maker, plans=plans, now=t0)
    assert quiet["timeouts"] == 0 and quiet["steps"] == 0
    # The server was down for an hour: every overdue step of every unanswered order fires now, once each.
    later = t0 + timedelta(hours=1)
    first = await sweep(maker, plans=plans, now=later, batch=10000)
    unanswered = act["summary"]["filled"] - len(answered)
    assert first["timeouts"] == unanswered
    again = await sweep(maker, plans=plans, now=later, batch=10000)
    assert again["steps"] == 0 and again["timeouts"] == 0
    for step in ("remind_person", "tell_team_leader", "reassign_post"):
        assert await audit_count(settings, f"escalation.{step}") == unanswered, step

    async def statuses(s):
        return dict((await s.execute(select(Order.person_id, Order.status).where(
            Order.activation_id == act["id"], Order.person_id.in_([p for p, _ in answered])))).all())
    assert set((await db(settings, statuses)).values()) == {"acknowledged"}  # answered in time: never escalated
    # a late answer after reassignment is a clear 409
    late_person, late_token = list(tokens.items())[-1]
    r = await client.post(f"/api/v1/m/{late_token}/actions", json={"action": "acknowledge"},
                          headers={"Idempotency-Key": "late-ack-0001"})
    assert r.status_code in (200, 409)
    if r.status_code == 409:
        assert r.json()["error"]["message_en"]


async def test_operator_marks_arrival_and_fills_a_shortage_from_the_street(client, demo, settings):
    admin, act = await start(client, demo, level="I")
    orders = (await client.get(f"/api/v1/activations/{act['id']}/orders", headers=admin,
                               params={"page_size": 1000})).json()["items"]
    one = orders[0]
    r = await client.post(f"/api/v1/activations/{act['id']}/orders/{one['id']}/actions", headers=admin,
                          json={"action": "arrive"})
    assert r.status_code == 422  # no idempotency key
    r = await client.post(f"/api/v1/activations/{act['id']}/orders/{one['id']}/actions",
                          headers={**admin, "Idempotency-Key": "op-arrive-0001"}, json={"action": "arrive"})
    assert r.status_code == 200 and r.json()["status"] == "arrived"
    cmd_b = await login(client, "cmd_b")
    r = await client.post(f"/api/v1/activations/{act['id']}/orders/{one['id']}/actions",
                          headers={**cmd_b, "Idempotency-Key": "op-arrive-0002"}, json={"action": "cancel"})
    assert r.status_code == 404  # another community's order does not exist for B
    # cancel a holder: the post is one short; filling it sends the best available person of the street
    other = orders[1]
    r = await client.post(f"/api/v1/activations/{act['id']}/orders/{other['id']}/actions",
                          headers={**admin, "Idempotency-Key": "op-cancel-0001"}, json={"action": "cancel"})
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    short = (await client.get(f"/api/v1/activations/{act['id']}/posts", headers=admin,
                              params={"short": True, "page_size": 1000})).json()["items"]
    post = next(p for p in short if p["id"] == other["post_id"])
    assert post["filled"] == post["headcount"] - 1
    r = await client.post(f"/api/v1/activations/{act['id']}/posts/{post['id']}/fill", headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["sent"] == 1 and r.json()["still_short"] == 0
    r = await client.post(f"/api/v1/activations/{act['id']}/posts/{post['id']}/fill", headers=admin)
    assert r.status_code == 409  # full again


async def test_branches_are_repaired_when_a_member_leaves(client, demo, settings):
    admin, act = await start(client, demo, level="I")
    branches = (await client.get(f"/api/v1/activations/{act['id']}/branches", headers=admin)).json()
    branch = max(branches, key=lambda b: len(b["members"]))
    secretary = branch["secretary_id"]
    tokens = await links(settings, act["id"])
    r = await client.post(f"/api/v1/m/{tokens[secretary]}/actions", json={"action": "decline", "reason": "ill"},
                          headers={"Idempotency-Key": "sec-declines-01"})
    assert r.status_code == 200, r.text
    after = {b["key"]: b for b in (await client.get(f"/api/v1/activations/{act['id']}/branches",
                                                      headers=admin)).json() if b["status"] == "active"}
    everyone = {m["person_id"] for b in after.values() for m in b["members"]}
    assert secretary not in everyone  # the one who left is no longer a member anywhere
    kept = after.get(branch["key"])
    if kept is not None:  # the branch goes on with a new secretary from its members
        assert kept["secretary_id"] != secretary and kept["secretary_id"] in {m["person_id"] for m in kept["members"]}
