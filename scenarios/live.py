"""A drill on the live roster (``roster: {database: true}``): the world read from the database.

The scope's sites and people come from the same loaders a real activation uses
(:func:`mobilize.activations.inputs.load_scope` and :func:`~mobilize.activations.inputs.load_candidates`,
pins of the hazard included); people held by an open order of another activation count as unavailable,
as they would for a live drill. Only the member kind and home grid are read besides, for the behaviour
model and road cuts. The simulation itself never writes.
"""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mobilize.activations.inputs import load_candidates, load_scope
from mobilize.errors import InvalidInput
from rosters.availability import is_available
from rosters.models import OrgUnit, Person
from scenarios.model import Scenario, default_plans
from scenarios.world import World, put_world

__all__ = ["database_world", "load_live_world"]


async def database_world(session: AsyncSession, scenario: Scenario) -> World:
    """Return the world of the scenario's scope as the database holds it now."""
    scope = (await session.execute(select(OrgUnit).where(OrgUnit.code == scenario.scope))).scalar_one_or_none()
    if scope is None:
        raise InvalidInput("演练脚本与花名册不符", "The scenario does not match the roster",
                           [scenario.problem("scope", f"单位编码 {scenario.scope} 不存在", f"no unit {scenario.scope}")])
    units_of_scope = await load_scope(session, scope)
    candidates, _facts = await load_candidates(session, units_of_scope, hazard=scenario.hazard, is_drill=True,
                                               at=scenario.start)
    rows = (await session.execute(select(OrgUnit.id, OrgUnit.code, OrgUnit.level, OrgUnit.parent_id, OrgUnit.name)
                                  .where(OrgUnit.path.startswith(scope.path)))).all()
    ancestors = [int(x) for x in scope.path.strip("/").split("/") if x.isdigit()]
    rows += (await session.execute(select(OrgUnit.id, OrgUnit.code, OrgUnit.level, OrgUnit.parent_id, OrgUnit.name)
                                   .where(OrgUnit.id.in_(ancestors)))).all() if ancestors else []
    code_of = {r.id: r.code for r in rows}
    units = {r.code: (r.level, code_of.get(r.parent_id), r.name) for r in rows}
    ids = [c.id for c in candidates]
    facts: dict[int, tuple] = {}
    for i in range(0, len(ids), 900):
        for pid, kind, grid_id, status, leave_until, availability in (await session.execute(
                select(Person.id, Person.kind, Person.grid_id, Person.status, Person.leave_until, Person.availability)
                .where(Person.id.in_(ids[i:i + 900])))).all():
            facts[pid] = (kind, grid_id, status, leave_until, availability)
    grid_ids = {f[1] for f in facts.values() if f[1] is not None} - set(code_of)
    if grid_ids:
        code_of.update(dict((await session.execute(select(OrgUnit.id, OrgUnit.code)
                                                   .where(OrgUnit.id.in_(sorted(grid_ids))))).all()))
    people, kinds, grids, status = [], [], [], []
    for c in candidates:
        kind, grid_id, st, leave_until, availability = facts[c.id]
        st = "available" if st == "deployed" else st
        if not c.eligible and is_available(st, leave_until, availability, scenario.start):
            st = "inactive"  # held by an open order of another activation: out of this drill
        people.append(replace(c, eligible=True))  # the drill judges availability itself, minute by minute
        kinds.append(kind)
        grids.append(code_of.get(grid_id))
        status.append((st, leave_until, availability))
    sites = {s.community: s for s in units_of_scope.sites}
    return World(f"live database {scope.code}", units, sites, people, kinds, grids, status)


async def load_live_world(session: AsyncSession, scenario: Scenario) -> World:
    """Read the live world and register it for the scenario's database rosters (then run as usual)."""
    world = await database_world(session, scenario)
    plan = default_plans()[scenario.hazard]
    for variant in (scenario.baseline, *scenario.variants):
        if variant.roster.source == "database":
            put_world(variant.roster, scenario, plan, world)
    return world
