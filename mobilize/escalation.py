"""The escalation ladder (逐级上报) of a dispatch order that missed a deadline, as pure data.

When a notified order is not acknowledged by its ack deadline, the sweeper applies ``timeout_ack``
(:func:`mobilize.orders.apply`) and the order is ``escalated``; then the ladder's steps come due, each
measured from the missed deadline:

1. ``remind_person`` — remind the person (提醒本人), at the deadline;
2. ``tell_team_leader`` — tell their team leader (通知队长);
3. ``reassign_post`` — give the post to the best available backup (改派): this module only emits
   the step, the service runs the incremental re-solve and applies ``reassign`` if a backup exists;
4. ``tell_secretary_and_command`` — tell the community secretary and the command center
   (报告社区书记和指挥中心), e.g. that the post is still short.

An acknowledged or en-route order not arrived by its arrive deadline gets ``timeout_arrive`` and runs
the **arrive ladder**: the same four steps on shorter offsets, because the person has answered and is
most likely on the way — the leader hears sooner and the post is reassigned sooner if they never come.

Rules:

* The order carries ``escalation_step``, the number of the last fired step (0: none). A timeout
  resets it to 0 for the new ladder.
* :func:`due_steps` returns every step whose time has come and whose number is above
  ``escalation_step``, in order. After a crash the overdue steps all come back at once (catch-up);
  as the caller records each with :func:`mark_fired` (the service writes it only where the row still
  has the old step, so two sweepers cannot both fire it), none is ever returned twice.
* The ladder runs only while the order is ``escalated``. Any answer (a late ack, a decline, arrival),
  a reassignment or a cancellation ends it; the steps not yet fired are dropped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from mobilize.errors import Conflict, InvalidInput, Problem
from mobilize.orders import OrderState, evolve, pending_timeout

__all__ = ["STEPS", "STEP_TEXT", "Ladder", "Step", "default_ladder", "overdue", "due_steps", "mark_fired",
           "next_check_at"]

#: The ladder's steps, in the order they fire.
STEPS = ("remind_person", "tell_team_leader", "reassign_post", "tell_secretary_and_command")

#: What each step does, zh and en, as notifications and the dashboard say it.
STEP_TEXT = {
    "remind_person": ("提醒本人尽快回复", "remind the person to answer"),
    "tell_team_leader": ("通知队长", "tell the team leader"),
    "reassign_post": ("改派岗位给最佳备选人员", "reassign the post to the best available backup"),
    "tell_secretary_and_command": ("报告社区书记和指挥中心", "tell the community secretary and the command center"),
}


@dataclass(frozen=True, slots=True)
class Ladder:
    """Minutes after the missed deadline at which each of :data:`STEPS` fires, per deadline kind.

    ``ack`` runs after a missed ack deadline, ``arrive`` after a missed arrive deadline. Each is four
    non-decreasing whole minutes from 0. One ladder per plan and response level: see
    :func:`default_ladder` for offsets scaled from the plan's ack minutes.

    >>> Ladder(ack=(0, 5, 10, 15), arrive=(0, 3, 5, 8)).ack[2]
    10
    >>> Ladder(ack=(0, 10, 5, 15), arrive=(0, 3, 5, 8))
    Traceback (most recent call last):
    ...
    mobilize.errors.InvalidInput: 升级梯度设置有误 / The escalation ladder is invalid
      - 字段 field ack: 各步时间须不早于前一步 / each step must come no earlier than the one before
    """

    ack: tuple[int, ...]
    arrive: tuple[int, ...]

    def __post_init__(self) -> None:
        problems = []
        for kind in ("ack", "arrive"):
            offsets = getattr(self, kind)
            if (not isinstance(offsets, Sequence) or len(offsets) != len(STEPS)
                    or any(isinstance(m, bool) or not isinstance(m, int) or m < 0 for m in offsets)):
                problems.append(Problem(f"须为 {len(STEPS)} 个非负整数分钟", f"must be {len(STEPS)} whole minutes ≥ 0",
                                        field=kind, value=offsets))
            elif any(b < a for a, b in zip(offsets, offsets[1:])):
                problems.append(Problem("各步时间须不早于前一步", "each step must come no earlier than the one before",
                                        field=kind, value=tuple(offsets)))
        if problems:
            raise InvalidInput("升级梯度设置有误", "The escalation ladder is invalid", problems)
        object.__setattr__(self, "ack", tuple(self.ack))
        object.__setattr__(self, "arrive", tuple(self.arrive))


@dataclass(frozen=True, slots=True)
class Step:
    """One ladder step that is due: its number (1-based; the order's ``escalation_step`` once it has
    fired), its name from :data:`STEPS`, which deadline it follows, and when it came due."""

    number: int
    name: str
    kind: str
    due_at: datetime

    @property
    def text_zh(self) -> str:
        return STEP_TEXT[self.name][0]

    @property
    def text_en(self) -> str:
        return STEP_TEXT[self.name][1]


def default_ladder(ack_minutes: int) -> Ladder:
    """Return the ladder for a plan level whose ack deadline is ``ack_minutes``.

    With ``A = ack_minutes``: the ack ladder reminds at once, tells the leader after A/2, reassigns
    after A and tells the secretary after 3A/2 (a level with tight deadlines escalates fast); the arrive
    ladder runs at half those offsets.

    >>> default_ladder(10)
    Ladder(ack=(0, 5, 10, 15), arrive=(0, 3, 5, 8))
    >>> default_ladder(5).ack
    (0, 3, 5, 8)
    """
    if isinstance(ack_minutes, bool) or not isinstance(ack_minutes, int) or ack_minutes < 1:
        raise InvalidInput("确认时限须为正整数分钟", "ack minutes must be a positive whole number", [Problem(
            "须为正整数", "must be a positive integer", field="ack_minutes", value=ack_minutes)])
    a = ack_minutes
    return Ladder(ack=(0, math.ceil(a / 2), a, a + math.ceil(a / 2)),
                  arrive=(0, math.ceil(a / 4), math.ceil(a / 2), math.ceil(3 * a / 4)))


def overdue(order: OrderState, now: datetime) -> str | None:
    """Return the timeout action the sweeper must apply to ``order`` at ``now``, or ``None``.

    >>> from datetime import datetime, timedelta, timezone
    >>> from mobilize.orders import new_order
    >>> t0 = datetime(2024, 7, 1, 8, 0, tzinfo=timezone.utc)
    >>> o = new_order(t0, 10, 40)
    >>> overdue(o, t0 + timedelta(minutes=9)), overdue(o, t0 + timedelta(minutes=10))
    (None, 'timeout_ack')
    """
    pending = pending_timeout(order)
    return pending[0] if pending is not None and now >= pending[1] else None


def _anchor(order: OrderState) -> datetime:
    return order.ack_deadline_at if order.escalation == "ack" else order.arrive_deadline_at


def due_steps(order: OrderState, ladder: Ladder, now: datetime) -> list[Step]:
    """Return the ladder steps of ``order`` that are due at ``now`` and have not fired, in order.

    Only an ``escalated`` order has due steps. Record each fired step with :func:`mark_fired`.

    >>> from datetime import datetime, timedelta, timezone
    >>> from mobilize.orders import apply, new_order
    >>> t0 = datetime(2024, 7, 1, 8, 0, tzinfo=timezone.utc)
    >>> o = apply(new_order(t0, 10, 40), "timeout_ack", actor="system", at=t0 + timedelta(minutes=10)).order
    >>> [s.name for s in due_steps(o, default_ladder(10), t0 + timedelta(minutes=24))]  # after a restart
    ['remind_person', 'tell_team_leader', 'reassign_post']
    >>> o = mark_fired(o, due_steps(o, default_ladder(10), t0 + timedelta(minutes=10))[0])
    >>> [s.name for s in due_steps(o, default_ladder(10), t0 + timedelta(minutes=10))]
    []
    """
    if order.status != "escalated":
        return []
    anchor = _anchor(order)
    offsets = ladder.ack if order.escalation == "ack" else ladder.arrive
    steps = []
    for number, (name, minutes) in enumerate(zip(STEPS, offsets), start=1):
        due_at = anchor + timedelta(minutes=minutes)
        if number <= order.escalation_step:
            continue
        if due_at > now:
            break
        steps.append(Step(number, name, order.escalation, due_at))
    return steps


def mark_fired(order: OrderState, step: Step) -> OrderState:
    """Return ``order`` with ``step`` recorded as fired.

    Raises
    ------
    Conflict
        The step is not the next one of the order's running ladder: it already fired, an earlier
        step has not, or the ladder has ended (the order answered or was closed).
    """
    if order.status != "escalated" or step.kind != order.escalation or step.number != order.escalation_step + 1:
        raise Conflict("升级步骤已执行或不再适用", "This escalation step already fired or no longer applies",
                       step=step.name, number=step.number, escalation_step=order.escalation_step,
                       state=order.status)
    return evolve(order, escalation_step=step.number)


def next_check_at(order: OrderState, ladder: Ladder) -> datetime | None:
    """Return when the sweeper next has something to do for ``order`` (a timeout or a step), or ``None``.

    >>> from datetime import datetime, timezone
    >>> from mobilize.orders import new_order
    >>> next_check_at(new_order(datetime(2024, 7, 1, 8, 0, tzinfo=timezone.utc), 10, 40), default_ladder(10))
    datetime.datetime(2024, 7, 1, 8, 10, tzinfo=datetime.timezone.utc)
    """
    pending = pending_timeout(order)
    if pending is not None:
        return pending[1]
    if order.status == "escalated" and order.escalation_step < len(STEPS):
        offsets = ladder.ack if order.escalation == "ack" else ladder.arrive
        return _anchor(order) + timedelta(minutes=offsets[order.escalation_step])
    return None
