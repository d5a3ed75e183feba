"""Readiness (战备状态) of a subtree: who is there, who can come now, which groups lack leaders."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mobilize.access import Principal
from rosters.models import OrgUnit, Person, PersonSkill, Team
from rosters.schemas import GroupReadiness, Readiness
from rosters.service import Community, available_clause, unit_by_code, unit_read
from rosters.vocabulary import PersonStatus, UnitLevel, WorkGroupTemplate

__all__ = ["readiness"]


async def readiness(session: AsyncSession, principal: Principal, unit_code: str, *, at: datetime,
                    workgroups: WorkGroupTemplate) -> Readiness:
    """Return the readiness summary of ``unit_code``'s subtree at local time ``at``."""
    unit = await unit_by_code(session, principal, unit_code)
    parent_code = None
    if unit.parent_id is not None:
        parent_code = (await session.execute(select(OrgUnit.code).where(OrgUnit.id == unit.parent_id))).scalar_one()
    in_subtree = Community.path.startswith(unit.path)
    avail = available_clause(at)
    as_int = lambda cond: func.sum(case((cond, 1), else_=0))  # noqa: E731

    base = select(Person).join(Community, Community.id == Person.community_id).where(in_subtree)
    if unit.level == UnitLevel.GRID.value:
        base = base.where(Person.grid_id == unit.id)
    people = base.subquery()

    totals = (await session.execute(
        select(
            func.count(),
            as_int(avail),
            as_int(Person.status == PersonStatus.DEPLOYED.value),
            as_int(Person.party_member.is_(True)),
        ).select_from(Person).where(Person.id.in_(select(people.c.id)))
    )).one()
    n_people, n_avail, n_deployed, n_party = (int(v or 0) for v in totals)

    by_kind = dict((await session.execute(
        select(Person.kind, func.count()).where(Person.id.in_(select(people.c.id))).group_by(Person.kind)
    )).all())

    def group_rows(column):
        return (
            select(column, func.count(), as_int(avail), as_int(Person.party_member.is_(True)),
                   as_int(Person.group_leader.is_(True)))
            .where(Person.id.in_(select(people.c.id))).group_by(column)
        )

    war = {g: (n, a, p, lead) for g, n, a, p, lead in (await session.execute(group_rows(Person.wartime_group))).all()}
    peace = {g: (n, a, p, 0) for g, n, a, p, _ in (await session.execute(group_rows(Person.peacetime_group))).all()}

    def groups(defs, counts) -> list[GroupReadiness]:
        return [GroupReadiness(code=g.code, name_zh=g.zh, name_en=g.en, phase=g.phase,
                               people=int(counts.get(g.code, (0,) * 4)[0] or 0),
                               available=int(counts.get(g.code, (0,) * 4)[1] or 0),
                               party_members=int(counts.get(g.code, (0,) * 4)[2] or 0),
                               leaders=int(counts.get(g.code, (0,) * 4)[3] or 0)) for g in defs]

    skills = dict((await session.execute(
        select(PersonSkill.skill, func.count()).join(Person, Person.id == PersonSkill.person_id)
        .where(Person.id.in_(select(people.c.id)), avail).group_by(PersonSkill.skill)
    )).all())

    teams = dict((await session.execute(
        select(Team.kind, func.count()).join(Community, Community.id == Team.community_id).where(in_subtree)
        .group_by(Team.kind)
    )).all())

    communities = (await session.execute(
        select(func.count()).select_from(OrgUnit).where(
            OrgUnit.level == UnitLevel.COMMUNITY.value,
            OrgUnit.path.startswith(unit.path) if unit.level != UnitLevel.GRID.value else OrgUnit.id == unit.parent_id)
    )).scalar_one()
    led = (select(Person.community_id, Person.wartime_group)
           .where(Person.id.in_(select(people.c.id)), Person.group_leader.is_(True)).distinct().subquery())
    led_groups = (await session.execute(select(func.count()).select_from(led))).scalar_one()
    wartime_codes = {g.code for g in workgroups.wartime}
    led_groups = min(int(led_groups or 0), communities * len(wartime_codes))

    return Readiness(
        unit=unit_read(unit, parent_code), communities=communities, people=n_people, available=n_avail,
        unavailable=n_people - n_avail - n_deployed, deployed=n_deployed, party_members=n_party,
        by_kind={str(k): int(v) for k, v in by_kind.items()},
        teams={str(k): int(v) for k, v in teams.items()},
        peacetime_groups=groups(workgroups.peacetime, peace),
        wartime_groups=groups(workgroups.wartime, war),
        skills_available={str(k): int(v) for k, v in sorted(skills.items())},
        groups_without_leader=communities * len(wartime_codes) - led_groups,
        as_of=at.isoformat(timespec="seconds"),
    )
