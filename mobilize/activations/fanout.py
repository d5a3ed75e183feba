"""Dispatch notices of a large dispatch, made after its commit a chunk at a time (分批通知).

A city-wide key press creates tens of thousands of orders. Each dispatched person needs a personal
link and a message in the outbox; made inside the key press's transaction they would add two rows
per order to it, and on SQLite hold the single writer for as long (the phones' answers wait behind
it). So a dispatch of more than :attr:`Notices.inline_limit` new orders writes, in its own
transaction, one :class:`~mobilize.activations.models.NoticeFanout` row naming the orders instead:
nothing is lost if the process dies after the commit, and nothing is told if the dispatch rolls back.

The notifier's worker then calls :func:`fan_out_next` before each delivery round. One call handles
the next chunk of the oldest unfinished fan-out in one write transaction: the chunk's links, its
messages (exactly what an inline dispatch writes, through :meth:`Notices.dispatched`) and the row's
progress commit together, so a chunk is made exactly once, also after a crash or with workers on
several instances (PostgreSQL: the row is claimed ``FOR UPDATE SKIP LOCKED``; SQLite: the write
lock). Orders closed before their chunk came (the activation ended, the level lowered, a
reassignment) are skipped: there is nothing left to tell their people.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mobilize.activations import writes
from mobilize.activations.models import OPEN_ORDER_STATES, Activation, NoticeFanout, Order, Post
from mobilize.activations.notices import Notices
from mobilize.db import begin_write, utcnow
from mobilize.plans import PostSpec

__all__ = ["CHUNK", "dispatch_orders", "tell_dispatched", "defer_notices", "fan_out_next", "fan_out_all"]

#: Orders handled per fan-out transaction: short enough not to hold SQLite's writer long (tens of ms).
CHUNK = 2000


async def dispatch_orders(session: AsyncSession, notices: Notices, activation: Activation, assignments,
                          post_ids: dict[str, int], specs: dict[str, PostSpec], *, ack_minutes: int,
                          arrive_minutes: int) -> dict[int, int]:
    """Insert one notified order per assignment and tell their people (:func:`tell_dispatched`); return the new
    order ids by person."""
    arrive_by, orders = await writes.insert_orders(session, activation.id, assignments, post_ids,
                                                   ack_minutes=ack_minutes, arrive_minutes=arrive_minutes)
    await tell_dispatched(session, notices, activation, assignments, orders, specs, arrive_by)
    return orders


async def tell_dispatched(session: AsyncSession, notices: Notices, activation: Activation, assignments,
                          orders: dict[int, int], specs: dict[str, PostSpec], arrive_by: datetime) -> None:
    """Tell the people of ``assignments`` (their new order ids in ``orders``) of their posts.

    Up to ``notices.inline_limit`` of them get their links and messages in this transaction; more get
    one fan-out row here, and their links and messages after the commit (:func:`fan_out_next`).
    """
    new = [a for a in assignments if a.person in orders]
    if len(new) > notices.inline_limit:
        await defer_notices(session, activation.id, [orders[a.person] for a in new])
    else:
        await notices.tell(session, activation, [a.person for a in assignments],
                           orders=writes.notice_rows(new, orders, specs, arrive_by))


async def defer_notices(session: AsyncSession, activation_id: int, order_ids: Sequence[int]) -> None:
    """Record that the orders ``order_ids`` of the activation are still to be told (in this transaction)."""
    if order_ids:
        await session.execute(NoticeFanout.__table__.insert().values(
            activation_id=activation_id, order_ids=sorted(order_ids), done=0, created_at=utcnow()))


async def fan_out_next(sessionmaker: async_sessionmaker[AsyncSession], notices: Notices, *,
                       chunk: int = CHUNK) -> int:
    """Return how many orders one step handled: the next chunk of the oldest unfinished fan-out (0: none left)."""
    ft, ot, pt = NoticeFanout.__table__, Order.__table__, Post.__table__
    async with sessionmaker() as session:
        # A read first: most rounds find nothing, and should not take SQLite's write lock to learn it.
        if (await session.execute(select(ft.c.id).where(ft.c.finished_at.is_(None)).limit(1))).first() is None:
            return 0
        await begin_write(session)
        postgres = session.get_bind().dialect.name == "postgresql"
        pick = select(ft.c.id, ft.c.activation_id, ft.c.order_ids, ft.c.done).where(
            ft.c.finished_at.is_(None)).order_by(ft.c.id).limit(1)
        if postgres:
            pick = pick.with_for_update(skip_locked=True)
        row = (await session.execute(pick)).first()
        if row is None:
            await session.commit()
            return 0
        fanout_id, activation_id, order_ids, done = row
        activation = await session.get(Activation, activation_id)
        live = activation is not None and activation.status == "active"
        part = order_ids[done: done + chunk] if live else order_ids[done:]  # switched back: nobody left to tell
        if part and live:
            wanted = set(part)
            # The chunk is a run of sorted ids: one range read of the activation, the strangers skipped.
            read = (select(ot.c.id, ot.c.person_id, ot.c.arrive_deadline_at, pt.c.name_zh, pt.c.name_en, pt.c.site_name)
                    .join(pt, pt.c.id == ot.c.post_id)
                    .where(ot.c.activation_id == activation_id, ot.c.id.between(part[0], part[-1]),
                           ot.c.status.in_(OPEN_ORDER_STATES)))
            if postgres:
                # Shared locks on the orders told: a switch-back or level change closing them waits for this
                # chunk's commit (and then sees, and expires, its links); one that closed them first is
                # waited for here, and its closed orders drop out of the read.
                read = read.with_for_update(read=True, of=ot)
            rows = [r for r in (await (await session.connection()).execute(read)).all() if r[0] in wanted]
            if rows:
                await notices.tell(session, activation, [r[1] for r in rows], orders=rows)
        done += len(part)
        values = {"done": done}
        if done >= len(order_ids):  # finished: the list has served its purpose
            values.update(finished_at=utcnow(), order_ids=[])
        await session.execute(update(ft).where(ft.c.id == fanout_id).values(**values))
        await session.commit()
        return max(len(part), 1)  # a fan-out finished with nothing left to do still counts as work done


async def fan_out_all(sessionmaker: async_sessionmaker[AsyncSession], notices: Notices, *,
                      chunk: int = CHUNK) -> int:
    """Return how many orders were handled running :func:`fan_out_next` until nothing is left."""
    total = 0
    while handled := await fan_out_next(sessionmaker, notices, chunk=chunk):
        total += handled
    return total
