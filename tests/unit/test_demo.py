"""The demo city: deterministic, the field's sizes, consistent references, and plausible to a user's eye."""

from __future__ import annotations

import math
import re
import time
from collections import Counter, defaultdict
from datetime import date

import pytest

from mobilize.errors import InvalidInput
from rosters.demo import generate_city
from rosters.phones import MOBILE
from rosters.records import Roster
from rosters.vocabulary import (MemberKind, PersonStatus, TeamKind, UnitLevel, WorkGroupDef, WorkGroupTemplate,
                                load_skills, load_workgroups)

TODAY = date(2024, 6, 1)
K = MemberKind


@pytest.fixture(scope="module")
def small() -> Roster:
    return generate_city("small", seed=1, today=TODAY)


@pytest.fixture(scope="module")
def timed_city() -> tuple[Roster, float]:
    started = time.process_time()  # CPU time: other tests running alongside do not count
    roster = generate_city("city", seed=1, today=TODAY)
    return roster, time.process_time() - started


@pytest.fixture(scope="module")
def city(timed_city: tuple[Roster, float]) -> Roster:
    return timed_city[0]


def _km(a, b) -> float:
    north = (a.lat - b.lat) * 111.0
    east = (a.lon - b.lon) * 111.0 * math.cos(math.radians(a.lat))
    return math.hypot(north, east)


def _by_level(roster: Roster) -> Counter:
    return Counter(u.level for u in roster.units)


# --- determinism ---------------------------------------------------------------------------------

def test_same_seed_gives_the_same_city_and_another_seed_a_different_one(small: Roster) -> None:
    again = generate_city("small", seed=1, today=TODAY)
    other = generate_city("small", seed=2, today=TODAY)
    assert again == small
    assert [p.phone for p in other.people] != [p.phone for p in small.people]
    assert [u.name for u in other.units] != [u.name for u in small.units]


def test_leave_dates_follow_today_but_nothing_else_does(small: Roster) -> None:
    later = generate_city("small", seed=1, today=date(2025, 1, 1))
    strip = [(p.phone, p.name, p.skills, p.wartime_group, p.status) for p in small.people]
    assert strip == [(p.phone, p.name, p.skills, p.wartime_group, p.status) for p in later.people]
    assert all(p.leave_until > date(2025, 1, 1) for p in later.people if p.leave_until)


def test_unknown_size_is_refused_with_the_sizes_to_choose_from() -> None:
    with pytest.raises(InvalidInput) as caught:
        generate_city("huge")
    assert "small" in str(caught.value.problems[0])


# --- sizes ----------------------------------------------------------------------------------------

def test_small_city_is_one_street_of_eight_communities_and_1200_people(small: Roster) -> None:
    levels = _by_level(small)
    assert (levels[UnitLevel.CITY], levels[UnitLevel.DISTRICT], levels[UnitLevel.STREET]) == (1, 1, 1)
    assert levels[UnitLevel.COMMUNITY] == 8
    assert 8 * 12 <= levels[UnitLevel.GRID] <= 8 * 15
    assert len(small.people) == 1200


def test_city_has_the_fields_31_streets_293_communities_and_44000_people(city: Roster) -> None:
    levels = _by_level(city)
    assert levels[UnitLevel.STREET] == 31
    assert levels[UnitLevel.COMMUNITY] == 293
    assert 3 <= levels[UnitLevel.DISTRICT] <= 8
    assert 3_700 <= levels[UnitLevel.GRID] <= 4_300
    assert abs(len(city.people) - 44_000) <= 440
    grids_per = Counter(u.parent_code for u in city.units if u.level is UnitLevel.GRID)
    assert min(grids_per.values()) >= 12 and max(grids_per.values()) <= 15


def test_city_generates_within_three_seconds(timed_city: tuple[Roster, float]) -> None:
    assert timed_city[1] <= 3.0


# --- codes, names and the importer's rules ----------------------------------------------------------

def test_codes_follow_the_administrative_code_style(small: Roster) -> None:
    patterns = {UnitLevel.CITY: r"\d{4}", UnitLevel.DISTRICT: r"\d{6}", UnitLevel.STREET: r"\d{9}",
                UnitLevel.COMMUNITY: r"\d{12}", UnitLevel.GRID: r"\d{12}-\d{2}"}
    suffixes = {UnitLevel.CITY: "市", UnitLevel.DISTRICT: "区", UnitLevel.STREET: "街道", UnitLevel.COMMUNITY: "社区",
                UnitLevel.GRID: "网格"}
    for unit in small.units:
        assert re.fullmatch(patterns[unit.level], unit.code), unit
        assert unit.name.endswith(suffixes[unit.level]), unit
        if unit.parent_code:
            assert unit.code.startswith(unit.parent_code), unit
    assert small.units[0].code == "3301" and "330102001001-01" in {u.code for u in small.units}


def test_every_record_passes_the_importers_rules(city: Roster) -> None:
    skills, groups = set(load_skills().codes), load_workgroups()
    units = {u.code: u for u in city.units}
    assert len(units) == len(city.units)
    assert len({t.code for t in city.teams}) == len(city.teams)
    assert len({p.phone for p in city.people}) == len(city.people)
    for unit in city.units:
        assert -90 <= unit.lat <= 90 and -180 <= unit.lon <= 180
        if unit.level is UnitLevel.CITY:
            assert unit.parent_code is None
        else:  # parents come first, one level up
            assert units[unit.parent_code].level.depth == unit.level.depth - 1
    peacetime, wartime = {g.code for g in groups.peacetime}, {g.code for g in groups.wartime}
    for p in city.people:
        assert MOBILE.match(p.phone) and p.phone.startswith("140"), p.phone
        assert units[p.community_code].level is UnitLevel.COMMUNITY
        assert units[p.grid_code].level is UnitLevel.GRID and units[p.grid_code].parent_code == p.community_code
        assert set(p.skills) <= skills and len(p.skills) <= 3
        assert p.peacetime_group in peacetime and p.wartime_group in wartime
        assert -90 <= p.lat <= 90 and -180 <= p.lon <= 180


def test_people_have_chinese_names_common_surnames_and_addresses(small: Roster) -> None:
    assert all(re.fullmatch(r"[\u4e00-\u9fff]{2,4}", p.name) for p in small.people)
    top = [s for s, _ in Counter(p.name[0] for p in small.people).most_common(5)]
    assert set(top[:3]) <= {"王", "李", "张", "刘", "陈"}
    assert len({p.name for p in small.people}) > 0.9 * len(small.people)
    assert all(re.fullmatch(r".+(路|街|大道)\d+号\d+幢\d单元\d+室", p.address) for p in small.people)


# --- references -----------------------------------------------------------------------------------

def test_teams_are_led_by_their_own_members_and_belong_to_the_persons_community(city: Roster) -> None:
    teams = {t.code: t for t in city.teams}
    people = {p.phone: p for p in city.people}
    for team in city.teams:
        assert people[team.leader_phone].team_code == team.code
        assert people[team.leader_phone].community_code == team.community_code
    for p in city.people:
        if p.team_code:
            assert teams[p.team_code].community_code == p.community_code


def test_each_community_has_one_squad_of_party_members_and_one_to_three_volunteer_teams(city: Roster) -> None:
    members = Counter(p.team_code for p in city.people if p.team_code)
    per_community: dict[str, Counter] = defaultdict(Counter)
    for team in city.teams:
        per_community[team.community_code][team.kind] += 1
        low, high = (8, 15) if team.kind is TeamKind.COMMANDO_SQUAD else (8, 30)
        assert low <= members[team.code] <= high, team
        suffix = "-TJ" if team.kind is TeamKind.COMMANDO_SQUAD else "-ZY"
        assert team.code.startswith(team.community_code + suffix)
    assert len(per_community) == 293
    for counts in per_community.values():
        assert counts[TeamKind.COMMANDO_SQUAD] == 1 and 1 <= counts[TeamKind.VOLUNTEER_TEAM] <= 3
    squad = [p for p in city.people if p.kind is K.SQUAD_MEMBER]
    assert all(p.party_member and p.team_code and p.team_code.endswith("-TJ1") for p in squad)


# --- plausibility -----------------------------------------------------------------------------------

def test_party_member_shares_match_the_field(city: Roster) -> None:
    def share(kind: MemberKind) -> float:
        of_kind = [p for p in city.people if p.kind is kind]
        return sum(p.party_member for p in of_kind) / len(of_kind)

    assert share(K.REPORTING_MEMBER) == pytest.approx(0.60, abs=0.05)
    assert share(K.SQUAD_MEMBER) == 1.0
    assert share(K.VOLUNTEER) == pytest.approx(0.15, abs=0.04)
    assert share(K.COMMUNITY_WORKER) > 0.7


def test_reporting_members_are_the_largest_group_and_every_grid_has_its_grid_worker(city: Roster) -> None:
    kinds = Counter(p.kind for p in city.people)
    ranked = [k for k, _ in kinds.most_common()]
    assert ranked[:2] == [K.REPORTING_MEMBER, K.VOLUNTEER]
    grids = {u.code for u in city.units if u.level is UnitLevel.GRID}
    assert Counter(p.grid_code for p in city.people if p.kind is K.GRID_WORKER) == Counter(grids)
    staff = Counter(p.community_code for p in city.people if p.kind is K.COMMUNITY_WORKER)
    assert min(staff.values()) >= 5 and max(staff.values()) <= 10


@pytest.mark.parametrize("size", ["small", "city"])
def test_every_community_staffs_all_work_groups_each_with_a_leader(size: str, small: Roster, city: Roster) -> None:
    roster = small if size == "small" else city
    groups = load_workgroups()
    staffed: dict[str, set[str]] = defaultdict(set)
    led: dict[str, set[str]] = defaultdict(set)
    for p in roster.people:
        staffed[p.community_code] |= {p.wartime_group, p.peacetime_group}
        if p.group_leader:
            led[p.community_code].add(p.wartime_group)
    everything = {g.code for g in groups.all}
    wartime = {g.code for g in groups.wartime}
    assert all(staffed[c] == everything for c in staffed)
    assert all(led[c] == wartime for c in staffed)
    leaders = [p for p in roster.people if p.group_leader]
    assert sum(p.party_member for p in leaders) / len(leaders) > 0.95
    assert all(p.status is PersonStatus.AVAILABLE for p in leaders)
    per_group = Counter((p.community_code, p.wartime_group) for p in leaders)
    assert set(per_group.values()) <= {1, 2}


def test_skills_follow_the_vocabulary_shares_and_the_work_unit(city: Roster) -> None:
    held = Counter(s for p in city.people for s in p.skills)
    for skill in load_skills().skills:
        assert held[skill.code] / len(city.people) == pytest.approx(skill.share, rel=0.25, abs=0.005), skill.code
    hospital = [p for p in city.people if p.work_unit and ("医院" in p.work_unit or "卫健委" in p.work_unit)]
    power = [p for p in city.people if p.work_unit and "供电" in p.work_unit]
    assert sum("medical" in p.skills for p in hospital) / len(hospital) > 3 * load_skills().get("medical").share
    assert sum("electrician" in p.skills for p in power) / len(power) > 3 * load_skills().get("electrician").share
    medics = [p for p in city.people if "medical" in p.skills and p.kind is not K.COMMUNITY_WORKER]
    assert sum(p.wartime_group == "medical" for p in medics) / len(medics) > 0.6
    assert all(p.work_unit for p in city.people if p.kind is K.REPORTING_MEMBER)


def test_status_and_availability_look_like_a_real_roster(city: Roster) -> None:
    status = Counter(p.status for p in city.people)
    n = len(city.people)
    assert status[PersonStatus.ON_LEAVE] / n == pytest.approx(0.05, abs=0.01)
    assert status[PersonStatus.INACTIVE] / n == pytest.approx(0.01, abs=0.005)
    assert status[PersonStatus.DEPLOYED] == 0
    assert all((p.leave_until is not None) == (p.status is PersonStatus.ON_LEAVE) for p in city.people)
    assert all(p.leave_until > TODAY for p in city.people if p.leave_until)
    availability = Counter(p.availability for p in city.people)
    assert availability.most_common(1)[0][0] == "anytime" and len(availability) == 5


def test_the_map_is_a_city_communities_a_kilometre_apart_and_people_near_their_grid(city: Roster) -> None:
    units = {u.code: u for u in city.units}
    centre = city.units[0]
    assert centre.lat == pytest.approx(30.27, abs=0.5) and centre.lon == pytest.approx(120.15, abs=0.5)
    assert max(_km(u, centre) for u in city.units) < 30
    assert all(_km(p, units[p.grid_code]) <= 0.31 for p in city.people)
    grids = [_km(u, units[u.parent_code]) for u in city.units if u.level is UnitLevel.GRID]
    assert 0.1 < sum(grids) / len(grids) < 0.2 and max(grids) < 0.4
    communities = [u for u in city.units if u.level is UnitLevel.COMMUNITY]
    nearest = [min(_km(c, d) for d in communities if d is not c and d.parent_code == c.parent_code)
               for c in communities]
    assert 0.7 < sum(nearest) / len(nearest) < 1.3 and min(nearest) > 0.2


def test_a_citys_own_work_group_template_is_used() -> None:
    template = WorkGroupTemplate(
        peacetime=(WorkGroupDef("daily", "日常组", "Daily", "peacetime"),),
        wartime=(WorkGroupDef("front", "一线组", "Front line", "wartime"),
                 WorkGroupDef("rear", "后方组", "Rear", "wartime")))
    roster = generate_city("small", seed=3, workgroups=template, today=TODAY)
    assert {p.peacetime_group for p in roster.people} == {"daily"}
    assert {p.wartime_group for p in roster.people} == {"front", "rear"}
