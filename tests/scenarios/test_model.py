"""Scenario files: the shipped examples load; every mistake names its line and field."""

from __future__ import annotations

import pytest

from mobilize.errors import InvalidInput
from scenarios.model import (
    ExtraPosts,
    Illness,
    LevelChange,
    RoadCut,
    load_scenario,
    shipped,
)
from scenarios.simulator import prepare

BASE = """
roster: {demo: small, seed: 1}
scope: "330102001"
hazard: flood
level: II
timeline:
"""


def problems(exc: InvalidInput) -> list[tuple[int | None, str | None, str]]:
    return [(p.row, p.field, p.reason_en) for p in exc.problems]


def test_shipped_examples_load_and_match_their_rosters():
    names = shipped()
    assert {"street_flood", "city_typhoon", "community_epidemic"} <= set(names)
    flood = load_scenario(names["street_flood"])
    assert [type(i) for i in flood.injects] == [LevelChange, RoadCut, Illness, ExtraPosts]
    assert flood.end == 240 and flood.level == "II" and flood.variants[0].policy.borrowing is False
    prepare(flood)  # codes (scope, grid, place) exist in the demo city
    prepare(load_scenario(names["community_epidemic"]))


def test_unknown_hazard_names_its_line(write_scenario):
    path = write_scenario(BASE.replace("hazard: flood", "hazard: tsunami") + "  - {at: 60, end: true}\n")
    with pytest.raises(InvalidInput) as err:
        load_scenario(path)
    [(row, field, reason)] = problems(err.value)
    assert (row, field) == (3, "hazard") and "tsunami" in reason and "flood" in reason


def test_inject_after_the_end_is_refused(write_scenario):
    path = write_scenario(BASE + "  - {at: 90, level: I}\n  - {at: 60, end: true}\n")
    with pytest.raises(InvalidInput) as err:
        load_scenario(path)
    assert problems(err.value) == [(6, "timeline[0].at", "inject at T+90 comes after the end at T+60")]


def test_negative_probability_and_bad_distribution(write_scenario):
    path = write_scenario(BASE + "  - {at: 60, end: true}\nbehaviour:\n  default:\n    answer: -0.1\n"
                          "  kinds:\n    volunteer: {answer_delay: {lognormal: {median: 5}}}\n")
    with pytest.raises(InvalidInput) as err:
        load_scenario(path)
    found = problems(err.value)
    assert (9, "behaviour.default.answer", "a probability must be between 0 and 1 (got -0.1)") in found
    assert any(row == 11 and field == "behaviour.kinds.volunteer.answer_delay.lognormal" for row, field, _ in found)


def test_unknown_grid_is_caught_against_the_roster(write_scenario):
    path = write_scenario(BASE + "  - {at: 30, road_cut: 330102001009-01}\n  - {at: 60, end: true}\n")
    scenario = load_scenario(path)
    with pytest.raises(InvalidInput) as err:
        prepare(scenario)
    [(row, field, reason)] = problems(err.value)
    assert (row, field) == (6, "road_cut") and "330102001009-01" in reason


def test_many_mistakes_are_listed_together(write_scenario):
    path = write_scenario("""
        scope: "330102001"
        hazard: flood
        level: V
        colour: red
        timeline:
          - {at: -5, level: I}
          - {at: 10, illness: {kind: doctor, share: 2}}
          - {at: 20, extra_posts: {community: "330102001001", place: AZ1, post: helipad, headcount: 0}}
        """)
    with pytest.raises(InvalidInput) as err:
        load_scenario(path)
    fields = {field for _, field, _ in problems(err.value)}
    assert {"level", "colour", "timeline[0].at", "timeline[1].illness.kind", "timeline[1].illness.share",
            "timeline[2].extra_posts.post", "timeline[2].extra_posts.headcount", "timeline"} <= fields
    assert str(err.value).startswith("演练脚本有误 / The scenario is invalid")


def test_unknown_place_and_community(write_scenario):
    path = write_scenario(BASE + '  - {at: 30, extra_posts: {community: "330102001001", place: HELI, post: first_aid,'
                          ' headcount: 2}}\n  - {at: 60, end: true}\n')
    with pytest.raises(InvalidInput) as err:
        prepare(load_scenario(path))
    [(row, field, reason)] = problems(err.value)
    assert row == 6 and field == "extra_posts.place" and "HELI" in reason
