"""Whether a person can serve at a given moment (pure)."""

from __future__ import annotations

from datetime import date, datetime

from rosters.vocabulary import Availability, PersonStatus

__all__ = ["patterns_open_at", "is_available"]

DAY_START, DAY_END = 8, 20  # 白天 08:00–20:00; 夜间 the rest


def patterns_open_at(at: datetime) -> set[str]:
    """Return the availability patterns under which a person may be called at local time ``at``.

    >>> sorted(patterns_open_at(datetime(2026, 11, 21, 10, 0)))  # a Saturday morning
    ['anytime', 'daytime', 'weekends']
    """
    open_ = {Availability.ANYTIME.value}
    open_.add(Availability.WEEKENDS.value if at.weekday() >= 5 else Availability.WEEKDAYS.value)
    open_.add(Availability.DAYTIME.value if DAY_START <= at.hour < DAY_END else Availability.NIGHTS.value)
    return open_


def is_available(status: str, leave_until: date | None, availability: str, at: datetime) -> bool:
    """Return whether a person with this status, leave and pattern can be dispatched at ``at``.

    >>> is_available("available", None, "anytime", datetime(2026, 11, 21, 3))
    True
    >>> is_available("on_leave", date(2026, 11, 30), "anytime", datetime(2026, 11, 21, 3))
    False
    """
    if status not in (PersonStatus.AVAILABLE.value, PersonStatus.ON_LEAVE.value):
        return False
    if leave_until is not None and at.date() <= leave_until:
        return False
    if status == PersonStatus.ON_LEAVE.value and leave_until is None:
        return False  # on leave with no end date: until someone says otherwise
    return availability in patterns_open_at(at)
