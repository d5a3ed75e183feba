"""Writing a :class:`~rosters.records.Roster` to XLSX or CSV, and the empty templates people fill in.

What :func:`write_roster` writes, :func:`~rosters.importer.read_roster` reads back to the same
records: Chinese headers, Chinese names for levels, kinds, groups and skills, 是/否 for yes/no and
ISO dates. Phones and codes are written as text so Excel keeps every digit. A text starting with
``=``, ``+``, ``-`` or ``@`` is written so Excel shows it rather than runs it: a text cell in XLSX,
a leading ``'`` in CSV (which the importer drops). With ``mask_phones`` the file is for reading
only (``138****1234``): it cannot be imported again.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from mobilize.errors import InvalidInput, Problem
from rosters.columns import PEOPLE, TABLES, TEAMS, UNITS, TableSpec
from rosters.phones import mask_phone
from rosters.records import PersonRecord, Roster, TeamRecord, UnitRecord
from rosters.vocabulary import ZH, SkillVocabulary, WorkGroupTemplate, load_skills, load_workgroups

__all__ = ["write_roster", "write_template", "roster_rows", "TEMPLATE_FILES"]

TEMPLATE_FILES = ("roster_template.xlsx", "units.csv", "people.csv", "teams.csv")
"""The files :func:`write_template` writes, in that order."""

_TEXT_FIELDS = frozenset({"code", "parent_code", "phone", "community_code", "grid_code", "team_code", "leader_phone"})
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_ESCAPED = tuple("'" + c for c in _FORMULA_START)  # the importer drops a ' before these: keep a written one
_NOTES_SHEET = "说明"


def roster_rows(roster: Roster, *, mask_phones: bool = False, skills: SkillVocabulary | None = None,
                workgroups: WorkGroupTemplate | None = None) -> dict[TableSpec, list[list[Any]]]:
    """Return the rows of each table as the files write them, in the order of :data:`~rosters.columns.TABLES`.

    Values are what a person reads in Excel: 社区, 志愿者, 综合协调组, 医疗救护、驾驶, 是/否, 2026-11-21.
    A skill or group code the vocabulary does not know is written as the code.
    """
    skills = skills or load_skills()
    workgroups = workgroups or load_workgroups()
    skill_zh = {s.code: s.zh for s in skills.skills}
    group_zh = {g.code: g.zh for g in workgroups.all}
    phone = mask_phone if mask_phones else str

    def cell(value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, bool):
            return "是" if value else "否"
        if isinstance(value, StrEnum):
            return ZH.get(value, value.value)
        if isinstance(value, date):
            return value.isoformat()
        return value

    def unit(u: UnitRecord) -> list[Any]:
        return [cell(getattr(u, c.field)) for c in UNITS.columns]

    def person(p: PersonRecord) -> list[Any]:
        row = []
        for c in PEOPLE.columns:
            value = getattr(p, c.field)
            if c.field == "phone":
                value = phone(value)
            elif c.field in ("peacetime_group", "wartime_group"):
                value = group_zh.get(value, value)
            elif c.field == "skills":
                value = "、".join(skill_zh.get(s, s) for s in value) or None
            row.append(cell(value))
        return row

    def team(t: TeamRecord) -> list[Any]:
        return [cell(phone(t.leader_phone) if c.field == "leader_phone" else getattr(t, c.field))
                for c in TEAMS.columns]

    return {UNITS: [unit(u) for u in roster.units], PEOPLE: [person(p) for p in roster.people],
            TEAMS: [team(t) for t in roster.teams]}


def write_roster(path: Path, roster: Roster, *, mask_phones: bool = False, skills: SkillVocabulary | None = None,
                 workgroups: WorkGroupTemplate | None = None) -> list[Path]:
    """Return the files written for ``roster`` at ``path``: one ``.xlsx``, or three ``.csv``.

    ``.xlsx``: one workbook with the sheets 组织, 人员, 队伍. ``.csv``: the people at ``path``, the
    units and teams beside it as ``<stem>.units.csv`` and ``<stem>.teams.csv``, all UTF-8 with BOM so
    Excel opens them. ``skills`` and ``workgroups`` give the Chinese names (default: the shipped ones).
    """
    path = Path(path)
    rows = roster_rows(roster, mask_phones=mask_phones, skills=skills, workgroups=workgroups)
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        _write_xlsx(path, rows, notes=False)
        return [path]
    if suffix == ".csv":
        stem = path.with_suffix("")
        paths = {UNITS: Path(f"{stem}.units.csv"), PEOPLE: path, TEAMS: Path(f"{stem}.teams.csv")}
        for table in TABLES:
            _write_csv(paths[table], table, rows[table])
        return [paths[t] for t in TABLES]
    raise InvalidInput("只能导出为 .xlsx 或 .csv", "A roster can be written only as .xlsx or .csv",
                       [Problem(f"不支持的文件类型「{suffix or '无扩展名'}」", f"unsupported file type {suffix or '(none)'!r}",
                                file=path.name)])


def write_template(directory: Path) -> list[Path]:
    """Return the empty templates written into ``directory``: ``roster_template.xlsx`` and three CSVs.

    The templates hold headers only, so each imports as-is as an empty roster. The workbook's
    说明 sheet describes every column (the importer skips it); required headers are bold.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / name for name in TEMPLATE_FILES]
    _write_xlsx(paths[0], {t: [] for t in TABLES}, notes=True)
    for table, target in zip(TABLES, paths[1:]):
        _write_csv(target, table, [])
    return paths


def _write_csv(path: Path, table: TableSpec, rows: Iterable[Sequence[Any]]) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out)
        writer.writerow([c.zh for c in table.columns])
        for row in rows:
            writer.writerow(["'" + v if isinstance(v, str) and v.startswith(_FORMULA_START + _ESCAPED) else v
                             for v in row])


def _write_xlsx(path: Path, rows: dict[TableSpec, list[list[Any]]], *, notes: bool) -> None:
    book = Workbook(write_only=True)
    bold = Font(bold=True)
    for table in TABLES:
        ws = book.create_sheet(table.sheet)
        ws.freeze_panes = "A2"
        text_columns = [i for i, c in enumerate(table.columns) if c.field in _TEXT_FIELDS]
        for i, column in enumerate(table.columns):
            dimension = ws.column_dimensions[get_column_letter(i + 1)]
            dimension.width = max(10, 2 * len(column.zh) + 4)
            if i in text_columns:
                dimension.number_format = "@"  # codes and phones typed in later stay text, every digit kept
        header = []
        for column in table.columns:
            cell = WriteOnlyCell(ws, value=column.zh)
            if column.required:
                cell.font = bold
            header.append(cell)
        ws.append(header)
        for row in rows[table]:
            ws.append([_text_cell(ws, v) if type(v) is str and v.startswith(("=", *_ESCAPED)) else v for v in row])
    if notes:
        ws = book.create_sheet(_NOTES_SHEET)
        for i, width in enumerate((10, 16, 18, 10, 60, 60)):
            ws.column_dimensions[get_column_letter(i + 1)].width = width
        ws.append([WriteOnlyCell(ws, value=v) for v in ("工作表 Sheet", "列 Column", "English", "必填 Required",
                                                          "说明", "Description")])
        for table in TABLES:
            for c in table.columns:
                ws.append([table.sheet, c.zh, c.field, "是 yes" if c.required else "否 no", c.about_zh, c.about_en])
        ws.append([])
        ws.append(["注 Note", "本工作表仅供阅读，导入时会被跳过；加粗的列为必填。",
                   "This sheet is for reading only and is skipped on import; bold columns are required."])
    book.save(path)


def _text_cell(ws: Any, value: str) -> WriteOnlyCell:
    """Return a cell that Excel shows as text rather than runs as a formula (``'=…`` keeps its ``'``)."""
    cell = WriteOnlyCell(ws, value="'" + value if value.startswith(_ESCAPED) else value)
    cell.data_type = "s"
    return cell
