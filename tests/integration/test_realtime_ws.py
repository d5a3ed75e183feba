"""The websocket endpoint and the hub backends, on real servers: uvicorn, SQLite/PostgreSQL, memory/Redis."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import textwrap
from typing import Any

import httpx
import pytest
from conftest_realtime import (  # noqa: F401 - fixtures
    ALLOWED_ORIGIN,
    DATABASES,
    HUBS,
    POSTGRES_URL,
    REDIS_URL,
    Database,
    channel_prefix,
    database,
    hub_url,
    make_app,
    make_database,
    require_postgres,
    require_redis,
    serve,
    sqlite_database,
    wait_for,
)
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from realtime import Hub, Message, Resync, append, append_many
from realtime.models import NewEvent

TIMEOUT = 10


async def recv(ws: Any) -> dict[str, Any]:
    """Return the next message that is not a heartbeat ping."""
    while True:
        data = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        if data["type"] != "ping":
            return data


async def closed(ws: Any) -> tuple[int, str]:
    """Return the close code and reason, reading (and discarding) whatever comes before the close."""
    with contextlib.suppress(ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), TIMEOUT)
    return ws.close_code, ws.close_reason


def url(address: str, token: str | None = "good-commander") -> str:
    return f"ws://{address}/ws" + (f"?token={token}" if token else "")


async def subscribe(ws: Any, channel: str, since: int | None) -> None:
    await ws.send(json.dumps({"type": "subscribe", "channel": channel, "since": since}))


@contextlib.asynccontextmanager
async def running(database: Database, hub_url: str = "memory://", **options: Any):
    async with Hub.from_url(hub_url) as hub:
        async with serve(make_app(hub, database.sessionmaker, **options)) as address:
            yield hub, address


async def add_events(database: Database, stream: str, n: int, **body: Any) -> list[int]:
    async with database.sessionmaker() as session:
        stored = await append_many(session, [NewEvent(stream, "order.acknowledged", {"n": i, **body}) for i in range(n)])
        await session.commit()
    return [e.seq for e in stored]


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


# --- hub backends --------------------------------------------------------------------------------


async def test_hub_round_trip_keeps_order(hub_url, channel_prefix):
    channel = f"{channel_prefix}:a"
    async with Hub.from_url(hub_url) as hub:
        async with hub.subscribe(channel, maxsize=2000) as sub:
            await hub.publish_many([(channel, {"seq": n}) for n in range(1, 1001)])
            got = [(await asyncio.wait_for(sub.get(), TIMEOUT)).data["seq"] for _ in range(1000)]
    assert got == list(range(1, 1001))


@pytest.mark.redis
async def test_two_hubs_on_redis_share_messages(channel_prefix):
    require_redis()
    channel = f"{channel_prefix}:a"
    async with Hub.from_url(REDIS_URL) as a, Hub.from_url(REDIS_URL) as b:
        async with b.subscribe(channel) as sub_b, a.subscribe(channel) as sub_a:
            await a.publish(channel, {"seq": 1})
            for sub in (sub_a, sub_b):
                message = await asyncio.wait_for(sub.get(), TIMEOUT)
                assert isinstance(message, Message) and message.data == {"seq": 1}


@pytest.mark.redis
async def test_a_channel_prefix_keeps_deployments_on_one_redis_apart(channel_prefix):
    require_redis()
    base = REDIS_URL.split("?", 1)[0]
    ours, theirs = f"{base}?prefix={channel_prefix}-x", f"{base}?prefix={channel_prefix}-y"
    async with Hub.from_url(ours) as a, Hub.from_url(ours) as b, Hub.from_url(theirs) as other:
        async with b.subscribe("activation:1") as sub_b, other.subscribe("activation:1") as sub_other:
            await other.publish("activation:1", {"seq": 7})  # another deployment's activation 1
            await a.publish("activation:1", {"seq": 1})
            message = await asyncio.wait_for(sub_b.get(), TIMEOUT)
            assert message.channel == "activation:1" and message.data == {"seq": 1}  # the prefix is not seen
            assert (await asyncio.wait_for(sub_other.get(), TIMEOUT)).data == {"seq": 7}
            await asyncio.sleep(0.2)
            assert sub_b.qsize() == 0 and sub_other.qsize() == 0


@pytest.mark.redis
async def test_losing_the_redis_connection_makes_subscribers_resync_and_recovers(channel_prefix):
    require_redis()
    channel = f"{channel_prefix}:a"
    async with Hub.from_url(REDIS_URL) as hub, Hub.from_url(REDIS_URL) as publisher:
        async with hub.subscribe(channel) as sub:
            # Kill exactly our pub/sub connection on the server (other users of this Redis are untouched).
            sockname = hub.backend._pubsub.connection._writer.get_extra_info("sockname")
            await publisher.backend._publisher.execute_command("CLIENT", "KILL", "ADDR", f"{sockname[0]}:{sockname[1]}")
            marker = await asyncio.wait_for(sub.get(), TIMEOUT)
            assert isinstance(marker, Resync) and marker.reason == "backend connection lost"
        await wait_for(lambda: hub.backend.reconnects == 1, TIMEOUT)
        async with hub.subscribe(channel) as again:
            await publisher.publish(channel, {"seq": 2})
            assert (await asyncio.wait_for(again.get(), TIMEOUT)).data == {"seq": 2}


@pytest.mark.parametrize("database", DATABASES, indirect=True)
async def test_events_another_process_commits_reach_watchers_through_the_log_follower(database):
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from realtime.follow import LogFollower

    stream = f"activation:{secrets.token_hex(3)}"
    await add_events(database, stream, 2)
    other_process = async_sessionmaker(database.engine, expire_on_commit=False)  # bound to no hub
    async with running(database) as (hub, address):
        follower = LogFollower(database.sessionmaker, hub, interval=0.05)
        follower.start()
        try:
            async with connect(url(address)) as ws:
                await subscribe(ws, stream, None)
                assert (await recv(ws))["seq"] == 2  # the snapshot
                async with other_process() as session:
                    await append_many(session, [NewEvent(stream, "order.arrived", {"n": i}) for i in range(3)])
                    await session.commit()
                assert [(await recv(ws))["seq"] for _ in range(3)] == [3, 4, 5]
                await add_events(database, stream, 2)  # published by this process after commit
                assert [(await recv(ws))["seq"] for _ in range(2)] == [6, 7]
                async with other_process() as session:  # and once more from outside
                    await append_many(session, [NewEvent(stream, "order.arrived", {"n": 9})])
                    await session.commit()
                last = await recv(ws)
                assert (last["seq"], last["body"]) == (8, {"n": 9})
                with pytest.raises(TimeoutError):  # nothing twice
                    await asyncio.wait_for(ws.recv(), 0.5)
            await wait_for(lambda: stream not in follower.published, TIMEOUT)  # nobody watches: forgotten
        finally:
            await follower.stop()


# --- scale-out: two app processes on one PostgreSQL and one Redis -----------------------------------

APP = textwrap.dedent(
    """
    import os
    from contextlib import asynccontextmanager

    from conftest_realtime import engine_for, make_app
    from sqlalchemy.ext.asyncio import async_sessionmaker
    from realtime import Hub

    engine = engine_for("postgres", os.environ["RT_DB_URL"], os.environ["RT_DB_SCHEMA"])
    hub = Hub.from_url(os.environ["RT_REDIS_URL"])
    app = make_app(hub, async_sessionmaker(engine, expire_on_commit=False))

    @asynccontextmanager
    async def lifespan(_app):
        await hub.connect()
        yield
        await hub.disconnect()
        await engine.dispose()

    app.router.lifespan_context = lifespan
    """
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.postgres
@pytest.mark.redis
async def test_a_client_on_one_instance_sees_events_served_by_another(tmp_path, channel_prefix):
    require_postgres()
    require_redis()
    (tmp_path / "rt_scaleout_app.py").write_text(APP)
    here = os.path.dirname(__file__)
    stream = f"activation:{channel_prefix}"
    async with make_database("postgres", tmp_path) as database:
        env = {**os.environ, "RT_DB_URL": POSTGRES_URL, "RT_DB_SCHEMA": database.schema, "RT_REDIS_URL": REDIS_URL,
               "PYTHONPATH": os.pathsep.join([str(tmp_path), here, os.environ.get("PYTHONPATH", "")])}
        ports = [_free_port(), _free_port()]
        processes = [
            subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "rt_scaleout_app:app", "--host", "127.0.0.1", "--port", str(port),
                 "--ws", "websockets-sansio", "--ws-per-message-deflate", "false", "--log-level", "warning"],
                env=env,
            )
            for port in ports
        ]
        try:
            async with httpx.AsyncClient(timeout=TIMEOUT) as http:
                for port in ports:
                    await _until_up(http, port)
                a, b = (f"127.0.0.1:{port}" for port in ports)
                async with connect(url(a)) as ws:
                    await subscribe(ws, stream, None)
                    assert (await recv(ws))["seq"] == 0
                    # Requests alternate between the instances, some concurrently.
                    for round_ in range(5):
                        await asyncio.gather(
                            http.post(f"http://{b}/events", json={"stream": stream, "bodies": [{"r": round_}] * 3}),
                            http.post(f"http://{a}/events", json={"stream": stream, "bodies": [{"r": round_}] * 2}),
                        )
                    seqs = [(await recv(ws))["seq"] for _ in range(25)]
                    assert seqs == list(range(1, 26))
                    with pytest.raises(asyncio.TimeoutError):
                        await asyncio.wait_for(ws.recv(), 0.5)
                # A client reconnecting to the other instance replays from the shared log.
                async with connect(url(b)) as ws:
                    await subscribe(ws, stream, 20)
                    assert [(await recv(ws))["seq"] for _ in range(5)] == [21, 22, 23, 24, 25]
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(10)


async def _until_up(http: httpx.AsyncClient, port: int) -> None:
    for _ in range(200):
        with contextlib.suppress(httpx.TransportError):
            await http.get(f"http://127.0.0.1:{port}/docs")
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"app on port {port} did not start")
