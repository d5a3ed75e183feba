"""The assignment solver: optimal for its costs (held against networkx), feasible, and explainable."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mobilize.costs import CostPolicy, Person, Post
from mobilize.errors import InvalidInput
from mobilize.reference import AuditError, export_problem, objective_of, verify
from mobilize.solver import build_problem, resolve, solve

SKILLS = ("medical", "driving", "boat")


def make_person(id, community="C1", street="S1", **kw) -> Person:
    base = dict(lat=30.0, lon=120.0)
    base.update(kw)
    if "skills" in base:
        base["skills"] = frozenset(base["skills"])
    return Person(id, community, street, **base)


def make_post(id, community="C1", street="S1", headcount=1, **kw) -> Post:
    base = dict(lat=30.0, lon=120.0)
    base.update(kw)
    for k in ("skills_all", "skills_any"):
        if k in base:
            base[k] = frozenset(base[k])
    return Post(id, community, street, headcount=headcount, **base)


communities = st.sampled_from([("C1", "S1"), ("C2", "S1"), ("C3", "S1"), ("C4", "S2")])
coords = st.tuples(st.floats(30.0, 30.02), st.floats(120.0, 120.02))


@st.composite
def people_and_posts(draw):
    n_posts = draw(st.integers(0, 6))
    posts = []
    for k in range(n_posts):
        comm, street = draw(communities)
        lat, lon = draw(coords)
        posts.append(Post(
            f"P{k}", comm, street, lat, lon, headcount=draw(st.integers(0, 3)),
            skills_all=frozenset(draw(st.sets(st.sampled_from(SKILLS), max_size=1))),
            skills_any=frozenset(draw(st.sets(st.sampled_from(SKILLS), max_size=2))),
            leader_required=draw(st.booleans()), priority=draw(st.integers(1, 5))))
    people = []
    for i in range(draw(st.integers(0, 10))):
        comm, street = draw(communities)
        lat, lon = draw(coords)
        people.append(Person(
            i, comm, street, lat, lon, skills=frozenset(draw(st.sets(st.sampled_from(SKILLS)))),
            leader=draw(st.booleans()), squad=draw(st.sampled_from([None, None, "Q1", "Q2"])),
            preassigned_post=draw(st.sampled_from([None] + [q.id for q in posts])),
            recent_duty=draw(st.integers(0, 3)), eligible=draw(st.integers(0, 5)) > 0))
    return people, posts


def check_feasible(sol, people, posts):
    by_id = {p.id: p for p in people}
    post = {q.id: q for q in posts}
    seen = set()
    filled: dict[str, int] = {}
    for x in sol.assignments:
        assert x.person not in seen, "a person on two posts"
        seen.add(x.person)
        p, q = by_id[x.person], post[x.post]
        assert p.eligible
        assert q.skills_all <= p.skills
        assert not q.skills_any or q.skills_any & p.skills
        if x.leader_part:
            assert p.leader and q.leader_required
        assert x.cost == sum(x.parts().values())
        assert p.street == q.street
        filled[x.post] = filled.get(x.post, 0) + 1
    for qid, n in filled.items():
        assert n <= post[qid].headcount
    assert sum(s.missing for s in sol.shortages) == sum(q.headcount for q in posts) - len(sol.assignments)
    assert sol.unfilled == sum(s.missing for s in sol.shortages)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(people_and_posts())
def test_optimal_and_feasible_against_networkx(data):
    people, posts = data
    sol = solve(people, posts)
    check_feasible(sol, people, posts)
    audit = export_problem(sol)
    assert objective_of(audit) == sol.objective
    assert verify(audit) == sol.objective  # networkx's network simplex on the same network


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(people_and_posts(), st.data())
def test_resolve_equals_full_solve_with_keep_in_place(data, draw):
    people, posts = data
    sol = solve(people, posts)
    removed = draw.draw(st.sets(st.sampled_from([p.id for p in people]), max_size=2)) if people else set()
    added = []
    for k in range(draw.draw(st.integers(0, 2))):
        comm, street = draw.draw(communities)
        added.append(make_post(f"N{k}", comm, street, headcount=draw.draw(st.integers(1, 2)),
                               priority=draw.draw(st.integers(1, 5)),
                               skills_any=draw.draw(st.sets(st.sampled_from(SKILLS), max_size=1))))
    again = resolve(sol, removed_people=removed, added_posts=added)
    changed = [replace(p, eligible=False) if p.id in removed else p for p in people]
    current = {x.person: x.post for x in sol.assignments}
    full = solve(changed, posts + added, current=current)
    assert again.objective == full.objective
    check_feasible(again, changed, posts + added)
    assert all(x.person not in removed for x in again.assignments)
    assert verify(export_problem(again)) == again.objective


def test_a_community_without_a_medic_leaves_exactly_the_medical_post_short():
    people = [make_person(i, skills={"driving"}) for i in range(6)]
    posts = [make_post("med", headcount=2, skills_all={"medical"}, priority=1),
             make_post("gate", headcount=3, priority=2)]
    sol = solve(people, posts)
    assert [str(s) for s in sol.shortages] == ["med: medical ×2"]
    assert sum(x.post == "gate" for x in sol.assignments) == 3


def test_a_squad_preassigned_together_stays_together():
    squad = [make_person(i, squad="Q", preassigned_post="A", lon=120.0 + i * 0.001) for i in range(4)]
    others = [make_person(10 + i, lon=120.0) for i in range(4)]
    posts = [make_post("A", headcount=4, lon=120.01), make_post("B", headcount=4, lon=120.0)]
    sol = solve(squad + others, posts)
    assert {sol.post_of(p.id) for p in squad} == {"A"}
    assert sol.split_squads == {}


def test_a_squad_splits_only_when_its_post_needs_fewer_and_says_so():
    squad = [make_person(i, squad="Q", preassigned_post="A") for i in range(4)]
    posts = [make_post("A", headcount=2), make_post("B", headcount=2)]
    sol = solve(squad, posts)
    assert sol.split_squads == {"Q": ("A", "B")}
    on_b = [x for x in sol.assignments if x.post == "B"]
    assert all(x.squad_split == CostPolicy().squad_split for x in on_b)


def test_a_squad_split_by_skills():
    squad = [make_person(0, squad="Q", skills={"medical"}), make_person(1, squad="Q"),
             make_person(2, squad="Q")]
    posts = [make_post("gate", headcount=3), make_post("med", headcount=1, skills_all={"medical"}, priority=1)]
    sol = solve(squad, posts)
    assert sol.post_of(0) == "med" and sol.split_squads == {"Q": ("gate", "med")}


def test_a_short_community_borrows_from_its_street_and_only_then():
    a = [make_person(i, "A", skills={"medical"} if i < 3 else ()) for i in range(6)]
    b = [make_person(10 + i, "B", lon=120.005) for i in range(4)]
    far = [make_person(20, "Z", "S2", skills={"medical"})]
    posts = [make_post("A-med", "A", headcount=1, skills_all={"medical"}),
             make_post("B-med", "B", headcount=2, skills_all={"medical"}, lon=120.005),
             make_post("B-gate", "B", headcount=3, lon=120.005)]
    sol = solve(a + b + far, posts)
    borrowed = {x.person: x.post for x in sol.borrowed}
    assert set(borrowed.values()) == {"B-med"} and len(borrowed) == 2
    assert all(x.borrow == CostPolicy().borrow for x in sol.borrowed)
    assert sol.post_of(20) is None  # another street never lends
    assert sol.shortages == ()
    # once B has its own medics it borrows nobody, even if A's medics sit closer
    b2 = b + [make_person(30 + i, "B", skills={"medical"}, lon=120.01) for i in range(2)]
    assert solve(a + b2, posts).borrowed == ()


def test_critical_posts_fill_before_low_priority_ones():
    people = [make_person(i, lon=120.0 + 0.002 * i) for i in range(3)]
    posts = [make_post("low", headcount=3, priority=5, lon=120.0), make_post("crit", headcount=2, priority=1,
                                                                             lon=120.02)]
    sol = solve(people, posts)
    assert sum(x.post == "crit" for x in sol.assignments) == 2
    assert [str(s) for s in sol.shortages] == ["low: people ×2"]


def test_a_leader_post_gets_a_leader_part():
    people = [make_person(1), make_person(2, leader=True), make_person(3)]
    sol = solve(people, [make_post("cmd", headcount=2, leader_required=True, priority=1)])
    leader = [x for x in sol.assignments if x.leader_part]
    assert [x.person for x in leader] == [2] and leader[0].slot_group == "cmd.leader"
    without = solve([make_person(1), make_person(3)], [make_post("cmd", headcount=2, leader_required=True)])
    assert [str(s) for s in without.shortages] == ["cmd: leader ×1"]


def test_staying_on_the_preassigned_post_is_cheapest_and_explained():
    people = [make_person(1, preassigned_post="B", lon=120.004), make_person(2, lon=120.0)]
    posts = [make_post("A", lon=120.0), make_post("B", lon=120.006)]
    sol = solve(people, posts)
    assert sol.post_of(1) == "B"
    x = next(x for x in sol.assignments if x.person == 1)
    assert x.preassignment == 0 and x.travel == x.travel_minutes > 0


def test_unavailable_people_are_never_assigned():
    sol = solve([make_person(1, eligible=False)], [make_post("A", priority=1)])
    assert sol.assignments == () and sol.unfilled == 1


def test_a_decline_moves_nobody_else_when_a_spare_can_step_in():
    people = [make_person(i, lon=120.0 + 0.001 * i) for i in range(5)]
    posts = [make_post("A", headcount=2), make_post("B", headcount=2, lon=120.003)]
    sol = solve(people, posts)
    gone = sol.assignments[0].person
    again = resolve(sol, removed_people=[gone])
    moves = again.moves_from(sol)
    assert {m.person for m in moves if m.old_post is not None} == {gone}
    assert again.unfilled == 0


def test_the_audit_catches_a_wrong_assignment():
    sol = solve([make_person(1), make_person(2)], [make_post("A", headcount=1)])
    audit = export_problem(sol)
    audit["assignment"] = []
    audit["objective"] = objective_of(audit)
    with pytest.raises(AuditError, match="not optimal"):
        verify(audit)
    audit["assignment"] = [[1, "A"], [1, "A"]]
    with pytest.raises(AuditError):
        verify(audit)


def test_bad_input_names_the_row():
    with pytest.raises(InvalidInput) as err:
        build_problem([make_person(1), make_person(1)], [make_post("A", priority=9)])
    fields = {(p.row, p.field) for p in err.value.problems}
    assert (1, "id") in fields and (0, "priority") in fields


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 4)), max_size=12, unique_by=lambda e: e[0]),
       st.integers(0, 5))
def test_one_slot_gets_the_same_person_as_the_sparse_matching(edges, unfilled):
    """A backup search's single slot skips the sparse matrix and still gets LAPJVsp's very choice (ties too)."""
    import numpy as np

    from mobilize.blocks import match_one_slot, match_scipy

    j = np.array([e[0] for e in edges], dtype=np.int64)
    cost = np.array([e[1] for e in edges], dtype=np.int64)
    one = np.array([1], dtype=np.int64)
    expected = match_scipy(np.zeros(len(j), dtype=np.int64), j, cost, one, np.array([unfilled]), 31)
    assert match_one_slot(j, cost, unfilled, 31).tolist() == expected.tolist()
