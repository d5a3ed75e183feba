"""Live status over the app's websocket, served by a real uvicorn: snapshot, live events, replay, scope."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import sys

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.support import DEMO_PASSWORD, LiveServer, seed_demo

TIMEOUT = 15


def dispatched(events) -> int:
    """Return how many orders the ``orders.notified`` events among ``events`` announce (one per community)."""
    return sum(len(m["body"]["orders"]) for m in events if m["event"] == "orders.notified")


@pytest.fixture
async def live(settings, tmp_path):
    codes = await seed_demo(settings)
    # Messages wait in the outbox (the "gateway" is a closed port), so their links stay readable for tests.
    server = await asyncio.to_thread(LiveServer, settings.database_url, tmp_path, MOBILIZE_NOTIFY_CHANNEL="sms",
                                     MOBILIZE_SMS_URL="http://127.0.0.1:9/")
    async with httpx.AsyncClient(base_url=server.base, timeout=60) as client:
        yield client, server, codes
    await asyncio.to_thread(server.stop)


async def token(client, username: str) -> str:
    r = await client.post("/api/v1/auth/token", data={"username": username, "password": DEMO_PASSWORD})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


async def street_flood_iv(client, codes) -> tuple[str, dict[str, str], dict]:
    """Log in as admin and activate the demo street at flood IV; return (token, headers, activation)."""
    admin = await token(client, "admin")
    headers = {"Authorization": f"Bearer {admin}"}
    act = (await client.post("/api/v1/activations", headers=headers,
                             json={"scope": codes["street"], "hazard": "flood", "level": "IV"})).json()
    return admin, headers, act


def ws_url(server, tok: str) -> str:
    return f"ws://127.0.0.1:{server.port}/api/v1/ws?token={tok}"


async def receive(ws, until=lambda m: True, limit=20000) -> list[dict]:
    """Return messages up to and including the first for which ``until`` holds (pings answered)."""
    seen = []
    for _ in range(limit):
        message = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        if message["type"] == "ping":
            await ws.send(json.dumps({"type": "pong"}))
            continue
        seen.append(message)
        if until(message):
            return seen
    raise AssertionError(f"no matching message in {len(seen)}")


@pytest.mark.parametrize("hub", ["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def test_a_change_made_from_the_command_line_reaches_the_watching_command_center(hub, settings, tmp_path):
    """``mobilize level`` runs in another process on the same database while the server serves a watcher:
    with the in-memory hub the server follows the log; with Redis the command publishes itself."""
    from tests.conftest import REDIS_URL

    hub_url = "memory://" if hub == "memory" else f"{REDIS_URL.split('?')[0]}?prefix=cli-{secrets.token_hex(4)}"
    if hub == "redis":
        from tests.integration.conftest_realtime import require_redis

        require_redis()
    codes = await seed_demo(settings)
    server = await asyncio.to_thread(LiveServer, settings.database_url, tmp_path, MOBILIZE_NOTIFY_CHANNEL="sms",
                                     MOBILIZE_SMS_URL="http://127.0.0.1:9/", MOBILIZE_HUB_URL=hub_url)
    try:
        async with httpx.AsyncClient(base_url=server.base, timeout=60) as client:
            await _command_line_change_is_seen(client, server, codes, settings, hub_url)
    finally:
        await asyncio.to_thread(server.stop)


async def _command_line_change_is_seen(client, server, codes, settings, hub_url):
    admin, headers, act = await street_flood_iv(client, codes)
    channel = f"activation:{act['id']}"
    async with connect(ws_url(server, admin)) as ws:
        await ws.send(json.dumps({"type": "subscribe", "channel": channel, "since": None}))
        head = (await receive(ws, lambda m: m["type"] == "snapshot"))[-1]["seq"]
        command = shutil.which("mobilize", path=os.path.dirname(sys.executable)) or "mobilize"
        cli = await asyncio.create_subprocess_exec(
            command, "level", str(act["id"]), "II", "--json", stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "MOBILIZE_DATABASE_URL": settings.database_url, "MOBILIZE_NOTIFY_CHANNEL": "log",
                 "MOBILIZE_HUB_URL": hub_url})
        out, _ = await asyncio.wait_for(cli.communicate(), 120)
        assert cli.returncode == 0
        raised = {"summary": json.loads(out)}  # the command prints the activation's summary, flat
        # Every new order's event and a stats message with the new demand (a tick may count the change before
        # its events are all sent: stats are read from the database when they tick).
        messages, notified, stats_seen = [], 0, False
        while not (stats_seen and notified == raised["summary"]["new_orders"]):
            message = (await receive(ws))[-1]
            messages.append(message)
            if message["type"] == "event" and message["event"] == "orders.notified":
                notified += message["body"]["count"]
            stats_seen = stats_seen or (message["type"] == "stats"
                                        and message["total"]["slots"] == raised["summary"]["slots"])
        events = [m for m in messages if m["type"] == "event"]
        assert events[0]["event"] == "activation.level_changed" and events[0]["seq"] == head + 1
        seqs = [m["seq"] for m in events]
        assert seqs == list(range(head + 1, head + 1 + len(seqs)))  # each once, in order
        assert dispatched(events) == raised["summary"]["new_orders"]


async def test_command_center_sees_the_switch_live_and_catches_up(live):
    client, server, codes = live
    admin, headers, act = await street_flood_iv(client, codes)
    channel = f"activation:{act['id']}"
    async with connect(ws_url(server, admin)) as ws:
        await ws.send(json.dumps({"type": "subscribe", "channel": channel, "since": None}))
        snapshot = (await receive(ws, lambda m: m["type"] == "snapshot"))[-1]
        assert snapshot["data"]["activation"]["level"] == "IV"
        total = snapshot["data"]["stats"]["total"]
        assert total["filled"] == act["summary"]["filled"] and total["slots"] == act["summary"]["slots"]
        head = snapshot["seq"]
        r = await client.post(f"/api/v1/activations/{act['id']}/level", headers=headers, json={"level": "II"})
        assert r.status_code == 200
        raised = r.json()
        messages = await receive(ws, lambda m: m["type"] == "stats" and m["total"]["slots"] == raised["summary"]["slots"])
        events = [m for m in messages if m["type"] == "event"]
        assert events[0]["event"] == "activation.level_changed" and events[0]["seq"] == head + 1
        seqs = [m["seq"] for m in events]
        assert seqs == list(range(head + 1, head + 1 + len(seqs)))
        assert dispatched(events) == raised["summary"]["new_orders"]
        assert messages[-1]["total"]["filled"] == raised["summary"]["filled"]
        last = seqs[-1]
    # while disconnected the activation ends; reconnecting with since replays exactly the missed events
    assert (await client.post(f"/api/v1/activations/{act['id']}/end", headers=headers)).status_code == 200
    async with connect(ws_url(server, admin)) as ws:
        await ws.send(json.dumps({"type": "subscribe", "channel": channel, "since": last}))
        replay = await receive(ws, lambda m: m.get("event") == "activation.ended")
        events = [m for m in replay if m["type"] == "event"]
        assert [m["seq"] for m in events] == list(range(last + 1, last + 1 + len(events)))
        assert events[-1]["body"]["released"] == raised["summary"]["filled"]


async def test_wrong_token_and_foreign_scope_are_closed_with_policy(live):
    client, server, codes = live
    admin = await token(client, "admin")
    act_b = (await client.post("/api/v1/activations", headers={"Authorization": f"Bearer {admin}"},
                               json={"scope": codes["community_b"], "hazard": "fire", "level": "III"})).json()
    async with connect(ws_url(server, "forged")) as ws:
        with pytest.raises(ConnectionClosed):
            await receive(ws)
        assert ws.close_code == 1008
    cmd_a = await token(client, "cmd_a")
    async with connect(ws_url(server, cmd_a)) as ws:
        await ws.send(json.dumps({"type": "subscribe", "channel": f"activation:{act_b['id']}", "since": None}))
        with pytest.raises(ConnectionClosed):
            await receive(ws)
        assert ws.close_code == 1008
    async with connect(ws_url(server, admin), origin="http://evil.example") as ws:
        with pytest.raises(ConnectionClosed):
            await receive(ws)
        assert ws.close_code == 1008


async def test_a_community_inside_a_wider_activation_sees_only_its_own(live):
    client, server, codes = live
    admin = await token(client, "admin")
    act = (await client.post("/api/v1/activations", headers={"Authorization": f"Bearer {admin}"},
                             json={"scope": codes["street"], "hazard": "flood", "level": "III"})).json()
    cmd_a = await token(client, "cmd_a")
    async with connect(ws_url(server, cmd_a)) as ws:
        await ws.send(json.dumps({"type": "subscribe", "channel": f"activation:{act['id']}", "since": 0}))
        messages = await receive(ws, lambda m: m.get("event") == "branches.formed")
    orders = [m for m in messages if m.get("event") == "orders.notified"]
    assert orders and {m["body"]["community"] for m in orders} == {codes["community_a"]}
    assert dispatched(orders) == len({o for m in orders for o, _post in m["body"]["orders"]}) > 0
    assert any(m.get("event") == "activation.started" for m in messages), "scope-wide facts reach the community"


async def test_a_phone_link_watches_only_its_own_person(live, settings):
    from sqlalchemy import select

    from mobilize.db import create_engine, create_sessionmaker, session_scope
    from mobilize.notify.models import OutboxMessage

    client, server, codes = live
    admin = await token(client, "admin")
    act = (await client.post("/api/v1/activations", headers={"Authorization": f"Bearer {admin}"},
                             json={"scope": codes["community_a"], "hazard": "flood", "level": "III"})).json()
    engine = create_engine(settings.database_url)
    async with session_scope(create_sessionmaker(engine)) as s:
        rows = (await s.execute(select(OutboxMessage.person_id, OutboxMessage.payload).where(
            OutboxMessage.activation_id == act["id"], OutboxMessage.kind == "order_notified").limit(2))).all()
    await engine.dispose()
    (me, payload), (other, _) = rows
    assert "link" in payload  # undelivered (the gateway is closed), so the link is still there
    link = payload["link"].rsplit("/", 1)[-1]
    async with connect(ws_url(server, link)) as ws:
        await ws.send(json.dumps({"type": "subscribe", "channel": f"person:{me}", "since": None}))
        snapshot = (await receive(ws, lambda m: m["type"] == "snapshot"))[-1]
        assert snapshot["data"]["status"] == "notified"
        r = await client.post(f"/api/v1/m/{link}/actions", json={"action": "acknowledge"},
                              headers={"Idempotency-Key": "ws-phone-ack-01"})
        assert r.status_code == 200
        event = (await receive(ws, lambda m: m.get("event") == "order.acknowledged"))[-1]
        assert event["stream"] == f"person:{me}"
    async with connect(ws_url(server, link)) as ws:
        await ws.send(json.dumps({"type": "subscribe", "channel": f"person:{other}", "since": None}))
        with pytest.raises(ConnectionClosed):
            await receive(ws)
        assert ws.close_code == 1008
    async with connect(ws_url(server, link)) as ws:
        await ws.send(json.dumps({"type": "subscribe", "channel": f"activation:{act['id']}", "since": None}))
        with pytest.raises(ConnectionClosed):
            await receive(ws)
        assert ws.close_code == 1008
