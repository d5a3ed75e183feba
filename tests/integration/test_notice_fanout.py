"""A large dispatch's links and messages are made after its commit, a chunk per transaction, exactly once.

The activations here lower :attr:`Notices.inline_limit` to 0 so that the small demo's street takes the
path a city takes (more new orders than the limit): the key press writes one fan-out row, and
:func:`fan_out_next` makes the links and messages afterwards.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from urllib.parse import urlparse

import pytest
from sqlalchemy import func, select, update

from mobilize.activations.fanout import fan_out_all, fan_out_next
from mobilize.activations.levels import change_level
from mobilize.access import Principal, Role
from mobilize.activations.models import Activation, NoticeFanout, Order, PhoneLinkRow, Post
from mobilize.activations.notices import Notices
from mobilize.activations.operator_actions import move_person
from mobilize.activations.service import ActivateRequest, activate, end
from mobilize.db import aware, begin_write, session_scope, utcnow
from mobilize.notify import Channel, Notifier
from mobilize.notify.models import OutboxMessage
from mobilize.phonelinks import hash_token
from mobilize.plans import load_plans
from rosters.vocabulary import load_skills, load_workgroups

AT = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
DEFERRED = Notices(channel="sms", base_url="https://mobilize.example", inline_limit=0)
pytestmark = pytest.mark.usefixtures("demo")


@pytest.fixture(scope="module")
def plans():
    return load_plans(skills=load_skills(), workgroups=load_workgroups())


async def _activate(sessionmaker, scope, plans, level="III", notices=DEFERRED) -> int:
    async with session_scope(sessionmaker) as s:
        activation, _ = await activate(s, ActivateRequest(scope, "flood", level), plans=plans, at=AT, notices=notices)
        return activation.id


async def _told(sessionmaker, activation_id) -> dict:
    """Return what the activation's people have been told, checked against their orders and links."""
    async with session_scope(sessionmaker) as s:
        open_orders = dict((await s.execute(select(Order.id, Order.person_id).where(
            Order.activation_id == activation_id, Order.status == "notified"))).all())
        rows = (await s.execute(
            select(OutboxMessage.order_id, OutboxMessage.person_id, OutboxMessage.payload, Order.person_id,
                   Order.arrive_deadline_at, Post.name_zh, Post.name_en, Post.site_name)
            .join(Order, Order.id == OutboxMessage.order_id).join(Post, Post.id == Order.post_id)
            .where(OutboxMessage.activation_id == activation_id, OutboxMessage.kind == "order_notified"))).all()
        hashes = dict((await s.execute(select(PhoneLinkRow.person_id, PhoneLinkRow.token_hash).where(
            PhoneLinkRow.activation_id == activation_id))).all())
        fanouts = (await s.execute(select(NoticeFanout.done, NoticeFanout.finished_at).where(
            NoticeFanout.activation_id == activation_id))).all()
    wrong = []
    for oid, pid, payload, holder, arrive_by, zh, en, site in rows:
        expected = {"post": zh, "post_en": en, "place": site, "report_by": aware(arrive_by).isoformat(), "drill": False}
        token = urlparse(payload["link"]).path.rsplit("/", 1)[-1] if "link" in payload else None
        if pid != holder or {k: payload.get(k) for k in expected} != expected or (
                token is not None and hash_token(token) != hashes.get(pid)):
            wrong.append(oid)
    return {"orders": open_orders, "told": Counter(r[0] for r in rows), "with_link": {r[1] for r in rows if
            "link" in r[2]}, "links": set(hashes), "wrong": wrong, "fanouts": fanouts}


async def test_a_large_dispatch_commits_its_orders_and_tells_everyone_after_in_chunks(sessionmaker, demo, plans):
    aid = await _activate(sessionmaker, demo["street"], plans)
    before = await _told(sessionmaker, aid)
    assert len(before["orders"]) > 100
    # At the commit: every order, no link and no message yet, one fan-out waiting.
    assert before["told"] == Counter() and before["links"] == set()
    assert [done for done, _ in before["fanouts"]] == [0]
    steps = 0
    while await fan_out_next(sessionmaker, DEFERRED, chunk=97):
        steps += 1
    after = await _told(sessionmaker, aid)
    assert steps == -(-len(before["orders"]) // 97)  # one transaction per chunk
    assert set(after["told"]) == set(before["orders"]) and set(after["told"].values()) == {1}
    assert after["links"] == after["with_link"] == set(before["orders"].values())
    assert after["wrong"] == []
    (done, finished), = after["fanouts"]
    assert done == len(before["orders"]) and finished is not None
    assert await fan_out_next(sessionmaker, DEFERRED) == 0


async def test_two_workers_fanning_out_at_once_make_each_link_and_message_once(sessionmaker, demo, plans):
    aid = await _activate(sessionmaker, demo["street"], plans)
    handled = await asyncio.gather(fan_out_all(sessionmaker, DEFERRED, chunk=50),
                                   fan_out_all(sessionmaker, DEFERRED, chunk=50))
    after = await _told(sessionmaker, aid)
    assert sum(handled) == len(after["orders"])
    assert set(after["told"]) == set(after["orders"]) and set(after["told"].values()) == {1}
    assert after["links"] == set(after["orders"].values()) and after["wrong"] == []


async def test_a_chunk_that_fails_leaves_nothing_half_done_and_is_made_again(sessionmaker, demo, plans, monkeypatch):
    aid = await _activate(sessionmaker, demo["street"], plans)
    real = Notices.dispatched
    calls = 0

    async def crash_on_second(self, *args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == 2:
            await real(self, *args, **kwargs)  # its rows are written, then the process "dies" before the commit
            raise RuntimeError("worker died")
        return await real(self, *args, **kwargs)

    monkeypatch.setattr(Notices, "dispatched", crash_on_second)
    assert await fan_out_next(sessionmaker, DEFERRED, chunk=60) == 60
    with pytest.raises(RuntimeError):
        await fan_out_next(sessionmaker, DEFERRED, chunk=60)
    half = await _told(sessionmaker, aid)
    assert sum(half["told"].values()) == 60 and len(half["links"]) == 60
    assert [done for done, _ in half["fanouts"]] == [60]
    await fan_out_all(sessionmaker, DEFERRED, chunk=60)
    after = await _told(sessionmaker, aid)
    assert set(after["told"]) == set(after["orders"]) and set(after["told"].values()) == {1}
    assert after["links"] == set(after["orders"].values()) and after["wrong"] == []


async def test_orders_closed_before_their_chunk_are_not_told(sessionmaker, demo, plans):
    aid = await _activate(sessionmaker, demo["street"], plans)
    async with session_scope(sessionmaker) as s:
        await end(s, aid)
    assert await fan_out_next(sessionmaker, DEFERRED, chunk=10) > 10  # nobody left to tell: finished in one step
    after = await _told(sessionmaker, aid)
    assert after["told"] == Counter() and after["links"] == set()
    assert all(finished is not None for _, finished in after["fanouts"])
    assert await fan_out_next(sessionmaker, DEFERRED) == 0


async def test_a_raise_tells_its_new_people_after_the_commit_and_links_stay_one_per_person(sessionmaker, demo, plans):
    aid = await _activate(sessionmaker, demo["street"], plans)
    await fan_out_all(sessionmaker, DEFERRED)
    first = await _told(sessionmaker, aid)
    async with session_scope(sessionmaker) as s:
        raised = await change_level(s, aid, "I", plans=plans, at=AT, notices=DEFERRED)
        new_orders = raised.summary["new_orders"]
    assert new_orders > 0
    middle = await _told(sessionmaker, aid)
    assert sum(middle["told"].values()) == sum(first["told"].values())  # nothing told before the commit's fan-out
    await fan_out_all(sessionmaker, DEFERRED)
    after = await _told(sessionmaker, aid)
    assert set(after["orders"]) <= set(after["told"]) and set(after["told"].values()) == {1}
    assert sum(after["told"].values()) - sum(first["told"].values()) == new_orders
    assert after["links"] == first["links"] | set(after["orders"].values()) and after["wrong"] == []
    async with session_scope(sessionmaker) as s:
        per_person = (await s.execute(select(func.count()).select_from(PhoneLinkRow).where(
            PhoneLinkRow.activation_id == aid))).scalar_one()
    assert per_person == len(after["links"])


class Recording(Channel):
    name = "sms"

    def __init__(self):
        self.sent = Counter()

    async def send(self, message) -> None:
        self.sent[message.order_id] += 1


async def test_the_notifier_fans_out_and_delivers_each_dispatch_message_once(sessionmaker, demo, plans):
    aid = await _activate(sessionmaker, demo["street"], plans)
    channel = Recording()
    notifier = Notifier(sessionmaker, {"sms": channel}, fanout=lambda: fan_out_next(sessionmaker, DEFERRED, chunk=200))
    report = await notifier.drain()
    after = await _told(sessionmaker, aid)
    assert report.fanned == len(after["orders"])
    assert set(channel.sent) == set(after["orders"]) and set(channel.sent.values()) == {1}


async def test_a_small_dispatch_is_still_told_in_its_own_transaction(sessionmaker, demo, plans):
    aid = await _activate(sessionmaker, demo["community_a"], plans,
                          notices=Notices(channel="sms", base_url="https://mobilize.example"))
    now = await _told(sessionmaker, aid)
    assert now["fanouts"] == [] and set(now["told"]) == set(now["orders"]) and now["wrong"] == []


async def test_a_switch_back_racing_the_fan_out_leaves_no_live_link(sessionmaker, demo, plans):
    # PostgreSQL: the chunk holds shared locks on the orders it tells, so the switch-back's release waits for its
    # commit and then expires its links (or goes first, and the chunk finds the orders closed).
    for _ in range(3):
        aid = await _activate(sessionmaker, demo["street"], plans)

        async def switch_back():
            await asyncio.sleep(0.01)
            async with session_scope(sessionmaker) as s:
                await begin_write(s)  # as the API and the command line do
                await end(s, aid)

        await asyncio.gather(fan_out_all(sessionmaker, DEFERRED, chunk=40), switch_back())
        async with session_scope(sessionmaker) as s:
            ended_at = (await s.execute(select(Activation.ended_at).where(Activation.id == aid))).scalar_one()
            live = (await s.execute(select(func.count()).select_from(PhoneLinkRow).where(
                PhoneLinkRow.activation_id == aid, PhoneLinkRow.expires_at > ended_at))).scalar_one()
        assert ended_at is not None and live == 0


async def test_someone_moved_before_the_fan_out_told_them_gets_their_link_with_the_move(sessionmaker, demo, plans):
    aid = await _activate(sessionmaker, demo["street"], plans)
    async with session_scope(sessionmaker) as s:
        orders = (await s.execute(select(Order.id, Order.person_id, Order.post_id, Post.community_id).join(
            Post, Post.id == Order.post_id).where(Order.activation_id == aid).order_by(Order.id))).all()
        mover = orders[0]
        room = next(o for o in orders if o.community_id == mover.community_id and o.post_id != mover.post_id)
        await s.execute(update(Order).where(Order.id == room.id).values(status="cancelled"))  # a free place there
    admin = Principal(0, "admin", Role.ADMIN, None, None)
    async with session_scope(sessionmaker) as s:
        moved = await move_person(s, admin, aid, mover.id, room.post_id, key="move-before-fanout", now=utcnow(),
                                  plans=plans, notices=DEFERRED)
    await fan_out_all(sessionmaker, DEFERRED)
    after = await _told(sessionmaker, aid)
    assert moved["id"] in after["told"] and mover.person_id in after["with_link"] and after["wrong"] == []
    assert mover.id not in after["told"]  # the order they left was never announced


async def test_a_failing_fan_out_does_not_stop_other_messages(sessionmaker, demo, plans):
    aid = await _activate(sessionmaker, demo["community_a"], plans,
                          notices=Notices(channel="sms", base_url="https://mobilize.example"))

    async def broken() -> int:
        raise RuntimeError("fan-out step failed")

    channel = Recording()
    report = await Notifier(sessionmaker, {"sms": channel}, fanout=broken).run_once()
    told = await _told(sessionmaker, aid)
    assert report.sent == len(told["orders"]) > 0 and report.fanned == 0
