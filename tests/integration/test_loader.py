"""Loading rosters into the database: idempotent, all or nothing, within the operator's scope."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest
from sqlalchemy import func, select

from mobilize.access import Principal, Role
from mobilize.db import session_scope
from mobilize.errors import InvalidInput
from rosters.demo import generate_city
from rosters.loader import load_roster
from rosters.models import OrgUnit, Person, PersonSkill, Team, WorkGroup
from rosters.records import Roster
from rosters.vocabulary import load_workgroups

WG = load_workgroups()


@pytest.fixture
def roster() -> Roster:
    return generate_city("small", 3, today=date(2026, 11, 21))


async def counts(maker) -> dict[str, int]:
    async with session_scope(maker) as s:
        return {m.__tablename__: (await s.execute(select(func.count()).select_from(m))).scalar_one()
                for m in (OrgUnit, Person, PersonSkill, Team, WorkGroup)}


async def test_load_then_reload_changes_nothing(sessionmaker, roster):
    async with session_scope(sessionmaker) as s:
        first = await load_roster(s, roster, workgroups=WG)
    assert first.created == {"units": len(roster.units), "people": len(roster.people), "teams": len(roster.teams)}
    before = await counts(sessionmaker)
    assert before["work_groups"] == 11 * sum(1 for u in roster.units if u.level == "community")
    async with session_scope(sessionmaker) as s:
        again = await load_roster(s, roster, workgroups=WG)
    assert again.changed == 0
    assert again.unchanged == {"units": len(roster.units), "people": len(roster.people), "teams": len(roster.teams)}
    assert await counts(sessionmaker) == before


async def test_changed_people_are_updated_in_place(sessionmaker, roster):
    async with session_scope(sessionmaker) as s:
        await load_roster(s, roster, workgroups=WG)
    person = roster.people[10]
    changed = replace(person, name="改了名", skills=("boat", "medical"), party_member=not person.party_member)
    async with session_scope(sessionmaker) as s:
        report = await load_roster(s, Roster(people=[changed]), workgroups=WG)
    assert report.updated["people"] == 1 and report.created["people"] == 0
    async with session_scope(sessionmaker) as s:
        row = (await s.execute(select(Person).where(Person.phone == person.phone))).scalar_one()
        skills = (await s.execute(select(PersonSkill.skill).where(PersonSkill.person_id == row.id)
                                  .order_by(PersonSkill.skill))).scalars().all()
    assert row.name == "改了名" and skills == ["boat", "medical"] and row.party_member != person.party_member


async def test_a_conflict_anywhere_writes_nothing(sessionmaker, roster):
    async with session_scope(sessionmaker) as s:
        await load_roster(s, Roster(units=roster.units), workgroups=WG)
    before = await counts(sessionmaker)
    team = roster.teams[0]
    outsider = next(p for p in roster.people if p.team_code != team.code)
    bad = Roster(people=roster.people, teams=[replace(team, leader_phone=outsider.phone), *roster.teams[1:]])
    with pytest.raises(InvalidInput) as caught:
        async with session_scope(sessionmaker) as s:
            await load_roster(s, bad, workgroups=WG)
    problem = caught.value.problems[0]
    assert problem.field == f"teams[{team.code}]" and "不是队伍" in problem.reason_zh and "not a member" in problem.reason_en
    assert await counts(sessionmaker) == before


async def test_deployed_status_survives_a_reimport(sessionmaker, roster):
    async with session_scope(sessionmaker) as s:
        await load_roster(s, roster, workgroups=WG)
        await s.execute(Person.__table__.update().where(Person.phone == roster.people[0].phone).values(status="deployed"))
    async with session_scope(sessionmaker) as s:
        await load_roster(s, roster, workgroups=WG)
        status = (await s.execute(select(Person.status).where(Person.phone == roster.people[0].phone))).scalar_one()
    assert status == "deployed"


async def test_scope_limits_what_an_operator_can_load(sessionmaker, roster):
    async with session_scope(sessionmaker) as s:
        await load_roster(s, roster, workgroups=WG)
        communities = (await s.execute(select(OrgUnit).where(OrgUnit.level == "community").order_by(OrgUnit.code))).scalars().all()
    a, b = communities[0], communities[1]
    commander = Principal(1, "cmd_a", Role.COMMUNITY_COMMANDER, a.id, a.path)
    person_b = next(p for p in roster.people if p.community_code == b.code)
    moved_into_a = replace(person_b, community_code=a.code, grid_code=None, team_code=None)
    with pytest.raises(InvalidInput) as caught:
        async with session_scope(sessionmaker) as s:
            await load_roster(s, Roster(people=[moved_into_a]), workgroups=WG, principal=commander)
    assert "outside your scope" in caught.value.problems[0].reason_en
    new_in_b = replace(person_b, phone="13911112222", team_code=None)
    with pytest.raises(InvalidInput):
        async with session_scope(sessionmaker) as s:
            await load_roster(s, Roster(people=[new_in_b]), workgroups=WG, principal=commander)
    async with session_scope(sessionmaker) as s:
        assert (await s.execute(select(Person.community_id).where(Person.phone == person_b.phone))).scalar_one() == b.id


async def test_moving_a_unit_moves_its_subtree(sessionmaker, roster):
    extra_street = replace(next(u for u in roster.units if u.level == "street"), code="S2", name="新街道")
    async with session_scope(sessionmaker) as s:
        await load_roster(s, Roster(units=[*roster.units, extra_street], people=roster.people, teams=roster.teams),
                          workgroups=WG)
    community = next(u for u in roster.units if u.level == "community")
    async with session_scope(sessionmaker) as s:
        await load_roster(s, Roster(units=[replace(community, parent_code="S2")]), workgroups=WG)
    async with session_scope(sessionmaker) as s:
        street = (await s.execute(select(OrgUnit).where(OrgUnit.code == "S2"))).scalar_one()
        under = (await s.execute(select(OrgUnit.code).where(OrgUnit.path.startswith(street.path))
                                 .order_by(OrgUnit.code))).scalars().all()
    grids = [u.code for u in roster.units if u.parent_code == community.code]
    assert under == sorted(["S2", community.code, *grids])
