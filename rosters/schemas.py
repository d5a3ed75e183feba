"""API shapes of the roster: what a client sends (``*Create``/``*Update``) and gets (``*Read``)."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from rosters.phones import PhoneError, normalize_phone
from rosters.vocabulary import Availability, MemberKind, TeamKind, UnitLevel

__all__ = [
    "Page", "UnitRead", "UnitCreate", "UnitUpdate", "PersonRead", "PersonCreate", "PersonUpdate",
    "TeamRead", "TeamCreate", "TeamUpdate", "SettableStatus", "Readiness", "GroupReadiness",
]

T = TypeVar("T")


def _phone(value: str) -> str:
    try:
        return normalize_phone(value)
    except PhoneError as exc:
        raise ValueError(f"{exc.reason_zh} / {exc.reason_en}") from exc


Phone = Annotated[str, AfterValidator(_phone)]
Code = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-.]+$")]
Lat = Annotated[float, Field(ge=-90, le=90)]
Lon = Annotated[float, Field(ge=-180, le=180)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    page: int
    page_size: int


class UnitRead(BaseModel):
    id: int
    code: str
    name: str
    level: UnitLevel
    parent_code: str | None
    lat: float | None
    lon: float | None
    phase: str = Field(description="peacetime 平时 | wartime 战时 (communities)")


class UnitCreate(_In):
    code: Code
    name: str = Field(min_length=1, max_length=128)
    level: UnitLevel
    parent_code: Code | None = None
    lat: Lat | None = None
    lon: Lon | None = None


class UnitUpdate(_In):
    name: str | None = Field(default=None, min_length=1, max_length=128)
    lat: Lat | None = None
    lon: Lon | None = None


class SettableStatus(StrEnum):
    """The statuses an operator may set; ``deployed`` belongs to activations."""

    AVAILABLE = "available"
    ON_LEAVE = "on_leave"
    INACTIVE = "inactive"


class PersonRead(BaseModel):
    id: int
    name: str
    phone: str = Field(description="Masked (138****1234) for roles that do not phone people themselves")
    kind: MemberKind
    registry: str = Field(description="frontline 应急一线人员 | sunk_volunteers 下沉志愿者")
    community_code: str
    grid_code: str | None
    lat: float | None
    lon: float | None
    address: str | None = Field(description="Only for roles that cover addresses")
    work_unit: str | None
    party_member: bool
    group_leader: bool
    peacetime_group: str
    wartime_group: str
    skills: list[str]
    availability: Availability
    status: str
    leave_until: date | None
    team_code: str | None
    available_now: bool


class PersonCreate(_In):
    phone: Phone
    name: str = Field(min_length=1, max_length=64)
    kind: MemberKind
    community_code: Code
    peacetime_group: str
    wartime_group: str
    grid_code: Code | None = None
    lat: Lat | None = None
    lon: Lon | None = None
    address: str | None = Field(default=None, max_length=256)
    work_unit: str | None = Field(default=None, max_length=128)
    party_member: bool = False
    group_leader: bool = False
    skills: list[str] = Field(default_factory=list)
    availability: Availability = Availability.ANYTIME
    status: SettableStatus = SettableStatus.AVAILABLE
    leave_until: date | None = None
    team_code: Code | None = None


class PersonUpdate(_In):
    phone: Phone | None = None
    name: str | None = Field(default=None, min_length=1, max_length=64)
    kind: MemberKind | None = None
    community_code: Code | None = None
    peacetime_group: str | None = None
    wartime_group: str | None = None
    grid_code: Code | None = None
    lat: Lat | None = None
    lon: Lon | None = None
    address: str | None = Field(default=None, max_length=256)
    work_unit: str | None = Field(default=None, max_length=128)
    party_member: bool | None = None
    group_leader: bool | None = None
    skills: list[str] | None = None
    availability: Availability | None = None
    status: SettableStatus | None = None
    leave_until: date | None = None
    team_code: Code | None = None


class TeamRead(BaseModel):
    id: int
    code: str
    name: str
    kind: TeamKind
    community_code: str
    leader_id: int | None
    leader_name: str | None
    member_count: int


class TeamCreate(_In):
    code: Code
    name: str = Field(min_length=1, max_length=128)
    kind: TeamKind
    community_code: Code
    leader_phone: Phone


class TeamUpdate(_In):
    name: str | None = Field(default=None, min_length=1, max_length=128)
    kind: TeamKind | None = None
    leader_phone: Phone | None = None


class GroupReadiness(BaseModel):
    code: str
    name_zh: str
    name_en: str
    phase: str
    people: int
    available: int
    party_members: int
    leaders: int


class Readiness(BaseModel):
    """Readiness (战备状态) of a unit's subtree: people, groups, leaders and skills on hand."""

    unit: UnitRead
    communities: int
    people: int
    available: int
    unavailable: int
    deployed: int
    party_members: int
    by_kind: dict[str, int]
    teams: dict[str, int]
    peacetime_groups: list[GroupReadiness]
    wartime_groups: list[GroupReadiness]
    skills_available: dict[str, int]
    groups_without_leader: int = Field(description="wartime groups of communities with no designated leader")
    as_of: str
