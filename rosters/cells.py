"""Roster cells read as values: yes/no, dates, word lists, cell text, and the per-column parsers."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from rosters.phones import PhoneError, normalize_phone
from rosters.vocabulary import (
    ZH,
    Availability,
    MemberKind,
    PersonStatus,
    SkillVocabulary,
    TeamKind,
    UnitLevel,
    WorkGroupTemplate,
    lookup,
)

if TYPE_CHECKING:
    from rosters.columns import TableSpec

__all__ = ["CellError", "CellParsers", "cell_text", "parse_bool", "parse_date", "split_words"]


_TRUE = frozenset({"是", "y", "yes", "true", "1", "√", "✓", "✔", "t", "对", "有"})
_FALSE = frozenset({"否", "n", "no", "false", "0", "×", "✗", "✘", "f", "不是", "无"})


def parse_bool(value: object) -> bool:
    """Return the yes/no that ``value`` writes (是/否, Y/N, yes/no, true/false, 1/0, √/×); empty is False.

    >>> parse_bool("√"), parse_bool(" 否 "), parse_bool(None)
    (True, False, False)
    """
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    key = str(value).strip().lower()
    if not key or key in _FALSE:
        return False
    if key in _TRUE:
        return True
    raise ValueError(value)


_DATE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:[ T]0{1,2}:00(?::00)?)?$")


_EXCEL_EPOCH = datetime(1899, 12, 30)  # day 0 of Excel's 1900 date system, past its 1900-02-29 bug


def parse_date(value: object) -> date | None:
    """Return the date ``value`` writes (2026-11-21, 2026/11/21, 2026年11月21日, an Excel date cell); empty is None.

    A number is an Excel date cell's serial day (46347 is 2026-11-21).

    >>> parse_date("2026年11月21日")
    datetime.date(2026, 11, 21)
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not 1 <= value < 2958466:  # Excel's serial days, 1900-01-01 to 9999-12-31
            raise ValueError(value)
        return (_EXCEL_EPOCH + timedelta(days=int(value))).date()
    text = str(value).strip()
    if not text:
        return None
    match = _DATE.match(text)
    if not match:
        raise ValueError(value)
    return date(*(int(g) for g in match.groups()))  # raises ValueError for 2026-02-30


_WORD_SEPARATORS = re.compile(r"[、，,;；/|\n]+")


def split_words(text: str) -> list[str]:
    """Return the words of a list cell, split at 、，,;；/ and line breaks (spaces are the caller's second try)."""
    return [w.strip() for w in _WORD_SEPARATORS.split(text) if w.strip()]


_FORMULA_CHARS = frozenset("=+-@\t\r")


def cell_text(value: object) -> str:
    """Return a cell as stripped text: '' for empty, whole floats without ``.0``, dates as ISO.

    A leading ``'`` before a formula character (``'=…``, written by the exporter so Excel shows the
    text rather than runs it; ``''=…`` for a text that itself starts with ``'=``) is dropped.
    """
    if value is None:
        return ""
    if type(value) is str:
        text = value.strip()
        return text[1:] if text[:1] == "'" and text.lstrip("'")[:1] in _FORMULA_CHARS else text
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat(" ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()


class CellError(ValueError):
    """A cell whose value the column cannot take; ``reason_zh`` and ``reason_en`` say why."""

    def __init__(self, reason_zh: str, reason_en: str) -> None:
        super().__init__(reason_en)
        self.reason_zh = reason_zh
        self.reason_en = reason_en


_SCIENTIFIC = re.compile(r"^\d(\.\d+)?e\+\d+$", re.IGNORECASE)
_ENUM_NAMES: dict[type[StrEnum], tuple[str, str]] = {
    UnitLevel: ("层级", "level"), MemberKind: ("人员类别", "member kind"), TeamKind: ("队伍类型", "team kind"),
    Availability: ("可服务时段", "availability"), PersonStatus: ("状态", "status"),
}


class CellParsers:
    """Parsers from a cell's text to a field's value, one per column, for one city's vocabulary.

    Words repeat down a roster (kinds, groups, skills), so each parser remembers the words it has
    looked up: a 44,000-row file resolves each distinct word once.
    """

    def __init__(self, skills: SkillVocabulary, workgroups: WorkGroupTemplate) -> None:
        self.skills = skills
        self.workgroups = workgroups
        self._memo: dict[tuple[str, str], object] = {}

    def for_table(self, table: TableSpec) -> dict[str, Callable[[object, str], object]]:
        """Return ``field -> parse(raw, text)`` for ``table``; each raises :class:`CellError` on a bad value."""
        code, text, coord = self._code, (lambda raw, t: t), self._coordinate
        common = {"code": code, "name": text, "lat": coord, "lon": coord, "community_code": code}
        # By name, not identity: the specs live in rosters.columns, which imports this module.
        if table.name == "units":
            return {**common, "level": self._enum(UnitLevel), "parent_code": code}
        if table.name == "teams":
            return {**common, "kind": self._enum(TeamKind), "leader_phone": self._phone}
        return {**common, "phone": self._phone, "kind": self._enum(MemberKind), "grid_code": code,
                "address": text, "work_unit": text, "party_member": self._bool, "group_leader": self._bool,
                "peacetime_group": self._group("peacetime"), "wartime_group": self._group("wartime"),
                "skills": self._skills, "availability": self._enum(Availability),
                "status": self._status, "leave_until": self._date, "team_code": code}

    def _remember(self, kind: str, text: str, find: Callable[[str], object]) -> object:
        key = (kind, text)
        if key not in self._memo:
            try:
                self._memo[key] = find(text)
            except CellError as exc:
                self._memo[key] = exc
        found = self._memo[key]
        if isinstance(found, CellError):
            raise found
        return found

    @staticmethod
    def _code(raw: object, text: str) -> str:
        if _SCIENTIFIC.match(text):
            raise CellError(f"编码被 Excel 写成了科学计数法（{text}），位数已丢失，请把该列设为文本后重新填写",
                            f"Excel turned the code into scientific notation ({text}) and lost digits; "
                            "format the column as text and enter it again")
        return text

    @staticmethod
    def _coordinate(raw: object, text: str) -> float:
        try:
            value = float(raw) if isinstance(raw, (int, float)) and not isinstance(raw, bool) else float(text)
        except ValueError:
            raise CellError(f"坐标不是数字：{text}", f"the coordinate is not a number: {text}") from None
        if not math.isfinite(value):
            raise CellError(f"坐标不是有限数：{text}", f"the coordinate is not a finite number: {text}")
        return value

    @staticmethod
    def _phone(raw: object, text: str) -> str:
        try:
            return normalize_phone(text if isinstance(raw, str) else raw)
        except PhoneError as exc:
            raise CellError(exc.reason_zh, exc.reason_en) from None

    @staticmethod
    def _bool(raw: object, text: str) -> bool:
        try:
            return parse_bool(text)
        except ValueError:
            raise CellError(f"应填 是 或 否，而不是「{text}」", f"expected yes or no, not {text!r}") from None

    @staticmethod
    def _date(raw: object, text: str) -> date | None:
        try:
            return parse_date(text if isinstance(raw, str) else raw)
        except ValueError:
            raise CellError(f"日期无效：{text}（应写作 2026-11-21、2026/11/21 或 2026年11月21日）",
                            f"not a valid date: {text} (write 2026-11-21, 2026/11/21 or 2026年11月21日)") from None

    def _enum(self, enum: type[StrEnum]) -> Callable[[object, str], object]:
        zh, en = _ENUM_NAMES[enum]
        choices = "、".join(ZH.get(m, m.value) for m in enum)
        codes = ", ".join(m.value for m in enum)

        def find(text: str) -> StrEnum:
            member = lookup(enum, text)
            if member is None:
                raise CellError(f"未知{zh}「{text}」，可选：{choices}", f"unknown {en} {text!r}; choose one of: {codes}")
            return member

        return lambda raw, text: self._remember(enum.__name__, text, find)

    def _status(self, raw: object, text: str) -> object:
        status = self._enum(PersonStatus)(raw, text)
        if status is PersonStatus.DEPLOYED:
            raise CellError("「已派出」只能由启动产生，请填 可用、请假 或 停用",
                            "'deployed' is set only by an activation; write available, on leave or inactive")
        return status

    def _group(self, phase: str) -> Callable[[object, str], object]:
        groups = self.workgroups.peacetime if phase == "peacetime" else self.workgroups.wartime
        zh = "平时" if phase == "peacetime" else "战时"
        names = "、".join(g.zh for g in groups)

        def find(text: str) -> str:
            code = self.workgroups.resolve(phase, text)
            if code is None:
                raise CellError(f"未知{zh}工作组「{text}」，可选：{names}",
                                f"unknown {phase} work group {text!r}; choose one of: {names}")
            return code

        return lambda raw, text: self._remember(phase, text, find)

    def _skills(self, raw: object, text: str) -> object:
        return self._remember("skills", text, self._find_skills)

    def _find_skills(self, text: str) -> tuple[str, ...]:
        codes: list[str] = []
        unknown: list[str] = []
        for word in split_words(text):
            code = self.skills.resolve(word)
            # Spaces separate skills too, but English names hold spaces ("first aid"): try whole first.
            for part in [word] if code else word.split():
                found = code or self.skills.resolve(part)
                codes.append(found) if found else unknown.append(part)
        if unknown:
            raise CellError(f"未知技能：{'、'.join(unknown)}（请使用技能表中的名称）",
                            f"unknown skill: {', '.join(unknown)} (use a name from the skill list)")
        return tuple(dict.fromkeys(codes))
