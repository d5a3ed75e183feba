"""The columns of the three roster tables (组织机构, 人员, 队伍) and the formats of their values.

One spec serves the importer (which header means which field), the exporter and the templates
(which Chinese header to write) and the README (:func:`columns_markdown` renders every column).
A header matches a column case-insensitively, ignoring surrounding spaces and ``_``/space
differences, by its Chinese header or any alias. The cell formats live in :mod:`rosters.cells`
(re-exported here).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rosters.cells import (
    CellError,
    CellParsers,
    cell_text,
    parse_bool,
    parse_date,
    split_words,
)

__all__ = [
    "NOTES_SHEETS",
    "PEOPLE",
    "TABLES",
    "TEAMS",
    "UNITS",
    "CellError",
    "CellParsers",
    "Column",
    "TableSpec",
    "cell_text",
    "columns_markdown",
    "detect_table",
    "normalize_header",
    "parse_bool",
    "parse_date",
    "split_words",
    "table_for_sheet",
]


def normalize_header(header: object) -> str:
    """Return ``header`` as headers are compared: stripped, lower case, ``_``/``-`` as spaces, full-width ``（）`` as ``()``."""
    text = str(header or "").replace("\ufeff", "").replace("（", "(").replace("）", ")")
    return " ".join(text.strip().lower().replace("_", " ").replace("-", " ").split())


@dataclass(frozen=True, slots=True)
class Column:
    """One column: the record field it fills, its Chinese header, other accepted headers, and what it holds."""

    field: str
    zh: str
    required: bool
    about_zh: str
    about_en: str
    aliases: tuple[str, ...] = ()

    @property
    def headers(self) -> tuple[str, ...]:
        """Every header that names this column: Chinese, the field name, then the aliases."""
        return (self.zh, self.field, *self.aliases)


@dataclass(frozen=True)
class TableSpec:
    """One table: its name, the sheet it is written to, the sheet names it is read from, its columns."""

    name: str
    zh: str
    sheet: str
    sheet_names: tuple[str, ...]
    columns: tuple[Column, ...]

    def __post_init__(self) -> None:
        index: dict[str, Column] = {}
        for column in self.columns:
            for header in column.headers:
                key = normalize_header(header)
                if index.setdefault(key, column) is not column:
                    raise ValueError(f"{self.name}: header {header!r} names two columns")
        object.__setattr__(self, "_index", index)

    def column_for(self, header: object) -> Column | None:
        """Return the column that ``header`` names, or None."""
        return self._index.get(normalize_header(header))  # type: ignore[attr-defined]

    @property
    def required(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.required)


def _c(field: str, zh: str, required: bool, about_zh: str, about_en: str, *aliases: str) -> Column:
    return Column(field, zh, required, about_zh, about_en, aliases)


_LAT = _c("lat", "纬度", False, "十进制度数，-90 到 90；与经度同填或同空", "decimal degrees, -90 to 90; give both or neither",
          "latitude", "纬度(度)")
_LON = _c("lon", "经度", False, "十进制度数，-180 到 180；与纬度同填或同空", "decimal degrees, -180 to 180; give both or neither",
          "lng", "longitude", "经度(度)")

UNITS = TableSpec("units", "组织机构", "组织", ("组织", "组织机构", "units", "unit", "机构", "单位"), (
    _c("code", "编码", True, "唯一编码，如行政区划代码；请以文本填写", "unique code, e.g. the administrative division code; "
       "enter it as text", "unit_code", "单位编码", "机构编码", "组织编码"),
    _c("name", "名称", True, "单位名称", "the unit's name", "unit_name", "单位名称", "机构名称", "组织名称"),
    _c("level", "层级", True, "城市、区县、街道、社区、网格、楼栋（或 city/district/street/community/grid/building）",
       "city, district, street, community, grid or building (Chinese or English)", "级别", "类型"),
    _c("parent_code", "上级编码", False, "除市外必填，须高一级：区县←市，街道←区县或市，社区←街道，网格←社区，楼栋←网格",
       "required except for a city; one level up: district←city, street←district or city, community←street, "
       "grid←community, building←grid", "parent", "上级", "上级单位编码"),
    _LAT,
    _LON,
))

PEOPLE = TableSpec("people", "人员", "人员", ("人员", "people", "persons", "人员名册", "名册"), (
    _c("name", "姓名", True, "姓名", "full name", "名字", "full_name"),
    _c("phone", "手机号", True, "大陆手机号，11位，可带 +86；同一手机号只能出现一次",
       "mainland mobile, 11 digits, +86 allowed; each phone only once", "mobile", "手机", "手机号码", "联系电话", "电话"),
    _c("kind", "人员类别", True, "报到党员、志愿者、突击队员、社区工作者、网格员",
       "reporting member, volunteer, squad member, community worker or grid worker", "member_kind", "类别", "人员类型"),
    _c("community_code", "所属社区编码", True, "人员所属社区的编码（须为社区层级）",
       "code of the person's community (a unit of level community)", "community", "社区编码"),
    _c("grid_code", "所属网格编码", False, "所属网格的编码，须为该社区下的网格",
       "code of the person's grid, a grid of that community", "grid", "网格编码"),
    _LAT,
    _LON,
    _c("address", "住址", False, "居住地址", "home address", "居住地址", "家庭住址"),
    _c("work_unit", "工作单位", False, "工作单位（在职党员填写所在机关或企业）", "employer (the agency or company of a reporting "
       "member)", "employer", "单位"),
    _c("party_member", "是否党员", False, "是/否（也可填 Y/N、√/×、1/0），空为否", "yes/no (also Y/N, √/×, 1/0); empty means no",
       "党员"),
    _c("peacetime_group", "平时工作组", True, "平时4个工作小组之一，如 综合协调组", "one of the 4 peacetime groups, e.g. 综合协调组",
       "平时小组", "平时工作小组"),
    _c("wartime_group", "战时工作组", True, "战时7个工作小组之一，如 排查管控组", "one of the 7 wartime groups, e.g. 排查管控组",
       "战时小组", "战时工作小组"),
    _c("group_leader", "是否组长", False, "是否为该战时工作组组长：是/否，空为否", "leads the wartime group: yes/no; empty means no",
       "组长", "leader"),
    _c("skills", "技能", False, "技能或证书，用 、，,;；/ 或空格分隔，如 医疗救护、驾驶", "skills or certificates separated by "
       "、，,;；/ or spaces, e.g. 医疗救护、驾驶", "技能证书", "技能/证书", "特长"),
    _c("availability", "可服务时段", False, "随时、仅工作日、仅周末、仅白天、仅夜间；空为随时",
       "anytime, weekdays, weekends, daytime or nights; empty means anytime", "服务时段", "可服务时间"),
    _c("status", "状态", False, "可用、请假、停用；空为可用（已派出只由启动产生）",
       "available, on leave or inactive; empty means available (deployed is set only by an activation)", "人员状态"),
    _c("leave_until", "请假至", False, "请假截止日期，如 2026-11-21、2026/11/21、2026年11月21日",
       "last day of leave, e.g. 2026-11-21, 2026/11/21 or 2026年11月21日", "请假截止", "请假截至"),
    _c("team_code", "所属队伍编码", False, "所属志愿服务队或突击队的编码；队伍须与人员同属一个社区",
       "code of the person's volunteer team or squad; the team must be of the same community", "team", "所属队伍"),
))

TEAMS = TableSpec("teams", "队伍", "队伍", ("队伍", "teams", "team", "队伍名册"), (
    _c("code", "队伍编码", True, "唯一编码", "unique code", "team_code"),
    _c("name", "队伍名称", True, "队伍名称", "the team's name", "team_name"),
    _c("kind", "队伍类型", True, "志愿服务队 或 党员突击队", "volunteer team or commando squad", "team_kind", "类型"),
    _c("community_code", "所属社区编码", True, "队伍所属社区的编码；队员须属同一社区",
       "code of the team's community; its members must belong to it", "community", "社区编码"),
    _c("leader_phone", "队长手机号", True, "队长的手机号；队长须是本队队员（人员表中所属队伍编码为本队）",
       "the leader's mobile; the leader must be a member (their 所属队伍编码 is this team)",
       "leader", "队长手机", "队长电话"),
))

TABLES: tuple[TableSpec, ...] = (UNITS, PEOPLE, TEAMS)

NOTES_SHEETS: frozenset[str] = frozenset({"说明", "填写说明", "notes", "instructions", "readme"})
"""Sheets a workbook may carry for people to read; the importer skips them."""


def detect_table(headers: Iterable[object]) -> TableSpec | None:
    """Return the table whose columns the most of ``headers`` name, or None when none or a tie."""
    headers = list(headers)
    scores = [(sum(1 for h in headers if t.column_for(h)), t) for t in TABLES]
    scores.sort(key=lambda pair: -pair[0])
    best, table = scores[0]
    if best == 0 or best == scores[1][0]:
        return None
    return table


def table_for_sheet(sheet_name: str) -> TableSpec | None:
    """Return the table a sheet of this name holds (组织/组织机构/units, 人员/people, 队伍/teams), or None."""
    key = normalize_header(sheet_name)
    for table in TABLES:
        if key in (normalize_header(n) for n in table.sheet_names):
            return table
    return None


def columns_markdown(table: TableSpec | None = None) -> str:
    """Return a Markdown table per roster table listing every column (all three when ``table`` is None)."""
    out: list[str] = []
    for spec in (table,) if table else TABLES:
        out.append(f"### {spec.zh} ({spec.name}) — 工作表 sheet「{spec.sheet}」\n")
        out.append("| 列 Column | English | 必填 Required | 也可写作 Also accepted | 说明 | Description |")
        out.append("|---|---|---|---|---|---|")
        for c in spec.columns:
            aliases = ", ".join(f"`{a}`" for a in c.aliases) or "—"
            required = "是 yes" if c.required else "否 no"
            out.append(f"| {c.zh} | `{c.field}` | {required} | {aliases} | {c.about_zh} | {c.about_en} |")
        out.append("")
    return "\n".join(out)
