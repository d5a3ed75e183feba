"""Group commit of phone answers (acknowledge, en route, arrived): many presses, one write transaction.

SQLite has one writer, so acks written one transaction each queue on its lock, and on PostgreSQL
every ack queues on the activation stream's row of the event log. :class:`AnswerWriter` is one task
that takes every press queued while its previous transaction committed, writes them all in one
transaction — link check, idempotency lookup, order rows read (locked ``FOR UPDATE`` on PostgreSQL;
SQLite's ``BEGIN IMMEDIATE`` holds the write lock from the first read), the state machine applied in
memory, then one statement each for the compare-and-set updates, the events, the audit rows and the
idempotency records — and answers each request only after the commit, with its own result.

Each press still gets exactly what it would get alone: a repeated key (also twice in one batch)
replays the first answer and changes nothing; an impossible action is that request's 409, not the
batch's; and if the batch's transaction fails as a whole, each press is retried in a transaction of
its own so one bad request cannot sink the others. An ack racing the sweeper: whichever transaction
takes the row first decides (the sweeper's timeout is then stale, or the ack a late one).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mobilize import audit, idempotency
from mobilize.activations.dispatch import order_state, transition_records, transition_values
from mobilize.activations.models import Order, PhoneLinkRow, Post
from mobilize.activations.phone import GROUPED_ACTIONS, answer
from mobilize.db import aware, begin_write
from mobilize.errors import Conflict, MobilizeError
from mobilize.orders import OPEN_STATES, apply
from mobilize.phonelinks import PhoneLink, check, hash_token
from realtime.log import append_many
from rosters.models import OrgUnit

__all__ = ["AnswerWriter", "MAX_BATCH"]

log = logging.getLogger("mobilize.answers")

#: Presses per transaction at most (also keeps every IN list far below SQLite's variable limit).
MAX_BATCH = 256
#: Seconds a batch waits at most for the rest of a burst of presses (see :meth:`AnswerWriter._gather`).
LINGER = 0.004
_STATE_COLUMNS = ("status", "created_at", "ack_deadline_at", "arrive_deadline_at", "arrive_minutes",
                  "acknowledged_at", "en_route_at", "arrived_at", "escalated_at", "closed_at", "escalation",
                  "escalation_step", "closed_reason", "note")


@dataclass
class _Press:
    token: str
    action: str
    key: str
    reason: str | None
    note: str | None
    now: datetime
    future: asyncio.Future = field(repr=False)


class _Lost(Exception):
    """A compare-and-set update found a row changed under a lock that should have kept it (never expected)."""


class AnswerWriter:
    """One task that writes queued phone answers in shared transactions (group commit)."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], *, max_batch: int = MAX_BATCH,
                 linger: float = LINGER) -> None:
        self.sessionmaker = sessionmaker
        self.max_batch = max_batch
        self.linger = linger
        self._last = self._want = 1
        #: Held while a batch is written (one at a time: SQLite has one writer; on PostgreSQL batches
        #: that overlapped were smaller and cost more CPU per ack). The other phone writes (declines)
        #: take it too, so they queue here in order instead of polling SQLite's busy lock.
        self.gate = asyncio.Lock()
        self._enough = asyncio.Event()
        self._queue: list[_Press] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._stopping = False
        self.batches = 0  # how many transactions were written, and how many presses in them
        self.presses = 0

    async def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="phone-answer-writer")

    async def stop(self) -> None:
        """Write what is queued, then stop."""
        if self._task is None:
            return
        self._stopping = True
        self._wake.set()
        await self._task
        self._task = None

    async def submit(self, token: str, action: str, *, key: str, reason: str | None, note: str | None,
                     now: datetime) -> tuple[int, dict]:
        """Return (status, answer) once this press is committed; raise its own error otherwise."""
        if action not in GROUPED_ACTIONS:  # pragma: no cover - the router sends only these
            raise ValueError(action)
        if self._task is None:
            await self.start()
        future = asyncio.get_running_loop().create_future()
        self._queue.append(_Press(token, action, key, reason, note, now, future))
        self._wake.set()
        if len(self._queue) >= self._want:
            self._enough.set()
        return await future

    def _take(self) -> list[_Press]:
        batch, self._queue = self._queue[:self.max_batch], self._queue[self.max_batch:]
        return batch

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                await self._gather()
                batch = self._take()
                self._last = len(batch)
                try:
                    await self._write(batch)
                except Exception as exc:  # pragma: no cover - _write answers every press itself
                    log.exception("the answer writer failed")
                    for press in batch:
                        if not press.future.done():
                            press.future.set_exception(exc)
            if self._stopping:
                return

    async def _gather(self) -> None:
        """Wait up to ``linger`` seconds for about as many presses as the last batch had.

        Presses come in bursts: a commit answers a batch, and those phones' next presses arrive
        together while the loop reads them one by one. Taking the first at once would write it alone
        and leave the rest waiting for a whole further transaction.
        """
        self._want = max(1, min(self._last // 2, self.max_batch))
        if len(self._queue) >= self._want or self._stopping:
            return
        self._enough.clear()
        try:
            await asyncio.wait_for(self._enough.wait(), self.linger)
        except TimeoutError:
            pass

    async def _write(self, batch: list[_Press]) -> None:
        try:
            results = await self._write_batch(batch)
        except Exception as exc:  # the batch as a whole failed: each press alone, so none sinks another
            if len(batch) > 1:
                log.warning("a batch of %d answers failed (%s); writing them one by one", len(batch), exc)
                for press in batch:
                    await self._write([press])
                return
            if not isinstance(exc, MobilizeError):
                log.exception("writing a phone answer failed")
            results = [exc]
        self.batches += 1
        self.presses += len(batch)
        for press, result in zip(batch, results, strict=True):
            if press.future.done():  # the client went away; what was committed stays committed
                continue
            if isinstance(result, BaseException):
                press.future.set_exception(result)
            else:
                press.future.set_result(result)

    async def _write_batch(self, batch: list[_Press]) -> list[Any]:
        """Write ``batch`` in one transaction; return per press (status, answer) or the error it gets."""
        start = time.perf_counter()
        async with self.gate, self.sessionmaker() as session:
            try:
                await begin_write(session)
                results = await _apply_batch(session, batch)
                await session.commit()
                log.debug("%d answers written in %.1f ms; %d queued", len(batch),
                          (time.perf_counter() - start) * 1000, len(self._queue))
            except BaseException:
                await session.rollback()
                raise
        return results


async def _apply_batch(session: AsyncSession, batch: list[_Press]) -> list[Any]:
    postgres = session.bind.dialect.name == "postgresql"
    conn = await session.connection()  # Core on the connection: no ORM layer for plain rows
    hashes = {hash_token(p.token) for p in batch}
    links = {row.token_hash: row for row in await conn.execute(
        select(PhoneLinkRow.id, PhoneLinkRow.token_hash, PhoneLinkRow.person_id, PhoneLinkRow.activation_id,
               PhoneLinkRow.expires_at, PhoneLinkRow.revoked_at).where(PhoneLinkRow.token_hash.in_(hashes)))}
    results: list[Any] = [None] * len(batch)
    opened: dict[int, Any] = {}
    for i, press in enumerate(batch):
        row = links.get(hash_token(press.token))
        link = None if row is None else PhoneLink(row.person_id, row.activation_id, row.token_hash,
                                                  aware(row.expires_at), aware(row.revoked_at))
        try:
            check(link, press.token, press.now)
        except MobilizeError as exc:
            results[i] = exc
            continue
        opened[i] = row
    # Each person's current order in the link's activation (the latest), with its community for the events.
    query = (select(Order.id, Order.activation_id, Order.person_id, Order.post_id, OrgUnit.code.label("community"),
                    *(getattr(Order, c) for c in _STATE_COLUMNS))
             .join(Post, Post.id == Order.post_id).join(OrgUnit, OrgUnit.id == Post.community_id)
             # by person only: SQLite would otherwise walk the activation's index, all its orders
             .where(Order.person_id.in_({row.person_id for row in opened.values()}))
             .order_by(Order.id))
    if postgres:  # held until commit, so the compare-and-set below cannot lose (SQLite: BEGIN IMMEDIATE)
        query = query.with_for_update(of=Order.__table__)
    current = {}
    for row in (await conn.execute(query)) if opened else ():
        current[(row.person_id, row.activation_id)] = row
    # Read after the orders are locked: a batch that waited for another's locks sees its keys too.
    stored = await idempotency.replay_many(session, {(f"link:{row.id}", batch[i].key) for i, row in opened.items()})
    states: dict[int, Any] = {}
    updates, events, audits, remembered = [], [], [], []
    answered: dict[tuple[str, str], tuple] = {}
    for i, row in opened.items():
        press = batch[i]
        scope = f"link:{row.id}"
        digest = idempotency.request_hash(press.action, press.reason, press.note)
        try:
            first = answered.get((scope, press.key)) or stored.get((scope, press.key))
            if first is not None:
                results[i] = idempotency.check_stored(first[0], digest, first[1], first[2])
                continue
            order = current.get((row.person_id, row.activation_id))
            if order is None:
                raise Conflict("您在本次启动中没有派单", "You have no order in this activation")
            state = states.get(order.id) or order_state(order)
            tr = apply(state, press.action, actor="person", at=press.now, reason=press.reason, note=press.note)
        except MobilizeError as exc:
            results[i] = exc
            continue
        if not tr.noop:
            assert tr.order.status in OPEN_STATES  # an answer never frees the post (declines go elsewhere)
            states[order.id] = tr.order
            updates.append({f"v_{k}": v for k, v in transition_values(tr.order).items()}
                           | {"o_id": order.id, "o_from": tr.from_status})
            new_events, audit_row = transition_records(order, tr, order.community, actor=f"person:{row.person_id}")
            events += new_events
            audits.append(audit_row)
        body = answer(order.id, tr.order, press.now)
        answered[(scope, press.key)] = (digest, 200, body)
        remembered.append((scope, press.key, digest, 200, body))
        results[i] = (200, body)
    if updates:
        table = Order.__table__
        stmt = (update(table).where(table.c.id == bindparam("o_id"), table.c.status == bindparam("o_from"))
                .values({k[2:]: bindparam(k) for k in updates[0] if k.startswith("v_")}))
        result = await conn.execute(stmt, updates)
        if session.bind.dialect.supports_sane_multi_rowcount and result.rowcount != len(updates):
            raise _Lost(f"{len(updates) - result.rowcount} of {len(updates)} orders changed under the lock")
    await append_many(session, events)
    await audit.record_many(session, audits)
    await idempotency.remember_many(session, remembered)
    return results
