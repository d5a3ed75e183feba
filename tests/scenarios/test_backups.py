"""The cut-down backup search gets the very answer the solver gives on every candidate."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

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
    street = backups.Street(people, range(6))
    kept = backups.cheapest(("test", post), people, street, np.arange(6), post, CostPolicy())
    assert kept.tolist() == [0, 1, 3, 4]


def test_of_equally_cheap_people_the_one_the_solver_takes():
    """Own community first (it is not short, so nobody else gets an edge), else community order, then street order."""
    people = [Person(1, "C2", "S1", 30.0, 120.0), Person(2, "C1", "S1", 30.0, 120.0), Person(3, "C2", "S1", 30.0, 120.0),
              Person(4, "C3", "S1", 30.0, 120.0)]
    street = backups.Street(people, range(4))
    for demand_in, who, first in (("C2", [0, 1, 2], 0), ("C3", [0, 1, 2, 3], 3), ("C4", [0, 2, 3], 0),
                                  ("C4", [1, 2, 3], 1)):
        post = Post("gate", demand_in, "S1", 30.0, 120.0, headcount=1)
        assert backups.first_of_equals(street, np.array(who), post) == first
        full = solve([people[i] for i in who], [post], CostPolicy()).assignments
        assert [a.person for a in full] == [people[first].id]


@pytest.mark.parametrize("name", ["street_flood", "community_epidemic"])
def test_every_backup_is_what_the_full_solve_gives(name, monkeypatch):
    checked = []
    cut = backups.solve_slot

    def both(slot, people, street, candidates, demand, policy):
        got = cut(slot, people, street, candidates, demand, policy)
        everyone = [people[i] for i in street.idx[candidates].tolist()]
        full = solve(everyone, [demand], policy).assignments
        assert got == full  # the very same person, not only the same cost (a pick of one of equal people included)
        checked.append(len(candidates))
        return got

    monkeypatch.setattr(backups, "solve_slot", both)
    scenario = load_scenario(shipped()[name])
    for variant in (scenario.baseline, *scenario.variants):
        Drill(replace(scenario, variants=()), 3, variant).run()
    assert len(checked) > 20


def test_cost_rows_built_on_the_street_arrays_equal_a_fresh_build(monkeypatch):
    from mobilize.blocks import edge_costs
    from mobilize.costs import Arrays

    checked = []
    made = backups._costs

    def both(key, people, street, demand, policy):
        got = made(key, people, street, demand, policy)
        a = Arrays(street.people, [demand], policy)
        fresh = edge_costs(a, np.zeros(len(a.squads), dtype=np.int64), np.arange(len(a.g_post)), np.arange(len(street)))
        assert got.tolist() == fresh[0].tolist()
        checked.append(key)
        return got

    monkeypatch.setattr(backups, "_COSTS", {})
    monkeypatch.setattr(backups, "_costs", both)
    scenario = load_scenario(shipped()["street_flood"])
    for variant in (scenario.baseline, *scenario.variants):
        Drill(replace(scenario, variants=()), 5, variant).run()
    assert len(set(checked)) > 20
