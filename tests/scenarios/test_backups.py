"""The cut-down backup search finds an optimum of the same cost as the solver on every candidate."""

from __future__ import annotations

from dataclasses import replace

import pytest

import scenarios.activation as activation
from mobilize.costs import CostPolicy, Person, Post
from mobilize.solver import solve
from scenarios import backups
from scenarios.model import load_scenario, shipped
from scenarios.simulator import Drill


def test_dominated_candidates_are_left_out_ties_and_whole_squads_stay():
    people = [Person(1, "C1", "S1", 30.0, 120.0), Person(2, "C1", "S1", 30.0, 120.0),  # tied, nearest
              Person(3, "C1", "S1", 30.05, 120.0),  # farther: dominated
              Person(4, "C1", "S1", 30.2, 120.0, squad="q"), Person(5, "C1", "S1", 30.0, 120.0, squad="q"),
              Person(6, "C1", "S1", 30.2, 120.0, squad="far")]  # every member costs more: left out whole
    post = Post("gate", "C1", "S1", 30.0, 120.0, headcount=1)
    kept = backups.cheapest(("test", post), people, range(6), list(range(6)), post, CostPolicy())
    assert kept == [0, 1, 3, 4]


@pytest.mark.parametrize("name", ["street_flood", "community_epidemic"])
def test_every_backup_costs_what_the_full_solve_costs(name, monkeypatch):
    checked = []
    cut = backups.solve_slot

    def both(slot, people, street, candidates, demand, policy):
        got = cut(slot, people, street, candidates, demand, policy)
        full = solve([people[i] for i in candidates], [demand], policy).assignments
        assert len(got) == len(full) and sum(a.cost for a in got) == sum(a.cost for a in full)
        checked.append(len(candidates))
        return got

    monkeypatch.setattr(activation, "solve_slot", both)
    scenario = load_scenario(shipped()[name])
    for variant in (scenario.baseline, *scenario.variants):
        Drill(replace(scenario, variants=()), 3, variant).run()
    assert len(checked) > 20
