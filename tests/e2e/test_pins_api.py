"""Peacetime pre-assignment (平时编组到岗): pins, suggested pins, plan coverage, and their effect on activation."""

from __future__ import annotations

from datetime import datetime

import pytest

from mobilize.settings import Settings
from tests.support import login

pytestmark = pytest.mark.usefixtures("demo")


async def test_pin_a_person_and_see_coverage(client, demo):
    cmd = await login(client, "cmd_a")
    person = (await client.get("/api/v1/people", headers=cmd, params={"skill": "medical", "available": True})).json()["items"][0]
    before = (await client.get(f"/api/v1/units/{demo['community_a']}/coverage", headers=cmd,
                               params={"hazard": "flood", "level": "I"})).json()
    assert before["covered"] == 0 and before["slots"] > 0
    r = await client.post("/api/v1/pins", headers=cmd, json={"person_id": person["id"], "hazard": "flood",
                                                             "post_code": "first_aid"})
    assert r.status_code == 201, r.text
    after = (await client.get(f"/api/v1/units/{demo['community_a']}/coverage", headers=cmd,
                              params={"hazard": "flood", "level": "I"})).json()
    assert after["covered"] == 1 and after["by_group"]["medical"]["covered"] == 1
    # pinning again for the same hazard replaces the pin
    r = await client.post("/api/v1/pins", headers=cmd, json={"person_id": person["id"], "hazard": "flood",
                                                             "post_code": "command_desk"})
    pins = (await client.get(f"/api/v1/units/{demo['community_a']}/pins", headers=cmd, params={"hazard": "flood"})).json()
    assert [p["post_code"] for p in pins if p["person_id"] == person["id"]] == ["command_desk"]
    assert (await client.delete(f"/api/v1/pins/{pins[0]['id']}", headers=cmd)).status_code == 204


async def test_bad_pins_name_the_field(client, demo):
    cmd = await login(client, "cmd_a")
    person = (await client.get("/api/v1/people", headers=cmd)).json()["items"][0]
    r = await client.post("/api/v1/pins", headers=cmd, json={"person_id": person["id"], "hazard": "flood",
                                                             "post_code": "no_such_post"})
    assert r.status_code == 422 and r.json()["error"]["problems"][0]["field"] == "post_code"
    r = await client.post("/api/v1/pins", headers=cmd, json={"person_id": person["id"], "hazard": "flood",
                                                             "post_code": "grid_watch", "site_code": "elsewhere"})
    assert r.status_code == 422 and r.json()["error"]["problems"][0]["field"] == "site_code"
    admin = await login(client, "admin")
    other = (await client.get("/api/v1/people", headers=admin, params={"unit": demo["community_b"]})).json()["items"][0]
    r = await client.post("/api/v1/pins", headers=cmd, json={"person_id": other["id"], "hazard": "flood",
                                                             "post_code": "first_aid"})
    assert r.status_code == 404


async def test_suggested_pins_cover_the_plan_and_activation_follows_them(client, demo, monkeypatch):
    # Pins are suggested from everyone, coverage counts who is available at the city's local time: on a weekday
    # morning, not at whatever hour the suite runs (at night the daytime-only people do not count).
    monkeypatch.setattr(Settings, "local_now", lambda self: datetime(2026, 11, 23, 10, 0))
    street = await login(client, "street")
    r = await client.post(f"/api/v1/units/{demo['street']}/pins/suggest", headers=street,
                          json={"hazard": "flood", "level": "II"})
    assert r.status_code == 200, r.text
    assert r.json()["pins"] > 0
    cov = (await client.get(f"/api/v1/units/{demo['street']}/coverage", headers=street,
                            params={"hazard": "flood", "level": "II"})).json()
    assert cov["coverage"] > 0.8
    act = (await client.post("/api/v1/activations", headers=street, json={
        "scope": demo["street"], "hazard": "flood", "level": "II"})).json()
    orders = (await client.get(f"/api/v1/activations/{act['id']}/orders", headers=street,
                               params={"page_size": 1000})).json()["items"]
    pins = {p["person_id"]: p for p in (await client.get(f"/api/v1/units/{demo['street']}/pins", headers=street,
                                                           params={"hazard": "flood"})).json()}
    pinned_orders = [o for o in orders if o["person_id"] in pins]
    on_pinned_post = [o for o in pinned_orders
                      if o["post_key"].split("/")[1].split("@")[0] == pins[o["person_id"]]["post_code"]]
    assert len(on_pinned_post) >= 0.9 * len(pinned_orders)
