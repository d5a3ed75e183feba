"""Upsert a :class:`~rosters.records.Roster` into the database: all or nothing, idempotent.

Records are matched on their stable keys (unit ``code``, person ``phone``, team ``code``); a record
equal to what is stored writes nothing, so importing the same file twice changes nothing. Bulk
statements (Core ``executemany``) keep a city of 44,000 people within seconds. The caller's
transaction decides: on any :class:`~mobilize.errors.InvalidInput` nothing is written.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mobilize.access import Principal, mask_phone
from mobilize.db import utcnow
from mobilize.errors import Forbidden, InvalidInput, Problem
from rosters.importer import PARENT_LEVELS
from rosters.models import OrgUnit, Person, PersonSkill, Team, WorkGroup
from rosters.records import PersonRecord, Roster, TeamRecord, UnitRecord
from rosters.vocabulary import PersonStatus, UnitLevel, WorkGroupTemplate

__all__ = ["LoadReport", "load_roster", "known_units"]

_CHUNK = 5000

@dataclass
class LoadReport:
    """What a load did (or, in a dry run, would do), per table."""

    created: dict[str, int] = field(default_factory=lambda: {"units": 0, "people": 0, "teams": 0})
    updated: dict[str, int] = field(default_factory=lambda: {"units": 0, "people": 0, "teams": 0})
    unchanged: dict[str, int] = field(default_factory=lambda: {"units": 0, "people": 0, "teams": 0})
    dry_run: bool = False

    @property
    def changed(self) -> int:
        return sum(self.created.values()) + sum(self.updated.values())

    def as_dict(self) -> dict:
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged,
                "dry_run": self.dry_run}


async def known_units(session: AsyncSession) -> dict[str, tuple[UnitLevel, str | None]]:
    """Return every stored unit as ``code -> (level, parent code)`` (what the importer checks against)."""
    parent = OrgUnit.__table__.alias("parent")
    rows = await session.execute(
        select(OrgUnit.code, OrgUnit.level, parent.c.code).outerjoin(parent, parent.c.id == OrgUnit.parent_id)
    )
    return {code: (UnitLevel(level), parent_code) for code, level, parent_code in rows}


def _chunks(items: list, size: int = _CHUNK):
    for i in range(0, len(items), size):
        yield items[i : i + size]


async def load_roster(
    session: AsyncSession,
    roster: Roster,
    *,
    workgroups: WorkGroupTemplate,
    principal: Principal | None = None,
) -> LoadReport:
    """Return what loading ``roster`` changed; raise :class:`InvalidInput` (nothing written) on a conflict.

    ``principal`` limits the load to an operator's subtree; ``None`` is the local command line.
    """
    if principal is not None and not principal.can_write_rosters:
        raise Forbidden("当前角色不能修改花名册", "Your role may not change rosters")
    report = LoadReport()
    problems: list[Problem] = []
    units = {
        row.code: row
        for row in (await session.execute(select(OrgUnit.__table__))).all()
    }
    units_by_id = {row.id: row for row in units.values()}

    await _load_units(session, roster.units, units, units_by_id, report, problems, principal, workgroups)
    if problems:
        raise InvalidInput("花名册与已有数据冲突，未导入任何内容", "The roster conflicts with stored data; nothing was imported", problems)
    if roster.units:
        units = {row.code: row for row in (await session.execute(select(OrgUnit.__table__))).all()}

    team_ids = await _load_teams(session, roster.teams, units, report, problems, principal)
    await _load_people(session, roster.people, units, team_ids, report, problems, principal)
    await _set_team_leaders(session, roster.teams, team_ids, problems)
    if problems:
        raise InvalidInput("花名册与已有数据冲突，未导入任何内容", "The roster conflicts with stored data; nothing was imported", problems)
    await session.flush()
    return report


async def _load_units(session, records: list[UnitRecord], units, units_by_id, report, problems, principal,
                      workgroups: WorkGroupTemplate) -> None:
    by_level = sorted(records, key=lambda r: UnitLevel(r.level).depth)
    new_communities: list[str] = []
    pending: dict[str, UnitRecord] = {}  # new units, inserted level by level below
    for rec in by_level:
        where = {"field": f"units[{rec.code}]"}
        level = UnitLevel(rec.level)
        existing = units.get(rec.code)
        parent = units.get(rec.parent_code) if rec.parent_code else None
        if parent is None and rec.parent_code in pending:
            parent = _PendingUnit(pending[rec.parent_code])
        if rec.parent_code and parent is None:
            problems.append(Problem(f"上级编码 {rec.parent_code} 不存在", f"parent code {rec.parent_code} does not exist", **where))
            continue
        if parent is not None and UnitLevel(parent.level) not in PARENT_LEVELS[level]:
            problems.append(Problem(f"{rec.code} 的上级 {parent.code} 层级不对", f"the parent {parent.code} of {rec.code} is at the wrong level ({parent.level})", **where))
            continue
        if parent is None and level is not UnitLevel.CITY:
            problems.append(Problem("只有市级单位可以没有上级", "only a city may have no parent", **where))
            continue
        if principal is not None and not isinstance(parent, _PendingUnit):
            anchor = existing.path if existing is not None else (parent.path if parent is not None else "/")
            if not principal.covers(anchor) or (existing is None and parent is None and not principal.is_admin):
                problems.append(Problem(f"{rec.code} 不在您的管辖范围内", f"{rec.code} is outside your scope", **where))
                continue
        if existing is not None:
            if existing.level != level.value:
                problems.append(Problem(f"{rec.code} 已存在且层级为 {existing.level}，不能改为 {level.value}",
                                         f"{rec.code} exists at level {existing.level}; it cannot become {level.value}", **where))
                continue
            new_parent_id = parent.id if parent is not None else None
            same = (existing.name, existing.lat, existing.lon, existing.parent_id) == (rec.name, rec.lat, rec.lon, new_parent_id)
            if same:
                report.unchanged["units"] += 1
                continue
            values = {"name": rec.name, "lat": rec.lat, "lon": rec.lon}
            if isinstance(parent, _PendingUnit):
                problems.append(Problem("不能在同一次导入中把已有单位移到新单位下，请分两次导入",
                                         "an existing unit cannot move under a unit created in the same import; "
                                         "import the new unit first", **where))
                continue
            if new_parent_id != existing.parent_id:
                if f"/{existing.id}/" in (parent.path if parent is not None else ""):
                    problems.append(Problem("不能把单位移到自己的下级之下", "a unit cannot move under its own descendant", **where))
                    continue
                await _move_subtree(session, existing, parent)
                values["parent_id"] = new_parent_id
            await session.execute(update(OrgUnit).where(OrgUnit.id == existing.id).values(**values))
            report.updated["units"] += 1
        else:
            if rec.code in pending:
                continue
            pending[rec.code] = rec
            report.created["units"] += 1
            if level is UnitLevel.COMMUNITY:
                new_communities.append(rec.code)
    if pending and not problems:
        await _insert_units(session, list(pending.values()), units, units_by_id)
    if new_communities and not problems:
        rows = [
            {"community_id": units[code].id, "code": g.code, "phase": g.phase, "name_zh": g.zh, "name_en": g.en}
            for code in new_communities
            for g in workgroups.all
        ]
        for chunk in _chunks(rows):
            await session.execute(insert(WorkGroup.__table__), chunk)


class _PendingUnit:
    """A unit of this load not inserted yet: enough of a row to check its children against."""

    def __init__(self, rec: UnitRecord) -> None:
        self.code, self.level, self.id, self.path, self.parent_id = rec.code, UnitLevel(rec.level).value, None, None, None


async def _insert_units(session: AsyncSession, records: list[UnitRecord], units, units_by_id) -> None:
    """Insert new units a level at a time: one insert, one id lookup and one path update per level."""
    t = OrgUnit.__table__
    now = utcnow()
    for depth in sorted({UnitLevel(r.level).depth for r in records}):
        level_records = [r for r in records if UnitLevel(r.level).depth == depth]
        rows = [{"code": r.code, "name": r.name, "level": UnitLevel(r.level).value,
                 "parent_id": units[r.parent_code].id if r.parent_code else None, "path": "",
                 "lat": r.lat, "lon": r.lon, "phase": "peacetime", "created_at": now, "updated_at": now}
                for r in level_records]
        for chunk in _chunks(rows):
            await session.execute(insert(t), chunk)
        codes = [r.code for r in level_records]
        new_ids: dict[str, int] = {}
        for chunk in _chunks(codes, 500):
            new_ids.update(dict((await session.execute(select(t.c.code, t.c.id).where(t.c.code.in_(chunk)))).all()))
        params = []
        for r in level_records:
            parent_path = units[r.parent_code].path if r.parent_code else "/"
            params.append({"b_id": new_ids[r.code], "b_path": f"{parent_path}{new_ids[r.code]}/"})
        for chunk in _chunks(params):
            await session.execute(update(t).where(t.c.id == bindparam("b_id")).values(path=bindparam("b_path")), chunk)
        for chunk in _chunks(codes, 500):
            for row in (await session.execute(select(t).where(t.c.code.in_(chunk)))).all():
                units[row.code] = row
                units_by_id[row.id] = row


async def _move_subtree(session: AsyncSession, unit, new_parent) -> None:
    old_prefix = unit.path
    new_prefix = f"{new_parent.path if new_parent is not None else '/'}{unit.id}/"
    rows = (await session.execute(select(OrgUnit.id, OrgUnit.path).where(OrgUnit.path.startswith(old_prefix)))).all()
    params = [{"b_id": i, "b_path": new_prefix + p[len(old_prefix):]} for i, p in rows]
    await session.execute(
        update(OrgUnit.__table__).where(OrgUnit.__table__.c.id == bindparam("b_id")).values(path=bindparam("b_path")),
        params,
    )


def _community(units, code: str, where: dict, problems: list[Problem], principal: Principal | None):
    unit = units.get(code)
    if unit is None or unit.level != UnitLevel.COMMUNITY.value:
        problems.append(Problem(f"社区编码 {code} 不存在", f"community code {code} does not exist", **where))
        return None
    if principal is not None and not principal.covers(unit.path):
        problems.append(Problem(f"社区 {code} 不在您的管辖范围内", f"community {code} is outside your scope", **where))
        return None
    return unit


async def _load_teams(session, records: list[TeamRecord], units, report, problems, principal) -> dict[str, int]:
    existing = {row.code: row for row in (await session.execute(select(Team.__table__))).all()}
    paths = {row.id: row.path for row in units.values()}
    inserts, updates = [], []
    for rec in records:
        where = {"field": f"teams[{rec.code}]"}
        community = _community(units, rec.community_code, where, problems, principal)
        if community is None:
            continue
        old = existing.get(rec.code)
        values = {"code": rec.code, "name": rec.name, "kind": str(rec.kind), "community_id": community.id}
        if old is None:
            inserts.append(values)
            report.created["teams"] += 1
        elif (old.name, old.kind, old.community_id) != (rec.name, str(rec.kind), community.id):
            if principal is not None and not principal.covers(paths.get(old.community_id, "/")):
                problems.append(Problem(f"队伍 {rec.code} 不在您的管辖范围内", f"team {rec.code} is outside your scope", **where))
                continue
            updates.append({"b_id": old.id, "v_name": rec.name, "v_kind": str(rec.kind), "v_community_id": community.id})
            report.updated["teams"] += 1
        else:
            report.unchanged["teams"] += 1
    if problems:
        return {}
    if inserts:
        await session.execute(insert(Team.__table__), inserts)
    if updates:
        t = Team.__table__
        await session.execute(
            update(t).where(t.c.id == bindparam("b_id")).values(
                name=bindparam("v_name"), kind=bindparam("v_kind"), community_id=bindparam("v_community_id")),
            updates,
        )
    return dict((await session.execute(select(Team.code, Team.id))).all())


_PERSON_FIELDS = ("name", "kind", "community_id", "grid_id", "lat", "lon", "address", "work_unit", "party_member",
                  "group_leader", "peacetime_group", "wartime_group", "availability", "status", "leave_until",
                  "team_id")


async def _load_people(session, records: list[PersonRecord], units, team_ids, report, problems, principal) -> None:
    p = Person.__table__
    if not records:
        return
    if len(records) <= 2000:  # a form or a small file: read just those people
        existing = {}
        for chunk in _chunks([r.phone for r in records], 500):
            existing.update({row.phone: row for row in (await session.execute(select(p).where(p.c.phone.in_(chunk)))).all()})
        skill_query = select(PersonSkill.person_id, PersonSkill.skill).where(
            PersonSkill.person_id.in_([row.id for row in existing.values()]))
    else:
        existing = {row.phone: row for row in (await session.execute(select(p))).all()}
        skill_query = select(PersonSkill.person_id, PersonSkill.skill)
    skills_of: dict[int, tuple[str, ...]] = {}
    rows = (await session.execute(skill_query.order_by(PersonSkill.person_id, PersonSkill.skill))).all()
    grouped: dict[int, list[str]] = defaultdict(list)
    for pid, skill in rows:
        grouped[pid].append(skill)
    skills_of.update({pid: tuple(s) for pid, s in grouped.items()})

    community_paths = {row.id: row.path for row in units.values() if row.level == UnitLevel.COMMUNITY.value}
    inserts, updates = [], []
    new_skills: dict[str, tuple[str, ...]] = {}
    changed_skills: dict[int, tuple[str, ...]] = {}
    for rec in records:
        where = {"field": f"people[{mask_phone(rec.phone)}]"}
        community = _community(units, rec.community_code, where, problems, principal)
        if community is None:
            continue
        grid_id = None
        if rec.grid_code:
            grid = units.get(rec.grid_code)
            if grid is None or grid.level != UnitLevel.GRID.value or grid.parent_id != community.id:
                problems.append(Problem(f"网格 {rec.grid_code} 不属于社区 {rec.community_code}",
                                         f"grid {rec.grid_code} is not a grid of community {rec.community_code}", **where))
                continue
            grid_id = grid.id
        team_id = None
        if rec.team_code:
            team_id = team_ids.get(rec.team_code)
            if team_id is None:
                problems.append(Problem(f"队伍编码 {rec.team_code} 不存在", f"team code {rec.team_code} does not exist", **where))
                continue
        if rec.status is PersonStatus.DEPLOYED:
            problems.append(Problem("状态「已派出」只能由启动指令设置", "status 'deployed' is set only by an activation", **where))
            continue
        lat, lon = rec.lat, rec.lon
        if lat is None and grid_id is not None:
            grid = units[rec.grid_code]
            lat, lon = grid.lat, grid.lon
        values = {
            "name": rec.name, "kind": str(rec.kind), "community_id": community.id, "grid_id": grid_id,
            "lat": lat, "lon": lon, "address": rec.address, "work_unit": rec.work_unit,
            "party_member": rec.party_member, "group_leader": rec.group_leader,
            "peacetime_group": rec.peacetime_group, "wartime_group": rec.wartime_group,
            "availability": str(rec.availability), "status": str(rec.status), "leave_until": rec.leave_until,
            "team_id": team_id,
        }
        skills = tuple(sorted(set(rec.skills)))
        old = existing.get(rec.phone)
        if old is None:
            inserts.append({"phone": rec.phone, **values})
            new_skills[rec.phone] = skills
            report.created["people"] += 1
            continue
        if principal is not None and not principal.covers(community_paths.get(old.community_id, "/")):
            problems.append(Problem("此人已登记在您管辖范围外的社区", "this person is registered in a community outside your scope", **where))
            continue
        if old.status == PersonStatus.DEPLOYED.value:
            values["status"] = old.status  # an activation owns this person's status until released
        before = tuple(getattr(old, f) for f in _PERSON_FIELDS)
        after = tuple(values[f] for f in _PERSON_FIELDS)
        skills_changed = skills_of.get(old.id, ()) != skills
        if before == after and not skills_changed:
            report.unchanged["people"] += 1
            continue
        if before != after:
            updates.append({"b_id": old.id, **{f"v_{k}": v for k, v in values.items()}})
        if skills_changed:
            changed_skills[old.id] = skills
        report.updated["people"] += 1
    if problems:
        return
    for chunk in _chunks(inserts):
        await session.execute(insert(p), chunk)
    if updates:
        stmt = update(p).where(p.c.id == bindparam("b_id")).values({f: bindparam(f"v_{f}") for f in _PERSON_FIELDS})
        for chunk in _chunks(updates):
            await session.execute(stmt, chunk)
    if new_skills:
        ids = {}
        for chunk in _chunks(list(new_skills), 500):
            ids.update(dict((await session.execute(select(Person.phone, Person.id).where(Person.phone.in_(chunk)))).all()))
        rows = [{"person_id": ids[phone], "skill": s} for phone, skills in new_skills.items() for s in skills]
        for chunk in _chunks(rows):
            await session.execute(insert(PersonSkill.__table__), chunk)
    if changed_skills:
        ids_changed = list(changed_skills)
        for chunk in _chunks(ids_changed):
            await session.execute(delete(PersonSkill).where(PersonSkill.person_id.in_(chunk)))
        rows = [{"person_id": pid, "skill": s} for pid, skills in changed_skills.items() for s in skills]
        for chunk in _chunks(rows):
            await session.execute(insert(PersonSkill.__table__), chunk)


async def _set_team_leaders(session, records: list[TeamRecord], team_ids, problems) -> None:
    if not records:
        return
    phones = [r.leader_phone for r in records]
    found: dict[str, tuple[int, int | None]] = {}
    for chunk in _chunks(phones, 900):
        rows = await session.execute(select(Person.phone, Person.id, Person.team_id).where(Person.phone.in_(chunk)))
        found.update({phone: (pid, tid) for phone, pid, tid in rows})
    params = []
    for rec in records:
        team_id = team_ids.get(rec.code)
        leader = found.get(rec.leader_phone)
        where = {"field": f"teams[{rec.code}]"}
        if leader is None:
            problems.append(Problem(f"队长 {mask_phone(rec.leader_phone)} 不在花名册中",
                                     f"the leader {mask_phone(rec.leader_phone)} is not in the roster", **where))
        elif leader[1] != team_id:
            problems.append(Problem(f"队长 {mask_phone(rec.leader_phone)} 不是队伍 {rec.code} 的成员",
                                     f"the leader {mask_phone(rec.leader_phone)} is not a member of team {rec.code}", **where))
        else:
            params.append({"b_id": team_id, "v_leader": leader[0]})
    if problems or not params:
        return
    t = Team.__table__
    await session.execute(
        update(t).where(t.c.id == bindparam("b_id")).where(
            (t.c.leader_id.is_(None)) | (t.c.leader_id != bindparam("v_leader"))
        ).values(leader_id=bindparam("v_leader")),
        params,
    )
