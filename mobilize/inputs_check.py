"""Checks of the solver's input rows (people and posts): whole columns first, row by row only to name the bad rows."""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter
from typing import TYPE_CHECKING

from mobilize.errors import InvalidInput, Problem

if TYPE_CHECKING:  # pragma: no cover
    from mobilize.costs import Person, Post

__all__ = ["validate_inputs"]


def _plainly_valid(people: Sequence[Person], posts: Sequence[Post]) -> bool:
    """Return whether the input is valid, checked column-wise (the row-by-row check below names the rows)."""
    ids = list(map(attrgetter("id"), people))
    qids = list(map(attrgetter("id"), posts))
    if len(set(ids)) != len(ids) or len(set(qids)) != len(qids):
        return False
    if min(map(attrgetter("recent_duty"), people), default=0) < 0 or min(map(attrgetter("headcount"), posts),
                                                                          default=0) < 0:
        return False
    if not all(1 <= x <= 5 for x in map(attrgetter("priority"), posts)):
        return False
    pairs = set(map(attrgetter("community", "street"), people)) | set(map(attrgetter("community", "street"), posts))
    return len(pairs) == len({c for c, _ in pairs})


#: (field, whether a value is acceptable, reason zh, reason en) per row of people and of posts
_PERSON_CHECKS = (("recent_duty", lambda v: v >= 0, "近期值班次数不能为负", "recent_duty must not be negative"),)
_POST_CHECKS = (("headcount", lambda v: v >= 0, "岗位人数不能为负", "headcount must not be negative"),
                ("priority", lambda v: 1 <= v <= 5, "优先级须为1至5", "priority must be 1 to 5"))


def _row_problems(items: Sequence, duplicate_zh: str, duplicate_en: str, checks) -> list[Problem]:
    """Return the problems of ``items`` row by row: an id seen before, then each failed check."""
    problems: list[Problem] = []
    seen: set = set()
    for i, x in enumerate(items):
        if x.id in seen:
            problems.append(Problem(duplicate_zh, duplicate_en, row=i, field="id", value=x.id))
        seen.add(x.id)
        for field, ok, zh, en in checks:
            value = getattr(x, field)
            if not ok(value):
                problems.append(Problem(zh, en, row=i, field=field, value=value))
    return problems


def validate_inputs(people: Sequence[Person], posts: Sequence[Post]) -> None:
    """Raise :class:`InvalidInput` naming each bad row: duplicate ids, negative counts, bad priorities,
    a community in two streets."""
    if _plainly_valid(people, posts):
        return
    problems = _row_problems(people, "人员编号重复", "duplicate person id", _PERSON_CHECKS)
    problems += _row_problems(posts, "岗位编号重复", "duplicate post id", _POST_CHECKS)
    street_of: dict[str, str] = {}
    for kind, items in (("person", people), ("post", posts)):
        for i, x in enumerate(items):
            if street_of.setdefault(x.community, x.street) != x.street:
                problems.append(Problem("同一社区属于两个街道", f"community lies in two streets ({kind})",
                                        row=i, field="street", value=x.street))
    if problems:
        raise InvalidInput("分派输入有误", "Invalid assignment input", problems)
