"""Stats ticks: counts add up, and a channel gets at most one stats message per interval."""

from __future__ import annotations

import asyncio

import pytest

from realtime import Hub, StatsTicker, tally


def test_tally_adds_communities_and_computes_fill_rates():
    stats = tally(
        {
            "330102001001": {"slots": 40, "filled": 30, "acknowledged": 35, "en_route": 10, "arrived": 20},
            "330102001002": {"slots": 10, "filled": 10, "arrived": 10, "declined": 2, "escalated": 1},
            "330102001003": {"slots": 0},
        }
    )
    total = stats["total"]
    assert (total["slots"], total["filled"], total["arrived"], total["declined"], total["escalated"]) == (50, 40, 30, 2, 1)
    assert total["fill_rate"] == 0.8
    assert stats["communities"]["330102001001"]["fill_rate"] == 0.75
    assert stats["communities"]["330102001003"]["fill_rate"] == 0.0  # no slots: no division by zero


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def hub():
    async with Hub.from_url("memory://") as hub:
        yield hub


async def test_many_changes_make_one_message_per_channel(hub):
    calls = []

    async def counts(channel):
        calls.append(channel)
        return {"c1": {"slots": 10, "arrived": len(calls)}}

    ticker = StatsTicker(hub, counts, clock=FakeClock())
    async with hub.subscribe("activation:1", maxsize=100) as a, hub.subscribe("activation:2", maxsize=100) as b:
        for _ in range(1000):
            ticker.mark("activation:1")
            ticker.mark("activation:2")
        assert await ticker.flush() == 2
        assert await ticker.flush() == 0  # nothing changed since
        assert sorted(calls) == ["activation:1", "activation:2"]
        message = (await a.get()).data
        assert message["type"] == "stats" and message["channel"] == "activation:1"
        assert message["total"]["slots"] == 10
        assert a.qsize() == 0 and b.qsize() == 1


async def test_a_channel_is_not_sent_twice_within_the_interval(hub):
    clock = FakeClock()
    ticker = StatsTicker(hub, lambda channel: {"c1": {"slots": 1}}, interval=1.0, clock=clock)
    ticker.mark("activation:1")
    assert await ticker.flush() == 1
    ticker.mark("activation:1")
    clock.now += 0.5
    assert await ticker.flush() == 0  # too soon: stays dirty
    clock.now += 0.5
    assert await ticker.flush() == 1


async def test_running_ticker_coalesces_a_burst(hub):
    arrived = 0

    def counts(channel):
        return {"c1": {"slots": 1000, "arrived": arrived}}

    async with hub.subscribe("activation:1", maxsize=1000) as sub:
        async with StatsTicker(hub, counts, interval=0.1) as ticker:
            loop = asyncio.get_running_loop()
            end = loop.time() + 0.55
            while loop.time() < end:
                arrived += 1
                ticker.mark("activation:1")
                await asyncio.sleep(0.001)
            await asyncio.sleep(0.25)
        messages = []
        while (item := sub.get_nowait()) is not None:
            messages.append(item.data)
    # ~0.55 s of changes at ~0.1 s per tick: a handful of messages, not hundreds, the last one current.
    assert 3 <= len(messages) <= 8, len(messages)
    assert messages[-1]["total"]["arrived"] == arrived
