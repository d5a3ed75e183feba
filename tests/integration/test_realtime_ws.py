"""The websocket endpoint on a real server: uvicorn, SQLite/PostgreSQL, memory/Redis (protocol, replay, back-pressure)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import pytest
from conftest_realtime import (  # noqa: F401 - fixtures
    ALLOWED_ORIGIN,
    DATABASES,
    HUBS,
    Database,
    channel_prefix,
    database,
    hub_url,
    make_app,
    serve,
    sqlite_database,
)
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from ws_client import TIMEOUT, add_events, closed, recv, running, subscribe, url

from realtime import Hub, append, append_many
from realtime.models import NewEvent

# --- policy and protocol errors ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "token", "messages", "code", "reason"),
    [
        pytest.param("http://evil.test", "good-commander", [], 1008, "origin not allowed", id="foreign-origin"),
        pytest.param(ALLOWED_ORIGIN, "bad", [], 1008, "unauthorized", id="wrong-token"),
        pytest.param(ALLOWED_ORIGIN, None, [{"type": "auth", "token": "expired"}], 1008, "unauthorized", id="first-message-bad-token"),
        pytest.param(ALLOWED_ORIGIN, None, [{"type": "subscribe", "channel": "activation:1"}], 1008, "authentication required", id="no-token"),
        pytest.param(None, "good-viewer", [{"type": "subscribe", "channel": "unit:330102001001", "since": None}], 1008, "channel out of scope", id="out-of-scope"),
        pytest.param(None, "good-viewer", ["{not json"], 1003, "not JSON", id="not-json"),
        pytest.param(None, "good-viewer", [{"type": "dance"}], 1003, "unknown message type 'dance'", id="unknown-type"),
        pytest.param(None, "good-viewer", [{"type": "subscribe", "channel": "activation:1", "since": "3"}], 1003, "since must be a seq (integer >= 0) or null", id="bad-since"),
        pytest.param(None, "good-viewer", [["subscribe"]], 1003, "a message is an object with a type", id="not-an-object"),
    ],
)
async def test_bad_clients_are_closed_with_the_right_code(sqlite_database, origin, token, messages, code, reason):
    async with running(sqlite_database) as (_, address):
        async with connect(url(address, token), origin=origin) as ws:
            for message in messages:
                await ws.send(message if isinstance(message, str) else json.dumps(message))
            assert await closed(ws) == (code, reason)


async def test_silence_instead_of_a_token_is_closed(sqlite_database):
    async with running(sqlite_database, auth_timeout=0.2) as (_, address):
        async with connect(url(address, None)) as ws:
            assert await closed(ws) == (1008, "authentication required")


async def test_token_may_come_in_the_first_message(sqlite_database):
    async with running(sqlite_database) as (_, address):
        async with connect(url(address, None), origin=ALLOWED_ORIGIN) as ws:
            await ws.send(json.dumps({"type": "auth", "token": "good-viewer"}))
            await subscribe(ws, "activation:5", None)
            assert await recv(ws) == {"type": "snapshot", "channel": "activation:5", "seq": 0,
                                      "data": {"channel": "activation:5", "role": "viewer"}}


async def test_a_crashing_snapshot_closes_with_1011(sqlite_database):
    def snapshot(channel, principal):
        raise RuntimeError("boom")

    async with running(sqlite_database, snapshot=snapshot) as (_, address):
        async with connect(url(address)) as ws:
            await subscribe(ws, "activation:1", None)
            assert await closed(ws) == (1011, "internal error")


# --- delivery: snapshot, replay, live, exactly once ------------------------------------------------


@pytest.mark.parametrize("database", DATABASES, indirect=True)
@pytest.mark.parametrize("hub_url", HUBS, indirect=True)
async def test_snapshot_then_live_events(database, hub_url, channel_prefix):
    stream = f"activation:{channel_prefix}"
    await add_events(database, stream, 3)
    async with running(database, hub_url) as (_, address):
        async with connect(url(address)) as ws:
            await subscribe(ws, stream, None)
            snapshot = await recv(ws)
            assert (snapshot["type"], snapshot["seq"]) == ("snapshot", 3)
            await add_events(database, stream, 2, person=7)
            first, second = await recv(ws), await recv(ws)
            assert (first["type"], first["stream"], first["seq"], first["event"]) == ("event", stream, 4, "order.acknowledged")
            assert first["body"] == {"n": 0, "person": 7} and first["at"].endswith("+00:00")
            assert second["seq"] == 5


@pytest.mark.parametrize("database", DATABASES, indirect=True)
@pytest.mark.parametrize("hub_url", HUBS, indirect=True)
async def test_reconnecting_client_gets_every_missed_event_once_in_order_then_live(database, hub_url, channel_prefix):
    stream = f"activation:{channel_prefix}"
    async with running(database, hub_url) as (_, address):
        async with connect(url(address)) as ws:
            await subscribe(ws, stream, None)
            assert (await recv(ws))["seq"] == 0
            await add_events(database, stream, 3)
            last = [(await recv(ws))["seq"] for _ in range(3)][-1]
        assert last == 3
        # While the client is away, 40 events happen; and more keep happening while it reconnects.
        await add_events(database, stream, 40)

        async def keep_writing() -> None:
            for _ in range(30):
                await add_events(database, stream, 1)
                await asyncio.sleep(0.005)

        writer = asyncio.create_task(keep_writing())
        async with connect(url(address)) as ws:
            await subscribe(ws, stream, last)
            seqs = []
            while len(seqs) < 70:
                message = await recv(ws)
                assert message["type"] == "event"
                seqs.append(message["seq"])
            await writer
            await add_events(database, stream, 2)  # live after the catch-up
            seqs += [(await recv(ws))["seq"] for _ in range(2)]
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.3)  # and nothing twice
    assert seqs == list(range(4, 76))


async def test_a_since_ahead_of_the_stream_gets_a_snapshot(sqlite_database):
    await add_events(sqlite_database, "activation:1", 2)
    async with running(sqlite_database) as (_, address):
        async with connect(url(address)) as ws:
            await subscribe(ws, "activation:1", 99)
            message = await recv(ws)
            assert (message["type"], message["seq"]) == ("snapshot", 2)


async def test_events_published_out_of_order_are_delivered_in_order(sqlite_database):
    """Publishes from two instances can cross; the endpoint fills the gap from the log, once."""
    async with Hub.from_url("memory://") as hub:
        async with serve(make_app(hub, sessionmaker=_unbound(sqlite_database))) as address:
            async with connect(url(address)) as ws:
                await subscribe(ws, "activation:1", None)
                assert (await recv(ws))["seq"] == 0
                async with sqlite_database.sessionmaker() as session:
                    first = await append(session, "activation:1", "order.notified", {"order": 1})
                    await session.commit()
                async with sqlite_database.sessionmaker() as session:
                    second = await append(session, "activation:1", "order.notified", {"order": 2})
                    await session.commit()
                await hub.publish("activation:1", second.to_message())
                await hub.publish("activation:1", first.to_message())
                assert [(await recv(ws))["body"]["order"] for _ in range(2)] == [1, 2]
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(ws.recv(), 0.3)


def _unbound(database: Database) -> Any:
    from sqlalchemy.ext.asyncio import async_sessionmaker

    return async_sessionmaker(database.engine, expire_on_commit=False)


async def test_a_role_sees_redacted_events(sqlite_database):
    async with running(sqlite_database) as (_, address):
        async with connect(url(address, "good-redacted")) as redacted, connect(url(address)) as full:
            for ws in (redacted, full):
                await subscribe(ws, "activation:1", None)
                await recv(ws)
            await add_events(sqlite_database, "activation:1", 1, person=4711)
            assert (await recv(redacted))["body"] == {"n": 0}
            assert (await recv(full))["body"] == {"n": 0, "person": 4711}


async def test_a_slow_subscriber_is_told_to_resync_and_closed(sqlite_database):
    """A client that stops reading fills its socket, then its queue: it alone is dropped, memory stays bounded."""
    async with running(sqlite_database, queue_size=4) as (hub, address):
        async with connect(url(address), max_queue=1) as slow, connect(url(address)) as other:
            for ws in (slow, other):
                await subscribe(ws, "activation:1", None)
                await recv(ws)
            got: list[int] = []

            async def read_other() -> None:
                while len(got) < 300:
                    got.append((await recv(other))["n"])

            reading = asyncio.create_task(read_other())
            pad = "x" * 65536  # 300 of these are far more than the kernel buffers of a client that does not read
            for n in range(300):
                await hub.publish("activation:1", {"type": "stats", "n": n, "pad": pad})
                await asyncio.sleep(0.001)
            await asyncio.wait_for(reading, TIMEOUT)
            assert got == list(range(300))
            assert (hub.dropped, hub.subscriber_count("activation:1")) == (1, 1)
            # The slow client reads at last: what was sent before the drop, in order, then the resync and the close.
            seen = []
            while (message := await recv(slow))["type"] == "stats":
                seen.append(message["n"])
            assert seen == list(range(len(seen))) and len(seen) < 300
            assert message == {"type": "resync", "channel": "activation:1", "reason": "slow consumer"}
            assert await closed(slow) == (1008, "resync")
            assert other.close_code is None


async def test_a_burst_larger_than_the_queue_reaches_clients_that_keep_up(sqlite_database):
    """Live messages to a reading client go straight to its socket: a burst does not overflow its queue."""
    async with running(sqlite_database, queue_size=4) as (hub, address):
        async with connect(url(address)) as a, connect(url(address, "good-redacted")) as b:
            for ws in (a, b):
                await subscribe(ws, "activation:1", None)
                await recv(ws)
            await hub.publish_many([("activation:1", {"type": "stats", "n": n}) for n in range(50)])
            for ws in (a, b):
                assert [(await recv(ws))["n"] for _ in range(50)] == list(range(50))
            assert hub.dropped == 0


async def test_a_client_that_pauses_reading_gets_every_event_once_in_order(sqlite_database):
    """Events that back up behind a full socket wait in the queue and follow in seq order, none twice."""
    async with running(sqlite_database, queue_size=2000) as (hub, address):
        async with connect(url(address), max_queue=1) as ws:
            await subscribe(ws, "activation:1", None)
            await recv(ws)
            # Frames on both sides of the header's length encodings (payloads under 126, under 65,536, larger).
            sizes = [10, 120, 125, 126, 200, 65530, 65536, 70000]
            for round_ in range(40):
                async with sqlite_database.sessionmaker() as session:
                    await append_many(
                        session, [NewEvent("activation:1", "order.acknowledged", {"pad": "字" * (n // 3)}) for n in sizes]
                    )
                    await session.commit()
            await hub.drain()
            subs = hub._subscribers["activation:1"]
            assert any(sub.qsize() for sub in subs)  # the socket was full: some events took the queue
            messages = [await recv(ws) for _ in range(40 * len(sizes))]
            assert [m["seq"] for m in messages] == list(range(1, 40 * len(sizes) + 1))
            assert [len(m["body"]["pad"]) for m in messages[: len(sizes)]] == [n // 3 for n in sizes]
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.3)
            assert hub.dropped == 0


async def test_live_subscribers_under_uvicorn_take_messages_directly(sqlite_database):
    """The fan-out writes to idle sockets in the publishing loop; a uvicorn upgrade that breaks it is caught here."""
    async with running(sqlite_database) as (hub, address):
        async with connect(url(address)) as ws:
            await subscribe(ws, "activation:1", None)
            await recv(ws)
            (sub,) = hub._subscribers["activation:1"]
            assert sub.direct is not None
            await hub.publish("activation:1", {"type": "stats", "n": 1})
            assert sub.qsize() == 0  # written, not queued
            assert (await recv(ws))["n"] == 1


async def test_a_peer_that_does_not_answer_pings_is_dropped(sqlite_database):
    async with running(sqlite_database, heartbeat_interval=0.2, heartbeat_timeout=0.2) as (hub, address):
        async with connect(url(address)) as silent, connect(url(address)) as alive:
            await subscribe(alive, "activation:1", None)
            await subscribe(silent, "activation:1", None)

            async def answer() -> None:
                with contextlib.suppress(ConnectionClosed):
                    async for raw in alive:
                        if json.loads(raw)["type"] == "ping":
                            await alive.send('{"type":"pong"}')

            answering = asyncio.create_task(answer())
            assert await closed(silent) == (1011, "heartbeat timeout")
            await asyncio.sleep(0.5)
            assert alive.close_code is None and hub.subscriber_count("activation:1") == 1
            answering.cancel()
