"""The hub on the memory backend: bounded queues, resync on overflow, shared encoding, publish after commit."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from realtime import Hub, Message, Resync, append, append_many, bind_hub, models
from realtime.models import NewEvent


@pytest.fixture
async def hub():
    async with Hub.from_url("memory://") as hub:
        yield hub


async def test_every_subscriber_of_a_channel_gets_the_same_encoded_message(hub):
    async with hub.subscribe("activation:1") as a, hub.subscribe("activation:1") as b, hub.subscribe("unit:9") as c:
        await hub.publish("activation:1", {"type": "event", "seq": 1, "body": {"名": "值"}})
        got_a, got_b = await a.get(), await b.get()
        assert got_a is got_b  # serialized once, shared by all subscribers
        assert got_a.text == '{"type":"event","seq":1,"body":{"名":"值"}}'
        assert got_a.data["seq"] == 1
        assert c.qsize() == 0


async def test_messages_arrive_in_publish_order(hub):
    async with hub.subscribe("activation:1", maxsize=1000) as sub:
        await hub.publish_many([("activation:1", {"seq": n}) for n in range(1, 501)])
        assert [(await sub.get()).data["seq"] for _ in range(500)] == list(range(1, 501))


async def test_slow_subscriber_is_dropped_with_resync_and_never_grows(hub):
    drops = []
    async with hub.subscribe("activation:1", maxsize=3) as slow, hub.subscribe("activation:1", maxsize=100) as fast:
        slow.on_drop = drops.append
        for n in range(1, 51):
            await hub.publish("activation:1", {"seq": n})
            assert slow.qsize() <= 3
        # The slow one holds only the marker; the fast one saw everything.
        assert slow.dropped and slow.qsize() == 1
        marker = await slow.get()
        assert isinstance(marker, Resync) and marker.reason == "slow consumer"
        assert drops == [marker]
        assert [(await fast.get()).data["seq"] for _ in range(50)] == list(range(1, 51))
        assert hub.subscriber_count("activation:1") == 1
        assert hub.dropped == 1


async def test_iterating_a_dropped_subscription_ends_with_the_resync(hub):
    async with hub.subscribe("activation:1", maxsize=2) as sub:
        await hub.publish_many([("activation:1", {"seq": n}) for n in range(3)])
        items = [item async for item in sub]
        assert len(items) == 1 and isinstance(items[0], Resync)


async def test_a_waiting_reader_is_woken_by_publish_and_by_drop(hub):
    async with hub.subscribe("activation:1", maxsize=1) as sub:
        reader = asyncio.create_task(sub.get())
        await asyncio.sleep(0)
        await hub.publish("activation:1", {"seq": 1})
        assert isinstance(await asyncio.wait_for(reader, 1), Message)
        reader = asyncio.create_task(sub.get())
        await asyncio.sleep(0)
        hub._reset("backend connection lost")
        assert (await asyncio.wait_for(reader, 1)).reason == "backend connection lost"


async def test_backend_reset_tells_every_subscriber_to_resync(hub):
    async with hub.subscribe("a:1") as a, hub.subscribe("b:2") as b:
        hub._reset("backend connection lost")
        assert isinstance(await a.get(), Resync) and isinstance(await b.get(), Resync)
        assert hub.subscriber_count() == 0
    async with hub.subscribe("a:1") as again:  # a fresh subscription works after the reset
        await hub.publish("a:1", {"seq": 1})
        assert isinstance(await again.get(), Message)


async def test_leaving_subscribers_are_forgotten(hub):
    async with hub.subscribe("a:1"):
        assert hub.subscriber_count("a:1") == 1
    assert hub.subscriber_count() == 0
    await hub.publish("a:1", {"seq": 1})  # nobody listening: nothing kept


# --- publish after commit (SQLite in memory: no server needed) ------------------------------------


@pytest.fixture
async def sessionmaker():
    engine = create_async_engine("sqlite+aiosqlite://")
    async with engine.begin() as connection:
        await connection.run_sync(models.metadata.create_all)
    yield async_sessionmaker(engine, expire_on_commit=False)
    await engine.dispose()


async def test_events_are_published_only_after_commit(hub, sessionmaker):
    bind_hub(sessionmaker, hub)
    async with hub.subscribe("activation:1") as sub:
        async with sessionmaker() as session:
            await append(session, "activation:1", "activation.started", {"plan": 3})
            await session.flush()
            await asyncio.sleep(0.01)
            assert sub.qsize() == 0  # written, not committed: nobody may see it yet
            await session.commit()
        await hub.drain()
        message = await asyncio.wait_for(sub.get(), 1)
        assert message.data["seq"] == 1 and message.data["event"] == "activation.started"


async def test_a_rolled_back_change_is_never_published(hub, sessionmaker):
    bind_hub(sessionmaker, hub)
    async with hub.subscribe("activation:1") as sub:
        async with sessionmaker() as session:
            await append_many(session, [NewEvent("activation:1", "order.notified", {"order": n}) for n in range(3)])
            await session.rollback()
            await append(session, "activation:1", "activation.started")
            await session.commit()
        await hub.drain()
        message = await sub.get()
        assert (message.data["seq"], message.data["event"]) == (1, "activation.started")  # rollback gave seqs back
        assert sub.qsize() == 0


# --- direct hand-over (the websocket fan-out's fast path) ------------------------------------------


async def test_an_idle_subscriber_takes_messages_directly_and_a_refused_one_waits_in_order(hub):
    taken, accepting = [], True

    def direct(message):
        if accepting:
            taken.append(message.data["seq"])
        return accepting

    async with hub.subscribe("activation:1", maxsize=10) as sub:
        sub.direct = direct
        await hub.publish_many([("activation:1", {"seq": n}) for n in (1, 2)])
        assert taken == [1, 2] and sub.qsize() == 0
        accepting = False
        await hub.publish("activation:1", {"seq": 3})
        accepting = True  # ready again, but 3 is still queued: 4 must wait behind it
        await hub.publish("activation:1", {"seq": 4})
        assert taken == [1, 2] and [(await sub.get()).data["seq"] for _ in range(2)] == [3, 4]


async def test_a_failing_direct_hand_over_queues_the_message(hub, caplog):
    def direct(message):
        raise RuntimeError("socket trouble")

    async with hub.subscribe("activation:1") as sub, hub.subscribe("activation:1") as other:
        sub.direct = direct
        await hub.publish("activation:1", {"seq": 1})
        assert (await sub.get()).data == (await other.get()).data == {"seq": 1}
        assert "direct delivery on activation:1 failed" in caplog.text


async def test_a_subscriber_refusing_direct_hand_over_is_still_bounded(hub):
    async with hub.subscribe("activation:1", maxsize=3) as sub:
        sub.direct = lambda message: False
        await hub.publish_many([("activation:1", {"seq": n}) for n in range(1, 11)])
        assert sub.dropped and sub.direct is None
        assert isinstance(await sub.get(), Resync)
        assert hub.dropped == 1
