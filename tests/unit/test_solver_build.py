"""The solver's fast building blocks give exactly what their plain forms give (LAPJVsp's ties depend on it)."""

from __future__ import annotations

import networkx as nx
import numpy as np
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from mobilize.blocks import Block, components, short_groups, slot_matrix


def coordinate_matrix(r, j, cost, cap, unfilled, n_people) -> sp.csr_matrix:
    """The slot matrix as SciPy builds it from coordinates: one row per slot, then the unfilled columns."""
    start = np.concatenate([[0], np.cumsum(cap)])
    n_slots = int(start[-1])
    rows, cols, data = [], [], []
    for k in range(len(r)):
        for s in range(int(start[r[k]]), int(start[r[k] + 1])):
            rows.append(s), cols.append(j[k]), data.append(cost[k] + 1)
    slot_group = np.repeat(np.arange(len(cap)), cap)
    rows += list(range(n_slots))
    cols += [n_people + s for s in range(n_slots)]
    data += (unfilled[slot_group] + 1).tolist()
    return sp.csr_matrix((np.array(data, dtype=np.float64), (rows, cols)), shape=(n_slots, n_people + n_slots))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=1, max_size=6), st.integers(1, 12), st.data())
def test_slot_matrix_is_the_canonical_csr_matrix(cap, n_people, data):
    cap = np.array(cap, dtype=np.int64)
    pairs = data.draw(st.lists(st.tuples(st.integers(0, len(cap) - 1), st.integers(0, n_people - 1)),
                               unique=True, max_size=40))  # in any order, as borrow edges come
    costs = data.draw(st.lists(st.integers(0, 500), min_size=len(pairs), max_size=len(pairs)))
    unfilled = np.array(data.draw(st.lists(st.integers(0, 10_000), min_size=len(cap), max_size=len(cap))))
    r = np.array([p[0] for p in pairs], dtype=np.int64)
    j = np.array([p[1] for p in pairs], dtype=np.int64)
    cost = np.array(costs, dtype=np.int64)
    got = slot_matrix(r, j, cost, cap, unfilled, n_people)
    want = coordinate_matrix(r, j, cost, cap, unfilled, n_people)
    assert got.shape == want.shape
    for k in ("indptr", "indices", "data"):
        assert getattr(got, k).tolist() == getattr(want, k).tolist(), k


@settings(max_examples=200, deadline=None)
@given(st.lists(st.booleans(), min_size=0, max_size=48), st.integers(1, 8), st.data())
def test_short_groups_by_the_hall_rule(bits, n_groups, data):
    n_people = len(bits) // n_groups
    ok = np.array(bits[:n_groups * n_people], dtype=bool).reshape(n_groups, n_people)
    cap = np.array(data.draw(st.lists(st.integers(1, 3), min_size=n_groups, max_size=n_groups)), dtype=np.int64)
    expected = []  # group x is short when the groups whose qualified set lies within x's need more than it has
    for x in range(n_groups):
        within = [y for y in range(n_groups) if not (ok[y] & ~ok[x]).any()]
        expected.append(ok[x].sum() < cap[within].sum())
    assert short_groups(ok, cap).tolist() == expected


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 12), st.lists(st.tuples(st.integers(0, 11), st.integers(0, 11)), max_size=20))
def test_components_are_networkx_connected_components(n, borrows):
    p_comm = np.arange(n)  # person i lives in community i

    class A:
        communities = list(range(n))
    A.p_comm = p_comm
    empty = np.zeros(0, dtype=np.int64)
    lenders = {c: sorted({x % n for c2, x in borrows if c2 % n == c}) for c in range(n)}
    blocks = [Block(empty, empty, np.zeros((0, 0)), empty, empty, np.array(lenders[c], dtype=np.int64), empty)
              for c in range(n)]
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    graph.add_edges_from((c, x) for c in range(n) for x in lenders[c])
    expected = sorted(tuple(sorted(k)) for k in nx.connected_components(graph))
    assert components(A, blocks, range(n)) == expected


SKILLS = ("medical", "driving", "boat")


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sets(st.sampled_from(SKILLS)), st.booleans(), st.booleans()), min_size=1, max_size=8),
       st.lists(st.tuples(st.sets(st.sampled_from(SKILLS)), st.sets(st.sampled_from(SKILLS)), st.booleans(),
                          st.integers(1, 3)), min_size=1, max_size=6))
def test_qualifies_by_kind_is_the_rule_pair_by_pair(people, posts):
    """Who may fill what, looked up per kind of person and slot group, is the rule applied to every pair."""
    from mobilize.costs import Arrays, CostPolicy, Person, Post

    a = Arrays([Person(i, "C", "S", 30.0, 120.0, frozenset(s), leader=lead, eligible=ok)
                for i, (s, lead, ok) in enumerate(people)],
               [Post(f"q{k}", "C", "S", 30.0, 120.0, headcount=h, skills_all=frozenset(x), skills_any=frozenset(y),
                     leader_required=lead) for k, (x, y, lead, h) in enumerate(posts)], CostPolicy())
    groups, persons = np.arange(len(a.g_post)), np.arange(len(a.people))
    got = a.qualifies(groups, persons)
    for g in groups.tolist():
        q = a.posts[a.g_post[g]]
        for i in persons.tolist():
            p = a.people[i]
            want = (p.eligible and q.skills_all <= p.skills and (not q.skills_any or bool(q.skills_any & p.skills))
                    and (p.leader or not a.g_leader[g]))
            assert bool(got[g, i]) == want
