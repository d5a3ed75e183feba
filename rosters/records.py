"""Plain records of a roster, as the importer reads them and the demo generator makes them.

They carry codes, not database ids, so a file, a generator and a test can all produce them; the
roster service (:mod:`rosters.service`) upserts them on their stable keys: a unit's ``code``, a
person's normalized ``phone`` and a team's ``code``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from rosters.vocabulary import Availability, MemberKind, PersonStatus, TeamKind, UnitLevel

__all__ = ["UnitRecord", "PersonRecord", "TeamRecord", "Roster"]


@dataclass(frozen=True, slots=True)
class UnitRecord:
    """One org unit (组织机构): city, district, street, community, grid or building."""

    code: str
    name: str
    level: UnitLevel
    parent_code: str | None
    lat: float | None = None
    lon: float | None = None


@dataclass(frozen=True, slots=True)
class PersonRecord:
    """One person (人员). ``phone`` is the stable key: 11 digits, mainland mobile, normalized."""

    phone: str
    name: str
    kind: MemberKind
    community_code: str
    peacetime_group: str
    wartime_group: str
    grid_code: str | None = None
    lat: float | None = None
    lon: float | None = None
    address: str | None = None
    work_unit: str | None = None
    party_member: bool = False
    group_leader: bool = False
    skills: tuple[str, ...] = ()
    availability: Availability = Availability.ANYTIME
    status: PersonStatus = PersonStatus.AVAILABLE
    leave_until: date | None = None
    team_code: str | None = None


@dataclass(frozen=True, slots=True)
class TeamRecord:
    """One team (队伍): a volunteer team or a commando squad, led by one of its members."""

    code: str
    name: str
    kind: TeamKind
    community_code: str
    leader_phone: str


@dataclass(slots=True)
class Roster:
    """A whole roster: units, people and teams (any of them may be empty)."""

    units: list[UnitRecord] = field(default_factory=list)
    people: list[PersonRecord] = field(default_factory=list)
    teams: list[TeamRecord] = field(default_factory=list)
