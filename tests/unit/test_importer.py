"""Reading roster files as community secretaries make them: Excel's CSVs, workbooks, and their mistakes."""

from __future__ import annotations

import csv
from datetime import date, datetime
from pathlib import Path

import pytest
from openpyxl import Workbook

from mobilize.errors import InvalidInput
from rosters.importer import MAX_PROBLEMS, read_roster
from rosters.vocabulary import MemberKind, PersonStatus, TeamKind, UnitLevel, load_skills, load_workgroups

SKILLS = load_skills()
GROUPS = load_workgroups()

UNITS = [
    ["编码", "名称", "层级", "上级编码", "纬度", "经度"],
    ["C1", "梅州市", "城市", "", "", ""],
    ["D1", "梅江区", "区县", "C1", "", ""],
    ["S1", "江南街道", "街道", "D1", "", ""],
    ["M1", "鸿都社区", "社区", "S1", "24.29", "116.12"],
    ["M2", "嘉应社区", "社区", "S1", "", ""],
    ["G1", "第一网格", "网格", "M1", "", ""],
    ["G2", "第二网格", "网格", "M2", "", ""],
]
PEOPLE_HEADER = ["姓名", "手机号", "人员类别", "所属社区编码", "所属网格编码", "是否党员", "平时工作组", "战时工作组",
                 "技能", "状态", "请假至", "所属队伍编码"]
TEAMS_HEADER = ["队伍编码", "队伍名称", "队伍类型", "所属社区编码", "队长手机号"]


def person(name: str = "张三", phone: str = "13800138000", **fields: str) -> list[str]:
    row = dict(zip(PEOPLE_HEADER, [name, phone, "志愿者", "M1", "G1", "是", "综合协调组", "排查管控组", "", "", "", ""]))
    row.update({header: fields[key] for key, header in (
        ("kind", "人员类别"), ("community", "所属社区编码"), ("grid", "所属网格编码"), ("party", "是否党员"),
        ("peace", "平时工作组"), ("war", "战时工作组"), ("skills", "技能"), ("status", "状态"),
        ("leave", "请假至"), ("team", "所属队伍编码")) if key in fields})
    return list(row.values())


def write_csv(path: Path, rows: list[list[str]], encoding: str = "utf-8-sig", newline: str = "\r\n") -> Path:
    with path.open("w", encoding=encoding, newline="") as out:
        csv.writer(out, lineterminator=newline).writerows(rows)
    return path


def read(*paths: Path, **kwargs: object):
    return read_roster(list(paths), skills=SKILLS, workgroups=GROUPS, **kwargs)


def problems_of(*paths: Path, **kwargs: object) -> list:
    with pytest.raises(InvalidInput) as caught:
        read(*paths, **kwargs)
    return caught.value.problems


@pytest.fixture
def units(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "units.csv", UNITS)


def test_a_gbk_csv_saved_by_excel_in_china_reads_with_its_chinese_intact(tmp_path: Path, units: Path) -> None:
    people = write_csv(tmp_path / "人员.csv", [PEOPLE_HEADER, person("欧阳娜娜", "138-0013-8000", skills="医疗、驾驶证")],
                       encoding="gb18030")
    roster = read(units, people)
    assert [p.name for p in roster.people] == ["欧阳娜娜"]
    assert roster.people[0].phone == "13800138000"
    assert roster.people[0].skills == ("medical", "driving")
    assert roster.people[0].kind is MemberKind.VOLUNTEER
    assert [u.level for u in roster.units][:3] == [UnitLevel.CITY, UnitLevel.DISTRICT, UnitLevel.STREET]


def test_a_utf8_bom_csv_reads_and_its_first_header_is_not_lost_to_the_bom(tmp_path: Path, units: Path) -> None:
    people = write_csv(tmp_path / "people.csv", [PEOPLE_HEADER, person()], encoding="utf-8-sig", newline="\n")
    roster = read(units, people)
    assert roster.people[0].name == "张三"
    assert roster.people[0].wartime_group == "screening"
    assert roster.people[0].party_member is True


def test_english_headers_in_any_case_with_spaces_are_understood(tmp_path: Path, units: Path) -> None:
    people = write_csv(tmp_path / "p.csv", [
        [" Name ", "PHONE", "Kind", "community_code", "Peacetime Group", "wartime_group", "Availability"],
        ["Li Lei", "+86 139 0000 0000", "volunteer", "M2", "coordination", "medical", "weekends"],
    ])
    roster = read(units, people)
    assert roster.people[0].phone == "13900000000"
    assert roster.people[0].availability.value == "weekends"


def test_a_workbook_with_a_title_row_number_cells_and_date_cells_reads(tmp_path: Path) -> None:
    book = Workbook()
    book.active.title = "组织"
    for row in UNITS:
        book["组织"].append(row)
    sheet = book.create_sheet("人员")
    sheet.append(["鸿都社区人员名册"])  # a title row above the header, as such sheets often have
    sheet.append(PEOPLE_HEADER)
    row = person("王五", "", status="请假", leave="")
    row[1], row[10] = 13900001111, datetime(2026, 11, 21)  # Excel keeps a typed phone as a number
    sheet.append(row)
    for _ in range(5):
        sheet.append([None] * len(PEOPLE_HEADER))  # trailing empty rows
    book.create_sheet("队伍")  # an empty sheet
    book.create_sheet("说明").append(["这张表只是说明"])
    book.save(tmp_path / "名册.xlsx")

    roster = read(tmp_path / "名册.xlsx")
    assert len(roster.units) == 7
    assert roster.people[0].phone == "13900001111"
    assert roster.people[0].status is PersonStatus.ON_LEAVE
    assert roster.people[0].leave_until == date(2026, 11, 21)
    assert roster.teams == []


def test_a_workbook_row_error_names_the_sheet_and_the_excel_row(tmp_path: Path) -> None:
    book = Workbook()
    book.active.title = "人员"
    book.active.append(PEOPLE_HEADER)
    book.active.append(person(phone="12345"))
    book.save(tmp_path / "名册.xlsx")
    [problem] = problems_of(tmp_path / "名册.xlsx", known_units={"M1": (UnitLevel.COMMUNITY, "S1"),
                                                              "G1": (UnitLevel.GRID, "M1")})
    assert (problem.file, problem.row, problem.column) == ("名册.xlsx[人员]", 2, "手机号")
    assert "11位" in problem.reason_zh


def test_every_mistake_in_a_file_is_reported_at_its_row_and_column(tmp_path: Path, units: Path) -> None:
    people = write_csv(tmp_path / "people.csv", [
        PEOPLE_HEADER,
        person("好人", "13800000001"),                                       # row 2: fine
        person("", "13800000002"),                                           # 3: empty name
        person("坏号", "1380000"),                                           # 4: bad phone
        person("类别", "13800000004", kind="路人"),                          # 5: unknown kind
        person("技能", "13800000005", skills="医疗、飞行、驾驶"),             # 6: unknown skill 飞行
        person("战时", "13800000006", war="吃瓜组"),                         # 7: unknown wartime group
        person("日期", "13800000007", status="请假", leave="2026-02-30"),     # 8: bad date
        person("社区", "13800000008", community="M9", grid=""),              # 9: unknown community
        person("街道", "13800000009", community="S1", grid=""),              # 10: not a community
        person("网格", "13800000010", community="M2", grid="G1"),            # 11: grid of another community
        person("党员", "13800000011", party="也许"),                          # 12: not a yes/no
        person("派出", "13800000012", status="已派出"),                       # 13: deployed only by activation
    ])
    found = {(p.row, p.column): p for p in problems_of(units, people)}
    assert set(found) == {(3, "姓名"), (4, "手机号"), (5, "人员类别"), (6, "技能"), (7, "战时工作组"), (8, "请假至"),
                          (9, "所属社区编码"), (10, "所属社区编码"), (11, "所属网格编码"), (12, "是否党员"), (13, "状态")}
    assert "飞行" in found[6, "技能"].reason_zh and "医疗" not in found[6, "技能"].reason_zh
    assert "M9" in found[9, "所属社区编码"].reason_zh
    assert "街道" in found[10, "所属社区编码"].reason_zh
    assert "不属于社区「M2」" in found[11, "所属网格编码"].reason_zh
    assert all(p.file == "people.csv" and p.reason_en for p in found.values())


def test_unit_mistakes_name_the_parent_problem(tmp_path: Path) -> None:
    units = write_csv(tmp_path / "units.csv", UNITS + [
        ["S2", "跳级街道", "街道", "M1", "", ""],       # row 9: a street under a community
        ["M3", "孤儿社区", "社区", "S9", "", ""],        # 10: unknown parent
        ["G3", "无主网格", "网格", "", "", ""],          # 11: no parent
        ["X1", "怪单位", "省", "C1", "", ""],            # 12: unknown level
        ["M4", "坐标", "社区", "S1", "95", "116"],      # 13: latitude out of range
        ["M5", "半坐标", "社区", "S1", "24.3", ""],     # 14: lat without lon
        ["M1", "重复社区", "社区", "S1", "", ""],        # 15: duplicate code
    ])
    found = {(p.row, p.column): p for p in problems_of(units)}
    assert set(found) == {(9, "上级编码"), (10, "上级编码"), (11, "上级编码"), (12, "层级"), (13, "纬度"),
                          (14, "经度"), (15, "编码")}
    assert "街道的上级须为区县或市" in found[9, "上级编码"].reason_zh
    assert "第5行" in found[15, "编码"].reason_zh  # names the row it repeats


def test_a_duplicate_phone_names_both_rows_even_written_differently(tmp_path: Path, units: Path) -> None:
    people = write_csv(tmp_path / "people.csv", [PEOPLE_HEADER, person("甲", "13800138000"),
                                                 person("乙", "+86 138 0013 8000")])
    [problem] = problems_of(units, people)
    assert problem.row == 3 and problem.column == "手机号"
    assert "第2行" in problem.reason_zh and "row 2" in problem.reason_en
    assert "13800138000" not in problem.reason_zh  # masked: 138****8000


def test_people_may_name_communities_already_in_the_system(tmp_path: Path) -> None:
    people = write_csv(tmp_path / "people.csv", [PEOPLE_HEADER, person(grid="G1")])
    known = {"M1": (UnitLevel.COMMUNITY, "S1"), "G1": (UnitLevel.GRID, "M1")}
    assert read(people, known_units=known).people[0].grid_code == "G1"
    assert {p.column for p in problems_of(people)} == {"所属社区编码", "所属网格编码"}


def test_a_team_leader_must_be_a_member_and_members_of_the_same_community(tmp_path: Path, units: Path) -> None:
    people = write_csv(tmp_path / "people.csv", [
        PEOPLE_HEADER,
        person("队长", "13800000001", team="T1"),
        person("外人", "13800000002", team=""),
        person("邻居", "13800000003", community="M2", grid="G2", team="T1"),
    ])
    teams = write_csv(tmp_path / "teams.csv", [
        TEAMS_HEADER,
        ["T1", "鸿都志愿队", "志愿服务队", "M1", "13800000001"],
        ["T2", "鸿都突击队", "党员突击队", "M1", "13800000002"],
        ["T3", "新队", "突击队", "M1", "13999999999"],  # leader not in this import: left to the service
    ])
    problems = problems_of(units, people, teams)
    assert {(p.file, p.row, p.column) for p in problems} == {
        ("people.csv", 4, "所属队伍编码"), ("teams.csv", 3, "队长手机号")}
    leader = next(p for p in problems if p.file == "teams.csv")
    assert "外人" in leader.reason_zh and "T2" in leader.reason_zh


def test_teams_read_with_their_kind_and_leader(tmp_path: Path, units: Path) -> None:
    people = write_csv(tmp_path / "people.csv", [PEOPLE_HEADER, person(team="T1")])
    teams = write_csv(tmp_path / "teams.csv", [TEAMS_HEADER, ["T1", "鸿都突击队", "突击队", "M1", "138 0013 8000"]])
    roster = read(units, people, teams)
    assert roster.teams[0].kind is TeamKind.COMMANDO_SQUAD
    assert roster.teams[0].leader_phone == "13800138000"


def test_a_missing_required_column_is_one_problem_not_one_per_row(tmp_path: Path, units: Path) -> None:
    header = [h for h in PEOPLE_HEADER if h != "战时工作组"]
    rows = [header] + [[v for h, v in zip(PEOPLE_HEADER, person(phone=f"1380000{i:04d}")) if h != "战时工作组"]
                       for i in range(50)]
    [problem] = problems_of(units, write_csv(tmp_path / "people.csv", rows))
    assert problem.column == "战时工作组" and problem.row is None
    assert "缺少必填列" in problem.reason_zh


def test_files_that_are_not_rosters_are_refused_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "old.xls").write_bytes(b"\xd0\xcf\x11\xe0" + b"\0" * 100)
    (tmp_path / "broken.xlsx").write_bytes(b"PK\x03\x04 this is not a zip")
    (tmp_path / "photo.png").write_bytes(b"\x89PNG")
    write_csv(tmp_path / "other.csv", [["日期", "金额"], ["2026-01-01", "5"]])
    problems = {p.file: p for p in problems_of(*(tmp_path / n for n in ("old.xls", "broken.xlsx", "photo.png",
                                                                       "other.csv")))}
    assert ".xlsx" in problems["old.xls"].reason_zh
    assert "Excel" in problems["broken.xlsx"].reason_zh
    assert "不支持" in problems["photo.png"].reason_zh
    assert "无法识别" in problems["other.csv"].reason_zh


def test_a_header_without_rows_is_an_empty_table(tmp_path: Path) -> None:
    people = write_csv(tmp_path / "people.csv", [PEOPLE_HEADER])
    assert read(people).people == []


def test_problems_stop_at_the_cap_with_a_count_of_the_rest(tmp_path: Path, units: Path) -> None:
    rows = [PEOPLE_HEADER] + [person(phone="123") for _ in range(MAX_PROBLEMS + 200)]
    problems = problems_of(units, write_csv(tmp_path / "people.csv", rows))
    assert len(problems) == MAX_PROBLEMS + 1
    assert "200" in problems[-1].reason_zh and problems[-1].row is None
