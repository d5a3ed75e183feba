"""Reading roster files (CSV and XLSX) into a checked :class:`~rosters.records.Roster`.

:func:`read_roster` is pure: files in, records out, no database. It collects every problem it can
find (up to :data:`MAX_PROBLEMS`) and raises one :class:`~mobilize.errors.InvalidInput` whose
problems each name the file, the row as Excel numbers it (header = row 1), the column as the file
writes it, and the reason in Chinese and English.

What it leaves to the roster service, which sees the database:

- a team leader whose phone is not among the people of this import (the leader may already be in
  the database; the service must check that the leader is a member of the team);
- a person's ``team_code`` that names no team of this import (the team may already exist).

Units, communities and grids it checks against this import's units and ``known_units``.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mobilize.errors import InvalidInput, Problem
from rosters.columns import PEOPLE, TABLES, CellError, CellParsers, cell_text
from rosters.phones import mask_phone
from rosters.records import PersonRecord, Roster, TeamRecord, UnitRecord
from rosters.sheets import MAX_PROBLEMS, ProblemList, RawTable, read_tables
from rosters.vocabulary import ZH, SkillVocabulary, UnitLevel, WorkGroupTemplate

__all__ = ["read_roster", "MAX_PROBLEMS", "PARENT_LEVELS"]

PARENT_LEVELS: dict[UnitLevel, frozenset[UnitLevel]] = {
    UnitLevel.CITY: frozenset(),
    UnitLevel.DISTRICT: frozenset({UnitLevel.CITY}),
    UnitLevel.STREET: frozenset({UnitLevel.DISTRICT, UnitLevel.CITY}),
    UnitLevel.COMMUNITY: frozenset({UnitLevel.STREET}),
    UnitLevel.GRID: frozenset({UnitLevel.COMMUNITY}),
    UnitLevel.BUILDING: frozenset({UnitLevel.GRID}),
}
"""The levels a unit's parent may have (a city has none)."""

@dataclass(frozen=True, slots=True)
class _At:
    """Where a record came from: file, Excel row, and the sheet's headers to name a column."""

    file: str
    row: int
    headers: Mapping[str, str]

    def text(self) -> str:
        return f"{self.file} 第{self.row}行"

    def text_en(self) -> str:
        return f"{self.file} row {self.row}"


def _at(problems: ProblemList, at: _At, field_name: str, zh: str, en: str, value: Any = None) -> None:
    problems.add(zh, en, file=at.file, row=at.row, column=at.headers.get(field_name, field_name), value=value)


def read_roster(paths: Sequence[Path], *, skills: SkillVocabulary, workgroups: WorkGroupTemplate,
                known_units: Mapping[str, tuple[UnitLevel, str | None]] = {}) -> Roster:
    """Return the roster that the CSV and XLSX files at ``paths`` hold, checked, or raise :class:`InvalidInput`.

    ``known_units`` maps the code of each unit already in the database to its (level, parent code),
    so a file of people may name communities imported before. A CSV holds one table, told by its
    headers; a workbook holds the sheets 组织, 人员 and 队伍 (a 说明 sheet is skipped).
    """
    with _collector_paused():
        roster, problems = _read(paths, skills, workgroups, known_units)
    if problems.items:
        found = len(problems.items) + problems.more
        order = {name: i for i, name in enumerate(dict.fromkeys(p.file for p in problems.items))}
        items = sorted(problems.items, key=lambda p: (order[p.file], p.row or 0))
        if problems.more:
            items.append(Problem(f"另有 {problems.more} 处问题未列出，请先改正以上问题后重新导入",
                                 f"{problems.more} more problems are not listed; fix the ones above and import again"))
        raise InvalidInput(f"名册有 {found} 处问题，未导入", f"The roster has {found} problems; nothing was imported",
                           items)
    return roster


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for a read, and resume it after.

    A 44,000-row roster allocates about a million small objects that all live to the end; the
    collector would rescan them again and again, which more than doubles the read time. Nothing
    read here forms reference cycles.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _read(paths: Sequence[Path], skills: SkillVocabulary, workgroups: WorkGroupTemplate,
          known_units: Mapping[str, tuple[UnitLevel, str | None]]) -> tuple[Roster, ProblemList]:
    """Return the roster the files hold and the problems found in them."""
    problems = ProblemList()
    sheets: list[RawTable] = []
    incomplete: set[str] = set()  # tables with a file missing a required column: no cross-checks into them
    for path in paths:
        for sheet in read_tables(Path(path), problems):
            missing = [c for c in sheet.table.required if c.field not in sheet.index]
            for column in missing:
                problems.add(f"缺少必填列「{column.zh}」（{sheet.table.zh}表）",
                             f"the required column {column.zh} ({column.field}) of the {sheet.table.name} table "
                             "is missing", file=sheet.file, column=column.zh)
            if missing:
                incomplete.add(sheet.table.name)
            else:
                sheets.append(sheet)
    parsers = CellParsers(skills, workgroups)
    parsed: dict[str, list[tuple[_At, dict[str, Any]]]] = {t.name: [] for t in TABLES}
    seen: dict[str, set[str]] = {t.name: set() for t in TABLES}  # keys of rows, valid or not
    for sheet in sheets:
        _parse_rows(sheet, parsers, problems, parsed[sheet.table.name], seen[sheet.table.name])
    roster = _check(parsed, seen, incomplete, known_units, problems)
    return roster, problems


# ---- one row at a time -----------------------------------------------------------------------

def _parse_rows(sheet: RawTable, parsers: CellParsers, problems: ProblemList,
                out: list[tuple[_At, dict[str, Any]]], seen: set[str]) -> None:
    """Append each row of ``sheet`` that parses to ``out``; add a problem for each bad field of the others."""
    parse = parsers.for_table(sheet.table)
    plan = [(c.field, sheet.index[c.field], sheet.headers[c.field], parse[c.field], c.required)
            for c in sheet.table.columns if c.field in sheet.index]
    key = "phone" if sheet.table is PEOPLE else "code"
    for number, row in sheet.rows:
        values: dict[str, Any] = {}
        ok = True
        for name, position, header, parser, required in plan:
            raw = row[position] if position < len(row) else None
            text = cell_text(raw)
            if not text:
                if required:
                    ok = False
                    problems.add(f"必填项「{header}」为空", f"the required value {header} is empty",
                                 file=sheet.file, row=number, column=header)
                continue
            try:
                values[name] = parser(raw, text)
            except CellError as exc:
                ok = False
                problems.add(exc.reason_zh, exc.reason_en, file=sheet.file, row=number, column=header, value=text)
        if key in values:
            seen.add(values[key])
        if ("lat" in values) != ("lon" in values):
            ok = False
            missing, given = ("lon", "lat") if "lat" in values else ("lat", "lon")
            problems.add("纬度和经度须同时填写或同时留空", "give both latitude and longitude, or neither",
                         file=sheet.file, row=number, column=sheet.headers.get(missing, sheet.headers[given]))
        for name, bound in (("lat", 90.0), ("lon", 180.0)):
            if name in values and not -bound <= values[name] <= bound:
                ok = False
                problems.add(f"{'纬度' if name == 'lat' else '经度'}超出范围（-{bound:g} 到 {bound:g}）：{values[name]}",
                             f"{'latitude' if name == 'lat' else 'longitude'} out of range (-{bound:g} to {bound:g}): "
                             f"{values[name]}", file=sheet.file, row=number, column=sheet.headers[name],
                             value=values[name])
        if ok:
            out.append((_At(sheet.file, number, sheet.headers), values))


# ---- across rows and tables ------------------------------------------------------------------

def _level_zh(level: UnitLevel) -> str:
    return ZH.get(level, level.value)


def _check(parsed: dict[str, list[tuple[_At, dict[str, Any]]]], seen: dict[str, set[str]], incomplete: set[str],
           known_units: Mapping[str, tuple[UnitLevel, str | None]], problems: ProblemList) -> Roster:
    """Return the roster of the parsed rows, adding a problem for each duplicate and each bad reference."""
    units = _unique(parsed["units"], "code", "编码", "code", problems)
    people = _unique(parsed["people"], "phone", "手机号", "phone", problems)
    teams = _unique(parsed["teams"], "code", "队伍编码", "team code", problems)
    tree: dict[str, tuple[UnitLevel, str | None]] = {c: (UnitLevel(lv), p) for c, (lv, p) in known_units.items()}
    tree.update((u["code"], (u["level"], u.get("parent_code"))) for _, u in units)
    # A reference to a unit whose own row is wrong (or whose file lacks a column) is not reported again.
    unit_blind = "units" in incomplete
    unit_rows = seen["units"]

    def unit_ref(at: _At, name: str, code: str, want: UnitLevel, what: tuple[str, str]) -> tuple[UnitLevel, str | None] | None:
        found = tree.get(code)
        if found is None:
            if not unit_blind and code not in unit_rows:
                _at(problems, at, name, f"{what[0]}「{code}」不存在（本次导入与系统中都没有）",
                            f"no {what[1]} {code!r} in this import or in the system", code)
            return None
        if found[0] is not want:
            _at(problems, at, name, f"「{code}」是{_level_zh(found[0])}，不是{_level_zh(want)}",
                        f"{code!r} is a {found[0].value}, not a {want.value}", code)
            return None
        return found

    for at, u in units:
        level, parent = u["level"], u.get("parent_code")
        allowed = PARENT_LEVELS[level]
        if not allowed:
            if parent:
                _at(problems, at, "parent_code", "市级单位不应填写上级编码", "a city has no parent", parent)
        elif not parent:
            _at(problems, at, "parent_code", f"{_level_zh(level)}须填写上级编码", f"a {level.value} needs a parent code")
        elif parent not in tree:
            if not unit_blind and parent not in unit_rows:
                _at(problems, at, "parent_code", f"上级编码「{parent}」不存在（本次导入与系统中都没有）",
                            f"no parent unit {parent!r} in this import or in the system", parent)
        elif tree[parent][0] not in allowed:
            nearest = sorted(allowed, key=lambda x: -x.depth)
            want = "或".join(_level_zh(x) for x in nearest)
            _at(problems, at, "parent_code", f"{_level_zh(level)}的上级须为{want}，而「{parent}」是{_level_zh(tree[parent][0])}",
                        f"the parent of a {level.value} must be a {' or '.join(a.value for a in nearest)}, "
                        f"but {parent!r} is a {tree[parent][0].value}", parent)
    team_by_code = {t["code"]: (at, t) for at, t in teams}
    for at, p in people:
        community = p["community_code"]
        unit_ref(at, "community_code", community, UnitLevel.COMMUNITY, ("社区", "community"))
        grid = p.get("grid_code")
        if grid and (found := unit_ref(at, "grid_code", grid, UnitLevel.GRID, ("网格", "grid"))):
            if found[1] != community:
                _at(problems, at, "grid_code", f"网格「{grid}」不属于社区「{community}」（它属于「{found[1] or '无'}」）",
                            f"grid {grid!r} is not in community {community!r} (it is in {found[1]!r})", grid)
        team = team_by_code.get(p.get("team_code", ""))
        if team and team[1]["community_code"] != community:
            _at(problems, at, "team_code", f"队伍「{team[1]['code']}」属于社区「{team[1]['community_code']}」，"
                        f"与本人所属社区「{community}」不同",
                        f"team {team[1]['code']!r} belongs to community {team[1]['community_code']!r}, "
                        f"not to this person's community {community!r}", team[1]["code"])
    person_by_phone = {p["phone"]: (at, p) for at, p in people}
    for at, t in teams:
        unit_ref(at, "community_code", t["community_code"], UnitLevel.COMMUNITY, ("社区", "community"))
        leader = person_by_phone.get(t["leader_phone"])
        if leader and leader[1].get("team_code") != t["code"]:
            _at(problems, at, "leader_phone", f"队长（{leader[0].text()} {leader[1]['name']}）不是本队队员："
                        f"其所属队伍编码应为「{t['code']}」", f"the leader ({leader[0].text_en()}) is not a member: "
                        f"their team code must be {t['code']!r}", mask_phone(t["leader_phone"]))
    return Roster(units=[UnitRecord(**{"parent_code": None, **u}) for _, u in units], people=[PersonRecord(**p) for _, p in people],
                  teams=[TeamRecord(**t) for _, t in teams])


def _unique(rows: list[tuple[_At, dict[str, Any]]], key: str, zh: str, en: str,
            problems: ProblemList) -> list[tuple[_At, dict[str, Any]]]:
    """Return ``rows`` without the later of two rows with the same ``key``; each later one is a problem."""
    first: dict[str, _At] = {}
    out = []
    for at, values in rows:
        value = values[key]
        if value in first:
            shown = mask_phone(value) if key == "phone" else value
            _at(problems, at, key, f"{zh}「{shown}」重复：与{first[value].text()}相同",
                        f"duplicate {en} {shown!r}: same as {first[value].text_en()}", shown)
            continue
        first[value] = at
        out.append((at, values))
    return out
