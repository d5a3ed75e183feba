"""Writing notifications into the outbox in the caller's transaction, and reading them back.

:func:`enqueue` and :func:`enqueue_many` only add rows to the session's open transaction: they never
commit. The caller's commit publishes the change and its messages together; a rollback drops both.
A ``dedupe_key`` names a notification (``order:17:notified``, ``order:17:reminder:1``,
``activation:3:ended:person:42``): enqueueing it again stores nothing (``ON CONFLICT DO NOTHING``,
on SQLite and PostgreSQL alike), so a retried request or a sweeper that runs twice sends one message.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mobilize.db import insert_ignoring, utcnow
from mobilize.notify.models import OutboxMessage
from mobilize.notify.templates import LANGS, check, render
from realtime.log import compact_json, sqlite_timestamp

__all__ = ["CHANNELS", "Notice", "check_notice", "encode_payload", "enqueue", "enqueue_many", "enqueue_encoded",
           "inbox", "status_counts"]

#: Channel names a row may carry; the worker serves those it has a channel for.
CHANNELS = ("log", "sms", "inapp")
_TABLE = OutboxMessage.__table__


@dataclass(frozen=True, slots=True)
class Notice:
    """One notification to enqueue in bulk (see :func:`enqueue_many`)."""

    kind: str
    person_id: int
    dedupe_key: str
    channel: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    activation_id: int | None = None
    order_id: int | None = None


_COLUMNS = ("kind", "channel", "person_id", "activation_id", "order_id", "dedupe_key", "payload")


def _iso(value: Any) -> str:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


_dumps = compact_json(default=_iso)


def check_notice(kind: str, channel: str, payload: Mapping[str, Any], dedupe_key: str) -> None:
    """Raise :class:`ValueError` (a :class:`~mobilize.notify.templates.TemplateError` for a payload) unless
    a notice of ``kind`` on ``channel`` with ``payload`` and ``dedupe_key`` can be enqueued."""
    check(kind, payload)
    if channel not in CHANNELS:
        raise ValueError(f"unknown notification channel {channel!r}; known: {', '.join(CHANNELS)}")
    if not dedupe_key or len(dedupe_key) > 200:
        raise ValueError("dedupe_key must be 1 to 200 characters")


def _insert(session: AsyncSession):
    return insert_ignoring(session, _TABLE, ["dedupe_key"])


def _row(notice: Notice, now: datetime) -> dict[str, Any]:
    return {
        "kind": notice.kind, "channel": notice.channel, "person_id": notice.person_id,
        "activation_id": notice.activation_id, "order_id": notice.order_id, "dedupe_key": notice.dedupe_key,
        "payload": json.loads(_dumps(notice.payload)), "status": "pending", "attempts": 0, "next_attempt_at": now,
        "created_at": now,
    }


async def enqueue(session: AsyncSession, *, kind: str, person_id: int, payload: Mapping[str, Any], channel: str,
                  dedupe_key: str, activation_id: int | None = None, order_id: int | None = None,
                  now: datetime | None = None) -> int | None:
    """Return the new outbox row's id, or ``None`` if ``dedupe_key`` was already enqueued.

    The row joins ``session``'s transaction (nothing is committed here). ``payload`` holds the
    template variables of ``kind`` (checked now, so a bad call fails in the caller's transaction,
    not later in the worker), plus optionally ``link``, ``drill`` and ``lang``; never a phone number.
    """
    check_notice(kind, channel, payload, dedupe_key)
    notice = Notice(kind=kind, person_id=person_id, dedupe_key=dedupe_key, channel=channel, payload=payload,
                    activation_id=activation_id, order_id=order_id)
    stmt = _insert(session).values(_row(notice, (now or utcnow()).astimezone(UTC))).returning(_TABLE.c.id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def enqueue_many(session: AsyncSession, notices: Iterable[Notice], *, now: datetime | None = None) -> int:
    """Return how many of ``notices`` were handed to the database (duplicates among them are stored once).

    Every notice is checked first, then written by :func:`enqueue_encoded`.
    """
    rows = []
    for n in notices:
        check_notice(n.kind, n.channel, n.payload, n.dedupe_key)
        rows.append((n.kind, n.channel, n.person_id, n.activation_id, n.order_id, n.dedupe_key, _dumps(n.payload)))
    return await enqueue_encoded(session, rows, now=now)


def encode_payload(payload: Mapping[str, Any]) -> str:
    """Return the JSON text the outbox stores for ``payload`` (dates and times as ISO 8601 text).

    >>> encode_payload({"post": "巡查", "drill": False})
    '{"post":"巡查","drill":false}'
    """
    return _dumps(payload)


async def enqueue_encoded(session: AsyncSession, rows: Sequence[tuple], *, now: datetime | None = None) -> int:
    """Return how many rows were handed to the database after enqueueing already checked notices.

    ``rows`` are ``(kind, channel, person_id, activation_id, order_id, dedupe_key, payload_json)``
    whose payloads the caller checked (:func:`check_notice`) and encoded (:func:`encode_payload`):
    an activation's tens of thousands share a few payload shapes, checked once each. One statement in
    ``session``'s transaction, at the driver's level: SQLAlchemy's per-row bind processing would cost
    more than the database. SQLite takes one ``executemany``; PostgreSQL one ``INSERT … SELECT FROM
    unnest(arrays)`` (a round trip per row, even pipelined, is three times slower).
    """
    if not rows:
        return 0
    now = (now or utcnow()).astimezone(UTC)
    connection = await session.connection()
    table = connection.dialect.identifier_preparer.format_table(_TABLE)
    columns = ", ".join(_COLUMNS)
    tail = "ON CONFLICT (dedupe_key) DO NOTHING"
    if connection.dialect.name == "sqlite":
        at = sqlite_timestamp(now)  # the text SQLAlchemy reads back
        await connection.exec_driver_sql(
            f"INSERT INTO {table} ({columns}, status, attempts, next_attempt_at, created_at) "
            f"VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?) {tail}", [(*r, at, at) for r in rows])
    else:
        await connection.exec_driver_sql(
            f"INSERT INTO {table} ({columns}, status, attempts, next_attempt_at, created_at) "
            f"SELECT k, c, p, a, o, d, j::json, 'pending', 0, $8, $8 FROM unnest("
            f"$1::varchar[], $2::varchar[], $3::int[], $4::int[], $5::int[], $6::varchar[], $7::text[]"
            f") AS t(k, c, p, a, o, d, j) {tail}", (*map(list, zip(*rows, strict=True)), now))
    return len(rows)


async def inbox(session: AsyncSession, *, person_id: int, activation_id: int | None = None, lang: str = "zh-CN",
                limit: int = 50) -> list[dict[str, Any]]:
    """Return a person's delivered notifications, newest first, rendered for the phone page.

    Every channel's messages show (an SMS the person got is on the page too); the link is not, the
    person already holds it.
    """
    lang = lang if lang in LANGS else "zh-CN"
    stmt = (select(OutboxMessage).where(OutboxMessage.person_id == person_id, OutboxMessage.status == "sent")
            .order_by(OutboxMessage.id.desc()).limit(limit))
    if activation_id is not None:
        stmt = stmt.where(OutboxMessage.activation_id == activation_id)
    out = []
    for row in (await session.execute(stmt)).scalars():
        payload = {k: v for k, v in row.payload.items() if k != "link"}
        text = render(row.kind, payload, lang=payload.get("lang", lang), drill=bool(payload.get("drill"))).text
        out.append({"id": row.id, "kind": row.kind, "text": text, "activation_id": row.activation_id,
                    "order_id": row.order_id, "created_at": row.created_at, "sent_at": row.sent_at})
    return out


async def status_counts(session: AsyncSession, *, activation_id: int | None = None) -> dict[str, dict[str, int]]:
    """Return ``{channel: {status: count}}`` of the outbox (operators watch ``failed`` and a growing ``pending``)."""
    stmt = select(OutboxMessage.channel, OutboxMessage.status, func.count()).group_by(
        OutboxMessage.channel, OutboxMessage.status)
    if activation_id is not None:
        stmt = stmt.where(OutboxMessage.activation_id == activation_id)
    counts: dict[str, dict[str, int]] = {}
    for channel, status, n in (await session.execute(stmt)).all():
        counts.setdefault(channel, {})[status] = n
    return counts
