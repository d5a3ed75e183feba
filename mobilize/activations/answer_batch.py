"""Writing one batch of phone answers in one transaction: the reads, the decisions, the writes.

Used by :class:`mobilize.activations.answers.AnswerWriter`. :func:`apply_batch` writes with SQLAlchemy Core
(PostgreSQL, any database); :func:`write_sqlite` runs the same transaction as ONE call on a raw ``sqlite3``
connection's own thread. Both read the same rows and take the same decisions (:func:`open_links`,
:func:`decide`); the events are appended last, so PostgreSQL holds the activation stream's row lock for the
shortest time.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections import namedtuple
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mobilize import audit, idempotency
from mobilize.activations.dispatch import order_state, transition_records, transition_values
from mobilize.activations.models import IdempotencyRecord, Order, PhoneLinkRow, Post
from mobilize.activations.phone import answer
from mobilize.db import WAL_AUTOCHECKPOINT_PAGES, aware, utcnow
from mobilize.errors import Conflict, MobilizeError
from mobilize.models import AuditEntry
from mobilize.orders import OPEN_STATES, apply
from mobilize.phonelinks import PhoneLink, check, hash_token
from realtime.log import append_many, append_many_sqlite, sqlite_timestamp
from realtime.models import Event, NewEvent
from rosters.models import OrgUnit

__all__ = ["Lost", "Press", "apply_batch", "checkpoint_sqlite", "write_sqlite"]

STATE_COLUMNS = ("status", "created_at", "ack_deadline_at", "arrive_deadline_at", "arrive_minutes",
                  "acknowledged_at", "en_route_at", "arrived_at", "escalated_at", "closed_at", "escalation",
                  "escalation_step", "closed_reason", "note")


@dataclass
class Press:
    token: str
    action: str
    key: str
    reason: str | None
    note: str | None
    now: datetime
    future: asyncio.Future = field(repr=False)


class Lost(Exception):
    """A compare-and-set update found a row changed under a lock that should have kept it (never expected)."""


def open_links(batch: list[Press], links: dict[str, Any], results: list[Any]) -> dict[int, Any]:
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
class Writes:
    """What a batch writes: (order id, status it must still have, new column values) per changed order, the
    events, the audit rows and the idempotency records (scope, key, request hash, status, answer)."""

    updates: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)
    events: list[NewEvent] = field(default_factory=list)
    audits: list[dict[str, Any]] = field(default_factory=list)
    remembered: list[tuple[str, str, str, int, dict]] = field(default_factory=list)


def decide(batch: list[Press], opened: dict[int, Any], current: dict[tuple[int, int], Any],
            stored: dict[tuple[str, str], tuple], results: list[Any]) -> Writes:
    """Apply the state machine to the opened presses in memory; fill ``results``; return what to write.

    ``current`` is (person, activation) -> the order row (with its ``community`` code), ``stored`` the
    idempotency records already kept for these presses' (scope, key).
    """
    out = Writes()
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


async def apply_batch(session: AsyncSession, batch: list[Press]) -> list[Any]:
    """Write ``batch`` in ``session``'s transaction with SQLAlchemy Core (PostgreSQL; any database)."""
    postgres = session.bind.dialect.name == "postgresql"
    conn = await session.connection()  # Core on the connection: no ORM layer for plain rows
    hashes = {hash_token(p.token) for p in batch}
    links = {row.token_hash: row for row in await conn.execute(
        select(PhoneLinkRow.id, PhoneLinkRow.token_hash, PhoneLinkRow.person_id, PhoneLinkRow.activation_id,
               PhoneLinkRow.expires_at, PhoneLinkRow.revoked_at).where(PhoneLinkRow.token_hash.in_(hashes)))}
    results: list[Any] = [None] * len(batch)
    opened = open_links(batch, links, results)
    # Each person's current order in the link's activation (the latest), with its community for the events.
    query = (select(Order.id, Order.activation_id, Order.person_id, Order.post_id, OrgUnit.code.label("community"),
                    *(getattr(Order, c) for c in STATE_COLUMNS))
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
    writes = decide(batch, opened, current, stored, results)
    if writes.updates:
        table = Order.__table__
        rows = [{f"v_{k}": v for k, v in values.items()} | {"o_id": oid, "o_from": was}
                for oid, was, values in writes.updates]
        stmt = (update(table).where(table.c.id == bindparam("o_id"), table.c.status == bindparam("o_from"))
                .values({k[2:]: bindparam(k) for k in rows[0] if k.startswith("v_")}))
        result = await conn.execute(stmt, rows)
        if session.bind.dialect.supports_sane_multi_rowcount and result.rowcount != len(rows):
            raise Lost(f"{len(rows) - result.rowcount} of {len(rows)} orders changed under the lock")
    await audit.record_many(session, writes.audits)
    await idempotency.remember_many(session, writes.remembered)
    await append_many(session, writes.events)  # last: on PostgreSQL the stream's row lock is held to the commit
    return results


# --- SQLite: the whole batch in one call on the driver's thread -------------------------------------

_ORDER_FIELDS = ("id", "activation_id", "person_id", "post_id", "community", *STATE_COLUMNS)
_OrderRow = namedtuple("_OrderRow", _ORDER_FIELDS)  # noqa: PYI024 - the shape SQLAlchemy's rows have here
_LinkRow = namedtuple("_LinkRow", ("id", "token_hash", "person_id", "activation_id", "expires_at", "revoked_at"))  # noqa: PYI024
_DATETIMES = frozenset(("created_at", "ack_deadline_at", "arrive_deadline_at", "acknowledged_at", "en_route_at",
                        "arrived_at", "escalated_at", "closed_at", "expires_at", "revoked_at"))
_ORDERS_SQL = (
    f"SELECT o.id, o.activation_id, o.person_id, o.post_id, u.code, {', '.join('o.' + c for c in STATE_COLUMNS)} "
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


def write_sqlite(connection: sqlite3.Connection, batch: list[Press]) -> tuple[list[Any], list[Event]]:
    """Return (per press result, events to publish) after writing ``batch`` in one SQLite transaction.

    Runs on the raw connection's own thread: the same reads, decisions and writes as
    :func:`apply_batch`, as plain tuples (no per-row bind processing, no round trip per statement).
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
        opened = open_links(batch, links, results)
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
        writes = decide(batch, opened, current, stored, results)
        now = sqlite_timestamp(utcnow())
        if writes.updates:
            columns = list(writes.updates[0][2])  # transition_values' columns, the same for every order
            cursor = connection.executemany(
                f"UPDATE {Order.__tablename__} SET {', '.join(c + ' = ?' for c in columns)} WHERE id = ? AND status = ?",
                [(*(_column(values[c]) for c in columns), oid, was) for oid, was, values in writes.updates])
            if cursor.rowcount != len(writes.updates):
                raise Lost(f"{len(writes.updates) - cursor.rowcount} of {len(writes.updates)} orders changed "
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


def checkpoint_sqlite(connection: sqlite3.Connection) -> None:
    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
