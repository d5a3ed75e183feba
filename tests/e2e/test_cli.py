"""The ``mobilize`` command line as a city's data clerk uses it: template, import, re-import, export."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mobilize.cli import app

runner = CliRunner()


@pytest.fixture
def env(sqlite_url, monkeypatch, tmp_path):
    monkeypatch.setenv("MOBILIZE_DATABASE_URL", sqlite_url)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*args: str):
    result = runner.invoke(app, list(args))
    return result


UNITS = [
    ["编码", "名称", "层级", "上级编码", "纬度", "经度"],
    ["4401", "示范市", "市", "", "", ""],
    ["440101", "越秀区", "区县", "4401", "", ""],
    ["440101001", "北京街道", "街道", "440101", "", ""],
    ["440101001001", "仓边社区", "社区", "440101001", "23.13", "113.27"],
    ["440101001001-01", "第1网格", "网格", "440101001001", "23.131", "113.271"],
]
PEOPLE_HEADER = ["姓名", "手机号", "人员类别", "所属社区编码", "所属网格编码", "是否党员", "平时工作组", "战时工作组",
                 "是否组长", "技能", "所属队伍编码"]
PEOPLE = [
    PEOPLE_HEADER,
    ["李明", "+86 138-0013-8000", "双报到党员", "440101001001", "440101001001-01", "是", "综合协调组", "综合指挥组", "是", "驾驶、医疗", "440101001001-TJ1"],
    ["王芳", "１３９００１３９０００", "志愿者", "440101001001", "", "否", "志愿服务组", "关爱服务组", "", "养老护理", ""],
    ["赵强", "13700137000", "突击队员", "440101001001", "", "是", "网格服务组", "安全巡查组", "", "救援 驾驶", "440101001001-TJ1"],
]
TEAMS = [
    ["队伍编码", "队伍名称", "队伍类型", "所属社区编码", "队长手机号"],
    ["440101001001-TJ1", "仓边社区党员突击队", "党员突击队", "440101001001", "13800138000"],
]


def counts(output: str) -> dict[str, list[str]]:
    """Return the import report table: row label -> [created, updated, unchanged]."""
    return {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:5]]
            for line in output.splitlines() if line.count("│") >= 4}


def write_csv(path: Path, rows, encoding="utf-8-sig"):
    with path.open("w", encoding=encoding, newline="") as fh:
        csv.writer(fh, lineterminator="\r\n").writerows(rows)
    return path


def test_template_import_reimport_export(env):
    result = run("template", "templates")
    assert result.exit_code == 0, result.output
    assert (env / "templates" / "roster_template.xlsx").exists()

    units = write_csv(env / "units.csv", UNITS)
    people = write_csv(env / "people.csv", PEOPLE, encoding="gb18030")  # as Excel in China saves it
    teams = write_csv(env / "teams.csv", TEAMS)

    result = run("import", "--dry-run", str(units), str(people), str(teams))
    assert result.exit_code == 0, result.output
    assert "Dry run" in result.output
    assert "没有组织架构" in run("units").output  # the dry run wrote nothing

    result = run("import", str(units), str(people), str(teams))
    assert result.exit_code == 0, result.output
    assert "仓边社区" in run("units").output

    result = run("import", str(units), str(people), str(teams))
    assert result.exit_code == 0
    assert counts(result.output)["人员 people"] == ["0", "0", "3"]  # re-import changes nothing

    result = run("export", "out.xlsx")
    assert result.exit_code == 0, result.output
    assert "3 人员 people" in result.output
    result = run("import", "out.xlsx")
    assert result.exit_code == 0, result.output
    rows = counts(result.output)
    assert rows["人员 people"] == ["0", "0", "3"] and rows["单位 units"] == ["0", "0", "5"]

    result = run("export", "out.csv")
    assert result.exit_code == 0
    assert (env / "out.csv").read_bytes().startswith(b"\xef\xbb\xbf")  # BOM: Excel opens UTF-8
    assert (env / "out.teams.csv").exists() and (env / "out.units.csv").exists()


def test_bad_file_exits_1_with_row_errors_and_changes_nothing(env):
    write_csv(env / "units.csv", UNITS)
    assert run("import", "units.csv").exit_code == 0
    bad = PEOPLE + [
        ["无手机", "12345", "志愿者", "440101001001", "", "否", "志愿服务组", "关爱服务组", "", "", ""],
        ["错社区", "13600136000", "志愿者", "999", "", "否", "志愿服务组", "关爱服务组", "", "", ""],
        ["怪技能", "13500135000", "志愿者", "440101001001", "", "否", "志愿服务组", "关爱服务组", "", "潜水艇驾驶", ""],
        ["重复", "13800138000", "志愿者", "440101001001", "", "否", "志愿服务组", "关爱服务组", "", "", ""],
    ]
    write_csv(env / "people.csv", bad)
    write_csv(env / "teams.csv", TEAMS)
    result = run("import", "people.csv", "teams.csv")
    assert result.exit_code == 1
    out = result.output
    assert "people.csv" in out
    assert "第5行" in out and "row 5" in out  # bad phone
    assert "第6行" in out and "999" in out  # unknown community
    assert "潜水艇驾驶" in out  # unknown skill named
    assert "第7行" in out or "第8行" in out  # duplicate person
    assert "第8行" in out
    listing = run("export", "after.xlsx")
    assert "0 人员 people" in listing.output


def test_user_add_checks_role_against_scope(env):
    write_csv(env / "units.csv", UNITS)
    run("import", "units.csv")
    result = run("user", "add", "lee", "--role", "community_commander", "--scope", "440101001", "--password", "long-enough-1")
    assert result.exit_code == 1 and "scope" in result.output
    result = run("user", "add", "lee", "--role", "community_commander", "--scope", "440101001001", "--password", "long-enough-1")
    assert result.exit_code == 0, result.output
    result = run("user", "add", "lee2", "--role", "pope", "--password", "long-enough-1")
    assert result.exit_code == 1 and "role" in result.output


def test_demo_generates_a_city_without_serving(env, monkeypatch):
    monkeypatch.delenv("MOBILIZE_DATABASE_URL")
    result = run("demo", "--no-serve", "--password", "demo-password-9")
    assert result.exit_code == 0, result.output
    assert "1200 人 people" in result.output
    assert "admin" in result.output and "demo-password-9" in result.output
    assert (env / "mobilize-demo.db").exists()


def test_activate_from_the_command_line(env):
    import json

    from mobilize.reference import verify

    assert run("demo", "--no-serve", "--password", "demo-password-9").exit_code == 0  # into env's database
    result = run("activate", "--scope", "330102001001", "--plan", "flood", "--level", "2", "--json",
                 "--export-problem", "problem.json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    assert summary["level"] == "II" and summary["filled"] > 0
    problem = json.loads((env / "problem.json").read_text())
    assert problem["objective"] == summary["objective"] == verify(problem)
    again = run("activate", "--scope", "330102001", "--plan", "flood", "--level", "II")
    assert again.exit_code == 1 and "overlaps" in again.output
    bad = run("activate", "--scope", "330102001", "--plan", "meteor", "--level", "II")
    assert bad.exit_code == 1 and "meteor" in bad.output
    assert run("level", str(summary["id"]), "I").exit_code == 0
    ended = run("end", str(summary["id"]), "--json")
    assert ended.exit_code == 0 and '"status": "ended"' in ended.output


def test_activate_without_borrowing_from_the_command_line(env):
    import json

    assert run("demo", "--no-serve", "--password", "demo-password-9").exit_code == 0
    result = run("activate", "--scope", "330102001", "--plan", "flood", "--level", "I", "--no-borrow", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    assert summary["borrowing"] is False and summary["borrowed"] == 0
    assert summary["policy"]["borrowing"] is False
