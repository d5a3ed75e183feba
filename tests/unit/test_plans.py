"""Plan files: the shipped ones load; a malformed one is refused naming the file, line and field."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from mobilize.errors import InvalidInput
from mobilize.plans import LEVELS, PostSpec, Site, load_plans, parse_level, plan_posts
from rosters.vocabulary import load_skills, load_workgroups

SKILLS, GROUPS = load_skills(), load_workgroups()


def test_shipped_plans_cover_five_hazards_and_level_one_needs_most():
    plans = load_plans(skills=SKILLS, workgroups=GROUPS)
    assert {"flood", "typhoon", "epidemic", "fire", "earthquake"} <= set(plans)
    site = Site("C1", "S1", 30.0, 120.0, grids=tuple((f"C1-{i}", f"第{i}网格", 30.0, 120.0) for i in range(12)))
    for plan in plans.values():
        slots = [sum(p.headcount for p in plan_posts(plan, level, [site])) for level in LEVELS]
        assert slots == sorted(slots, reverse=True) and slots[0] > slots[-1], plan.hazard
        groups = {p.group for p in plan_posts(plan, "I", [site])}
        assert groups == {g.code for g in GROUPS.wartime}


def test_grid_posts_go_to_every_grid_and_bigger_communities_get_more():
    plan = load_plans(skills=SKILLS, workgroups=GROUPS)["flood"]
    small = Site("C1", "S1", 30.0, 120.0, grids=tuple((f"C1-{i}", "g", 30.0, 120.0) for i in range(4)))
    big = Site("C2", "S1", 30.0, 120.0, grids=tuple((f"C2-{i}", "g", 30.0, 120.0) for i in range(16)))
    watch = [p for p in plan_posts(plan, "I", [small]) if p.code == "grid_watch"]
    assert sorted(p.site_code for p in watch) == [f"C1-{i}" for i in range(4)]
    total = lambda site: sum(p.headcount for p in plan_posts(plan, "I", [site]))  # noqa: E731
    assert total(big) > total(small)


def test_levels_in_the_words_people_use():
    assert [parse_level(x) for x in ("I", "2", "Ⅲ级", "四", "iv", "V", "")] == ["I", "II", "III", "IV", "IV", None, None]


BAD = """hazard: flood
zh: 防汛
deadlines:
  acknowledge: {I: 10, II: 15, III: 20, IV: 30}
  arrive: {I: 40, II: 60, III: -5, IV: 120}
posts:
  - {code: desk, group: command, zh: 值守, location: office, per: community, headcount: {I: 2, II: 3}}
  - {code: desk, group: nowhere, zh: 重复, location: office, per: street, headcount: 2, skills_all: [潜水]}
  - {code: med, group: medical, zh: 医疗, location: shelter, per: community, headcount: 2, priority: 9}
"""


def test_a_malformed_plan_names_file_line_and_field(tmp_path: Path):
    (tmp_path / "flood.yaml").write_text(BAD, encoding="utf-8")
    with pytest.raises(InvalidInput) as caught:
        load_plans(tmp_path, skills=SKILLS, workgroups=GROUPS)
    found = {(p.row, p.field) for p in caught.value.problems}
    assert (5, "deadlines.arrive.III") in found  # negative minutes
    assert (7, "posts[0].headcount.II") in found  # level II needs more than level I
    assert (8, "posts[1].group") in found and (8, "posts[1].per") in found
    assert (8, "posts[1].skills_all[0]") in found
    assert (8, "posts[1].code") in found  # duplicate code
    assert (9, "posts[2].priority") in found
    assert all(p.file == "flood.yaml" and p.reason_zh and p.reason_en for p in caught.value.problems)


def test_broken_yaml_points_at_the_line(tmp_path: Path):
    (tmp_path / "x.yaml").write_text("hazard: flood\nposts: [\n  {code: a\n", encoding="utf-8")
    with pytest.raises(InvalidInput) as caught:
        load_plans(tmp_path, skills=SKILLS, workgroups=GROUPS)
    assert caught.value.problems[0].row is not None and caught.value.problems[0].file == "x.yaml"


def test_a_resized_post_changes_only_its_headcount_and_leader_need():
    plans = load_plans(skills=SKILLS, workgroups=GROUPS)
    sites = [Site("C1", "S1", 30.0, 120.0, grids=(("G1", "Grid 1", 30.0, 120.0),))]
    for spec in plan_posts(plans["flood"], "I", sites):
        for headcount, leader in ((1, False), (spec.headcount + 2, True)):
            assert spec.resized(headcount, leader) == dataclasses.replace(spec, headcount=headcount,
                                                                         leader_required=leader)
    # every field its own value, none a default: a field resized() forgot would show
    spec = PostSpec(*(object() for _ in dataclasses.fields(PostSpec)))
    assert spec.resized(3, True) == dataclasses.replace(spec, headcount=3, leader_required=True)
