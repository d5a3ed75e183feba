"""Group commit of phone answers (acknowledge, en route, arrived): many presses, one write transaction.

SQLite has one writer, so acks written one transaction each queue on its lock, and on PostgreSQL
every ack queues on the activation stream's row of the event log. :class:`AnswerWriter` is one task
that takes every press queued while its previous transaction committed, writes them all in one
transaction — link check, idempotency lookup, order rows read (locked ``FOR UPDATE`` on PostgreSQL;
SQLite's ``BEGIN IMMEDIATE`` holds the write lock from the first read), the state machine applied in
memory, then one statement each for the compare-and-set updates, the events, the audit rows and the
idempotency records — and answers each request only after the commit, with its own result.

On SQLite (aiosqlite) the whole transaction, ``BEGIN IMMEDIATE`` to ``COMMIT``, runs as ONE call on the
driver's own thread with the raw ``sqlite3`` connection (:func:`_write_sqlite`: plain tuples, the
events appended synchronously and published after the commit): a statement each through SQLAlchemy
cost a thread round trip and per-row bind processing, more than SQLite itself. Elsewhere (PostgreSQL)
:func:`_apply_batch` writes with SQLAlchemy Core. Both read the same rows and take the same decisions
(:func:`_open_links`, :func:`_decide`); the events are appended last, so PostgreSQL holds the
activation stream's row lock for the shortest time.

Each press still gets exactly what it would get alone: a repeated key (also twice in one batch)
replays the first answer and changes nothing; an impossible action is that request's 409, not the
batch's; and if the batch's transaction fails as a whole, each press is retried in a transaction of
its own so one bad request cannot sink the others. An ack racing the sweeper: whichever transaction
takes the row first decides (the sweeper's timeout is then stale, or the ack a late one).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections import namedtuple
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.pool import StaticPool

from mobilize import audit, idempotency
from mobilize.activations.dispatch import order_state, transition_records, transition_values
from mobilize.activations.models import IdempotencyRecord, Order, PhoneLinkRow, Post
from mobilize.activations.phone import GROUPED_ACTIONS, answer
from mobilize.db import WAL_AUTOCHECKPOINT_PAGES, aware, begin_write, utcnow
from mobilize.errors import Conflict, MobilizeError
from mobilize.models import AuditEntry
from mobilize.orders import OPEN_STATES, apply
from mobilize.phonelinks import PhoneLink, check, hash_token
from realtime.log import append_many, append_many_sqlite, publish_committed, sqlite_timestamp
from realtime.models import Event, NewEvent
from rosters.models import OrgUnit

__all__ = ["AnswerWriter", "MAX_BATCH"]

log = logging.getLogger("mobilize.answers")

#: Presses per transaction at most (also keeps every IN list far below SQLite's variable limit).
MAX_BATCH = 256
#: Seconds a batch waits at most for the rest of a burst of presses (see :meth:`AnswerWriter._gather`).
LINGER = 0.004
#: SQLite: batches between two WAL checkpoints run beside the writer (a busy batch adds a few hundred pages;
#: SQLite's own default checkpoints at 1,000).
CHECKPOINT_EVERY = 3
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
        self._checkpoint: asyncio.Task | None = None  # SQLite: the WAL checkpoint under way, off the commits
        self._since_checkpoint = 0

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
        if self._checkpoint is not None:
            await self._checkpoint

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
        bind = self.sessionmaker.kw.get("bind")
        # The raw path needs a connection of its own per checkout (a file database's pool); an in-memory
        # database shares one connection (StaticPool), whose open transaction the raw BEGIN would collide with.
        if bind is not None and bind.dialect.driver == "aiosqlite" and not isinstance(bind.pool, StaticPool):
            async with self.gate, bind.connect() as conn:
                # aiosqlite's connection queues calls to its own thread (as SQLAlchemy's adapter does with
                # it): the batch is one such call, on the sqlite3 connection that thread owns.
                driver = (await conn.get_raw_connection()).driver_connection
                results, events = await driver._execute(_write_sqlite, driver._conn, batch)
            publish_committed(self.sessionmaker, events)
            self._since_checkpoint += 1
            if self._since_checkpoint >= CHECKPOINT_EVERY and (self._checkpoint is None or self._checkpoint.done()):
                self._since_checkpoint = 0
                self._checkpoint = asyncio.create_task(self._checkpoint_wal(bind), name="phone-answer-checkpoint")
            log.debug("%d answers written in %.1f ms; %d queued", len(batch),
                      (time.perf_counter() - start) * 1000, len(self._queue))
            return results
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

    async def _checkpoint_wal(self, bind) -> None:
        """Copy the WAL back into the database file (PASSIVE: waits for nobody, blocks no writer).

        The batches commit with SQLite's automatic checkpoint turned off (:func:`_write_sqlite`): run
        inside a commit, its copy and fsync made that batch's presses wait tens of milliseconds.
        """
        try:
            async with bind.connect() as conn:
                driver = (await conn.get_raw_connection()).driver_connection
                await driver._execute(_checkpoint, driver._conn)
        except Exception:  # the next one tries again; meanwhile other writers' commits checkpoint as usual
            log.exception("checkpointing the WAL failed")


def _open_links(batch: list[_Press], links: dict[str, Any], results: list[Any]) -> dict[int, Any]:
    """Return press index -> its link row for the presses whose link opens; the others get their error."""
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
    return opened


@dataclass
class _Writes:
    """What a batch writes: (order id, status it must still have, new column values) per changed order, the
    events, the audit rows and the idempotency records (scope, key, request hash, status, answer)."""

    updates: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)
    events: list[NewEvent] = field(default_factory=list)
    audits: list[dict[str, Any]] = field(default_factory=list)
    remembered: list[tuple[str, str, str, int, dict]] = field(default_factory=list)


def _decide(batch: list[_Press], opened: dict[int, Any], current: dict[tuple[int, int], Any],
            stored: dict[tuple[str, str], tuple], results: list[Any]) -> _Writes:
    """Apply the state machine to the opened presses in memory; fill ``results``; return what to write.

    ``current`` is (person, activation) -> the order row (with its ``community`` code), ``stored`` the
    idempotency records already kept for these presses' (scope, key).
    """
    out = _Writes()
    states: dict[int, Any] = {}
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
            out.updates.append((order.id, tr.from_status, transition_values(tr.order)))
            new_events, audit_row = transition_records(order, tr, order.community, actor=f"person:{row.person_id}")
            out.events += new_events
            out.audits.append(audit_row)
        body = answer(order.id, tr.order, press.now)
        answered[(scope, press.key)] = (digest, 200, body)
        out.remembered.append((scope, press.key, digest, 200, body))
        results[i] = (200, body)
    return out


async def _apply_batch(session: AsyncSession, batch: list[_Press]) -> list[Any]:
    """Write ``batch`` in ``session``'s transaction with SQLAlchemy Core (PostgreSQL; any database)."""
    postgres = session.bind.dialect.name == "postgresql"
    conn = await session.connection()  # Core on the connection: no ORM layer for plain rows
    hashes = {hash_token(p.token) for p in batch}
    links = {row.token_hash: row for row in await conn.execute(
        select(PhoneLinkRow.id, PhoneLinkRow.token_hash, PhoneLinkRow.person_id, PhoneLinkRow.activation_id,
               PhoneLinkRow.expires_at, PhoneLinkRow.revoked_at).where(PhoneLinkRow.token_hash.in_(hashes)))}
    results: list[Any] = [None] * len(batch)
    opened = _open_links(batch, links, results)
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
    writes = _decide(batch, opened, current, stored, results)
    if writes.updates:
        table = Order.__table__
        rows = [{f"v_{k}": v for k, v in values.items()} | {"o_id": oid, "o_from": was}
                for oid, was, values in writes.updates]
        stmt = (update(table).where(table.c.id == bindparam("o_id"), table.c.status == bindparam("o_from"))
                .values({k[2:]: bindparam(k) for k in rows[0] if k.startswith("v_")}))
        result = await conn.execute(stmt, rows)
        if session.bind.dialect.supports_sane_multi_rowcount and result.rowcount != len(rows):
            raise _Lost(f"{len(rows) - result.rowcount} of {len(rows)} orders changed under the lock")
    await audit.record_many(session, writes.audits)
    await idempotency.remember_many(session, writes.remembered)
    await append_many(session, writes.events)  # last: on PostgreSQL the stream's row lock is held to the commit
    return results


# --- SQLite: the whole batch in one call on the driver's thread -------------------------------------

_ORDER_FIELDS = ("id", "activation_id", "person_id", "post_id", "community", *_STATE_COLUMNS)
_OrderRow = namedtuple("_OrderRow", _ORDER_FIELDS)  # noqa: PYI024 - the shape SQLAlchemy's rows have here
_LinkRow = namedtuple("_LinkRow", ("id", "token_hash", "person_id", "activation_id", "expires_at", "revoked_at"))  # noqa: PYI024
_DATETIMES = frozenset(("created_at", "ack_deadline_at", "arrive_deadline_at", "acknowledged_at", "en_route_at",
                        "arrived_at", "escalated_at", "closed_at", "expires_at", "revoked_at"))
_ORDERS_SQL = (
    f"SELECT o.id, o.activation_id, o.person_id, o.post_id, u.code, {', '.join('o.' + c for c in _STATE_COLUMNS)} "
    f"FROM {Order.__tablename__} o JOIN {Post.__tablename__} p ON p.id = o.post_id "
    f"JOIN {OrgUnit.__tablename__} u ON u.id = p.community_id WHERE o.person_id IN ({{}}) ORDER BY o.id")
_AUDIT_SQL = f"INSERT INTO {AuditEntry.__tablename__} (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)"
_REMEMBER_SQL = (f"INSERT INTO {IdempotencyRecord.__tablename__} "
                 "(scope, key, request_hash, status_code, response, created_at) VALUES (?, ?, ?, ?, ?, ?) "
                 "ON CONFLICT (scope, key) DO NOTHING")


def _timestamp(text: str | None) -> datetime | None:
    """Return a timestamp SQLAlchemy's SQLite ``DateTime`` stored, as aware UTC."""
    if text is None:
        return None
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _column(value: Any) -> Any:
    return sqlite_timestamp(value) if isinstance(value, datetime) else value


def _marks(n: int) -> str:
    return ", ".join("?" * n)


def _write_sqlite(connection: sqlite3.Connection, batch: list[_Press]) -> tuple[list[Any], list[Event]]:
    """Return (per press result, events to publish) after writing ``batch`` in one SQLite transaction.

    Runs on the raw connection's own thread: the same reads, decisions and writes as
    :func:`_apply_batch`, as plain tuples (no per-row bind processing, no round trip per statement).
    ``BEGIN IMMEDIATE`` takes the write lock before the first read, so the rows read stay current.
    """
    # No checkpoint inside this commit (the writer runs them beside it); the app's setting again afterwards,
    # for whoever uses this pooled connection next.
    connection.execute("PRAGMA wal_autocheckpoint = 0")
    connection.execute("BEGIN IMMEDIATE")
    try:
        hashes = list({hash_token(p.token) for p in batch})
        links = {}
        for row in connection.execute(f"SELECT id, token_hash, person_id, activation_id, expires_at, revoked_at "
                                      f"FROM {PhoneLinkRow.__tablename__} WHERE token_hash IN ({_marks(len(hashes))})",
                                      hashes):
            link = _LinkRow(*row[:4], _timestamp(row[4]), _timestamp(row[5]))
            links[link.token_hash] = link
        results: list[Any] = [None] * len(batch)
        opened = _open_links(batch, links, results)
        current = {}
        people = list({row.person_id for row in opened.values()})
        if people:
            dates = [i for i, name in enumerate(_ORDER_FIELDS) if name in _DATETIMES]
            for values in connection.execute(_ORDERS_SQL.format(_marks(len(people))), people):
                values = list(values)
                for i in dates:
                    values[i] = _timestamp(values[i])
                order = _OrderRow(*values)
                current[(order.person_id, order.activation_id)] = order
        pairs = sorted({(f"link:{row.id}", batch[i].key) for i, row in opened.items()})
        stored = {}
        for i in range(0, len(pairs), 400):
            chunk = pairs[i:i + 400]
            where = " OR ".join(["(scope = ? AND key = ?)"] * len(chunk))
            for scope, key, digest, status, response in connection.execute(
                    f"SELECT scope, key, request_hash, status_code, response FROM {IdempotencyRecord.__tablename__} "
                    f"WHERE {where}", [v for pair in chunk for v in pair]):
                stored[(scope, key)] = (digest, status, json.loads(response))
        writes = _decide(batch, opened, current, stored, results)
        now = sqlite_timestamp(utcnow())
        if writes.updates:
            columns = list(writes.updates[0][2])  # transition_values' columns, the same for every order
            cursor = connection.executemany(
                f"UPDATE {Order.__tablename__} SET {', '.join(c + ' = ?' for c in columns)} WHERE id = ? AND status = ?",
                [(*(_column(values[c]) for c in columns), oid, was) for oid, was, values in writes.updates])
            if cursor.rowcount != len(writes.updates):
                raise _Lost(f"{len(writes.updates) - cursor.rowcount} of {len(writes.updates)} orders changed "
                            "under the lock")
        connection.executemany(_AUDIT_SQL, [(now, a["actor"], a["action"], a.get("target"),
                                             json.dumps(a.get("detail") or {})) for a in writes.audits])
        connection.executemany(_REMEMBER_SQL, [(scope, key, digest, status, json.dumps(body), now)
                                               for scope, key, digest, status, body in writes.remembered])
        events = append_many_sqlite(connection, writes.events)
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    finally:
        connection.execute(f"PRAGMA wal_autocheckpoint = {_AUTOCHECKPOINT}")
    return results, events


_AUTOCHECKPOINT = WAL_AUTOCHECKPOINT_PAGES  # what every pooled connection of the app runs with (mobilize.db)


def _checkpoint(connection: sqlite3.Connection) -> None:
    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
