"""What an activation solves over and what switch-back tells people, read and written in bulk, on both backends."""

from __future__ import annotations

import gc
from datetime import UTC, date, datetime

from sqlalchemy import event, func, select

from mobilize.activations.inputs import load_candidates, load_scope
from mobilize.activations.models import OPEN_ORDER_STATES, Order, Pin
from mobilize.activations.service import ActivateRequest, activate, end
from mobilize.costs import Person as Candidate
from mobilize.db import session_scope, utcnow
from mobilize.notify.models import OutboxMessage
from mobilize.plans import load_plans
from rosters.models import OrgUnit, Person, PersonSkill, Team
from rosters.vocabulary import load_skills, load_workgroups

AT = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


async def _unit(s, code, level, parent=None, lat=None, lon=None) -> OrgUnit:
    unit = OrgUnit(code=code, name=code, level=level, parent_id=parent.id if parent else None, path="/", lat=lat, lon=lon)
    s.add(unit)
    await s.flush()
    unit.path = (parent.path if parent else "/") + f"{unit.id}/"
    return unit


def _person(n, community, **kw) -> Person:
    return Person(phone=f"1390000{n:04d}", name=f"P{n}", kind="volunteer", community_id=community.id,
                  peacetime_group="volunteer", wartime_group=kw.pop("group", "screening"), **kw)


async def test_candidates_come_street_by_street_with_their_skills_pins_and_squads(sessionmaker):
    """People are listed by street, then community, then id, even where a community's id does not follow its
    street's (one created before the other street's); each with the values of its row."""
    async with session_scope(sessionmaker) as s:
        city = await _unit(s, "C", "city")
        street_a = await _unit(s, "C-A", "street", city)
        street_b = await _unit(s, "C-B", "street", city)
        b1 = await _unit(s, "C-B-1", "community", street_b, 30.5, 120.5)  # a lower id than street A's community
        a1 = await _unit(s, "C-A-1", "community", street_a, 30.1, 120.1)
        squad = Team(code="SQ1", name="突击队", kind="commando_squad", community_id=a1.id)
        s.add(squad)
        await s.flush()
        people = [_person(1, b1, lat=30.51, lon=120.51), _person(2, b1, status="on_leave", leave_until=date(2026, 12, 1)),
                  _person(3, a1, lat=30.11, lon=120.11, group_leader=True, party_member=True, team_id=squad.id,
                          group="medical"),
                  _person(4, a1)]  # no home location: the community's centre
        s.add_all(people)
        await s.flush()
        s.add_all([PersonSkill(person_id=people[2].id, skill="driving"), PersonSkill(person_id=people[2].id, skill="first_aid"),
                   PersonSkill(person_id=people[0].id, skill="driving")])
        s.add(Pin(person_id=people[3].id, hazard="flood", post_code="gate", site_code="G1"))
        ids = [p.id for p in people]
        community_b = people[0].community_id
    async with session_scope(sessionmaker) as s:
        scope = (await s.execute(select(OrgUnit).where(OrgUnit.code == "C"))).scalar_one()
        units = await load_scope(s, scope)
        assert [site.community for site in units.sites] == ["C-A-1", "C-B-1"]
        statements: list[str] = []
        engine = (await s.connection()).engine.sync_engine
        listen = event.listens_for(engine, "before_cursor_execute")(lambda *a: statements.append(a[2]))
        try:
            candidates, facts = await load_candidates(s, units, hazard="flood", is_drill=False, at=AT, facts=True,
                                                      held={ids[0]})
        finally:
            event.remove(engine, "before_cursor_execute", listen)
        # the scope is the whole city: with its held person counted back, its reads skip the scope filter
        skills_read = next(q for q in statements if "person_skills" in q)
        assert "people" not in skills_read.split("FROM person_skills", 1)[1]
        # a community's scope borrows within its street only: the other street's people are not read
        community = (await s.execute(select(OrgUnit).where(OrgUnit.code == "C-A-1"))).scalar_one()
        of_street_a, _ = await load_candidates(s, await load_scope(s, community), hazard="flood", is_drill=False,
                                               at=AT)
    p1, p2, p3, p4 = ids
    assert candidates == [
        Candidate(p3, "C-A-1", "C-A", 30.11, 120.11, frozenset({"driving", "first_aid"}), True, True, "SQ1", None, 0,
                  True, "medical"),
        Candidate(p4, "C-A-1", "C-A", 30.1, 120.1, frozenset(), False, False, None, "C-A-1/gate@G1", 0, True,
                  "screening"),
        # p1, held where they are (a level change's holder who stays), is not read
        Candidate(p2, "C-B-1", "C-B", 30.5, 120.5, frozenset(), False, False, None, None, 0, False, "screening"),
    ]
    assert of_street_a == candidates[:2]
    assert all(type(c.leader) is bool and type(c.party_member) is bool for c in candidates)
    assert list(facts) == [p3, p4, p2] and p1 not in facts
    assert facts[p2] == {"community_id": community_b, "community": "C-B-1", "status": "on_leave",
                         "party_member": False, "leader": False}


async def test_switch_back_tells_each_released_person_once(sessionmaker, demo):
    plans = load_plans(skills=load_skills(), workgroups=load_workgroups())
    async with session_scope(sessionmaker) as s:
        act, _ = await activate(s, ActivateRequest(demo["street"], "flood", "III"), plans=plans, at=AT)
        act_id, filled = act.id, act.summary["filled"]
    async with session_scope(sessionmaker) as s:
        held = set((await s.execute(select(Order.person_id).where(
            Order.activation_id == act_id, Order.status.in_(OPEN_ORDER_STATES)))).scalars())
        assert gc.isenabled()
        await end(s, act_id)
        assert gc.isenabled()  # paused while the rows were built, back on after
    async with session_scope(sessionmaker) as s:
        rows = (await s.execute(select(OutboxMessage).where(OutboxMessage.activation_id == act_id,
                                                            OutboxMessage.kind == "activation_ended"))).scalars().all()
        told = {r.person_id: (r.dedupe_key, r.payload, r.order_id, r.channel, r.status, r.attempts) for r in rows}
    assert len(held) == filled > 0 and len(rows) == len(held)
    assert told == {pid: (f"activation:{act_id}:ended:{pid}", {"drill": False}, None, "log", "pending", 0)
                    for pid in held}


async def test_a_city_wide_read_and_a_streets_read_judge_its_people_alike(sessionmaker, demo):
    """A city-wide scope holds everyone (its reads skip the scope filter), a street's does not: the street's
    people come out the same from both, held by the running activation and with its duty counted."""
    plans = load_plans(skills=load_skills(), workgroups=load_workgroups())
    async with session_scope(sessionmaker) as s:  # a second street: the demo street's people are not everyone
        city = (await s.execute(select(OrgUnit).where(OrgUnit.code == demo["city"]))).scalar_one()
        other = await _unit(s, "X-S", "street", city)
        s.add(_person(9, await _unit(s, "X-S-1", "community", other)))
    async with session_scope(sessionmaker) as s:
        act, _ = await activate(s, ActivateRequest(demo["street"], "flood", "III"), plans=plans, at=AT)
        holders = set((await s.execute(select(Order.person_id).where(Order.activation_id == act.id))).scalars())
    async with session_scope(sessionmaker) as s:
        city = (await s.execute(select(OrgUnit).where(OrgUnit.code == demo["city"]))).scalar_one()
        street = (await s.execute(select(OrgUnit).where(OrgUnit.code == demo["street"]))).scalar_one()
        everyone, _ = await load_candidates(s, await load_scope(s, city), hazard="flood", is_drill=False, at=utcnow())
        of_street, _ = await load_candidates(s, await load_scope(s, street), hazard="flood", is_drill=False,
                                             at=utcnow())
        assert len(everyone) == (await s.execute(select(func.count()).select_from(Person))).scalar_one()
    assert 0 < len(of_street) < len(everyone)
    assert of_street == [c for c in everyone if c.street == demo["street"]]
    held = [c for c in of_street if c.id in holders]
    assert held and not any(c.eligible for c in held) and all(c.recent_duty == 1 for c in held)
