"""Writing rosters and templates that Excel opens and the importer reads back unchanged."""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from rosters.columns import PEOPLE, TABLES
from rosters.exporter import TEMPLATE_FILES, write_roster, write_template
from rosters.importer import read_roster
from rosters.records import PersonRecord, Roster, TeamRecord, UnitRecord
from rosters.vocabulary import (Availability, MemberKind, PersonStatus, TeamKind, UnitLevel, load_skills,
                                load_workgroups)

SKILLS = load_skills()
GROUPS = load_workgroups()


def read(paths: list[Path]) -> Roster:
    return read_roster(paths, skills=SKILLS, workgroups=GROUPS)


def rich_roster() -> Roster:
    units = [
        UnitRecord("441402", "梅江区", UnitLevel.DISTRICT, "4414"),
        UnitRecord("4414", "梅州市", UnitLevel.CITY, None, 24.288578, 116.122046),
        UnitRecord("441402001", "江南街道", UnitLevel.STREET, "441402"),
        UnitRecord("441402001001", "鸿都社区", UnitLevel.COMMUNITY, "441402001", 24.29, -0.5),
        UnitRecord("441402001001G01", "第一网格", UnitLevel.GRID, "441402001001"),
        UnitRecord("441402001001G01B1", "1栋", UnitLevel.BUILDING, "441402001001G01"),
    ]
    people = [
        PersonRecord("13800138000", "欧阳娜娜", MemberKind.REPORTING_MEMBER, "441402001001", "coordination", "command",
                     grid_code="441402001001G01", lat=24.291, lon=116.12, address="江南路1号, 3楼",
                     work_unit="梅州市卫健局", party_member=True, group_leader=True, skills=("medical", "driving"),
                     availability=Availability.WEEKENDS, status=PersonStatus.ON_LEAVE, leave_until=date(2026, 11, 21),
                     team_code="T1"),
        PersonRecord("13900001111", "=HYPERLINK(\"http://x\")", MemberKind.SQUAD_MEMBER, "441402001001",
                     "volunteer_service", "care", address="-", work_unit="'=本来就带引号", team_code="T1"),
        PersonRecord("15012345678", "Li \"Lei\"", MemberKind.GRID_WORKER, "441402001001", "grid_service", "patrol",
                     skills=("elderly_care",), status=PersonStatus.INACTIVE, address="多行\n地址"),
    ]
    teams = [TeamRecord("T1", "鸿都党员突击队", TeamKind.COMMANDO_SQUAD, "441402001001", "13800138000")]
    return Roster(units, people, teams)


@pytest.mark.parametrize("name", ["名册.xlsx", "名册.csv"])
def test_a_written_roster_reads_back_to_the_same_records(tmp_path: Path, name: str) -> None:
    roster = rich_roster()
    assert read(write_roster(tmp_path / name, roster)) == roster


def test_csv_export_is_three_files_excel_opens_as_utf8(tmp_path: Path) -> None:
    paths = write_roster(tmp_path / "export.csv", rich_roster())
    assert [p.name for p in paths] == ["export.units.csv", "export.csv", "export.teams.csv"]
    people = paths[1].read_bytes()
    assert people.startswith(b"\xef\xbb\xbf")  # the BOM that makes Excel read UTF-8
    text = people.decode("utf-8-sig")
    assert text.splitlines()[0].startswith("姓名,手机号,人员类别")
    assert "'=HYPERLINK" in text  # Excel shows it, does not run it
    assert "报到党员" in text and "医疗救护、驾驶" in text and "综合协调组" in text


def test_xlsx_export_writes_a_formula_lookalike_as_text_and_codes_as_text(tmp_path: Path) -> None:
    [path] = write_roster(tmp_path / "export.xlsx", rich_roster())
    book = load_workbook(path)  # not data_only: a formula would show here as a formula
    assert book.sheetnames == ["组织", "人员", "队伍"]
    people = book["人员"]
    assert people["A3"].value == "=HYPERLINK(\"http://x\")" and people["A3"].data_type == "s"
    assert book["组织"]["A5"].value == "441402001001"  # a 12-digit code keeps every digit


def test_masked_export_hides_phones_everywhere(tmp_path: Path) -> None:
    paths = write_roster(tmp_path / "export.csv", rich_roster(), mask_phones=True)
    text = "".join(p.read_text(encoding="utf-8-sig") for p in paths)
    assert "138****8000" in text
    assert "13800138000" not in text and "13900001111" not in text


def test_an_unknown_suffix_is_refused(tmp_path: Path) -> None:
    with pytest.raises(Exception) as caught:
        write_roster(tmp_path / "export.pdf", rich_roster())
    assert ".pdf" in str(caught.value)


def test_templates_import_as_an_empty_roster_and_explain_every_column(tmp_path: Path) -> None:
    paths = write_template(tmp_path / "templates")
    assert [p.name for p in paths] == list(TEMPLATE_FILES)
    assert read(paths) == Roster()
    book = load_workbook(paths[0])
    assert book.sheetnames == ["组织", "人员", "队伍", "说明"]
    assert [c.value for c in book["人员"][1]] == [c.zh for c in PEOPLE.columns]
    explained = {(row[0], row[1]) for row in book["说明"].iter_rows(min_row=2, values_only=True) if row[1]}
    assert all((t.sheet, c.zh) in explained for t in TABLES for c in t.columns)
    assert paths[2].read_text(encoding="utf-8-sig").strip() == ",".join(c.zh for c in PEOPLE.columns)


# ---- any valid roster survives the round trip ---------------------------------------------------

_text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12).map(str.strip).filter(bool)
_coord = st.tuples(st.integers(-90_000_000, 90_000_000), st.integers(-180_000_000, 180_000_000)).map(
    lambda p: (p[0] / 1e6, p[1] / 1e6))  # as rosters hold them: 6 decimals, Excel keeps 15 digits


@st.composite
def rosters(draw: st.DrawFn) -> Roster:
    coords = draw(st.lists(st.one_of(st.none(), _coord), min_size=3, max_size=3))
    units = [UnitRecord("C", draw(_text), UnitLevel.CITY, None, *(coords[0] or (None, None))),
             UnitRecord("S", draw(_text), UnitLevel.STREET, "C"),
             UnitRecord("M", draw(_text), UnitLevel.COMMUNITY, "S", *(coords[1] or (None, None))),
             UnitRecord("G", draw(_text), UnitLevel.GRID, "M", *(coords[2] or (None, None)))]
    phones = draw(st.lists(st.integers(13_000_000_000, 19_999_999_999).map(str), min_size=1, max_size=6, unique=True))
    team = draw(st.booleans())
    people = []
    for i, phone in enumerate(phones):
        where = draw(st.one_of(st.none(), _coord))
        people.append(PersonRecord(
            phone, draw(_text), draw(st.sampled_from(MemberKind)), "M",
            draw(st.sampled_from([g.code for g in GROUPS.peacetime])),
            draw(st.sampled_from([g.code for g in GROUPS.wartime])),
            grid_code=draw(st.sampled_from([None, "G"])), lat=where and where[0], lon=where and where[1],
            address=draw(st.one_of(st.none(), _text)), work_unit=draw(st.one_of(st.none(), _text)),
            party_member=draw(st.booleans()), group_leader=draw(st.booleans()),
            skills=tuple(draw(st.lists(st.sampled_from(SKILLS.codes), unique=True, max_size=4))),
            availability=draw(st.sampled_from(Availability)),
            status=draw(st.sampled_from([s for s in PersonStatus if s is not PersonStatus.DEPLOYED])),
            leave_until=draw(st.one_of(st.none(), st.dates(date(2000, 1, 1), date(2099, 12, 31)))),
            team_code="T" if team and i == 0 else None))
    teams = [TeamRecord("T", draw(_text), draw(st.sampled_from(TeamKind)), "M", phones[0])] if team else []
    return Roster(units, people, teams)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(roster=rosters(), suffix=st.sampled_from([".xlsx", ".csv"]))
def test_any_valid_roster_reads_back_unchanged(roster: Roster, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as directory:
        assert read(write_roster(Path(directory) / f"roster{suffix}", roster)) == roster
