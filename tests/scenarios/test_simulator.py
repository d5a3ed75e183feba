"""The simulator on the real core: seeded, and sane in the ways a planner can check by hand."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mobilize.activations.writes import demands_of
from mobilize.plans import plan_posts
from mobilize.solver import solve
from scenarios.model import default_plans, load_scenario, shipped
from scenarios.simulator import Drill, prepare, simulate
from tests.scenarios.conftest import INSTANT

ROOT = Path(__file__).resolve().parents[2]


def _fingerprint(result: dict) -> str:
    keep = {k: result[k] for k in ("slots", "assigned", "confirmed", "arrived", "time_to", "counts", "posts",
                                   "branches", "short_by_skill")}
    return json.dumps(keep, sort_keys=True)


@pytest.fixture(scope="module")
def flood():
    return load_scenario(shipped()["street_flood"])


def test_same_seed_same_numbers_different_seed_different_numbers(flood):
    a, b, c = simulate(flood, 11), simulate(flood, 11), simulate(flood, 12)
    assert _fingerprint(a) == _fingerprint(b)
    assert _fingerprint(a) != _fingerprint(c)
    assert a["counts"]["notified"] > a["slots"] * 0.8  # the whole street was called up
    assert a["counts"]["declined"] > 0 and a["counts"]["escalated_ack"] > 0 and a["counts"]["backup_found"] > 0


def test_same_seed_same_numbers_in_another_process_with_another_hash_seed(flood):
    code = ("import json,sys; from scenarios.model import load_scenario, shipped; from scenarios.simulator import simulate;"
            "from tests.scenarios.test_simulator import _fingerprint;"
            "print(_fingerprint(simulate(load_scenario(shipped()['street_flood']), 11)))")
    outs = []
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        outs.append(subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                                   check=True).stdout.strip())
    assert outs[0] == outs[1] == _fingerprint(simulate(flood, 11))


def test_everyone_answering_at_once_fills_every_fillable_slot_at_t0_then_arrives_after_travel(write_scenario):
    path = write_scenario("""
        roster: {demo: small, seed: 1}
        scope: "330102001"
        hazard: flood
        level: II
        timeline:
          - {at: 120, end: true}
        """, INSTANT)
    scenario = load_scenario(path)
    drill = Drill(scenario, 5)
    result = drill.run()
    act = drill.activation
    # the same solve the live activation makes: who is available at the start, the plan's posts
    world = prepare(scenario)
    available = world.available_at(scenario.start)
    people = [p for p, ok in zip(world.people, available) if ok]
    plan = default_plans()["flood"]
    expected = solve(people, demands_of(plan_posts(plan, "II", list(act.sites))))
    assert result["slots"] == sum(a.headcount for a in act.specs.values())
    assert result["assigned"] == result["confirmed"] == result["arrived"] == len(expected.assignments)
    assert result["slots"] - result["assigned"] == expected.unfilled > 0  # only what nobody may fill is short
    assert result["series"]["confirmed"][0] == len(expected.assignments)  # all confirmed at T+0
    assert result["counts"].get("escalated_ack", 0) == 0 and result["counts"].get("declined", 0) == 0
    last = max(a.travel_minutes for a in expected.assignments)
    arrived = [o.state.arrived_at for o in act.orders]
    assert max(act.minutes(t) for t in arrived) == pytest.approx(last)  # T+0 plus the longest travel
    assert all(act.minutes(o.state.arrived_at) == pytest.approx(a.travel_minutes)
               for o, a in zip(act.orders, expected.assignments))


def test_removing_all_medics_leaves_exactly_the_medical_posts_short(write_scenario):
    text = """
        roster: {{demo: small, seed: 1}}
        scope: "330102001"
        hazard: flood
        level: III
        timeline:
          {ill}- {{at: 60, end: true}}
        """
    base = simulate(load_scenario(write_scenario(text.format(ill=""), INSTANT, name="base.yaml")), 3)
    ill = "- {at: 0, illness: {skill: medical, share: 1.0}}\n          "
    without = simulate(load_scenario(write_scenario(text.format(ill=ill), INSTANT, name="ill.yaml")), 3)
    assert base["assigned"] == base["slots"]  # level III: the street fills everything
    short = {k for k, (need, held, *_) in without["posts"].items() if held < need}
    assert short and all(without["post_names"][k][4] and "medical" in without["post_names"][k][4][0] for k in short)
    first_aid = {k for k in without["posts"] if "/first_aid" in k}
    assert first_aid <= short and all(without["posts"][k][1] == 0 for k in first_aid)
    # every unfilled slot needs a medic (first aid; visits that take a medic or an elderly carer): nothing else
    assert all("medical" in skill.split("|") for skill in without["short_by_skill"])
    assert sum(without["short_by_skill"].values()) == sum(without["posts"][k][0] - without["posts"][k][1] for k in short)


def test_a_road_cut_moves_the_holders_of_affected_posts(write_scenario):
    grid = "330102001003-04"
    path = write_scenario(f"""
        roster: {{demo: small, seed: 1}}
        scope: "330102001"
        hazard: flood
        level: II
        timeline:
          - {{at: 1, road_cut: {grid}}}
          - {{at: 30, end: true}}
        behaviour:
          default: {{answer: 1, decline: 0, answer_delay: 0, depart_delay: 0, speed_kmh: 0.5, no_show: 0}}
        """)
    drill = Drill(load_scenario(path), 2)
    act = drill.activation
    drill.start()
    world = drill.world
    affected = [(o.post, o.person) for o in act.orders
                if o.post.endswith("@" + grid) != (world.grid[o.person] == grid)]
    assert affected
    result = drill.run()
    assert result["counts"]["moved_by_road_cut"] == len(affected)
    holding = [o for o in act.orders if o.state.status == "released"]  # held until the switch-back at the end
    assert len(holding) == result["assigned"]
    for o in holding:
        in_grid_post = o.post.endswith("@" + grid)
        lives_there = world.grid[o.person] == grid
        assert in_grid_post == lives_there, (o.post, world.grid[o.person])
    for post, person in affected:
        assert all(o.person != person for o in holding if o.post == post)
    assert any(o.post.endswith("@" + grid) and o.state.created_at > act.at(0) for o in holding)  # refilled from inside
