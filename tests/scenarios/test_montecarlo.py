"""A tiny Monte Carlo: parallel equals serial, variants share seeds, the report stands alone, the CLI function."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from io import StringIO

from scenarios.cli import run_drill
from scenarios.model import load_scenario, shipped
from scenarios.montecarlo import run_many
from scenarios.report import render_report


def _core(result):
    return [[{k: r[k] for k in ("seed", "assigned", "arrived", "time_to", "counts")} for r in v["runs"]]
            for v in result["variants"]]


def test_parallel_runs_equal_serial_runs_and_variants_share_seeds():
    scenario = load_scenario(shipped()["community_epidemic"])
    serial = run_many(scenario, 3, seed=5, processes=1)
    parallel = run_many(scenario, 3, seed=5, processes=2)
    assert _core(serial) == _core(parallel)
    base, half = serial["variants"]
    assert [r["seed"] for r in base["runs"]] == [r["seed"] for r in half["runs"]] == [5, 6, 7]
    assert half["deadlines"]["acknowledge"] == {"II": 10, "III": 15}
    agg = base["aggregate"]
    assert agg["runs"] == 3 and 0 < agg["fill_rate"]["mean"] <= 1
    assert set(agg["time_to"]["arrived"]) == {"50", "90", "100"}
    assert serial["comparisons"][0]["name"] == half["name"]


def test_report_is_self_contained_and_readable():
    scenario = replace(load_scenario(shipped()["street_flood"]), variants=())
    page = render_report(run_many(scenario, 2, seed=1, processes=1))
    assert page.startswith("<!doctype html>") and 'lang="zh-CN"' in page
    assert "<svg" in page and "结论" in page and "What to change" in page and "闸弄口街道" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # nothing fetched from a network
    assert "<script" not in page


def test_run_drill_prints_json_and_writes_the_report(tmp_path):
    out = StringIO()
    report = tmp_path / "drill.html"
    result = run_drill("community_epidemic", runs=2, seed=3, report=report, as_json=True, progress=False,
                       processes=1, out=out)
    data = json.loads(out.getvalue())
    assert data["seed"] == 3 and len(data["variants"]) == 2 and data["variants"][0]["runs"][0]["seed"] == 3
    assert "series" not in data["variants"][0]["aggregate"]
    assert report.read_text(encoding="utf-8").count("<svg") >= 4
    assert result["runs"] == 2
