"""The event log on SQLite and PostgreSQL: gapless per-stream seqs, bulk appends, replay, publish after commit."""

from __future__ import annotations

import asyncio
import time

import pytest
from conftest_realtime import Database, database, sqlite_database  # noqa: F401 - fixtures

from realtime import Hub, append, append_many, bind_hub, head, read_since
from realtime.models import NewEvent


async def test_each_stream_counts_from_one(database: Database):
    async with database.sessionmaker() as session:
        a1 = await append(session, "activation:12", "activation.started", {"plan": 3, "level": "II"})
        u1 = await append(session, "unit:330102001001", "community.switched", {"activation": 12})
        a2 = await append(session, "activation:12", "order.notified", {"order": 1})
        await session.commit()
    assert (a1.seq, a2.seq, u1.seq) == (1, 2, 1)
    async with database.sessionmaker() as session:
        events = await read_since(session, "activation:12", 0)
        assert [(e.seq, e.type, e.body) for e in events] == [
            (1, "activation.started", {"plan": 3, "level": "II"}),
            (2, "order.notified", {"order": 1}),
        ]
        assert events[0].at.tzinfo is not None
        assert await head(session, "activation:12") == 2
        assert await head(session, "person:1") == 0


async def test_a_rollback_gives_its_seqs_back(database: Database):
    async with database.sessionmaker() as session:
        await append(session, "activation:1", "activation.started")
        await session.commit()
        await append_many(session, [NewEvent("activation:1", "order.notified", {"order": n}) for n in range(5)])
        await session.rollback()
        event = await append(session, "activation:1", "activation.ended")
        await session.commit()
    assert event.seq == 2
    async with database.sessionmaker() as session:
        assert [e.seq for e in await read_since(session, "activation:1", 0)] == [1, 2]


async def test_replay_pages_in_order(database: Database):
    async with database.sessionmaker() as session:
        await append_many(session, [NewEvent("activation:1", "order.notified", {"order": n}) for n in range(1, 26)])
        await session.commit()
    async with database.sessionmaker() as session:
        seen, last = [], 3
        while page := await read_since(session, "activation:1", last, limit=10):
            seen += [e.seq for e in page]
            last = page[-1].seq
    assert seen == list(range(4, 26))


async def test_bulk_append_of_an_activation(database: Database):
    """One activation notifies 20,000 people: 40,000 events (activation stream + person streams)."""
    events = []
    for n in range(20_000):
        events.append(NewEvent("activation:7", "order.notified", {"order": n, "post": n % 300}))
        events.append(NewEvent(f"person:{n}", "order.notified", {"order": n, "activation": 7}))
    async with database.sessionmaker() as session:
        await append(session, "person:5", "person.registered")  # a stream that already has a row
        await session.commit()
        started = time.perf_counter()
        stored = await append_many(session, events)
        elapsed = time.perf_counter() - started
        await session.commit()
    print(f"\nappend_many 40,000 events on {database.kind}: {elapsed:.3f} s")
    assert [e.seq for e in stored[0::2]] == list(range(1, 20_001))
    assert stored[11].stream == "person:5" and stored[11].seq == 2
    async with database.sessionmaker() as session:
        assert await head(session, "activation:7") == 20_000
        assert [e.seq for e in await read_since(session, "person:5", 0)] == [1, 2]


async def test_concurrent_writers_to_one_stream_get_gapless_seqs(database: Database):
    writers, appends = 8, 25

    async def writer(w: int) -> None:
        for n in range(appends):
            async with database.sessionmaker() as session:
                await append(session, "activation:3", "order.acknowledged", {"writer": w, "n": n})
                await asyncio.sleep(0)  # hold the stream's row lock across a switch
                if n % 5 == 4:  # some transactions fail: their seqs must be given back
                    await session.rollback()
                else:
                    await session.commit()

    await asyncio.gather(*(writer(w) for w in range(writers)))
    async with database.sessionmaker() as session:
        seqs = [e.seq for e in await read_since(session, "activation:3", 0, limit=10_000)]
    expected = writers * appends * 4 // 5
    assert seqs == list(range(1, expected + 1))


async def test_committed_events_reach_the_hub_in_order(database: Database):
    async with Hub.from_url("memory://") as hub:
        bind_hub(database.sessionmaker, hub)
        async with hub.subscribe("activation:1", maxsize=100) as sub:
            async with database.sessionmaker() as session:
                await append(session, "activation:1", "activation.started")
                await append_many(session, [NewEvent("activation:1", "order.notified", {"order": n}) for n in range(3)])
                assert sub.qsize() == 0
                await session.commit()
            await hub.drain()
            assert [(await sub.get()).data["seq"] for _ in range(4)] == [1, 2, 3, 4]


async def test_a_rolled_back_savepoint_drops_only_its_events(database: Database):
    async with Hub.from_url("memory://") as hub:
        async with hub.subscribe("activation:1", maxsize=100) as sub:
            async with database.sessionmaker() as session:
                bind_hub(session, hub)
                await append(session, "activation:1", "activation.started")
                savepoint = await session.begin_nested()
                await append(session, "activation:1", "order.notified", {"order": 1})
                await savepoint.rollback()
                await append(session, "activation:1", "order.notified", {"order": 2})
                await session.commit()
            await hub.drain()
            got = []
            while (item := sub.get_nowait()) is not None:
                got.append((item.data["seq"], item.data["body"]))
    assert got == [(1, {}), (2, {"order": 2})]


async def test_a_raw_sqlite_append_shares_the_streams_numbering_and_publishes_only_when_told(
        sqlite_database: Database):
    import sqlite3

    from realtime.log import append_many_sqlite, publish_committed

    db = sqlite_database
    path = db.url.split("///", 1)[1]
    async with db.sessionmaker() as session:
        await append_many(session, [NewEvent("activation:1", "order.notified", {"order": n}) for n in (1, 2)])
        await session.commit()
    raw = sqlite3.connect(path, isolation_level=None)
    try:
        raw.execute("BEGIN IMMEDIATE")
        append_many_sqlite(raw, [NewEvent("activation:1", "order.acknowledged", {"order": 9})])
        raw.execute("ROLLBACK")  # gives its seq back
        raw.execute("BEGIN IMMEDIATE")
        stored = append_many_sqlite(raw, [NewEvent("activation:1", "order.acknowledged", {"order": 1, "名": "张"}),
                                          NewEvent("person:5", "order.acknowledged", {"order": 1}),
                                          NewEvent("activation:1", "order.acknowledged", {"order": 2})])
        raw.execute("COMMIT")
    finally:
        raw.close()
    assert [(e.stream, e.seq) for e in stored] == [("activation:1", 3), ("person:5", 1), ("activation:1", 4)]
    async with Hub.from_url("memory://") as hub:
        bind_hub(db.sessionmaker, hub)
        async with hub.subscribe("activation:1", maxsize=100) as sub, db.sessionmaker() as session:
            events = await read_since(session, "activation:1", 0)
            assert [(e.seq, e.type, e.body) for e in events] == [
                (1, "order.notified", {"order": 1}), (2, "order.notified", {"order": 2}),
                (3, "order.acknowledged", {"order": 1, "名": "张"}), (4, "order.acknowledged", {"order": 2})]
            assert events[2].at == stored[0].at  # the same timestamp text SQLAlchemy's DateTime reads back
            assert (await append(session, "activation:1", "order.arrived")).seq == 5
            await session.commit()
            await hub.drain()
            assert [(await sub.get()).data["seq"] for _ in range(1)] == [5]  # the raw append published nothing
            publish_committed(db.sessionmaker, stored)
            await hub.drain()
            assert [(await sub.get()).data["seq"] for _ in range(2)] == [3, 4]
