"""Message texts of every notification kind, in Chinese (zh-CN) and English: pure, no I/O.

A template is a ``str.format`` body over a few named variables; the personal link, where there is
one, goes on its own after the body and is never shortened. A drill (演练) message starts with
【演练】 / [DRILL] so nobody mistakes it for a real emergency.

SMS length: a Chinese SMS segment holds 70 characters (67 when several are joined). The body is kept
to :data:`SMS_BODY_LIMIT` characters when the caller asks (the SMS channel does): longer bodies are cut
with "…" — the link is always sent whole, since a cut link is useless.

>>> r = render("order_notified", {"post": "卡口值守", "place": "东门", "report_by": "14:30",
...                               "link": "https://m.example/m/abc"}, lang="zh-CN", drill=True)
>>> r.text
'【演练】您已被派往「卡口值守」（东门），请于14:30前到岗。请打开链接确认：https://m.example/m/abc'
"""

from __future__ import annotations

import math
import string
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

__all__ = [
    "KINDS",
    "LANGS",
    "SMS_BODY_LIMIT",
    "TEMPLATES",
    "Rendered",
    "TemplateError",
    "check",
    "render",
    "sms_segments",
    "variables",
]

LANGS = ("zh-CN", "en")
#: Characters of body text (the link not counted) an SMS carries before it is cut.
SMS_BODY_LIMIT = 140
#: Variables holding a time: an ISO-8601 string (or datetime) shown as local ``MM-DD HH:MM``.
_TIME_VARIABLES = frozenset({"report_by", "deadline"})
_DEFAULT_TZ = ZoneInfo("Asia/Shanghai")

_DRILL = {"zh-CN": "【演练】", "en": "[DRILL] "}
_LINK = {"zh-CN": "请打开链接确认：{link}", "en": " Open your link to confirm: {link}"}
_LINK_INFO = {"zh-CN": "详情：{link}", "en": " Details: {link}"}

#: kind -> language -> body; kinds whose link only informs (nothing to confirm) say so in _INFO_LINK.
TEMPLATES: dict[str, dict[str, str]] = {
    "order_notified": {
        "zh-CN": "您已被派往「{post}」（{place}），请于{report_by}前到岗。",
        "en": "You are dispatched to {post_en} at {place}. Report by {report_by}.",
    },
    "reminder": {
        "zh-CN": "提醒：您尚未确认「{post}」岗位的派单，请于{report_by}前确认或说明原因。",
        "en": "Reminder: you have not answered your dispatch to {post_en}. Please answer by {report_by}.",
    },
    "team_leader_alert": {
        "zh-CN": "队员{member}尚未回复「{post}」的派单，请及时联系。",
        "en": "Team member {member} has not answered the dispatch to {post_en}. Please get in touch.",
    },
    "reassigned": {
        "zh-CN": "您的「{post}」岗位已改派给后备人员，无需前往，感谢您的响应。",
        "en": "Your post {post_en} has gone to a backup; you need not report. Thank you.",
    },
    "secretary_alert": {
        "zh-CN": "「{post}」（{place}）经催办改派后仍缺{short}人，请协调调配。",
        "en": "Post {post_en} at {place} is still {short} short after escalation. Please send people.",
    },
    "activation_ended": {
        "zh-CN": "应急响应已结束（战转平），请有序撤离岗位，感谢您的付出！",
        "en": "The emergency response has ended. Please stand down in good order. Thank you!",
    },
}
_INFO_LINK = frozenset({"team_leader_alert", "secretary_alert", "reassigned", "activation_ended"})
KINDS = tuple(TEMPLATES)


class TemplateError(ValueError):
    """A kind, language or variable that no template can render (a programming error of the caller)."""


@dataclass(frozen=True, slots=True)
class Rendered:
    """A rendered message: the whole ``text``, its parts, whether the body was cut, SMS segments."""

    text: str
    body: str
    link: str | None
    truncated: bool

    @property
    def segments(self) -> int:
        return sms_segments(self.text)


def _names(fmt: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(fmt) if name}


@cache
def variables(kind: str) -> frozenset[str]:
    """Return the variables ``kind`` needs in every language (``post_en`` falls back to ``post``).

    >>> sorted(variables("order_notified"))
    ['place', 'post', 'report_by']
    """
    if kind not in TEMPLATES:
        raise TemplateError(f"unknown notification kind {kind!r}; known: {', '.join(KINDS)}")
    names: set[str] = set()
    for body in TEMPLATES[kind].values():
        names |= _names(body)
    names.discard("post_en")
    return frozenset(names)


def check(kind: str, payload: Mapping[str, Any]) -> None:
    """Raise :class:`TemplateError` unless ``payload`` holds every variable of ``kind``.

    >>> check("reassigned", {"post": "巡查"})
    >>> check("reassigned", {})
    Traceback (most recent call last):
    ...
    mobilize.notify.templates.TemplateError: reassigned needs variables: post
    """
    needed = variables(kind)
    if needed.issubset(payload.keys()) and all(payload[k] is not None for k in needed):
        return
    missing = sorted(needed - {k for k, v in payload.items() if v is not None})
    if missing:
        raise TemplateError(f"{kind} needs variables: {', '.join(missing)}")


def _local_time(value: Any, tz: tzinfo) -> Any:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value  # already a display text ("14:30", "今晚八点")
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.strftime("%m-%d %H:%M")  # naive: already local wall-clock time
        return value.astimezone(tz).strftime("%m-%d %H:%M")
    return value


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def render(kind: str, payload: Mapping[str, Any], *, lang: str = "zh-CN", drill: bool = False,
           max_body: int | None = None, tz: tzinfo = _DEFAULT_TZ) -> Rendered:
    """Return the message of ``kind`` for ``payload`` in ``lang``; the body cut to ``max_body`` if given.

    ``payload`` holds the template's variables and optionally ``link`` (the personal link) and
    ``post_en`` (the post's English name, else ``post``). Times (``report_by``) given as ISO-8601 are
    shown in ``tz``. Unknown languages fall back to zh-CN.

    >>> render("reassigned", {"post": "巡查"}, lang="en", drill=True).text
    '[DRILL] Your post 巡查 has gone to a backup; you need not report. Thank you.'
    >>> r = render("reassigned", {"post": "巡" * 200}, max_body=20)
    >>> len(r.body), r.truncated
    (20, True)
    """
    if kind not in TEMPLATES:
        raise TemplateError(f"unknown notification kind {kind!r}; known: {', '.join(KINDS)}")
    lang = lang if lang in LANGS else "zh-CN"
    values = {k: (_local_time(v, tz) if k in _TIME_VARIABLES else v) for k, v in payload.items() if v is not None}
    values.setdefault("post_en", values.get("post"))
    try:
        body = TEMPLATES[kind][lang].format_map(values)
    except KeyError as exc:
        raise TemplateError(f"{kind} needs variable {exc.args[0]}") from None
    if drill:
        body = _DRILL[lang] + body
    truncated = max_body is not None and len(body) > max_body
    if truncated:
        body = _cut(body, max_body)
    link = values.get("link") or None
    text = body
    if link:
        text += (_LINK_INFO if kind in _INFO_LINK else _LINK)[lang].format(link=link)
    return Rendered(text=text, body=body, link=link, truncated=truncated)


def sms_segments(text: str) -> int:
    """Return how many SMS segments ``text`` takes (GSM-7: 160/153 chars; else UCS-2: 70/67).

    >>> sms_segments("hello"), sms_segments("你" * 70), sms_segments("你" * 71)
    (1, 1, 2)
    """
    if not text:
        return 1
    ascii_only = all(ord(c) < 128 for c in text)
    single, multi = (160, 153) if ascii_only else (70, 67)
    return 1 if len(text) <= single else math.ceil(len(text) / multi)
