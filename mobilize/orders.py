"""The dispatch order (派单) lifecycle as a table-driven state machine, pure and time passed in.

An order is one person on one post of one activation. Its states::

    notified ─► acknowledged ─► en_route ─► arrived ─► released
       │  (已通知)    (已确认)       (在途)     (已到岗)    (已解除)
       ├─► declined (已拒绝: ill 生病 · away 外出 · family 照顾家人 · other 其他 + note)
       └─► escalated (已超时升级) ─► acknowledged / declined / en_route / arrived / reassigned
    any open state ─► cancelled (post removed, level lowered) · released (战转平) · reassigned (改派)

Open states hold a person (at most one open order per person, see
:data:`mobilize.activations.models.OPEN_ORDER_STATES`): notified, acknowledged, en_route, arrived,
escalated. Final states: released, declined, reassigned, cancelled. :data:`TRANSITIONS` is the whole
table and :data:`ACTORS` says who may do what; :func:`apply` reads both and nothing else decides.

Rules chosen where the issue left a choice:

* **Escalated stays open and answerable.** The ladder's first step reminds the person, so a late
  answer must count: from ``escalated`` the person may still acknowledge (a *late* ack, which stops
  the ladder), decline, report en route or arrival — until the post is reassigned, after which an
  answer is a 409 that says the post went to someone else.
* **Ack racing the deadline.** Both leave ``notified``; whichever is applied first wins (the service
  writes with ``WHERE status = Transition.from_status``, so only one of two concurrent writers can).
  Ack first: the sweeper's timeout is *stale* and a no-op — the order never escalates. Timeout first:
  the order escalates exactly once, and the ack that follows is a late ack from ``escalated``.
  A timeout that finds the order no longer waiting is a stale no-op (``Transition.stale``), never a
  409: the sweeper has nobody to tell. Only a timeout applied before its deadline is refused.
* **Idempotent repeats.** An action whose effect the order already shows is a no-op
  (``Transition.noop``, no event, no audit), so a phone's retry is answered with the current state:
  the order is already in the state the action leads to (``acknowledge`` on ``acknowledged``,
  ``decline`` on ``declined``, ``cancel`` on ``cancelled`` …), or it is open and its answers already
  got that far (``acknowledge`` on ``en_route``/``arrived``, ``en_route`` on ``arrived``, and on an
  order escalated for arriving late, ``acknowledge`` — see :data:`REACHED`).
  A repeated decline keeps the first reason. Anything else not in the table is a 409 naming the
  current state and the action in Chinese and English.
* **Skipping ahead.** ``en_route`` and ``arrive`` from ``notified`` are allowed and imply the ack
  (a team leader counts someone at the post who never answered on a phone).
* **Deadlines.** :func:`deadlines` sets both from the order's creation; any first sign of an answer
  (ack, en route, arrival) moves the arrive deadline to that moment plus ``arrive_minutes``. A person
  escalated for arriving late is escalated for it once (``timeout_arrive`` is stale afterwards).
* **Switching back (战转平)** applies ``release`` to every open order, as
  :func:`mobilize.activations.service.end` does; ``cancel`` is for a removed post or a lowered level.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from operator import attrgetter

from mobilize.errors import Conflict, Forbidden, InvalidInput, Problem

__all__ = [
    "OPEN_STATES", "FINAL_STATES", "STATES", "ACTIONS", "ACTOR_KINDS", "DECLINE_REASONS",
    "TRANSITIONS", "ACTORS", "TARGET", "REACHED", "EVENTS",
    "OrderState", "Transition", "deadlines", "evolve", "new_order", "pending_timeout", "apply",
]

#: States that hold a person (the same tuple as ``mobilize.activations.models.OPEN_ORDER_STATES``).
OPEN_STATES = ("notified", "acknowledged", "en_route", "arrived", "escalated")
#: States an order never leaves.
FINAL_STATES = ("released", "declined", "reassigned", "cancelled")
STATES = OPEN_STATES + FINAL_STATES

STATE_ZH = {"notified": "已通知", "acknowledged": "已确认", "en_route": "在途", "arrived": "已到岗",
            "escalated": "超时已升级", "released": "已解除", "declined": "已拒绝", "reassigned": "已改派",
            "cancelled": "已取消"}
STATE_EN = {"notified": "notified", "acknowledged": "acknowledged", "en_route": "en route",
            "arrived": "arrived", "escalated": "escalated (no answer in time)", "released": "released",
            "declined": "declined", "reassigned": "reassigned to someone else", "cancelled": "cancelled"}

ACTIONS = ("acknowledge", "decline", "en_route", "arrive", "release", "cancel",
           "timeout_ack", "timeout_arrive", "reassign")
ACTION_ZH = {"acknowledge": "确认收到", "decline": "拒绝", "en_route": "报告出发", "arrive": "报告到岗",
             "release": "解除", "cancel": "取消", "timeout_ack": "确认超时", "timeout_arrive": "到岗超时",
             "reassign": "改派"}
ACTION_EN = {"acknowledge": "acknowledge", "decline": "decline", "en_route": "report en route",
             "arrive": "report arrival", "release": "release", "cancel": "cancel",
             "timeout_ack": "time out (acknowledge)", "timeout_arrive": "time out (arrive)",
             "reassign": "reassign"}

#: Who acts: the person via their phone link, the leader of the person's team (the service checks it
#: is *their* team), a command-center operator, the sweeper and services.
ACTOR_KINDS = ("person", "team_leader", "operator", "system")

#: Reasons a person may give for declining, zh and en as the phone page shows them.
DECLINE_REASONS = {"ill": ("生病", "ill"), "away": ("外出", "away"), "family": ("照顾家人", "caring for family"),
                   "other": ("其他", "other")}
_NOTE_MAX = 200

_ANSWER = ("acknowledge", "decline", "en_route", "arrive")

#: The whole state machine: (current state, action) -> next state.
TRANSITIONS: dict[tuple[str, str], str] = {
    ("notified", "acknowledge"): "acknowledged",
    ("notified", "decline"): "declined",
    ("notified", "en_route"): "en_route",
    ("notified", "arrive"): "arrived",
    ("notified", "timeout_ack"): "escalated",
    ("acknowledged", "decline"): "declined",
    ("acknowledged", "en_route"): "en_route",
    ("acknowledged", "arrive"): "arrived",
    ("acknowledged", "timeout_arrive"): "escalated",
    ("en_route", "decline"): "declined",
    ("en_route", "arrive"): "arrived",
    ("en_route", "timeout_arrive"): "escalated",
    ("escalated", "acknowledge"): "acknowledged",
    ("escalated", "decline"): "declined",
    ("escalated", "en_route"): "en_route",
    ("escalated", "arrive"): "arrived",
    **{(state, action): to for state in OPEN_STATES
       for action, to in (("release", "released"), ("cancel", "cancelled"), ("reassign", "reassigned"))},
}

#: Which actor kinds may perform each action.
ACTORS: dict[str, frozenset[str]] = {
    "acknowledge": frozenset({"person", "team_leader", "operator"}),
    "decline": frozenset({"person", "team_leader", "operator"}),
    "en_route": frozenset({"person", "team_leader"}),
    "arrive": frozenset({"person", "team_leader", "operator"}),
    "release": frozenset({"operator", "system"}),
    "cancel": frozenset({"operator", "system"}),
    "reassign": frozenset({"operator", "system"}),
    "timeout_ack": frozenset({"system"}),
    "timeout_arrive": frozenset({"system"}),
}

#: The one state each action leads to (read off :data:`TRANSITIONS`).
TARGET: dict[str, str] = {action: to for (_, action), to in TRANSITIONS.items()}

#: The answers along the way to the post, by how far each gets: an open order that already shows an
#: answer this far (by its timestamps) takes a repeat of it, or of an earlier one, as a no-op.
REACHED: dict[str, int] = {"acknowledge": 1, "en_route": 2, "arrive": 3}

#: The event appended for each action that changes the order.
EVENTS: dict[str, str] = {"acknowledge": "order.acknowledged", "decline": "order.declined",
                          "en_route": "order.en_route", "arrive": "order.arrived", "release": "order.released",
                          "cancel": "order.cancelled", "reassign": "order.reassigned",
                          "timeout_ack": "order.escalated", "timeout_arrive": "order.escalated"}

# Why a closed order cannot take an answer any more, shown under the 409 on the phone page.
_HINTS = {
    "reassigned": ("该岗位已改派他人；如仍能出勤，请联系队长。",
                   "The post was given to someone else; if you can still serve, contact your team leader."),
    "cancelled": ("该岗位已取消，无需出勤。", "The post was cancelled; you are not needed there."),
    "released": ("任务已结束，您已解除。", "The task is over; you have been released."),
    "declined": ("您已拒绝此派单；如需改变，请联系队长。",
                 "You declined this order; to change that, contact your team leader."),
}


@dataclass(frozen=True, slots=True)
class OrderState:
    """What the state machine knows of one order: status, deadlines, answers and escalation.

    ``escalation`` is which deadline was missed (``"ack"`` or ``"arrive"``, the latest one) and
    ``escalation_step`` the number of ladder steps fired for it (0: none; see :mod:`mobilize.escalation`).
    ``closed_reason`` is the decline reason or the code a service gave for cancel/release/reassign.
    """

    status: str
    created_at: datetime
    ack_deadline_at: datetime
    arrive_deadline_at: datetime
    arrive_minutes: int
    acknowledged_at: datetime | None = None
    en_route_at: datetime | None = None
    arrived_at: datetime | None = None
    escalated_at: datetime | None = None
    closed_at: datetime | None = None
    escalation: str | None = None
    escalation_step: int = 0
    closed_reason: str | None = None
    note: str | None = None

    @property
    def is_open(self) -> bool:
        """Whether the order still holds its person."""
        return self.status in OPEN_STATES

    @property
    def progress(self) -> int:
        """How far the person's answers got: 0 none, 1 acknowledged, 2 en route, 3 arrived."""
        if self.arrived_at is not None:
            return 3
        if self.en_route_at is not None:
            return 2
        return 0 if self.acknowledged_at is None else 1


@dataclass(frozen=True, slots=True)
class Transition:
    """The outcome of :func:`apply`: the order after it, and what to record.

    ``event`` is the event type to append and ``audit`` the audit action; both are ``None`` for a
    no-op. ``from_status`` is the status the change was computed from: write it back only where the
    row still has it (compare-and-set), so of two racing changes exactly one lands. ``stale`` marks a
    timeout that found the order no longer waiting; ``late`` an answer to an escalated order.
    """

    order: OrderState
    action: str
    actor: str
    from_status: str
    event: str | None
    audit: str | None
    noop: bool = False
    stale: bool = False
    late: bool = False


def deadlines(created_at: datetime, ack_minutes: int, arrive_minutes: int) -> tuple[datetime, datetime]:
    """Return ``(ack_deadline_at, arrive_deadline_at)`` of an order created at ``created_at``.

    The arrive deadline is provisional: an answer moves it to the answer's time plus ``arrive_minutes``.

    >>> from datetime import datetime, timezone
    >>> ack, arrive = deadlines(datetime(2024, 7, 1, 8, 0, tzinfo=timezone.utc), 10, 40)
    >>> ack.strftime("%H:%M"), arrive.strftime("%H:%M")
    ('08:10', '08:40')
    """
    for name, minutes in (("ack_minutes", ack_minutes), ("arrive_minutes", arrive_minutes)):
        if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes < 1:
            raise InvalidInput("截止时间须为正整数分钟", "a deadline must be a positive whole number of minutes",
                               [Problem("须为正整数", "must be a positive integer", field=name, value=minutes)])
    return created_at + timedelta(minutes=ack_minutes), created_at + timedelta(minutes=arrive_minutes)


def new_order(created_at: datetime, ack_minutes: int, arrive_minutes: int) -> OrderState:
    """Return a freshly notified order with its deadlines set.

    >>> from datetime import datetime, timezone
    >>> o = new_order(datetime(2024, 7, 1, 8, 0, tzinfo=timezone.utc), 10, 40)
    >>> o.status, o.ack_deadline_at.strftime("%H:%M")
    ('notified', '08:10')
    """
    ack, arrive = deadlines(created_at, ack_minutes, arrive_minutes)
    return OrderState("notified", created_at, ack, arrive, arrive_minutes)


def pending_timeout(order: OrderState) -> tuple[str, datetime] | None:
    """Return the timeout action ``order`` is waiting for and its deadline, or ``None``.

    A notified order waits for its ack deadline; an acknowledged or en-route order for its arrive
    deadline, once (an order already escalated for arriving late is not escalated for it again).

    >>> from datetime import datetime, timezone
    >>> o = new_order(datetime(2024, 7, 1, 8, 0, tzinfo=timezone.utc), 10, 40)
    >>> action, deadline = pending_timeout(o)
    >>> action, deadline.strftime("%H:%M")
    ('timeout_ack', '08:10')
    """
    if order.status == "notified":
        return "timeout_ack", order.ack_deadline_at
    if order.status in ("acknowledged", "en_route") and order.escalation != "arrive":
        return "timeout_arrive", order.arrive_deadline_at
    return None


def apply(order: OrderState, action: str, *, actor: str, at: datetime, reason: str | None = None,
          note: str | None = None) -> Transition:
    """Return the transition of ``order`` under ``action`` by an ``actor`` kind at time ``at``.

    ``reason`` is required to decline (one of :data:`DECLINE_REASONS`; ``"other"`` also needs a
    ``note``); for cancel, release and reassign it is the service's code (``"post_removed"``,
    ``"activation_ended"`` …), kept as ``closed_reason``.

    Raises
    ------
    InvalidInput
        Unknown action or actor, or a decline without a valid reason (422).
    Forbidden
        This actor kind may not perform this action (403).
    Conflict
        The action is impossible in the order's current state (409), naming both in Chinese and
        English; or a timeout applied before its deadline.

    Examples
    --------
    >>> from datetime import datetime, timedelta, timezone
    >>> t0 = datetime(2024, 7, 1, 8, 0, tzinfo=timezone.utc)
    >>> o = new_order(t0, 10, 40)
    >>> t = apply(o, "acknowledge", actor="person", at=t0 + timedelta(minutes=3))
    >>> t.order.status, t.event, t.order.arrive_deadline_at.strftime("%H:%M")
    ('acknowledged', 'order.acknowledged', '08:43')
    >>> apply(t.order, "acknowledge", actor="person", at=t0 + timedelta(minutes=4)).noop
    True
    >>> apply(t.order, "timeout_ack", actor="system", at=t0 + timedelta(minutes=10)).stale
    True
    >>> apply(t.order, "release", actor="person", at=t0)
    Traceback (most recent call last):
    ...
    mobilize.errors.Forbidden: 无权执行「解除」 / This actor (person) may not release
    """
    allowed = ACTORS.get(action)
    if allowed is None or not isinstance(actor, str) or actor not in allowed:  # an allowed actor is a known kind
        if allowed is None:
            raise InvalidInput("未知操作", f"unknown action {action!r}",
                               [Problem("未知操作", "unknown action", field="action", value=action)])
        if actor not in ACTOR_KINDS:
            raise InvalidInput("未知操作者类型", f"unknown actor kind {actor!r}",
                               [Problem("未知操作者类型", "unknown actor kind", field="actor", value=actor)])
        raise Forbidden(f"无权执行「{ACTION_ZH[action]}」", f"This actor ({actor}) may not {ACTION_EN[action]}",
                        action=action, actor=actor)
    if action == "decline":
        reason, note = _decline_reason(reason, note)
    elif reason is not None and (not isinstance(reason, str) or not 0 < len(reason) <= 64):
        raise InvalidInput("原因代码无效", "The reason code is invalid",
                           [Problem("须为 1–64 个字符", "must be 1–64 characters", field="reason", value=reason)])

    status = order.status

    def same(**flags: bool) -> Transition:
        return Transition(order, action, actor, status, None, None, noop=True, **flags)

    if action in ("timeout_ack", "timeout_arrive"):
        pending = pending_timeout(order)
        if pending is None or pending[0] != action:
            return same(stale=True)
        deadline = pending[1]
        if at < deadline:
            raise Conflict("尚未到截止时间", "The deadline has not passed yet", action=action, state=status,
                           deadline_at=deadline.isoformat())
    elif status == TARGET[action] or (order.is_open and action in REACHED and order.progress >= REACHED[action]):
        return same()

    to = TRANSITIONS.get((status, action))
    if to is None:
        hint_zh, hint_en = _HINTS.get(status, ("", ""))
        raise Conflict(
            f"派单当前为「{STATE_ZH[status]}」，不能「{ACTION_ZH[action]}」。{hint_zh}",
            f"The order is {STATE_EN[status]}; it cannot {ACTION_EN[action]}. {hint_en}".rstrip(),
            state=status, action=action)
    return Transition(_changed(order, action, to, at, reason, note), action, actor, status,
                      EVENTS[action], f"order.{action}", late=status == "escalated" and action in _ANSWER)


def _decline_reason(reason: str | None, note: str | None) -> tuple[str, str | None]:
    if reason not in DECLINE_REASONS:
        choices = "、".join(f"{k}（{zh}）" for k, (zh, _) in DECLINE_REASONS.items())
        raise InvalidInput("请选择拒绝原因", "Please choose a reason for declining", [Problem(
            f"须为 {choices} 之一", f"must be one of {', '.join(DECLINE_REASONS)}", field="reason", value=reason)])
    note = (note or "").strip() or None
    if reason == "other" and note is None:
        raise InvalidInput("选择「其他」时请写明原因", "Please say why when choosing 'other'",
                           [Problem("请填写说明", "a note is required", field="note")])
    if note is not None and len(note) > _NOTE_MAX:
        raise InvalidInput("说明过长", "The note is too long", [Problem(
            f"最多 {_NOTE_MAX} 字", f"at most {_NOTE_MAX} characters", field="note", value=len(note))])
    return reason, note


def _changed(order: OrderState, action: str, to: str, at: datetime, reason: str | None,
             note: str | None) -> OrderState:
    changes: dict = {"status": to}
    if action in ("acknowledge", "en_route", "arrive") and order.acknowledged_at is None:
        # Any first answer is the ack: the arrive window starts now, not at the notification.
        changes["acknowledged_at"] = at
        changes["arrive_deadline_at"] = at + timedelta(minutes=order.arrive_minutes)
    if action == "en_route":
        changes["en_route_at"] = at
    if action == "arrive":
        changes["arrived_at"] = at
    if action in ("timeout_ack", "timeout_arrive"):
        changes.update(escalated_at=at, escalation="ack" if action == "timeout_ack" else "arrive",
                       escalation_step=0)
    if to in FINAL_STATES:
        changes.update(closed_at=at, closed_reason=reason, note=note)
    return evolve(order, **changes)


_FIELDS = tuple(f.name for f in fields(OrderState))
_POSITION = {name: k for k, name in enumerate(_FIELDS)}
_VALUES = attrgetter(*_FIELDS)


def evolve(order: OrderState, **changes) -> OrderState:
    """Return a copy of ``order`` with ``changes`` (``dataclasses.replace``, without its per-call introspection).

    >>> from datetime import datetime, timezone
    >>> evolve(new_order(datetime(2024, 7, 1, 8, 0, tzinfo=timezone.utc), 10, 40), escalation_step=2).escalation_step
    2
    """
    values = list(_VALUES(order))
    for name, value in changes.items():
        values[_POSITION[name]] = value
    return OrderState(*values)
