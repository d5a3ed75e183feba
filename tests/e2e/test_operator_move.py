"""An operator moves a person from one post to another within the activation (调岗)."""

from __future__ import annotations

import pytest

from tests.e2e.test_dispatch import audit_count, links, start, settings  # noqa: F401  (links wait in the outbox)
from tests.support import login

pytestmark = pytest.mark.usefixtures("demo")


async def test_an_operator_moves_a_person_once_and_both_posts_follow(client, demo, settings):
    admin, act = await start(client, demo, level="I")
    tokens = await links(settings, act["id"])  # read early: the notifier drops a link once it is sent
    base = f"/api/v1/activations/{act['id']}"
    orders = (await client.get(f"{base}/orders", headers=admin, params={"page_size": 1000})).json()["items"]
    posts = {p["id"]: p for p in (await client.get(f"{base}/posts", headers=admin,
                                                    params={"page_size": 1000})).json()["items"]}
    mover = orders[0]
    # make room at another post of the same community by cancelling one of its holders
    other = next(o for o in orders if o["post_id"] != mover["post_id"] and posts[o["post_id"]]["headcount"] >= 1)
    r = await client.post(f"{base}/orders/{other['id']}/actions", json={"action": "cancel"},
                          headers={**admin, "Idempotency-Key": "move-make-room"})
    assert r.status_code == 200
    to_post = other["post_id"]
    before = {p["id"]: p["filled"] for p in (await client.get(f"{base}/posts", headers=admin,
                                                              params={"page_size": 1000})).json()["items"]}
    url = f"{base}/orders/{mover['id']}/move"
    r = await client.post(url, json={"post_id": to_post}, headers=admin)
    assert r.status_code == 422 and r.json()["error"]["problems"][0]["field"] == "Idempotency-Key"
    r = await client.post(url, json={"post_id": mover["post_id"]}, headers={**admin, "Idempotency-Key": "move-same-01"})
    assert r.status_code == 422 and r.json()["error"]["problems"][0]["field"] == "post_id"
    cmd_b = await login(client, "cmd_b")
    r = await client.post(url, json={"post_id": to_post}, headers={**cmd_b, "Idempotency-Key": "move-other-01"})
    assert r.status_code == 404  # another community's order does not exist for B

    answers = [await client.post(url, json={"post_id": to_post}, headers={**admin, "Idempotency-Key": "move-0001"})
               for _ in range(3)]
    assert {a.status_code for a in answers} == {200} and all(a.json() == answers[0].json() for a in answers)
    moved = answers[0].json()
    assert moved["post_id"] == to_post and moved["status"] == "notified" and moved["person_id"] == mover["person_id"]
    assert await audit_count(settings, "order.move") == 1
    old = (await client.get(f"{base}/orders/{mover['id']}", headers=admin)).json()
    assert old["status"] == "reassigned"
    after = {p["id"]: p["filled"] for p in (await client.get(f"{base}/posts", headers=admin,
                                                             params={"page_size": 1000})).json()["items"]}
    assert after[mover["post_id"]] == before[mover["post_id"]] - 1 and after[to_post] == before[to_post] + 1
    # the person's link now shows the new post, to confirm
    token = tokens[mover["person_id"]]
    page = (await client.get(f"/api/v1/m/{token}")).json()
    assert page["order"]["id"] == moved["id"] and page["order"]["status"] == "notified"
    # moving the old order again is a clear 409; moving into a full post too
    r = await client.post(url, json={"post_id": to_post}, headers={**admin, "Idempotency-Key": "move-0002"})
    assert r.status_code == 409
    full = next(p for p in after if after[p] >= posts[p]["headcount"] and p != to_post)
    r = await client.post(f"{base}/orders/{moved['id']}/move", json={"post_id": full},
                          headers={**admin, "Idempotency-Key": "move-0003"})
    assert r.status_code == 409 and r.json()["error"]["message_en"]
