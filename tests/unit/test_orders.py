"""The dispatch order state machine: the whole table, 409s, idempotent repeats, who may do what."""

from __future__ import annotations

import doctest
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from mobilize import orders
from mobilize.activations.models import OPEN_ORDER_STATES
from mobilize.errors import Conflict, Forbidden, InvalidInput
from mobilize.orders import (
    ACTIONS, ACTOR_KINDS, ACTORS, EVENTS, FINAL_STATES, OPEN_STATES, STATES, TARGET, TRANSITIONS, apply,
    deadlines, new_order,
)

T0 = datetime(2024, 7, 1, 8, 0, tzinfo=timezone.utc)
ACK, ARRIVE = 10, 40


def minutes(m: float) -> datetime:
    return T0 + timedelta(minutes=m)


def actor_for(action: str) -> str:
    """The most ordinary actor who may do ``action``: the person where allowed."""
    return next(a for a in ("person", "team_leader", "operator", "system") if a in ACTORS[action])


def do(order, action, at, **kw):
    kw.setdefault("reason", "ill" if action == "decline" else None)
    return apply(order, action, actor=actor_for(action), at=at, **kw)


# Each state reached the way it is in practice; "escalated" is the missed-ack escalation.
PATHS = {
    "notified": [],
    "acknowledged": [("acknowledge", 2)],
    "en_route": [("acknowledge", 2), ("en_route", 3)],
    "arrived": [("acknowledge", 2), ("en_route", 3), ("arrive", 20)],
    "escalated": [("timeout_ack", 10)],
    "released": [("acknowledge", 2), ("arrive", 20), ("release", 300)],
    "declined": [("decline", 2)],
    "reassigned": [("timeout_ack", 10), ("reassign", 20)],
    "cancelled": [("cancel", 5)],
}
LATE = 10_000  # minutes: past every deadline


def make_order(state: str):
    order = new_order(T0, ACK, ARRIVE)
    for action, at in PATHS[state]:
        order = do(order, action, minutes(at)).order
    assert order.status == state
    return order


# What a repeat or a stale sweep gets in each state (reached as in PATHS): answered, not refused.
NOOPS = {
    "notified": {"timeout_arrive"},
    "acknowledged": {"acknowledge", "timeout_ack"},
    "en_route": {"acknowledge", "en_route", "timeout_ack"},
    "arrived": {"acknowledge", "en_route", "arrive", "timeout_ack", "timeout_arrive"},
    "escalated": {"timeout_ack", "timeout_arrive"},
    **{s: {a for a in ACTIONS if TARGET[a] == s} | {"timeout_ack", "timeout_arrive"} for s in FINAL_STATES},
}
REFUSED = sorted((s, a) for s in STATES for a in ACTIONS if (s, a) not in TRANSITIONS and a not in NOOPS[s])


def test_open_states_are_the_ones_the_database_holds_a_person_by():
    assert OPEN_STATES == OPEN_ORDER_STATES
    assert set(OPEN_STATES) | set(FINAL_STATES) == set(STATES) and not set(OPEN_STATES) & set(FINAL_STATES)


def test_a_closed_order_never_changes_again():
    assert not [key for key in TRANSITIONS if key[0] in FINAL_STATES]
    assert set(TRANSITIONS.values()) <= set(STATES) and set(ACTORS) == set(ACTIONS) == set(EVENTS)


def test_every_open_order_can_be_released_cancelled_or_reassigned():
    for state in OPEN_STATES:
        for action, to in (("release", "released"), ("cancel", "cancelled"), ("reassign", "reassigned")):
            assert TRANSITIONS[(state, action)] == to


@pytest.mark.parametrize(("state", "action"), sorted(TRANSITIONS))
def test_every_allowed_transition_moves_the_order_and_records_an_event(state, action):
    order = make_order(state)
    t = do(order, action, minutes(LATE))
    assert t.order.status == TRANSITIONS[(state, action)]
    assert (t.noop, t.from_status, t.event, t.audit) == (False, state, EVENTS[action], f"order.{action}")
    if t.order.status in FINAL_STATES:
        assert t.order.closed_at == minutes(LATE)


@pytest.mark.parametrize(("state", "action"), REFUSED)
def test_every_impossible_transition_is_a_409_naming_state_and_action_in_both_languages(state, action):
    order = make_order(state)
    with pytest.raises(Conflict) as caught:
        do(order, action, minutes(LATE))
    err = caught.value
    assert err.status == 409
    assert orders.STATE_ZH[state] in err.message_zh and orders.ACTION_ZH[action] in err.message_zh
    assert orders.STATE_EN[state] in err.message_en and orders.ACTION_EN[action] in err.message_en
    assert err.as_dict()["error"]["state"] == state and err.as_dict()["error"]["action"] == action


@pytest.mark.parametrize(("state", "action"), sorted((s, a) for s, acts in NOOPS.items() for a in acts))
def test_a_repeat_or_a_stale_sweep_is_answered_with_the_order_unchanged(state, action):
    order = make_order(state)
    t = do(order, action, minutes(LATE))
    assert t.noop and t.order is order
    assert t.event is None and t.audit is None  # nothing appears twice on the dashboard or in the audit
    assert t.stale == action.startswith("timeout")


def test_a_phone_retrying_its_ack_gets_the_first_ack_time_back():
    first = do(make_order("notified"), "acknowledge", minutes(3))
    again = do(first.order, "acknowledge", minutes(4))
    assert again.noop and again.order.acknowledged_at == minutes(3)


def test_a_repeated_decline_keeps_the_first_reason():
    declined = do(make_order("notified"), "decline", minutes(2), reason="family").order
    again = do(declined, "decline", minutes(3), reason="away")
    assert again.noop and again.order.closed_reason == "family"


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("actor", ACTOR_KINDS)
def test_only_the_listed_actors_may_act(action, actor):
    order = make_order("escalated" if action == "reassign" else "notified")
    reason = "ill" if action == "decline" else None
    if actor in ACTORS[action]:
        apply(order, action, actor=actor, at=minutes(LATE), reason=reason)  # may be a no-op, never a 403
    else:
        with pytest.raises(Forbidden) as caught:
            apply(order, action, actor=actor, at=minutes(LATE), reason=reason)
        assert caught.value.status == 403 and orders.ACTION_ZH[action] in caught.value.message_zh


def test_who_may_do_what_as_the_field_works():
    assert {"person", "team_leader"} <= ACTORS["acknowledge"] & ACTORS["arrive"]  # a leader acks for the team
    assert "person" not in ACTORS["cancel"] | ACTORS["reassign"] | ACTORS["release"]
    assert ACTORS["timeout_ack"] == ACTORS["timeout_arrive"] == {"system"}


def test_unknown_action_or_actor_is_invalid_input():
    with pytest.raises(InvalidInput) as caught:
        apply(make_order("notified"), "teleport", actor="person", at=T0)
    assert caught.value.problems[0].field == "action"
    with pytest.raises(InvalidInput) as caught:
        apply(make_order("notified"), "acknowledge", actor="mayor", at=T0)
    assert caught.value.problems[0].field == "actor"


@pytest.mark.parametrize("reason", ["ill", "away", "family"])
def test_a_decline_keeps_its_reason(reason):
    t = do(make_order("notified"), "decline", minutes(1), reason=reason)
    assert t.order.status == "declined" and t.order.closed_reason == reason


def test_declining_needs_a_reason_and_other_needs_a_note():
    with pytest.raises(InvalidInput) as caught:
        apply(make_order("notified"), "decline", actor="person", at=T0)
    assert caught.value.problems[0].field == "reason" and "生病" not in caught.value.message_zh
    assert "ill" in caught.value.problems[0].reason_en and "生病" in caught.value.problems[0].reason_zh
    with pytest.raises(InvalidInput) as caught:
        apply(make_order("notified"), "decline", actor="person", at=T0, reason="other", note="  ")
    assert caught.value.problems[0].field == "note"
    t = apply(make_order("notified"), "decline", actor="person", at=T0, reason="other", note=" 腿受伤 ")
    assert (t.order.closed_reason, t.order.note) == ("other", "腿受伤")


def test_a_note_of_more_than_200_characters_is_refused():
    with pytest.raises(InvalidInput):
        apply(make_order("notified"), "decline", actor="person", at=T0, reason="other", note="字" * 201)


def test_deadlines_count_from_creation():
    assert deadlines(T0, ACK, ARRIVE) == (minutes(ACK), minutes(ARRIVE))
    with pytest.raises(InvalidInput) as caught:
        deadlines(T0, 0, ARRIVE)
    assert caught.value.problems[0].field == "ack_minutes"


def test_acknowledging_starts_the_arrive_window_at_the_ack():
    t = do(make_order("notified"), "acknowledge", minutes(7))
    assert t.order.arrive_deadline_at == minutes(7 + ARRIVE)


def test_pressing_en_route_without_ack_counts_as_the_ack():
    t = do(make_order("notified"), "en_route", minutes(4))
    assert t.order.status == "en_route" and t.order.acknowledged_at == minutes(4)
    assert t.order.arrive_deadline_at == minutes(4 + ARRIVE)


def test_a_timeout_before_its_deadline_is_refused():
    with pytest.raises(Conflict):
        apply(make_order("notified"), "timeout_ack", actor="system", at=minutes(ACK - 0.5))
    t = apply(make_order("notified"), "timeout_ack", actor="system", at=minutes(ACK))
    assert t.order.status == "escalated" and t.order.escalation == "ack" and t.event == "order.escalated"


def test_a_late_ack_still_counts_and_stops_the_ladder():
    t = do(make_order("escalated"), "acknowledge", minutes(14))
    assert t.late and t.order.status == "acknowledged" and t.order.arrive_deadline_at == minutes(14 + ARRIVE)


def test_an_answer_after_the_post_was_reassigned_says_so():
    with pytest.raises(Conflict) as caught:
        do(make_order("reassigned"), "acknowledge", minutes(30))
    assert "改派" in caught.value.message_zh and "someone else" in caught.value.message_en


def test_arriving_late_escalates_once():
    acked = make_order("acknowledged")
    late = apply(acked, "timeout_arrive", actor="system", at=acked.arrive_deadline_at).order
    assert late.status == "escalated" and late.escalation == "arrive"
    moving = do(late, "en_route", late.arrive_deadline_at + timedelta(minutes=1)).order
    assert moving.status == "en_route"
    again = apply(moving, "timeout_arrive", actor="system", at=minutes(LATE))
    assert again.stale and again.order.status == "en_route"


def test_an_order_escalated_for_arriving_late_takes_a_repeated_ack_as_a_no_op():
    acked = make_order("acknowledged")
    late = apply(acked, "timeout_arrive", actor="system", at=acked.arrive_deadline_at).order
    assert do(late, "acknowledge", minutes(LATE)).noop


def test_the_docstring_examples_run():
    assert doctest.testmod(orders).failed == 0


# ---------------------------------------------------------------------------------------------------
# An activation's orders under any sequence of answers, sweeps, reassignments and cancellations.

class Dispatch(RuleBasedStateMachine):
    """People P0..P5; orders for P0..P2 at the start; a reassignment gives the post to a free person."""

    PEOPLE = 6

    @initialize()
    def start(self):
        self.now = T0
        self.orders = [new_order(T0, ACK, ARRIVE) for _ in range(3)]
        self.person = [0, 1, 2]
        self.events: list[list[str]] = [[] for _ in range(3)]
        self.acked_in_time = [False] * 3
        self.closed: dict[int, str] = {}
        self.ended = False

    def _apply(self, i, action, actor, **kw):
        order = self.orders[i]
        allowed = (order.status, action) in TRANSITIONS
        try:
            t = apply(order, action, actor=actor, at=self.now, **kw)
        except Conflict:
            assert not allowed, f"{order.status} + {action} was refused"
            return None
        assert t.order.status == order.status or not t.noop
        if allowed and not t.noop:
            assert t.order.status == TRANSITIONS[(order.status, action)]
        if t.event:  # an escalation is recorded with the deadline it missed
            self.events[i].append(f"{t.event}:{t.order.escalation}" if t.event == "order.escalated" else t.event)
        if action == "acknowledge" and not t.noop and self.now < order.ack_deadline_at:
            self.acked_in_time[i] = True
        self.orders[i] = t.order
        return t

    order_index = st.integers(0, 20)

    def _pick(self, n):
        return n % len(self.orders)

    @precondition(lambda self: not self.ended)
    @rule(n=order_index, actor=st.sampled_from(["person", "team_leader"]))
    def acknowledge(self, n, actor):
        self._apply(self._pick(n), "acknowledge", actor)

    @precondition(lambda self: not self.ended)
    @rule(n=order_index, reason=st.sampled_from(["ill", "away", "family"]))
    def decline(self, n, reason):
        self._apply(self._pick(n), "decline", "person", reason=reason)

    @precondition(lambda self: not self.ended)
    @rule(n=order_index)
    def en_route(self, n):
        self._apply(self._pick(n), "en_route", "person")

    @precondition(lambda self: not self.ended)
    @rule(n=order_index, actor=st.sampled_from(["person", "team_leader"]))
    def arrive(self, n, actor):
        self._apply(self._pick(n), "arrive", actor)

    @precondition(lambda self: not self.ended)
    @rule(n=order_index)
    def cancel(self, n):
        self._apply(self._pick(n), "cancel", "operator", reason="post_removed")

    @precondition(lambda self: not self.ended)
    @rule(n=order_index, actor=st.sampled_from(["operator", "system"]))
    def reassign(self, n, actor):
        i = self._pick(n)
        t = self._apply(i, "reassign", actor, reason="backup")
        if t is not None and not t.noop:
            busy = {self.person[j] for j, o in enumerate(self.orders) if o.is_open}
            free = [p for p in range(self.PEOPLE) if p not in busy]
            if free:  # the post goes to a backup, who gets a new order
                self.orders.append(new_order(self.now, ACK, ARRIVE))
                self.person.append(free[0])
                self.events.append([])
                self.acked_in_time.append(False)

    @precondition(lambda self: not self.ended)
    @rule(m=st.integers(1, 30))
    def sweep_later(self, m):
        self.now += timedelta(minutes=m)
        for i, order in enumerate(self.orders):
            pending = orders.pending_timeout(order)
            if pending is not None and self.now >= pending[1]:
                t = self._apply(i, pending[0], "system")
                assert t is not None and not t.noop and t.order.status == "escalated"

    @precondition(lambda self: not self.ended)
    @rule()
    def end_activation(self):
        for i in range(len(self.orders)):
            if self.orders[i].is_open:
                assert self._apply(i, "release", "system", reason="activation_ended").order.status == "released"
        self.ended = True
        assert all(o.status in FINAL_STATES for o in self.orders)

    @precondition(lambda self: self.ended)
    @rule(n=order_index, action=st.sampled_from(["acknowledge", "en_route", "arrive", "timeout_ack"]))
    def answer_after_the_end_reopens_nothing(self, n, action):
        self.now += timedelta(minutes=1)
        i = self._pick(n)
        before = self.orders[i]
        t = self._apply(i, action, actor_for(action))
        assert self.orders[i].status == before.status and (t is None or t.noop)

    @invariant()
    def a_person_holds_at_most_one_open_order(self):
        held = [self.person[i] for i, o in enumerate(self.orders) if o.is_open]
        assert len(held) == len(set(held))

    @invariant()
    def closed_orders_stay_closed(self):
        for i, o in enumerate(self.orders):
            if i in self.closed:
                assert o.status == self.closed[i]
            elif o.status in FINAL_STATES:
                self.closed[i] = o.status

    @invariant()
    def an_order_acknowledged_in_time_is_never_chased_for_its_ack(self):
        for i, evs in enumerate(self.events):
            if self.acked_in_time[i]:
                assert "order.escalated:ack" not in evs

    @invariant()
    def each_deadline_escalates_at_most_once(self):
        for evs in self.events:
            assert evs.count("order.escalated:ack") <= 1 and evs.count("order.escalated:arrive") <= 1
            assert evs.count("order.acknowledged") <= 1

    def teardown(self):
        if hasattr(self, "orders") and not self.ended:
            self.end_activation()


TestDispatch = Dispatch.TestCase
TestDispatch.settings = settings(max_examples=120, stateful_step_count=30, deadline=None)
