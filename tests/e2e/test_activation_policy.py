"""Borrowing on/off (街道统筹) per activation: the request, the stored policy, the level change, the CLI."""

from __future__ import annotations

import pytest

from mobilize.reference import verify
from tests.support import login

pytestmark = pytest.mark.usefixtures("demo")


async def press(client, headers, scope, level="I", drill=True, **extra):
    return await client.post("/api/v1/activations", headers=headers,
                             json={"scope": scope, "hazard": "flood", "level": level, "drill": drill, **extra})


async def test_borrowing_off_is_obeyed_stored_and_kept_on_a_level_change(client, demo):
    admin = await login(client, "admin")
    on = await press(client, admin, demo["street"])
    assert on.status_code == 201, on.text
    on = on.json()
    assert on["policy"]["borrowing"] is True and on["summary"]["borrowing"] is True
    problem_on = (await client.get(f"/api/v1/activations/{on['id']}/problem", headers=admin)).json()
    assert (await client.post(f"/api/v1/activations/{on['id']}/end", headers=admin)).status_code == 200

    off = await press(client, admin, demo["street"], level="III", borrowing=False)
    assert off.status_code == 201, off.text
    off = off.json()
    assert off["policy"]["borrowing"] is False and off["policy"]["borrow"] == on["policy"]["borrow"]
    assert off["summary"]["borrowed"] == 0 and off["summary"]["borrowing"] is False
    raised = await client.post(f"/api/v1/activations/{off['id']}/level", headers=admin, json={"level": "I"})
    assert raised.status_code == 200, raised.text
    raised = raised.json()
    assert raised["policy"]["borrowing"] is False and raised["summary"]["borrowing"] is False
    assert raised["summary"]["borrowed"] == 0
    orders = (await client.get(f"/api/v1/activations/{off['id']}/orders", headers=admin,
                               params={"page_size": 1000})).json()["items"]
    assert orders and not any(o["borrowed"] for o in orders)
    problem_off = (await client.get(f"/api/v1/activations/{off['id']}/problem", headers=admin)).json()
    # the audit files are honest: nothing cheaper exists, with borrowing or without
    assert problem_off["objective"] == verify(problem_off)
    assert problem_on["objective"] == verify(problem_on)


async def test_filling_a_shortage_keeps_to_the_policy_of_the_activation(client, demo):
    """Backups and operator fills use the stored policy: without borrowing, nobody comes from another community."""
    admin = await login(client, "admin")
    off = await press(client, admin, demo["street"], level="I", borrowing=False)
    assert off.status_code == 201, off.text
    base = f"/api/v1/activations/{off.json()['id']}"
    short = (await client.get(f"{base}/posts", headers=admin, params={"short": True, "page_size": 1000})).json()["items"]
    assert short, "level I over the demo street leaves posts short"
    for post in short:
        r = await client.post(f"{base}/posts/{post['id']}/fill", headers=admin)
        assert r.status_code in (200, 409), r.text
    orders = (await client.get(f"{base}/orders", headers=admin, params={"page_size": 1000})).json()["items"]
    assert not any(o["borrowed"] for o in orders)


async def test_borrowing_must_be_a_boolean(client, demo):
    admin = await login(client, "admin")
    r = await press(client, admin, demo["street"], borrowing="maybe")
    assert r.status_code == 422
    problems = r.json()["error"]["problems"]
    assert problems[0]["field"] == "borrowing", problems
    assert (await client.get("/api/v1/activations", headers=admin)).json() == []


async def test_same_key_with_borrowing_changed_is_a_conflict(client, demo):
    admin = await login(client, "admin")
    first = await client.post("/api/v1/activations", headers={**admin, "Idempotency-Key": "k-borrow"},
                              json={"scope": demo["community_a"], "hazard": "flood", "level": "III"})
    assert first.status_code == 201
    other = await client.post("/api/v1/activations", headers={**admin, "Idempotency-Key": "k-borrow"},
                              json={"scope": demo["community_a"], "hazard": "flood", "level": "III",
                                    "borrowing": False})
    assert other.status_code == 409
