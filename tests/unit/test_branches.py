"""Temporary party branches (临时党支部): formation, joint branches, party groups and repair."""

from __future__ import annotations

from mobilize.branches import Member, form_branches, repair_branches


def make_member(person, group="medical", community="C1", **kw) -> Member:
    return Member(person, community, group, **kw)


def test_exactly_three_party_members_form_a_branch():
    plan = form_branches([make_member(i) for i in range(3)])
    assert [(b.id, b.members, b.joint) for b in plan.branches] == [("C1:medical", (0, 1, 2), False)]
    assert plan.no_branch == ()


def test_non_party_members_do_not_count():
    plan = form_branches([make_member(0), make_member(1), make_member(2, party_member=False)])
    assert plan.branches == ()
    assert plan.no_branch[0].party_members == 2 and "3" in plan.no_branch[0].reason_en


def test_a_group_of_two_joins_the_largest_branch_of_its_community():
    ms = ([make_member(i, "medical") for i in range(3)] + [make_member(10 + i, "patrol") for i in range(4)]
          + [make_member(20 + i, "care") for i in range(2)] + [make_member(30 + i, "care", "C2") for i in range(2)])
    plan = form_branches(ms)
    by_id = {b.id: b for b in plan.branches}
    assert set(by_id) == {"C1:medical", "C1:patrol"}
    assert by_id["C1:patrol"].groups == ("care", "patrol") and by_id["C1:patrol"].joint
    assert [n.community for n in plan.no_branch] == ["C2"]


def test_small_groups_that_together_reach_three_form_one_joint_branch():
    plan = form_branches([make_member(1, "medical"), make_member(2, "patrol"), make_member(3, "care")])
    assert [(b.id, b.groups) for b in plan.branches] == [("C1:joint", ("care", "medical", "patrol"))]


def test_secretary_is_the_designated_leader_else_command_post_else_nearest_the_centre():
    ms = [make_member(1, lat=0.0), make_member(2, lat=1.0), make_member(3, lat=2.0)]
    assert form_branches(ms).branches[0].secretary == 2  # nearest the centre
    ms[2] = make_member(3, lat=2.0, command_post=True)
    assert form_branches(ms).branches[0].secretary == 3
    ms[0] = make_member(1, lat=0.0, leader=True)
    assert form_branches(ms).branches[0].secretary == 1


def test_a_large_branch_splits_into_party_groups_of_at_most_seven():
    plan = form_branches([make_member(i) for i in range(20)])
    b = plan.branches[0]
    sizes = [len(g.members) for g in b.party_groups]
    assert len(sizes) == 3 and max(sizes) <= 7 and sum(sizes) == 20
    assert all(g.head in g.members for g in b.party_groups)
    assert form_branches([make_member(i) for i in range(15)]).branches[0].party_groups == ()


def test_repair_keeps_the_secretary_when_still_present():
    ms = [make_member(i, leader=(i == 0)) for i in range(5)]
    plan = form_branches(ms)
    fixed = repair_branches(plan, ms[:4] + [make_member(9, leader=True)])
    assert fixed.branches[0].secretary == 0
    assert [c.kind for c in fixed.changes] == ["members"]


def test_repair_replaces_a_secretary_who_dropped_out_and_says_so():
    ms = [make_member(i, leader=(i == 0)) for i in range(5)]
    fixed = repair_branches(form_branches(ms), ms[1:])
    assert fixed.branches[0].secretary != 0 and fixed.branches[0].id == "C1:medical"
    assert any(c.kind == "secretary" and "0 →" in c.detail for c in fixed.changes)


def test_repair_keeps_party_groups_stable():
    ms = [make_member(i) for i in range(20)]
    plan = form_branches(ms)
    before = plan.branches[0].party_groups
    fixed = repair_branches(plan, ms[1:] + [make_member(99)])
    after = fixed.branches[0].party_groups
    assert [g.id for g in after] == [g.id for g in before]
    moved = sum(len(set(a.members) ^ set(b.members)) for a, b in zip(after, before))
    assert moved == 2  # one left, one joined; nobody else moved


def test_repair_reports_a_branch_that_falls_below_three():
    ms = [make_member(i) for i in range(3)]
    fixed = repair_branches(form_branches(ms), ms[:2])
    assert fixed.branches == () and [c.kind for c in fixed.changes] == ["dissolved"]
    assert fixed.no_branch[0].party_members == 2


def test_formation_is_deterministic():
    ms = [make_member(i, g) for i, g in enumerate(["medical", "patrol", "care"] * 4)]
    assert form_branches(ms) == form_branches(list(reversed(ms)))
