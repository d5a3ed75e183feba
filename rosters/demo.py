"""A seeded, realistic demo city (演示城市): org tree, people and teams as plain roster records.

No database: :func:`generate_city` returns a :class:`~rosters.records.Roster` that the roster service
imports like any roster file. The same seed always gives the same city. The words that names are made
of live in ``rosters/data/demo_words.yaml``. Phones are in the reserved, never-assigned ``140`` range,
so a demo can never text a real person; names and addresses are drawn at random and fictitious.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from importlib import resources
from itertools import accumulate
from typing import Any

import yaml

from mobilize.errors import InvalidInput, Problem
from rosters.records import PersonRecord, Roster, TeamRecord, UnitRecord
from rosters.vocabulary import (Availability, MemberKind, PersonStatus, SkillVocabulary, TeamKind, UnitLevel,
                                WorkGroupDef, WorkGroupTemplate, load_skills, load_workgroups)

__all__ = ["CitySize", "SIZES", "generate_city"]


@dataclass(frozen=True, slots=True)
class CitySize:
    """How big a demo city is: districts, streets, communities, people, and grids per community."""

    districts: int
    streets: int
    communities: int
    people: int
    grids_per_community: tuple[int, int] = (12, 15)


# `city` follows the field's numbers: 31 streets, 293 communities, ~4,000 grids (the seed city has 4,327)
# with one grid worker each, and 4.4万 people (see the seed reports).
SIZES: dict[str, CitySize] = {
    "small": CitySize(districts=1, streets=1, communities=8, people=1_200),
    "city": CitySize(districts=6, streets=31, communities=293, people=44_000),
}

_K = MemberKind
_ON_LEAVE, _INACTIVE = 0.05, 0.01
_KIND_MIX = {_K.REPORTING_MEMBER: 0.55, _K.VOLUNTEER: 0.24, _K.GRID_WORKER: 0.09, _K.SQUAD_MEMBER: 0.07,
             _K.COMMUNITY_WORKER: 0.05}  # about how populate() splits a community

# Group roles name the default template's codes; a city template with other codes gets them by position.
_WARTIME = ("command", "screening", "medical", "supplies", "patrol", "information", "care")
_PEACETIME = ("coordination", "grid_service", "publicity", "volunteer_service")
# (skill, wartime group, chance): the first skill that takes decides; priority runs scarce to common.
_SKILL_GROUP = (("medical", "medical", 0.85), ("elderly_care", "care", 0.7), ("psychology", "care", 0.5),
                ("rescue", "patrol", 0.65), ("firefighting", "patrol", 0.6), ("boat", "patrol", 0.6),
                ("security", "patrol", 0.6), ("publicity", "information", 0.7), ("logistics", "supplies", 0.75),
                ("cooking", "supplies", 0.6), ("electrician", "patrol", 0.4), ("construction", "patrol", 0.4),
                ("it", "information", 0.35), ("driving", "supplies", 0.35))
_KIND_GROUP = {_K.COMMUNITY_WORKER: ("command", 0.75), _K.GRID_WORKER: ("screening", 0.8),
               _K.SQUAD_MEMBER: ("patrol", 0.5)}
_FALLBACK_GROUP = {"screening": 40, "patrol": 18, "supplies": 14, "care": 14, "information": 8,
                   "command": 3, "medical": 3}
# Who leads a wartime group when several party members could: staff first, volunteers last.
_LEADER_RANK = {_K.COMMUNITY_WORKER: 0, _K.GRID_WORKER: 1, _K.REPORTING_MEMBER: 2, _K.SQUAD_MEMBER: 3,
                _K.VOLUNTEER: 4}
_TEAM_THEMES = ("红色先锋", "邻里守望", "银龄互助", "青春", "巾帼", "平安守护", "文明劝导")
_MIN_GROUP = 2
_KM_PER_DEG_LAT = 111.0
_GOLDEN_ANGLE = math.pi * (3 - math.sqrt(5))


def generate_city(size: str = "small", seed: int = 1, *, skills: SkillVocabulary | None = None,
                  workgroups: WorkGroupTemplate | None = None, today: date | None = None) -> Roster:
    """Return a demo city's roster: units top down, people, then teams, all passing the importer's rules.

    ``size`` is a key of :data:`SIZES`. Everything is drawn from ``random.Random(seed)``; only the
    ``leave_until`` dates move with ``today`` (default: the current date), so that leave is never over.

    >>> roster = generate_city("small", seed=7)
    >>> [u.code for u in roster.units[:3]]
    ['3301', '330102', '330102001']
    >>> roster == generate_city("small", seed=7, today=date.today())
    True
    """
    spec = SIZES.get(size)
    if spec is None:
        raise InvalidInput("未知的演示城市规模", "Unknown demo city size",
                           [Problem(f"可选：{'、'.join(SIZES)}", f"choose one of: {', '.join(SIZES)}",
                                    field="size", value=size)])
    builder = _CityBuilder(random.Random(seed), _load_words(), skills or load_skills(),
                           workgroups or load_workgroups(), today or date.today())
    roster = Roster()
    communities = builder.org_tree(spec, roster.units)
    weights = [len(c.grids) * builder.rng.uniform(0.8, 1.2) for c in communities]
    phones = iter(builder.rng.sample(range(10**8), spec.people))
    for community, n in zip(communities, _split(spec.people, weights)):
        builder.populate(community, n, phones, roster)
    return roster


@dataclass(slots=True)
class _Grid:
    code: str
    lat: float
    lon: float
    road: str
    number: int


@dataclass(slots=True)
class _Community:
    code: str
    name: str
    district: str
    street: str
    grids: list[_Grid] = field(default_factory=list)


@lru_cache(maxsize=1)
def _load_words() -> dict[str, Any]:
    text = (resources.files("rosters") / "data" / "demo_words.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def _split(total: int, weights: list[float]) -> list[int]:
    """Return ``total`` split in proportion to ``weights`` (largest remainder), summing exactly to it."""
    scale = total / sum(weights)
    shares = [w * scale for w in weights]
    counts = [int(s) for s in shares]
    by_remainder = sorted(range(len(shares)), key=lambda i: counts[i] - shares[i])
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _weighted(options: dict[Any, float]) -> tuple[list[Any], list[float]]:
    return list(options), list(accumulate(options.values()))


class _CityBuilder:
    """Draws one city from one random stream; each method consumes it in a fixed order."""

    def __init__(self, rng: random.Random, words: dict[str, Any], skills: SkillVocabulary,
                 template: WorkGroupTemplate, today: date) -> None:
        self.rng, self.words, self.skills, self.today = rng, words, skills, today
        self.wartime = _role_codes(_WARTIME, template.wartime)
        self.peacetime = _role_codes(_PEACETIME, template.peacetime)
        self.wartime_codes = [g.code for g in template.wartime]
        self.surnames = _weighted(words["surnames"])
        self.units = words["work_units"]
        self.unit_cw = list(accumulate(u["weight"] for u in self.units))
        self.kinds = {MemberKind(k): v for k, v in words["kinds"].items()}
        self.availability = {k: _weighted({Availability(a): w for a, w in v["availability"].items()})
                             for k, v in self.kinds.items()}
        self.peace_choice = {k: _weighted({self.peacetime[g]: w for g, w in v["peacetime"].items()})
                             for k, v in self.kinds.items()}
        self.fallback = _weighted({self.wartime[g]: w for g, w in _FALLBACK_GROUP.items()})
        self._skill_odds: dict[tuple[MemberKind, int | None], list[tuple[str, float]]] = {}
        self._lift = self._mean_boosts()

    def _mean_boosts(self) -> dict[str, float]:
        """Return each skill's average boost over the city, so that boosts shift skills but keep their share."""
        total = self.unit_cw[-1]
        lift = dict.fromkeys(self.skills.codes, 0.0)
        for kind, kind_share in _KIND_MIX.items():
            with_unit, kind_boost = self.kinds[kind]["work_unit"], self.kinds[kind]["boost"]
            for code in lift:
                unit_mean = sum(u["weight"] * (u.get("boost") or {}).get(code, 1.0) for u in self.units) / total
                lift[code] += kind_share * kind_boost.get(code, 1.0) * (
                    with_unit * unit_mean + 1.0 - with_unit)
        return lift

    def org_tree(self, spec: CitySize, units: list[UnitRecord]) -> list[_Community]:
        """Return the communities (with grids) after appending every unit to ``units``, level by level."""
        rng, words = self.rng, self.words
        city = words["city"]
        units.append(UnitRecord(city["code"], city["name"], UnitLevel.CITY, None, city["lat"], city["lon"]))
        districts = words["districts"][: spec.districts]
        street_names = rng.sample(words["streets"], spec.streets)
        heads, tails = words["community_heads"], words["community_tails"]
        pairs = [h + t for h in heads for t in tails if h[-1] != t[0]]
        community_names = [pairs[i] for i in rng.sample(range(len(pairs)), spec.communities)]
        streets_per = _split(spec.streets, [rng.uniform(0.8, 1.2) for _ in districts])
        communities_per = _split(spec.communities, [rng.uniform(0.7, 1.3) for _ in range(spec.streets)])
        streets: list[UnitRecord] = []
        community_units: list[UnitRecord] = []
        grids: list[UnitRecord] = []
        made: list[_Community] = []  # the communities, in code order
        district_at = _spiral(rng, len(districts), 12.0, city["lat"], city["lon"])
        for d, (lat, lon), n_streets in zip(districts, district_at, streets_per):
            dcode = city["code"] + d["code"]
            units.append(UnitRecord(dcode, d["name"], UnitLevel.DISTRICT, city["code"], lat, lon))
            for s, (slat, slon) in enumerate(_spiral(rng, n_streets, 3.2, lat, lon), start=1):
                name = street_names[len(streets)] + "街道"
                streets.append(UnitRecord(f"{dcode}{s:03d}", name, UnitLevel.STREET, dcode, slat, slon))
                n_communities = communities_per[len(streets) - 1]
                for c, (clat, clon) in enumerate(_spiral(rng, n_communities, 1.0, slat, slon), start=1):
                    community = _Community(f"{streets[-1].code}{c:03d}", community_names[len(made)] + "社区",
                                           d["name"], name)
                    community_units.append(UnitRecord(community.code, community.name, UnitLevel.COMMUNITY,
                                                      streets[-1].code, clat, clon))
                    grids.extend(self._grids(community, clat, clon, spec.grids_per_community))
                    made.append(community)
        units.extend(streets + community_units + grids)
        return made

    def _grids(self, community: _Community, lat: float, lon: float, span: tuple[int, int]) -> list[UnitRecord]:
        rng, words = self.rng, self.words
        roads = [rng.choice(words["roads"]) + rng.choice(words["road_suffixes"]) for _ in range(rng.randint(2, 3))]
        out = []
        for k, (glat, glon) in enumerate(_spiral(rng, rng.randint(*span), 0.1, lat, lon), start=1):
            grid = _Grid(f"{community.code}-{k:02d}", glat, glon, roads[k % len(roads)], rng.randint(1, 399))
            community.grids.append(grid)
            out.append(UnitRecord(grid.code, f"第{k}网格", UnitLevel.GRID, community.code, glat, glon))
        return out

    def populate(self, community: _Community, n: int, phones: Iterator[int], roster: Roster) -> None:
        """Append ``n`` people of ``community`` and its teams to ``roster``."""
        rng = self.rng
        n_grid, n_staff, n_squad = len(community.grids), rng.randint(6, 9), rng.randint(8, 15)
        n_volunteer = round(n * rng.uniform(0.20, 0.28))
        n_reporting = n - n_grid - n_staff - n_squad - n_volunteer
        kinds = ([_K.GRID_WORKER] * n_grid + [_K.COMMUNITY_WORKER] * n_staff + [_K.SQUAD_MEMBER] * n_squad
                 + [_K.VOLUNTEER] * n_volunteer + [_K.REPORTING_MEMBER] * max(n_reporting, 0))
        surnames = rng.choices(self.surnames[0], cum_weights=self.surnames[1], k=len(kinds))
        people = [self._person(community, kind, i, surname, next(phones))
                  for i, (kind, surname) in enumerate(zip(kinds, surnames))]
        roster.teams.extend(self._teams(community, people))
        self._staff_every_group(people)
        self._pick_group_leaders(people)
        roster.people.extend(PersonRecord(**p) for p in people)

    def _person(self, community: _Community, kind: MemberKind, i: int, surname: str, phone: int) -> dict[str, Any]:
        rng = self.rng
        grid = community.grids[i] if kind is _K.GRID_WORKER else rng.choice(community.grids)
        r, angle = 0.3 * math.sqrt(rng.random()), rng.uniform(0, 2 * math.pi)
        lat, lon = _offset(grid.lat, grid.lon, r * math.cos(angle), r * math.sin(angle))
        unit, unit_index = self._work_unit(community, kind)
        skills = self._draw_skills(kind, unit_index)
        roll = rng.random()
        status = (PersonStatus.INACTIVE if roll < _INACTIVE
                  else PersonStatus.ON_LEAVE if roll < _INACTIVE + _ON_LEAVE else PersonStatus.AVAILABLE)
        options, cw = self.availability[kind]
        return {
            "phone": f"140{phone:08d}", "name": surname + self._given_name(), "kind": kind,
            "community_code": community.code, "grid_code": grid.code,
            "peacetime_group": self._peacetime_group(kind, skills), "wartime_group": self._wartime_group(kind, skills),
            "lat": lat, "lon": lon,
            "address": f"{grid.road}{grid.number}号{rng.randint(1, 24)}幢{rng.randint(1, 4)}单元"
                       f"{rng.randint(1, 18)}{rng.randint(1, 4):02d}室",
            "work_unit": unit, "party_member": rng.random() < self.kinds[kind]["party"], "group_leader": False,
            "skills": skills, "availability": rng.choices(options, cum_weights=cw)[0], "status": status,
            "leave_until": self.today + timedelta(days=rng.randint(2, 60)) if status is PersonStatus.ON_LEAVE else None,
            "team_code": None,
        }

    def _given_name(self) -> str:
        rng = self.rng
        pool = self.words["given_male"] if rng.random() < 0.5 else self.words["given_female"]
        return rng.choice(pool) if rng.random() < 0.2 else rng.choice(pool) + rng.choice(pool)

    def _work_unit(self, community: _Community, kind: MemberKind) -> tuple[str | None, int | None]:
        rng = self.rng
        if kind is _K.COMMUNITY_WORKER:
            return community.name + "居民委员会", None
        if kind is _K.GRID_WORKER:
            return community.street + "办事处", None
        if rng.random() >= self.kinds[kind]["work_unit"]:
            return None, None
        index = rng.choices(range(len(self.units)), cum_weights=self.unit_cw)[0]
        street = community.street.removesuffix("街道")
        return self.units[index]["name"].format(district=community.district, street=street), index

    def _draw_skills(self, kind: MemberKind, unit_index: int | None) -> tuple[str, ...]:
        """Return 0–3 skill codes, each drawn at its vocabulary share, raised by work unit and kind."""
        key = (kind, unit_index)
        odds = self._skill_odds.get(key)
        if odds is None:
            unit_boost = self.units[unit_index].get("boost") or {} if unit_index is not None else {}
            kind_boost = self.kinds[kind]["boost"]
            odds = [(s.code, min(0.9, s.share * unit_boost.get(s.code, 1.0) * kind_boost.get(s.code, 1.0)
                                 / self._lift[s.code])) for s in self.skills.skills]
            self._skill_odds[key] = odds
        picked = [code for code, p in odds if self.rng.random() < p]
        if len(picked) > 3:  # keep three, in vocabulary order
            kept = set(self.rng.sample(picked, 3))
            picked = [code for code in picked if code in kept]
        return tuple(picked)

    def _wartime_group(self, kind: MemberKind, skills: tuple[str, ...]) -> str:
        rng = self.rng
        if kind in _KIND_GROUP:
            role, chance = _KIND_GROUP[kind]
            if rng.random() < chance:
                return self.wartime[role]
        for skill, role, chance in _SKILL_GROUP:
            if skill in skills and rng.random() < chance:
                return self.wartime[role]
        return rng.choices(self.fallback[0], cum_weights=self.fallback[1])[0]

    def _peacetime_group(self, kind: MemberKind, skills: tuple[str, ...]) -> str:
        rng = self.rng
        if "publicity" in skills and kind in (_K.REPORTING_MEMBER, _K.VOLUNTEER) and rng.random() < 0.6:
            return self.peacetime["publicity"]
        options, cw = self.peace_choice[kind]
        return rng.choices(options, cum_weights=cw)[0]

    def _teams(self, community: _Community, people: list[dict[str, Any]]) -> list[TeamRecord]:
        """Return the community's commando squad and 1–3 volunteer teams, setting members' ``team_code``."""
        rng = self.rng
        squad = [p for p in people if p["kind"] is _K.SQUAD_MEMBER]
        volunteers = [p for p in people if p["kind"] is _K.VOLUNTEER]
        reporting = [p for p in people if p["kind"] is _K.REPORTING_MEMBER]
        rng.shuffle(volunteers)
        rng.shuffle(reporting)
        teams = [self._team(f"{community.code}-TJ1", community.name + "党员突击队", TeamKind.COMMANDO_SQUAD,
                            community, squad)]
        for theme in rng.sample(_TEAM_THEMES, rng.randint(1, 3)):
            size = rng.randint(8, 30)
            take = min(round(size * rng.uniform(0.6, 0.85)), len(volunteers))
            members = volunteers[:take] + reporting[: size - take]
            del volunteers[:take], reporting[: size - take]
            if len(members) >= 8:
                teams.append(self._team(f"{community.code}-ZY{len(teams)}", f"{community.name}{theme}志愿服务队",
                                        TeamKind.VOLUNTEER_TEAM, community, members))
        return teams

    def _team(self, code: str, name: str, kind: TeamKind, community: _Community,
              members: list[dict[str, Any]]) -> TeamRecord:
        rng = self.rng
        leader = min(members, key=lambda p: (p["status"] is not PersonStatus.AVAILABLE, not p["party_member"],
                                             rng.random()))
        for p in members:
            p["team_code"] = code
        return TeamRecord(code, name, kind, community.code, leader["phone"])

    def _staff_every_group(self, people: list[dict[str, Any]]) -> None:
        """Move people into any wartime group left with fewer than two, from the largest group."""
        rng = self.rng
        members: dict[str, list[dict[str, Any]]] = {code: [] for code in self.wartime_codes}
        for p in people:
            members[p["wartime_group"]].append(p)
        for code in self.wartime_codes:
            while len(members[code]) < _MIN_GROUP:
                donor = max(members.values(), key=len)
                movable = [p for p in donor if p["kind"] not in (_K.COMMUNITY_WORKER, _K.GRID_WORKER)] or donor
                person = rng.choice(movable)
                donor.remove(person)
                person["wartime_group"] = code
                members[code].append(person)

    def _pick_group_leaders(self, people: list[dict[str, Any]]) -> None:
        """Mark one or two leaders per wartime group (两名 for groups of 12 or more): available party members first."""
        rng = self.rng
        for code in self.wartime_codes:
            members = [p for p in people if p["wartime_group"] == code]
            members.sort(key=lambda p: (p["status"] is not PersonStatus.AVAILABLE, not p["party_member"],
                                        _LEADER_RANK[p["kind"]], rng.random()))
            for p in members[: 2 if len(members) >= 12 else 1]:
                p["group_leader"] = True


def _role_codes(roles: tuple[str, ...], groups: tuple[WorkGroupDef, ...]) -> dict[str, str]:
    """Return each role's group code: the same code if the template has it, else the group at its position."""
    codes = [g.code for g in groups]
    return {role: role if role in codes else codes[i % len(codes)] for i, role in enumerate(roles)}


def _offset(lat: float, lon: float, north_km: float, east_km: float) -> tuple[float, float]:
    """Return the point ``north_km``/``east_km`` from (lat, lon), rounded to ~0.1 m."""
    dlat = north_km / _KM_PER_DEG_LAT
    dlon = east_km / (_KM_PER_DEG_LAT * math.cos(math.radians(lat)))
    return round(lat + dlat, 6), round(lon + dlon, 6)


def _spiral(rng: random.Random, n: int, spacing_km: float, lat: float, lon: float) -> list[tuple[float, float]]:
    """Return ``n`` points around (lat, lon), neighbours about ``spacing_km`` apart (a jittered sunflower)."""
    c = spacing_km / 1.55  # Vogel's spiral r = c·√i, jittered, puts nearest neighbours ≈ 1.55·c apart
    points = []
    for i in range(n):
        r = c * math.sqrt(i + 0.5) if n > 1 else 0.0
        angle = i * _GOLDEN_ANGLE + rng.uniform(-0.25, 0.25)
        jitter = spacing_km * 0.15
        points.append(_offset(lat, lon, r * math.cos(angle) + rng.uniform(-jitter, jitter),
                              r * math.sin(angle) + rng.uniform(-jitter, jitter)))
    return points
