"""Follow the log for events that other processes appended, and publish them on this process's hub.

The in-memory hub reaches only the process that owns it, so an event committed by another process on the
same database (an operator's ``mobilize activate`` in a terminal, a maintenance script) would reach a
watching browser only at its next reconnect. :class:`LogFollower` closes that gap: every ``interval``
seconds it reads the head of each stream that has a local subscriber (one indexed query per 500 streams)
and, where the log is ahead of what this process published, publishes the missing events, in order.

Publishing twice is harmless by design: a subscriber skips a seq it has already sent and fills a gap from
the log, so the follower needs no coordination with the after-commit publisher; it only skips streams
this process has published up to their head (``note``), so it does not re-read the process's own events.
With the Redis backend every instance hears every other instance already; the follower is for the
single-process (``memory://``) deployment and its command-line neighbours.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from realtime.hub import Hub
from realtime.log import read_since
from realtime.models import event_streams as streams
from realtime.periodic import Periodic
from realtime.stats import StatsTicker

__all__ = ["LogFollower"]

logger = logging.getLogger("realtime.follow")

_CHUNK = 500


class LogFollower(Periodic):
    """Publishes on ``hub`` the events of locally watched streams that this process did not publish."""

    task_name = "realtime-log-follower"

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], hub: Hub, *, interval: float = 1.0,
                 batch: int = 1000, stats: StatsTicker | None = None) -> None:
        super().__init__(interval)
        self.sessionmaker = sessionmaker
        self.hub = hub
        self.stats = stats  # marked for streams that moved, so a stats tick follows as for local changes
        self.batch = batch
        self.published: dict[str, int] = {}  # stream -> highest seq known to be published here
        hub.on_event_published(self.note)

    def note(self, stream: str, seq: int) -> None:
        """Record that ``seq`` of ``stream`` was published by this process (the after-commit path)."""
        if seq > self.published.get(stream, 0) and self.hub.subscriber_count(stream):
            self.published[stream] = seq

    async def tick(self) -> int:
        return await self.poll()

    async def poll(self) -> int:
        """Publish what the log holds beyond what was published here, for watched streams; return how many."""
        watched = self.hub.channels()
        for stream in [s for s in self.published if s not in watched]:
            del self.published[stream]  # nobody watches here any more; start afresh if someone does
        if not watched:
            return 0
        published = 0
        # Read first, publish after: the session (on SQLite a read snapshot, which holds back checkpoints) is
        # not kept open while subscribers are served.
        batches: list[tuple[str, bool, int, list]] = []
        async with self.sessionmaker() as session:
            for stream, head in await self._heads(session, watched):
                known = self.published.get(stream)
                first = known is None
                if first:
                    # First sight of this stream: its subscribers started from the log (snapshot or replay);
                    # re-publishing the head costs one message and lets anyone behind fill the gap.
                    known = max(head - 1, 0)
                events: list = []
                while known < head and len(events) < 10 * self.batch:  # the rest on the next round
                    got = await read_since(session, stream, known, limit=self.batch)
                    if not got:
                        break
                    events += got
                    known = got[-1].seq
                batches.append((stream, first, known, events))
        for stream, first, known, events in batches:
            if events:
                await self.hub.publish_many([(e.stream, e.to_message()) for e in events])
                published += len(events)
                if self.stats is not None and (not first or len(events) > 1):
                    self.stats.mark(stream)  # counts changed elsewhere: a stats tick follows, as for local ones
            self.note(stream, known)
        return published

    async def _heads(self, session: AsyncSession, watched: Iterable[str]) -> list[tuple[str, int]]:
        names = sorted(watched)
        out: list[tuple[str, int]] = []
        for start in range(0, len(names), _CHUNK):
            rows = await session.execute(
                select(streams.c.stream, streams.c.last_seq).where(streams.c.stream.in_(names[start:start + _CHUNK])))
            out.extend((stream, int(last)) for stream, last in rows)
        return out
