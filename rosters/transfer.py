"""Roster files in and out: import (all or nothing, with a dry run) and export of a subtree.

Imports and exports of personal data are written to the audit log.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from mobilize import audit
from mobilize.access import Principal
from mobilize.errors import Forbidden, NotFound
from rosters.importer import read_roster
from rosters.loader import LoadReport, known_units, load_roster
from rosters.models import OrgUnit, Person, PersonSkill, Team
from rosters.records import PersonRecord, Roster, TeamRecord, UnitRecord
from rosters.vocabulary import SkillVocabulary, UnitLevel, WorkGroupTemplate

__all__ = ["import_files", "roster_of"]


async def import_files(
    session: AsyncSession, paths: Sequence[Path], *, skills: SkillVocabulary, workgroups: WorkGroupTemplate,
    principal: Principal | None = None, actor: str = "cli", dry_run: bool = False,
) -> LoadReport:
    """Return what importing ``paths`` changed; on any bad row raise and write nothing.

    A dry run checks everything and reports the counts, then rolls the session back.
    """
    known = await known_units(session)
    roster = await asyncio.to_thread(read_roster, list(paths), skills=skills, workgroups=workgroups,
                                     known_units=known)
    report = await load_roster(session, roster, workgroups=workgroups, principal=principal)
    report.dry_run = dry_run
    if dry_run:
        await session.rollback()
        return report
    await audit.record(session, actor=principal.actor if principal else actor, action="roster.import",
                       target=",".join(Path(p).name for p in paths)[:128], detail=report.as_dict())
    return report


async def roster_of(session: AsyncSession, *, unit_code: str | None = None, principal: Principal | None = None,
                    actor: str = "cli") -> Roster:
    """Return the stored roster of a subtree (default: all the caller covers), audited as an export."""
    if principal is not None and not principal.can_export:
        raise Forbidden("当前角色不能导出个人信息", "Your role may not export personal data")
    scope = principal.scope_path if principal is not None else None
    if unit_code:
        unit = (await session.execute(select(OrgUnit).where(OrgUnit.code == unit_code))).scalar_one_or_none()
        if unit is None or (principal is not None and not principal.covers(unit.path)):
            raise NotFound("未找到该单位", f"No unit with code {unit_code}")
        scope = unit.path
    parent = aliased(OrgUnit)
    units_q = select(OrgUnit, parent.code).outerjoin(parent, parent.id == OrgUnit.parent_id).order_by(OrgUnit.path)
    if scope:
        # The units above the scope are exported too, so the file re-imports on its own.
        ids = [int(i) for i in scope.strip("/").split("/")]
        units_q = units_q.where(OrgUnit.path.startswith(scope) | OrgUnit.id.in_(ids))
    units = [UnitRecord(u.code, u.name, UnitLevel(u.level), pc, u.lat, u.lon)
             for u, pc in (await session.execute(units_q))]
    units.sort(key=lambda r: (r.level.depth, r.code))

    community = aliased(OrgUnit)
    grid = aliased(OrgUnit)
    people_q = (select(Person, community.code, grid.code, Team.code)
                .join(community, community.id == Person.community_id)
                .outerjoin(grid, grid.id == Person.grid_id).outerjoin(Team, Team.id == Person.team_id)
                .order_by(Person.id))
    if scope:
        people_q = people_q.where(community.path.startswith(scope))
    rows = (await session.execute(people_q)).all()
    skills: dict[int, list[str]] = {}
    skills_q = select(PersonSkill.person_id, PersonSkill.skill).order_by(PersonSkill.person_id, PersonSkill.skill)
    for pid, skill in await session.execute(skills_q):
        skills.setdefault(pid, []).append(skill)
    people = [
        PersonRecord(phone=p.phone, name=p.name, kind=p.kind, community_code=cc, peacetime_group=p.peacetime_group,
                     wartime_group=p.wartime_group, grid_code=gc, lat=p.lat, lon=p.lon, address=p.address,
                     work_unit=p.work_unit, party_member=p.party_member, group_leader=p.group_leader,
                     skills=tuple(skills.get(p.id, ())), availability=p.availability,
                     status="available" if p.status == "deployed" else p.status, leave_until=p.leave_until,
                     team_code=tc)
        for p, cc, gc, tc in rows
    ]
    leader = aliased(Person)
    teams_q = (select(Team, community.code, leader.phone).join(community, community.id == Team.community_id)
               .join(leader, leader.id == Team.leader_id).order_by(Team.code))
    if scope:
        teams_q = teams_q.where(community.path.startswith(scope))
    teams = [TeamRecord(t.code, t.name, t.kind, cc, phone) for t, cc, phone in await session.execute(teams_q)]
    await audit.record(session, actor=principal.actor if principal else actor, action="roster.export",
                       target=unit_code, detail={"units": len(units), "people": len(people), "teams": len(teams)})
    return Roster(units=units, people=people, teams=teams)
