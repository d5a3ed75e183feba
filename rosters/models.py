"""ORM models of the roster: the org tree, people, their skills, teams and work groups.

Relationships are ``lazy="raise"``: every query says what it loads.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mobilize.db import Base, utcnow

__all__ = ["OrgUnit", "Person", "PersonSkill", "Place", "Team", "WorkGroup"]


class OrgUnit(Base):
    """A unit of the org tree (组织机构): city, district, street, community, grid or building.

    ``path`` is the materialized path of ids (``/1/5/23/``): a subtree is ``path LIKE '/1/5/%'``,
    one indexed range scan, however deep the tree.
    """

    __tablename__ = "org_units"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    level: Mapped[str] = mapped_column(String(16), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id", ondelete="RESTRICT"), index=True)
    path: Mapped[str] = mapped_column(String(512), index=True)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    phase: Mapped[str] = mapped_column(String(16), default="peacetime")  # communities: peacetime | wartime
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class Person(Base):
    """A person of the two registers (应急一线人员 / 下沉志愿者); ``phone`` is the stable key."""

    __tablename__ = "people"
    __table_args__ = (
        Index("ix_people_community_wartime_group", "community_id", "wartime_group"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    phone: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32), index=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("org_units.id", ondelete="RESTRICT"), index=True)
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id", ondelete="SET NULL"))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    address: Mapped[str | None] = mapped_column(String(256))
    work_unit: Mapped[str | None] = mapped_column(String(128))
    party_member: Mapped[bool] = mapped_column(Boolean, default=False)
    group_leader: Mapped[bool] = mapped_column(Boolean, default=False)
    peacetime_group: Mapped[str] = mapped_column(String(32))
    wartime_group: Mapped[str] = mapped_column(String(32))
    availability: Mapped[str] = mapped_column(String(16), default="anytime")
    # Not indexed (migration 0009): most people share a status, lists filter by community first, and an
    # activation sets the status of tens of thousands at once.
    status: Mapped[str] = mapped_column(String(16), default="available")
    leave_until: Mapped[date | None] = mapped_column(Date)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    skills: Mapped[list[PersonSkill]] = relationship(
        lazy="raise", cascade="all, delete-orphan", order_by="PersonSkill.skill"
    )


class PersonSkill(Base):
    """One skill or certificate (技能/证书) a person holds, by vocabulary code."""

    __tablename__ = "person_skills"

    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), primary_key=True)
    skill: Mapped[str] = mapped_column(String(32), primary_key=True, index=True)


class Team(Base):
    """A volunteer team (志愿服务队) or commando squad (党员突击队) of one community."""

    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(32))
    community_id: Mapped[int] = mapped_column(ForeignKey("org_units.id", ondelete="RESTRICT"), index=True)
    leader_id: Mapped[int | None] = mapped_column(
        ForeignKey("people.id", ondelete="SET NULL", use_alter=True, name="fk_teams_leader_id_people")
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class WorkGroup(Base):
    """A community's instance of a template work group (4 peacetime, 7 wartime per community)."""

    __tablename__ = "work_groups"
    __table_args__ = (UniqueConstraint("community_id", "code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("org_units.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(32))
    phase: Mapped[str] = mapped_column(String(16))
    name_zh: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[str] = mapped_column(String(64))


class Place(Base):
    """A named place of a community where posts stand (卡口 gate, 安置点 shelter, 仓库 warehouse, …)."""

    __tablename__ = "places"
    __table_args__ = (UniqueConstraint("community_id", "code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("org_units.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(128))
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
