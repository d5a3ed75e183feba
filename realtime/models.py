"""The event log's tables and the plain records that travel: ``Event`` (a stored fact) and ``NewEvent``.

Tables live on realtime's own ``metadata`` so the app's Alembic migration can include them without
realtime importing anything of the app.

- ``event_streams``: one row per stream (``activation:12``, ``unit:330102001001``, ``person:4711``)
  holding the last sequence number handed out. Allocation is an upsert on this row, which takes the
  row's lock until commit: appends to one stream serialize, a rolled-back append gives its numbers
  back, so a stream's seqs are gapless and strictly increasing.
- ``event_log``: one row per (stream, seq) with the event type, time and a small JSON body
  (ids and counts only, never personal data).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, DateTime, MetaData, String, Table

__all__ = ["Event", "NewEvent", "event_log", "event_streams", "metadata"]

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)

STREAM_LENGTH = 128
TYPE_LENGTH = 64

event_streams = Table(
    "event_streams",
    metadata,
    Column("stream", String(STREAM_LENGTH), primary_key=True),
    Column("last_seq", BigInteger, nullable=False),
)

event_log = Table(
    "event_log",
    metadata,
    Column("stream", String(STREAM_LENGTH), primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("type", String(TYPE_LENGTH), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("body", JSON, nullable=False),
)


@dataclass(frozen=True, slots=True)
class NewEvent:
    """A fact to append: the stream it belongs to, its type and a small JSON body; ``at`` defaults to now."""

    stream: str
    type: str
    body: dict[str, Any] = field(default_factory=dict)
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """A stored fact with its place in the stream."""

    stream: str
    seq: int
    type: str
    at: datetime
    body: dict[str, Any]

    def to_message(self) -> dict[str, Any]:
        """Return the wire shape ``{"type": "event", "stream", "seq", "event", "at", "body"}``."""
        at = self.at if self.at.tzinfo is not None else self.at.replace(tzinfo=UTC)
        return {
            "type": "event",
            "stream": self.stream,
            "seq": self.seq,
            "event": self.type,
            "at": at.isoformat(),
            "body": self.body,
        }
