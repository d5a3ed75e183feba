"""Phone answers written together (group commit) and declines that search their backup before the lock."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from sqlalchemy import func, select, update

from mobilize.activations.dispatch import find_backup, plan_backup
from mobilize.activations.models import Activation, Order
from mobilize.db import WAL_AUTOCHECKPOINT_PAGES, begin_write, session_scope, utcnow
from mobilize.models import AuditEntry
from realtime.models import event_log
from rosters.models import Person
from tests.e2e.test_dispatch import audit_count, db, links, start, settings  # noqa: F401  (links wait in the outbox)

pytestmark = pytest.mark.usefixtures("demo")


def ack(client, token, key, action="acknowledge"):
    return client.post(f"/api/v1/m/{token}/actions", json={"action": action}, headers={"Idempotency-Key": key})


async def test_concurrent_acks_share_transactions_and_each_gets_its_own_answer(client, demo, settings, app):
    _admin, act = await start(client, demo, level="I")
    tokens = await links(settings, act["id"])
    writer = app.state.answers
    before = (writer.batches, writer.presses)
    people = list(tokens)
    answers = await asyncio.gather(*(ack(client, tokens[p], f"group-ack-{p:06}") for p in people))
    assert {r.status_code for r in answers} == {200}
    assert writer.presses - before[1] == len(people)
    assert writer.batches - before[0] < len(people), "acks in flight together share a transaction"

    async def check(s):
        rows = dict((await s.execute(select(Order.id, Order.person_id).where(
            Order.activation_id == act["id"], Order.status == "acknowledged"))).all())
        audits = Counter((await s.execute(select(AuditEntry.target).where(
            AuditEntry.action == "order.acknowledge"))).scalars())
        events = (await s.execute(select(func.count()).select_from(event_log).where(
            event_log.c.type == "order.acknowledged"))).scalar_one()
        return rows, audits, events
    rows, audits, events = await db(settings, check)
    for person, r in zip(people, answers, strict=True):  # each answer is its own order's, committed
        order = r.json()["order"]
        assert rows[order["id"]] == person and order["status"] == "acknowledged"
        assert "en_route" in order["actions"] and "acknowledge" not in order["actions"]
    assert set(audits.values()) == {1} and len(audits) == len(people)
    assert events == 2 * len(people)  # the activation's stream and the person's


async def test_one_key_ten_times_at_once_changes_once(client, demo, settings):
    _admin, act = await start(client, demo)
    token = next(iter((await links(settings, act["id"])).values()))
    before = await audit_count(settings, "order.acknowledge")
    answers = await asyncio.gather(*(ack(client, token, "same-key-0001") for _ in range(10)))
    assert {r.status_code for r in answers} == {200}
    assert all(r.json() == answers[0].json() for r in answers)
    assert await audit_count(settings, "order.acknowledge") == before + 1
    # the same key for something else, in the same batch or later, is refused and changes nothing
    again = await asyncio.gather(ack(client, token, "same-key-0001", "arrive"), ack(client, token, "same-key-0001"))
    assert [r.status_code for r in again] == [409, 200]
    assert again[0].json()["error"]["problems"][0]["field"] == "Idempotency-Key"


async def test_a_bad_press_in_a_batch_fails_alone(client, demo, settings):
    _admin, act = await start(client, demo)
    tokens = list((await links(settings, act["id"])).values())
    declined = await client.post(f"/api/v1/m/{tokens[0]}/actions", json={"action": "decline", "reason": "away"},
                                 headers={"Idempotency-Key": "mixed-dec-01"})
    assert declined.status_code == 200 and declined.json()["order"]["status"] == "declined"
    presses = [ack(client, tokens[0], "mixed-ack-00"),  # a declined order cannot be acknowledged: 409
               ack(client, "forged-token-000000000000000000000", "mixed-ack-01"),  # 404
               *(ack(client, t, f"mixed-ack-{i:02}") for i, t in enumerate(tokens[1:6], start=2))]
    answers = await asyncio.gather(*presses)
    assert [r.status_code for r in answers] == [409, 404, 200, 200, 200, 200, 200]
    assert "拒绝" in answers[0].json()["error"]["message"] and answers[1].json()["error"]["message_en"]
    statuses = await db(settings, lambda s: s.execute(select(Order.status).where(
        Order.activation_id == act["id"], Order.status == "acknowledged")))
    assert len(statuses.all()) == 5


async def test_answers_walk_the_lifecycle_and_links_end_with_the_activation(client, demo, settings):
    admin, act = await start(client, demo)
    token = next(iter((await links(settings, act["id"])).values()))
    r = await ack(client, token, "walk-enroute-1", "en_route")  # skipping ahead implies the ack
    assert r.status_code == 200 and r.json()["order"]["status"] == "en_route"
    assert r.json()["order"]["actions"] == ["decline", "arrive"]
    r = await ack(client, token, "walk-ack-0001")  # an ack after setting out is a no-op, not a 409
    assert r.status_code == 200 and r.json()["order"]["status"] == "en_route"
    r = await ack(client, token, "walk-arrive-1", "arrive")
    assert r.json()["order"]["status"] == "arrived" and r.json()["order"]["actions"] == []
    assert (await client.post(f"/api/v1/activations/{act['id']}/end", headers=admin)).status_code == 200
    r = await ack(client, token, "walk-after-end", "arrive")
    assert r.status_code == 410 and "过期" in r.json()["error"]["message"]


async def test_a_backup_computed_before_the_lock_is_checked_again_under_it(client, demo, settings, app):
    _admin, act = await start(client, demo)
    tokens = await links(settings, act["id"])
    person = next(iter(tokens))
    maker, plans = app.state.sessionmaker, app.state.plans
    async with session_scope(maker) as s:
        order = (await s.execute(select(Order).where(Order.person_id == person,
                                                     Order.activation_id == act["id"]))).scalar_one()
        planned = await plan_backup(s, order, local_now=utcnow().replace(tzinfo=None))
    chosen = [a.person for a in planned.solution.assignments]
    assert len(chosen) == 1 and chosen[0] != person
    # Meanwhile the chosen backup went on leave: the planned choice must not be used.
    await db(settings, lambda s: s.execute(update(Person).where(Person.id == chosen[0]).values(status="on_leave")))
    async with session_scope(maker) as s:
        await begin_write(s)
        activation = await s.get(Activation, act["id"])
        await s.execute(update(Order).where(Order.id == order.id).values(status="declined"))
        plan = plans[activation.hazard]
        new_id = await find_backup(s, order, local_now=utcnow().replace(tzinfo=None), now=utcnow(),
                                   ack_minutes=plan.acknowledge_minutes[activation.level],
                                   arrive_minutes=plan.arrive_minutes[activation.level], planned=planned)
        sent = await s.get(Order, new_id)
        assert sent is not None and sent.person_id not in (chosen[0], person)


async def test_a_decline_answers_small_and_brings_one_backup(client, demo, settings):
    admin, act = await start(client, demo)
    tokens = await links(settings, act["id"])
    person, token = next(iter(tokens.items()))
    r = await client.post(f"/api/v1/m/{token}/actions", json={"action": "decline", "reason": "family"},
                          headers={"Idempotency-Key": "small-dec-001"})
    assert r.status_code == 200 and set(r.json()) == {"order"}
    assert r.json()["order"]["status"] == "declined" and r.json()["order"]["closed_reason"] == "family"
    again = await client.post(f"/api/v1/m/{token}/actions", json={"action": "decline", "reason": "family"},
                              headers={"Idempotency-Key": "small-dec-001"})
    assert again.json() == r.json()
    after = await links(settings, act["id"])
    assert len(set(after) - set(tokens)) == 1  # one backup, with a link of their own


async def test_only_plain_presses_take_the_fast_route_the_rest_keep_the_documented_one(client, demo, settings, app,
                                                                                       monkeypatch):
    from mobilize.activations import phone_routes

    _admin, act = await start(client, demo)
    tokens = list((await links(settings, act["id"])).values())
    taken = []

    def spy(scope, body):
        press = plain(scope, body)
        taken.append(press is not None)
        return press
    plain = phone_routes._plain_press
    monkeypatch.setattr(phone_routes, "_plain_press", spy)
    url = f"/api/v1/m/{tokens[0]}/actions"
    r = await ack(client, tokens[0], "fast-ack-0001")
    assert r.status_code == 200 and r.json()["order"]["status"] == "acknowledged" and taken == [True]
    assert r.headers["cache-control"] == "no-store" and r.headers["referrer-policy"] == "no-referrer"
    again = await ack(client, tokens[0], "fast-ack-0001")
    assert again.json() == r.json() and taken == [True, True]
    # Whitespace is the model's to strip: passed on, and answered as before.
    r = await client.post(url, json={"action": " en_route "}, headers={"Idempotency-Key": "fast-ack-0002"})
    assert r.status_code == 200 and r.json()["order"]["status"] == "en_route" and taken[-1] is False
    refused = {  # body, headers -> the field the zh/en error names
        "note": ({"action": "arrive", "note": "x" * 201}, {"Idempotency-Key": "fast-ack-0003"}),
        "colour": ({"action": "arrive", "colour": "red"}, {"Idempotency-Key": "fast-ack-0004"}),
        "action": ({"action": "fly"}, {"Idempotency-Key": "fast-ack-0005"}),
        "Idempotency-Key": ({"action": "arrive"}, {}),
    }
    for field, (body, headers) in refused.items():
        r = await client.post(url, json=body, headers=headers)
        error = r.json()["error"]
        assert r.status_code == 422 and taken[-1] is False, (field, r.text)
        assert error["message"] and error["message_en"] and field in str(error["problems"]), (field, r.text)
    short = await client.post(url, json={"action": "arrive"}, headers={"Idempotency-Key": "short"})
    assert short.status_code == 422 and "Idempotency-Key" in short.text and taken[-1] is False
    not_json = await client.post(url, content=b"action=arrive", headers={"Idempotency-Key": "fast-ack-0006",
                                                                         "Content-Type": "text/plain"})
    assert not_json.status_code == 422 and taken[-1] is False
    assert (await client.get(url)).status_code == 405
    page = (await client.get(f"/api/v1/m/{tokens[0]}")).json()
    assert page["order"]["status"] == "en_route", "none of the refused presses changed the order"
    post = (await client.get("/openapi.json")).json()["paths"]["/api/v1/m/{token}/actions"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/PhoneAction")
    assert any(p["name"].lower() == "idempotency-key" for p in post["parameters"])


async def test_a_batch_that_fails_at_its_last_write_leaves_nothing_behind(client, demo, settings, app, monkeypatch):
    from mobilize.activations import answer_batch
    from mobilize.activations.models import IdempotencyRecord

    _admin, act = await start(client, demo)
    tokens = list((await links(settings, act["id"])).values())[:4]
    before = await audit_count(settings, "order.acknowledge")

    def broken(*_args, **_kwargs):
        raise RuntimeError("the disk is full")
    # The events are appended last, after the orders, audit rows and keys were written in the transaction.
    monkeypatch.setattr(answer_batch, "append_many", broken)
    monkeypatch.setattr(answer_batch, "append_many_sqlite", broken)
    writer = app.state.answers
    failed = await asyncio.gather(*(writer.submit(t, "acknowledge", key=f"broken-ack-{i:02}", reason=None, note=None,
                                                  now=utcnow()) for i, t in enumerate(tokens)), return_exceptions=True)
    assert all(isinstance(f, RuntimeError) for f in failed)
    statuses = await db(settings, lambda s: s.execute(select(Order.status).where(Order.activation_id == act["id"])))
    assert "acknowledged" not in set(statuses.scalars())
    assert await audit_count(settings, "order.acknowledge") == before
    keys = await db(settings, lambda s: s.scalar(select(func.count()).select_from(IdempotencyRecord).where(
        IdempotencyRecord.key.like("broken-ack-%"))))
    assert keys == 0
    monkeypatch.undo()
    answers_now = await asyncio.gather(*(ack(client, t, f"broken-ack-{i:02}") for i, t in enumerate(tokens)))
    assert [r.json()["order"]["status"] for r in answers_now] == ["acknowledged"] * len(tokens)
    assert await audit_count(settings, "order.acknowledge") == before + len(tokens)


async def test_sqlite_batches_checkpoint_beside_the_writer_and_leave_the_pool_as_found(client, demo, settings, app,
                                                                                      monkeypatch):
    from sqlalchemy import text

    from mobilize.activations import answers

    if not settings.is_sqlite:
        pytest.skip("SQLite's WAL checkpoints: PostgreSQL has none of its own to move")
    monkeypatch.setattr(answers, "CHECKPOINT_EVERY", 1)
    _admin, act = await start(client, demo)
    tokens = list((await links(settings, act["id"])).values())
    writer = app.state.answers
    for i, token in enumerate(tokens[:3]):  # one batch each
        assert (await ack(client, token, f"checkpoint-ack-{i}")).status_code == 200
        assert writer._checkpoint is not None
        await writer._checkpoint
    engine = app.state.engine
    held = [await engine.connect() for _ in range(engine.pool.checkedin())]  # every pooled connection at once
    try:
        for conn in held:  # each is back at the app's setting, whichever one a batch used
            assert (await conn.execute(text("PRAGMA wal_autocheckpoint"))).scalar() == WAL_AUTOCHECKPOINT_PAGES
    finally:
        for conn in held:
            await conn.close()
