"""The command center's HTTP reads of live status: stats with the seq to go live from, and event replay."""

from __future__ import annotations

import json

from websockets.asyncio.client import connect

from tests.e2e.test_live_status import live, receive, street_flood_iv, token, ws_url  # noqa: F401 - the fixture


async def test_stats_and_events_match_what_the_websocket_sends(live):  # noqa: F811
    client, server, codes = live
    admin, headers, act = await street_flood_iv(client, codes)
    base = f"/api/v1/activations/{act['id']}"
    stats = (await client.get(f"{base}/stats", headers=headers)).json()
    assert stats["type"] == "stats" and stats["channel"] == f"activation:{act['id']}"
    assert stats["total"]["slots"] == act["summary"]["slots"] and stats["total"]["filled"] == act["summary"]["filled"]
    head = stats["seq"]
    assert head > 0

    # paged replay: every event once, in order, up to the head
    events, since, pages = [], 0, 0
    while True:
        page = (await client.get(f"{base}/events", headers=headers, params={"since": since, "limit": 7})).json()
        pages += 1
        events += page["events"]
        since = page["next"]
        if not page["more"]:
            break
    assert pages > 1 and page["head"] == head and since == head
    assert [e["seq"] for e in events] == list(range(1, head + 1))
    assert events[0]["event"] == "activation.started"

    # the same events as the websocket replays from since=0, and going live from the stats' seq
    async with connect(ws_url(server, admin)) as ws:
        await ws.send(json.dumps({"type": "subscribe", "channel": stats["channel"], "since": 0}))
        replay = await receive(ws, lambda m: m.get("seq") == head)
        assert [m for m in replay if m["type"] == "event"] == events
    async with connect(ws_url(server, admin)) as ws:
        await ws.send(json.dumps({"type": "subscribe", "channel": stats["channel"], "since": head}))
        assert (await client.post(f"{base}/end", headers=headers)).status_code == 200
        live_events = await receive(ws, lambda m: m.get("event") == "activation.ended")
        assert [m["seq"] for m in live_events if m["type"] == "event"][0] == head + 1
    after = (await client.get(f"{base}/events", headers=headers, params={"since": head})).json()
    assert after["events"] and after["events"][0]["seq"] == head + 1
    assert after["events"][-1]["event"] == "activation.ended"


async def test_scope_auth_and_bad_input(live):  # noqa: F811
    client, server, codes = live
    admin = await token(client, "admin")
    act = (await client.post("/api/v1/activations", headers={"Authorization": f"Bearer {admin}"},
                             json={"scope": codes["street"], "hazard": "flood", "level": "III"})).json()
    cmd_a = {"Authorization": f"Bearer {await token(client, 'cmd_a')}"}

    # a community inside the street-wide activation: only its own orders and its own stats row
    events = (await client.get(f"/api/v1/activations/{act['id']}/events", headers=cmd_a,
                               params={"limit": 5000})).json()
    orders = [e for e in events["events"] if e["event"] == "orders.notified"]
    assert orders and {e["body"]["community"] for e in orders} == {codes["community_a"]}
    assert not events["more"] and events["next"] == events["head"]
    stats = (await client.get(f"/api/v1/activations/{act['id']}/stats", headers=cmd_a)).json()
    assert set(stats["communities"]) == {codes["community_a"]}
    assert stats["total"]["slots"] == stats["communities"][codes["community_a"]]["slots"] < act["summary"]["slots"]

    # another community's activation does not exist for cmd_a; no token is 401; a negative since is 422
    assert (await client.post(f"/api/v1/activations/{act['id']}/end",
                              headers={"Authorization": f"Bearer {admin}"})).status_code == 200
    act_b = (await client.post("/api/v1/activations", headers={"Authorization": f"Bearer {admin}"},
                               json={"scope": codes["community_b"], "hazard": "fire", "level": "III"})).json()
    for path in ("stats", "events"):
        r = await client.get(f"/api/v1/activations/{act_b['id']}/{path}", headers=cmd_a)
        assert r.status_code == 404 and r.json()["error"]["message"] and r.json()["error"]["message_en"]
        assert (await client.get(f"/api/v1/activations/{act['id']}/{path}")).status_code == 401
    r = await client.get(f"/api/v1/activations/{act['id']}/events", headers=cmd_a, params={"since": -1})
    assert r.status_code == 422 and "since" in r.text
    assert (await client.get("/api/v1/activations/999999/stats", headers=cmd_a)).status_code == 404


def test_a_stats_view_is_built_once_per_set_of_communities():
    from mobilize.live import LiveStatus, Watcher

    live = LiveStatus(None, "secret")  # type: ignore[arg-type]
    a1, a2 = (Watcher(None, {"activation:1": frozenset({"a"})}) for _ in range(2))  # type: ignore[arg-type]
    whole = Watcher(None, {"activation:1": None})  # type: ignore[arg-type]
    rows = {"a": {"slots": 4, "filled": 1}, "b": {"slots": 6, "filled": 6}}
    first = {"type": "stats", "channel": "activation:1", "communities": rows}
    view = live.filter(a1, first)
    assert view is live.filter(a2, first) and live.filter(whole, first) is first
    assert set(view["communities"]) == {"a"} and view["total"]["slots"] == 4 and view["total"]["fill_rate"] == 0.25
    second = {**first, "communities": {**rows, "a": {"slots": 4, "filled": 4}}}
    assert live.filter(a1, second)["total"]["filled"] == 4  # a new message, a new view
    assert first["communities"] is rows and set(first) == {"type", "channel", "communities"}  # left as it was
