"""Through the app: a dispatch above ``MOBILIZE_NOTICES_INLINE`` is told by the app's own notifier after the commit."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.e2e.test_dispatch import links, notices_disagreeing_with_their_orders, start

pytestmark = pytest.mark.usefixtures("demo")


@pytest.fixture
def settings(settings):
    # Every dispatch takes the large-dispatch path; messages wait in the outbox (closed "gateway" port) with
    # their links, as in test_dispatch.
    return settings.model_copy(update={"notify_channel": "sms", "sms_url": "http://127.0.0.1:9/", "notices_inline": 0})


async def _all_told(settings, activation_id, expected: int, seconds: float = 20.0) -> tuple[int, list]:
    deadline = time.monotonic() + seconds
    while True:
        count, wrong = await notices_disagreeing_with_their_orders(settings, activation_id)
        if count >= expected or time.monotonic() > deadline:
            return count, wrong
        await asyncio.sleep(0.2)


async def test_the_app_tells_a_large_dispatch_after_the_commit_and_its_links_open(client, demo, settings):
    admin, act = await start(client, demo, scope_key="street")
    filled = act["summary"]["filled"]
    count, wrong = await _all_told(settings, act["id"], filled)
    assert count == filled > 0 and wrong == []
    tokens = await links(settings, act["id"])
    assert len(tokens) == filled
    person, token = next(iter(tokens.items()))
    r = await client.get(f"/api/v1/m/{token}")
    assert r.status_code == 200 and r.json()["person"]["id"] == person
    r = await client.post(f"/api/v1/activations/{act['id']}/level", headers=admin, json={"level": "I"})
    assert r.status_code == 200, r.text
    total = filled + r.json()["summary"]["new_orders"]
    count, wrong = await _all_told(settings, act["id"], total)
    assert count == total and wrong == []
