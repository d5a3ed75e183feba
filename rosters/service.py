"""Roster reads and writes, always within the caller's subtree.

Anything outside the operator's scope is reported as not found (404), never as forbidden, so a
community commander of A cannot even learn that B's people exist. Writes go through
:func:`rosters.loader.load_roster`, the one write path shared with file imports.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, and_, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from mobilize.access import Principal, mask_name, mask_phone
from mobilize.errors import Conflict, Forbidden, InvalidInput, NotFound, Problem
from rosters.availability import is_available, patterns_open_at
from rosters.loader import load_roster
from rosters.models import OrgUnit, Person, PersonSkill, Team
from rosters.records import PersonRecord, Roster, TeamRecord, UnitRecord
from rosters.schemas import (
    Page, PersonCreate, PersonRead, PersonUpdate, TeamCreate, TeamRead, TeamUpdate, UnitCreate, UnitRead,
    UnitUpdate,
)
from rosters.vocabulary import PersonStatus, SkillVocabulary, UnitLevel, WorkGroupTemplate

__all__ = [
    "unit_by_code", "list_units", "unit_read", "create_unit", "update_unit",
    "list_people", "get_person", "create_person", "update_person",
    "list_teams", "get_team", "create_team", "update_team", "available_clause",
]

Community = aliased(OrgUnit, name="community")
Grid = aliased(OrgUnit, name="grid")
Parent = aliased(OrgUnit, name="parent")


def _scope(principal: Principal, path_col) -> ColumnElement[bool]:
    return path_col.startswith(principal.scope_path) if principal.scope_path else path_col.is_not(None)


async def unit_by_code(session: AsyncSession, principal: Principal, code: str) -> OrgUnit:
    """Return the unit ``code`` if the operator's subtree covers it; 404 otherwise."""
    unit = (await session.execute(select(OrgUnit).where(OrgUnit.code == code))).scalar_one_or_none()
    if unit is None or not principal.covers(unit.path):
        raise NotFound("未找到该单位", f"No unit with code {code}")
    return unit


def unit_read(unit: OrgUnit, parent_code: str | None) -> UnitRead:
    return UnitRead(id=unit.id, code=unit.code, name=unit.name, level=UnitLevel(unit.level),
                    parent_code=parent_code, lat=unit.lat, lon=unit.lon, phase=unit.phase)


async def list_units(session: AsyncSession, principal: Principal, *, parent_code: str | None = None,
                     level: UnitLevel | None = None, q: str | None = None, page: int = 1,
                     page_size: int = 100) -> Page[UnitRead]:
    """Return one page of the units in the operator's subtree, filtered."""
    stmt = select(OrgUnit, Parent.code).outerjoin(Parent, Parent.id == OrgUnit.parent_id).where(
        _scope(principal, OrgUnit.path))
    if parent_code:
        parent = await unit_by_code(session, principal, parent_code)
        stmt = stmt.where(OrgUnit.parent_id == parent.id)
    if level:
        stmt = stmt.where(OrgUnit.level == level.value)
    if q:
        stmt = stmt.where(or_(OrgUnit.name.contains(q), OrgUnit.code.startswith(q)))
    total = (await session.execute(select(func.count()).select_from(stmt.subquery()))).scalar_one()
    rows = await session.execute(stmt.order_by(OrgUnit.code).limit(page_size).offset((page - 1) * page_size))
    return Page(items=[unit_read(u, pc) for u, pc in rows], total=total, page=page, page_size=page_size)


async def unit_with_parent(session: AsyncSession, unit_id: int) -> UnitRead:
    unit, parent_code = (await session.execute(
        select(OrgUnit, Parent.code).outerjoin(Parent, Parent.id == OrgUnit.parent_id).where(OrgUnit.id == unit_id)
    )).one()
    return unit_read(unit, parent_code)


async def create_unit(session: AsyncSession, principal: Principal, data: UnitCreate, *,
                      workgroups: WorkGroupTemplate) -> UnitRead:
    """Return the new unit; 409 if the code is taken."""
    if (await session.execute(select(OrgUnit.id).where(OrgUnit.code == data.code))).first():
        raise Conflict("单位编码已存在", f"Unit code {data.code} already exists",
                       [Problem("编码已被使用", "code already in use", field="code", value=data.code)])
    if data.parent_code:
        await unit_by_code(session, principal, data.parent_code)
    record = UnitRecord(data.code, data.name, data.level, data.parent_code, data.lat, data.lon)
    await load_roster(session, Roster(units=[record]), workgroups=workgroups, principal=principal)
    unit = await unit_by_code(session, principal, data.code)
    return await unit_with_parent(session, unit.id)


async def update_unit(session: AsyncSession, principal: Principal, code: str, data: UnitUpdate) -> UnitRead:
    """Return the unit after changing its name or location."""
    unit = await unit_by_code(session, principal, code)
    if not principal.can_write_rosters:
        raise Forbidden("当前角色不能修改组织架构", "Your role may not change the org tree")
    for key, value in data.model_dump(exclude_unset=True).items():
        if value is None and key == "name":
            raise InvalidInput("请求内容有误", "The request is invalid", [Problem("名称不能为空", "name may not be empty", field="name")])
        setattr(unit, key, value)
    await session.flush()
    return await unit_with_parent(session, unit.id)


def available_clause(at: datetime) -> ColumnElement[bool]:
    """Return the SQL condition "can be dispatched at ``at``" (same rule as :func:`is_available`)."""
    today = at.date()
    return and_(
        or_(Person.status == PersonStatus.AVAILABLE.value,
            and_(Person.status == PersonStatus.ON_LEAVE.value, Person.leave_until.is_not(None))),
        or_(Person.leave_until.is_(None), Person.leave_until < today),
        Person.availability.in_(sorted(patterns_open_at(at))),
    )


def _person_read(person: Person, community_code: str, grid_code: str | None, team_code: str | None,
                 skills: list[str], principal: Principal, at: datetime, *, detail: bool) -> PersonRead:
    full_phone = principal.sees_full_phone if detail else principal.sees_full_phone_in_lists
    return PersonRead(
        id=person.id,
        name=person.name if principal.sees_names else mask_name(person.name),
        phone=person.phone if full_phone else mask_phone(person.phone),
        kind=person.kind, registry=_register(person.kind), community_code=community_code, grid_code=grid_code,
        lat=person.lat, lon=person.lon, address=person.address if principal.sees_addresses else None,
        work_unit=person.work_unit, party_member=person.party_member, group_leader=person.group_leader,
        peacetime_group=person.peacetime_group, wartime_group=person.wartime_group, skills=skills,
        availability=person.availability, status=person.status, leave_until=person.leave_until,
        team_code=team_code,
        available_now=is_available(person.status, person.leave_until, person.availability, at),
    )


def _register(kind: str) -> str:
    from rosters.vocabulary import MemberKind

    return MemberKind(kind).register.value


def _people_select():
    return (
        select(Person, Community.code, Grid.code, Team.code)
        .join(Community, Community.id == Person.community_id)
        .outerjoin(Grid, Grid.id == Person.grid_id)
        .outerjoin(Team, Team.id == Person.team_id)
    )


async def _skills_of(session: AsyncSession, ids: list[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {i: [] for i in ids}
    if ids:
        rows = await session.execute(
            select(PersonSkill.person_id, PersonSkill.skill).where(PersonSkill.person_id.in_(ids))
            .order_by(PersonSkill.skill))
        for pid, skill in rows:
            out[pid].append(skill)
    return out


async def list_people(
    session: AsyncSession, principal: Principal, *, at: datetime, unit_code: str | None = None,
    kind: str | None = None, skill: str | None = None, group: str | None = None, party: bool | None = None,
    available: bool | None = None, team_code: str | None = None, q: str | None = None, page: int = 1,
    page_size: int = 50,
) -> Page[PersonRead]:
    """Return one page of people in the operator's subtree, filtered; phones masked per role."""
    stmt = _people_select().where(_scope(principal, Community.path))
    if unit_code:
        unit = await unit_by_code(session, principal, unit_code)
        if unit.level in (UnitLevel.GRID.value, UnitLevel.BUILDING.value):
            stmt = stmt.where(Person.grid_id == unit.id)
        else:
            stmt = stmt.where(Community.path.startswith(unit.path))
    if kind:
        stmt = stmt.where(Person.kind == kind)
    if skill:
        stmt = stmt.where(exists().where(PersonSkill.person_id == Person.id, PersonSkill.skill == skill))
    if group:
        stmt = stmt.where(or_(Person.wartime_group == group, Person.peacetime_group == group))
    if party is not None:
        stmt = stmt.where(Person.party_member.is_(party))
    if available is not None:
        clause = available_clause(at)
        stmt = stmt.where(clause if available else ~clause)
    if team_code:
        stmt = stmt.where(Team.code == team_code)
    if q:
        cond = Person.name.contains(q)
        if principal.sees_full_phone_in_lists:
            cond = or_(cond, Person.phone.contains(q))
        stmt = stmt.where(cond)
    total = (await session.execute(select(func.count()).select_from(stmt.subquery()))).scalar_one()
    rows = (await session.execute(stmt.order_by(Person.id).limit(page_size).offset((page - 1) * page_size))).all()
    skills = await _skills_of(session, [r[0].id for r in rows])
    items = [_person_read(p, cc, gc, tc, skills[p.id], principal, at, detail=False) for p, cc, gc, tc in rows]
    return Page(items=items, total=total, page=page, page_size=page_size)


async def get_person(session: AsyncSession, principal: Principal, person_id: int, *, at: datetime) -> PersonRead:
    """Return one person of the operator's subtree; 404 otherwise."""
    row = (await session.execute(_people_select().where(Person.id == person_id).add_columns(Community.path))).first()
    if row is None or not principal.covers(row[4]):
        raise NotFound("未找到此人", f"No person with id {person_id}")
    person, cc, gc, tc, _path = row
    skills = await _skills_of(session, [person.id])
    return _person_read(person, cc, gc, tc, skills[person.id], principal, at, detail=True)


def _resolve_words(data: dict, skills: SkillVocabulary, workgroups: WorkGroupTemplate) -> dict:
    problems = []
    if "skills" in data and data["skills"] is not None:
        codes = []
        for i, word in enumerate(data["skills"]):
            code = skills.resolve(word)
            if code is None:
                problems.append(Problem(f"未知技能「{word}」", f"unknown skill '{word}'", field=f"skills[{i}]", value=word))
            else:
                codes.append(code)
        data["skills"] = tuple(sorted(set(codes)))
    for phase, key in (("peacetime", "peacetime_group"), ("wartime", "wartime_group")):
        if data.get(key) is not None:
            code = workgroups.resolve(phase, data[key])
            if code is None:
                zh = "平时" if phase == "peacetime" else "战时"
                problems.append(Problem(f"未知{zh}工作组「{data[key]}」", f"unknown {phase} work group '{data[key]}'",
                                        field=key, value=data[key]))
            data[key] = code
    if problems:
        raise InvalidInput("请求内容有误", "The request is invalid", problems)
    return data


async def create_person(session: AsyncSession, principal: Principal, data: PersonCreate, *, at: datetime,
                        skills: SkillVocabulary, workgroups: WorkGroupTemplate) -> PersonRead:
    """Return the new person; 409 if the phone is already registered."""
    await unit_by_code(session, principal, data.community_code)
    if (await session.execute(select(Person.id).where(Person.phone == data.phone))).first():
        raise Conflict("该手机号已登记", "This phone number is already registered",
                       [Problem("手机号重复", "duplicate phone", field="phone", value=mask_phone(data.phone))])
    values = _resolve_words(data.model_dump(), skills, workgroups)
    record = PersonRecord(**values)
    await load_roster(session, Roster(people=[record]), workgroups=workgroups, principal=principal)
    person_id = (await session.execute(select(Person.id).where(Person.phone == data.phone))).scalar_one()
    return await get_person(session, principal, person_id, at=at)


async def _record_of(session: AsyncSession, person_id: int) -> PersonRecord:
    person, cc, gc, tc = (await session.execute(_people_select().where(Person.id == person_id))).one()
    skills = (await _skills_of(session, [person_id]))[person_id]
    return PersonRecord(
        phone=person.phone, name=person.name, kind=person.kind, community_code=cc,
        peacetime_group=person.peacetime_group, wartime_group=person.wartime_group, grid_code=gc,
        lat=person.lat, lon=person.lon, address=person.address, work_unit=person.work_unit,
        party_member=person.party_member, group_leader=person.group_leader, skills=tuple(skills),
        availability=person.availability, status=person.status, leave_until=person.leave_until, team_code=tc,
    )


async def update_person(session: AsyncSession, principal: Principal, person_id: int, data: PersonUpdate, *,
                        at: datetime, skills: SkillVocabulary, workgroups: WorkGroupTemplate) -> PersonRead:
    """Return the person after applying the fields that were sent."""
    await get_person(session, principal, person_id, at=at)
    changes = _resolve_words(data.model_dump(exclude_unset=True), skills, workgroups)
    for key in ("name", "kind", "community_code", "peacetime_group", "wartime_group", "party_member",
                "group_leader", "availability", "status"):
        if key in changes and changes[key] is None:
            raise InvalidInput("请求内容有误", "The request is invalid",
                               [Problem("此字段不能为空", "this field may not be empty", field=key)])
    current = await _record_of(session, person_id)
    new_phone = changes.pop("phone", None)
    if new_phone and new_phone != current.phone:
        if (await session.execute(select(Person.id).where(Person.phone == new_phone))).first():
            raise Conflict("该手机号已登记", "This phone number is already registered",
                           [Problem("手机号重复", "duplicate phone", field="phone", value=mask_phone(new_phone))])
        await session.execute(Person.__table__.update().where(Person.id == person_id).values(phone=new_phone))
        current = PersonRecord(**{**_fields(current), "phone": new_phone})
    record = PersonRecord(**{**_fields(current), **changes})
    if "community_code" in changes and changes["community_code"] != current.community_code:
        await unit_by_code(session, principal, changes["community_code"])
        if "grid_code" not in changes:
            record = PersonRecord(**{**_fields(record), "grid_code": None})
    await load_roster(session, Roster(people=[record]), workgroups=workgroups, principal=principal)
    return await get_person(session, principal, person_id, at=at)


def _fields(record) -> dict:
    return {name: getattr(record, name) for name in record.__slots__}


async def _team_read(session: AsyncSession, team_id: int) -> TeamRead:
    leader = aliased(Person)
    team, cc, leader_name = (await session.execute(
        select(Team, Community.code, leader.name).join(Community, Community.id == Team.community_id)
        .outerjoin(leader, leader.id == Team.leader_id).where(Team.id == team_id))).one()
    members = (await session.execute(select(func.count()).where(Person.team_id == team_id))).scalar_one()
    return TeamRead(id=team.id, code=team.code, name=team.name, kind=team.kind, community_code=cc,
                    leader_id=team.leader_id, leader_name=leader_name, member_count=members)


async def list_teams(session: AsyncSession, principal: Principal, *, unit_code: str | None = None,
                     kind: str | None = None, page: int = 1, page_size: int = 100) -> Page[TeamRead]:
    """Return one page of teams in the operator's subtree."""
    leader = aliased(Person)
    members = select(Person.team_id, func.count().label("n")).group_by(Person.team_id).subquery()
    stmt = (select(Team, Community.code, leader.name, func.coalesce(members.c.n, 0))
            .join(Community, Community.id == Team.community_id)
            .outerjoin(leader, leader.id == Team.leader_id)
            .outerjoin(members, members.c.team_id == Team.id)
            .where(_scope(principal, Community.path)))
    if unit_code:
        unit = await unit_by_code(session, principal, unit_code)
        stmt = stmt.where(Community.path.startswith(unit.path))
    if kind:
        stmt = stmt.where(Team.kind == kind)
    total = (await session.execute(select(func.count()).select_from(stmt.subquery()))).scalar_one()
    rows = await session.execute(stmt.order_by(Team.code).limit(page_size).offset((page - 1) * page_size))
    items = [TeamRead(id=t.id, code=t.code, name=t.name, kind=t.kind, community_code=cc, leader_id=t.leader_id,
                      leader_name=ln if principal.sees_names else mask_name(ln), member_count=n)
             for t, cc, ln, n in rows]
    return Page(items=items, total=total, page=page, page_size=page_size)


async def get_team(session: AsyncSession, principal: Principal, code: str) -> TeamRead:
    """Return a team of the operator's subtree; 404 otherwise."""
    row = (await session.execute(select(Team.id, Community.path).join(Community, Community.id == Team.community_id)
                                 .where(Team.code == code))).first()
    if row is None or not principal.covers(row[1]):
        raise NotFound("未找到该队伍", f"No team with code {code}")
    read = await _team_read(session, row[0])
    if not principal.sees_names:
        read.leader_name = mask_name(read.leader_name)
    return read


async def create_team(session: AsyncSession, principal: Principal, data: TeamCreate, *,
                      workgroups: WorkGroupTemplate) -> TeamRead:
    """Return the new team; its leader must already be in the community's roster."""
    await unit_by_code(session, principal, data.community_code)
    if (await session.execute(select(Team.id).where(Team.code == data.code))).first():
        raise Conflict("队伍编码已存在", f"Team code {data.code} already exists",
                       [Problem("编码已被使用", "code already in use", field="code", value=data.code)])
    leader = await _leader_record(session, principal, data.leader_phone, data.code)
    team = TeamRecord(data.code, data.name, data.kind, data.community_code, data.leader_phone)
    await load_roster(session, Roster(teams=[team], people=[leader]), workgroups=workgroups, principal=principal)
    return await get_team(session, principal, data.code)


async def _leader_record(session, principal, phone: str, team_code: str) -> PersonRecord:
    row = (await session.execute(select(Person.id, Community.path).join(Community, Community.id == Person.community_id)
                                 .where(Person.phone == phone))).first()
    if row is None or not principal.covers(row[1]):
        raise InvalidInput("队长不在花名册中", "The leader is not in the roster",
                           [Problem("请先登记队长本人", "register the leader as a person first", field="leader_phone",
                                    value=mask_phone(phone))])
    record = await _record_of(session, row[0])
    # A new leader joins the team they lead.
    return PersonRecord(**{**_fields(record), "team_code": team_code})


async def update_team(session: AsyncSession, principal: Principal, code: str, data: TeamUpdate, *,
                      workgroups: WorkGroupTemplate) -> TeamRead:
    """Return the team after renaming it, changing its kind or its leader."""
    current = await get_team(session, principal, code)
    if not principal.can_write_rosters:
        raise Forbidden("当前角色不能修改花名册", "Your role may not change rosters")
    changes = data.model_dump(exclude_unset=True)
    for key in ("name", "kind"):
        if key in changes and changes[key] is None:
            raise InvalidInput("请求内容有误", "The request is invalid",
                               [Problem("此字段不能为空", "this field may not be empty", field=key)])
    people = []
    leader_phone = changes.get("leader_phone")
    if leader_phone is None:
        leader_phone = (await session.execute(select(Person.phone).where(Person.id == current.leader_id))).scalar_one_or_none()
    else:
        people.append(await _leader_record(session, principal, leader_phone, code))
    if leader_phone is None:
        raise InvalidInput("请求内容有误", "The request is invalid",
                           [Problem("队伍须有队长", "a team needs a leader", field="leader_phone")])
    team = TeamRecord(code, changes.get("name") or current.name, changes.get("kind") or current.kind,
                      current.community_code, leader_phone)
    await load_roster(session, Roster(teams=[team], people=people), workgroups=workgroups, principal=principal)
    return await get_team(session, principal, code)


