"""The event log: append facts in the caller's transaction, read them back, publish them after commit.

Every state change appends an event in the same transaction as the change::

    async with sessionmaker() as session, session.begin():
        order.status = "acknowledged"
        await append(session, f"activation:{activation_id}", "order.acknowledged",
                     {"order": order.id, "post": order.post_id})

Sequence numbers are allocated per stream by an upsert on ``event_streams`` that holds the stream's
row lock until commit, so concurrent writers to one stream queue up and the numbers stay gapless
(a rollback gives them back). ``append_many`` allocates a whole block per stream in one statement
and inserts the rows with one executemany: an activation appends tens of thousands of events at once.

Appended events wait on the session (``session.info``) and go to the hub only after the transaction
commits; a rollback (also of a SAVEPOINT they were appended in) drops them. Bind the hub once::

    bind_hub(sessionmaker, hub, stats=ticker)

A writer that runs a whole SQLite transaction in the driver's own thread (one call instead of a
round trip per statement) appends with :func:`append_many_sqlite` on the raw ``sqlite3`` connection,
the same rows and seqs, and hands the events to :func:`publish_committed` once it has committed.
"""

from __future__ import annotations

import json
import json.encoder
import logging
import sqlite3
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import event as sa_event
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, SessionTransaction

from realtime.models import Event, NewEvent, event_log, event_streams

if TYPE_CHECKING:
    from realtime.hub import Hub
    from realtime.stats import StatsTicker

__all__ = ["append", "append_many", "append_many_sqlite", "bind_hub", "compact_json", "head", "publish_committed",
           "read_since", "sqlite_timestamp"]

logger = logging.getLogger("realtime.log")

HUB_KEY = "realtime.hub"
STATS_KEY = "realtime.stats"
PENDING_KEY = "realtime.pending"
LISTENING_KEY = "realtime.listening"


def compact_json(default: Callable[[Any], Any] | None = None) -> Callable[[Any], str]:
    """Return a function giving ``json.dumps(o, ensure_ascii=False, separators=(",", ":"), default=default)``.

    ``JSONEncoder.encode`` builds a new C encoder on every call, which costs as much as encoding a small
    body; an activation encodes tens of thousands, so the encoder is built once here.

    >>> compact_json()({"post": "巡查", "n": [1, 2.5, None, True]})
    '{"post":"巡查","n":[1,2.5,null,true]}'
    """
    encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=default)
    make = json.encoder.c_make_encoder
    if make is None:  # pragma: no cover - CPython without its _json accelerator
        return encoder.encode
    chunks = make(None, encoder.default, json.encoder.encode_basestring, None, ":", ",", False, False, True)
    join = "".join

    def dumps(o: Any) -> str:
        return join(chunks(o, 0))

    return dumps


_dumps = compact_json()

async def append(
    session: AsyncSession, stream: str, type: str, body: dict[str, Any] | None = None, *, at: datetime | None = None
) -> Event:
    """Return the stored event after appending one fact to ``stream`` in the session's transaction."""
    (stored,) = await append_many(session, [NewEvent(stream, type, body or {}, at)])
    return stored


async def append_many(session: AsyncSession, events: Sequence[NewEvent]) -> list[Event]:
    """Return the stored events, in the given order, after appending them all in the session's transaction.

    Seqs are allocated one block per stream (one upsert statement per 5,000 streams), the rows are
    inserted with one executemany, and the events are queued for publishing after commit.
    """
    if not events:
        return []
    counts = _counts(events)
    stored = _numbered(events, counts, await _allocate(session, counts))
    await _insert(session, stored)
    _queue(session, stored)
    return stored


def _counts(events: Sequence[NewEvent]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for new in events:
        counts[new.stream] += 1
    return counts


def _numbered(events: Sequence[NewEvent], counts: dict[str, int], last: dict[str, int]) -> list[Event]:
    """Return ``events`` as stored: each stream's block of ``counts`` seqs ends at ``last`` (as allocated)."""
    next_seq = {stream: last[stream] - n + 1 for stream, n in counts.items()}
    now = datetime.now(UTC)
    stored: list[Event] = []
    for new in events:
        seq = next_seq[new.stream]
        next_seq[new.stream] = seq + 1
        stored.append(Event(new.stream, seq, new.type, new.at or now, new.body))
    return stored


async def _allocate(session: AsyncSession, counts: dict[str, int]) -> dict[str, int]:
    """Return each stream's new last seq after reserving ``counts[stream]`` numbers for it."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        make_insert = postgresql.insert
    elif dialect == "sqlite":
        make_insert = sqlite.insert
    else:  # pragma: no cover - the product runs on these two
        raise NotImplementedError(f"event log does not support {dialect}")
    stmt = make_insert(event_streams)
    stmt = stmt.on_conflict_do_update(
        index_elements=[event_streams.c.stream],
        set_={"last_seq": event_streams.c.last_seq + stmt.excluded.last_seq},
    ).returning(event_streams.c.stream, event_streams.c.last_seq)
    # Sorted so that two transactions touching the same streams lock them in the same order (no
    # deadlock). An executemany with RETURNING is batched by SQLAlchemy into multi-row statements
    # ("insertmanyvalues"), compiled once: one statement for up to a thousand streams.
    rows = [{"stream": s, "last_seq": counts[s]} for s in sorted(counts)]
    if len(rows) == 1:
        result = await session.execute(stmt.values(rows[0]))
    else:
        result = await session.execute(stmt, rows)
    last: dict[str, int] = {stream: last_seq for stream, last_seq in result}
    return last


async def _insert(session: AsyncSession, stored: list[Event]) -> None:
    """Insert the rows with one driver-level executemany.

    SQLAlchemy's per-row bind processing (JSON, and datetime to text on SQLite) costs more than the
    database here, so the values are prepared once in the forms both drivers take as they are.
    """
    connection = await session.connection()
    dialect = connection.dialect
    table = dialect.identifier_preparer.format_table(event_log)
    if dialect.name == "sqlite":
        sql = f"INSERT INTO {table} (stream, seq, type, at, body) VALUES (?, ?, ?, ?, ?)"
        rows = _sqlite_rows(stored)
    else:
        sql = f"INSERT INTO {table} (stream, seq, type, at, body) VALUES ($1, $2, $3, $4, $5)"
        rows = [(e.stream, e.seq, e.type, e.at, _dumps(e.body)) for e in stored]
    await connection.exec_driver_sql(sql, rows)


def _sqlite_rows(stored: list[Event]) -> list[tuple]:
    dumps = _dumps
    texts: dict[datetime, str] = {}

    def when(at: datetime) -> str:  # the text form SQLAlchemy's SQLite DateTime reads back
        text = texts.get(at)
        if text is None:
            text = texts[at] = sqlite_timestamp(at)
        return text

    return [(e.stream, e.seq, e.type, when(e.at), dumps(e.body)) for e in stored]


def sqlite_timestamp(at: datetime) -> str:
    """Return ``at`` in the text form SQLAlchemy's ``DateTime`` stores on SQLite (UTC, naive, microseconds).

    >>> sqlite_timestamp(datetime(2024, 7, 1, 8, 30, tzinfo=UTC))
    '2024-07-01 08:30:00.000000'
    """
    utc = at.astimezone(UTC) if at.tzinfo is not None else at
    return utc.replace(tzinfo=None).isoformat(" ", "microseconds")


def append_many_sqlite(connection: sqlite3.Connection, events: Sequence[NewEvent]) -> list[Event]:
    """Return the stored events after appending them in ``connection``'s open transaction (synchronous).

    The same seqs and rows as :func:`append_many`, for a caller already in the thread of a raw
    ``sqlite3`` connection (its transaction holds SQLite's write lock, so the block is its own).
    Nothing is queued for the hub: pass the result to :func:`publish_committed` after the commit.
    """
    if not events:
        return []
    counts = _counts(events)
    streams = sorted(counts)
    last: dict[str, int] = {}
    for i in range(0, len(streams), 400):  # 2 variables a stream, far below SQLite's limit
        chunk = streams[i:i + 400]
        sql = (f"INSERT INTO {event_streams.name} (stream, last_seq) VALUES "
               + ", ".join(["(?, ?)"] * len(chunk))
               + " ON CONFLICT (stream) DO UPDATE SET last_seq = last_seq + excluded.last_seq"
               " RETURNING stream, last_seq")
        last.update(connection.execute(sql, [v for s in chunk for v in (s, counts[s])]).fetchall())
    stored = _numbered(events, counts, last)
    connection.executemany(f"INSERT INTO {event_log.name} (stream, seq, type, at, body) VALUES (?, ?, ?, ?, ?)",
                           _sqlite_rows(stored))
    return stored


def publish_committed(target: async_sessionmaker[AsyncSession], events: list[Event]) -> None:
    """Hand committed ``events`` to the hub bound to ``target`` by :func:`bind_hub` (nothing if none)."""
    info = target.kw.get("info") or {}
    hub: Hub | None = info.get(HUB_KEY)
    if events and hub is not None:
        hub.spawn(_publish(hub, events, info.get(STATS_KEY)))


async def read_since(session: AsyncSession, stream: str, since: int, limit: int = 1000) -> list[Event]:
    """Return up to ``limit`` events of ``stream`` with seq greater than ``since``, oldest first."""
    rows = await session.execute(
        select(event_log.c.stream, event_log.c.seq, event_log.c.type, event_log.c.at, event_log.c.body)
        .where(event_log.c.stream == stream, event_log.c.seq > since)
        .order_by(event_log.c.seq)
        .limit(limit)
    )
    return [
        Event(s, seq, type_, at if at.tzinfo is not None else at.replace(tzinfo=UTC), body)
        for s, seq, type_, at, body in rows
    ]


async def head(session: AsyncSession, stream: str) -> int:
    """Return the last committed seq of ``stream`` (0 for a stream with no events yet)."""
    last = await session.scalar(select(event_streams.c.last_seq).where(event_streams.c.stream == stream))
    return int(last or 0)


# --- publish after commit -------------------------------------------------------------------------


def bind_hub(
    target: async_sessionmaker[AsyncSession] | AsyncSession, hub: Hub, *, stats: StatsTicker | None = None
) -> None:
    """Make sessions from ``target`` (or the session itself) publish their appended events after commit.

    ``stats``, when given, has each committed event's stream marked dirty so a stats tick follows.
    """
    if isinstance(target, AsyncSession):
        target.info[HUB_KEY] = hub
        target.info[STATS_KEY] = stats
        return
    info = dict(target.kw.get("info") or {})
    info[HUB_KEY] = hub
    info[STATS_KEY] = stats
    target.configure(info=info)


def _queue(session: AsyncSession, events: list[Event]) -> None:
    sync = session.sync_session
    info = sync.info
    if not info.get(LISTENING_KEY):
        sa_event.listen(sync, "after_commit", _after_commit)
        sa_event.listen(sync, "after_soft_rollback", _after_soft_rollback)
        info[LISTENING_KEY] = True
    # Remember the innermost transaction so a rolled-back SAVEPOINT drops only its own events.
    transaction = sync.get_nested_transaction() or sync.get_transaction()
    info.setdefault(PENDING_KEY, []).append((transaction, events))


def _after_soft_rollback(session: Session, previous_transaction: SessionTransaction) -> None:
    pending = session.info.get(PENDING_KEY)
    if not pending:
        return
    if previous_transaction.parent is None:
        session.info.pop(PENDING_KEY, None)
        return

    def inside(transaction: SessionTransaction | None) -> bool:
        while transaction is not None:
            if transaction is previous_transaction:
                return True
            transaction = transaction.parent
        return False

    session.info[PENDING_KEY] = [(t, evs) for t, evs in pending if not inside(t)]


def _after_commit(session: Session) -> None:
    pending = session.info.pop(PENDING_KEY, None)
    hub: Hub | None = session.info.get(HUB_KEY)
    if not pending or hub is None:
        return
    events = [e for _, evs in pending for e in evs]
    stats: StatsTicker | None = session.info.get(STATS_KEY)
    hub.spawn(_publish(hub, events, stats))


async def _publish(hub: Hub, events: Iterable[Event], stats: StatsTicker | None) -> None:
    events = list(events)
    try:
        await hub.publish_many([(e.stream, e.to_message()) for e in events])
    except Exception:  # subscribers notice the gap on the next event or resync; the log has it all
        logger.exception("publishing %d committed events failed", len(events))
    if stats is not None:
        for stream in {e.stream for e in events}:
            stats.mark(stream)
