"""ORM model of the notification outbox: one row per message to one person over one channel.

The row is written in the same transaction as the change it announces (an order, a reassignment,
the end of an activation), so a change is never committed without its message nor a message sent
for a change that rolled back. The delivery worker claims due rows with a lease, sends them, and
marks them ``sent``, or schedules a retry, or gives up as ``failed`` (for an operator to see).

Personal data: ``payload`` holds the template's variables only; the phone number is looked up when
the message is sent and never stored here. The personal link (a credential) stays in ``payload``
only until the message is sent or has failed, then it is erased.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from mobilize.db import Base, utcnow

__all__ = ["STATUSES", "OutboxMessage"]

#: pending: waiting for its next attempt; sending: claimed by a worker until ``claimed_until``;
#: sent: delivered to the channel; failed: gave up (permanent error or too many attempts).
STATUSES = ("pending", "sending", "sent", "failed")


class OutboxMessage(Base):
    """A notification waiting to be, or already, delivered (发送队列)."""

    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'sending', 'sent', 'failed')", name="status"),
        # The worker's claim: pending rows by due time (and expired 'sending' leases, few by nature).
        Index("ix_outbox_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(16))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    activation_id: Mapped[int | None] = mapped_column(ForeignKey("activations.id", ondelete="CASCADE"), index=True)
    order_id: Mapped[int | None] = mapped_column(Integer)
    #: Same notification enqueued twice is stored once (``order:17:notified``, ``order:17:reminder:1``).
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
