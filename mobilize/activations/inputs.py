"""Load what an activation solves over: the scope's communities as plan sites, and the people who may serve."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise

from sqlalchemy import ARRAY, Integer, bindparam, distinct, func, literal_column, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from mobilize.activations.models import OPEN_ORDER_STATES, Activation, Order, Pin
from mobilize.costs import Person as Candidate
from mobilize.plans import Site
from rosters.availability import is_available
from rosters.models import OrgUnit, Person, PersonSkill, Place, Team
from rosters.vocabulary import TeamKind, UnitLevel

__all__ = ["ScopeUnits", "load_scope", "load_candidates", "RECENT_DAYS"]

RECENT_DAYS = 30  # duty within this many days counts against a person (fairness)


@dataclass
class ScopeUnits:
    """The communities of a scope (as plan sites) and the streets they borrow within."""

    sites: list[Site]
    community_ids: dict[str, int]  # community code -> id
    street_ids: list[int]


async def load_scope(session: AsyncSession, scope: OrgUnit) -> ScopeUnits:
    """Return the communities under ``scope`` with their grids and named places."""
    # Core statements on the connection: a city's few hundred communities and thousands of grids are
    # plain rows here, never ORM objects.
    conn = await session.connection()
    if scope.level == UnitLevel.COMMUNITY.value:
        communities = [(scope.id, scope.code, scope.parent_id, scope.lat, scope.lon)]
    else:
        communities = (await conn.execute(
            select(OrgUnit.id, OrgUnit.code, OrgUnit.parent_id, OrgUnit.lat, OrgUnit.lon)
            .where(OrgUnit.level == UnitLevel.COMMUNITY.value, OrgUnit.path.startswith(scope.path))
            .order_by(OrgUnit.code))).all()
    ids = [c[0] for c in communities]
    parents = {c[2] for c in communities}
    streets = dict((await conn.execute(select(OrgUnit.id, OrgUnit.code).where(OrgUnit.id.in_(parents)))).all())
    grids: dict[int, list] = defaultdict(list)
    places: dict[int, list] = defaultdict(list)
    for chunk in _chunks(ids):
        rows = await conn.execute(select(OrgUnit.parent_id, OrgUnit.code, OrgUnit.name, OrgUnit.lat, OrgUnit.lon)
                                  .where(OrgUnit.parent_id.in_(chunk), OrgUnit.level == UnitLevel.GRID.value)
                                  .order_by(OrgUnit.code))
        for parent, code, name, lat, lon in rows:
            grids[parent].append((code, name, lat, lon))
        rows = await conn.execute(select(Place.community_id, Place.code, Place.kind, Place.name, Place.lat, Place.lon)
                                  .where(Place.community_id.in_(chunk)).order_by(Place.code))
        for community_id, *place in rows:
            places[community_id].append(tuple(place))
    sites = []
    for cid, code, parent_id, lat, lon in communities:
        lat = lat if lat is not None else 0.0
        lon = lon if lon is not None else 0.0
        site_grids = tuple((g_code, name, glat if glat is not None else lat, glon if glon is not None else lon)
                           for g_code, name, glat, glon in grids[cid])
        sites.append(Site(code, streets[parent_id], lat, lon, site_grids, tuple(places[cid])))
    return ScopeUnits(sites, {c[1]: c[0] for c in communities}, sorted(parents))


def not_among(conn, column, ids: Collection[int]):
    """Return the condition that ``column`` is none of ``ids``, as one parameter however many they are: a JSON
    array on SQLite, an integer array on PostgreSQL (IN lists stop at the drivers' parameter limits). Both
    read as ``NOT IN (subquery)``, which every PostgreSQL hashes (``<> ALL(array)`` only from 15 on)."""
    ids = [int(i) for i in ids]
    if conn.dialect.name == "sqlite":
        return column.not_in(select(literal_column("value")).select_from(func.json_each(json.dumps(ids))))
    return column.not_in(select(func.unnest(bindparam("not_among_ids", ids, type_=ARRAY(Integer)))))


def _chunks(items: list, size: int = 500):
    for i in range(0, len(items), size):
        yield items[i: i + size]


async def load_candidates(session: AsyncSession, scope: ScopeUnits, *, hazard: str, is_drill: bool, at: datetime,
                          exclude_activation: int | None = None, held: Collection[int] = (),
                          facts: bool = False) -> tuple[list[Candidate], dict[int, dict]]:
    """Return the people of the scope's streets as solver candidates, and (with ``facts``) facts about each by id.

    Eligible: available at ``at`` (status, leave, time pattern), not held by another open order
    (for a drill: any; for a real activation: another real one — drills give way to the real thing).
    People among ``held`` (whom the caller keeps where they are: a level change's holders who stay) are
    not read at all: they are nobody's candidates.
    """
    # Core statements on the connection: a city is 44,000 rows, and the ORM layer would cost more
    # than the database. The streets' communities (a few hundred) come first, so that people are read
    # without joins; each person's skills come joined as one string (people share a few sets).
    conn = await session.connection()
    street = aliased(OrgUnit)
    units = (await conn.execute(
        select(OrgUnit.id, OrgUnit.parent_id, OrgUnit.code, street.code, OrgUnit.lat, OrgUnit.lon)
        .join(street, street.id == OrgUnit.parent_id).where(OrgUnit.parent_id.in_(scope.street_ids)))).all()
    unit_of = {cid: (code, street_code, clat, clon) for cid, _street, code, street_code, clat, clon in units}
    in_communities = select(OrgUnit.id).where(OrgUnit.parent_id.in_(scope.street_ids))
    in_streets = select(Person.id).where(Person.community_id.in_(in_communities))
    people_q = (select(Person.id, Person.community_id, Person.lat, Person.lon, Person.group_leader, Person.party_member,
                       Person.team_id, Person.wartime_group, Person.status, Person.leave_until, Person.availability)
                .where(Person.community_id.in_(in_communities)).order_by(Person.community_id, Person.id))
    if held:  # a city's raise keeps some 15,000 holders: one array parameter, not an IN list
        people_q = people_q.where(not_among(conn, Person.id, held))
    rows = (await conn.execute(people_q)).all()
    if not all(row[1] in unit_of for row in rows):  # a community added since the read above (READ COMMITTED)
        rows = [row for row in rows if row[1] in unit_of]
    # People are listed street by street, community by community (by id each): a community's rows are
    # moved only where its id does not follow its street's order.
    rank = {cid: i for i, (cid, *_rest) in enumerate(sorted(units, key=lambda u: (u[1], u[0])))}
    if any(rank[a] > rank[b] for a, b in pairwise(sorted(rank))):
        rows.sort(key=lambda row: rank[row[1]])
    # Everything below is looked up by the id of a person above: filtering it to the scope's people only
    # saves reading others' rows, one joined query each instead of long IN lists. Where the scope holds
    # everyone (a city-wide activation) the filter would keep every row, and is left out. (The people are
    # counted only when the scope's streets are all streets with communities: not for a street's backup search.)
    all_streets = (await conn.execute(select(func.count(distinct(OrgUnit.parent_id))).where(
        OrgUnit.level == UnitLevel.COMMUNITY.value))).scalar_one()
    in_scope = len(rows)
    if held and len(scope.street_ids) >= all_streets:  # the holders left out are the scope's people too
        in_scope = (await conn.execute(select(func.count()).select_from(Person).where(
            Person.community_id.in_(in_communities)))).scalar_one()
    everyone = len(scope.street_ids) >= all_streets and \
        in_scope == (await conn.execute(select(func.count()).select_from(Person))).scalar_one()

    def of_scope(person_id):
        return true() if everyone else person_id.in_(in_streets)

    skills = dict((await conn.execute(
        select(PersonSkill.person_id, func.aggregate_strings(PersonSkill.skill, _SEP))
        .where(of_scope(PersonSkill.person_id)).group_by(PersonSkill.person_id))).all())
    pins: dict[int, tuple[str, str | None]] = {}
    squads = dict((await conn.execute(select(Team.id, Team.code).where(Team.kind == TeamKind.COMMANDO_SQUAD.value))).all())
    for pid, post_code, site_code in (await conn.execute(
            select(Pin.person_id, Pin.post_code, Pin.site_code).where(Pin.hazard == hazard,
                                                                      of_scope(Pin.person_id)))).all():
        pins[pid] = (post_code, site_code)
    open_q = (select(Order.person_id).join(Activation, Activation.id == Order.activation_id)
              .where(Order.status.in_(OPEN_ORDER_STATES), of_scope(Order.person_id)))
    if not is_drill:
        open_q = open_q.where(Activation.is_drill.is_(False))
    if exclude_activation is not None:
        open_q = open_q.where(Order.activation_id != exclude_activation)
    busy = set((await conn.execute(open_q)).scalars())
    since = at - timedelta(days=RECENT_DAYS)
    recent = dict((await conn.execute(
        select(Order.person_id, func.count()).join(Activation, Activation.id == Order.activation_id)
        .where(Activation.is_drill.is_(False), Order.created_at >= since, of_scope(Order.person_id),
               Order.activation_id != (exclude_activation or -1))
        .group_by(Order.person_id))).all())
    # Few distinct (status, leave, pattern) triples and skill sets among many people: judge and build each once.
    judged: dict[tuple, bool] = {}
    skill_sets_of: dict[str | None, frozenset] = {None: frozenset()}
    frozen: dict[frozenset, frozenset] = {}
    candidates: list[Candidate] = []
    out_facts: dict[int, dict] = {}
    append = candidates.append
    pins_get, squads_get, recent_get, judged_get, sets_get = pins.get, squads.get, recent.get, judged.get, skill_sets_of.get
    skills_get = skills.get
    for pid, cid, lat, lon, leader, party, team_id, group, status, leave_until, availability in rows:
        ccode, scode, clat, clon = unit_of[cid]
        skill_text = skills_get(pid)
        # "deployed" means held by an open order, which ``busy`` already says; judge the rest.
        key = ("available" if status == "deployed" else status, leave_until, availability)
        available = judged_get(key)
        if available is None:
            available = judged[key] = is_available(*key, at)
        own = sets_get(skill_text)
        if own is None:
            own = frozenset(skill_text.split(_SEP))
            own = skill_sets_of[skill_text] = frozen.setdefault(own, own)  # one object per distinct set
        pin = pins_get(pid)
        # positional, in Candidate's field order (keywords cost more over tens of thousands of rows)
        append(Candidate(pid, ccode, scode, lat if lat is not None else (clat or 0.0),
                         lon if lon is not None else (clon or 0.0), own, leader, party, squads_get(team_id),
                         None if pin is None else _pin_key(ccode, pin), recent_get(pid, 0),
                         available and pid not in busy, group))
        if facts:
            out_facts[pid] = {"community_id": cid, "community": ccode, "status": status, "party_member": party,
                              "leader": leader}
    return candidates, out_facts


_SEP = "\x1f"  # between a person's skill codes in the joined string (never inside a code)


def _pin_key(community: str, pin: tuple[str, str | None] | None) -> str | None:
    if pin is None:
        return None
    post_code, site_code = pin
    return f"{community}/{post_code}" + (f"@{site_code}" if site_code else "")
