"""The escalation ladder: steps come due in order, catch up after a restart, and never fire twice."""

from __future__ import annotations

import doctest
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings, strategies as st

from mobilize import escalation
from mobilize.errors import Conflict, InvalidInput
from mobilize.escalation import STEPS, Ladder, default_ladder, due_steps, mark_fired, next_check_at, overdue
from mobilize.orders import apply, new_order

T0 = datetime(2024, 7, 1, 8, 0, tzinfo=timezone.utc)
ACK, ARRIVE = 10, 40
LADDER = default_ladder(ACK)  # ack (0, 5, 10, 15), arrive (0, 3, 5, 8)


def minutes(m: float) -> datetime:
    return T0 + timedelta(minutes=m)


def escalated(at: float = ACK):
    return apply(new_order(T0, ACK, ARRIVE), "timeout_ack", actor="system", at=minutes(at)).order


def sweep(order, now, fired: list):
    """What the sweeper does at ``now``: apply a due timeout, then fire every due step once."""
    action = overdue(order, now)
    if action:
        order = apply(order, action, actor="system", at=now).order
    for step in due_steps(order, LADDER, now):
        assert step.due_at <= now
        order = mark_fired(order, step)
        fired.append((step.kind, step.name, step.number))
    return order


def test_default_ladder_is_scaled_from_the_plan_ack_minutes():
    assert LADDER == Ladder(ack=(0, 5, 10, 15), arrive=(0, 3, 5, 8))
    fire_level_one = default_ladder(5)  # fire, level I: 5-minute ack deadline
    assert fire_level_one.ack[STEPS.index("reassign_post")] == 5
    assert default_ladder(60).ack == (0, 30, 60, 90)


def test_the_arrive_ladder_is_shorter_than_the_ack_ladder():
    for ack in (1, 5, 10, 15, 30, 60):
        ladder = default_ladder(ack)
        assert all(a <= b for a, b in zip(ladder.arrive, ladder.ack)) and ladder.arrive[-1] < ladder.ack[-1]


@pytest.mark.parametrize(("ack", "arrive", "field"), [
    ((0, 10, 5, 15), (0, 1, 2, 3), "ack"),
    ((0, 5, 10, 15), (0, 1, 2), "arrive"),
    ((0, 5, 10, -1), (0, 1, 2, 3), "ack"),
    ((0, 5, 10, 15), (0, 1.5, 2, 3), "arrive"),
])
def test_a_bad_ladder_names_the_field(ack, arrive, field):
    with pytest.raises(InvalidInput) as caught:
        Ladder(ack=ack, arrive=arrive)
    assert [p.field for p in caught.value.problems] == [field] and caught.value.status == 422


def test_default_ladder_refuses_non_positive_minutes():
    with pytest.raises(InvalidInput):
        default_ladder(0)


def test_nothing_is_due_before_the_deadline_and_the_sweeper_times_out_at_it():
    order = new_order(T0, ACK, ARRIVE)
    assert overdue(order, minutes(ACK - 1)) is None and due_steps(order, LADDER, minutes(ACK - 1)) == []
    assert overdue(order, minutes(ACK)) == "timeout_ack"


def test_the_person_is_reminded_at_the_deadline_and_the_leader_told_later():
    order = escalated()
    assert [s.name for s in due_steps(order, LADDER, minutes(ACK))] == ["remind_person"]
    order = mark_fired(order, due_steps(order, LADDER, minutes(ACK))[0])
    assert due_steps(order, LADDER, minutes(ACK + 4)) == []
    (leader,) = due_steps(order, LADDER, minutes(ACK + 5))
    assert (leader.name, leader.number, leader.due_at) == ("tell_team_leader", 2, minutes(ACK + 5))
    assert "队长" in leader.text_zh and "team leader" in leader.text_en


def test_after_a_restart_every_overdue_step_comes_back_once_in_order():
    order = escalated(at=ACK + 40)  # the sweeper was down for 40 minutes
    steps = due_steps(order, LADDER, minutes(ACK + 40))
    assert [s.name for s in steps] == list(STEPS)
    for step in steps:
        order = mark_fired(order, step)
    assert order.escalation_step == 4 and due_steps(order, LADDER, minutes(ACK + 400)) == []


def test_a_step_never_fires_twice():
    order = escalated()
    step = due_steps(order, LADDER, minutes(ACK))[0]
    fired = mark_fired(order, step)
    with pytest.raises(Conflict) as caught:
        mark_fired(fired, step)  # a second sweeper holding the same step
    assert caught.value.status == 409 and "already fired" in caught.value.message_en


def test_steps_cannot_be_skipped():
    order = escalated()
    steps = due_steps(order, LADDER, minutes(ACK + 20))
    with pytest.raises(Conflict):
        mark_fired(order, steps[1])


def test_a_late_ack_stops_the_ladder():
    order = mark_fired(escalated(), due_steps(escalated(), LADDER, minutes(ACK))[0])
    acked = apply(order, "acknowledge", actor="person", at=minutes(ACK + 2)).order
    assert due_steps(acked, LADDER, minutes(ACK + 60)) == []
    with pytest.raises(Conflict):
        mark_fired(acked, due_steps(order, LADDER, minutes(ACK + 5))[0])


def test_a_reassigned_post_drops_the_remaining_steps():
    order = escalated()
    for step in due_steps(order, LADDER, minutes(ACK + 10)):
        order = mark_fired(order, step)
    moved = apply(order, "reassign", actor="system", at=minutes(ACK + 10), reason="backup").order
    assert due_steps(moved, LADDER, minutes(ACK + 60)) == [] and next_check_at(moved, LADDER) is None


def test_the_arrive_ladder_counts_from_the_arrive_deadline():
    acked = apply(new_order(T0, ACK, ARRIVE), "acknowledge", actor="person", at=minutes(2)).order
    deadline = minutes(2 + ARRIVE)
    assert overdue(acked, deadline - timedelta(seconds=1)) is None and overdue(acked, deadline) == "timeout_arrive"
    late = apply(acked, "timeout_arrive", actor="system", at=deadline).order
    steps = due_steps(late, LADDER, deadline + timedelta(minutes=5))
    assert [(s.kind, s.name) for s in steps] == [("arrive", "remind_person"), ("arrive", "tell_team_leader"),
                                                 ("arrive", "reassign_post")]


def test_an_order_late_twice_runs_a_fresh_ladder_for_arrival():
    order = escalated()
    for step in due_steps(order, LADDER, minutes(ACK + 5)):
        order = mark_fired(order, step)
    acked = apply(order, "acknowledge", actor="person", at=minutes(ACK + 6)).order
    late = apply(acked, "timeout_arrive", actor="system", at=acked.arrive_deadline_at).order
    assert late.escalation == "arrive" and late.escalation_step == 0
    assert [s.number for s in due_steps(late, LADDER, late.arrive_deadline_at)] == [1]


def test_next_check_at_tells_the_sweeper_when_to_look():
    order = new_order(T0, ACK, ARRIVE)
    assert next_check_at(order, LADDER) == minutes(ACK)
    order = escalated()
    assert next_check_at(order, LADDER) == minutes(ACK)
    order = mark_fired(order, due_steps(order, LADDER, minutes(ACK))[0])
    assert next_check_at(order, LADDER) == minutes(ACK + 5)


def test_the_docstring_examples_run():
    assert doctest.testmod(escalation).failed == 0


sweep_times = st.lists(st.integers(0, 120), min_size=1, max_size=25).map(sorted)


@settings(max_examples=200, deadline=None)
@given(times=sweep_times)
def test_any_sweeps_fire_each_step_at_most_once_and_in_order(times):
    order, fired = new_order(T0, ACK, ARRIVE), []
    for t in times:
        order = sweep(order, minutes(t), fired)
    kinds = {kind for kind, _, _ in fired}
    assert kinds <= {"ack"}
    assert [n for _, _, n in fired] == list(range(1, len(fired) + 1))  # once each, in order, none skipped
    expected = sum(1 for m in LADDER.ack if times[-1] >= ACK + m)
    assert len(fired) == expected  # nothing due was lost either


@settings(max_examples=200, deadline=None)
@given(ack_at=st.integers(0, ACK - 1), times=sweep_times, arrive_after=st.none() | st.integers(0, ARRIVE - 1))
def test_an_order_acknowledged_in_time_never_escalates(ack_at, times, arrive_after):
    answers = [(ack_at, "acknowledge")] + ([] if arrive_after is None else [(ack_at + arrive_after, "arrive")])
    timeline = sorted([(t, "sweep") for t in times] + answers, key=lambda e: (e[0], e[1] == "sweep"))
    order, fired = new_order(T0, ACK, ARRIVE), []
    for t, what in timeline:
        if what == "sweep":
            order = sweep(order, minutes(t), fired)
        else:
            order = apply(order, what, actor="person", at=minutes(t)).order
    assert "ack" not in {kind for kind, _, _ in fired}
    if arrive_after is not None:  # arrived in time too: nobody was ever chased
        assert fired == [] and order.escalation is None


@settings(max_examples=100, deadline=None)
@given(ack_first=st.booleans(), lag=st.integers(0, 3))
def test_ack_racing_the_deadline_lands_as_exactly_one_change_from_notified(ack_first, lag):
    """Both the phone and the sweeper read the order as notified; the row takes one write."""
    row = new_order(T0, ACK, ARRIVE)
    now = minutes(ACK + lag)
    writes = {"acknowledge": apply(row, "acknowledge", actor="person", at=now),
              "timeout_ack": apply(row, "timeout_ack", actor="system", at=now)}
    first, second = ("acknowledge", "timeout_ack") if ack_first else ("timeout_ack", "acknowledge")
    assert writes[first].from_status == row.status  # compare-and-set succeeds
    row = writes[first].order
    assert writes[second].from_status != row.status  # the loser's write is refused; it re-reads and retries
    retry = apply(row, second, actor="system" if second == "timeout_ack" else "person", at=now)
    if ack_first:
        assert retry.noop and retry.stale and retry.event is None  # the sweep went stale: no escalation
        assert retry.order.status == "acknowledged"
    else:
        assert retry.late and retry.from_status == "escalated"  # a late ack, not a second change from notified
        assert retry.order.status == "acknowledged"
    events = [writes[first].event, retry.event]
    assert events.count("order.escalated") == (0 if ack_first else 1)
    assert events.count("order.acknowledged") == 1
