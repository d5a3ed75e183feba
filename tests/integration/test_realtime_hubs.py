"""The hub backends (memory, Redis), the log follower and two app instances on one PostgreSQL and one Redis."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import subprocess
import sys
import textwrap

import httpx
import pytest
from conftest_realtime import (  # noqa: F401 - fixtures
    DATABASES,
    POSTGRES_URL,
    REDIS_URL,
    channel_prefix,
    database,
    hub_url,
    make_database,
    require_postgres,
    require_redis,
    wait_for,
)
from websockets.asyncio.client import connect
from ws_client import TIMEOUT, add_events, recv, running, subscribe, url

from realtime import Hub, Message, Resync, append_many
from realtime.models import NewEvent


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
        await follower.start()
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
