"""ORM models of an activation: the activation, its posts, dispatch orders and temporary branches."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint, text,
)
from sqlalchemy.orm import Mapped, mapped_column

from mobilize.db import Base, utcnow
from mobilize.orders import OPEN_STATES

__all__ = ["Activation", "ActivationLock", "Post", "Order", "Branch", "BranchMember", "SolveRecord", "Pin",
           "PhoneLinkRow", "IdempotencyRecord", "NoticeFanout", "OPEN_ORDER_STATES"]

#: Order states that hold a person: at most one such order per person (partial unique index).
OPEN_ORDER_STATES = OPEN_STATES  # the state machine decides which states hold a person
_OPEN_SQL = "status IN (" + ", ".join(f"'{s}'" for s in OPEN_STATES) + ")"


class Activation(Base):
    """One press of the key: a scope switched to wartime under a plan and level (real or drill 演练)."""

    __tablename__ = "activations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id", ondelete="RESTRICT"), index=True)
    hazard: Mapped[str] = mapped_column(String(32))
    level: Mapped[str] = mapped_column(String(4))
    is_drill: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="active", index=True)  # active | ended
    idempotency_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    request_hash: Mapped[str | None] = mapped_column(String(64))
    started_by: Mapped[str] = mapped_column(String(96))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_by: Mapped[str | None] = mapped_column(String(96))
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # the cost policy it was solved with (CostPolicy.as_dict); NULL on rows from before 0006: the defaults
    policy: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class ActivationLock(Base):
    """A community held by a running activation: the primary key refuses a second one (real and drill apart)."""

    __tablename__ = "activation_locks"

    community_id: Mapped[int] = mapped_column(ForeignKey("org_units.id", ondelete="CASCADE"), primary_key=True)
    mode: Mapped[str] = mapped_column(String(8), primary_key=True)  # real | drill
    activation_id: Mapped[int] = mapped_column(ForeignKey("activations.id", ondelete="CASCADE"), index=True)


class Post(Base):
    """A concrete post (岗位) of an activation: a plan's post at one place of one community."""

    __tablename__ = "posts"
    __table_args__ = (UniqueConstraint("activation_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    activation_id: Mapped[int] = mapped_column(ForeignKey("activations.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(160))
    community_id: Mapped[int] = mapped_column(ForeignKey("org_units.id", ondelete="RESTRICT"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    group: Mapped[str] = mapped_column(String(32))
    name_zh: Mapped[str] = mapped_column(String(128))
    name_en: Mapped[str] = mapped_column(String(128))
    site_code: Mapped[str | None] = mapped_column(String(64))
    site_name: Mapped[str] = mapped_column(String(128))
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    headcount: Mapped[int] = mapped_column(Integer)
    filled: Mapped[int] = mapped_column(Integer, default=0)
    skills_all: Mapped[list[str]] = mapped_column(JSON, default=list)
    skills_any: Mapped[list[str]] = mapped_column(JSON, default=list)
    leader_required: Mapped[bool] = mapped_column(Boolean, default=False)
    priority: Mapped[int] = mapped_column(Integer, default=3)
    shift_hours: Mapped[int] = mapped_column(Integer, default=12)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Order(Base):
    """A dispatch order (派单): one person, one post, one activation; every change is an event."""

    __tablename__ = "orders"
    __table_args__ = (
        Index("uq_orders_open_person", "person_id", unique=True,
              sqlite_where=text(_OPEN_SQL), postgresql_where=text(_OPEN_SQL)),
        Index("ix_orders_activation_status", "activation_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    activation_id: Mapped[int] = mapped_column(ForeignKey("activations.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="RESTRICT"), index=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="notified")
    leader_part: Mapped[bool] = mapped_column(Boolean, default=False)
    borrowed: Mapped[bool] = mapped_column(Boolean, default=False)
    travel_minutes: Mapped[int] = mapped_column(Integer, default=0)
    cost: Mapped[int] = mapped_column(Integer, default=0)
    # the cost parts as a list (a solve's orders; see writes.explanation_of) or a whole object (a move; older rows)
    explanation: Mapped[dict[str, Any] | list[int]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    closed_reason: Mapped[str | None] = mapped_column(String(64))
    # The lifecycle (mobilize.orders) and the escalation ladder (mobilize.escalation):
    ack_deadline_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    arrive_deadline_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    arrive_minutes: Mapped[int] = mapped_column(Integer, default=60)
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    en_route_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    arrived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    escalated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    escalation: Mapped[str | None] = mapped_column(String(8))
    escalation_step: Mapped[int] = mapped_column(Integer, default=0)
    note: Mapped[str | None] = mapped_column(String(200))
    # When the sweeper next has work for this order (a deadline or a ladder step); NULL: none.
    next_check_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)


class PhoneLinkRow(Base):
    """A personal phone link (个人链接): the token is stored only as its SHA-256 hash."""

    __tablename__ = "phone_links"
    # Also the index of lookups by person alone (its leading column): no second index for every insert to pay.
    __table_args__ = (UniqueConstraint("person_id", "activation_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    activation_id: Mapped[int] = mapped_column(ForeignKey("activations.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class NoticeFanout(Base):
    """New orders whose links and messages are still to be made (分批通知), in ``order_ids`` order.

    Written in the transaction that created the orders; the delivery worker works through it a chunk
    per transaction after the commit (:mod:`mobilize.activations.fanout`), ``done`` counting the orders
    handled so far, until ``finished_at`` is set.
    """

    __tablename__ = "notice_fanouts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    activation_id: Mapped[int] = mapped_column(ForeignKey("activations.id", ondelete="CASCADE"), index=True)
    order_ids: Mapped[list[int]] = mapped_column(JSON)
    done: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)


class IdempotencyRecord(Base):
    """The first answer to an acting request, replayed for any repeat with the same key."""

    __tablename__ = "idempotency_records"

    scope: Mapped[str] = mapped_column(String(96), primary_key=True)  # who acted: "link:<id>", "operator:<id>"
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Branch(Base):
    """A temporary party branch (临时党支部) of an activation; joint branches (联合) span groups."""

    __tablename__ = "branches"
    __table_args__ = (UniqueConstraint("activation_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    activation_id: Mapped[int] = mapped_column(ForeignKey("activations.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(96))
    community_id: Mapped[int] = mapped_column(ForeignKey("org_units.id", ondelete="RESTRICT"))
    groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    joint: Mapped[bool] = mapped_column(Boolean, default=False)
    secretary_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | closed | dissolved
    formed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class BranchMember(Base):
    """A party member of a temporary branch, with the party group (党小组) they sit in."""

    __tablename__ = "branch_members"

    branch_id: Mapped[int] = mapped_column(ForeignKey("branches.id", ondelete="CASCADE"), primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), primary_key=True)
    party_group: Mapped[str | None] = mapped_column(String(96))
    group_head: Mapped[bool] = mapped_column(Boolean, default=False)


class SolveRecord(Base):
    """The inputs of an activation's latest solve (gzip JSON), so its problem can be exported and checked."""

    __tablename__ = "solve_records"

    activation_id: Mapped[int] = mapped_column(ForeignKey("activations.id", ondelete="CASCADE"), primary_key=True)
    solved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    inputs: Mapped[bytes] = mapped_column(LargeBinary)


class Pin(Base):
    """A peacetime pre-assignment (平时编组到岗): a person pinned to a post of a hazard's plan."""

    __tablename__ = "pins"
    __table_args__ = (UniqueConstraint("person_id", "hazard"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    hazard: Mapped[str] = mapped_column(String(32))
    post_code: Mapped[str] = mapped_column(String(64))
    site_code: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
