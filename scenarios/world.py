"""The static side of a drill: a roster as the activation core sees it (plan sites and solver people).

:func:`demo_world` builds it from the seeded demo city exactly as ``mobilize demo`` loads it into the
database and :mod:`mobilize.activations.inputs` reads it back: communities become
:class:`~mobilize.plans.Site` (grids and named places), people become :class:`~mobilize.costs.Person`
(skills, designated leaders, party members, commando squads, pins). The named places and pins mirror
``mobilize demo`` (:func:`rosters.places.demo_places`; :func:`mobilize.activations.pins.suggest_pins`
for flood and typhoon at level Ⅱ, solved per community). A world is built once per process and shared
by every run (:func:`world_for`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from datetime import datetime

from mobilize.activations.writes import demands_of
from mobilize.costs import Person
from mobilize.errors import InvalidInput, Problem
from mobilize.plans import Plan, Site, plan_posts
from mobilize.solver import solve
from rosters.availability import is_available
from rosters.demo import generate_city
from rosters.records import Roster
from rosters.vocabulary import TeamKind, UnitLevel
from scenarios.model import ExtraPosts, RoadCut, RosterSpec, Scenario

__all__ = ["DEMO_PLACES", "PIN_HAZARDS", "World", "check_codes", "demo_world", "world_for"]

#: The named places ``mobilize demo`` gives every community (code, kind, name suffix).
DEMO_PLACES = (("ZX", "office", "党群服务中心"), ("AZ1", "shelter", "应急安置点"), ("CK1", "warehouse", "物资仓库"),
               ("KK1", "gate", "东门卡口"), ("KK2", "gate", "西门卡口"), ("HD1", "riverbank", "河道堤岸"))
#: The hazards ``mobilize demo`` pins people for, and the level it pins at.
PIN_HAZARDS, PIN_LEVEL = ("flood", "typhoon"), "II"


@dataclass
class World:
    """Everything a run reads and never changes: org tree, sites, people and their facts.

    ``people[i]`` is the solver's view of person ``i`` (``eligible`` not yet judged: see
    :meth:`available_at`); ``kind[i]`` and ``grid[i]`` are the member kind and home grid the behaviour
    model and the injects need.
    """

    label: str
    units: dict[str, tuple[str, str | None, str]]  # code -> (level, parent code, name)
    sites: dict[str, Site]  # community code -> site
    people: list[Person]
    kind: list[str]
    grid: list[str | None]
    status: list[tuple[str, object, str]]  # (status, leave_until, availability) per person
    index: dict[str, int] = field(default_factory=dict)
    #: what runs derive from the world and keep for the next run (see ``scenarios.activation``)
    memo: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.index = {p.id: i for i, p in enumerate(self.people)}
        self.memo = {}
        self.by_street: dict[str, list[int]] = {}
        for i, p in enumerate(self.people):
            self.by_street.setdefault(p.street, []).append(i)

    def communities_under(self, code: str) -> list[str]:
        """Return the community codes under ``code`` (itself if a community), in code order."""
        if code in self.sites:
            return [code]
        out = []
        for community in sorted(self.sites):
            unit = community
            while unit is not None:
                if unit == code:
                    out.append(community)
                    break
                unit = self.units[unit][1]
        return out

    def available_at(self, at: datetime) -> list[bool]:
        """Return who may be dispatched at local time ``at`` (status, leave and time pattern)."""
        judged: dict[tuple, bool] = {}
        out = []
        for key in self.status:
            ok = judged.get(key)
            if ok is None:
                ok = judged[key] = is_available(key[0], key[1], key[2], at)
            out.append(ok)
        return out

    def grid_of_post(self, site_code: str | None) -> str | None:
        """Return the grid a post stands in (per-grid posts), else None."""
        return site_code if site_code is not None and self.units.get(site_code, ("",))[0] == "grid" else None


def demo_world(size: str, seed: int, *, today, pins_for: Plan | None = None) -> World:
    """Return the demo city ``size``/``seed`` as a world, with places and (for ``pins_for``) pins."""
    roster = generate_city(size, seed, today=today)
    return roster_world(roster, f"demo {size} seed {seed}", place_seed=seed, pins_for=pins_for)


def roster_world(roster: Roster, label: str, *, place_seed: int = 1, pins_for: Plan | None = None) -> World:
    """Return a roster (plain records) as a world; communities get the demo's named places."""
    units = {u.code: (u.level.value, u.parent_code, u.name) for u in roster.units}
    grids: dict[str, list] = {}
    for u in sorted(roster.units, key=lambda u: u.code):
        if u.level is UnitLevel.GRID:
            grids.setdefault(u.parent_code, []).append((u.code, u.name, u.lat, u.lon))
    rng = random.Random(place_seed)  # as rosters.places.demo_places draws them, community by community
    sites = {}
    for u in roster.units:
        if u.level is not UnitLevel.COMMUNITY:
            continue
        places = []
        if u.lat is not None and u.lon is not None:
            for code, kind, suffix in DEMO_PLACES:
                places.append((code, kind, u.name + suffix, round(u.lat + rng.uniform(-0.003, 0.003), 6),
                               round(u.lon + rng.uniform(-0.003, 0.003), 6)))
        lat, lon = u.lat or 0.0, u.lon or 0.0
        site_grids = tuple((c, n, glat if glat is not None else lat, glon if glon is not None else lon)
                           for c, n, glat, glon in grids.get(u.code, ()))
        sites[u.code] = Site(u.code, u.parent_code, lat, lon, site_grids, tuple(sorted(places)))
    squads = {t.code for t in roster.teams if t.kind is TeamKind.COMMANDO_SQUAD}
    frozen: dict[frozenset, frozenset] = {}
    people, kind, grid, status = [], [], [], []
    for p in roster.people:
        site = sites[p.community_code]
        skills = frozenset(p.skills)
        skills = frozen.setdefault(skills, skills)
        people.append(Person(p.phone, p.community_code, site.street, p.lat if p.lat is not None else site.lat,
                             p.lon if p.lon is not None else site.lon, skills, p.group_leader, p.party_member,
                             p.team_code if p.team_code in squads else None, None, 0, True, p.wartime_group))
        kind.append(p.kind.value)
        grid.append(p.grid_code)
        status.append((p.status.value, p.leave_until, p.availability.value))
    world = World(label, units, sites, people, kind, grid, status)
    if pins_for is not None and pins_for.hazard in PIN_HAZARDS:
        world.people = pinned(world, pins_for, PIN_LEVEL)
        world.__post_init__()
    return world


def pinned(world: World, plan: Plan, level: str) -> list[Person]:
    """Return the people with their peacetime pins (平时编组) as ``suggest_pins`` makes them.

    Everyone on the roster counts (pins outlast a day's leave) and each community keeps to its own
    people: a street of its own per community, so nobody is borrowed for a peacetime pin.
    """
    specs = plan_posts(plan, level, [world.sites[c] for c in sorted(world.sites)])
    people = [replace(p, eligible=True, street=f"{p.street}/{p.community}") for p in world.people]
    demands = [replace(d, street=f"{d.street}/{d.community}") for d in demands_of(specs)]
    solution = solve(people, demands)
    pin = {a.person: a.post for a in solution.assignments}
    return [replace(p, preassigned_post=pin.get(p.id)) for p in world.people]


_CACHE: dict[tuple, World] = {}


def world_for(spec: RosterSpec, scenario: Scenario, plan: Plan) -> World:
    """Return the world of a roster spec for a scenario, built once per process."""
    key = (spec.source, spec.size, spec.seed, spec.pins, plan.hazard, scenario.start.date())
    world = _CACHE.get(key)
    if world is None:
        if spec.source == "database":
            raise InvalidInput("数据库花名册需由命令行加载", "The live roster is loaded by the command line",
                               [scenario.problem("roster", "请用 mobilize drill（读取数据库）运行，或改用 demo 花名册",
                                                 "run it with `mobilize drill` (which reads the database) or use a "
                                                 "demo roster")])
        world = demo_world(spec.size, spec.seed, today=scenario.start.date(), pins_for=plan if spec.pins else None)
        if len(_CACHE) > 4:
            _CACHE.clear()
        _CACHE[key] = world
    return world


def put_world(spec: RosterSpec, scenario: Scenario, plan: Plan, world: World) -> None:
    """Register a world built elsewhere (the live database) for ``spec``."""
    _CACHE[(spec.source, spec.size, spec.seed, spec.pins, plan.hazard, scenario.start.date())] = world


def check_codes(scenario: Scenario, world: World) -> None:
    """Raise :class:`InvalidInput` naming the line of every code the roster does not have."""
    problems: list[Problem] = []
    unit = world.units.get(scenario.scope)
    if unit is None:
        problems.append(scenario.problem("scope", f"单位编码 {scenario.scope} 不存在（{world.label}）",
                                         f"no unit with code {scenario.scope} ({world.label})"))
    elif unit[0] in ("grid", "building"):
        problems.append(scenario.problem("scope", "演练范围须为社区或以上", "the scope must be a community or above"))
    elif not world.communities_under(scenario.scope):
        problems.append(scenario.problem("scope", "该单位下没有社区", "no community under this unit"))
    grids = {c for c, (level, _, _) in world.units.items() if level == "grid"}
    for grid in scenario.behaviour.no_signal:
        if grid not in grids:
            problems.append(scenario.problem("behaviour.phones.no_signal", f"网格 {grid} 不存在", f"unknown grid {grid}"))
    for inject in scenario.injects:
        line = inject.line

        def bad(fieldname: str, zh: str, en: str, line: int | None = line) -> None:
            problems.append(Problem(zh, en, file=scenario.file, row=line, field=fieldname))

        if isinstance(inject, RoadCut) and inject.grid not in grids:
            bad("road_cut", f"网格 {inject.grid} 不存在（{world.label}）", f"unknown grid {inject.grid} ({world.label})")
        if isinstance(inject, ExtraPosts):
            site = world.sites.get(inject.community)
            if site is None:
                bad("extra_posts.community", f"社区 {inject.community} 不存在", f"unknown community {inject.community}")
            elif inject.place not in {p[0] for p in site.places} | {g[0] for g in site.grids}:
                known = "、".join(p[0] for p in site.places)
                bad("extra_posts.place", f"社区 {inject.community} 没有地点 {inject.place}（可选：{known} 或本社区网格编码）",
                    f"community {inject.community} has no place {inject.place} (known: {known}, or a grid code of it)")
    if problems:
        raise InvalidInput("演练脚本与花名册不符", "The scenario does not match the roster", problems)
