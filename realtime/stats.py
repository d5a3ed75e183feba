"""Stats ticks: per-community and total counts of an activation, at most one message per channel per second.

However many orders change in a second, a channel's watchers get one ``stats`` message: changes only
mark the channel dirty (``mark``, called after commit), and a ticker publishes the dirty channels on
its tick with counts from a callable the app provides::

    async def counts(channel: str) -> dict[str, dict[str, int]]:
        # {community_code: {"slots": 40, "filled": 31, "acknowledged": 35, "en_route": 12,
        #                   "arrived": 19, "declined": 2, "escalated": 1}, ...}
        ...

    ticker = StatsTicker(hub, counts, interval=1.0)
    await ticker.start()            # lifespan; ``await ticker.stop()`` on the way out

The message (see ``tally`` for the numbers)::

    {"type": "stats", "channel": "activation:12", "at": "2024-07-01T08:00:01+00:00",
     "total": {..., "fill_rate": 0.775}, "communities": {"330102001001": {..., "fill_rate": 0.775}}}
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from realtime.periodic import Periodic

if TYPE_CHECKING:
    from realtime.hub import Hub

__all__ = ["COUNTS", "StatsTicker", "tally"]

logger = logging.getLogger("realtime.stats")

COUNTS = ("slots", "filled", "acknowledged", "en_route", "arrived", "declined", "escalated")

CountsSource = Callable[[str], Awaitable[Mapping[str, Mapping[str, int]]] | Mapping[str, Mapping[str, int]]]


def _with_rate(counts: Mapping[str, int]) -> dict[str, Any]:
    row: dict[str, Any] = {name: int(counts.get(name, 0)) for name in COUNTS}
    row.update({k: v for k, v in counts.items() if k not in row})
    filled = row["filled"] if "filled" in counts else row["arrived"]
    row["fill_rate"] = round(filled / row["slots"], 4) if row["slots"] else 0.0
    return row


def tally(per_community: Mapping[str, Mapping[str, int]]) -> dict[str, Any]:
    """Return ``{"total": {...}, "communities": {code: {...}}}`` with a ``fill_rate`` in each row.

    ``fill_rate`` is filled slots over slots (``filled``, or ``arrived`` when the app gives no
    ``filled``), 0.0 where there are no slots. Counts missing from a row are 0.

    >>> tally({"a": {"slots": 4, "arrived": 1}, "b": {"slots": 4, "arrived": 3, "declined": 1}})["total"]
    {'slots': 8, 'filled': 0, 'acknowledged': 0, 'en_route': 0, 'arrived': 4, 'declined': 1, 'escalated': 0, 'fill_rate': 0.5}
    """
    total: dict[str, int] = {}
    for counts in per_community.values():
        for name, value in counts.items():
            total[name] = total.get(name, 0) + int(value)
    return {
        "total": _with_rate(total),
        "communities": {code: _with_rate(counts) for code, counts in sorted(per_community.items())},
    }


class StatsTicker(Periodic):
    """Coalesces changes into at most one ``stats`` message per channel per ``interval`` seconds."""

    task_name = "realtime-stats"

    def __init__(
        self,
        hub: Hub,
        counts: CountsSource,
        *,
        interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(interval)
        self.hub = hub
        self.counts = counts
        self.clock = clock
        self._dirty: dict[str, None] = {}
        self._last_sent: dict[str, float] = {}

    def mark(self, channel: str) -> None:
        """Note that ``channel``'s counts changed; its watchers get one stats message on the next tick."""
        self._dirty[channel] = None

    async def flush(self) -> int:
        """Publish one stats message per dirty channel not sent within ``interval``; return how many."""
        now = self.clock()
        due = [ch for ch in self._dirty if now - self._last_sent.get(ch, float("-inf")) >= self.interval]
        sent = 0
        for channel in due:
            self._dirty.pop(channel, None)
            self._last_sent[channel] = now
            try:
                result = self.counts(channel)
                per_community = await result if inspect.isawaitable(result) else result
                message = {"type": "stats", "channel": channel, "at": datetime.now(UTC).isoformat()}
                message.update(tally(per_community))
                await self.hub.publish(channel, message)
                sent += 1
            except Exception:
                logger.exception("stats for %s failed", channel)
        # Forget channels quiet for a while so a long-running process does not keep every channel.
        if len(self._last_sent) > 10_000:
            horizon = now - 60 * self.interval
            self._last_sent = {ch: t for ch, t in self._last_sent.items() if t >= horizon}
        return sent

    async def tick(self) -> int:
        return await self.flush()
