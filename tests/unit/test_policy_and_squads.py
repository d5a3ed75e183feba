"""Borrowing off in the cost policy, the policy's validation and round trip, and squad anchors for many squads."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mobilize.costs import Arrays, CostPolicy, travel_minutes
from mobilize.errors import InvalidInput
from mobilize.reference import export_problem, verify
from mobilize.solver import solve
from tests.unit.test_solver import check_feasible, make_person, make_post, people_and_posts


def test_without_borrowing_a_short_community_stays_short():
    people = [make_person(1, "A"), make_person(2, "B"), make_person(3, "B")]
    posts = [make_post("gate", "A", headcount=2)]
    with_borrow = solve(people, posts)
    assert len(with_borrow.borrowed) == 1 and with_borrow.unfilled == 0
    alone = solve(people, posts, CostPolicy(borrowing=False))
    assert not alone.borrowed and alone.unfilled == 1
    assert [x.person for x in alone.assignments] == [1]
    audit = export_problem(alone)
    assert all(p == 1 for p, _s, _c in audit["edges"])  # no edge from B at all
    assert verify(audit) == alone.objective > with_borrow.objective


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(people_and_posts())
def test_without_borrowing_optimal_against_networkx_and_never_borrows(data):
    people, posts = data
    sol = solve(people, posts, CostPolicy(borrowing=False))
    check_feasible(sol, people, posts)
    by_id = {p.id: p for p in people}
    post = {q.id: q for q in posts}
    assert all(by_id[x.person].community == post[x.post].community for x in sol.assignments)
    assert verify(export_problem(sol)) == sol.objective


@pytest.mark.parametrize("field, value", [("borrow", -1), ("borrowing", "no"), ("minutes_per_km", 0),
                                          ("unfilled_by_priority", (1, 2)), ("move_notified", True)])
def test_a_bad_policy_names_its_field(field, value):
    with pytest.raises(InvalidInput) as err:
        CostPolicy(**{field: value})
    assert [p.field for p in err.value.problems] == [field]


def test_the_policy_round_trips_and_old_rows_read_as_defaults():
    policy = CostPolicy(borrowing=False, borrow=50)
    assert CostPolicy.from_dict(policy.as_dict()) == policy
    assert CostPolicy.from_dict(None) == CostPolicy()
    assert CostPolicy.from_dict({"borrow": 45}).borrowing is True
    with pytest.raises(InvalidInput):
        CostPolicy.from_dict({"teleport": 1})


def reference_anchor(a: Arrays, chunk: np.ndarray) -> int:
    """The anchor rule written out for one squad (see mobilize.squads), to hold the vectorized one against."""
    pre = a.p_pre[chunk]
    pre = pre[pre >= 0]
    if len(pre):
        posts, counts = np.unique(pre, return_counts=True)
        return int(min(zip(posts, counts), key=lambda pc: (-pc[1], -a.posts[pc[0]].headcount,
                                                             str(a.posts[pc[0]].id)))[0])
    comms, ccount = np.unique(a.p_comm[chunk], return_counts=True)
    comm = comms[np.argmax(ccount)]
    posts = np.flatnonzero(a.q_comm == comm)
    if not len(posts):
        return -1
    groups = np.flatnonzero(np.isin(a.g_post, posts))
    takes: dict[int, int] = {}
    for g, row in zip(groups, a.qualifies(groups, chunk)):
        takes[int(a.g_post[g])] = takes.get(int(a.g_post[g]), 0) + int(row.sum())
    dist = travel_minutes(a.p_lat[chunk].mean(), a.p_lon[chunk].mean(), a.q_lat[posts], a.q_lon[posts], 60.0)
    return int(min(zip(posts, dist), key=lambda pd: (-min(a.posts[pd[0]].headcount, takes.get(int(pd[0]), 0)),
                                                     pd[1], str(a.posts[pd[0]].id)))[0])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(people_and_posts(), st.lists(st.sampled_from(["Q1", "Q2", "Q3", None]), min_size=10, max_size=10))
def test_vectorized_squad_anchors_follow_the_rule(data, squads):
    people, posts = data
    people = [replace(p, squad=s) for p, s in zip(people, squads)]
    a = Arrays(people, posts, CostPolicy())
    got = a.squad_anchors()
    for s in range(len(a.squads)):
        chunk = np.flatnonzero((a.p_squad == s) & a.p_eligible)
        assert got[s] == (reference_anchor(a, chunk) if len(chunk) else -1)
    again = a.squad_anchors_for(np.full(len(a.squads), -7), range(len(a.communities)))
    assert np.array_equal(again, got)
